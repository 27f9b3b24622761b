"""Plain-text rendering for the terminal: the passages found, the checked answer, skipped files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rag.core.types import Answer, Hit

if TYPE_CHECKING:
    from rag.steps.answer.answerer import Prepared
    from rag.steps.corpus import Skipped

SNIPPET_CHARS = 160


def _passage_line(n: int, hit: Hit) -> str:
    c = hit.chunk
    snippet = " ".join(c.text.split())
    if len(snippet) > SNIPPET_CHARS:
        snippet = snippet[: SNIPPET_CHARS - 1] + "…"
    return f"[{n}] {c.title or c.doc_id} ({c.doc_id} {c.start}-{c.end}): {snippet}"


def evidence_plain_text(prepared: Prepared) -> str:
    """The passages retrieved for a question, listed before the model writes anything."""
    if prepared.gate.passed:
        hits: Sequence[Hit] = prepared.shown
        head = f"Reading {len(hits)} passage{'s' if len(hits) != 1 else ''}:"
    else:
        hits = prepared.retrieval.hits[:3]
        head = "No passage is close enough to answer; the closest:"
    return "\n".join([head, *(_passage_line(n, h) for n, h in enumerate(hits, 1))]) + "\n--"


def answer_plain_text(answer: Answer, *, passages_listed: bool = False) -> str:
    """The checked answer and its citations; with ``passages_listed`` (they were printed before the
    answer) a decline does not list the closest passages again."""
    lines = []
    if answer.declined:
        lines.append(answer.text)
        if not passages_listed:
            for hit in answer.hits[:3]:
                lines.append(f"  - {hit.chunk.title}: {' '.join(hit.chunk.text.split())[:200]}")
        return "\n".join(lines)
    lines.append("--")
    lines.append(answer.text)
    for c in answer.citations:
        lines.append(f"[{c.n}] {c.chunk.title} ({c.chunk.doc_id} {c.chunk.start}-{c.chunk.end})")
    if answer.dropped_markers or answer.dropped_sentences:
        lines.append(
            f"(removed: {len(answer.dropped_markers)} bad markers, {len(answer.dropped_sentences)} unsupported sentences)"
        )
    return "\n".join(lines)


def skipped_plain_text(skipped: Sequence[Skipped], *, check: bool) -> str:
    """The files (and .jsonl lines) that are not in the index, each with its reason."""
    files = {s.source.rsplit(":", 1)[0] if s.source.rsplit(":", 1)[-1].isdigit() else s.source for s in skipped}
    verb = "would not be indexed" if check else "not indexed"
    head = (
        f"{len(skipped)} skipped ({verb}) in {len(files)} file{'s' if len(files) != 1 else ''}: "
        "damaged, unsupported or duplicate; fix or remove them"
    )
    return "\n".join([head, *(f"  skipped {s.source}: {s.reason}" for s in skipped)])
