"""The answer chain: retrieve -> evidence gate -> prompt -> chat model -> citation and grounding check.

The default local model never declines and sometimes cites passages that do not say what it wrote,
so declining is decided here: before generation when retrieval finds nothing close enough, and after
it when no sentence of the reply is supported by the passage it cites.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableLambda

from rag.citations import (
    GroundingThresholds,
    check_support,
    key_words,
    names,
    overlap,
    split_answer,
    strip_stray_brackets,
    vocabulary_of,
)
from rag.conversation import HistoryTurns, standalone_question
from rag.errors import LLMError
from rag.focus import focus_hits
from rag.language import detect_language
from rag.prompting import LANGUAGE_NAMES, format_passages, load_prompts
from rag.question import clean_question
from rag.retrieve import Retriever
from rag.settings import Settings
from rag.types import Answer, Citation, Hit

log = logging.getLogger(__name__)

# Evidence gate, calibrated on eval/questions.jsonl (docs/ANSWERS.md). The corpus is taken not to hold
# an answer, and the LLM is not called, when the closest passage is below this cosine, when most names
# in the question appear in none of the retrieved passages, or when a question in the passages' own
# language shares almost none of its key words with them.
DEFAULT_MIN_EVIDENCE = 0.79
MIN_QUESTION_NAMES_FOUND = 0.5
MIN_QUESTION_WORDS_FOUND = 0.25
# An unsupported sentence may be cut back to its supported opening clauses if they keep this many key words
MIN_SALVAGED_WORDS = 3


@dataclass
class Prepared:
    question: str
    language: str
    standalone: str
    hits: list[Hit]  # everything retrieved
    shown: list[Hit]  # the passages given to the model, numbered from 1
    evidence: float
    messages: list[BaseMessage]
    gate_passed: bool
    gate_reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    started: float = 0.0


@dataclass(frozen=True)
class Event:
    kind: str  # "token" while generating, then exactly one "answer"
    text: str = ""
    answer: Answer | None = None


class Answerer:
    def __init__(
        self,
        retriever: Retriever,
        chat: BaseChatModel,
        settings: Settings,
        count_tokens: Callable[[str], int] | None = None,
        thresholds: GroundingThresholds | None = None,
    ) -> None:
        from rag.llm import token_counter

        self.retriever = retriever
        self.chat = chat
        self.settings = settings
        self.prompts = load_prompts(settings.prompts_dir)
        self.count_tokens = count_tokens or token_counter(chat, settings)
        self.thresholds = thresholds or GroundingThresholds()
        self.min_evidence = settings.min_evidence or DEFAULT_MIN_EVIDENCE
        self._system = self.prompts.render("system.txt")

    # -- steps -----------------------------------------------------------------------------------
    def prepare(self, question: str, history: HistoryTurns = ()) -> Prepared:
        started = time.perf_counter()
        question = clean_question(question, self.settings.max_question_chars)
        fallback = detect_language(history[-1][0]) if history else "en"
        language = detect_language(question, fallback=fallback)
        standalone = standalone_question(question, history)
        hits = self.retriever.search(standalone, self.settings.k, self.settings.mode)
        evidence = self._evidence(standalone, hits)
        gate_reason = self._gate(standalone, language, hits, evidence)
        if gate_reason:
            shown = self._budget(hits)  # the model is not called; the closest passages are shown whole
        else:
            vector = self.retriever.query_vector(standalone)
            embedder = self.retriever.embedder
            shown = self._budget(focus_hits(hits, vector, embedder, self.count_tokens, self.settings.passage_tokens))
        turns = "\n".join(f"Q: {q}\nA: {a}" for q, a in history[-2:])
        user = self.prompts.render(
            "user.txt",
            history=self.prompts.render("history.txt", turns=turns) if turns else "",
            passages=format_passages(shown),
            question=question,
            language_name=LANGUAGE_NAMES.get(language, "English"),
        )
        messages: list[BaseMessage] = [SystemMessage(self._system), HumanMessage(user)]
        prepared = Prepared(
            question,
            language,
            standalone,
            hits,
            shown,
            evidence,
            messages,
            gate_passed=not gate_reason,
            gate_reason=gate_reason,
            started=started,
        )
        prepared.timings["retrieve_ms"] = (time.perf_counter() - started) * 1000
        return prepared

    def _evidence(self, query: str, hits: list[Hit]) -> float:
        """Highest cosine between the query and a retrieved passage (whatever the retrieval mode)."""
        if not hits:
            return 0.0
        vector = self.retriever.query_vector(query)
        rows = [self.retriever.index.chunk_rows[h.chunk.chunk_id] for h in hits]
        matrix = np.stack([self.retriever.index.vector(r) for r in rows])
        return float((matrix @ vector).max())

    def _gate(self, query: str, language: str, hits: list[Hit], evidence: float) -> str:
        """Why the evidence is too weak to ask the model, or "" when it is strong enough."""
        if not hits:
            return "nothing retrieved"
        if evidence < self.min_evidence:
            return f"closest passage has cosine {evidence:.3f} < {self.min_evidence}"
        texts = [h.chunk.text for h in hits]
        vocabulary = vocabulary_of(texts)
        found_names = overlap(names(query), vocabulary, self.thresholds.fuzzy_name_ratio)
        if found_names is not None and found_names < MIN_QUESTION_NAMES_FOUND:
            return f"only {found_names:.0%} of the names in the question occur in the passages"
        if language == detect_language(" ".join(texts), fallback=""):
            found_words = overlap(key_words(query), vocabulary, 0.85)
            if found_words is not None and found_words < MIN_QUESTION_WORDS_FOUND:
                return f"only {found_words:.0%} of the question's key words occur in the passages"
        return ""

    def _budget(self, hits: list[Hit]) -> list[Hit]:
        """Passages in rank order while they fit the context budget (the model's own tokens)."""
        shown: list[Hit] = []
        used = 0
        for hit in hits:
            cost = self.count_tokens(hit.chunk.text) + 4
            if shown and used + cost > self.settings.context_budget_tokens:
                break
            shown.append(hit)
            used += cost
        return shown

    def generate(self, prepared: Prepared) -> Iterator[str]:
        try:
            for chunk in self.chat.stream(prepared.messages):
                text = chunk.text
                if text:
                    if "first_token_ms" not in prepared.timings:
                        prepared.timings["first_token_ms"] = (time.perf_counter() - prepared.started) * 1000
                    yield text
        except LLMError:
            raise
        except Exception as e:  # network and server errors of any client library
            raise LLMError(f"the chat model failed: {type(e).__name__}: {e}") from e

    def finalize(self, prepared: Prepared, raw: str) -> Answer:
        shown = prepared.shown
        sentences = split_answer(raw)
        dropped_markers: list[str] = []
        dropped_sentences: list[str] = []
        kept: list[tuple[str, tuple[int, ...]]] = []
        similarity = self._similarity_fn(shown)
        for sentence in sentences:
            valid = tuple(n for n in sentence.markers if 1 <= n <= len(shown))
            dropped_markers.extend(f"[{n}]" for n in sentence.markers if n not in valid)
            text = strip_stray_brackets(sentence.text).strip()
            if not text:
                continue
            supporting = functools.partial(
                self._supporting, markers=valid, shown=shown, similarity=similarity, question=prepared.standalone
            )
            text, cited, dropped = _supported_part(text, supporting)
            if dropped:
                dropped_sentences.append(dropped)
            if cited:
                kept.append((text, cited))
        if not kept:
            return self._decline(prepared, "grounding", raw, dropped_markers, dropped_sentences)
        used = sorted({n for _, markers in kept for n in markers})
        citations = tuple(Citation(n, shown[n - 1].chunk) for n in used)
        text = " ".join(_with_markers(t, m) for t, m in kept)
        return self._answer(
            prepared, text, citations, raw=raw, dropped_markers=dropped_markers, dropped_sentences=dropped_sentences
        )

    def _similarity_fn(self, shown: list[Hit]) -> Callable[[str, int], float]:
        index = self.retriever.index
        vectors = [index.vector(index.chunk_rows[h.chunk.chunk_id]) for h in shown]
        cache: dict[str, np.ndarray] = {}

        def similarity(sentence: str, n: int) -> float:
            if sentence not in cache:
                cache[sentence] = self.retriever.embedder.embed_query(sentence)
            return float(vectors[n - 1] @ cache[sentence])

        return similarity

    def _supporting(
        self,
        text: str,
        markers: tuple[int, ...],
        shown: list[Hit],
        similarity: Callable[[str, int], float],
        question: str,
    ) -> tuple[int, ...]:
        """The markers to keep for a sentence: its own when they support it, else the one shown
        passage that does (the model cited the wrong number), else nothing (the sentence goes)."""
        if markers:
            texts = [shown[n - 1].chunk.text for n in markers]
            support = check_support(text, texts, similarity, list(markers), self.thresholds, question)
            if support.supported:
                return markers
        best: tuple[float, int] | None = None
        for n in range(1, len(shown) + 1):
            if n in markers:
                continue
            support = check_support(text, [shown[n - 1].chunk.text], similarity, [n], self.thresholds, question)
            if support.supported and (best is None or support.similarity > best[0]):
                best = (support.similarity, n)
        return (best[1],) if best else ()

    def _decline(
        self,
        prepared: Prepared,
        reason: str,
        raw: str = "",
        dropped_markers: Sequence[str] = (),
        dropped_sentences: Sequence[str] = (),
    ) -> Answer:
        return self._answer(
            prepared,
            self.prompts.decline(prepared.language),
            (),
            raw=raw,
            declined=True,
            reason=reason,
            dropped_markers=dropped_markers,
            dropped_sentences=dropped_sentences,
        )

    def _answer(
        self,
        prepared: Prepared,
        text: str,
        citations: tuple[Citation, ...],
        *,
        raw: str,
        declined: bool = False,
        reason: str = "",
        dropped_markers: Sequence[str] = (),
        dropped_sentences: Sequence[str] = (),
    ) -> Answer:
        prepared.timings["total_ms"] = (time.perf_counter() - prepared.started) * 1000
        return Answer(
            question=prepared.question,
            text=text,
            language=prepared.language,
            citations=citations,
            hits=tuple(prepared.shown if not declined else prepared.hits),
            declined=declined,
            decline_reason=reason,
            dropped_markers=tuple(dropped_markers),
            dropped_sentences=tuple(dropped_sentences),
            standalone_question=prepared.standalone,
            timings=dict(prepared.timings),
            raw_text=raw,
        )

    # -- entry points ----------------------------------------------------------------------------
    def stream(self, question: str, history: HistoryTurns = ()) -> Iterator[Event]:
        """Tokens as the model writes them, then the checked Answer."""
        prepared = self.prepare(question, history)
        if not prepared.gate_passed:
            yield Event("answer", answer=self._decline(prepared, f"evidence: {prepared.gate_reason}"))
            return
        parts: list[str] = []
        for text in self.generate(prepared):
            parts.append(text)
            yield Event("token", text=text)
        yield Event("answer", answer=self.finalize(prepared, "".join(parts)))

    def answer(self, question: str, history: HistoryTurns = ()) -> Answer:
        answer: Answer | None = None
        for event in self.stream(question, history):
            if event.kind == "answer":
                answer = event.answer
        if answer is None:
            raise LLMError("the answer chain ended without an answer")
        return answer

    def as_runnable(self) -> Runnable:
        """The same chain as LangChain runnables: {"question", "history"?} -> Answer."""

        def prepare(inputs: dict) -> Prepared:
            return self.prepare(inputs["question"], inputs.get("history", ()))

        def respond(prepared: Prepared) -> Answer:
            if not prepared.gate_passed:
                return self._decline(prepared, f"evidence: {prepared.gate_reason}")
            return self.finalize(prepared, "".join(self.generate(prepared)))

        return RunnableLambda(prepare) | RunnableLambda(respond)


def _supported_part(text: str, supporting: Callable[[str], tuple[int, ...]]) -> tuple[str, tuple[int, ...], str]:
    """(kept text, its markers, dropped text) for one sentence of the answer: the whole sentence
    when a shown passage supports it, else its longest supported opening clauses ("X met Y on 15
    September, 2014" -> "X met Y on 15 September" when the year is in no passage), else nothing.
    An opening must keep MIN_SALVAGED_WORDS key words."""
    cited = supporting(text)
    if cited:
        return text, cited, ""
    for cut in reversed([m.start() for m in re.finditer(r",\s", text)]):
        opening = text[:cut].rstrip() + "."
        if len(key_words(opening)) < MIN_SALVAGED_WORDS:
            break
        cited = supporting(opening)
        if cited:
            return opening, cited, text[cut + 1 :].strip()
    return text, (), text


def _with_markers(text: str, markers: tuple[int, ...]) -> str:
    tags = "".join(f"[{n}]" for n in markers)
    match = re.search(r"[.!?]+$", text)
    if match:
        return f"{text[: match.start()]} {tags}{match.group(0)}"
    return f"{text} {tags}"
