"""Exact vs approximate FAISS indexes at growing sizes: build time, memory, search latency and
recall@10 against exact search.

Vectors are real e5 passage vectors from an index, replicated with small Gaussian noise to reach
each size (then L2-normalised); queries are real e5 query vectors. One OpenMP thread, as served.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

NOISE = 0.04


def synthetic(base: np.ndarray, n: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(base), size=n)
    out = base[rows] + rng.normal(0, NOISE, size=(n, base.shape[1])).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def _factories(dim: int) -> dict[str, Callable[[], Any]]:
    import faiss

    def hnsw(sq8: bool, ef: int):
        def make():
            index: Any
            if sq8:
                qtype: Any = faiss.ScalarQuantizer.QT_8bit  # an enum value; faiss' stubs say ScalarQuantizer
                index = faiss.IndexHNSWSQ(dim, qtype, 32, faiss.METRIC_INNER_PRODUCT)
            else:
                index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = ef
            return index

        return make

    return {
        "flat (exact)": lambda: faiss.IndexFlatIP(dim),
        "hnsw32 ef96": hnsw(False, 96),
        "hnsw32-sq8 ef96": hnsw(True, 96),
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

    faiss.omp_set_num_threads(1)
    rows = []
    for n in sizes:
        vectors = synthetic(base, n)
        exact_ids = None
        for name, make in _factories(vectors.shape[1]).items():
            index = make()
            faiss.omp_set_num_threads(2)  # building may use both cores
            started = time.perf_counter()
            if not index.is_trained:
                index.train(vectors)
            index.add(vectors)
            build_s = time.perf_counter() - started
            faiss.omp_set_num_threads(1)
            memory_mb = len(faiss.serialize_index(index)) / 1e6
            latencies = []
            found = []
            for q in queries:
                t = time.perf_counter()
                _, ids = index.search(q.reshape(1, -1), k)
                latencies.append((time.perf_counter() - t) * 1000)
                found.append(ids[0])
            found_arr = np.stack(found)
            if exact_ids is None:
                exact_ids = found_arr
            recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found_arr, exact_ids, strict=True)]))
            latencies.sort()
            row = {
                "vectors": n,
                "index": name,
                "build_s": round(build_s, 2),
                "memory_mb": round(memory_mb, 1),
                "median_ms": round(statistics.median(latencies), 3),
                "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 3),
                "recall@10_vs_exact": round(recall, 4),
            }
            rows.append(row)
            log(
                f"{n:>9,} {name:<18} build {row['build_s']:>7.2f} s  memory {row['memory_mb']:>8.1f} MB  "
                f"search median {row['median_ms']:>7.3f} ms  p95 {row['p95_ms']:>7.3f} ms  recall@10 {recall:.4f}"
            )
            del index
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return rows
