"""What only the Milvus backend does: term statistics kept incrementally (and recounted after an
interrupted ingest), BM25 re-weighting when the average chunk length drifts, long documents split into
parts, scans that split the key range, server-side fusion, the command line on Milvus Lite, and an
engine that dies or freezes under an open index or an ingest (a Milvus Lite server process of its own,
killed by its PID) and comes back."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SMALL_CHUNKS, run_rag
from fakes import HashingEmbedder

pytest.importorskip("pymilvus", reason="the Milvus backend needs the [scale] extra: scripts/setup.sh dev,scale")

from rag.core.choices import Fusion  # noqa: E402
from rag.steps.index_store import load_index  # noqa: E402
from rag.steps.ingest import ingest  # noqa: E402
from rag.steps.store import milvus_client as milvus  # noqa: E402
from rag.steps.store import milvus_connection, milvus_writer  # noqa: E402
from rag.steps.store import milvus_schema as schema  # noqa: E402
from rag.steps.store.base import HybridQuery  # noqa: E402
from rag.steps.store.milvus_index import open_milvus_index  # noqa: E402
from rag.steps.store.milvus_writer import MilvusWriter  # noqa: E402


@pytest.fixture(autouse=True)
def _close_milvus():
    yield
    milvus.close_all()  # stop this test's Milvus Lite server (threads and memory)


def _params(tmp_path: Path, **kw) -> milvus.MilvusParams:
    return milvus.MilvusParams(uri=str(tmp_path / "m" / "milvus.db"), collection="rag_t", dense_index="FLAT", **kw)


def _bm25(index, query: str) -> dict[str, float]:
    return {index.chunk(row).chunk_id: score for row, score in index.search_sparse(query, 50)}


def _reference(corpus: Path, folder: Path) -> dict:
    embedder = HashingEmbedder()
    ingest(corpus, folder, embedder, SMALL_CHUNKS)
    return load_index(folder, embedder.identity())


def _write_articles(folder: Path, n: int, words: int, start: int = 0) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(start, start + n):
        body = " ".join(f"kata{(i * 7 + j) % 53} berita{j % 11}" for j in range(words))
        (folder / f"a{i:03d}.txt").write_text(f"Judul {i}\n\n{body}.", encoding="utf-8")


def test_an_interrupted_ingest_is_repaired_by_the_next(corpus_dir: Path, tmp_path: Path):
    params, embedder = _params(tmp_path), HashingEmbedder()
    ingest(corpus_dir, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    client = milvus.connect(params)
    # what an ingest killed between its chunk writes and its statistics leaves: wrong document
    # frequencies and the index marked as being written
    client.upsert(params.terms, [{"pk": pk, "df": 99, "placeholder": schema.PLACEHOLDER} for pk in range(5)])
    rows = client.query(params.terms, filter="", output_fields=["pk"], limit=3)
    client.upsert(params.terms, [{"pk": r["pk"], "df": 40, "placeholder": schema.PLACEHOLDER} for r in rows])
    schema.write_properties(client, params, None, "writing")
    report = ingest(corpus_dir, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    assert not report.written  # nothing changed in the corpus; the statistics were recounted anyway
    manifest, state = schema.read_manifest(client, params)
    assert state == "clean"
    index = open_milvus_index(params, embedder.identity())
    reference = _reference(corpus_dir, tmp_path / "ref")
    for query in ("Lavrov Kerry Paris", "sanksi Rusia", "NATO Brussel"):
        assert _bm25(index, query) == pytest.approx(_bm25(reference, query), rel=1e-5)


def test_a_full_rebuild_switches_at_commit_and_an_interrupted_one_changes_nothing(corpus_dir: Path, tmp_path: Path):
    from rag.steps.ingest import IngestParams, document_hash
    from rag.steps.store.base import IndexIdentity

    params, embedder = _params(tmp_path), HashingEmbedder()
    ingest(corpus_dir, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    client = milvus.connect(params)
    serving = open_milvus_index(params, embedder.identity())
    before = _bm25(serving, "Lavrov Kerry Paris")
    assert len(client.list_collections()) == 3
    # a full build that dies before its commit: written to new collections only
    identity = IndexIdentity(embedder.identity(), SMALL_CHUNKS.chunker(), SMALL_CHUNKS.bm25())
    other = IngestParams(chunk_tokens=20, overlap_sentences=0, bm25_stem=False, bm25_stopwords=True)
    writer = MilvusWriter(params)
    writer.previous(identity)
    from rag.steps.corpus import load_corpus

    documents = load_corpus(corpus_dir).documents
    session = writer.begin(identity, documents, {d.doc_id: document_hash(d) for d in documents}, full=True)
    session.put(documents[0].doc_id, [], embedder.embed_documents([]))
    assert len(client.list_collections()) == 6
    assert _bm25(serving, "Lavrov Kerry Paris") == before  # still the previous build
    assert _bm25(open_milvus_index(params, embedder.identity()), "Lavrov Kerry Paris") == before
    # the next ingest drops the unfinished build's collections
    again = ingest(corpus_dir, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    assert not again.written and len(client.list_collections()) == 3
    # a completed full build (other chunking) replaces the previous one at its commit
    rebuilt = ingest(corpus_dir, tmp_path / "i", embedder, other, writer=MilvusWriter(params))
    assert rebuilt.full_rebuild and rebuilt.rebuild_reason == "chunker settings changed"
    assert len(client.list_collections()) == 3
    index = open_milvus_index(params, embedder.identity())
    assert index.manifest["chunker"]["max_tokens"] == 20 and len(index.chunks) == rebuilt.total_chunks


def test_bm25_is_reweighted_when_the_average_chunk_length_drifts(tmp_path: Path):
    corpus, params, embedder = tmp_path / "corpus", _params(tmp_path), HashingEmbedder()
    _write_articles(corpus, 6, words=6)
    ingest(corpus, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    first = schema.read_manifest(milvus.connect(params), params)[0]["bm25"]["avgdl"]
    _write_articles(corpus, 6, words=16, start=6)  # longer chunks: the average moves by far more than 5 %
    update = ingest(corpus, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    assert not update.full_rebuild and update.embedded_chunks < update.total_chunks
    second = schema.read_manifest(milvus.connect(params), params)[0]["bm25"]["avgdl"]
    assert abs(second / first - 1) > 0.05
    index = open_milvus_index(params, embedder.identity())
    reference = _reference(corpus, tmp_path / "ref")
    for query in ("kata3 berita2", "kata50", "judul berita7 kata1"):
        assert _bm25(index, query) == pytest.approx(_bm25(reference, query), rel=1e-5)


def test_a_long_document_is_stored_in_parts_and_read_back_whole(tmp_path: Path):
    corpus, params, embedder = tmp_path / "corpus", _params(tmp_path), HashingEmbedder()
    corpus.mkdir()
    text = "Judul panjang\n\n" + " ".join(f"Kalimat ke-{i} tentang Rusia dan ééé." for i in range(2500))
    (corpus / "long.txt").write_text(text, encoding="utf-8")
    ingest(corpus, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    reference = _reference(corpus, tmp_path / "ref")
    index = open_milvus_index(params, embedder.identity())
    assert len(reference.documents["long.txt"].text) > 3 * schema.PART_CHARS
    assert index.documents["long.txt"] == reference.documents["long.txt"]
    # shorter now: the surplus parts go
    (corpus / "long.txt").write_text("Judul pendek\n\nSatu kalimat saja.", encoding="utf-8")
    ingest(corpus, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    parts = milvus.connect(params).query(params.docs, filter="", output_fields=["part"], limit=100)
    assert [p["part"] for p in parts] == [0]


def test_scans_split_the_key_range_without_losing_or_repeating_rows(tmp_path: Path, monkeypatch):
    corpus, params, embedder = tmp_path / "corpus", _params(tmp_path), HashingEmbedder()
    _write_articles(corpus, 40, words=12)
    ingest(corpus, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    client = milvus.connect(params)
    everything = {r["pk"] for r in client.query(params.collection, filter="", output_fields=["pk"], limit=16384)}
    monkeypatch.setattr(milvus, "QUERY_LIMIT", 7)  # every page overflows at first and is split again
    monkeypatch.setattr(milvus, "SCAN_PAGE", 5)
    scanned = [r["pk"] for r in milvus.scan(client, params.collection, [])]
    assert len(scanned) == len(set(scanned)) == len(everything) >= 40 and set(scanned) == everything


def test_server_side_rrf_orders_as_the_retriever_does(corpus_dir: Path, tmp_path: Path):
    params, embedder = _params(tmp_path, server_fusion=True), HashingEmbedder()
    ingest(corpus_dir, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    index = open_milvus_index(params, embedder.identity())
    for query in ("Lavrov Kerry Paris", "sanksi Medvedev", "NATO jet"):
        vector = embedder.embed_query(query)
        dense, lexical = index.search_dense(vector, 50), index.search_sparse(query, 50)
        fused: dict[int, float] = {}
        for results in (dense, lexical):
            for rank, (row, _) in enumerate(results, start=1):
                fused[row] = fused.get(row, 0.0) + 0.5 / (60 + rank)
        server = index.search_hybrid(query, vector, 50, HybridQuery(Fusion.RRF, 0.5, 0.5, 60))
        # RRF ignores a common weight: Milvus's unweighted sum is twice the Retriever's, in the same
        # order (rows of equal score may come in any order)
        assert [round(s, 6) for _, s in server] == sorted((round(2 * s, 6) for s in fused.values()), reverse=True)
        assert {(r, round(s, 6)) for r, s in server} == {(r, round(2 * s, 6)) for r, s in fused.items()}


@pytest.mark.slow
def test_the_command_line_on_milvus_lite(corpus_dir: Path, tmp_path: Path):
    index = tmp_path / "index"
    flags = ("--index-backend", "milvus")
    built = run_rag("ingest", "--json", *flags, index=index, corpus=corpus_dir)
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["written"] and (index / "milvus.db").is_dir()
    found = run_rag("search", "Lavrov Kerry Paris", "--json", "-k", "2", *flags, index=index)
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert len(hits) == 2 and hits[0]["doc_id"] == "paris.txt"
    assert "mvccTs" not in found.stderr + built.stderr  # no library chatter on the terminal
    wrong = run_rag("search", "x", "--embedder", "/no/such", "--embed-backend", "torch", *flags, index=index)
    assert wrong.returncode == 3 and "error:" in wrong.stderr


def test_engine_libraries_stay_below_the_seam_and_load_only_when_used():
    """Importing the pipeline, retrieval, ingest and every store module loads neither pymilvus nor ray."""
    import subprocess
    import sys

    code = (
        "import sys, rag.pipeline, rag.steps.retrieve, rag.steps.ingest, rag.steps.ingest_ray, rag.adapters.langchain\n"
        "import rag.steps.store.milvus_index, rag.steps.store.milvus_writer, rag.steps.store.faiss_folder\n"
        "print([m for m in ('pymilvus', 'milvus_lite', 'ray', 'grpc') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_settings_map_to_the_backend_and_engine_parameters(tmp_path: Path):
    from rag.core.errors import ConfigError
    from rag.pipeline import index_writer, milvus_params
    from rag.settings import Settings
    from rag.steps.store.faiss_folder import FaissFolderWriter

    settings = Settings(index_dir=tmp_path / "my index", index_backend="milvus").validated()
    params = milvus_params(settings)
    assert params.uri == str(tmp_path / "my index" / "milvus.db") and not params.server_fusion
    assert params.collection.startswith("rag_my_index_") and params.collection.isidentifier()
    other = milvus_params(
        settings.replace(milvus_uri="http://h:19530", milvus_collection="news", milvus_server_fusion=True)
    )
    assert (other.uri, other.collection, other.server_fusion) == ("http://h:19530", "news", True)
    assert isinstance(index_writer(settings), MilvusWriter)
    assert isinstance(index_writer(settings.replace(index_backend="faiss")), FaissFolderWriter)
    for bad, message in (
        ({"index_backend": "qdrant"}, "choose one of faiss, milvus"),
        ({"ingest_engine": "spark"}, "choose one of local, ray"),
        ({"ray_workers": 0}, "at least 1"),
    ):
        with pytest.raises(ConfigError, match=message):
            Settings(**bad).validated()


class MilvusServer:
    """A Milvus Lite server in a process of its own on a loopback port (what a server ``milvus_uri``
    points at), killed by its PID and started again on the same port and folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["-m", "milvus_lite", "server", "--data-dir", str(self.folder / "data"), "--host", "127.0.0.1"]
        with (self.folder / "server.log").open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, *command, "--port", str(self.port)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.folder / "server.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"Milvus Lite did not listen on {self.uri} within 60 s")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signum)
        if signum == signal.SIGKILL:
            self.process.wait()


@pytest.fixture
def milvus_server(tmp_path: Path):
    server = MilvusServer(tmp_path / "server")
    server.folder.mkdir()
    server.start()
    yield server
    milvus.close_all()
    if server.process is not None and server.process.poll() is None:
        server.signal(signal.SIGCONT)
        server.signal(signal.SIGKILL)


def _server_params(server: MilvusServer) -> milvus.MilvusParams:
    return milvus.MilvusParams(uri=server.uri, collection="rag_t", dense_index="FLAT")


def _timed(call):
    started = time.monotonic()
    try:
        return call(), time.monotonic() - started
    except Exception as e:
        return e, time.monotonic() - started


def test_a_search_while_milvus_is_dead_fails_fast_and_after_its_restart_succeeds(corpus_dir, tmp_path, milvus_server):
    params, embedder = _server_params(milvus_server), HashingEmbedder()
    ingest(corpus_dir, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    index = open_milvus_index(params, embedder.identity())
    vector = embedder.embed_query("Lavrov Kerry Paris")
    dense, lexical = index.search_dense(vector, 5), _bm25(index, "Lavrov Kerry Paris")
    milvus_server.signal(signal.SIGKILL)
    error, took_s = _timed(lambda: index.search_sparse("sanksi Rusia", 5))
    # the product's own one-line error, naming the address and the fix, after RECONNECT_FOR_S of trying
    assert isinstance(error, milvus_connection.MilvusUnreachable), error
    assert milvus_server.uri in str(error) and "start Milvus again" in str(error) and "\n" not in str(error)
    assert took_s < milvus_connection.RECONNECT_FOR_S + 2
    milvus_server.start()  # by its operator; the index object is the one opened before
    found, took_s = _timed(lambda: index.search_dense(vector, 5))
    assert found == dense and took_s < 5  # reconnected, and the collections a restart released loaded again
    assert _bm25(index, "Lavrov Kerry Paris") == lexical


def test_a_frozen_milvus_fails_at_the_deadline_and_answers_when_it_resumes(
    corpus_dir, tmp_path, milvus_server, monkeypatch
):
    params, embedder = _server_params(milvus_server), HashingEmbedder()
    ingest(corpus_dir, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    index = open_milvus_index(params, embedder.identity())
    vector = embedder.embed_query("NATO Brussel")
    before = index.search_dense(vector, 5)
    monkeypatch.setattr(milvus_connection, "LOOKUP_TIMEOUT_S", 1.0)
    milvus_server.signal(signal.SIGSTOP)  # alive but not answering: without a deadline a search waits for ever
    error, took_s = _timed(lambda: index.search_dense(vector, 5))
    assert isinstance(error, milvus_connection.MilvusUnreachable) and "no answer within 1 s" in str(error)
    assert took_s < 3
    milvus_server.signal(signal.SIGCONT)
    assert index.search_dense(vector, 5) == before


def test_other_milvus_errors_are_raised_at_once_without_reconnecting(corpus_dir, tmp_path):
    from pymilvus.exceptions import MilvusException

    params, embedder = _params(tmp_path), HashingEmbedder()
    ingest(corpus_dir, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    client = milvus.connect(params)
    channel = client._client
    error, took_s = _timed(lambda: client.query(params.collection, filter="no_such_field > 1", output_fields=["pk"]))
    assert isinstance(error, MilvusException) and not isinstance(error, milvus_connection.MilvusUnreachable)
    assert took_s < 1 and client._client is channel  # not retried, not reconnected


def test_a_stopped_milvus_lite_is_started_again_by_the_next_search(corpus_dir, tmp_path):
    from milvus_lite.server_manager import server_manager_instance

    params, embedder = _params(tmp_path), HashingEmbedder()
    ingest(corpus_dir, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    index = open_milvus_index(params, embedder.identity())
    vector = embedder.embed_query("sanksi Medvedev")
    before = index.search_dense(vector, 5)
    server_manager_instance.release_server(params.uri)  # Milvus Lite runs in this process: stopped, not killed
    found, took_s = _timed(lambda: index.search_dense(vector, 5))
    assert found == before and took_s < 5


@pytest.mark.parametrize("dies_before", ["apply_df", "flush"])
def test_an_ingest_whose_milvus_is_killed_is_repaired_by_the_next(
    dies_before, corpus_dir, tmp_path, milvus_server, monkeypatch
):
    """Milvus killed in the middle of an incremental ingest's commit: after the chunks are upserted
    and deleted, before the term statistics and the documents; or after the documents, before the
    flush and the manifest. Once Milvus is back the next ingest leaves the index equal to the same
    ingest never interrupted (a twin in Milvus Lite): chunks, documents, counts and BM25 scores."""
    params, twin, embedder = _server_params(milvus_server), _params(tmp_path / "twin"), HashingEmbedder()
    for target in (params, twin):
        ingest(corpus_dir, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(target))
    (corpus_dir / "sanksi.txt").unlink()
    (corpus_dir / "paris.txt").write_text("Kerry di Paris\n\nKerry bertemu Lavrov lagi di Paris.", encoding="utf-8")
    (corpus_dir / "jet.txt").write_text("Jet Rusia\n\nJet Su-24 Rusia terbang dekat kapal AS.", encoding="utf-8")
    ingest(corpus_dir, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(twin))

    apply_df, write_documents = milvus_writer.apply_df, milvus_writer.MilvusSession._write_documents

    def kill_then_apply_df(*args):
        milvus_server.signal(signal.SIGKILL)
        apply_df(*args)

    def write_documents_then_kill(self, *args):
        write_documents(self, *args)
        milvus_server.signal(signal.SIGKILL)

    if dies_before == "apply_df":
        monkeypatch.setattr(milvus_writer, "apply_df", kill_then_apply_df)
    else:
        monkeypatch.setattr(milvus_writer.MilvusSession, "_write_documents", write_documents_then_kill)
    monkeypatch.setattr(milvus_connection, "RECONNECT_FOR_S", 0.5)  # the bound itself is tested above
    with pytest.raises(milvus_connection.MilvusUnreachable, match=milvus_server.uri):
        ingest(corpus_dir, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    monkeypatch.undo()
    milvus_server.start()
    assert schema.read_manifest(milvus.connect(params), params)[1] == "writing"
    report = ingest(corpus_dir, tmp_path / "i", embedder, SMALL_CHUNKS, writer=MilvusWriter(params))
    assert not report.full_rebuild
    repaired, expected = (open_milvus_index(p, embedder.identity()) for p in (params, twin))
    manifest, state = schema.read_manifest(milvus.connect(params), params)
    assert state == "clean" and manifest["counts"] == expected.manifest["counts"]
    assert manifest["tokens"] == expected.manifest["tokens"]
    assert manifest["bm25"]["avgdl"] == pytest.approx(expected.manifest["bm25"]["avgdl"])
    reference = _reference(corpus_dir, tmp_path / "ref")
    assert [c.chunk_id for c in repaired.chunks] == [c.chunk_id for c in reference.chunks]
    assert dict(repaired.documents) == dict(reference.documents)
    for query in ("Lavrov Kerry Paris", "jet Rusia kapal", "sanksi Medvedev", "NATO Brussel"):
        assert _bm25(repaired, query) == pytest.approx(_bm25(expected, query), rel=1e-5)
