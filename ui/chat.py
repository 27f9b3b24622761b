"""One question through the page: evidence first, then the streamed answer, then the checked one.

``stream_reply`` is shared by the page and the /chat API. It yields a ``Reply`` each time something
changes: the retrieved passages (as cards, ~150 ms after the question), the question's place in the
line for the model, each token, and the final answer with its citations.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from rag.core.errors import LLMError
from rag.core.types import Answer
from rag.pipeline import Pipeline
from rag.steps.answer.answerer import EventKind
from rag.steps.conversation import HistoryTurns
from ui.checks import ChatRequest
from ui.html import answer_html, progress_html, stopped_html, user_html
from ui.runner import AnswerRun, Waiting
from ui.sources import answer_sources, evidence_html, sources_panel

SEARCHING = "Searching the articles…"
KEPT_TURNS = 20  # questions a tab keeps for follow-ups and in its sources panel (the chat keeps all)


@dataclass
class Reply:
    html: str  # the assistant's bubble
    cards: str | None  # this question's sources (None until retrieval ends)
    partial: str = ""  # the model's text so far
    answer: Answer | None = None
    evidence_ms: float | None = None  # set on the update that first carries the cards


def stream_reply(
    pipeline: Pipeline, request: ChatRequest, history: HistoryTurns, turn: int
) -> Generator[Reply, None, None]:
    pipeline.refresh_index(background=True)  # a newer index generation is picked up without waiting for it
    answerer = pipeline.answerer(mode=request.mode, k=request.k, backend=request.backend)
    documents = answerer.retriever.index.documents  # the generation this answer is read from
    run = AnswerRun(answerer, request.question, history, pipeline.generation_queue_for(request.backend))
    stage, partial, cards = SEARCHING, "", None
    with closing(run.items()) as items:
        for item in items:
            if isinstance(item, Waiting):
                yield Reply(progress_html(stage, partial, item.wait), cards, partial)
            elif item.kind == EventKind.EVIDENCE and item.prepared is not None:
                prepared = item.prepared
                passages = f"{len(prepared.shown)} passage{'s' if len(prepared.shown) != 1 else ''}"
                stage = f"Reading {passages}…" if prepared.gate.passed else "Checking the closest passages…"
                cards = evidence_html(turn, prepared, documents)
                yield Reply(progress_html(stage), cards, evidence_ms=run.evidence_ms)
            elif item.kind == EventKind.TOKEN:
                partial += item.text
                yield Reply(progress_html(stage, partial), cards, partial)
            elif item.kind == EventKind.ANSWER and item.answer is not None:
                answer = item.answer
                yield Reply(answer_html(answer, turn), answer_sources(turn, answer, documents), partial, answer)
                return
    raise LLMError("the answer chain ended without an answer")


def chat_message(role: str, html: str) -> dict[str, Any]:
    return {"role": role, "content": html}


@dataclass
class Session:
    """One browser tab: the chat as shown, the turns for follow-ups and the sources panel."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    history: list[tuple[str, str]] = field(default_factory=list)  # (question, answer text), for follow-ups
    turns: list[tuple[str, str]] = field(default_factory=list)  # (question, its cards), oldest first
    asked: int = 0  # questions asked so far: numbers the #src-<turn>-<n> anchors
    live: Reply | None = None  # the reply being written, until it is final
    live_question: str = ""

    def panel(self) -> str:
        latest = self.live.cards if self.live is not None else None
        earlier = list(reversed(self.turns))
        if latest is None and earlier:
            latest = earlier.pop(0)[1]
        return sources_panel(latest, earlier)

    def begin(self, question: str) -> int:
        self.asked += 1
        self.live, self.live_question = Reply(progress_html(SEARCHING), None), question
        self.messages += [chat_message("user", user_html(question)), chat_message("assistant", self.live.html)]
        return self.asked

    def update(self, reply: Reply, turn: int) -> bool:
        """Show ``reply`` for question ``turn``; False when that question was stopped meanwhile."""
        if self.live is None or turn != self.asked:
            return False
        self.live = reply
        self.messages[-1] = chat_message("assistant", reply.html)
        return True

    def finish(self, answer: Answer | None = None, *, bubble: str | None = None) -> None:
        """Close the live reply: with its answer, with a note in its place, or as stopped."""
        live = self.live
        if live is None:
            return
        if answer is not None:
            self.history = [*self.history, (answer.question, answer.text)][-KEPT_TURNS:]
        if bubble is None:
            bubble = stopped_html(live.partial) if answer is None else live.html
        self.messages[-1] = chat_message("assistant", bubble)
        if live.cards is not None:
            self.turns = [*self.turns, (self.live_question, live.cards)][-KEPT_TURNS:]
        self.live = None
