"""Parse [n] markers in a model's reply and check that each cited passage supports its sentence.

A sentence is supported by a passage when every number in it appears in the passage, most of its
names appear there (fuzzy, so "Russia" finds "Rusia"), and either enough of its key words appear or
the two are close in the embedder's (cross-lingual) space. Numbers the question itself contains,
and capitalised words the question writes in lower case, are not claims of the answer (a model
restating "as Deputy Foreign Minister" in English over Indonesian passages adds nothing to check), so
they count as found; a name the question brings ("What did Trump say ...") must be in the passage.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher

from rag.bm25 import _ENGLISH_STOPWORDS, indonesian_stopwords

_MARKER = re.compile(r"\s?\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_ANY_BRACKET_NUMBER = re.compile(r"\[\s*[^\[\]]{0,20}?\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"\w+")
_NAME = re.compile(r"(?<![\w])([A-Z][\w\-]+)")


@dataclass(frozen=True)
class Sentence:
    text: str  # without markers
    markers: tuple[int, ...]  # cited passage numbers, in order, without duplicates


@dataclass(frozen=True)
class GroundingThresholds:
    """Calibrated on the answers of the default local model to eval/questions.jsonl (docs/ANSWERS.md)."""

    min_word_overlap: float = 0.5  # share of the sentence's key words found in the passage
    min_similarity: float = 0.86  # cosine that alone supports a sentence without lexical overlap
    min_anchored_similarity: float = 0.80  # cosine enough when the sentence's names/numbers matched
    min_name_overlap: float = 0.6
    fuzzy_name_ratio: float = 0.75


def split_answer(text: str) -> list[Sentence]:
    """Sentences of an answer with the [n] markers each carries.

    Markers that open a sentence (a model writing "Paris. [1] The ...") belong to the previous one.
    """
    from rag.chunking import split_sentences

    text = text.strip()
    sentences: list[Sentence] = []
    for span in split_sentences(text):
        raw = text[span.start : span.end]
        leading = re.match(r"^(\s*\[\d+(?:\s*[,;]\s*\d+)*\])+", raw)
        if leading and sentences:
            extra = _numbers_in(leading.group(0))
            prev = sentences[-1]
            sentences[-1] = Sentence(prev.text, _unique(prev.markers + extra))
            raw = raw[leading.end() :]
        markers = _numbers_in(" ".join(m.group(0) for m in _MARKER.finditer(raw)))
        body = _MARKER.sub("", raw).strip()
        body = re.sub(r"\s+([.,;:!?])", r"\1", body)
        if body:
            sentences.append(Sentence(body, _unique(markers)))
    return sentences


def _numbers_in(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text))


def _unique(values: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(values))


def strip_stray_brackets(text: str) -> str:
    """Remove bracketed things that look like markers but are not valid ones ("[a]", "[ ]")."""
    return _ANY_BRACKET_NUMBER.sub("", text)


def _digits(number: str) -> str:
    return re.sub(r"[.,]", "", number)


def _numbers(text: str) -> list[str]:
    # "17, 600" and "17 600" are how small models sometimes write 17,600
    text = re.sub(r"(?<=\d)[,.]?\s(?=\d{3}\b)", "", text)
    return [_digits(n) for n in _NUMBER.findall(text)]


def _stopwords() -> frozenset[str]:
    return indonesian_stopwords() | _ENGLISH_STOPWORDS


def key_words(text: str) -> list[str]:
    stop = _stopwords()
    return [w for w in (m.lower() for m in _WORD.findall(text)) if len(w) > 2 and w not in stop and not w.isdigit()]


def names(text: str) -> list[str]:
    """Capitalised words that are not the first word of the sentence."""
    found = []
    for m in _NAME.finditer(text):
        if m.start() == 0:
            continue
        word = m.group(1).lower()
        if word not in _stopwords():
            found.append(word)
    return found


def overlap(words: list[str], vocabulary: set[str], ratio: float) -> float | None:
    """Share of ``words`` found (fuzzily) in ``vocabulary``; None when there are no words."""
    if not words:
        return None
    return sum(_fuzzy_in(w, vocabulary, ratio) for w in words) / len(words)


def vocabulary_of(texts: list[str]) -> set[str]:
    return {w.lower() for t in texts for w in _WORD.findall(t)}


def _fuzzy_in(word: str, vocabulary: set[str], ratio: float) -> bool:
    if word in vocabulary:
        return True
    return any(
        abs(len(candidate) - len(word)) <= 3
        and candidate[:1] == word[:1]
        and SequenceMatcher(None, word, candidate).ratio() >= ratio
        for candidate in vocabulary
    )


@dataclass(frozen=True)
class Support:
    supported: bool
    numbers_ok: bool
    name_overlap: float
    word_overlap: float
    similarity: float
    reason: str


def check_support(
    sentence: str,
    passages: list[str],
    similarity: Callable[[str, int], float],
    passage_ids: list[int],
    thresholds: GroundingThresholds | None = None,
    question: str = "",
) -> Support:
    """Does the union of ``passages`` support ``sentence``, written to answer ``question``?
    ``similarity(sentence, i)`` is the embedder cosine between the sentence and passage
    ``passage_ids[i]``."""
    thresholds = thresholds or GroundingThresholds()
    joined = " ".join(passages)
    passage_numbers = set(_numbers(joined))
    numbers = _numbers(sentence)
    numbers_ok = all(n in passage_numbers or n in _numbers(question) for n in numbers)
    vocabulary = {w.lower() for w in _WORD.findall(joined)}
    # words the question writes in lower case: a model capitalising them ("Deputy Foreign Minister")
    # makes no new name; a name the question itself brings must still be found in the passage
    asked = {w for w in re.findall(r"[\w\-]+", question) if w.islower()}  # split as names() splits
    sentence_names = names(sentence)
    in_passage = [_fuzzy_in(n, vocabulary, thresholds.fuzzy_name_ratio) for n in sentence_names]
    found = sum(hit or n in asked for n, hit in zip(sentence_names, in_passage, strict=True))
    name_overlap = found / len(sentence_names) if sentence_names else 1.0
    words = key_words(sentence)
    word_overlap = (sum(_fuzzy_in(w, vocabulary, 0.85) for w in words) / len(words)) if words else 0.0
    sim = max((similarity(sentence, pid) for pid in passage_ids), default=0.0)
    if not numbers_ok:
        return Support(False, False, name_overlap, word_overlap, sim, "a number in the sentence is not in the passage")
    if name_overlap < thresholds.min_name_overlap:
        return Support(False, True, name_overlap, word_overlap, sim, "names in the sentence are not in the passage")
    # anchored: the passage itself holds a number or a name of the sentence (not only the question)
    anchored = any(n in passage_numbers for n in numbers) or any(in_passage)
    if (
        word_overlap >= thresholds.min_word_overlap
        or sim >= thresholds.min_similarity
        or (anchored and sim >= thresholds.min_anchored_similarity)
    ):
        return Support(True, True, name_overlap, word_overlap, sim, "")
    return Support(False, True, name_overlap, word_overlap, sim, "the passage does not say this")
