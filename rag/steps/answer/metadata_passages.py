"""Questions about an article itself ("Who wrote ...?", "Dari kota mana ... dilaporkan?") are answered
from the article's own metadata line: the line that states it is shown to the model first, as a passage
it can cite. An authorship question about an article that names no author declines instead of letting
the model name someone quoted in it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag.core.types import Chunk, Hit
from rag.steps.answer.answers_question import Asked, asked_kind
from rag.steps.metadata import Articles, Field, asked_fields

ARTICLES_CONSIDERED = 1  # the article of the best-ranked hit is the one the question is about


@dataclass(frozen=True)
class MetadataPassages:
    hits: tuple[Hit, ...]  # metadata lines to show first
    missing: str = ""  # why the question cannot be answered from metadata ("" when it can, or is not about it)


def metadata_passages(question: str, hits: Sequence[Hit], articles: Articles) -> MetadataPassages:
    fields = asked_fields(question)
    if not fields:
        return MetadataPassages(())
    candidates = list(dict.fromkeys(h.chunk.doc_id for h in hits))[:ARTICLES_CONSIDERED]
    found: list[Hit] = []
    for doc_id in candidates:
        known = articles.metadata(doc_id)
        title = next((h.chunk.title for h in hits if h.chunk.doc_id == doc_id), "")
        for field in fields:
            span = known.get(field)
            if span is not None:
                chunk = Chunk(f"{doc_id}#{field.value}", doc_id, span.start, span.end, span.text, title)
                found.append(Hit(chunk, 1.0, len(found) + 1, "metadata", {}))
        if found:
            break  # the best-ranked article that states it
    if not found and Field.AUTHOR in fields and asked_kind(question) == Asked.WHO:
        return MetadataPassages((), "the retrieved articles do not say who wrote them")
    return MetadataPassages(tuple(found))
