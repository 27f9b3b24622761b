"""Dense, BM25 and hybrid (weighted reciprocal rank fusion) retrieval over a loaded index."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from rag.embedder import Embedder
from rag.errors import ConfigError
from rag.index_store import LoadedIndex, search_vectors
from rag.language import detect_language
from rag.types import Hit

log = logging.getLogger(__name__)

MODES = ("hybrid", "dense", "bm25")
FUSIONS = ("convex", "rrf")
NEAR_DUPLICATE_JACCARD = 0.8
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class RetrievalParams:
    mode: str = "hybrid"
    k: int = 5
    fusion: str = "convex"  # "convex": weighted sum of normalised scores; "rrf": reciprocal rank fusion
    rrf_k: int = 60
    dense_weight: float = 0.5
    bm25_weight: float = 0.5
    candidates: int = 50  # per method, before fusion and de-duplication
    # BM25 cannot match words across languages: its weight is scaled by this when the question's
    # language differs from the corpus's (measured on eval/questions.jsonl, docs/EVALUATION.md)
    cross_lingual_bm25_factor: float = 0.5


class Retriever:
    """search(query, k) over one index. Higher scores are better.

    dense = cosine similarity; bm25 = BM25 score; hybrid = either a convex combination of the two
    scores normalised over the candidates (dense min-max, BM25 divided by its maximum), or weighted
    reciprocal rank fusion. A candidate missing from one list gets 0 from it.
    """

    def __init__(self, index: LoadedIndex, embedder: Embedder, params: RetrievalParams) -> None:
        if params.mode not in MODES:
            raise ConfigError(f"mode={params.mode!r} is not valid; choose one of {', '.join(MODES)}")
        if params.fusion not in FUSIONS:
            raise ConfigError(f"fusion={params.fusion!r} is not valid; choose one of {', '.join(FUSIONS)}")
        self.index = index
        self.embedder = embedder
        self.params = params
        self._last_query: tuple[str, np.ndarray] | None = None
        sample = " ".join(c.text for c in index.chunks[:: max(1, len(index.chunks) // 50)][:50])
        self.corpus_language = detect_language(sample, fallback="")
        import faiss

        # one OpenMP thread is several times faster for a single interactive query
        faiss.omp_set_num_threads(1)

    def query_vector(self, query: str) -> np.ndarray:
        """The query's embedding; the last one is kept, since the answer chain needs it again."""
        last = self._last_query  # one tuple, read and replaced atomically: safe across threads
        if last is not None and last[0] == query:
            return last[1]
        vector = self.embedder.embed_query(query)
        self._last_query = (query, vector)
        return vector

    def set_query_vector(self, query: str, vector: np.ndarray | None) -> None:
        """Use ``vector`` (embedded elsewhere) for ``query``; None forgets the kept vector."""
        self._last_query = None if vector is None else (query, vector)

    def dense(self, query: str, n: int) -> list[tuple[int, float]]:
        return self.dense_by_vector(self.query_vector(query), n)

    def dense_by_vector(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        return search_vectors(self.index.vectors, self.index.exact, vector, n)

    def bm25(self, query: str, n: int) -> list[tuple[int, float]]:
        return self.index.bm25.search(query, n)

    def search(self, query: str, k: int | None = None, mode: str | None = None) -> list[Hit]:
        k = k or self.params.k
        mode = mode or self.params.mode
        if mode not in MODES:
            raise ConfigError(f"mode={mode!r} is not valid; choose one of {', '.join(MODES)}")
        n = max(self.params.candidates, k * 4)
        dense = self.dense(query, n) if mode in ("dense", "hybrid") else []
        lexical = self.bm25(query, n) if mode in ("bm25", "hybrid") else []
        details: dict[int, dict[str, float]] = {}
        for rank, (row, score) in enumerate(dense, start=1):
            details.setdefault(row, {}).update({"dense": score, "dense_rank": rank})
        for rank, (row, score) in enumerate(lexical, start=1):
            details.setdefault(row, {}).update({"bm25": score, "bm25_rank": rank})
        if mode == "dense":
            ranked = dense
        elif mode == "bm25":
            ranked = lexical
        else:
            ranked = self._fuse(dense, lexical, self.bm25_weight_for(query))
        hits: list[Hit] = []
        kept: list[frozenset[str]] = []  # the words of each kept chunk, for the near-duplicate test
        for row, score in ranked:
            words = frozenset(_WORD.findall(self.index.chunks[row].text.lower()))
            if any(_near_duplicate(words, other) for other in kept):
                continue
            kept.append(words)
            hits.append(Hit(self.index.chunks[row], score, len(hits) + 1, mode, details.get(row, {})))
            if len(hits) == k:
                break
        return hits

    def bm25_weight_for(self, query: str) -> float:
        language = detect_language(query, fallback=self.corpus_language)
        cross_lingual = bool(self.corpus_language) and language != self.corpus_language
        return self.params.bm25_weight * (self.params.cross_lingual_bm25_factor if cross_lingual else 1.0)

    def _fuse(
        self, dense: list[tuple[int, float]], lexical: list[tuple[int, float]], bm25_weight: float
    ) -> list[tuple[int, float]]:
        fused: dict[int, float] = {}
        p = self.params
        if p.fusion == "rrf":
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
