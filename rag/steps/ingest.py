"""Turn a corpus folder into an index, embedding only new or changed documents."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.errors import IndexError_
from rag.core.types import Chunk, Document
from rag.steps.bm25 import K1 as BM25_K1
from rag.steps.bm25 import B as BM25_B
from rag.steps.bm25 import BM25Index, Tokenizer
from rag.steps.chunking import chunk_document
from rag.steps.corpus import Skipped, content_hash, load_corpus
from rag.steps.embedder import Embedder
from rag.steps.index_store import (
    LoadedIndex,
    load_index,
    read_manifest,
    remove_stale_generations,
    stored_vectors,
    write_index,
)

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
        }


def document_hash(doc: Document) -> str:
    return content_hash(json.dumps([doc.text, doc.title, doc.metadata], ensure_ascii=False, sort_keys=True))


def _previous(
    index_dir: Path, embedder: Embedder, params: IngestParams, rebuild: bool
) -> tuple[LoadedIndex | None, str]:
    """The index to update incrementally, or None and the reason for a full build."""
    if rebuild:
        return None, "--rebuild asked for"
    if not (index_dir / "manifest.json").exists():
        return None, "no index yet"
    try:
        manifest = read_manifest(index_dir)
    except IndexError_ as e:
        return None, f"previous index unusable: {e}"
    if manifest.get("embedder", {}) != embedder.identity():
        return None, "embedder changed"
    if manifest.get("chunker") != params.chunker():
        return None, "chunker settings changed"
    bm25 = manifest.get("bm25", {})
    wanted = (BM25_K1, BM25_B, params.bm25_stem, params.bm25_stopwords)
    if (bm25.get("k1"), bm25.get("b"), bm25.get("stem"), bm25.get("stopwords")) != wanted:
        return None, "BM25 settings changed"
    try:
        return load_index(index_dir, embedder.identity()), ""
    except IndexError_ as e:
        return None, f"previous index unusable: {e}"


def plan(documents: list[Document], previous: LoadedIndex | None) -> tuple[list[str], list[str], list[str], list[str]]:
    old = previous.manifest["documents"] if previous else {}
    added, changed, unchanged = [], [], []
    for doc in documents:
        entry = old.get(doc.doc_id)
        if entry is None:
            added.append(doc.doc_id)
        elif entry.get("sha256") != document_hash(doc):
            changed.append(doc.doc_id)
        else:
            unchanged.append(doc.doc_id)
    current = {d.doc_id for d in documents}
    removed = sorted(set(old) - current)
    return added, changed, removed, unchanged


def ingest(
    corpus: Path,
    index_dir: Path,
    embedder: Embedder,
    params: IngestParams,
    *,
    rebuild: bool = False,
    check_only: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Update (or build) the index at ``index_dir`` from ``corpus``.

    With ``check_only`` nothing is written: the report says what an ingest would change.
    ``progress(done, total)`` is called as chunks are embedded.
    """
    started = time.perf_counter()
    loaded = load_corpus(corpus)
    previous, reason = _previous(index_dir, embedder, params, rebuild)
    report = IngestReport(
        index_dir=index_dir, skipped=loaded.skipped, full_rebuild=previous is None, rebuild_reason=reason
    )
    report.added, report.changed, report.removed, report.unchanged = plan(loaded.documents, previous)
    report.total_documents = len(loaded.documents)
    if check_only or (previous is not None and not (report.added or report.changed or report.removed)):
        if previous is not None and not check_only:
            # an interrupted earlier run may have left a partial generation
            remove_stale_generations(index_dir, keep=str(previous.manifest["generation"]))
        report.total_chunks = len(previous.chunks) if previous else 0
        report.seconds = time.perf_counter() - started
        return report

    keep = set(report.unchanged) if previous else set()
    old_vectors = stored_vectors(previous) if previous else None
    old_rows: dict[str, list[int]] = {}
    for i, c in enumerate(previous.chunks if previous else []):
        old_rows.setdefault(c.doc_id, []).append(i)
    chunks: list[Chunk] = []
    parts: list[np.ndarray] = []
    fresh_rows: list[int] = []  # rows of `chunks` that need embedding
    for doc in loaded.documents:
        if doc.doc_id in keep and previous is not None and old_vectors is not None:
            rows = old_rows.get(doc.doc_id, [])
            chunks.extend(previous.chunks[i] for i in rows)
            parts.append(old_vectors[rows])
        else:
            new = chunk_document(
                doc, embedder.count_tokens, max_tokens=params.chunk_tokens, overlap_sentences=params.overlap_sentences
            )
            fresh_rows.extend(range(len(chunks), len(chunks) + len(new)))
            chunks.extend(new)
            parts.append(np.zeros((len(new), embedder.dim), dtype=np.float32))
    matrix = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)
    if fresh_rows:
        matrix[fresh_rows] = _embed(embedder, [chunks[i].text for i in fresh_rows], progress)
    report.embedded_chunks = len(fresh_rows)
    tokenizer = Tokenizer(stem=params.bm25_stem, stopwords=params.bm25_stopwords)
    bm25 = BM25Index.build([c.text for c in chunks], tokenizer)
    write_index(
        index_dir,
        documents=loaded.documents,
        chunks=chunks,
        vectors=matrix,
        bm25=bm25,
        embedder_identity=embedder.identity(),
        chunker=params.chunker(),
        doc_hashes={d.doc_id: document_hash(d) for d in loaded.documents},
    )
    report.written = True
    report.total_chunks = len(chunks)
    report.seconds = time.perf_counter() - started
    return report


def _embed(embedder: Embedder, texts: list[str], progress: Callable[[int, int], None] | None) -> np.ndarray:
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    # Batches of similar length waste less padding; results go back to the original order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    step = 256
    for begin in range(0, len(order), step):
        rows = order[begin : begin + step]
        out[rows] = embedder.embed_documents([texts[i] for i in rows])
        if progress:
            progress(min(begin + step, len(order)), len(order))
    return out
