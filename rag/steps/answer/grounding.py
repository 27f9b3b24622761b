"""Does each sentence of a reply say what the passage it cites says? Keep what is supported.

Only what a sentence adds to the question is checked: the question's own words, names and numbers
are its premise, not claims of the answer (a model restating "as Deputy Foreign Minister" in English
over Indonesian passages adds nothing to check; whether the cited articles know the question's names
at all is answers_question.foreign_names' job). A sentence is supported by a passage when every new
number appears in the passage, most of its new names appear there (fuzzy, so "Russia" finds
"Rusia"), and either enough of its new key words appear or the two are close in the embedder's
(cross-lingual) space: the passage as a whole, or one of the sentences it shows (the Answerer's
``similarity``; a claim is usually one sentence of a long passage). In its passage's own language,
closeness alone supports only a sentence whose new numbers the passage holds ("berumur 59 tahun" over
"Sonthi (59)"): one that adds words, none of which the passage has, is a paraphrase the embedder
cannot tell from an invention (measured: every
such sentence accepted on the dev questions was wrong). A sentence that adds nothing to the question
(no new word, name or number; words that only say where a claim comes from, "reported", "according to
the article", do not count) is not supported: it restates the question, it does not answer it.

A sentence citing the wrong passage is re-pointed to the shown passage that supports it; an
unsupported sentence keeps its longest supported opening clauses, or is dropped; so is a sentence
whose supporting clause is negated when the sentence is not (answers_question.polarity_flipped).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from rag.core.text import REPORTING_WORDS, fuzzy_in, key_words, names, numbers_in, vocabulary_of
from rag.steps.answer.answers_question import Asked, asked_kind, polarity_answered, polarity_flipped
from rag.steps.answer.citations import split_answer, strip_stray_brackets

# similarity(sentence, n): embedder cosine between a sentence and shown passage n (1-based), the closest of
# the passage's own vector and those of its shown sentences
Similarity = Callable[[str, int], float]


@dataclass(frozen=True)
class GroundingThresholds:
    """Calibrated on the answers of the default local model to eval/questions.jsonl (docs/EVALUATION.md)."""

    min_word_overlap: float = 0.5  # share of the sentence's key words found in the passage
    min_similarity: float = 0.86  # cosine that alone supports a sentence without lexical overlap
    min_anchored_similarity: float = 0.80  # cosine enough when the sentence's names/numbers matched
    min_name_overlap: float = 0.6
    fuzzy_name_ratio: float = 0.75
    min_salvaged_words: int = 3  # an opening cut from an unsupported sentence keeps this many key words
    similarity_across_languages_only: bool = True  # a same-language sentence needs its words in the passage


@dataclass(frozen=True)
class Support:
    supported: bool
    numbers_ok: bool
    name_overlap: float
    word_overlap: float
    similarity: float
    reason: str


@dataclass(frozen=True)
class Grounded:
    """The reply's supported sentences, each with the markers that support it, and what was removed."""

    kept: tuple[tuple[str, tuple[int, ...]], ...]
    dropped_markers: tuple[str, ...]  # [n] pointing at no shown passage
    dropped_sentences: tuple[str, ...]  # unsupported sentences or their unsupported ends


def ground(
    raw: str,
    passages: Sequence[str],
    similarity: Similarity,
    question: str,
    t: GroundingThresholds,
    same_language: Sequence[bool] = (),
    context: Sequence[str] = (),
) -> Grounded:
    """Check every sentence of ``raw`` against the shown ``passages`` (numbered from 1);
    ``same_language[n - 1]``: passage n is written in the reply's language (unknown: not);
    ``context``: every passage retrieved for the question, shown or not (default: the shown ones),
    which must know the names the question brings, however few passages the model was shown."""
    context = tuple(context) or tuple(passages)
    kept: list[tuple[str, tuple[int, ...]]] = []
    dropped_markers: list[str] = []
    dropped_sentences: list[str] = []
    for sentence in split_answer(raw):
        valid = tuple(n for n in sentence.markers if 1 <= n <= len(passages))
        dropped_markers.extend(f"[{n}]" for n in sentence.markers if n not in valid)
        text = strip_stray_brackets(sentence.text).strip()
        if not text:
            continue

        def supporting(candidate: str, markers: tuple[int, ...] = valid) -> tuple[int, ...]:
            return supporting_markers(candidate, markers, passages, similarity, question, t, same_language, context)

        text, cited, dropped = supported_part(text, supporting, t.min_salvaged_words)
        if cited and any(polarity_flipped(text, passages[n - 1]) for n in cited):
            cited, dropped = (), text  # its passage says the opposite
        if dropped:
            dropped_sentences.append(dropped)
        if cited:
            kept.append((text, cited))
    return Grounded(tuple(kept), tuple(dropped_markers), tuple(dropped_sentences))


def supporting_markers(
    text: str,
    markers: tuple[int, ...],
    passages: Sequence[str],
    similarity: Similarity,
    question: str,
    t: GroundingThresholds,
    same_language: Sequence[bool],
    context: Sequence[str],
) -> tuple[int, ...]:
    """The markers to keep for a sentence: its own when they support it, else the one shown
    passage that does (the model cited the wrong number), else nothing (the sentence goes);
    ``context`` as in ``ground``."""

    def in_language(ids: Sequence[int]) -> bool:
        return bool(same_language) and all(same_language[n - 1] for n in ids)

    if markers:
        support = check_support(
            text,
            [passages[n - 1] for n in markers],
            similarity,
            list(markers),
            t,
            question,
            context,
            same_language=in_language(markers),
        )
        if support.supported:
            return markers
    best: tuple[float, int] | None = None
    for n in range(1, len(passages) + 1):
        if n in markers:
            continue
        support = check_support(
            text, [passages[n - 1]], similarity, [n], t, question, context, same_language=in_language([n])
        )
        if support.supported and (best is None or support.similarity > best[0]):
            best = (support.similarity, n)
    return (best[1],) if best else ()


def supported_part(
    text: str, supporting: Callable[[str], tuple[int, ...]], min_words: int
) -> tuple[str, tuple[int, ...], str]:
    """(kept text, its markers, dropped text) for one sentence of the answer: the whole sentence
    when a shown passage supports it, else its longest supported opening clauses ("X met Y on 15
    September, 2014" -> "X met Y on 15 September" when the year is in no passage), else nothing.
    An opening must keep ``min_words`` key words."""
    cited = supporting(text)
    if cited:
        return text, cited, ""
    for cut in reversed([m.start() for m in re.finditer(r",\s", text)]):
        opening = text[:cut].rstrip() + "."
        if len(key_words(opening)) < min_words:
            break
        cited = supporting(opening)
        if cited:
            return opening, cited, text[cut + 1 :].strip()
    return text, (), text


def check_support(
    sentence: str,
    passages: list[str],
    similarity: Similarity,
    passage_ids: list[int],
    thresholds: GroundingThresholds | None = None,
    question: str = "",
    context: Sequence[str] = (),
    *,
    same_language: bool = False,
) -> Support:
    """Does the union of ``passages`` support ``sentence``, written to answer ``question``?
    ``similarity(sentence, i)`` is the embedder cosine between the sentence and passage
    ``passage_ids[i]``; ``context``: every passage shown with them; ``same_language``: the passages
    are written in the sentence's language."""
    thresholds = thresholds or GroundingThresholds()
    joined = " ".join(passages)
    passage_numbers = set(numbers_in(joined))
    premise = _premise(question, tuple(context))
    numbers = [n for n in numbers_in(sentence) if n not in premise.numbers]
    numbers_ok = all(n in passage_numbers for n in numbers)
    vocabulary = vocabulary_of([joined])
    sentence_names = names(sentence)
    in_passage = {n: _name_in(n, vocabulary, thresholds.fuzzy_name_ratio) for n in sentence_names}
    new_names = [n for n in sentence_names if n not in premise.words]
    # a name the question brings must be known to the evidence shown (any passage: "Russia" need not
    # be in the very chunk that names the minister); one it writes in lower case is no name at all
    shown = premise.shown | vocabulary
    given = {
        n
        for n in sentence_names
        if n not in new_names and (n in premise.lower_words or _name_in(n, shown, thresholds.fuzzy_name_ratio))
    }
    found = sum(in_passage[n] or n in given for n in sentence_names)
    name_overlap = found / len(sentence_names) if sentence_names else 1.0
    new_words = [w for w in key_words(sentence) if w not in REPORTING_WORDS and not fuzzy_in(w, premise.words, 0.85)]
    found_words = sum(fuzzy_in(w, vocabulary, 0.85) for w in new_words)
    # a yes/no answer's news can be its polarity alone ("AS belum bersedia mencabut sanksi")
    polarity = polarity_answered(sentence, question, joined)
    word_overlap = found_words / len(new_words) if new_words else float(bool(numbers or new_names or polarity))
    sim = max((similarity(sentence, pid) for pid in passage_ids), default=0.0)
    if not numbers_ok:
        return Support(False, False, name_overlap, word_overlap, sim, "a number in the sentence is not in the passage")
    if not (numbers or new_names or new_words or polarity):
        return Support(False, True, name_overlap, word_overlap, sim, "the sentence adds nothing to the question")
    if name_overlap < thresholds.min_name_overlap:
        return Support(False, True, name_overlap, word_overlap, sim, "names in the sentence are not in the passage")
    if new_names and premise.kind == Asked.WHO and not any(in_passage[n] for n in new_names):
        return Support(False, True, name_overlap, word_overlap, sim, "the name it answers with is not in the passage")
    # anchored: the passage itself holds a number or a name of the sentence
    anchored = bool(numbers) or any(in_passage.values())
    close = sim >= thresholds.min_similarity or (anchored and sim >= thresholds.min_anchored_similarity)
    if same_language and thresholds.similarity_across_languages_only and not numbers:
        close = False  # its words could have been found; closeness would pass a paraphrase of an invention
    if word_overlap >= thresholds.min_word_overlap or close:
        return Support(True, True, name_overlap, word_overlap, sim, "")
    return Support(False, True, name_overlap, word_overlap, sim, "the passage does not say this")


@dataclass(frozen=True)
class _Premise:
    """What a question and the passages shown with it bring, the same for every sentence checked."""

    words: frozenset[str]  # the question's words, lower-cased, whole ("kerry-lavrov") and split
    lower_words: frozenset[str]  # those it writes in lower case: a capitalised copy is no new name
    numbers: frozenset[str]
    kind: Asked
    shown: frozenset[str]  # every word of the passages shown


@functools.lru_cache(maxsize=16)
def _premise(question: str, context: tuple[str, ...]) -> _Premise:
    """Built once per answer: ``check_support`` runs for every sentence, shown passage and salvaged
    opening of it with the same question and passages."""
    split = re.findall(r"[\w\-]+", question)  # as names() splits ("Kerry-Lavrov")
    return _Premise(
        words=frozenset({w.lower() for w in split} | vocabulary_of([question])),
        lower_words=frozenset(w for w in split if w.islower()),
        numbers=frozenset(numbers_in(question)),
        kind=asked_kind(question),
        shown=frozenset(vocabulary_of(list(context))),
    )


def _name_in(name: str, vocabulary: AbstractSet[str], ratio: float) -> bool:
    """A name is in the vocabulary (fuzzily); "rc-135" and "kerry-lavrov" when each part is."""
    return all(fuzzy_in(part, vocabulary, ratio) for part in name.split("-") if part)
