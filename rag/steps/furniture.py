"""Page furniture: the lines a site puts on every page (cookie notices, "Klik di sini", share and
subscribe prompts) are not part of an article, and an answer must never be built from them.

Two general rules, applied to whole lines of the normalised text before anything is chunked (so
offsets stay exact in the text that remains): a line that is a known consent, navigation or sharing
prompt, and a line repeated word for word in at least REPEATED_IN_DOCUMENTS documents of one source.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

REPEATED_IN_DOCUMENTS = 3  # a line on this many pages of one source is the site's, not an article's
MAX_PROMPT_CHARS = 160  # a prompt is short; a longer line that mentions cookies is article text
_PROMPTS = (
    # cookie and consent notices
    re.compile(
        r"^(?=.*\b(?:kuki|cookies?)\b)(?=.*\b(?:menggunakan|gunakan|terima|setuju|kebijakan|use|uses|accept|agree|policy)\b)",
        re.IGNORECASE,
    ),
    # navigation and sharing prompts opening a line
    re.compile(
        r"^(?:klik di ?sini|click here|baca juga|read (?:more|also)|selengkapnya|bagikan|share (?:this|on)|"
        r"berlangganan|subscribe|ikuti kami|follow us|unduh aplikasi|download (?:the|our) app)\b",
        re.IGNORECASE,
    ),
    # a line that is only a label
    re.compile(r"^(?:iklan|advertisement|advertorial|all rights reserved)\.?$", re.IGNORECASE),
)


def is_prompt(line: str) -> bool:
    """A short line that is a consent, navigation, sharing or advertising prompt."""
    stripped = line.strip()
    return 0 < len(stripped) <= MAX_PROMPT_CHARS and any(p.search(stripped) for p in _PROMPTS)


def repeated_lines(texts: Iterable[str]) -> frozenset[str]:
    """Lines (of three words or more) found in at least REPEATED_IN_DOCUMENTS of ``texts``."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update({line.strip() for line in text.split("\n") if len(line.split()) >= 3})
    return frozenset(line for line, n in counts.items() if n >= REPEATED_IN_DOCUMENTS)


def strip_furniture(text: str, repeated: frozenset[str] = frozenset()) -> tuple[str, tuple[str, ...]]:
    """``text`` without its furniture lines (blank lines around them collapse) and the lines removed."""
    kept: list[str] = []
    removed: list[str] = []
    for line in text.split("\n"):
        if is_prompt(line) or line.strip() in repeated:
            removed.append(line.strip())
        else:
            kept.append(line)
    if not removed:
        return text, ()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip(), tuple(removed)
