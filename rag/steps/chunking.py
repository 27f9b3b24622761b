"""Sentence- and paragraph-aware chunking, sized in the embedder's own tokens.

Every chunk is an exact slice of its document: ``doc.text[chunk.start:chunk.end] == chunk.text``.
Consecutive chunks of a paragraph overlap by whole sentences.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rag.core.types import Chunk, Document

# Words after which a period does not end a sentence (titles, initials, common abbreviations).
_ABBREVIATIONS = {
    "st",
    "dr",
    "mr",
    "mrs",
    "ms",
    "prof",
    "no",
    "jl",
    "dll",
    "dsb",
    "dkk",
    "tsb",
    "yth",
    "sdr",
    "bpk",
    "ir",
    "drs",
    "h",
    "hj",
    "kh",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "u.s",
    "a.s",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "agu",
    "aug",
    "sep",
    "sept",
    "okt",
    "oct",
    "nov",
    "des",
    "dec",
}
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+)")
_WORD_BEFORE = re.compile(r"([\w.]+)[.!?…]*[\"'”’)\]]*$")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    paragraph: int


def split_sentences(text: str) -> list[Span]:
    """Sentence spans (no surrounding whitespace); a newline always ends a sentence."""
    spans: list[Span] = []
    offset = 0
    for paragraph, line in enumerate(text.split("\n")):
        line_start = offset
        offset += len(line) + 1
        start = 0
        for m in _SENTENCE_END.finditer(line):
            end = m.end()
            word = _WORD_BEFORE.search(line[:end])
            token = word.group(1).lower().rstrip(".") if word else ""
            if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
                continue
            _add_span(spans, line, line_start, start, end, paragraph)
            start = end
        _add_span(spans, line, line_start, start, len(line), paragraph)
    return spans


def _add_span(spans: list[Span], line: str, line_start: int, start: int, end: int, paragraph: int) -> None:
    piece = line[start:end]
    stripped = piece.strip()
    if not stripped:
        return
    lead = len(piece) - len(piece.lstrip())
    s = line_start + start + lead
    spans.append(Span(s, s + len(stripped), paragraph))


def _split_long(text: str, span: Span, count: Callable[[str], int], max_tokens: int) -> list[Span]:
    """Cut a sentence longer than max_tokens at word boundaries."""
    pieces: list[Span] = []
    words = [(m.start() + span.start, m.end() + span.start) for m in re.finditer(r"\S+", text[span.start : span.end])]
    i = 0
    while i < len(words):
        j = i + 1
        while j < len(words) and count(text[words[i][0] : words[j][1]]) <= max_tokens:
            j += 1
        pieces.append(Span(words[i][0], words[j - 1][1], span.paragraph))
        i = j
    return pieces


def chunk_document(
    doc: Document,
    count_tokens: Callable[[str], int],
    *,
    max_tokens: int = 160,
    overlap_sentences: int = 1,
) -> list[Chunk]:
    """Pack whole sentences into chunks of at most ``max_tokens`` (as ``count_tokens`` counts them).

    A chunk ends at a paragraph boundary once it holds half its budget; the next chunk of the same
    paragraph starts with the last ``overlap_sentences`` sentences of the previous one.
    """
    text = doc.text
    spans = split_sentences(text)
    if spans and len({s.paragraph for s in spans}) == 1:
        # one paragraph that fits whole is one chunk: a single count instead of one per sentence
        start, end = spans[0].start, spans[-1].end
        if count_tokens(text[start:end]) <= max_tokens:
            return [Chunk(f"{doc.doc_id}#{start}-{end}", doc.doc_id, start, end, text[start:end], doc.title)]
    sentences: list[Span] = []
    for span in spans:
        if count_tokens(text[span.start : span.end]) > max_tokens:
            sentences.extend(_split_long(text, span, count_tokens, max_tokens))
        else:
            sentences.append(span)
    chunks: list[Chunk] = []
    current: list[Span] = []

    def fits(group: list[Span]) -> bool:
        return count_tokens(text[group[0].start : group[-1].end]) <= max_tokens

    def emit() -> None:
        start, end = current[0].start, current[-1].end
        chunks.append(
            Chunk(
                chunk_id=f"{doc.doc_id}#{start}-{end}",
                doc_id=doc.doc_id,
                start=start,
                end=end,
                text=text[start:end],
                title=doc.title,
            )
        )

    for span in sentences:
        if not current:
            current = [span]
            continue
        new_paragraph = span.paragraph != current[-1].paragraph
        half_full = count_tokens(text[current[0].start : current[-1].end]) >= max_tokens // 2
        if (new_paragraph and half_full) or not fits(current + [span]):
            emit()
            carry = current[-overlap_sentences:] if overlap_sentences and not new_paragraph else []
            while carry and not fits(carry + [span]):
                carry = carry[1:]
            # an overlap that would repeat the whole previous chunk adds nothing
            current = (carry if len(carry) < len(current) else []) + [span]
        else:
            current.append(span)
    if current:
        emit()
    return chunks
