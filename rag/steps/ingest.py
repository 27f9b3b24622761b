"""Turn a corpus folder into an index, embedding only new or changed documents.

Where the chunks and vectors are made is an engine (``LocalEngine`` here; ``RayEngine`` in
rag/steps/ingest_ray.py); where they go is an ``IndexWriter`` (rag/steps/store/base.py: the FAISS
folder by default, or Milvus). Both see only the documents whose content hash is new or changed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.core.types import Chunk, Document
from rag.steps.bm25 import K1 as BM25_K1
from rag.steps.bm25 import B as BM25_B
from rag.steps.bm25 import Tokenizer
from rag.steps.chunking import chunk_document
from rag.steps.corpus import Skipped, content_hash, load_corpus
from rag.steps.embedder import Embedder
from rag.steps.store.base import IndexIdentity, IndexWriter
from rag.steps.store.faiss_folder import FaissFolderWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestParams:
    chunk_tokens: int  # in the embedder's own tokens
    overlap_sentences: int
    bm25_stem: bool
    bm25_stopwords: bool

    def chunker(self) -> dict[str, Any]:
        return {
            "max_tokens": self.chunk_tokens,
            "overlap_sentences": self.overlap_sentences,
            "token_counter": "embedder tokenizer",
            "splitter": "sentence+paragraph v2",
        }

    def bm25(self) -> dict[str, Any]:
        return {"k1": BM25_K1, "b": BM25_B, **Tokenizer(stem=self.bm25_stem, stopwords=self.bm25_stopwords).params()}


@dataclass
class IngestReport:
    index_dir: Path
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    embedded_chunks: int = 0
    total_chunks: int = 0
    total_documents: int = 0
    full_rebuild: bool = False
    rebuild_reason: str = ""
    seconds: float = 0.0
    written: bool = False
    engine: str = "local"

    @property
    def stale(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.full_rebuild)

    def to_json(self) -> dict[str, Any]:
        return {
            "index_dir": str(self.index_dir),
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unchanged": len(self.unchanged),
            "skipped": [{"source": s.source, "reason": s.reason} for s in self.skipped],
            "embedded_chunks": self.embedded_chunks,
            "total_chunks": self.total_chunks,
            "total_documents": self.total_documents,
            "full_rebuild": self.full_rebuild,
            "rebuild_reason": self.rebuild_reason,
            "seconds": round(self.seconds, 2),
            "written": self.written,
            "engine": self.engine,
        }


def document_hash(doc: Document) -> str:
    return content_hash(json.dumps([doc.text, doc.title, doc.metadata], ensure_ascii=False, sort_keys=True))


def plan(documents: list[Document], old: Mapping[str, str] | None) -> tuple[list[str], list[str], list[str], list[str]]:
    """(added, changed, removed, unchanged) document ids, from the stored sha256 of each document."""
    old = old or {}
    added, changed, unchanged = [], [], []
    for doc in documents:
        sha = old.get(doc.doc_id)
        if sha is None:
            added.append(doc.doc_id)
        elif sha != document_hash(doc):
            changed.append(doc.doc_id)
        else:
            unchanged.append(doc.doc_id)
    current = {d.doc_id for d in documents}
    removed = sorted(set(old) - current)
    return added, changed, removed, unchanged


ProgressFn = Callable[[int, int], None]


class Engine(Protocol):
    """Chunks and embeds documents; yields (doc_id, chunks, row-aligned vectors) once per document,
    in any order. ``progress(done, total)`` counts in the engine's own ``unit``."""

    name: str
    unit: str

    def __call__(
        self, documents: Sequence[Document], progress: ProgressFn | None
    ) -> Iterator[tuple[str, list[Chunk], np.ndarray]]: ...


class LocalEngine:
    """In this process: chunk every document, then embed all their chunks in batches of similar length.
    ``pause()``, when given, is called before every batch: a serving process makes indexing wait there
    while answers are being generated (the two share the same cores), so a batch is all an answer can
    wait for."""

    name = "local"
    unit = "chunk"

    def __init__(self, embedder: Embedder, params: IngestParams, pause: Callable[[], None] | None = None) -> None:
        self.embedder = embedder
        self.params = params
        self.pause = pause

    def __call__(
        self, documents: Sequence[Document], progress: ProgressFn | None
    ) -> Iterator[tuple[str, list[Chunk], np.ndarray]]:
        per_doc = [
            chunk_document(
                doc,
                self.embedder.count_tokens,
                max_tokens=self.params.chunk_tokens,
                overlap_sentences=self.params.overlap_sentences,
                count_many=self.embedder.count_tokens_many,
            )
            for doc in documents
        ]
        matrix = _embed(self.embedder, [c.text for chunks in per_doc for c in chunks], progress, self.pause)
        begin = 0
        for doc, chunks in zip(documents, per_doc, strict=True):
            yield doc.doc_id, chunks, matrix[begin : begin + len(chunks)]
            begin += len(chunks)


def ingest(
    corpus: Path,
    index_dir: Path,
    embedder: Embedder,
    params: IngestParams,
    *,
    rebuild: bool = False,
    check_only: bool = False,
    progress: ProgressFn | None = None,
    writer: IndexWriter | None = None,
    engine: Engine | None = None,
) -> IngestReport:
    """Update (or build) the index at ``index_dir`` (or the one ``writer`` writes) from ``corpus``.

    With ``check_only`` nothing is written: the report says what an ingest would change.
    ``progress(done, total)`` is called as the engine works (local: chunks embedded). ``embedder``
    gives the index its identity (and, for the local engine, the vectors).
    """
    started = time.perf_counter()
    writer = writer or FaissFolderWriter(index_dir)
    engine = engine or LocalEngine(embedder, params)
    loaded = load_corpus(corpus)
    identity = IndexIdentity(embedder.identity(), params.chunker(), params.bm25())
    if rebuild:
        previous, reason = None, "--rebuild asked for"
    else:
        previous, reason = writer.previous(identity)
    report = IngestReport(
        index_dir=index_dir,
        skipped=loaded.skipped,
        full_rebuild=previous is None,
        rebuild_reason=reason,
        engine=engine.name,
    )
    report.added, report.changed, report.removed, report.unchanged = plan(
        loaded.documents, previous.doc_hashes if previous else None
    )
    report.total_documents = len(loaded.documents)
    if check_only or (previous is not None and not (report.added or report.changed or report.removed)):
        if previous is not None and not check_only:
            writer.tidy()
        report.total_chunks = previous.chunks if previous else 0
        report.seconds = time.perf_counter() - started
        return report

    fresh_ids = set(report.added) | set(report.changed) if previous is not None else None
    fresh = [d for d in loaded.documents if fresh_ids is None or d.doc_id in fresh_ids]
    hashes = {d.doc_id: document_hash(d) for d in loaded.documents}
    session = writer.begin(identity, loaded.documents, hashes, full=previous is None)
    for doc_id, chunks, vectors in engine(fresh, progress):
        session.put(doc_id, chunks, vectors)
        report.embedded_chunks += len(chunks)
    report.total_chunks = session.commit()
    report.written = True
    report.seconds = time.perf_counter() - started
    return report


def _embed(
    embedder: Embedder, texts: list[str], progress: ProgressFn | None, pause: Callable[[], None] | None = None
) -> np.ndarray:
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    # Batches of similar length waste less padding; results go back to the original order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    step = 64 if pause else 256  # when answers come first, a batch (~1 s on 2 cores) is their longest wait
    for begin in range(0, len(order), step):
        if pause:
            pause()
        rows = order[begin : begin + step]
        out[rows] = embedder.embed_documents([texts[i] for i in rows])
        if progress:
            progress(min(begin + step, len(order)), len(order))
    return out
