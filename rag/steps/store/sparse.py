"""BM25 as sparse vectors, so that a vector engine's inner product IS the product's BM25.

The analysis is the product's own (rag/steps/bm25.py ``Tokenizer``: lowercase words, Indonesian and
English stop words, Sastrawi stems), not the engine's: Milvus's analysers do not stem Indonesian.
The scoring is bm25s' "lucene" variant, the one the FAISS folder uses:

    score(q, d) = sum over query tokens t of idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

A chunk's sparse vector holds the tf part (one weight per term, in (0, 1)); a query's holds idf(t)
times the number of times t occurs in the query. Terms are numbered by a stable 32-bit hash (never
Python's ``hash()``, which differs between processes): two terms that collide are counted as one
(about 0.03 colliding pairs expected for a 20k-term vocabulary, ~12 for 200k).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping

# an empty (or all stop words) chunk still gets one term, as in the FAISS folder's BM25
EMPTY_TOKEN = "\u2205"
# Milvus sparse indices are uint32; the largest value is reserved
_TERM_SPACE = 2**32 - 1


def term_id(token: str) -> int:
    """A term's sparse dimension: blake2b of its UTF-8 bytes, the same in every process."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest(), "little") % _TERM_SPACE


def term_counts(tokens: list[str]) -> tuple[dict[int, int], int]:
    """(term id -> tf, document length) of one chunk's tokens; an empty chunk counts EMPTY_TOKEN once."""
    tokens = tokens or [EMPTY_TOKEN]
    counts: Counter[int] = Counter(term_id(t) for t in tokens)
    return dict(counts), len(tokens)


def document_weights(tf: Mapping[int, int], length: int, avgdl: float, k1: float, b: float) -> dict[int, float]:
    """The tf part of BM25 for each term of one chunk (in (0, 1))."""
    norm = k1 * (1.0 - b + b * length / avgdl)
    return {t: float(n / (n + norm)) for t, n in tf.items()}


def idf(df: int, n_docs: int) -> float:
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def query_weights(tokens: Iterable[str], df: Mapping[int, int], n_docs: int) -> dict[int, float]:
    """idf(t) times t's count in the query, for the query's terms that occur in the index."""
    weights: dict[int, float] = {}
    for token in tokens:
        t = term_id(token)
        if df.get(t, 0) > 0:
            weights[t] = weights.get(t, 0.0) + idf(df[t], n_docs)
    return weights
