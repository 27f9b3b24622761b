"""Exact vs approximate FAISS indexes at growing sizes: build time, memory, search latency and
recall@10 against exact search.

Vectors are real e5 passage vectors from an index, replicated with Gaussian noise to reach each size
(then L2-normalised); queries are real e5 query vectors. Search goes through the product's own
search_vectors, one OpenMP thread, as served.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.stats import latency_stats
from rag.settings import Settings
from rag.tools.benchmarks.common import loglog_figure, write_json

NOISE = 0.04


def synthetic(base: np.ndarray, n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """``n`` vectors, each a row of ``base`` plus Gaussian noise, L2-normalised; and those rows."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(base), size=n)
    out = base[rows] + rng.normal(0, NOISE, size=(n, base.shape[1])).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32), rows


def _indexes(vectors: np.ndarray) -> dict[str, tuple[Callable[[], Any], bool]]:
    """name -> (build, rescored): exact search, plain HNSW for reference, and what the product builds
    above EXACT_MAX_CHUNKS (HNSW over 8-bit vectors, candidates re-scored from memory-mapped floats)."""
    import faiss

    from rag.steps.index_store import HNSW_EF_SEARCH, HNSW_M, build_vector_index

    def plain_hnsw() -> Any:
        index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = HNSW_EF_SEARCH
        index.add(vectors)
        return index

    return {
        "flat (exact)": (lambda: build_vector_index(vectors, approximate=False), False),
        f"hnsw{HNSW_M} ef{HNSW_EF_SEARCH}": (plain_hnsw, False),
        f"hnsw{HNSW_M}-sq8 ef{HNSW_EF_SEARCH} + rescoring": (
            lambda: build_vector_index(vectors, approximate=True),
            True,
        ),
    }


def run(
    base: np.ndarray,
    queries: np.ndarray,
    sizes: list[int],
    k: int = 10,
    out: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    import faiss

    from rag.steps.index_store import search_vectors

    rows = []
    for n in sizes:
        vectors, _ = synthetic(base, n)
        exact_ids: list[list[int]] | None = None
        with tempfile.TemporaryDirectory() as tmp:
            np.save(Path(tmp) / "vectors.npy", vectors)
            on_disk = np.load(Path(tmp) / "vectors.npy", mmap_mode="r")
            for name, (build, rescored) in _indexes(vectors).items():
                faiss.omp_set_num_threads(2)  # building may use both cores
                started = time.perf_counter()
                index = build()
                build_s = time.perf_counter() - started
                faiss.omp_set_num_threads(1)  # one thread serves one interactive query fastest
                memory_mb = len(faiss.serialize_index(index)) / 1e6
                latencies = []
                found = []
                for q in queries:
                    t = time.perf_counter()
                    hits = search_vectors(index, on_disk if rescored else None, q, k)
                    latencies.append((time.perf_counter() - t) * 1000)
                    found.append([row for row, _ in hits])
                if exact_ids is None:
                    exact_ids = found
                recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact_ids, strict=True)]))
                row = {
                    "vectors": n,
                    "index": name,
                    "build_s": round(build_s, 2),
                    "memory_mb": round(memory_mb, 1),
                    "float_vectors_on_disk_mb": round(vectors.nbytes / 1e6, 1) if rescored else 0.0,
                    **latency_stats(latencies, 3),
                    "recall@10_vs_exact": round(recall, 4),
                }
                rows.append(row)
                log(
                    f"{n:>9,} {name:<32} build {row['build_s']:>7.2f} s  memory {row['memory_mb']:>8.1f} MB  "
                    f"search median {row['median_ms']:>7.3f} ms  p95 {row['p95_ms']:>7.3f} ms  recall@10 {recall:.4f}"
                )
                del index
            del on_disk
    write_json(rows, out)
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Memory, median search time and build time against the number of vectors, log-log."""
    names = list(dict.fromkeys(r["index"] for r in rows))

    def lines(key: str):
        return [
            (name, [r["vectors"] for r in rows if r["index"] == name], [r[key] for r in rows if r["index"] == name])
            for name in names
        ]

    loglog_figure(
        [
            ("index memory (MB)", lines("memory_mb")),
            ("search, median (ms)", lines("median_ms")),
            ("build (s)", lines("build_s")),
        ],
        path,
    )


def run_on_index(settings: Settings, sizes: list[int], *, queries: int, out: Path | None) -> list[dict[str, Any]]:
    """``run`` over synthetic sets grown from the vectors of the index at settings.index_dir, with the
    first sentences of its chunks standing in for questions."""
    from rag.pipeline import Pipeline
    from rag.steps.index_store import stored_vectors

    pipeline = Pipeline(settings)
    index = pipeline.index
    base = stored_vectors(index)
    texts = [c.text.split(".")[0] for c in index.chunks]
    picks = np.random.default_rng(3).choice(len(texts), size=min(queries, len(texts)), replace=False)
    query_vectors = np.stack([pipeline.embedder.embed_query(texts[i]) for i in picks])
    print(f"base: {len(base)} vectors from {index.folder}; {len(query_vectors)} queries", file=sys.stderr)
    return run(base, query_vectors, sizes, out=out)
