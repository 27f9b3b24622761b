"""The default index: a folder (rag/steps/index_store.py) seen through the seam.

Reading is ``LoadedIndex`` itself (it implements ``SearchIndex``). Writing rebuilds the whole folder
as a new generation (FAISS vectors, bm25s, JSONL chunk store), reusing the stored vectors of
unchanged documents; replacing manifest.json is the commit point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from rag.core.errors import IndexError_
from rag.core.types import Chunk, Document
from rag.steps.bm25 import BM25Index, Tokenizer
from rag.steps.index_store import (
    MANIFEST,
    LoadedIndex,
    load_index,
    read_manifest,
    remove_stale_generations,
    stored_vectors,
    write_index,
)
from rag.steps.store.base import IndexIdentity, StoredState, check_documents_complete, rebuild_reason


def open_faiss_index(folder: Path, embedder_identity: dict | None) -> LoadedIndex:
    return load_index(folder, embedder_identity)


class FaissFolderWriter:
    """IndexWriter for an index folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._loaded: LoadedIndex | None = None

    def previous(self, identity: IndexIdentity) -> tuple[StoredState | None, str]:
        self._loaded = None
        if not (self.folder / MANIFEST).exists():
            return None, "no index yet"
        try:
            manifest = read_manifest(self.folder)
        except IndexError_ as e:
            return None, f"previous index unusable: {e}"
        reason = rebuild_reason(manifest, identity)
        if reason:
            return None, reason
        try:
            self._loaded = load_index(self.folder, identity.embedder)
        except IndexError_ as e:
            return None, f"previous index unusable: {e}"
        hashes = {d: e["sha256"] for d, e in manifest["documents"].items()}
        return StoredState(hashes, int(manifest.get("counts", {}).get("chunks", 0))), ""

    def begin(
        self, identity: IndexIdentity, documents: Sequence[Document], hashes: Mapping[str, str], *, full: bool
    ) -> FaissSession:
        return FaissSession(self.folder, identity, documents, hashes, None if full else self._loaded)

    def tidy(self) -> None:
        try:
            manifest = read_manifest(self.folder)
        except IndexError_:
            return  # nothing committed yet: nothing to keep
        # an interrupted earlier run may have left a partial generation
        remove_stale_generations(self.folder, keep=str(manifest["generation"]))


class FaissSession:
    def __init__(
        self,
        folder: Path,
        identity: IndexIdentity,
        documents: Sequence[Document],
        hashes: Mapping[str, str],
        previous: LoadedIndex | None,
    ) -> None:
        self.folder = folder
        self.identity = identity
        self.documents = list(documents)
        self.hashes = dict(hashes)
        self.previous = previous
        self.fresh: dict[str, tuple[list[Chunk], np.ndarray]] = {}

    def put(self, doc_id: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if len(chunks) != len(vectors):
            raise IndexError_(f"{len(vectors)} vectors for {len(chunks)} chunks of {doc_id!r}")
        self.fresh[doc_id] = (list(chunks), np.asarray(vectors, dtype=np.float32))

    def commit(self) -> int:
        dim = int(self.identity.embedder["dim"])
        previous = self.previous
        held: set[str] = set()
        old_rows: dict[str, list[int]] = {}
        old_vectors = None
        if previous is not None:
            held = {d for d, e in previous.manifest["documents"].items() if self.hashes.get(d) == e.get("sha256")}
            for i, c in enumerate(previous.chunks):
                old_rows.setdefault(c.doc_id, []).append(i)
            old_vectors = stored_vectors(previous)
        check_documents_complete(self.documents, held, set(self.fresh), self.folder)
        chunks: list[Chunk] = []
        parts: list[np.ndarray] = []
        for doc in self.documents:
            if doc.doc_id in self.fresh:
                new, vectors = self.fresh[doc.doc_id]
                chunks.extend(new)
                parts.append(vectors.reshape(len(new), dim))
            elif previous is not None and old_vectors is not None:
                rows = old_rows.get(doc.doc_id, [])
                chunks.extend(previous.chunks[i] for i in rows)
                parts.append(old_vectors[rows])
        matrix = np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)
        bm25 = self.identity.bm25
        tokenizer = Tokenizer(stem=bool(bm25["stem"]), stopwords=bool(bm25["stopwords"]))
        write_index(
            self.folder,
            documents=self.documents,
            chunks=chunks,
            vectors=matrix,
            bm25=BM25Index.build([c.text for c in chunks], tokenizer),
            embedder_identity=self.identity.embedder,
            chunker=self.identity.chunker,
            doc_hashes=self.hashes,
        )
        return len(chunks)
