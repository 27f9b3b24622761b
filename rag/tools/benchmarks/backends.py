"""`rag bench backends`: the FAISS folder against Milvus Lite at growing sizes, through the seam and
the product's own Retriever: build time, disk, serving memory and warm search latency per mode.

The corpus is replicated from the configured (FAISS) index as `bench scale` does: chunk i copies a
real chunk's text, its vector is that chunk's vector plus noise. Both backends get the same chunks
through ``IndexWriter.begin/put/commit`` (one document per chunk). Each backend is then opened and
searched in a fresh process, so its memory is measured alone: ``rss_mb`` after opening and searching,
``index_rss_mb`` the same minus a process that imported the same libraries and opened nothing.
Milvus Lite runs inside that process (threads), so its memory is in the figure too. Questions are
embedded once here; the timed searches re-use the vectors (query embedding is the same for both).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.stats import latency_stats
from rag.settings import Settings
from rag.tools.benchmarks.ann import synthetic
from rag.tools.benchmarks.common import write_json

MODES = ("dense", "bm25", "hybrid")
WARM_UP = 5


def run(
    settings: Settings,
    sizes: list[int],
    *,
    questions: list[str],
    queries: int = 200,
    out: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    from rag.core.types import Chunk, Document
    from rag.pipeline import Pipeline, ingest_params
    from rag.steps.index_store import stored_vectors
    from rag.steps.store.base import IndexIdentity, IndexWriter
    from rag.steps.store.faiss_folder import FaissFolderWriter
    from rag.steps.store.milvus_client import MilvusParams
    from rag.steps.store.milvus_writer import MilvusWriter

    pipeline = Pipeline(settings.replace(index_backend="faiss"))
    pipeline.ingest()  # the source: the configured corpus in a FAISS folder
    source = pipeline.index
    base = stored_vectors(source)
    embedder = pipeline.embedder
    params = ingest_params(settings)
    identity = IndexIdentity(embedder.identity(), params.chunker(), params.bm25())
    picked = questions[:queries]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as tmp:
        np.save(Path(tmp) / "queries.npy", np.stack([embedder.embed_query(q) for q in picked]))
        (Path(tmp) / "queries.json").write_text(json.dumps(picked, ensure_ascii=False), encoding="utf-8")
        # a process that imported what each backend needs and opened nothing
        baseline = {name: _serve(Path(tmp), "bare " + name, "", 0)["rss_mb"] for name in ("faiss", "milvus-lite")}
        log(f"source: {len(base)} chunks from {source.folder}; {len(picked)} questions; bare processes {baseline} MB")
        for n in sizes:
            vectors, picks = synthetic(base, n)
            texts = [source.chunks[j].text for j in picks]
            documents = [Document(f"d{i}", t, "", "synthetic") for i, t in enumerate(texts)]
            hashes = {d.doc_id: f"{i:064x}" for i, d in enumerate(documents)}
            folder = Path(tmp) / f"n{n}"
            writers: dict[str, IndexWriter] = {
                "faiss": FaissFolderWriter(folder / "faiss"),
                "milvus-lite": MilvusWriter(MilvusParams(uri=str(folder / "milvus.db"), collection="rag_bench")),
            }
            for name, writer in writers.items():
                started = time.perf_counter()
                session = writer.begin(identity, documents, hashes, full=True)
                for i, doc in enumerate(documents):
                    session.put(
                        doc.doc_id,
                        [Chunk(f"{doc.doc_id}#0", doc.doc_id, 0, len(doc.text), doc.text)],
                        vectors[i : i + 1],
                    )
                session.commit()
                build_s = time.perf_counter() - started
                if isinstance(writer, MilvusWriter):
                    writer.close()  # Milvus Lite's folder is opened by the measuring process next
                location = folder / ("faiss" if name == "faiss" else "milvus.db")
                served = _serve(Path(tmp), name, str(location), n)
                row = {
                    "backend": name,
                    "chunks": n,
                    "build_s": round(build_s, 1),
                    "disk_mb": round(sum(p.stat().st_size for p in location.rglob("*") if p.is_file()) / 1e6, 1),
                    **served,
                    "index_rss_mb": round(served["rss_mb"] - baseline[name]),
                }
                exact = rows[-1]["dense_top10"] if name != "faiss" else row["dense_top10"]  # FAISS: exact here
                row["dense_recall@10_vs_faiss"] = round(
                    float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(row["dense_top10"], exact, strict=True)])),
                    4,
                )
                rows.append(row)
                log(
                    f"{name:<12} {n:>8,} chunks  build {row['build_s']:6.1f} s  disk {row['disk_mb']:7.1f} MB  "
                    f"memory {row['index_rss_mb']:5} MB  "
                    + "  ".join(
                        f"{m} {row[m]['median_ms']:6.2f} ms (p95 {row[m]['p95_ms']:6.2f})" for m in row["modes"]
                    )
                    + f"  dense recall@10 vs FAISS {row['dense_recall@10_vs_faiss']}"
                )
    for row in rows:
        del row["dense_top10"]
    write_json(rows, out)
    return rows


def _serve(folder: Path, backend: str, location: str, n: int) -> dict[str, Any]:
    """Open one index in a fresh process, search it, and return its latencies and memory."""
    code = (
        f"from rag.tools.benchmarks.backends import serve_once; serve_once({str(folder)!r}, {backend!r}, {location!r})"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark process for {backend} at {n} chunks failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class QueryVectors:
    """The questions' vectors, embedded once by the parent process (looked up, never computed here)."""

    def __init__(self, questions: list[str], vectors: np.ndarray) -> None:
        self.by_question = dict(zip(questions, vectors, strict=True))
        self.dim = vectors.shape[1]

    def embed_query(self, text: str) -> np.ndarray:
        return self.by_question[text]


def serve_once(folder: str, backend: str, location: str) -> None:
    """(Child process) open the index, time every mode, print one JSON line with latencies and memory."""
    import dataclasses

    import faiss

    from rag.pipeline import retrieval_params
    from rag.settings import Settings
    from rag.steps.index_store import load_index
    from rag.steps.retrieve import Retriever
    from rag.steps.store.base import SearchIndex
    from rag.steps.store.milvus_client import MilvusParams
    from rag.steps.store.milvus_index import open_milvus_index

    faiss.omp_set_num_threads(1)  # as served (the Retriever sets it too)
    questions = json.loads((Path(folder) / "queries.json").read_text(encoding="utf-8"))
    vectors = np.load(Path(folder) / "queries.npy")
    if backend.startswith("bare "):
        if backend == "bare milvus-lite":
            import milvus_lite  # noqa: F401
            import pymilvus  # noqa: F401
        else:
            import bm25s  # noqa: F401
        print(json.dumps({"rss_mb": _rss_mb()}))
        return
    params = retrieval_params(Settings().validated())
    embedder = QueryVectors(questions, vectors)
    started = time.perf_counter()
    indexes: dict[str, SearchIndex]
    if backend == "faiss":
        indexes = {"": load_index(Path(location), None)}
    else:
        milvus = MilvusParams(uri=location, collection="rag_bench")
        indexes = {
            "": open_milvus_index(milvus, None),
            " server fusion": open_milvus_index(dataclasses.replace(milvus, server_fusion=True), None),
        }
    open_s = time.perf_counter() - started
    result: dict[str, Any] = {"open_s": round(open_s, 2), "modes": []}
    for suffix, index in indexes.items():
        retriever = Retriever(index, embedder, params)  # type: ignore[arg-type]
        for mode in MODES if not suffix else ("hybrid",):
            for q, v in list(zip(questions, vectors, strict=True))[:WARM_UP]:
                retriever.search(q, params.k, mode, vector=None if mode == "bm25" else v)
            times = []
            for q, v in zip(questions, vectors, strict=True):
                t = time.perf_counter()
                retriever.search(q, params.k, mode, vector=None if mode == "bm25" else v)
                times.append((time.perf_counter() - t) * 1000)
            result[mode + suffix] = latency_stats(times)
            result["modes"].append(mode + suffix)
    first = next(iter(indexes.values()))
    result["dense_top10"] = [[first.chunk(r).chunk_id for r, _ in first.search_dense(v, 10)] for v in vectors]
    result["rss_mb"] = _rss_mb()
    result["peak_rss_mb"] = _rss_mb("VmHWM")
    print(json.dumps(result))


def _rss_mb(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024)
    return 0
