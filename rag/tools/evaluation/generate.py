"""Generated test sets: questions written by the chat model from passages of the user's own corpus.

N passages are sampled, spread over the documents (a fixed seed); for each, in each language asked
for, the model writes a question the passage answers with a short answer copied from it
(prompts/generate.question.*.txt); for a share of the passages it also writes an unanswerable
look-alike about the document's people and places (prompts/generate.lookalike.*.txt). Only questions
that pass every automatic filter (rag/tools/evaluation/question_filters.py) are kept, written in the
eval-set format with the passage as gold evidence, so that `rag eval --set FILE` runs on them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.core.errors import ConfigError, LLMError
from rag.core.text import stopwords, words
from rag.core.types import Chunk, Document
from rag.steps.chunking import chunk_document
from rag.steps.prompting import LANGUAGE_NAMES, read_templates
from rag.tools.evaluation.question_filters import (
    FILTERS,
    Candidate,
    FilterParams,
    find_span,
    first_failure,
    name_phrases,
    parse_reply,
    question_key,
)

log = logging.getLogger(__name__)

# template file -> the variables it must use, exactly (as rag/steps/prompting.py checks the answer prompts)
TEMPLATES: dict[str, frozenset[str]] = {
    "generate.question.system.txt": frozenset(),
    "generate.question.user.txt": frozenset({"passage", "language_name"}),
    "generate.lookalike.system.txt": frozenset(),
    "generate.lookalike.user.txt": frozenset({"passage", "names", "language_name"}),
}
NAMES_SHOWN = 6  # names of the document given to the model for a look-alike
GIVE_UP_AFTER_FAILURES = 3  # consecutive failed model calls end the run


@dataclass(frozen=True)
class GenerateParams:
    passages: int  # how many passages to sample
    languages: tuple[str, ...] = ("id", "en")  # one question per passage in each
    seed: int = 0
    unanswerable_share: float = 0.2  # share of the sampled passages that also get a look-alike (per language)
    min_passage_words: int = 12  # shorter passages hold too little to ask about
    filters: FilterParams = field(default_factory=FilterParams)

    def validated(self) -> GenerateParams:
        if self.passages < 1:
            raise ConfigError(f"--generate {self.passages}: give the number of passages to sample (1 or more)")
        unknown = [lang for lang in self.languages if lang not in LANGUAGE_NAMES]
        if unknown or not self.languages:
            raise ConfigError(f"languages {list(self.languages)}: choose from {', '.join(LANGUAGE_NAMES)}")
        if not 0 <= self.unanswerable_share <= 1:
            raise ConfigError(f"unanswerable share {self.unanswerable_share} must be between 0 and 1 (e.g. 0.2)")
        return self


@dataclass(frozen=True)
class GenerationPrompts:
    texts: dict[str, str]
    version: str  # sha256 over the template files

    def messages(self, kind: str, **values: str) -> list[Any]:
        from langchain_core.messages import HumanMessage, SystemMessage

        return [
            SystemMessage(self.texts[f"generate.{kind}.system.txt"]),
            HumanMessage(self.texts[f"generate.{kind}.user.txt"].format(**values)),
        ]


def load_generation_prompts(folder: Path) -> GenerationPrompts:
    return GenerationPrompts(*read_templates(folder, TEMPLATES))


def passages_of(
    documents: Sequence[Document],
    count_tokens: Callable[[str], int],
    *,
    chunk_tokens: int,
    overlap_sentences: int,
    count_many: Callable[[Sequence[str]], list[int]] | None = None,
) -> list[Chunk]:
    """The documents cut into passages as ingest cuts them (the same chunker, counters and sizes)."""
    return [
        c
        for doc in documents
        for c in chunk_document(
            doc, count_tokens, max_tokens=chunk_tokens, overlap_sentences=overlap_sentences, count_many=count_many
        )
    ]


def sample_passages(chunks: Sequence[Chunk], n: int, seed: int, min_words: int) -> list[Chunk]:
    """``n`` passages spread over the documents: the documents in a seeded random order, one unused
    passage of each in turn (a seeded random one) until ``n`` are taken or none is left. Passages of
    fewer than ``min_words`` words are never taken. The same chunks and seed give the same sample."""
    rng = random.Random(seed)
    by_doc: dict[str, list[Chunk]] = {}
    for c in chunks:
        if len(words(c.text)) >= min_words:
            by_doc.setdefault(c.doc_id, []).append(c)
    order = sorted(by_doc)
    rng.shuffle(order)
    for doc_id in order:
        rng.shuffle(by_doc[doc_id])
    picked: list[Chunk] = []
    while len(picked) < n and any(by_doc.values()):
        for doc_id in order:
            if by_doc[doc_id] and len(picked) < n:
                picked.append(by_doc[doc_id].pop())
    return picked


@dataclass(frozen=True)
class Task:
    number: int  # the passage's place in the sample, from 1
    chunk: Chunk
    language: str
    answerable: bool  # False: an unanswerable look-alike

    @property
    def qid(self) -> str:
        return f"gen-{self.number:04d}-{self.language}{'' if self.answerable else '-x'}"


def plan_tasks(passages: Sequence[Chunk], params: GenerateParams) -> list[Task]:
    """Each passage in each language; a seeded share of the passages also get a look-alike. Passage by
    passage, so that a run stopped early has every kind in proportion."""
    rng = random.Random(params.seed + 1)
    lookalikes = set(rng.sample(range(len(passages)), round(params.unanswerable_share * len(passages))))
    tasks = []
    for i, chunk in enumerate(passages):
        tasks += [Task(i + 1, chunk, lang, True) for lang in params.languages]
        if i in lookalikes:
            tasks += [Task(i + 1, chunk, lang, False) for lang in params.languages]
    return tasks


@dataclass(frozen=True)
class Outcome:
    task: Task
    reply: str  # the model's raw reply
    question: str
    answer: str  # the span of the passage that answers it, as written there ("" for a look-alike)
    rejected_by: str | None  # the first filter it failed; "llm_error" when the model failed; None: kept
    seconds: float

    def record(self) -> dict[str, Any]:
        """The eval-set record (eval/questions.jsonl's format) of a kept question."""
        t = self.task
        evidence = [{"doc_id": t.chunk.doc_id, "quote": t.chunk.text}] if t.answerable else []
        return {
            "id": t.qid,
            "question": self.question,
            "language": t.language,
            "answerable": t.answerable,
            "answers": [self.answer] if t.answerable else [],
            "evidence": evidence,
            "class": "generated" if t.answerable else "lookalike",
            "passage_id": t.chunk.chunk_id,
        }


def document_names(doc: Document | None, chunk: Chunk) -> list[str]:
    """The names to build a look-alike on: those of the passage first, then the document's."""
    found = name_phrases(chunk.text) + name_phrases(doc.text if doc else "")
    return list(dict.fromkeys(found))


def run_tasks(
    tasks: Sequence[Task],
    documents: dict[str, Document],
    chat: Any,
    prompts: GenerationPrompts,
    filters: FilterParams,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[Outcome]:
    """One model call per task, judged by the filters as it comes. A failed call is an outcome
    rejected by "llm_error" (and logged); GIVE_UP_AFTER_FAILURES in a row raise the last error."""
    seen: set[str] = set()
    failures = 0
    for i, task in enumerate(tasks, start=1):
        started = time.perf_counter()
        try:
            reply: str | None = str(chat.invoke(_messages(task, documents, prompts)).text)
            failures = 0
        except LLMError as e:
            failures += 1
            log.warning("generation %s failed: %s", task.qid, e)
            if failures >= GIVE_UP_AFTER_FAILURES:
                raise
            reply = None
        seconds = time.perf_counter() - started
        if reply is None:
            yield Outcome(task, "", "", "", "llm_error", seconds)
        else:
            yield _judge(task, reply, documents, seen, filters, seconds)
        if progress:
            progress(i, len(tasks))


def _messages(task: Task, documents: dict[str, Document], prompts: GenerationPrompts) -> list[Any]:
    passage = " ".join(task.chunk.text.split())
    language_name = LANGUAGE_NAMES[task.language]
    if task.answerable:
        return prompts.messages("question", passage=passage, language_name=language_name)
    known = document_names(documents.get(task.chunk.doc_id), task.chunk)
    shown = ", ".join(known[:NAMES_SHOWN]) or "(none)"
    return prompts.messages("lookalike", passage=passage, names=shown, language_name=language_name)


def _judge(
    task: Task, reply: str, documents: dict[str, Document], seen: set[str], filters: FilterParams, seconds: float
) -> Outcome:
    """The reply read and filtered; a kept question's answer is the passage's own span."""
    parsed = parse_reply(reply)
    answer = parsed.answer if task.answerable else ""
    stop = stopwords()
    known = document_names(documents.get(task.chunk.doc_id), task.chunk)
    name_words = frozenset(w for n in known for w in words(n) if w not in stop)
    candidate = Candidate(parsed.question, answer, task.language, task.chunk.text, task.answerable, name_words)
    failed = first_failure(candidate, seen, filters)
    if failed is None:
        seen.add(question_key(parsed.question))
        span = find_span(task.chunk.text, answer)
        answer = task.chunk.text[span[0] : span[1]] if span else answer
    return Outcome(task, reply, parsed.question, answer, failed, seconds)


@dataclass
class Funnel:
    """How many questions each filter dropped, per kind and language."""

    rows: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        key = ("answerable" if outcome.task.answerable else "unanswerable", outcome.task.language)
        row = self.rows.setdefault(key, {"generated": 0, "llm_error": 0, **dict.fromkeys(FILTERS, 0), "kept": 0})
        row["generated"] += 1
        row[outcome.rejected_by or "kept"] += 1

    def table(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = [
            {"kind": kind, "lang": lang, **counts} for (kind, lang), counts in sorted(self.rows.items())
        ]
        if self.rows:
            names = next(iter(self.rows.values()))
            rows.append({"kind": "all", "lang": "all", **{n: sum(c[n] for c in self.rows.values()) for n in names}})
        return rows


def funnel_markdown(table: list[dict[str, Any]]) -> str:
    """The funnel as a Markdown table: generated, dropped by each filter in order, kept (and its share)."""
    if not table:
        return "(nothing generated)"
    columns = [c for c in table[0] if c not in ("kind", "lang")]
    lines = [
        "| kind | lang | " + " | ".join(columns) + " | kept share |",
        "|---|---|" + "---|" * (len(columns) + 1),
    ]
    for row in table:
        share = f"{100 * row['kept'] / row['generated']:.0f} %" if row["generated"] else "-"
        lines.append(f"| {row['kind']} | {row['lang']} | " + " | ".join(str(row[c]) for c in columns) + f" | {share} |")
    return "\n".join(lines)
