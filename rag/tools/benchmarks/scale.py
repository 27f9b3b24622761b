"""Hybrid retrieval at growing sizes (e.g. 10k, 100k, 1M chunks), through the product's own
Retriever: build time, index memory, warm search latency and recall@10 of the dense search
against exact search.

The corpus is replicated from a real index (FacQA by default): chunk i is a copy of a real chunk's
text, and its vector is that chunk's e5 vector plus Gaussian noise (then L2-normalised), so BM25
and the vectors see realistic text and neighbourhoods. Questions are the benchmark's own, embedded
once; the timed search re-uses the vector, and query embedding is timed apart.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.stats import latency_stats
from rag.settings import Settings
from rag.tools.benchmarks.ann import synthetic
from rag.tools.benchmarks.common import loglog_figure, peak_rss_mb, write_json


def _mb(n_bytes: float) -> float:
    return round(n_bytes / 1e6, 1)


def _bm25_bytes(bm25: Any) -> int:
    scores = bm25.model.scores
    return sum(int(np.asarray(scores[key]).nbytes) for key in ("data", "indices", "indptr") if key in scores)


def run(
    settings: Settings,
    sizes: list[int],
    *,
    questions: list[str],
    queries: int = 100,
    out: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    import faiss

    from rag.core.types import Chunk
    from rag.pipeline import Pipeline, retrieval_params
    from rag.steps.bm25 import BM25Index, Tokenizer
    from rag.steps.index_store import LoadedIndex, build_vector_index, is_exact, search_vectors, stored_vectors
    from rag.steps.retrieve import Retriever

    pipeline = Pipeline(settings)
    source = pipeline.index
    base = stored_vectors(source)
    embedder = pipeline.embedder
    picked = questions[:queries]
    started = time.perf_counter()
    vectors_q = [embedder.embed_query(q) for q in picked]
    embed_ms = (time.perf_counter() - started) * 1000 / len(picked)
    log(f"source: {len(base)} chunks from {source.folder}; {len(picked)} questions; query embedding {embed_ms:.1f} ms")
    rows = []
    for n in sizes:
        vectors, picks = synthetic(base, n)  # chunk i: the text of row picks[i], and its vector plus noise
        chunks = [
            Chunk(f"s{i}", f"d{i}", 0, len(source.chunks[j].text), source.chunks[j].text) for i, j in enumerate(picks)
        ]
        started = time.perf_counter()
        tokenizer = Tokenizer(stem=settings.bm25_stem, stopwords=settings.bm25_stopwords)
        bm25 = BM25Index.build([c.text for c in chunks], tokenizer)
        bm25_s = time.perf_counter() - started
        faiss.omp_set_num_threads(2)
        started = time.perf_counter()
        index = build_vector_index(vectors)
        vectors_s = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as tmp:
            exact = None
            if not is_exact(index):
                np.save(Path(tmp) / "vectors.npy", vectors)
                exact = np.load(Path(tmp) / "vectors.npy", mmap_mode="r")
            loaded = LoadedIndex(Path(tmp), {"counts": {"chunks": n}}, chunks, {}, index, bm25, exact)
            retriever = Retriever(loaded, embedder, retrieval_params(settings))  # sets one OpenMP thread
            reference = build_vector_index(vectors, approximate=False) if exact is not None else index
            recalls, latencies = [], []
            for q, v in zip(picked, vectors_q, strict=True):
                found = [r for r, _ in search_vectors(index, exact, v, 10)]
                truth = [r for r, _ in search_vectors(reference, None, v, 10)]
                recalls.append(len(set(found) & set(truth)) / 10)
                t = time.perf_counter()
                retriever.search(q, settings.k, "hybrid", vector=v)  # embedded above
                latencies.append((time.perf_counter() - t) * 1000)
            del reference
            search = latency_stats(latencies)
            row = {
                "chunks": n,
                "vector_index": type(index).__name__ + (" + exact rescoring" if exact is not None else ""),
                "build_vectors_s": round(vectors_s, 1),
                "build_bm25_s": round(bm25_s, 1),
                "memory_vectors_mb": _mb(len(faiss.serialize_index(index))),
                "float_vectors_on_disk_mb": _mb(vectors.nbytes) if exact is not None else 0.0,
                "memory_bm25_mb": _mb(_bm25_bytes(bm25)),
                "hybrid_search_median_ms": search["median_ms"],
                "hybrid_search_p95_ms": search["p95_ms"],
                "with_query_embedding_median_ms": round((search["median_ms"] or 0.0) + embed_ms, 2),
                "dense_recall@10_vs_exact": round(float(np.mean(recalls)), 4),
                "process_peak_rss_mb": round(peak_rss_mb()),
            }
            rows.append(row)
            log(
                f"{n:>9,} chunks  {row['vector_index']:<32} build {vectors_s:6.1f} s + BM25 {bm25_s:6.1f} s  "
                f"memory {row['memory_vectors_mb']:7.1f} + BM25 {row['memory_bm25_mb']:6.1f} MB  "
                f"hybrid median {row['hybrid_search_median_ms']:6.2f} ms (p95 {row['hybrid_search_p95_ms']:6.2f}; "
                f"+ embedding {row['with_query_embedding_median_ms']:6.2f})  recall@10 {row['dense_recall@10_vs_exact']}"
            )
            del retriever, loaded, exact
        del index, bm25, chunks, vectors
    write_json(rows, out)
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    sizes = [r["chunks"] for r in rows]

    def line(key: str, label: str):
        return (label, sizes, [r[key] for r in rows])

    loglog_figure(
        [
            ("index memory (MB)", [line("memory_vectors_mb", "vectors"), line("memory_bm25_mb", "BM25")]),
            (
                "hybrid search, warm (ms)",
                [line("hybrid_search_median_ms", "median"), line("hybrid_search_p95_ms", "p95")],
            ),
            ("build (s)", [line("build_vectors_s", "vectors"), line("build_bm25_s", "BM25")]),
        ],
        path,
    )
