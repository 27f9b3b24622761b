"""The passages shown to the model: the part of each retrieved chunk that bears on the question.

A whole chunk is up to ``chunk_tokens`` embedder tokens, so only two or three fit the model's context
budget and the evidence ranked third to fifth is never read. Each long chunk is cut instead to a window
of whole sentences around its sentence closest to the question (embedder cosine, so it works across
languages), grown with the neighbouring sentences (the one before first: it often names who is
speaking) while the window fits ``max_tokens``. A window is an exact span of its document, so
``doc.text[start:end] == text`` still holds and a citation opens exactly what the model read.

Embedding a question's passages sentence by sentence was nearly all of the time from a question to
its evidence (≈ 125 of 130 ms here), so each chunk's sentences and vectors are kept once computed
(SentenceVectors), and a serving process computes them for a small index ahead of the questions.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from rag.core.types import Chunk, Hit
from rag.steps.chunking import Span, split_sentences
from rag.steps.embedder import Embedder

MAX_KEPT_SENTENCES = 50_000  # about 77 MB of vectors with a 384-dimensional embedder


class SentenceVectors:
    """The sentences of chunk texts with their embedder vectors (as passages), computed once per text
    and kept, the least recently used dropped beyond ``max_sentences``. Safe to share between threads."""

    def __init__(self, embedder: Embedder, max_sentences: int = MAX_KEPT_SENTENCES) -> None:
        self.embedder = embedder
        self.max_sentences = max_sentences
        self._kept: OrderedDict[str, tuple[list[Span], np.ndarray]] = OrderedDict()
        self._sentences = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    def of(self, texts: Sequence[str]) -> list[tuple[list[Span], np.ndarray]]:
        """Each text's sentence spans (relative to the text) and their vectors, one row a sentence."""
        found: dict[str, tuple[list[Span], np.ndarray]] = {}
        with self._lock:
            for text in texts:
                if text in self._kept:
                    self._kept.move_to_end(text)
                    found[text] = self._kept[text]
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            found.update(self._compute(missing))
        return [found[t] for t in texts]

    def add(self, texts: Sequence[str]) -> None:
        """Compute and keep the sentences of ``texts`` not kept yet (ahead of the questions)."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._kept]
        if missing:
            self._compute(missing)

    def _compute(self, texts: list[str]) -> dict[str, tuple[list[Span], np.ndarray]]:
        # one batch a passage: an int8 embedder scales its activations per batch, so a passage's
        # vectors are the same whether computed ahead or for a question, whatever else is retrieved
        computed: dict[str, tuple[list[Span], np.ndarray]] = {}
        for text in texts:
            spans = split_sentences(text)
            computed[text] = (spans, self.embedder.embed_documents([text[s.start : s.end] for s in spans]))
        with self._lock:
            for text, value in computed.items():
                if text not in self._kept:
                    self._kept[text] = value
                    self._sentences += len(value[0])
            while self._sentences > self.max_sentences and self._kept:
                _, (dropped, _) = self._kept.popitem(last=False)
                self._sentences -= len(dropped)
        return computed


def close_to_best(hits: list[Hit], margin: float) -> list[Hit]:
    """The hits whose cosine to the question is within ``margin`` of the closest one's, in rank order
    (a hit without a cosine is kept): when one passage stands out, the model reads it and not four
    weaker ones, and the prompt it must read before its first token is shorter."""
    cosines = [h.details.get("cosine") for h in hits]
    known = [c for c in cosines if c is not None]
    if not known:
        return list(hits)
    floor = max(known) - margin
    return [h for h, c in zip(hits, cosines, strict=True) if c is None or c >= floor]


def focus_hits(
    hits: list[Hit],
    query_vector: np.ndarray,
    sentences: SentenceVectors,
    count_tokens: Callable[[str], int],
    max_tokens: int,
) -> list[Hit]:
    """``hits`` with every chunk longer than ``max_tokens`` cut to its best window; 0 keeps them whole."""
    if max_tokens <= 0:
        return list(hits)
    long = [i for i, h in enumerate(hits) if count_tokens(h.chunk.text) > max_tokens]
    focused = list(hits)
    for i, (spans, vectors) in zip(long, sentences.of([hits[i].chunk.text for i in long]), strict=True):
        if not spans:
            continue
        chunk_scores = vectors @ query_vector
        cost = [count_tokens(hits[i].chunk.text[s.start : s.end]) for s in spans]
        first = last = int(np.argmax(chunk_scores))
        used = cost[first]
        grew = True
        while grew:  # one sentence before, then one after, while they fit
            grew = False
            for neighbour in (first - 1, last + 1):
                if 0 <= neighbour < len(spans) and used + cost[neighbour] <= max_tokens:
                    used += cost[neighbour]
                    first, last = min(first, neighbour), max(last, neighbour)
                    grew = True
        focused[i] = dataclasses.replace(hits[i], chunk=_window(hits[i].chunk, spans[first].start, spans[last].end))
    return focused


def _window(chunk: Chunk, start: int, end: int) -> Chunk:
    return dataclasses.replace(chunk, start=chunk.start + start, end=chunk.start + end, text=chunk.text[start:end])


def merge_overlapping(hits: list[Hit]) -> list[Hit]:
    """``hits`` with windows of one document that overlap shown once: a window inside another is
    dropped, two that overlap become one window over both (at the better-ranked one's place). Chunks
    overlap by a sentence, so two windows can hold the same sentence, which the model would read
    twice, at the cost of its tokens before the first one it writes."""
    merged: list[Hit] = []
    for hit in hits:
        c = hit.chunk
        overlapping = [i for i, k in enumerate(merged) if k.chunk.overlaps(c.doc_id, c.start, c.end)]
        if not overlapping:
            merged.append(hit)
            continue
        first, *others = overlapping  # the new window may bridge two kept ones
        chunk = _union(merged[first].chunk, c)
        for i in others:
            chunk = _union(chunk, merged[i].chunk)
        merged[first] = dataclasses.replace(merged[first], chunk=chunk)
        for i in reversed(others):
            del merged[i]
    return merged


def _union(a: Chunk, b: Chunk) -> Chunk:
    """One window over two overlapping exact spans of a document (the first's identity kept)."""
    first, second = (a, b) if a.start <= b.start else (b, a)
    text = first.text + second.text[first.end - second.start :] if second.end > first.end else first.text
    return dataclasses.replace(a, start=first.start, end=max(first.end, second.end), text=text)
