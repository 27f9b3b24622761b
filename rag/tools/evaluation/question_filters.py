"""Automatic filters for generated questions: a question is kept only when it passes every filter
that applies to its kind, checked in the order of FILTERS (the first failure is the reason it was
dropped, so the counts per filter add up to the questions dropped).

- format: the model's reply has a "Question:" line (and, for an answerable question, an "Answer:" line)
- copy: the question is not a copy of the passage (no long run of the passage's words)
- answer_span: the short answer is found in the passage, copied (case and spacing aside), is short and
  is more than stop words ("Sementara itu" answers nothing)
- gives_away: the answer is not written in the question itself
- standalone: the question can be understood alone: no "this article", "teks ini", "tersebut", no bare
  "he", and an answerable question names someone or something (a name or a number), so that it points
  at one passage of a whole corpus ("Who is the director general?" does not)
- language: the question is in the language asked for
- names: a look-alike mentions a person, place or organisation of its document
- duplicate: the same question (case and punctuation aside) was not kept already
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.core.text import names, stopwords, words
from rag.steps.language import detect_language

FILTERS = ("format", "copy", "answer_span", "gives_away", "standalone", "language", "names", "duplicate")
ANSWERABLE_FILTERS = tuple(f for f in FILTERS if f != "names")
LOOKALIKE_FILTERS = tuple(f for f in FILTERS if f not in ("answer_span", "gives_away"))

_LINE = re.compile(r"^[\W_]*(question|pertanyaan|answer|jawaban)[\W_]*:\s*(.*?)\s*$", re.IGNORECASE)
_TRIM = " \t\"'“”‘’`*"
# A question that points at a text the reader does not have (English and Indonesian).
_REFERS_TO_TEXT = re.compile(
    r"\b(?:(?:this|these|that|the|above|given|following)\s+(?:article|articles|passage|text|paragraph|excerpt|"
    r"extract|snippet|news\s+item)|(?:mentioned|stated|described|given)\s+above|"
    r"(?:artikel|teks|paragraf|bacaan|wacana|kutipan|cuplikan|naskah|tulisan|berita|bagian)\s+"
    r"(?:ini|itu|tersebut|di\s+atas)|tersebut|di\s+atas)\b",
    re.IGNORECASE,
)
_NAME_RUN = re.compile(r"(?<![\w-])[A-Z][\w-]*(?:\s+[A-Z][\w-]*)*")
_SENTENCE_START = re.compile(r"(?:[.!?…][\"'”’)\]]*\s+|\n\s*)$")
_PRONOUNS = frozenset({"he", "she", "him", "his", "her", "they", "them", "their", "ia", "dia", "beliau", "mereka"})


@dataclass(frozen=True)
class FilterParams:
    copy_run_words: int = 8  # a run of this many passage words in the question makes it a copy ...
    copy_share: float = 0.75  # ... or a run covering this share of the question's words (when >= 4)
    max_answer_words: int = 12
    min_question_words: int = 3
    max_question_words: int = 40


@dataclass(frozen=True)
class Reply:
    """The model's reply, read: the question and (answerable) the short answer; "" when missing."""

    question: str
    answer: str


def parse_reply(text: str) -> Reply:
    """The first "Question:" and "Answer:" lines (also "Pertanyaan:"/"Jawaban:", Markdown bold aside);
    without a "Question:" label, the first line that ends with a question mark."""
    found: dict[str, str] = {}
    unlabelled = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            key = "question" if m.group(1).lower() in ("question", "pertanyaan") else "answer"
            found.setdefault(key, m.group(2).strip(_TRIM))
        elif line.strip(_TRIM).endswith("?"):
            unlabelled.append(line.strip(_TRIM))
    answer = found.get("answer", "").rstrip(".").strip(_TRIM)
    return Reply(found.get("question") or next(iter(unlabelled), ""), answer)


def longest_common_run(a: list[str], b: list[str]) -> int:
    """The length of the longest run of consecutive words shared by ``a`` and ``b``."""
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def is_copy(question: str, passage: str, params: FilterParams) -> bool:
    q = words(question)
    run = longest_common_run(q, words(passage))
    return run >= params.copy_run_words or (run >= 4 and run >= params.copy_share * len(q))


def find_span(passage: str, answer: str) -> tuple[int, int] | None:
    """Where ``answer`` is in ``passage`` as whole words (never part of a longer word), ignoring case
    and runs of white space; None when it is not."""
    if not answer.strip():
        return None
    pattern = r"\s+".join(re.escape(part) for part in answer.split())
    m = re.search(rf"(?<!\w){pattern}(?!\w)", passage, re.IGNORECASE)
    return (m.start(), m.end()) if m else None


def gives_away(question: str, answer: str) -> bool:
    """The answer's words appear, in order, in the question."""
    a, q = " ".join(words(answer)), " ".join(words(question))
    return bool(a) and re.search(rf"(?<!\w){re.escape(a)}(?!\w)", q) is not None


def not_standalone(question: str, *, specific: bool = False) -> str:
    """What makes the question unreadable alone ("" when nothing): a reference to the text, a pronoun
    with no name in the question to stand for, or, with ``specific``, neither a name nor a number."""
    m = _REFERS_TO_TEXT.search(question)
    if m:
        return m.group(0)
    named = bool(names(question)) or any(w.isdigit() for w in words(question))
    pronoun = next((w for w in words(question) if w in _PRONOUNS), "")
    if pronoun and not named:
        return pronoun
    return "no name or number" if specific and not named else ""


def question_key(question: str) -> str:
    return " ".join(words(question))


def name_phrases(text: str) -> list[str]:
    """Runs of capitalised words that do not open a sentence (people, places, organisations), most
    frequent first (then in order of appearance); stop words alone are not names."""
    stop = stopwords()
    counts: dict[str, int] = {}
    for m in _NAME_RUN.finditer(text):
        phrase = m.group(0)
        opens_sentence = m.start() == 0 or _SENTENCE_START.search(text[max(0, m.start() - 4) : m.start()])
        if opens_sentence and " " not in phrase:
            continue  # one capitalised word opening a sentence is any word
        if all(w in stop for w in words(phrase)):
            continue
        counts[phrase] = counts.get(phrase, 0) + 1
    return sorted(counts, key=lambda p: -counts[p])


@dataclass(frozen=True)
class Candidate:
    """One generated question to judge. ``names`` are the document's names (lower case) a look-alike
    must mention; ``answer`` is "" for a look-alike."""

    question: str
    answer: str
    language: str
    passage: str
    answerable: bool
    names: frozenset[str] = frozenset()


def first_failure(c: Candidate, seen: set[str], params: FilterParams) -> str | None:
    """The first filter ``c`` fails (None when it passes all); ``seen`` holds the questions kept so far."""
    for name in ANSWERABLE_FILTERS if c.answerable else LOOKALIKE_FILTERS:
        if not _passes(name, c, seen, params):
            return name
    return None


def _passes(name: str, c: Candidate, seen: set[str], params: FilterParams) -> bool:
    if name == "format":
        n = len(words(c.question))
        return params.min_question_words <= n <= params.max_question_words and (bool(c.answer) or not c.answerable)
    if name == "copy":
        return not is_copy(c.question, c.passage, params)
    if name == "answer_span":
        found = words(c.answer)
        meaningful = any(w not in stopwords() for w in found)
        return meaningful and len(found) <= params.max_answer_words and find_span(c.passage, c.answer) is not None
    if name == "gives_away":
        return not gives_away(c.question, c.answer)
    if name == "standalone":
        return not not_standalone(c.question, specific=c.answerable)
    if name == "language":
        return detect_language(c.question, fallback="") == c.language
    if name == "names":
        return bool(set(words(c.question)) & c.names)
    if name == "duplicate":
        return question_key(c.question) not in seen
    raise ValueError(f"unknown filter {name!r}; filters are {', '.join(FILTERS)}")
