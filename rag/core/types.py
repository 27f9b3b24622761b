"""The plain data that flows through the pipeline: Document -> Chunk -> Hit -> Answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One article, its text already normalised (NFC, whitespace, HTML stripped)."""

    doc_id: str
    text: str
    title: str
    source: str  # path or file the document came from
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A passage of a document. Invariant: ``doc.text[start:end] == text``."""

    chunk_id: str
    doc_id: str
    start: int  # character offset in the normalised document text
    end: int
    text: str
    title: str = ""

    def overlaps(self, doc_id: str, start: int, end: int) -> bool:
        """The chunk shares at least one character with ``doc_id``'s span ``start:end``."""
        return self.doc_id == doc_id and self.start < end and start < self.end

    def to_json(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "title": self.title,
            "start": self.start,
            "end": self.end,
            "text": self.text,
        }


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk. Higher score is better; rank starts at 1."""

    chunk: Chunk
    score: float
    rank: int
    method: str  # "dense", "bm25" or "hybrid"
    # per-method evidence: "dense" = cosine similarity, "bm25" = BM25 score, "*_rank" = rank there
    details: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "method": self.method,
            "details": {k: round(float(v), 6) for k, v in self.details.items()},
            **self.chunk.to_json(),
        }


@dataclass(frozen=True)
class Citation:
    """A resolved [n] marker: n is the 1-based position of the passage shown to the model."""

    n: int
    chunk: Chunk

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, **self.chunk.to_json()}


@dataclass(frozen=True)
class Answer:
    """What the product tells the user. When ``declined`` is true, ``decline_reason`` says why."""

    question: str
    text: str
    language: str
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...]  # the passages shown to the model (or the closest ones when declined)
    declined: bool
    decline_reason: str = ""
    dropped_markers: tuple[str, ...] = ()  # [n] markers removed because they pointed nowhere
    dropped_sentences: tuple[str, ...] = ()  # sentences removed by the grounding check
    standalone_question: str = ""  # the question after resolving it against the chat history
    timings: dict[str, float] = field(default_factory=dict)
    raw_text: str = ""  # the model's reply before citation checking

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "declined": self.declined,
            "decline_reason": self.decline_reason,
            "language": self.language,
            "citations": [c.to_json() for c in self.citations],
            "dropped_markers": list(self.dropped_markers),
            "dropped_sentences": list(self.dropped_sentences),
            "standalone_question": self.standalone_question,
            "hits": [h.to_json() for h in self.hits],
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
        }
