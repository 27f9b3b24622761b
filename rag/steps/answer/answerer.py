"""The answer chain: retrieve -> evidence gate -> focused passages -> prompt -> chat model -> grounding.

Each stage is a function over plain data (gate.py, grounding.py, focus.py, prompting.py); this module
only puts them in order and reports progress as typed events: the evidence first, then the tokens as
the model writes them, then the checked Answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableLambda

from rag.core.choices import Mode
from rag.core.errors import LLMError
from rag.core.types import Answer, Citation, Hit
from rag.steps.answer.answers_question import foreign_names, foreign_numbers, missing_kind
from rag.steps.answer.citations import with_markers
from rag.steps.answer.gate import GateDecision, GateParams, evidence_gate
from rag.steps.answer.grounding import Grounded, GroundingThresholds, ground
from rag.steps.answer.metadata_passages import metadata_answer, metadata_passages
from rag.steps.conversation import HistoryTurns, recalled_turns, standalone_question
from rag.steps.embedder import Embedder
from rag.steps.focus import SentenceVectors, close_to_best, focus_hits, merge_overlapping
from rag.steps.language import detect_language
from rag.steps.metadata import Articles
from rag.steps.prompting import Prompts, fit_budget, user_message
from rag.steps.question import clean_question
from rag.steps.retrieve import Retrieval, Retriever

log = logging.getLogger(__name__)

GATE_DECLINE = "evidence"  # decline_reason prefix of an answer declined by the gate, before the model


@dataclass(frozen=True)
class AnswerParams:
    k: int
    mode: Mode
    context_budget_tokens: int  # passages sent to the model, in the model's own tokens
    passage_tokens: int  # one shown passage at most; 0 = whole chunks
    passage_margin: float  # shown: passages within this cosine of the closest one
    max_question_chars: int
    gate: GateParams
    grounding: GroundingThresholds = GroundingThresholds()


@dataclass(frozen=True)
class Prepared:
    """Everything decided before the model is called."""

    question: str
    language: str
    standalone: str  # the retrieval query (a follow-up carries the previous turn)
    retrieval: Retrieval
    shown: tuple[Hit, ...]  # the passages given to the model, numbered from 1
    gate: GateDecision
    messages: tuple[BaseMessage, ...]
    started: float  # perf_counter() when the question arrived
    retrieve_ms: float


class EventKind(StrEnum):
    EVIDENCE = "evidence"  # retrieval is done: `prepared` holds the passages
    TOKEN = "token"  # `text` is the model's next piece of reply
    ANSWER = "answer"  # `answer` is the checked Answer; always the last event


@dataclass(frozen=True)
class Event:
    kind: EventKind
    text: str = ""
    prepared: Prepared | None = None
    answer: Answer | None = None


class Answerer:
    def __init__(
        self,
        retriever: Retriever,
        embedder: Embedder,
        chat: BaseChatModel,
        prompts: Prompts,
        count_tokens: Callable[[str], int],
        params: AnswerParams,
        articles: Articles | None = None,
        sentences: SentenceVectors | None = None,
    ) -> None:
        """``articles``: the indexed articles (their text and own metadata) that hits come from;
        ``sentences``: the passages' sentence vectors, shared and kept between questions."""
        self.articles = articles if articles is not None else Articles({})
        self.sentences = sentences if sentences is not None else SentenceVectors(embedder)  # an empty one is falsy
        self.retriever = retriever
        self.embedder = embedder
        self.chat = chat
        self.prompts = prompts
        self.count_tokens = count_tokens
        self.params = params
        self._system = prompts.render("system.txt")

    def prepare(self, question: str, history: HistoryTurns = ()) -> Prepared:
        started = time.perf_counter()
        p = self.params
        question = clean_question(question, p.max_question_chars)
        language = detect_language(question, fallback=detect_language(history[-1][0]) if history else "en")
        standalone = standalone_question(question, history)
        retrieval = self.retriever.search(standalone, p.k, p.mode, vector=self.embedder.embed_query(standalone))
        gate = evidence_gate(standalone, language, retrieval.hits, retrieval.evidence, p.gate)
        hits = list(retrieval.hits)
        if gate.passed and retrieval.query_vector is not None:  # a declined question shows the closest passages whole
            hits = close_to_best(hits, p.passage_margin)
            hits = focus_hits(hits, retrieval.query_vector, self.sentences, self.count_tokens, p.passage_tokens)
            hits = merge_overlapping(hits)
        about = metadata_passages(question, retrieval.hits, self.articles)
        if gate.passed and about.missing:
            gate = GateDecision(False, gate.evidence, about.missing)
        shown = fit_budget([*about.hits, *hits], self.count_tokens, p.context_budget_tokens)
        user = user_message(self.prompts, question, language, shown, recalled_turns(question, history))
        messages = (SystemMessage(self._system), HumanMessage(user))
        retrieve_ms = (time.perf_counter() - started) * 1000
        return Prepared(question, language, standalone, retrieval, shown, gate, messages, started, retrieve_ms)

    def generate(self, prepared: Prepared) -> Iterator[str]:
        try:
            for chunk in self.chat.stream(list(prepared.messages)):
                if chunk.text:
                    yield chunk.text
        except LLMError:
            raise
        except Exception as e:  # network and server errors of any client library
            raise LLMError(f"the chat model failed: {type(e).__name__}: {e}") from e

    def finalize(self, prepared: Prepared, raw: str, first_token_ms: float | None = None) -> Answer:
        """The checked Answer for the model's reply ``raw``."""
        vectors = _shown_vectors(prepared, self.embedder, self.sentences)
        sentence_vectors: dict[str, np.ndarray] = {}

        def similarity(sentence: str, n: int) -> float:
            if sentence not in sentence_vectors:
                sentence_vectors[sentence] = self.embedder.embed_query(sentence)
            return float(np.max(vectors[n - 1] @ sentence_vectors[sentence]))

        passages = [h.chunk.text for h in prepared.shown]
        stated = metadata_answer(prepared.question, prepared.shown, raw, self.articles)
        if stated is not None:  # an authorship question: the article's own byline answers it
            author, n = stated
            return self._answer(prepared, Grounded(((author + ".", (n,)),), (), (raw,)), raw, first_token_ms)
        same_language = [detect_language(p, fallback="") == prepared.language for p in passages]
        retrieved = [*passages, *(h.chunk.text for h in prepared.retrieval.hits)]  # shown or not
        grounded = ground(
            raw, passages, similarity, prepared.standalone, self.params.grounding, same_language, retrieved
        )
        if grounded.kept:
            unanswered = self._unanswered(prepared, grounded)
            if unanswered:
                return self._answer(prepared, None, raw, first_token_ms, f"answers_question: {unanswered}")
        return self._answer(prepared, grounded, raw, first_token_ms)

    def _unanswered(self, prepared: Prepared, grounded: Grounded) -> str:
        """Why the grounded reply does not answer the question ("" when it does)."""
        text = " ".join(t for t, _ in grounded.kept)
        cited = {prepared.shown[n - 1].chunk.doc_id for _, markers in grounded.kept for n in markers}
        texts = [t for t in (self.articles.text(doc_id) for doc_id in sorted(cited)) if t]
        if not texts:  # articles not known here: only the kind of answer can be checked
            return missing_kind(prepared.question, text)
        same_language = detect_language(" ".join(texts), fallback="") == prepared.language
        return (
            missing_kind(prepared.question, text)
            or foreign_names(prepared.question, same_language, texts)
            or foreign_numbers(prepared.question, texts)
        )

    def stream(self, question: str, history: HistoryTurns = ()) -> Iterator[Event]:
        """The evidence, then tokens as the model writes them, then the checked Answer."""
        prepared = self.prepare(question, history)
        yield Event(EventKind.EVIDENCE, prepared=prepared)
        yield from self._respond(prepared)

    def answer(self, question: str, history: HistoryTurns = ()) -> Answer:
        return _final(self.stream(question, history))

    def answer_prepared(self, prepared: Prepared) -> Answer:
        """The checked Answer to a prepared question (the model is called when the gate passes)."""
        return _final(self._respond(prepared))

    def as_runnable(self) -> Runnable:
        """The same chain as LangChain runnables: {"question", "history"?} -> Answer."""
        prepare: Runnable[dict, Prepared] = RunnableLambda(
            lambda inputs: self.prepare(inputs["question"], inputs.get("history", ()))
        )
        return prepare | RunnableLambda(lambda prepared: _final(self._respond(prepared)))

    def _respond(self, prepared: Prepared) -> Iterator[Event]:
        if not prepared.gate.passed:
            reason = f"{GATE_DECLINE}: {prepared.gate.reason}"
            yield Event(EventKind.ANSWER, answer=self._answer(prepared, None, "", None, reason))
            return
        parts: list[str] = []
        first_token_ms = None
        for text in self.generate(prepared):
            if first_token_ms is None:
                first_token_ms = (time.perf_counter() - prepared.started) * 1000
            parts.append(text)
            yield Event(EventKind.TOKEN, text=text)
        yield Event(EventKind.ANSWER, answer=self.finalize(prepared, "".join(parts), first_token_ms))

    def _answer(
        self,
        prepared: Prepared,
        grounded: Grounded | None,
        raw: str,
        first_token_ms: float | None,
        decline_reason: str = "grounding",
    ) -> Answer:
        """The Answer from what grounding kept; a decline when it kept nothing (or was not run)."""
        declined = grounded is None or not grounded.kept
        timings = {"retrieve_ms": prepared.retrieve_ms}
        if first_token_ms is not None:
            timings["first_token_ms"] = first_token_ms
        timings["total_ms"] = (time.perf_counter() - prepared.started) * 1000
        citations: tuple[Citation, ...] = ()
        if grounded is None or declined:
            text = self.prompts.decline(prepared.language)
        else:
            used = sorted({n for _, markers in grounded.kept for n in markers})
            citations = tuple(Citation(n, prepared.shown[n - 1].chunk) for n in used)
            text = " ".join(with_markers(t, m) for t, m in grounded.kept)
        return Answer(
            question=prepared.question,
            text=text,
            language=prepared.language,
            citations=citations,
            hits=prepared.retrieval.hits if declined else prepared.shown,
            declined=declined,
            decline_reason=decline_reason if declined else "",
            dropped_markers=grounded.dropped_markers if grounded else (),
            dropped_sentences=grounded.dropped_sentences if grounded else (),
            standalone_question=prepared.standalone,
            timings=timings,
            raw_text=raw,
        )


def _shown_vectors(prepared: Prepared, embedder: Embedder, sentences: SentenceVectors) -> list[np.ndarray]:
    """The vectors a reply's sentence is compared with, per shown passage: its chunk's stored vector and
    those of the sentences that the passage shows, from every retrieved chunk of its document (a claim
    is usually one sentence of a long passage, and across languages the whole chunk's vector dilutes
    it; a window over two overlapping chunks shows sentences of both); a metadata line (not an indexed
    chunk) is embedded here."""
    stored = {
        h.chunk.chunk_id: (h.chunk, v) for h, v in zip(prepared.retrieval.hits, prepared.retrieval.vectors, strict=True)
    }
    extra = [h.chunk.text for h in prepared.shown if h.chunk.chunk_id not in stored]
    embedded = iter(embedder.embed_documents(extra) if extra else ())
    rows: list[np.ndarray] = []
    for hit in prepared.shown:
        if hit.chunk.chunk_id not in stored:
            rows.append(next(embedded)[None, :])
            continue
        window = hit.chunk
        own = [c for c, _ in stored.values() if c.overlaps(window.doc_id, window.start, window.end)]
        seen: set[tuple[int, int]] = set()
        inside: list[np.ndarray] = []
        for chunk, (spans, sentence_rows) in zip(own, sentences.of([c.text for c in own]), strict=True):
            # a window is an exact span of its document: its sentences are those within its offsets
            for span, row in zip(spans, sentence_rows, strict=True):
                at = (chunk.start + span.start, chunk.start + span.end)
                if window.start <= at[0] and at[1] <= window.end and at not in seen:
                    seen.add(at)
                    inside.append(row)
        rows.append(np.vstack([stored[window.chunk_id][1], *inside]))
    return rows


def _final(events: Iterable[Event]) -> Answer:
    for event in events:
        if event.kind == EventKind.ANSWER and event.answer is not None:
            return event.answer
    raise LLMError("the answer chain ended without an answer")
