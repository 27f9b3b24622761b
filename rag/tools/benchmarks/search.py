"""Warm search latency per mode, split between query embedding and the rest (index search, fusion,
de-duplication), over the evaluation questions against the configured index."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.core.stats import latency_stats
from rag.settings import REPO_ROOT, Settings
from rag.tools.benchmarks.common import questions_from, write_json


def run(
    settings: Settings,
    *,
    questions: list[str] | None = None,
    rounds: int = 3,
    out: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    from rag.pipeline import Pipeline

    questions = questions or questions_from(REPO_ROOT / "eval" / "questions.jsonl")
    pipeline = Pipeline(settings)
    pipeline.ingest()
    retriever = pipeline.retriever
    for q in questions[:5]:  # warm-up: first calls pay for lazy initialisation
        retriever.search(q, settings.k, "hybrid")
    rows = []
    for mode in ("dense", "bm25", "hybrid"):
        embed_ms: list[float] = []
        rest_ms: list[float] = []
        total_ms: list[float] = []
        for _ in range(rounds):
            for q in questions:
                started = time.perf_counter()
                vector = retriever.embedder.embed_query(q) if mode != "bm25" else None
                embedded = time.perf_counter()
                retriever.search(q, settings.k, mode, vector=vector)
                done = time.perf_counter()
                embed_ms.append((embedded - started) * 1000)
                rest_ms.append((done - embedded) * 1000)
                total_ms.append((done - started) * 1000)
        row: dict[str, Any] = {
            "mode": mode,
            "k": settings.k,
            "chunks": len(retriever.index.chunks),
            "searches": len(total_ms),
            "total": latency_stats(total_ms),
            "query_embedding": latency_stats(embed_ms),
            "index_search_and_fusion": latency_stats(rest_ms),
        }
        rows.append(row)
        log(
            f"{mode:<7} total median {row['total']['median_ms']:6.2f} ms  p95 {row['total']['p95_ms']:6.2f} ms  | "
            f"embedding {row['query_embedding']['median_ms']:6.2f} ms  "
            f"index+fusion {row['index_search_and_fusion']['median_ms']:6.2f} ms  "
            f"({row['searches']} searches over {row['chunks']} chunks)"
        )
    write_json(rows, out)
    return rows
