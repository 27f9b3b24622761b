"""`rag eval`: evaluate an eval set (quotes as gold) or a FacQA-style benchmark folder."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.core.errors import InputError
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.tools.evaluation.evalset import load_benchmark_queries, load_eval_set
from rag.tools.evaluation.runner import run_answers, run_retrieval

CONFIGS = ("bm25", "dense", "hybrid", "langchain")
ProgressFactory = Callable[[str], Callable[[int, int], None]]


def evaluate(
    settings: Settings,
    *,
    eval_set: Path | None,
    bench: Path | None,
    configs: tuple[str, ...],
    answers: bool,
    out_dir: Path,
    progress: ProgressFactory | None = None,
) -> tuple[dict[str, Any], dict]:
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise InputError(f"unknown configurations {unknown}; choose from {', '.join(CONFIGS)}")
    if bench is not None:
        corpus = bench / "corpus.jsonl"
        queries = bench / "queries.jsonl"
        if not corpus.is_file() or not queries.is_file():
            raise InputError(f"{bench} must hold corpus.jsonl and queries.jsonl (FacQA format)")
        index_dir = settings.cache_dir / "bench-index" / bench.name
        settings = dataclasses.replace(settings, corpus_dir=corpus, index_dir=index_dir)
        name = bench.name
    elif eval_set is not None:
        name = eval_set.stem
    else:
        raise InputError("give an eval set (--set FILE) or a benchmark folder (--bench DIR)")
    pipeline = Pipeline(settings)
    report = pipeline.ingest(progress=progress("embedding") if progress else None)
    index = pipeline.index
    questions = (
        load_benchmark_queries(bench / "queries.jsonl") if bench else load_eval_set(eval_set or Path(), index.documents)
    )
    document_level = bench is not None
    retriever = pipeline.retriever
    results = []
    for config in configs:
        if config == "langchain":
            from rag.models.registry import embedder_source
            from rag.tools.evaluation.baseline import LangChainBaseline, langchain_embeddings

            started = time.perf_counter()
            embeddings = langchain_embeddings(embedder_source(settings.cache_dir, settings.embedder))
            baseline = LangChainBaseline(list(index.documents.values()), embeddings)
            build_s = time.perf_counter() - started
            result = run_retrieval(
                "langchain-baseline",
                baseline.search,
                questions,
                baseline.chunks,
                document_level=document_level,
                progress=progress(config) if progress else None,
            )
            result.notes = (
                f"RecursiveCharacterTextSplitter(1000, 200) + HuggingFaceEmbeddings (no e5 prefixes) + "
                f"FAISS.from_documents; {len(baseline.chunks)} chunks, built in {build_s:.1f} s"
            )
        else:

            def search(question: str, k: int, mode: str = config) -> list:
                return [h.chunk for h in retriever.search(question, k, mode).hits]

            result = run_retrieval(
                config,
                search,
                questions,
                index.chunks,
                document_level=document_level,
                progress=progress(config) if progress else None,
            )
        results.append(result)
    run: dict[str, Any] = {
        "name": name,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "corpus": str(settings.corpus_dir),
        "index_dir": str(settings.index_dir),
        "questions": len(questions),
        "answerable": sum(q.answerable for q in questions),
        "settings": {k: str(v) for k, v in dataclasses.asdict(settings).items() if "key" not in k},
        "index_manifest": {k: v for k, v in index.manifest.items() if k != "documents"},
        "ingest_seconds": round(report.seconds, 2),
        "retrieval": [
            {**r.summary(), "_latencies": [round(x, 3) for x in r.latency_ms], "per_question": r.per_question}
            for r in results
        ],
    }
    hybrid = next((r for r in results if r.name == "hybrid"), None)
    if hybrid:
        run["misses"] = [q for q in hybrid.per_question if not q["first_relevant_rank"] or q["first_relevant_rank"] > 3]
    if answers:
        answerer = pipeline.answerer()
        run["prompt_version"] = answerer.prompts.version
        run["answers"] = run_answers(answerer, questions, progress=progress("answers") if progress else None)
    from rag.tools.evaluation.report import write_report

    paths = write_report(out_dir, run)
    return run, paths
