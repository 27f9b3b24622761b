"""Ingest throughput: this product's `ingest` against the textbook LangChain pipeline, side by side.

Each measurement runs in a fresh process (so peak memory is its own), loads its model first (timed
apart), then builds from the corpus folder: for the product, reading, chunking, embedding, BM25 and
the index written to disk; for LangChain, the same documents through RecursiveCharacterTextSplitter,
HuggingFaceEmbeddings (same model) and FAISS.from_documents. Rounds alternate the two pipelines so
drift on a noisy machine hits both. For a benchmark folder (corpus.jsonl + queries.jsonl) each build
is also scored: dense nDCG@10 of its own index, so a faster build cannot hide a worse one.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.settings import Settings
from rag.tools.benchmarks.common import peak_rss_mb, write_json


def _corpus_and_queries(path: Path) -> tuple[Path, Path | None]:
    if path.is_dir() and (path / "corpus.jsonl").is_file():
        queries = path / "queries.jsonl"
        return path / "corpus.jsonl", queries if queries.is_file() else None
    return path, None


def _ndcg(search: Callable[[str, int], list], queries: Path | None, universe: list) -> float | None:
    if queries is None:
        return None
    from rag.tools.evaluation.evalset import load_benchmark_queries
    from rag.tools.evaluation.runner import run_retrieval

    result = run_retrieval("dense", search, load_benchmark_queries(queries), universe, document_level=True)
    return round(result.metrics["ndcg@10"], 4)


def measure_ours(settings: Settings, corpus: str) -> dict[str, Any]:
    from rag.pipeline import Pipeline

    corpus_path, queries = _corpus_and_queries(Path(corpus))
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline(dataclasses.replace(settings, corpus_dir=corpus_path, index_dir=Path(tmp) / "index"))
        started = time.perf_counter()
        pipeline.embedder  # noqa: B018 - loads the model, timed apart from the build
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        report = pipeline.ingest(rebuild=True)
        build_s = time.perf_counter() - started
        retriever = pipeline.retriever
        ndcg = _ndcg(
            lambda q, k: [h.chunk for h in retriever.search(q, k, "dense").hits], queries, list(pipeline.index.chunks)
        )
        return {
            "pipeline": f"rag ingest ({settings.embed_backend}, batch {settings.embed_batch_size})",
            "documents": report.total_documents,
            "chunks": report.total_chunks,
            "load_s": load_s,
            "build_s": build_s,
            "peak_rss_mb": peak_rss_mb(),
            "dense_ndcg@10": ndcg,
        }


def measure_langchain(settings: Settings, corpus: str) -> dict[str, Any]:
    from rag.models.registry import embedder_source
    from rag.steps.corpus import load_corpus
    from rag.tools.evaluation.baseline import LangChainBaseline, langchain_embeddings

    corpus_path, queries = _corpus_and_queries(Path(corpus))
    started = time.perf_counter()
    embeddings = langchain_embeddings(embedder_source(settings.cache_dir, settings.embedder))
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    documents = load_corpus(corpus_path).documents
    baseline = LangChainBaseline(documents, embeddings)
    build_s = time.perf_counter() - started
    return {
        "pipeline": "LangChain: splitter + HuggingFaceEmbeddings + FAISS.from_documents",
        "documents": len(documents),
        "chunks": len(baseline.chunks),
        "load_s": load_s,
        "build_s": build_s,
        "peak_rss_mb": peak_rss_mb(),
        "dense_ndcg@10": _ndcg(baseline.search, queries, baseline.chunks),
    }


def _in_child(fn: Callable[[Settings, str], dict[str, Any]], settings: Settings, corpus: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(fn, (settings, corpus))


def run(
    settings: Settings,
    corpora: list[Path],
    rounds: int = 3,
    out: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    rows = []
    for corpus in corpora:
        samples: dict[str, list[dict[str, Any]]] = {"ours": [], "langchain": []}
        for r in range(rounds):
            order = [("ours", measure_ours), ("langchain", measure_langchain)]
            for name, fn in order if r % 2 == 0 else order[::-1]:
                sample = _in_child(fn, settings, str(corpus))
                samples[name].append(sample)
                log(
                    f"{corpus.name:<12} round {r + 1} {name:<9} build {sample['build_s']:7.2f} s  "
                    f"({sample['chunks']} chunks)  peak {sample['peak_rss_mb']:7.0f} MB"
                )
        summary = {}
        for name, runs in samples.items():
            build = statistics.median(s["build_s"] for s in runs)
            summary[name] = {
                "pipeline": runs[0]["pipeline"],
                "documents": runs[0]["documents"],
                "chunks": runs[0]["chunks"],
                "build_s_median": round(build, 2),
                "build_s_all": [round(s["build_s"], 2) for s in runs],
                "chunks_per_s": round(runs[0]["chunks"] / build, 1),
                "documents_per_s": round(runs[0]["documents"] / build, 1),
                "model_load_s_median": round(statistics.median(s["load_s"] for s in runs), 2),
                "peak_rss_mb_max": round(max(s["peak_rss_mb"] for s in runs)),
                "dense_ndcg@10": runs[0]["dense_ndcg@10"],
            }
        ratios = [
            lc["build_s"] / ours["build_s"] for ours, lc in zip(samples["ours"], samples["langchain"], strict=True)
        ]
        row = {
            "corpus": str(corpus),
            "rounds": rounds,
            **summary,
            "speedup_median": round(statistics.median(ratios), 2),
            "speedup_per_round": [round(x, 2) for x in ratios],
        }
        rows.append(row)
        for name in ("ours", "langchain"):
            s = summary[name]
            log(
                f"{corpus.name:<12} {name:<9} median {s['build_s_median']:7.2f} s  {s['chunks_per_s']:6.1f} chunks/s  "
                f"{s['documents_per_s']:6.1f} docs/s  peak {s['peak_rss_mb_max']:5d} MB  "
                f"dense nDCG@10 {s['dense_ndcg@10']}"
            )
        log(f"{corpus.name:<12} speed-up (LangChain time / ours, per round, median): {row['speedup_median']}x")
    write_json(rows, out)
    return rows
