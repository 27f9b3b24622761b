"""Checks on a user's question before anything expensive runs."""

from __future__ import annotations

import re
import unicodedata

from rag.core.errors import InputError

_WS = re.compile(r"\s+")


def clean_question(text: str, max_chars: int) -> str:
    """The question without control characters and with single spaces.

    Raises InputError for an empty question or one longer than ``max_chars`` (after cleaning).
    """
    if not isinstance(text, str):
        raise InputError("the question must be text")
    kept = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)
    cleaned = _WS.sub(" ", unicodedata.normalize("NFC", kept)).strip()
    if not cleaned:
        raise InputError("the question is empty; type a question about the articles")
    if len(cleaned) > max_chars:
        raise InputError(
            f"the question is {len(cleaned)} characters long; the limit is {max_chars}. Ask a shorter question"
        )
    if not any(ch.isalnum() for ch in cleaned):
        raise InputError("the question has no letters or digits; type a question about the articles")
    return cleaned
