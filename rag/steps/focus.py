"""The passages shown to the model: the part of each retrieved chunk that bears on the question.

A whole chunk is up to ``chunk_tokens`` embedder tokens, so only two or three fit the model's context
budget and the evidence ranked third to fifth is never read. Each long chunk is cut instead to a window
of whole sentences around its sentence closest to the question (embedder cosine, so it works across
languages), grown with the neighbouring sentences (the one before first: it often names who is
speaking) while the window fits ``max_tokens``. A window is an exact span of its document, so
``doc.text[start:end] == text`` still holds and a citation opens exactly what the model read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from rag.core.types import Chunk, Hit
from rag.steps.chunking import split_sentences
from rag.steps.embedder import Embedder


def focus_hits(
    hits: list[Hit],
    query_vector: np.ndarray,
    embedder: Embedder,
    count_tokens: Callable[[str], int],
    max_tokens: int,
) -> list[Hit]:
    """``hits`` with every chunk longer than ``max_tokens`` cut to its best window; 0 keeps them whole."""
    if max_tokens <= 0:
        return list(hits)
    long = [i for i, h in enumerate(hits) if count_tokens(h.chunk.text) > max_tokens]
    sentences = {i: split_sentences(hits[i].chunk.text) for i in long}
    texts = [hits[i].chunk.text[s.start : s.end] for i in long for s in sentences[i]]
    if not texts:
        return list(hits)
    scores = embedder.embed_documents(texts) @ query_vector
    focused = list(hits)
    offset = 0
    for i in long:
        spans = sentences[i]
        chunk_scores = scores[offset : offset + len(spans)]
        offset += len(spans)
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
