"""The [n] markers of a model's reply: parsing them out of its sentences and putting them back."""

from __future__ import annotations

import re
from dataclasses import dataclass

_MARKER = re.compile(r"\s?\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_LEADING_MARKERS = re.compile(r"^(\s*\[\d+(?:\s*[,;]\s*\d+)*\])+")
_ANY_BRACKET_NUMBER = re.compile(r"\[\s*[^\[\]]{0,20}?\]")


@dataclass(frozen=True)
class Sentence:
    text: str  # without markers
    markers: tuple[int, ...]  # cited passage numbers, in order, without duplicates


def split_answer(text: str) -> list[Sentence]:
    """Sentences of an answer with the [n] markers each carries.

    Markers that open a sentence (a model writing "Paris. [1] The ...") belong to the previous one.
    """
    from rag.steps.chunking import split_sentences

    text = text.strip()
    sentences: list[Sentence] = []
    for span in split_sentences(text):
        raw = text[span.start : span.end]
        leading = _LEADING_MARKERS.match(raw)
        if leading and sentences:
            prev = sentences[-1]
            sentences[-1] = Sentence(prev.text, _unique(prev.markers + _numbers_in(leading.group(0))))
            raw = raw[leading.end() :]
        markers = _numbers_in(" ".join(m.group(0) for m in _MARKER.finditer(raw)))
        body = _MARKER.sub("", raw).strip()
        body = re.sub(r"\s+([.,;:!?])", r"\1", body)
        if body:
            sentences.append(Sentence(body, _unique(markers)))
    return sentences


def strip_stray_brackets(text: str) -> str:
    """Remove bracketed things that look like markers but are not valid ones ("[a]", "[ ]")."""
    return _ANY_BRACKET_NUMBER.sub("", text)


def with_markers(text: str, markers: tuple[int, ...]) -> str:
    """``text`` with its markers before the final punctuation: "X met Y [1][2]."."""
    tags = "".join(f"[{n}]" for n in markers)
    match = re.search(r"[.!?]+$", text)
    if match:
        return f"{text[: match.start()]} {tags}{match.group(0)}"
    return f"{text} {tags}"


def _numbers_in(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text))


def _unique(values: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(values))
