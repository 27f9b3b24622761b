"""The seam between the pipeline and wherever an index lives.

Reading (``SearchIndex``): what the Retriever, the chat page and the evaluation call. A chunk is
addressed by a ``row``, an int that means something only to the index that returned it (the FAISS
folder: the position in its chunk list; Milvus: the collection's primary key). Scores are higher-is-
better: dense = cosine similarity of L2-normalised vectors, sparse = BM25 (never negative).

Writing (``IndexWriter`` -> ``WriteSession``): ingest asks what the index holds (``previous``: every
document's sha256, or the reason a full build is needed), then puts each new or changed document with
its chunks and vectors and commits. ``put`` replaces whatever the session already holds for that
document, so a document delivered twice (a retried Ray task) is written once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from rag.core.choices import Fusion
from rag.core.types import Chunk, Document

# what the two BM25 implementations must agree on for an index to be reused
BM25_KEYS = ("k1", "b", "stem", "stopwords")


@dataclass(frozen=True)
class HybridQuery:
    """How a hybrid search fuses its dense and BM25 lists (see rag/steps/retrieve.py ``fuse``)."""

    fusion: Fusion
    dense_weight: float
    bm25_weight: float  # already scaled for a question in another language than the corpus
    rrf_k: int


class SearchIndex(Protocol):
    """A loaded index, as retrieval, the chat page and the evaluation read it."""

    @property
    def folder(self) -> Path | str:
        """Where the index lives, for people (a folder, or a Milvus address and collection)."""
        ...

    @property
    def manifest(self) -> dict[str, Any]:
        """Identity (format, embedder, chunker, BM25) and ``counts`` {documents, chunks}."""
        ...

    @property
    def dim(self) -> int: ...

    @property
    def chunks(self) -> list[Chunk]:
        """Every chunk (evaluation and benchmarks; a Milvus index reads them all on first use)."""
        ...

    @property
    def documents(self) -> dict[str, Document]:
        """doc_id -> Document (a Milvus index reads each on first use, all of them when iterated)."""
        ...

    def chunk(self, row: int) -> Chunk: ...

    def vectors_of(self, rows: Sequence[int]) -> np.ndarray:
        """The stored (exact, float32, L2-normalised) vectors of ``rows``, in that order."""
        ...

    def sample_texts(self, n: int) -> list[str]:
        """Up to ``n`` chunk texts spread over the index (to tell the corpus's language)."""
        ...

    def search_dense(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        """The ``n`` rows closest to ``vector`` by cosine similarity, best first."""
        ...

    def search_sparse(self, query: str, n: int) -> list[tuple[int, float]]:
        """The ``n`` best rows by BM25 with the index's own analyser, best first; score 0 left out."""
        ...


class FusingIndex(SearchIndex, Protocol):
    """An index that fuses dense and BM25 lists itself (server-side), in one request."""

    def search_hybrid(self, query: str, vector: np.ndarray, n: int, spec: HybridQuery) -> list[tuple[int, float]]:
        """The ``n`` best rows by the fused score, best first."""
        ...


def as_fusing(index: SearchIndex) -> FusingIndex | None:
    """``index`` as a FusingIndex when its class has ``search_hybrid``, else None. A class lookup:
    ``isinstance`` with a runtime-checkable protocol would, on Python 3.11, evaluate every property of
    the protocol (a Milvus index's ``chunks`` reads all chunks)."""
    return cast(FusingIndex, index) if callable(getattr(type(index), "search_hybrid", None)) else None


@dataclass(frozen=True)
class IndexIdentity:
    """What must match for an index to be reused: its vectors, chunks and BM25 were made this way."""

    embedder: dict[str, Any]
    chunker: dict[str, Any]
    bm25: dict[str, Any]  # at least BM25_KEYS


@dataclass(frozen=True)
class StoredState:
    """What an index holds, for planning an incremental ingest."""

    doc_hashes: dict[str, str]  # doc_id -> sha256 of the document as it was ingested
    chunks: int  # how many chunks the index holds


class WriteSession(Protocol):
    def put(self, doc_id: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Set the chunks (and their row-aligned vectors) of one new or changed document."""
        ...

    def commit(self) -> int:
        """Make the update visible; returns the number of chunks the index now holds. Every
        document given to ``begin`` must be either unchanged (held before) or ``put``."""
        ...


class IndexWriter(Protocol):
    def previous(self, identity: IndexIdentity) -> tuple[StoredState | None, str]:
        """What the index holds, or None and the reason everything must be (re)built."""
        ...

    def begin(
        self, identity: IndexIdentity, documents: Sequence[Document], hashes: Mapping[str, str], *, full: bool
    ) -> WriteSession:
        """Start an update towards exactly ``documents`` (in this order). Documents the index holds
        but ``documents`` lacks are dropped; ``full`` discards everything held before."""
        ...

    def tidy(self) -> None:
        """Remove what an interrupted earlier write left behind (nothing to do is fine)."""
        ...


def rebuild_reason(stored: Mapping[str, Any], identity: IndexIdentity) -> str:
    """Why an index recorded with ``stored`` (manifest-shaped) cannot be updated incrementally ("" if it can)."""
    if stored.get("embedder", {}) != identity.embedder:
        return "embedder changed"
    if stored.get("chunker") != identity.chunker:
        return "chunker settings changed"
    bm25 = stored.get("bm25", {})
    if any(bm25.get(k) != identity.bm25.get(k) for k in BM25_KEYS):
        return "BM25 settings changed"
    return ""


def check_documents_complete(documents: Sequence[Document], held: set[str], put: set[str], where: object) -> None:
    """Every document of an update is either kept from before or written now (no lost documents)."""
    from rag.core.errors import IndexError_

    missing = [d.doc_id for d in documents if d.doc_id not in held and d.doc_id not in put]
    if missing:
        raise IndexError_(
            f"ingest into {where} is incomplete: {len(missing)} new or changed documents were never written "
            f"(first: {missing[0]!r}); nothing was committed, run the ingest again"
        )
