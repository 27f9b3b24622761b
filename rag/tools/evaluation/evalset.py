"""Evaluation sets. Gold evidence is stored as quotes from the documents (never chunk ids), so
re-chunking never invalidates a set; quotes are resolved to character spans on load."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from rag.core.errors import InputError
from rag.core.questions import read_records
from rag.core.types import Chunk, Document


@dataclass(frozen=True)
class Span:
    doc_id: str
    start: int
    end: int


@dataclass
class EvalQuestion:
    qid: str
    question: str
    language: str
    answerable: bool
    answers: list[str]
    evidence: list[Span] = field(default_factory=list)  # chunk-level gold (overlap counts as a hit)
    gold_doc_ids: list[str] = field(default_factory=list)  # document-level gold (benchmarks)
    multi_doc: bool = False
    split: str = ""  # "dev" (tune on it) or "test" (report it); "" when the set has no split
    kind: str = ""  # the question's class in a held-out set ("metadata", "polarity", ...)

    def is_relevant(self, chunk: Chunk) -> bool:
        """The chunk overlaps the gold evidence, or belongs to a gold document."""
        return chunk.doc_id in self.gold_doc_ids or any(chunk.overlaps(s.doc_id, s.start, s.end) for s in self.evidence)


def _find_quote(text: str, quote: str) -> tuple[int, int] | None:
    i = text.find(quote)
    if i >= 0:
        return i, i + len(quote)
    # tolerate whitespace differences between the quote and the normalised text
    pattern = r"\s+".join(re.escape(part) for part in quote.split())
    m = re.search(pattern, text)
    return (m.start(), m.end()) if m else None


def load_eval_set(path: Path, documents: dict[str, Document]) -> list[EvalQuestion]:
    """Questions with gold quotes resolved to spans; any quote not found is an error."""
    questions: list[EvalQuestion] = []
    problems: list[str] = []
    for number, r in enumerate(read_records(path), start=1):
        spans = []
        for ev in r.get("evidence", []):
            doc = documents.get(ev["doc_id"])
            if doc is None:
                problems.append(f"{r.get('id')}: document {ev['doc_id']!r} is not in the index")
                continue
            found = _find_quote(doc.text, ev["quote"])
            if found is None:
                problems.append(f"{r.get('id')}: quote not found in {ev['doc_id']}: {ev['quote'][:60]!r}")
                continue
            spans.append(Span(ev["doc_id"], *found))
        if r.get("answerable", True) and not r.get("evidence") and not r.get("gold_doc_ids"):
            problems.append(f"{r.get('id')}: answerable but has no evidence")
        questions.append(
            EvalQuestion(
                qid=str(r.get("id", r.get("qid", number))),
                question=r["question"],
                language=r.get("language", ""),
                answerable=bool(r.get("answerable", True)),
                answers=list(r.get("answers", [])),
                evidence=spans,
                gold_doc_ids=list(r.get("gold_doc_ids", [])),
                multi_doc=bool(r.get("multi_doc", False)),
                split=str(r.get("split", "")),
                kind=str(r.get("class", "")),
            )
        )
    if problems:
        raise InputError(f"eval set {path} is invalid:\n  " + "\n  ".join(problems))
    return questions


def load_benchmark_queries(path: Path) -> list[EvalQuestion]:
    """FacQA-style queries.jsonl: {"qid", "question", "answers", "gold_doc_ids", "answerable"}."""
    return [
        EvalQuestion(
            qid=r["qid"],
            question=r["question"],
            language="id",
            answerable=bool(r.get("answerable", True)),
            answers=r.get("answers", []),
            gold_doc_ids=r.get("gold_doc_ids", []),
        )
        for r in read_records(path)
    ]


def answer_benchmark(
    queries: list[EvalQuestion], sample: Path, lookalikes: Path | None, split: str | None
) -> list[EvalQuestion]:
    """A benchmark's answer set: the questions a sample file names for each split (JSON
    {"dev": [qid, ...], "test": [...]}), then the unanswerable look-alikes made from them (JSONL
    {"id", "question", "from_qid", "split", "edit"}), kept to ``split`` when given."""
    try:
        splits = json.loads(sample.read_text(encoding="utf-8"))
        by_split = {name: list(splits[name]) for name in ("dev", "test")}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{sample} is not a sample file with 'dev' and 'test' question ids ({e})") from e
    by_id = {q.qid: q for q in queries}
    missing = [qid for ids in by_split.values() for qid in ids if qid not in by_id]
    if missing:
        raise InputError(f"{sample} names {len(missing)} questions the benchmark lacks, e.g. {missing[:3]}")
    chosen = [
        dataclasses.replace(by_id[qid], split=name, kind="original")
        for name, ids in by_split.items()
        if split in (None, name)
        for qid in ids
    ]
    for r in read_records(lookalikes) if lookalikes else ():
        if split in (None, r.get("split")):
            chosen.append(
                EvalQuestion(
                    qid=str(r["id"]),
                    question=r["question"],
                    language="id",
                    answerable=False,
                    answers=[],
                    split=str(r.get("split", "")),
                    kind=f"lookalike:{r.get('edit', '')}",
                )
            )
    return chosen
