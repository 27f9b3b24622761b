"""Plain-text rendering of an answer for the terminal."""

from __future__ import annotations

from rag.core.types import Answer


def answer_plain_text(answer: Answer) -> str:
    lines = []
    if answer.declined:
        lines.append(answer.text)
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
