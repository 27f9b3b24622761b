"""Tell Indonesian from English questions, by function words (good enough for short questions)."""

from __future__ import annotations

from rag.core.text import ENGLISH_MARKERS, INDONESIAN_MARKERS, words


def detect_language(text: str, fallback: str = "en") -> str:
    """ "id" or "en"; ``fallback`` when the text gives no evidence either way."""
    found = words(text)
    id_score = sum(w in INDONESIAN_MARKERS for w in found)
    en_score = sum(w in ENGLISH_MARKERS for w in found)
    if id_score > en_score:
        return "id"
    if en_score > id_score:
        return "en"
    return fallback
