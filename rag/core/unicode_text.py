"""Which characters the product keeps: one rule for every text that enters it (articles, titles, ids,
metadata, questions), applied once at the boundary so that everything after it sees clean text.

- a lone surrogate (U+D800-U+DFFF) becomes U+FFFD; a high+low pair becomes the character it encodes;
- invisible format characters are removed: zero-width (U+200B-U+200F), bidi embeddings and isolates
  (U+202A-U+202E, U+2066-U+2069), word joiner and invisible operators (U+2060-U+2064), the byte-order
  mark U+FEFF and the soft hyphen U+00AD;
- control characters (Unicode category Cc) are removed, except tab and newline;
- a run of more than ``MAX_COMBINING_RUN`` combining marks is cut to that many (Unicode's stream-safe
  bound, UAX #15): longer runs are only ever noise, and NFC sorts each run in quadratic time;
- the result is NFC.

Every step is linear in the length of the text.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

REPLACEMENT_CHARACTER = "\ufffd"
MAX_COMBINING_RUN = 30

_SURROGATE = re.compile("[\ud800-\udfff]")
# Cc minus \t and \n, then the invisible format characters listed in the module docstring.
REMOVED_CHARACTERS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
# Characters that end a line when a text must be one line (a question, a title).
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_WHITESPACE = re.compile(r"\s+")
# Only a run of this many non-ASCII characters can hold an over-long run of combining marks.
_LONG_NON_ASCII = re.compile(rf"[^\x00-\x7f]{{{MAX_COMBINING_RUN + 1},}}")


def clean_characters(text: str) -> str:
    """``text`` under the rules of this module (see its docstring). Offsets are those of the result."""
    if not text.isascii():
        if _SURROGATE.search(text):
            # UTF-16 joins well-formed pairs and replaces each lone half with U+FFFD
            text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        text = unicodedata.normalize("NFC", _cut_combining_runs(REMOVED_CHARACTERS.sub("", text)))
        # again after NFC, which can lengthen a run (U+0F73 becomes two marks): the result is stable
        return _cut_combining_runs(text)
    return REMOVED_CHARACTERS.sub("", text)


def clean_line(text: str) -> str:
    """``clean_characters`` on one line: every line break and run of white space becomes one space."""
    return _WHITESPACE.sub(" ", clean_characters(_LINE_BREAKS.sub(" ", text))).strip()


def has_removed_characters(text: str) -> bool:
    """Whether ``text`` still holds a character that ``clean_characters`` removes or replaces."""
    return bool(_SURROGATE.search(text) or REMOVED_CHARACTERS.search(text))


def _cut_combining_runs(text: str) -> str:
    """Runs of combining marks cut to MAX_COMBINING_RUN. Cutting the end off a run keeps NFC text NFC:
    whether a mark composes depends only on what comes before it."""
    if not _LONG_NON_ASCII.search(text):
        return text
    return _combining_runs().sub(lambda m: m.group()[:MAX_COMBINING_RUN], text)


@functools.cache
def _combining_runs() -> re.Pattern[str]:
    """Runs of more than MAX_COMBINING_RUN characters whose decomposition starts with a combining mark.

    Built on first use from this Python's Unicode tables (about 0.2 s, once): only texts with a long
    run of non-ASCII characters need it.
    """
    marks = []
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if unicodedata.combining(ch) or (
            unicodedata.decomposition(ch) and unicodedata.combining(unicodedata.normalize("NFD", ch)[0])
        ):
            marks.append(cp)
    ranges = []
    start = prev = marks[0]
    for cp in marks[1:] + [-1]:
        if cp != prev + 1:
            ranges.append(re.escape(chr(start)) + ("-" + re.escape(chr(prev)) if prev > start else ""))
            start = cp
        prev = cp
    return re.compile(f"[{''.join(ranges)}]{{{MAX_COMBINING_RUN + 1},}}")
