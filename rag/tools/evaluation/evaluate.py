"""`rag eval`: evaluate an eval set (quotes as gold) or a FacQA-style benchmark folder: retrieval
configurations side by side, and with ``answers`` the answer chains (ours, and the textbook LangChain
chain) on the questions of one split."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.core.errors import InputError
from rag.pipeline import Pipeline
from rag.settings import REPO_ROOT, Settings
from rag.tools.evaluation.evalset import EvalQuestion, answer_benchmark, load_benchmark_queries, load_eval_set
from rag.tools.evaluation.runner import ConfigResult, run_answers, run_retrieval

CONFIGS = ("bm25", "dense", "hybrid", "langchain")
CHAINS = ("ours", "langchain")
ProgressFactory = Callable[[str], Callable[[int, int], None]]


@dataclass(frozen=True)
class EvalRequest:
    eval_set: Path | None  # a set with gold quotes, or
    bench: Path | None  # a folder with corpus.jsonl + queries.jsonl
    configs: tuple[str, ...]  # retrieval configurations
    answers: bool
    out_dir: Path
    split: str | None = None  # only the questions of this split ("dev" / "test")
    chains: tuple[str, ...] = ("ours",)  # answer chains
    sample: Path | None = None  # benchmarks: which questions to answer (default eval/<name>_answers.json)
    lookalikes: Path | None = None  # benchmarks: unanswerable look-alikes (default eval/<name>_lookalikes.jsonl)
    replay: Path | None = None  # a report.json whose recorded replies are checked again instead of asking the model


def evaluate(
    settings: Settings,
    request: EvalRequest,
    progress: ProgressFactory | None = None,
    *,
    pipeline: Pipeline | None = None,
) -> tuple[dict[str, Any], dict]:
    """Run the request and write its report. ``pipeline``: evaluate on its current index as it is (the
    chat page does this), without updating it from the corpus first; not with a benchmark folder."""
    for kind, chosen, valid in (("configurations", request.configs, CONFIGS), ("chains", request.chains, CHAINS)):
        unknown = [c for c in chosen if c not in valid]
        if unknown:
            raise InputError(f"unknown {kind} {unknown}; choose from {', '.join(valid)}")
    if request.replay is not None and (not request.answers or request.chains != ("ours",)):
        raise InputError("--replay re-checks our chain's recorded replies: it goes with --answers and --chains ours")
    if request.bench is not None and pipeline is not None:
        raise InputError("a benchmark is evaluated on its own index, not on a given pipeline's")
    if request.bench is not None:
        settings = _bench_settings(settings, request.bench)
    if request.eval_set is not None:
        name = request.eval_set.stem
    elif request.bench is not None:
        name = request.bench.name
    else:
        raise InputError("give an eval set (--set FILE) or a benchmark folder (--bench DIR)")
    ingest_seconds = None
    if pipeline is None:
        pipeline = Pipeline(settings)
        ingest_seconds = round(pipeline.ingest(progress=progress("embedding") if progress else None).seconds, 2)
    settings = pipeline.settings
    index = pipeline.index
    benchmark_queries = request.bench is not None and request.eval_set is None
    if benchmark_queries:
        questions = load_benchmark_queries((request.bench or Path()) / "queries.jsonl")
    else:
        questions = load_eval_set(request.eval_set or Path(), index.documents)
    if not any(q.answerable for q in questions):
        raise InputError(f"{request.eval_set}: no answerable question, so no retrieval to score")
    # a benchmark's retrieval runs on all its queries; --split picks its answer sample (below)
    in_split = [q for q in questions if benchmark_queries or request.split in (None, q.split)]
    results = [
        _retrieval(config, pipeline, in_split, request.bench is not None, progress) for config in request.configs
    ]
    run: dict[str, Any] = {
        "name": name + (f" ({request.split})" if request.split else ""),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "corpus": str(settings.corpus_dir),
        "index_dir": str(settings.index_dir),
        "questions": len(in_split),
        "answerable": sum(q.answerable for q in in_split),
        "settings": {k: str(v) for k, v in dataclasses.asdict(settings).items() if "key" not in k},
        "index_manifest": {k: v for k, v in index.manifest.items() if k != "documents"},
        "ingest_seconds": ingest_seconds,  # None: evaluated on the index as it was
        "retrieval": [
            {**r.summary(), "_latencies": [round(x, 3) for x in r.latency_ms], "per_question": r.per_question}
            for r in results
        ],
    }
    hybrid = next((r for r in results if r.name == "hybrid"), None)
    if hybrid:
        run["misses"] = [q for q in hybrid.per_question if not q["first_relevant_rank"] or q["first_relevant_rank"] > 3]
    if request.answers:
        asked = _answer_set(request, questions, name) if benchmark_queries else in_split
        run.update(_answers(pipeline, asked, request.chains, progress, request.replay))
    from rag.tools.evaluation.report import write_report

    paths = write_report(request.out_dir, run)
    return run, paths


def _bench_settings(settings: Settings, bench: Path) -> Settings:
    corpus, queries = bench / "corpus.jsonl", bench / "queries.jsonl"
    if not corpus.is_file() or not queries.is_file():
        raise InputError(f"{bench} must hold corpus.jsonl and queries.jsonl (FacQA format)")
    return dataclasses.replace(settings, corpus_dir=corpus, index_dir=settings.cache_dir / "bench-index" / bench.name)


def _retrieval(
    config: str, pipeline: Pipeline, questions: list[EvalQuestion], document_level: bool, progress
) -> ConfigResult:
    index = pipeline.index
    bar = progress(config) if progress else None
    if config != "langchain":
        retriever = pipeline.retriever

        def search(question: str, k: int) -> list:
            return [h.chunk for h in retriever.search(question, k, config).hits]

        return run_retrieval(config, search, questions, index.chunks, document_level=document_level, progress=bar)
    from rag.models.registry import embedder_source
    from rag.tools.evaluation.baseline import LangChainBaseline, langchain_embeddings

    started = time.perf_counter()
    embeddings = langchain_embeddings(embedder_source(pipeline.settings.cache_dir, pipeline.settings.embedder))
    baseline = LangChainBaseline(list(index.documents.values()), embeddings)
    build_s = time.perf_counter() - started
    result = run_retrieval(
        "langchain-baseline", baseline.search, questions, baseline.chunks, document_level=document_level, progress=bar
    )
    result.notes = (
        f"RecursiveCharacterTextSplitter(1000, 200) + HuggingFaceEmbeddings (no e5 prefixes) + "
        f"FAISS.from_documents; {len(baseline.chunks)} chunks, built in {build_s:.1f} s"
    )
    return result


def _answer_set(request: EvalRequest, queries: list[EvalQuestion], name: str) -> list[EvalQuestion]:
    sample = request.sample or REPO_ROOT / "eval" / f"{name}_answers.json"
    lookalikes = request.lookalikes or REPO_ROOT / "eval" / f"{name}_lookalikes.jsonl"
    if not sample.is_file():
        raise InputError(f"answering a benchmark needs a sample of its questions: {sample} is missing (--sample FILE)")
    return answer_benchmark(queries, sample, lookalikes if lookalikes.is_file() else None, request.split)


def _answers(
    pipeline: Pipeline, questions: list[EvalQuestion], chains: tuple[str, ...], progress, replay: Path | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    answerer = pipeline.answerer()
    if "ours" in chains:
        out["prompt_version"] = answerer.prompts.version
        answer_fn = answerer.answer
        if replay is not None:
            from rag.tools.evaluation.replay import ReplayCounts, read_recorded, replaying

            counts = ReplayCounts()
            answer_fn = replaying(answerer, read_recorded(replay), counts)
        out["answers"] = run_answers(answer_fn, questions, progress=progress("answers") if progress else None)
        if replay is not None:
            out["replay"] = {"report": str(replay), **dataclasses.asdict(counts)}
    if "langchain" in chains:
        from rag.tools.evaluation.baseline import TextbookChain

        chain = TextbookChain(pipeline.retriever, answerer.chat, pipeline.settings.k)
        bar = progress("langchain chain") if progress else None
        out["answers_langchain"] = run_answers(chain.answer, questions, progress=bar)
    return out
