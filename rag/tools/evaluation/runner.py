"""Run retrieval (and optionally answer) evaluations side by side and collect per-question results."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rag.core.stats import latency_stats
from rag.core.types import Answer, Chunk
from rag.tools.evaluation.evalset import EvalQuestion
from rag.tools.evaluation.metrics import mean_metrics, query_metrics

log = logging.getLogger(__name__)

# one ranked list of chunks for a question
SearchFn = Callable[[str, int], list[Chunk]]


@dataclass
class ConfigResult:
    name: str
    metrics: dict[str, float]
    latency_ms: list[float]
    per_question: list[dict[str, Any]] = field(default_factory=list)
    notes: str = ""

    def summary(self) -> dict[str, Any]:
        stats = latency_stats(self.latency_ms)
        return {
            "name": self.name,
            "metrics": {k: round(v, 4) for k, v in self.metrics.items()},
            "latency_ms": {"median": stats["median_ms"], "p95": stats["p95_ms"]},
            "notes": self.notes,
        }


def run_retrieval(
    name: str,
    search: SearchFn,
    questions: list[EvalQuestion],
    universe: list[Chunk],
    *,
    document_level: bool,
    progress: Callable[[int, int], None] | None = None,
    k: int = 10,
) -> ConfigResult:
    """Metrics over the answerable questions. A hit is a chunk overlapping the gold evidence; the
    relevant set (for nDCG's ideal ranking) is every chunk of ``universe`` that does. With
    ``document_level``, ranks count distinct documents and a gold document is the hit."""
    per_question = []
    scores = []
    latency = []
    answerable = [q for q in questions if q.answerable]
    for i, q in enumerate(answerable, start=1):
        started = time.perf_counter()
        chunks = search(q.question, k)
        latency.append((time.perf_counter() - started) * 1000)
        if document_level:
            ranked = list(dict.fromkeys(c.doc_id for c in chunks))
            relevant = set(q.gold_doc_ids) | {s.doc_id for s in q.evidence}
        else:
            ranked = [_span_key(c) for c in chunks]
            relevant = {_span_key(c) for c in universe if q.is_relevant(c)}
        m = query_metrics(ranked, relevant)
        scores.append(m)
        first = next((r for r, key in enumerate(ranked, start=1) if key in relevant), None)
        per_question.append(
            {
                "qid": q.qid,
                "question": q.question,
                "first_relevant_rank": first,
                "top": [c.chunk_id for c in chunks[:3]],
                **{k2: round(v, 4) for k2, v in m.items()},
            }
        )
        if progress:
            progress(i, len(answerable))
    return ConfigResult(name, mean_metrics(scores), latency, per_question)


def _span_key(c: Chunk) -> str:
    return f"{c.doc_id}:{c.start}-{c.end}"


def reference_present(text: str, answers: list[str]) -> bool:
    """A reference answer starts at a word boundary in the text (case-insensitive; thousands
    separators and runs of spaces do not matter: "17.600" finds "17,600")."""
    low = _normalised(text)
    return any(re.search(r"(?<!\w)" + re.escape(_normalised(a)), low) for a in answers if a.strip())


def _normalised(text: str) -> str:
    text = re.sub(r"(?<=\d)[.,](?=\d{3}\b)", "", text.lower())
    return " ".join(text.split())


def run_answers(
    answer_fn: Callable[[str], Answer],
    questions: list[EvalQuestion],
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Answer every question; score correctness, declines, citations and latency, overall and by
    class and by language."""
    rows = []
    for i, q in enumerate(questions, start=1):
        answer = answer_fn(q.question)
        cited_ok = [any(q.is_relevant(c.chunk) for c in answer.citations)] if answer.citations and q.answerable else []
        markers = [int(n) for n in re.findall(r"\[(\d+)\]", answer.text)]
        resolving = [n in {c.n for c in answer.citations} for n in markers]
        rows.append(
            {
                "qid": q.qid,
                "question": q.question,
                "language": q.language,
                "split": q.split,
                "kind": q.kind,
                "answerable": q.answerable,
                "answer": answer.text,
                "declined": answer.declined,
                "decline_reason": answer.decline_reason,
                "answer_language": answer.language,
                "correct": bool(q.answerable and not answer.declined and reference_present(answer.text, q.answers)),
                # the model's own reply, before the checks: what they could keep at most
                "reply_correct": bool(q.answerable and reference_present(answer.raw_text, q.answers)),
                "markers": len(markers),
                "markers_resolving": sum(resolving),
                "citation_on_gold": all(cited_ok) if cited_ok else None,
                "dropped_markers": list(answer.dropped_markers),
                "dropped_sentences": list(answer.dropped_sentences),
                "raw": answer.raw_text,
                "timings": answer.timings,
            }
        )
        if progress:
            progress(i, len(questions))
    summary = summarise(rows)
    summary["by_class"] = {k: summarise(r, brief=True) for k, r in _group(rows, "kind").items() if k}
    summary["by_language"] = {k: summarise(r, brief=True) for k, r in _group(rows, "language").items() if k}
    return {"summary": summary, "rows": rows}


def summarise(rows: list[dict[str, Any]], brief: bool = False) -> dict[str, Any]:
    """Correct answers, false and correct declines (shares), and with ``brief`` off citations and latency."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    def share(rows_: list[dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> float | None:
        return round(sum(1 for r in rows_ if test(r)) / len(rows_), 4) if rows_ else None

    out: dict[str, Any] = {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "correct_answerable": share(answerable, lambda r: r["correct"]),
        "false_declines": share(answerable, lambda r: r["declined"]),
        "correct_declines": share(unanswerable, lambda r: r["declined"]),
        # the checks can only keep or decline a reply: right replies are the most they can give
        "reply_correct_answerable": share(answerable, lambda r: r["reply_correct"]),
    }
    if brief:
        return out
    out["checks_declined_right_reply"] = share(answerable, lambda r: r["declined"] and r["reply_correct"])
    out["checks_kept_wrong_reply"] = share(answerable, lambda r: not r["declined"] and not r["correct"])
    generated = [r for r in rows if "first_token_ms" in r["timings"]]
    total_markers = sum(r["markers"] for r in rows)
    out.update(
        {
            "language_match": share(rows, lambda r: r["answer_language"] == r["language"]),
            "citations_resolving": round(sum(r["markers_resolving"] for r in rows) / total_markers, 4)
            if total_markers
            else None,
            "citations_on_gold_evidence": share(
                [r for r in answerable if r["citation_on_gold"] is not None], lambda r: r["citation_on_gold"]
            ),
            "median_first_token_ms": latency_stats([r["timings"]["first_token_ms"] for r in generated], 1)["median_ms"],
            **{f"{k[:-3]}_total_ms": v for k, v in latency_stats([r["timings"]["total_ms"] for r in rows], 1).items()},
            "llm_calls": len(generated),
        }
    )
    return out


def _group(rows: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r[key]), []).append(r)
    return groups
