"""Follow-up questions in a chat ("Siapa dia?", "And when was that?") resolved against the history:
a follow-up is searched for and read with the previous exchange; a question that stands alone is
searched for and read without any history, as the first question of a chat would be."""

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


def previous_exchange(history: HistoryTurns) -> tuple[str, str]:
    """The last question and its answer as a follow-up is read against: the answer's citation marks
    removed (they number another turn's passages) and the answer cut to PREVIOUS_ANSWER_CHARS."""
    question, answer = history[-1]
    return question, re.sub(r"\s*\[\d+\]", "", answer)[:PREVIOUS_ANSWER_CHARS].strip()


def recalled_turns(question: str, history: HistoryTurns) -> tuple[tuple[str, str], ...]:
    """The earlier exchanges that go with ``question``: the previous one for a follow-up, none for a
    question that stands alone, which is then read as if it were the first of the chat (the same
    prompt, and no history tokens for the model to read before its first token)."""
    if not history or not is_followup(question):
        return ()
    return (previous_exchange(history),)


def standalone_question(question: str, history: HistoryTurns) -> str:
    """The retrieval query: a follow-up carries the previous question and answer with it."""
    turns = recalled_turns(question, history)
    if not turns:
        return question
    previous_question, previous_answer = turns[0]
    return f"{previous_question} {previous_answer} {question}"
