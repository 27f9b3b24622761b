"""Checks on a user's question before anything expensive runs."""

from __future__ import annotations

from rag.core.errors import InputError
from rag.core.unicode_text import clean_line


def clean_question(text: str, max_chars: int) -> str:
    """The question as one line of clean text (the corpus's character rules, rag.core.unicode_text),
    with single spaces.

    Raises InputError for an empty question or one longer than ``max_chars`` (after cleaning).
    """
    if not isinstance(text, str):
        raise InputError("the question must be text")
    cleaned = clean_line(text)
    if not cleaned:
        raise InputError("the question is empty; type a question about the articles")
    if len(cleaned) > max_chars:
        raise InputError(
            f"the question is {len(cleaned)} characters long; the limit is {max_chars}. Ask a shorter question"
        )
    if not any(ch.isalnum() for ch in cleaned):
        raise InputError("the question has no letters or digits; type a question about the articles")
    return cleaned
