"""Follow-up questions in a chat ("Siapa dia?", "And when was that?") resolved against the history
before retrieval."""

from __future__ import annotations

import re
from collections.abc import Sequence

HistoryTurns = Sequence[tuple[str, str]]  # (question, answer text) pairs, oldest first

# Words that point back into the conversation.
_FOLLOWUP_WORDS = frozenset(
    [
        "dia",
        "ia",
        "beliau",
        "mereka",
        "itu",
        "tersebut",
        "sana",
        "tadi",
        "he",
        "she",
        "him",
        "her",
        "they",
        "them",
        "it",
        "its",
        "that",
        "this",
        "those",
        "there",
        "then",
    ]
)
_WORD = re.compile(r"\w+")
PREVIOUS_ANSWER_CHARS = 300


def is_followup(question: str) -> bool:
    words = [w.lower() for w in _WORD.findall(question)]
    return len(words) <= 2 or any(w in _FOLLOWUP_WORDS for w in words)


def standalone_question(question: str, history: HistoryTurns) -> str:
    """The retrieval query: a follow-up carries the previous question and answer with it."""
    if not history or not is_followup(question):
        return question
    previous_question, previous_answer = history[-1]
    previous_answer = re.sub(r"\[\d+\]", "", previous_answer)[:PREVIOUS_ANSWER_CHARS]
    return f"{previous_question} {previous_answer} {question}"
