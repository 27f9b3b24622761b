"""Ingest on Ray against a real local cluster (started once for the session with `ray start --head`
on 127.0.0.1, stopped by its own process group): the same chunks and vectors as the local engine,
only new or changed documents sent to Ray, and a worker killed with SIGKILL mid-run retried by Ray
with nothing lost and nothing written twice. Real embedders, so these tests are slow."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="ingest on Ray needs the [scale] extra: scripts/setup.sh dev,scale")

from rag.pipeline import build_embedder, embedder_spec, ingest_params  # noqa: E402
from rag.steps.index_store import load_index  # noqa: E402
from rag.steps.ingest import ingest  # noqa: E402
from rag.steps.ingest_ray import USAGE_STATS_ENV, RayEngine, RayParams  # noqa: E402

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_cluster():
    """host:port of a 2-CPU Ray head on 127.0.0.1, every port its own (other clusters may run here).
    Token authentication is off for this loopback cluster: Ray reads RAY_AUTH_MODE when it is imported,
    and this process imported it already (a client of a token cluster sets RAY_AUTH_MODE=token and
    RAY_AUTH_TOKEN_PATH before starting; docs/PERFORMANCE.md)."""
    ray_bin = Path(sys.executable).parent / "ray"
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # Ray's socket paths must stay under 108 bytes
    port = _free_port()
    ports = {
        "--ray-client-server-port": _free_port(),
        "--dashboard-agent-listen-port": _free_port(),
        "--dashboard-agent-grpc-port": _free_port(),
        "--runtime-env-agent-port": _free_port(),
        "--metrics-export-port": _free_port(),
        "--node-manager-port": _free_port(),
        "--object-manager-port": _free_port(),
    }
    log = open(Path(temp) / "head.log", "w+", encoding="utf-8")  # noqa: SIM115 - closed below
    head = subprocess.Popen(
        [
            str(ray_bin),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
            *(f"{flag}={value}" for flag, value in ports.items()),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},  # not turned on by a token in ~/.ray
        start_new_session=True,  # its own process group: stopped below without touching anyone else's
        preexec_fn=_stop_with_parent,
    )
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in Path(log.name).read_text(encoding="utf-8"):
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the test Ray head did not start:\n" + Path(log.name).read_text(encoding="utf-8")[-3000:])
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(head)
        log.close()
        import shutil

        shutil.rmtree(temp, ignore_errors=True)


def _stop_with_parent() -> None:
    """(In the head's process, before exec) SIGTERM it when this test process dies, even by SIGKILL,
    so a killed test run leaves no cluster behind (Linux's PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _stop(head: subprocess.Popen) -> None:
    """SIGTERM the head's process group, SIGKILL what is left after a grace period (it takes ~30 s)."""
    for sig, grace_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(head.pid, sig)
        except ProcessLookupError:
            return
        try:
            head.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            continue
    for pid in _descendants(head.pid):  # workers run in process groups of their own
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _descendants(root: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid, hops = int(entry.name), 0
            ancestor = _parent(pid)
            while ancestor > 1 and hops < 8:
                if ancestor == root:
                    found.append(pid)
                    break
                ancestor, hops = _parent(ancestor), hops + 1
    return found


def _actor_pids(cluster_root: int) -> list[int]:
    pids = []
    for pid in _descendants(cluster_root):
        try:
            if b"ChunkAndEmbed" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
        except OSError:
            continue
    return pids


def _head_pid(address: str) -> int:
    port = address.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            except OSError:
                continue
            if b"start\x00--head\x00--block" in cmd and f"--port={port}".encode() in cmd:
                return int(entry.name)
    raise AssertionError(f"no test Ray head for {address}")


def _engine(settings, embedder, address: str, workers: int = 2) -> RayEngine:
    return RayEngine(
        embedder_spec(settings),
        embedder.identity(),
        chunk_tokens=settings.chunk_tokens,
        overlap_sentences=settings.overlap_sentences,
        ray=RayParams(address=address, workers=workers, docs_per_batch=2),
    )


def _articles(folder: Path, n: int, start: int = 0, version: str = "") -> None:
    folder.mkdir(exist_ok=True)
    for i in range(start, start + n):
        text = " ".join(
            f"Kalimat {j}{version} tentang berita nomor {i}: Rusia dan NATO membahas sanksi ekonomi di Brussel."
            for j in range(4 + i % 5)
        )
        (folder / f"berita{i:03d}.txt").write_text(f"Berita {i}\n\n{text}", encoding="utf-8")


def _same(a, b) -> None:
    assert [c.to_json() for c in a.chunks] == [c.to_json() for c in b.chunks]


def test_ray_makes_the_same_chunks_and_vectors_as_the_local_engine(
    ray_cluster, settings, corpus_dir, tmp_path, monkeypatch
):
    monkeypatch.delenv(USAGE_STATS_ENV, raising=False)  # as on a machine that never set it
    # float32 (torch): vectors that do not depend on the batch; small chunks: several per document
    settings = settings.replace(embed_backend="torch", embed_threads=1, chunk_tokens=60)
    _articles(corpus_dir, 5)
    embedder = build_embedder(settings)
    params = ingest_params(settings)
    local = ingest(corpus_dir, tmp_path / "local", embedder, params)
    seen: list[tuple[int, int]] = []
    on_ray = ingest(
        corpus_dir,
        tmp_path / "ray",
        embedder,
        params,
        engine=_engine(settings, embedder, ray_cluster),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert on_ray.engine == "ray" and on_ray.total_chunks == local.total_chunks > 8
    assert seen[-1] == (8, 8)  # progress in documents
    a, b = load_index(tmp_path / "local", embedder.identity()), load_index(tmp_path / "ray", embedder.identity())
    _same(a, b)
    np.testing.assert_allclose(a.vectors_of(range(len(a.chunks))), b.vectors_of(range(len(b.chunks))), atol=1e-5)
    # no usage statistics: Ray Data's poller thread (Prometheus every 10 s, for the process's life) never started
    assert "data-usage-metrics-poller" not in [t.name for t in threading.enumerate()]


def test_only_new_and_changed_documents_go_to_ray(ray_cluster, settings, corpus_dir, tmp_path):
    settings = settings.replace(embed_threads=1, chunk_tokens=60)
    embedder = build_embedder(settings)
    params = ingest_params(settings)
    ingest(corpus_dir, tmp_path / "index", embedder, params)  # built locally first
    (corpus_dir / "sanksi.txt").write_text("Medvedev: sanksi Barat merusak hubungan.", encoding="utf-8")
    _articles(corpus_dir, 1)
    seen: list[tuple[int, int]] = []
    update = ingest(
        corpus_dir,
        tmp_path / "index",
        embedder,
        params,
        engine=_engine(settings, embedder, ray_cluster, workers=1),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert (update.added, update.changed, update.removed) == (["berita000.txt"], ["sanksi.txt"], [])
    assert seen[-1] == (2, 2) and update.embedded_chunks < update.total_chunks
    ingest(corpus_dir, tmp_path / "fresh", embedder, params, rebuild=True)
    _same(load_index(tmp_path / "index", embedder.identity()), load_index(tmp_path / "fresh", embedder.identity()))


def test_a_worker_killed_mid_run_loses_and_repeats_nothing(ray_cluster, settings, tmp_path):
    pytest.importorskip("pymilvus")
    from rag.pipeline import milvus_params
    from rag.steps.store.milvus_index import open_milvus_index
    from rag.steps.store.milvus_writer import MilvusWriter

    corpus = tmp_path / "corpus"
    _articles(corpus, 24, version="x")
    settings = settings.replace(index_dir=tmp_path / "index", index_backend="milvus", embed_threads=1, chunk_tokens=60)
    embedder = build_embedder(settings)
    params = ingest_params(settings)
    head = _head_pid(ray_cluster)
    killed: list[int] = []

    def kill_one_actor(done: int, total: int) -> None:
        if not killed and done >= 2:
            pids = _actor_pids(head)
            assert pids, "no embedding actor found to kill"
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    result: dict = {}

    def run() -> None:
        try:
            result["report"] = ingest(
                corpus,
                settings.index_dir,
                embedder,
                params,
                writer=MilvusWriter(milvus_params(settings)),
                engine=_engine(settings, embedder, ray_cluster),
                progress=kill_one_actor,
            )
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread below
            result["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=600)
    if "error" in result:
        raise result["error"]
    assert killed, "the run ended before an actor could be killed"
    reference_dir = tmp_path / "reference"
    ingest(corpus, reference_dir, embedder, params)  # the local engine, one process
    reference = load_index(reference_dir, embedder.identity())
    index = open_milvus_index(milvus_params(settings), embedder.identity())
    ids = [c.chunk_id for c in index.chunks]
    assert len(ids) == len(set(ids)) == result["report"].total_chunks == len(reference.chunks)
    assert sorted(c.to_json().items() for c in index.chunks) == sorted(c.to_json().items() for c in reference.chunks)
    rows = {index.chunk(r).chunk_id: r for r, _ in index.search_dense(embedder.embed_query("Rusia"), len(ids))}
    assert len(rows) == len(ids)
    expected = {c.chunk_id: i for i, c in enumerate(reference.chunks)}
    got = index.vectors_of([rows[c] for c in expected])
    want = reference.vectors_of(list(expected.values()))
    # the int8 copy quantises activations per batch: other batches, vectors within ~0.5 % cosine
    assert float(np.min(np.sum(got * want, axis=1))) > 0.99


def test_a_worker_without_the_model_fails_with_the_products_message(ray_cluster, settings, corpus_dir, tmp_path):
    import dataclasses

    from rag.core.errors import IndexError_

    embedder = build_embedder(settings)
    engine = _engine(settings, embedder, ray_cluster, workers=1)
    engine.spec = dataclasses.replace(engine.spec, location=str(tmp_path / "no-model"))
    with pytest.raises(IndexError_, match=r"a worker stopped with: .*no-model.*nothing was committed"):
        ingest(corpus_dir, tmp_path / "index", embedder, ingest_params(settings), engine=engine)
    assert not (tmp_path / "index" / "manifest.json").exists()
