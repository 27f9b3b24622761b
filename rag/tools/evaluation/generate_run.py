"""`rag eval --generate N`: sample passages of a corpus, have the pipeline's chat model write the
questions, keep those the filters pass, and write the set (JSONL, eval format) with a report beside it
(``<set>.generation.json``: parameters, model, prompt version, the funnel per filter, time taken and
every dropped question with the filter that dropped it). Kept questions are written as they come, so
a run stopped early (Ctrl-C) still leaves a valid set and a report that says it is incomplete."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.core.errors import InputError
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.steps.corpus import load_corpus
from rag.tools.evaluation.generate import (
    Funnel,
    GenerateParams,
    load_generation_prompts,
    passages_of,
    plan_tasks,
    run_tasks,
    sample_passages,
)

REPORT_SUFFIX = ".generation.json"


@dataclass(frozen=True)
class GenerateRequest:
    corpus: Path  # a folder or .jsonl file of articles (as `rag ingest --corpus` reads it)
    out: Path  # the set, JSONL; its report goes beside it
    params: GenerateParams


def report_path(out: Path) -> Path:
    """Where the report of the set ``out`` is written: runs/x.jsonl -> runs/x.generation.json."""
    return out.with_name(out.stem + REPORT_SUFFIX)


def generate_set(
    settings: Settings,
    request: GenerateRequest,
    progress: Callable[[int, int], None] | None = None,
    *,
    pipeline: Pipeline | None = None,
) -> dict[str, Any]:
    """Write the generated set and its report; returns the report. ``pipeline`` supplies the chat
    model and the embedder's tokenizer for chunking (default: built from ``settings``)."""
    params = request.params.validated()
    started = time.perf_counter()
    loaded = load_corpus(request.corpus)
    if not loaded.documents:
        raise InputError(f"{request.corpus} holds no articles to write questions from")
    pipeline = pipeline or Pipeline(settings)
    chunks = passages_of(
        loaded.documents,
        pipeline.embedder.count_tokens,
        chunk_tokens=settings.chunk_tokens,
        overlap_sentences=settings.overlap_sentences,
        count_many=pipeline.embedder.count_tokens_many,
    )
    passages = sample_passages(chunks, params.passages, params.seed, params.min_passage_words)
    tasks = plan_tasks(passages, params)
    documents = {d.doc_id: d for d in loaded.documents}
    prompts = load_generation_prompts(settings.prompts_dir)
    chat = pipeline.chat_model()
    funnel, dropped, seconds = Funnel(), [], []
    report: dict[str, Any] = {
        "set": str(request.out),
        "corpus": str(request.corpus),
        "documents": len(loaded.documents),
        "passages_in_corpus": len(chunks),
        "passages_sampled": len(passages),
        "documents_sampled": len({c.doc_id for c in passages}),
        "params": {**asdict(params), "languages": list(params.languages)},
        "llm": {"backend": settings.llm_backend.value, "model": pipeline.llm_model_for(settings.llm_backend)},
        "prompt_version": prompts.version,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "complete": False,
    }
    request.out.parent.mkdir(parents=True, exist_ok=True)
    generation_started = time.perf_counter()
    try:
        with request.out.open("w", encoding="utf-8") as out:
            for outcome in run_tasks(tasks, documents, chat, prompts, params.filters, progress):
                funnel.add(outcome)
                seconds.append(outcome.seconds)
                if outcome.rejected_by is None:
                    out.write(json.dumps(outcome.record(), ensure_ascii=False) + "\n")
                    out.flush()
                else:
                    dropped.append(
                        {
                            "id": outcome.task.qid,
                            "filter": outcome.rejected_by,
                            "question": outcome.question,
                            "answer": outcome.answer,
                            "reply": outcome.reply,
                        }
                    )
        report["complete"] = True
    finally:
        table = funnel.table()
        report.update(
            {
                "tasks_planned": len(tasks),
                "tasks_done": len(seconds),
                "funnel": table,
                "kept": table[-1]["kept"] if table else 0,
                "seconds_total": round(time.perf_counter() - started, 1),
                "seconds_generating": round(time.perf_counter() - generation_started, 1),
                "seconds_per_generation": {
                    "median": round(statistics.median(seconds), 2) if seconds else None,
                    "max": round(max(seconds), 2) if seconds else None,
                },
                "dropped": dropped,
            }
        )
        report_path(request.out).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return report
