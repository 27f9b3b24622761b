"""Words: how the product splits text into words, and which words carry no meaning of their own.

One place for this knowledge: BM25 tokenisation, language detection, the evidence gate and the
grounding check all read it from here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Set as AbstractSet
from difflib import SequenceMatcher

WORD = re.compile(r"\w+")
# a name: a capitalised word not inside another word (one group)
NAME_PATTERN = r"(?<![\w])([A-Z][\w\-]+)"
_NAME = re.compile(NAME_PATTERN)

# English function words: stop words for English questions over any corpus.
# fmt: off
ENGLISH_STOPWORDS = frozenset({
    "a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "by", "for", "with", "from", "as",
    "is", "are", "was", "were", "be", "been", "being", "do", "does", "did", "what", "which", "who", "whom",
    "whose", "when", "where", "why", "how", "that", "this", "these", "those", "it", "its", "he", "she", "they",
    "them", "his", "her", "their", "i", "you", "we", "our", "your", "my", "me", "us", "not", "no", "yes", "can",
    "could", "would", "should", "will", "shall", "may", "might", "must", "has", "have", "had", "about", "into",
    "over", "under", "after", "before", "than", "then", "there", "here", "so", "such", "any", "all", "some",
})
# fmt: on
# Words that mark a short text as Indonesian or English (function words and question words).
# fmt: off
INDONESIAN_MARKERS = frozenset({
    "yang", "dan", "di", "ke", "dari", "apa", "siapa", "kapan", "berapa", "mengapa", "kenapa", "bagaimana",
    "apakah", "dimana", "mana", "dengan", "untuk", "ini", "itu", "tidak", "bukan", "adalah", "oleh", "dalam",
    "pada", "atau", "juga", "akan", "telah", "sudah", "belum", "saja", "tentang", "menurut", "para", "sebagai",
    "karena", "tersebut", "mereka", "dia", "ia", "kami", "kita", "saya", "anda", "bisa", "dapat", "ada", "seperti",
    "antara", "bagi", "lalu", "kemudian", "jika", "kalau", "serta", "hal", "tahun", "bulan", "hari", "negara",
    "presiden", "menteri", "kata", "sebut", "siapakah", "apa-apa", "berapakah", "bagaimanakah", "mengapakah",
    "jelaskan", "sebutkan",
})
# fmt: on
# fmt: off
ENGLISH_MARKERS = frozenset({
    "the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "by", "for", "with", "from", "what", "who",
    "whom", "whose", "when", "where", "why", "how", "which", "is", "are", "was", "were", "be", "been", "did",
    "does", "do", "has", "have", "had", "will", "would", "can", "could", "should", "about", "this", "that",
    "these", "those", "it", "its", "he", "she", "they", "them", "their", "his", "her", "according", "tell",
    "explain", "list", "name", "many", "much",
})
# fmt: on

# Words that say where a claim comes from, not what it is ("Russian media reported that ...", "according to
# the article"): a sentence that adds only these to its question restates it. Sastrawi's Indonesian list
# already holds most ("mengatakan", "menurut"); these are the rest and the English ones.
# fmt: off
REPORTING_WORDS = frozenset({
    "said", "say", "says", "saying", "told", "tells", "stated", "reported", "reports", "reporting", "according",
    "noted", "added", "mentioned", "claimed", "claims", "explained", "wrote", "writes", "written", "quoted",
    "cited", "described", "article", "articles", "report", "opinion", "piece", "passage", "passages", "text",
    "dilaporkan", "melaporkan", "laporan", "menyebut", "menyebutkan", "dikutip", "mengutip", "ditulis", "menulis",
    "artikel", "berita", "opini", "tulisan",
})
# fmt: on


@functools.lru_cache(maxsize=1)
def indonesian_stopwords() -> frozenset[str]:
    """Sastrawi's Indonesian stop-word list."""
    from Sastrawi.StopWordRemover.StopWordRemoverFactory import StopWordRemoverFactory

    return frozenset(StopWordRemoverFactory().get_stop_words())


@functools.lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """Indonesian and English stop words together (the corpus and its questions mix both)."""
    return indonesian_stopwords() | ENGLISH_STOPWORDS


def words(text: str) -> list[str]:
    """Lower-case ``\\w+`` words, in order."""
    return WORD.findall(text.lower())


def vocabulary_of(texts: list[str]) -> set[str]:
    """Every lower-case word of ``texts``."""
    return {w for t in texts for w in words(t)}


def key_words(text: str) -> list[str]:
    """Words that carry meaning: longer than two letters, no stop word, no number."""
    stop = stopwords()
    return [w for w in words(text) if len(w) > 2 and w not in stop and not w.isdigit()]


def names(text: str) -> list[str]:
    """Capitalised words that are not the first word of the text, lower-cased, without stop words."""
    stop = stopwords()
    found = []
    for m in _NAME.finditer(text):
        if m.start() == 0:
            continue
        word = m.group(1).lower()
        if word not in stop:
            found.append(word)
    return found


def name_parts(text: str) -> list[str]:
    """``names(text)`` with hyphenated ones split into their parts ("Kerry-Lavrov": kerry, lavrov)."""
    return [part for name in names(text) for part in name.split("-") if part]


def overlap(words: list[str], vocabulary: set[str], ratio: float) -> float | None:
    """Share of ``words`` found (fuzzily) in ``vocabulary``; None when there are no words."""
    if not words:
        return None
    return sum(fuzzy_in(w, vocabulary, ratio) for w in words) / len(words)


def fuzzy_in(word: str, vocabulary: AbstractSet[str], ratio: float) -> bool:
    """``word`` is in ``vocabulary``, or a word of it with the same first letter is this similar."""
    if word in vocabulary:
        return True
    return any(
        abs(len(candidate) - len(word)) <= 3
        and candidate[:1] == word[:1]
        and SequenceMatcher(None, word, candidate).ratio() >= ratio
        for candidate in vocabulary
    )


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers_in(text: str) -> list[str]:
    """The numbers of ``text``, digits only: "17.600", "17,600" and "17 600" are all "17600"."""
    # "17, 600" and "17 600" are how small models sometimes write 17,600
    text = re.sub(r"(?<=\d)[,.]?\s(?=\d{3}\b)", "", text)
    return [re.sub(r"[.,]", "", n) for n in _NUMBER.findall(text)]
