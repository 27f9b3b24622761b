"""`rag bench engines`: a full ingest of one corpus by the local engine and by Ray with 1, 2, ...
workers, side by side: time, chunks per second, and whether the results are the same (chunk ids,
offsets and texts equal; vectors compared by largest absolute difference and smallest cosine).

Ray runs on ``ray_address`` when set, else on a local Ray started once before the runs (its start-up
is timed apart). The local engine uses ``embed_threads``; every Ray worker one thread. The engines
take turns for ``rounds`` rounds; medians are reported.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rag.settings import Settings
from rag.tools.benchmarks.common import write_json


def run(
    settings: Settings,
    corpus: Path,
    workers: list[int],
    *,
    rounds: int = 2,
    out: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    import ray

    from rag.pipeline import build_embedder, embedder_spec, ingest_params
    from rag.steps.index_store import load_index
    from rag.steps.ingest import ingest
    from rag.steps.ingest_ray import RayEngine, RayParams, connect

    embedder = build_embedder(settings)
    params = ingest_params(settings)
    spec = embedder_spec(settings)
    runs: dict[str, list[dict[str, Any]]] = {}
    started = time.perf_counter()
    connect(RayParams(address=settings.ray_address, workers=max(workers)))
    ray_start_s = time.perf_counter() - started
    log(f"Ray {'joined' if settings.ray_address else 'started'} in {ray_start_s:.1f} s (not counted below)")
    try:
        for _ in range(rounds):  # the engines take turns, so a busy spell on the machine hits them all
            with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
                report = ingest(corpus, Path(tmp) / "local", embedder, params)
                reference = load_index(Path(tmp) / "local", embedder.identity())
                runs.setdefault("local", []).append(_row("local", settings.embed_threads, report, None, None))
                log(_line(runs["local"][-1]))
                for n in workers:
                    engine = RayEngine(
                        spec,
                        embedder.identity(),
                        chunk_tokens=settings.chunk_tokens,
                        overlap_sentences=settings.overlap_sentences,
                        ray=RayParams(address=settings.ray_address, workers=n),
                    )
                    folder = Path(tmp) / f"ray{n}"
                    report = ingest(corpus, folder, embedder, params, engine=engine)
                    row = _row(f"ray x{n}", 1, report, reference, load_index(folder, embedder.identity()))
                    runs.setdefault(row["engine"], []).append(row)
                    log(_line(row))
    finally:
        ray.shutdown()
    rows = []
    for results in runs.values():
        median = statistics.median(r["seconds"] for r in results)
        rows.append(
            {
                **results[-1],
                "seconds": round(median, 1),
                "chunks_per_s": round(results[-1]["chunks"] / median, 1),
                "seconds_each_round": [r["seconds"] for r in results],
                "ray_start_s": round(ray_start_s, 1),
                "embed_backend": settings.embed_backend.value,
            }
        )
        log("median: " + _line(rows[-1]))
    write_json(rows, out)
    return rows


def _row(engine: str, threads: int, report, reference, index) -> dict[str, Any]:
    row: dict[str, Any] = {
        "engine": engine,
        "threads_per_worker": threads,
        "documents": report.total_documents,
        "chunks": report.total_chunks,
        "seconds": round(report.seconds, 1),
        "chunks_per_s": round(report.total_chunks / report.seconds, 1),
    }
    if reference is not None:
        same = [c.to_json() for c in index.chunks] == [c.to_json() for c in reference.chunks]
        row["same_chunks"] = same  # ids, documents, offsets, titles and texts, in the same order
        if same:
            a = reference.vectors_of(range(len(reference.chunks)))
            b = index.vectors_of(range(len(index.chunks)))
            row["vectors_max_abs_diff"] = float(np.abs(a - b).max())
            row["vectors_min_cosine"] = round(float(np.min(np.sum(a * b, axis=1))), 6)
            row["vectors_allclose_1e-5"] = bool(np.allclose(a, b, atol=1e-5))
    return row


def _line(row: dict[str, Any]) -> str:
    check = ""
    if "same_chunks" in row:
        check = f"  same chunks: {row['same_chunks']}"
        if row["same_chunks"]:
            check += f", vectors max |diff| {row['vectors_max_abs_diff']:.2e}, min cosine {row['vectors_min_cosine']}"
    return (
        f"{row['engine']:<8} {row['chunks']:>6} chunks in {row['seconds']:6.1f} s = {row['chunks_per_s']:6.1f} chunks/s"
        + check
    )
