"""Dense, BM25 and hybrid retrieval over a loaded index.

Hybrid fuses the two candidate lists either by a convex combination of their normalised scores (the
default) or by weighted reciprocal rank fusion. ``Retriever.search`` is a pure function of the query:
it returns a ``Retrieval`` that carries everything later steps need (hits with per-method scores,
the query vector and the hits' stored vectors), and nothing is kept between calls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from rag.core.choices import Fusion, Mode
from rag.core.text import words
from rag.core.types import Hit
from rag.steps.embedder import Embedder
from rag.steps.language import detect_language
from rag.steps.store.base import HybridQuery, SearchIndex, as_fusing

log = logging.getLogger(__name__)

NEAR_DUPLICATE_JACCARD = 0.8
CANDIDATES = 50  # per method, before fusion and de-duplication


@dataclass(frozen=True)
class RetrievalParams:
    mode: Mode
    k: int
    fusion: Fusion
    rrf_k: int
    dense_weight: float
    bm25_weight: float
    # BM25 cannot match words across languages: its weight is scaled by this when the question's
    # language differs from the corpus's (measured on eval/questions.jsonl, docs/EVALUATION.md)
    cross_lingual_bm25_factor: float


@dataclass(frozen=True)
class Retrieval:
    """The result of one search. ``vectors[i]`` is the stored vector of ``hits[i]``; every hit's
    ``details`` holds its cosine to the query ("cosine") and its per-method scores and ranks."""

    query: str
    mode: Mode
    hits: tuple[Hit, ...]
    query_vector: np.ndarray | None  # None only for a BM25 search that was given no vector
    vectors: np.ndarray  # (len(hits), dim) float32, L2-normalised

    @property
    def evidence(self) -> float:
        """The highest cosine between the query and a hit (0 when nothing was found or compared)."""
        if not self.hits or self.query_vector is None:
            return 0.0
        return float((self.vectors @ self.query_vector).max())


class Retriever:
    """search(query, k, mode) over one index. Higher scores are better.

    dense = cosine similarity; bm25 = BM25 score; hybrid = either a convex combination of the two
    scores normalised over the candidates (dense min-max, BM25 divided by its maximum), or weighted
    reciprocal rank fusion. A candidate missing from one list gets 0 from it.
    """

    def __init__(self, index: SearchIndex, embedder: Embedder, params: RetrievalParams) -> None:
        self.index = index
        self.fusing = as_fusing(index)  # an index that fuses hybrid searches itself, in one request
        self.embedder = embedder
        self.params = params
        sample = " ".join(index.sample_texts(50))
        self.corpus_language = detect_language(sample, fallback="")
        import faiss

        # one OpenMP thread is several times faster for a single interactive query
        faiss.omp_set_num_threads(1)

    def search(
        self, query: str, k: int | None = None, mode: Mode | str | None = None, vector: np.ndarray | None = None
    ) -> Retrieval:
        """The ``k`` best distinct chunks for ``query``. ``vector`` is the query's embedding when the
        caller already has it; a BM25 search without one embeds nothing (and reports no cosines)."""
        k = k or self.params.k
        mode = Mode.parse(mode, "mode") if mode else self.params.mode
        n = max(CANDIDATES, k * 4)
        if vector is None and mode != Mode.BM25:
            vector = self.embedder.embed_query(query)
        fusing = self.fusing if mode == Mode.HYBRID else None
        dense = (
            self.index.search_dense(vector, n) if vector is not None and mode != Mode.BM25 and fusing is None else []
        )
        lexical = self.index.search_sparse(query, n) if mode != Mode.DENSE and fusing is None else []
        details: dict[int, dict[str, float]] = {}
        for rank, (row, score) in enumerate(dense, start=1):
            details.setdefault(row, {}).update({"dense": score, "dense_rank": rank})
        for rank, (row, score) in enumerate(lexical, start=1):
            details.setdefault(row, {}).update({"bm25": score, "bm25_rank": rank})
        if mode == Mode.DENSE:
            ranked = dense
        elif mode == Mode.BM25:
            ranked = lexical
        elif fusing is not None and vector is not None:
            p = self.params
            spec = HybridQuery(p.fusion, p.dense_weight, self.bm25_weight_for(query), p.rrf_k)
            ranked = fusing.search_hybrid(query, vector, n, spec)
        else:
            ranked = fuse(dense, lexical, self.params, self.bm25_weight_for(query))
        rows = self._distinct(ranked, k)
        vectors = self.index.vectors_of([row for row, _ in rows])
        hits = []
        for rank, (row, score) in enumerate(rows, start=1):
            scores = dict(details.get(row, {}))
            if vector is not None:
                scores["cosine"] = float(vectors[rank - 1] @ vector)
            hits.append(Hit(self.index.chunk(row), score, rank, mode.value, scores))
        return Retrieval(query, mode, tuple(hits), vector, vectors)

    def _distinct(self, ranked: list[tuple[int, float]], k: int) -> list[tuple[int, float]]:
        """The first ``k`` of ``ranked`` that are not near-duplicates of a better one."""
        kept: list[tuple[int, float]] = []
        seen: list[frozenset[str]] = []
        for row, score in ranked:
            found = frozenset(words(self.index.chunk(row).text))
            if any(_near_duplicate(found, other) for other in seen):
                continue
            seen.append(found)
            kept.append((row, score))
            if len(kept) == k:
                break
        return kept

    def bm25_weight_for(self, query: str) -> float:
        language = detect_language(query, fallback=self.corpus_language)
        cross_lingual = bool(self.corpus_language) and language != self.corpus_language
        return self.params.bm25_weight * (self.params.cross_lingual_bm25_factor if cross_lingual else 1.0)


def fuse(
    dense: list[tuple[int, float]], lexical: list[tuple[int, float]], p: RetrievalParams, bm25_weight: float
) -> list[tuple[int, float]]:
    """Fused (row, score) pairs, best first (ties by row)."""
    fused: dict[int, float] = {}
    if p.fusion == Fusion.RRF:
        for weight, results in ((p.dense_weight, dense), (bm25_weight, lexical)):
            for rank, (row, _) in enumerate(results, start=1):
                fused[row] = fused.get(row, 0.0) + weight / (p.rrf_k + rank)
    else:
        if dense:
            high, low = dense[0][1], dense[-1][1]
            spread = (high - low) or 1.0
            for row, score in dense:
                fused[row] = fused.get(row, 0.0) + p.dense_weight * (score - low) / spread
        if lexical:
            top = lexical[0][1] or 1.0
            for row, score in lexical:
                fused[row] = fused.get(row, 0.0) + bm25_weight * score / top
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def _near_duplicate(a: frozenset[str], b: frozenset[str]) -> bool:
    """Word-set Jaccard similarity of two chunks at or above NEAR_DUPLICATE_JACCARD."""
    if not a or not b:
        return False
    return len(a & b) / len(a | b) >= NEAR_DUPLICATE_JACCARD
