"""The page's API, for programs (gradio_client; "Use via API" at the foot of the page).

/ask answers one question with the Answer's JSON (timings gain ``evidence_ms``: from the question to
its passages), or ``{"error": {"code", "message"}}``. /chat streams ("", messages, sources HTML) like
the page: its first update already carries the retrieved passages, its last the checked answer; a bad
input raises a gradio ``Error`` whose title is the code (gradio_client raises ``AppError``).
"""

from __future__ import annotations

import html
import inspect
import logging
from collections.abc import Callable, Generator
from contextlib import closing
from typing import Any

from rag.core.errors import RagError
from rag.pipeline import Pipeline
from ui.chat import Reply, Session, chat_message, stream_reply
from ui.checks import ChatRequest, Rejected, gradio_error, log_rejection, parse_history

log = logging.getLogger(__name__)


def _final(replies: Generator[Reply, None, None]) -> Reply:
    evidence_ms = None
    with closing(replies):
        for reply in replies:
            evidence_ms = reply.evidence_ms if reply.evidence_ms is not None else evidence_ms
            if reply.answer is not None:
                reply.evidence_ms = evidence_ms
                return reply
    raise RagError("the answer chain ended without an answer")


def endpoints(
    pipeline: Pipeline, check: Callable[[Any, Any, Any, Any], ChatRequest], *, default_llm: str
) -> tuple[Callable[..., dict], Callable[..., Generator[tuple[str, list[dict], str], None, None]]]:
    """The /ask and /chat functions; gradio reads their parameters (and defaults) for the API."""
    import gradio as gr

    settings = pipeline.settings

    def ask(question: Any, mode: Any = settings.mode.value, k: Any = settings.k) -> dict:
        """Answer one question: the answer, whether it declined, its citations and the passages, with
        timings (evidence_ms: question to passages). A bad input gives {"error": {"code", "message"}}."""
        try:
            request = check(question, mode, k, settings.llm_backend.value)
        except Rejected as e:
            log_rejection("/ask", e)
            return e.to_json()
        try:
            reply = _final(stream_reply(pipeline, request, (), 1))
        except RagError as e:
            log.error("/ask failed: %s", e)
            return {"error": {"code": "answer_failed", "message": str(e)}}
        assert reply.answer is not None
        out = reply.answer.to_json()
        if reply.evidence_ms is not None:
            out["timings"]["evidence_ms"] = round(reply.evidence_ms, 1)
        return out

    def chat(
        message: Any,
        history: Any = None,
        mode: Any = settings.mode.value,
        k: Any = settings.k,
        llm: Any = default_llm,
    ) -> Generator[tuple[str, list[dict], str], None, None]:
        """The page's chat: streams ("", messages, sources HTML); the first update carries the
        retrieved passages (cards with #src-<turn>-<n> ids), the last the checked answer."""
        try:
            request = check(message, mode, k, llm)
            turns = parse_history(history)
        except Rejected as e:
            log_rejection("/chat", e)
            raise gradio_error(e) from None
        session = Session(history=list(turns), asked=len(turns))
        session.messages = [
            chat_message(role, html.escape(text))
            for pair in turns
            for role, text in zip(("user", "assistant"), pair, strict=True)
        ]
        turn = session.begin(request.question)
        try:
            with closing(stream_reply(pipeline, request, session.history, turn)) as replies:
                for reply in replies:
                    session.update(reply, turn)
                    if reply.cards is None:
                        continue  # the first update an API client sees already carries the passages
                    yield "", _gradio_messages(session.messages), reply.cards
        except RagError as e:
            log.error("/chat failed: %s", e)
            raise gr.Error(html.escape(str(e), quote=False), title="answer_failed", print_exception=False) from None

    # gradio derives the API's outputs from the return annotation: three, like the page's event
    chat.__signature__ = inspect.signature(chat).replace(return_annotation=tuple[str, list[dict], str])  # type: ignore[attr-defined]
    return ask, chat


def _gradio_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages in the form gradio's Chatbot sends them, so API clients read one shape."""
    return [
        {"role": m["role"], "metadata": None, "content": [{"type": "text", "text": m["content"]}], "options": None}
        for m in messages
    ]
