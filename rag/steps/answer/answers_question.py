"""Does a grounded reply answer the question it was written for?

Grounding shows that a sentence is true of its passage, not that it answers anything: a model asked
something the articles cannot answer restates the question's own people and places in a true, cited
sentence ("A and B met in C on Tuesday [1]"). The checks, all pure functions over text:

- the kind of answer: a question asks for a kind of thing (who -> a person or organisation, when -> a
  date or time, how many/much/long -> a number, where -> a place, why -> a reason); the reply must
  contain something of that kind that the question does not already contain (a who-question is not
  answered by a name written only where a place goes: "warga negara Inggris asal Libya");
- the question's own names: a question about X answered from an article that never mentions X is
  about a look-alike (the EU ambassador answered with the NATO one); in the question's own language
  every name must occur in the cited articles, across languages (Russia / Rusia) at least half;
- the question's own numbers: a question about the 1976 president, a 40 % rise or the 2004 festival,
  answered from articles that never write that number, is about another year, rise or festival (the
  model answers with the one the article has); every number of the question must occur in them (a
  year only where they write years at all);
- polarity: when the passage clause that supports a sentence is negated (tidak, bukan, belum, tanpa, tak,
  mustahil; not, no, never, without, impossible), the sentence must carry a negation too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from rag.core.text import NAME_PATTERN, fuzzy_in, key_words, name_parts, names, numbers_in, vocabulary_of, words

__all__ = ["Asked", "asked_kind", "foreign_names", "foreign_numbers", "missing_kind", "polarity_flipped"]


class Asked(StrEnum):
    WHO = "who"
    WHEN = "when"
    WHERE = "where"
    HOW_MANY = "how many"
    WHY = "why"
    OTHER = "other"  # what / which / yes-no: no kind to check


# Order matters: "berapa lama" and "in what year" are about amounts and times, not "which".
_KINDS: tuple[tuple[Asked, re.Pattern[str]], ...] = (
    (
        Asked.WHEN,
        re.compile(
            r"\b(?:kapan|bilamana|tanggal berapa|tahun berapa|bulan apa|hari apa|pukul berapa|sejak kapan|"
            r"when|what (?:date|year|day|month|time)|which (?:date|year|day|month)|in what year|since when|"
            r"since what year|on what date)\b",
            re.I,
        ),
    ),
    (
        Asked.HOW_MANY,
        re.compile(
            r"\b(?:berapa(?:kah)?|how (?:many|much|long|old|far)|what (?:number|percentage|share|amount))\b", re.I
        ),
    ),
    (
        Asked.WHERE,
        re.compile(
            r"\b(?:di ?mana(?:kah)?|ke ?mana|dari ?mana|where|(?:kota|negara|tempat|wilayah|daerah|provinsi) "
            r"(?:apa|mana)|(?:which|what) (?:city|country|place|region|town|capital))\b",
            re.I,
        ),
    ),
    (
        Asked.WHO,
        re.compile(r"\b(?:siapa(?:kah)?|who(?:m|se)?|what(?:'s| is| was| were) the names?|apa nama)\b", re.I),
    ),
    (Asked.WHY, re.compile(r"\b(?:mengapa|kenapa|why|apa (?:alasan|sebab)|for what reason)\b", re.I)),
)

_NUMBER_WORDS = frozenset(
    [
        "satu",
        "dua",
        "tiga",
        "empat",
        "lima",
        "enam",
        "tujuh",
        "delapan",
        "sembilan",
        "sepuluh",
        "sebelas",
        "belas",
        "puluh",
        "puluhan",
        "ratus",
        "ratusan",
        "ribu",
        "ribuan",
        "juta",
        "jutaan",
        "miliar",
        "triliun",
        "setengah",
        "seperempat",
        "separuh",
        "puluhan",
        "belasan",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "dozen",
        "dozens",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "hundred",
        "hundreds",
        "thousand",
        "thousands",
        "million",
        "millions",
        "billion",
        "half",
        "quarter",
    ]
)
_TIME_WORDS = frozenset(
    [
        "senin",
        "selasa",
        "rabu",
        "kamis",
        "jumat",
        "sabtu",
        "minggu",
        "januari",
        "februari",
        "maret",
        "april",
        "mei",
        "juni",
        "juli",
        "agustus",
        "september",
        "oktober",
        "november",
        "desember",
        "kemarin",
        "lalu",
        "besok",
        "pagi",
        "siang",
        "sore",
        "malam",
        "pekan",
        "minggu",
        "bulan",
        "tahun",
        "abad",
        "dekade",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "january",
        "february",
        "march",
        "may",
        "june",
        "july",
        "august",
        "october",
        "december",
        "yesterday",
        "tomorrow",
        "week",
        "weeks",
        "month",
        "months",
        "year",
        "years",
        "century",
        "decade",
        "morning",
        "evening",
        "night",
        "ago",
        "earlier",
        "later",
    ]
)
_REASON_WORDS = frozenset(
    [
        "karena",
        "sebab",
        "akibat",
        "agar",
        "supaya",
        "untuk",
        "demi",
        "lantaran",
        "sehingga",
        "because",
        "since",
        "due",
        "reason",
        "so",
        "order",
        "caused",
        "cause",
        "to",
    ]
)
_NEGATIONS = frozenset(
    [
        "tidak",
        "tak",
        "bukan",
        "belum",
        "tanpa",
        "mustahil",
        "jangan",
        "enggan",
        "menolak",
        "gagal",
        "tiada",
        "nihil",
        "not",
        "no",
        "never",
        "without",
        "impossible",
        "cannot",
        "neither",
        "nor",
        "none",
        "nothing",
        "refused",
        "rejected",
        "denied",
        "failed",
        "unable",
        "declined",
    ]
)
SAME_LANGUAGE_NAME_RATIO = 0.85  # "Kremlinolog" finds "Kremlinologist"
CROSS_LINGUAL_NAME_RATIO = 0.75  # "Russia" finds "Rusia"
MIN_CROSS_LINGUAL_NAMES_FOUND = 0.5  # translated names ("Council" / "Dewan") cannot all be found
_YEAR = re.compile(r"(?:19|20)\d\d")
_AFFIRMATIONS = frozenset(["yes", "ya", "iya", "benar", "betul"])
NEGATION_SCOPE = 3  # words after a negation that it negates ("belum bersedia mencabut ...")
_MARKERS = re.compile(r"\[\d+(?:\s*[,;]\s*\d+)*\]")
_NEGATED_CONTRACTIONS = re.compile(r"n't\b|\bcan not\b", re.I)
_CLAUSE_BREAK = re.compile(r"[,;:–—]|\b(?:tetapi|namun|sedangkan|padahal|but|while|whereas|although)\b", re.I)


def asked_kind(question: str) -> Asked:
    """The kind of answer ``question`` asks for."""
    for kind, pattern in _KINDS:
        if pattern.search(question):
            return kind
    return Asked.OTHER


def missing_kind(question: str, answer: str) -> str:
    """Why ``answer`` does not give what ``question`` asks for, or "" when it does (or the question
    asks for no particular kind of thing)."""
    kind = asked_kind(question)
    if kind == Asked.OTHER:
        return ""
    answer = _MARKERS.sub(" ", answer)
    asked_words = set(words(question))
    new_words = [w for w in words(answer) if w not in asked_words]
    new_numbers = [w for w in new_words if w.isdigit() or w in _NUMBER_WORDS]
    if kind == Asked.HOW_MANY:
        ok = bool(new_numbers)
    elif kind == Asked.WHEN:
        ok = bool(new_numbers) or any(w in _TIME_WORDS for w in new_words)
    elif kind == Asked.WHY:
        ok = any(w in _REASON_WORDS for w in words(answer))
    else:  # who / where: a name the question does not already hold (who: not a place's)
        question_names = set(names(question)) | {w for w in asked_words if len(w) > 2}
        places = _place_names(answer) if kind == Asked.WHO else set()
        ok = any(n not in question_names and n not in _TIME_WORDS and n not in places for n in names(" " + answer))
    if ok:
        return ""
    return f"a {kind.value!r} question answered without a new {_WANTED[kind]}"


def _place_names(text: str) -> set[str]:
    """The names ``text`` writes only where a place goes ("warga negara Inggris asal Libya", "in
    Moscow"): a who-question answered with where someone is from has not been answered."""
    placed: set[str] = set()
    elsewhere: set[str] = set()
    for m in _NAME_AFTER.finditer(text):
        before, name = (m.group(1) or "").lower(), m.group(2).lower()
        (placed if before in _PLACE_WORDS else elsewhere).add(name)
    return placed - elsewhere


_NAME_AFTER = re.compile(r"(?:\b(\w+)\s+)?" + NAME_PATTERN)  # a name and the word before it
# words after which a capitalised word names a place, not a person or an organisation
_PLACE_WORDS = frozenset(["di", "ke", "asal", "negara", "kota", "provinsi", "in", "at", "country", "city"])


_WANTED = {
    Asked.WHO: "name",
    Asked.WHERE: "place",
    Asked.WHEN: "date or time",
    Asked.HOW_MANY: "number",
    Asked.WHY: "reason",
}


def polarity_flipped(sentence: str, passage: str) -> bool:
    """The passage clause closest to ``sentence`` negates something the sentence states (a word of the
    sentence within NEGATION_SCOPE words after a negation), and the sentence carries no negation."""
    if _negated(sentence):
        return False
    clause = words(_closest_clause(sentence, passage))
    stated = set(key_words(sentence))
    return any(w in _NEGATIONS and stated & set(clause[i + 1 : i + 1 + NEGATION_SCOPE]) for i, w in enumerate(clause))


def polarity_answered(sentence: str, question: str, passage: str) -> bool:
    """``sentence`` answers a yes/no question by its polarity alone, and the passage clause closest to
    it (lexically) agrees: "AS belum bersedia ..." over a negated clause, "Yes, ..." over one that is
    not. A "Yes" needs a clause that shares words beyond the sentence's names: a clause in another
    language shares only names ("Kerry", "Paris") and says nothing of its polarity by lacking a
    negation, so a bare "Yes" across languages is no answer; a negated one found by names does say it."""
    if _negated(sentence) and not _negated(question):
        clause = _closest_clause(sentence, passage)
        return bool(clause) and _negated(clause)
    if not _AFFIRMATIONS & set(words(sentence)):
        return False
    clause = _closest_clause(sentence, passage, ignore=frozenset(name_parts(sentence)))
    return bool(clause) and not _negated(clause)


def _negated(text: str) -> bool:
    return any(w in _NEGATIONS for w in words(text)) or bool(_NEGATED_CONTRACTIONS.search(text))


def _closest_clause(sentence: str, passage: str, ignore: frozenset[str] = frozenset()) -> str:
    """The clause of ``passage`` that is most made of the sentence's key words (sharing at least two
    that are not in ``ignore``)."""
    wanted = set(key_words(sentence)) - ignore
    best, best_score = "", 0.0
    for clause in _CLAUSE_BREAK.split(passage):
        own = set(key_words(clause))
        shared = len(wanted & own)
        if shared >= 2 and shared / len(own) > best_score:
            best, best_score = clause, shared / len(own)
    return best


def foreign_names(question: str, same_language: bool, article_texts: Sequence[str]) -> str:
    """Why the cited articles cannot be about what ``question`` names, or "" when they can."""
    asked = [part for part in name_parts(question) if part not in _TIME_WORDS]
    if not asked:
        return ""
    vocabulary = vocabulary_of(list(article_texts))
    ratio = SAME_LANGUAGE_NAME_RATIO if same_language else CROSS_LINGUAL_NAME_RATIO
    missing = [n for n in asked if not fuzzy_in(n, vocabulary, ratio)]
    need = 1.0 if same_language else MIN_CROSS_LINGUAL_NAMES_FOUND
    if (len(asked) - len(missing)) / len(asked) >= need:
        return ""
    return _never_mentioned(missing)


def foreign_numbers(question: str, article_texts: Sequence[str]) -> str:
    """Why the cited articles cannot be about the numbers ``question`` names, or "" when they can.
    A year counts as missing only where the articles write other years: an article that dates
    nothing ("Agustus lalu") neither confirms nor contradicts the question's year."""
    written = set(numbers_in(" ".join(article_texts)))
    dated = any(_YEAR.fullmatch(n) for n in written)
    missing = [n for n in dict.fromkeys(numbers_in(question)) if n not in written and (dated or not _YEAR.fullmatch(n))]
    return _never_mentioned(missing) if missing else ""


def _never_mentioned(missing: Sequence[str]) -> str:
    """The reason both checks decline with: what the question names that the cited articles lack."""
    return f"the cited articles never mention {', '.join(missing[:3])}"
