"""What the page and its API accept: every input is checked here, at the edge, and a bad one becomes
a ``Rejected`` with a code and the product's message (never a traceback, never a silent default)."""

from __future__ import annotations

import html
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rag.core.choices import LLMBackend, Mode
from rag.core.errors import InputError
from rag.steps.conversation import HistoryTurns
from rag.steps.question import clean_question

log = logging.getLogger(__name__)

MIN_K, MAX_K = 1, 50
MAX_HISTORY_MESSAGES = 200
MAX_HISTORY_CHARS = 200_000
HISTORY_TURNS_USED = 10  # the follow-up resolution reads the last turns only
_TAG = re.compile(r"<[^>]*>")


class Rejected(InputError):
    """A request the product refuses; ``code`` names the input at fault."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


@dataclass(frozen=True)
class ChatRequest:
    question: str  # cleaned: one line, invisible characters removed
    mode: Mode
    k: int
    backend: LLMBackend


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_question(value: Any, max_chars: int) -> str:
    if not isinstance(value, str):
        raise Rejected("bad_question", f"the question must be text, got {type(value).__name__}")
    try:
        return clean_question(value, max_chars)
    except InputError as e:
        raise Rejected("bad_question", str(e)) from None


def parse_k(value: Any) -> int:
    fix = f"k is the number of passages: a whole number from {MIN_K} to {MAX_K}"
    if value is None:
        raise Rejected("bad_k", f"k is missing; {fix}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected("bad_k", f"k={_shown(value)} is not a number; {fix}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise Rejected("bad_k", f"k={_shown(value)} is not a whole number; {fix}")
    if not MIN_K <= value <= MAX_K:
        raise Rejected("bad_k", f"k={_shown(value)} is out of range; {fix}")
    return int(value)


def parse_choice(value: Any, name: str, valid: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in valid:
        raise Rejected(f"bad_{name}", f"{name}={_shown(value)} is not valid; choose one of {', '.join(valid)}")
    return value


def parse_request(
    question: Any, mode: Any, k: Any, llm: Any, *, max_question_chars: int, llm_choices: Sequence[str]
) -> ChatRequest:
    """The checked request; ``Rejected`` names the first bad input (question, mode, k, llm, in order)."""
    cleaned = parse_question(question, max_question_chars)
    chosen_mode = Mode(parse_choice(mode, "mode", Mode.values()))
    chosen_k = parse_k(k)
    backend = LLMBackend(parse_choice(llm, "llm", llm_choices))
    return ChatRequest(cleaned, chosen_mode, chosen_k, backend)


def _message_text(message: Any, where: str) -> tuple[str, str]:
    fix = 'each message is {"role": "user" or "assistant", "content": text}, as /chat returns them'
    if not isinstance(message, dict):
        raise Rejected("bad_history", f"history {where} is {type(message).__name__}, not a message; {fix}")
    role, content = message.get("role"), message.get("content")
    if role not in ("user", "assistant"):
        raise Rejected("bad_history", f"history {where} has role={_shown(role)}; {fix}")
    if isinstance(content, list):  # gradio's form: [{"type": "text", "text": ...}, ...]
        parts = [p.get("text") if isinstance(p, dict) else None for p in content]
        if not all(isinstance(p, str) for p in parts):
            raise Rejected("bad_history", f"history {where} has content that is not text; {fix}")
        content = " ".join(p for p in parts if isinstance(p, str))
    if not isinstance(content, str):
        raise Rejected("bad_history", f"history {where} has content of type {type(content).__name__}; {fix}")
    return role, html.unescape(_TAG.sub(" ", content))  # the page's replies are HTML: keep their text


def parse_history(value: Any) -> HistoryTurns:
    """(question, answer) pairs from a chat as /chat returns it (or plain {role, content} messages)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise Rejected("bad_history", f"history must be a list of messages (or null), got {type(value).__name__}")
    if len(value) > MAX_HISTORY_MESSAGES:
        raise Rejected("bad_history", f"history has {len(value)} messages; the limit is {MAX_HISTORY_MESSAGES}")
    messages = [_message_text(m, f"message {i + 1}") for i, m in enumerate(value)]
    if sum(len(text) for _, text in messages) > MAX_HISTORY_CHARS:
        raise Rejected("bad_history", f"history is longer than {MAX_HISTORY_CHARS:,} characters")
    turns: list[tuple[str, str]] = []
    question: str | None = None
    for role, text in messages:
        if role == "user":
            question = text
        elif question is not None:
            turns.append((" ".join(question.split()), " ".join(text.split())))
            question = None
    return tuple(turns[-HISTORY_TURNS_USED:])


def log_rejection(endpoint: str, error: Rejected) -> None:
    """Expected rejections are routine: one INFO line, no traceback."""
    log.info("%s rejected (%s): %s", endpoint, error.code, error.message)


def gradio_error(error: Rejected):
    import gradio as gr

    return gr.Error(html.escape(error.message, quote=False), title=error.code, print_exception=False)
