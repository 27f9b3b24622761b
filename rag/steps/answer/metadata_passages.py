"""Questions about an article itself ("Who wrote ...?", "Dari kota mana ... dilaporkan?") are answered
from the article's own metadata line: the line that states it is shown to the model first, as a passage
it can cite. An authorship question about an article that names no author declines instead of letting
the model name someone quoted in it, and so does a question about when an article was published when
it states no date (the model would give the date of an event it reports); a reply to an authorship
question that names someone other than the stated author is replaced by the stated author, cited to
the line that states it (metadata_answer)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag.core.text import fuzzy_in, vocabulary_of
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
    if Field.DATE in fields and not any(_states(h, Field.DATE) for h in found):
        # the model would answer with the date of an event in the text
        return MetadataPassages((), "the retrieved articles do not say when they were published")
    return MetadataPassages(tuple(found))


def metadata_answer(question: str, shown: Sequence[Hit], reply: str, articles: Articles) -> tuple[str, int] | None:
    """(the stated author, the number of the shown line that states it) when ``question`` asks who
    wrote the article and ``reply`` names someone else; None otherwise."""
    if Field.AUTHOR not in asked_fields(question) or asked_kind(question) != Asked.WHO:
        return None
    for n, hit in enumerate(shown, start=1):
        if not _states(hit, Field.AUTHOR):
            continue
        span = articles.metadata(hit.chunk.doc_id).get(Field.AUTHOR)
        author = span.value if span else ""
        parts = vocabulary_of([author])
        if not parts:
            return None  # the line names no one ("Hubungi penulis di ..."): the reply stands or falls on its own
        said = vocabulary_of([reply])
        if all(fuzzy_in(part, said, 0.85) for part in parts):
            return None
        return author, n
    return None


def _states(hit: Hit, field: Field) -> bool:
    """``hit`` is the metadata line (made by metadata_passages) that states ``field``."""
    return hit.method == "metadata" and hit.chunk.chunk_id.endswith(f"#{field.value}")
