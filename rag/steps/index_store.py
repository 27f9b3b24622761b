"""The index directory: a JSON manifest beside FAISS vectors, a JSONL chunk store and BM25 data.

Layout: ``<index>/manifest.json`` names a generation folder ``<index>/gen-<id>/`` holding the data.
A new index is written to a fresh generation folder first; replacing manifest.json (an atomic rename)
is the commit point, so an interrupted write always leaves the previous index loadable.
No pickle anywhere: JSON, JSONL, faiss.write_index and bm25s' numpy/JSON files.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.errors import IndexError_
from rag.core.types import Chunk, Document
from rag.steps.bm25 import BM25Index

log = logging.getLogger(__name__)

FORMAT = "rag-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Up to this many chunks, exact inner-product search. Above it, HNSW over 8-bit scalar-quantised
# vectors (a quarter of the memory) finds candidates, and the float vectors, kept on disk in
# vectors.npy and memory-mapped, re-score them exactly (see docs/EVALUATION.md for measurements).
EXACT_MAX_CHUNKS = 200_000
HNSW_M = 32
HNSW_EF_SEARCH = 1024  # recall@10 0.956 at 1M replicated chunks (docs/PERFORMANCE.md)
REFINE_CANDIDATES = 100


@dataclass
class LoadedIndex:
    folder: Path
    manifest: dict[str, Any]
    chunks: list[Chunk]
    documents: dict[str, Document]
    vectors: Any  # faiss.Index
    bm25: BM25Index
    exact: np.ndarray | None = None  # float vectors (memory-mapped) when `vectors` is approximate
    chunk_rows: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.chunk_rows = {c.chunk_id: i for i, c in enumerate(self.chunks)}

    def vector(self, row: int) -> np.ndarray:
        """The stored vector of one chunk (exact, also when the search index is approximate)."""
        if self.exact is not None:
            return np.array(self.exact[row], dtype=np.float32)
        return np.asarray(self.vectors.reconstruct(row), dtype=np.float32)

    # -- the SearchIndex seam (rag/steps/store/base.py); a row is a position in ``chunks`` --

    @property
    def dim(self) -> int:
        return int(self.vectors.d)

    def chunk(self, row: int) -> Chunk:
        return self.chunks[row]

    def vectors_of(self, rows) -> np.ndarray:
        if not len(rows):
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.vector(row) for row in rows])

    def sample_texts(self, n: int) -> list[str]:
        return [c.text for c in self.chunks[:: max(1, len(self.chunks) // n)][:n]]

    def search_dense(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        return search_vectors(self.vectors, self.exact, vector, n)

    def search_sparse(self, query: str, n: int) -> list[tuple[int, float]]:
        return self.bm25.search(query, n)


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("rag", "faiss-cpu", "sentence-transformers", "transformers", "torch", "bm25s", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def build_vector_index(vectors: np.ndarray, approximate: bool | None = None):
    """Exact up to EXACT_MAX_CHUNKS vectors, else HNSW over 8-bit vectors (``approximate`` overrides)."""
    import faiss

    dim = vectors.shape[1]
    index: faiss.Index
    if not (vectors.shape[0] > EXACT_MAX_CHUNKS if approximate is None else approximate):
        index = faiss.IndexFlatIP(dim)
    else:
        qtype: Any = faiss.ScalarQuantizer.QT_8bit  # an enum value; faiss' stubs say ScalarQuantizer
        hnsw = faiss.IndexHNSWSQ(dim, qtype, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 80
        hnsw.hnsw.efSearch = HNSW_EF_SEARCH
        index = hnsw
    if vectors.shape[0]:
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if not index.is_trained:
            index.train(matrix)
        index.add(matrix)
    return index


def is_exact(index: Any) -> bool:
    return type(index).__name__ == "IndexFlatIP"


def search_vectors(index: Any, exact: np.ndarray | None, query: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The ``n`` rows closest to ``query`` by inner product, best first. With ``exact`` (the float
    vectors of an approximate index), the approximate index proposes candidates and ``exact``
    re-scores them."""
    total = index.ntotal
    if total == 0 or n < 1:
        return []
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    if exact is None:
        scores, rows = index.search(q, min(n, total))
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
    _, rows = index.search(q, min(max(n, REFINE_CANDIDATES), total))
    found = np.sort(rows[0][rows[0] >= 0])  # ascending rows: forward reads through the memory map
    rescored = np.asarray(exact[found], dtype=np.float32) @ q[0]
    order = np.argsort(-rescored, kind="stable")[:n]
    return [(int(found[i]), float(rescored[i])) for i in order]


def write_index(
    folder: Path,
    *,
    documents: list[Document],
    chunks: list[Chunk],
    vectors: np.ndarray,
    bm25: BM25Index,
    embedder_identity: dict[str, Any],
    chunker: dict[str, Any],
    doc_hashes: dict[str, str],
) -> dict[str, Any]:
    """Write a complete index generation, then switch manifest.json to it. Returns the manifest."""
    import faiss

    if vectors.shape[0] != len(chunks):
        raise IndexError_(f"{vectors.shape[0]} vectors for {len(chunks)} chunks")
    folder.mkdir(parents=True, exist_ok=True)
    generation = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    gen_dir = folder / generation
    tmp_dir = folder / (".tmp-" + generation)
    tmp_dir.mkdir()
    try:
        vector_index = build_vector_index(vectors)
        faiss.write_index(vector_index, str(tmp_dir / "vectors.faiss"))
        if not is_exact(vector_index):
            np.save(tmp_dir / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32))
        _write_jsonl(tmp_dir / "chunks.jsonl", (c.to_json() for c in chunks))
        _write_jsonl(tmp_dir / "documents.jsonl", (_document_record(d) for d in documents))
        bm25.save(tmp_dir / "bm25")
        chunk_counts: dict[str, int] = {}
        for c in chunks:
            chunk_counts[c.doc_id] = chunk_counts.get(c.doc_id, 0) + 1
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "generation": generation,
            "embedder": embedder_identity,
            "chunker": chunker,
            "bm25": {"k1": bm25.model.k1, "b": bm25.model.b, **bm25.tokenizer.params()},
            "vectors": {
                "faiss_type": type(vector_index).__name__,
                "exact_rescoring": not is_exact(vector_index),
                "metric": "inner_product",
                "dim": int(vectors.shape[1]) if vectors.ndim == 2 else 0,
            },
            "counts": {"documents": len(documents), "chunks": len(chunks)},
            "documents": {
                d.doc_id: {
                    "sha256": doc_hashes[d.doc_id],
                    "title": d.title,
                    "source": d.source,
                    "chunks": chunk_counts.get(d.doc_id, 0),
                }
                for d in documents
            },
            "files": {
                p.relative_to(tmp_dir).as_posix(): p.stat().st_size for p in sorted(tmp_dir.rglob("*")) if p.is_file()
            },
            "versions": _library_versions(),
        }
        _fsync_tree(tmp_dir)
        tmp_dir.rename(gen_dir)
        tmp_manifest = folder / (MANIFEST + ".tmp")
        with tmp_manifest.open("w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_manifest, folder / MANIFEST)  # the commit point
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)
    remove_stale_generations(folder, keep=generation)
    return manifest


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())


def remove_stale_generations(folder: Path, keep: str) -> None:
    """Remove generation folders other than ``keep`` (older ones, and those of interrupted ingests)."""
    for child in folder.iterdir():
        if (
            child.is_dir()
            and child.name != keep
            and (child.name.startswith("gen-") or child.name.startswith(".tmp-gen-"))
        ):
            shutil.rmtree(child, ignore_errors=True)


def _document_record(d: Document) -> dict[str, Any]:
    return {"doc_id": d.doc_id, "title": d.title, "source": d.source, "metadata": d.metadata, "text": d.text}


def _write_jsonl(path: Path, records) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexError_(f"no index at {folder} ({MANIFEST} is missing); run `rag ingest --index {folder}`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IndexError_(f"{path} is corrupt ({e}); run `rag ingest --rebuild --index {folder}`") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexError_(f"{path} is not a rag index manifest; run `rag ingest --rebuild --index {folder}`")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexError_(
            f"index {folder} has format version {version}, this rag reads version {FORMAT_VERSION}; "
            f"run `rag ingest --rebuild --index {folder}`"
        )
    return manifest


def check_embedder(manifest: dict[str, Any], identity: dict[str, Any], folder: Path | str, rebuild: str = "") -> None:
    """Fail when the index was built with another embedder than the configured one. ``rebuild`` is
    the command that rebuilds this index (default: ``rag ingest --rebuild --index FOLDER``)."""
    built = manifest.get("embedder", {})
    keys = ("name", "dim", "query_prefix", "passage_prefix")
    diffs = [
        f"{k}: index={built.get(k)!r} configured={identity.get(k)!r}" for k in keys if built.get(k) != identity.get(k)
    ]
    if diffs:
        raise IndexError_(
            f"index {folder} was built with another embedder ({'; '.join(diffs)}). "
            f"Either set embedder={built.get('name')!r} or run `{rebuild or f'rag ingest --rebuild --index {folder}'}`"
        )


def load_index(folder: Path, embedder_identity: dict[str, Any] | None = None) -> LoadedIndex:
    """Load and check an index; every problem becomes an IndexError_ that names the fix."""
    import faiss

    folder = Path(folder)
    manifest = read_manifest(folder)
    if embedder_identity is not None:
        check_embedder(manifest, embedder_identity, folder)
    gen_dir = folder / str(manifest.get("generation", ""))
    fix = f"run `rag ingest --rebuild --index {folder}`"
    for name, size in manifest.get("files", {}).items():
        path = gen_dir / name
        if not path.is_file():
            raise IndexError_(f"index file {path} is missing; {fix}")
        if path.stat().st_size != size:
            raise IndexError_(
                f"index file {path} has {path.stat().st_size} bytes, manifest says {size} (truncated?); {fix}"
            )
    try:
        chunks = [
            Chunk(r["chunk_id"], r["doc_id"], r["start"], r["end"], r["text"], r.get("title", ""))
            for r in _read_jsonl(gen_dir / "chunks.jsonl")
        ]
        documents = {
            r["doc_id"]: Document(r["doc_id"], r["text"], r["title"], r["source"], r.get("metadata", {}))
            for r in _read_jsonl(gen_dir / "documents.jsonl")
        }
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise IndexError_(f"chunk store in {gen_dir} is corrupt ({e}); {fix}") from e
    try:
        vectors = faiss.read_index(str(gen_dir / "vectors.faiss"))
    except RuntimeError as e:
        raise IndexError_(
            f"vector file {gen_dir / 'vectors.faiss'} is corrupt ({str(e).splitlines()[0]}); {fix}"
        ) from e
    counts = manifest.get("counts", {})
    if not (vectors.ntotal == len(chunks) == counts.get("chunks")) or len(documents) != counts.get("documents"):
        raise IndexError_(
            f"index {folder} is inconsistent: {vectors.ntotal} vectors, {len(chunks)} chunks, "
            f"{len(documents)} documents, manifest counts {counts}; {fix}"
        )
    dim = manifest.get("embedder", {}).get("dim")
    if vectors.ntotal and vectors.d != dim:
        raise IndexError_(f"vector file has dimension {vectors.d}, manifest says {dim}; {fix}")
    exact = None
    if manifest.get("vectors", {}).get("exact_rescoring"):
        try:
            exact = np.load(gen_dir / "vectors.npy", mmap_mode="r")  # never pickle: allow_pickle stays False
        except (OSError, ValueError) as e:
            raise IndexError_(f"vector file {gen_dir / 'vectors.npy'} is corrupt ({e}); {fix}") from e
        if exact.shape != (vectors.ntotal, vectors.d) or exact.dtype != np.float32:
            raise IndexError_(
                f"vector file {gen_dir / 'vectors.npy'} holds {exact.shape} {exact.dtype}, "
                f"expected ({vectors.ntotal}, {vectors.d}) float32; {fix}"
            )
    bm25 = BM25Index.load(gen_dir / "bm25", n_docs=len(chunks))
    return LoadedIndex(folder, manifest, chunks, documents, vectors, bm25, exact)


def _read_jsonl(path: Path):
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def stored_vectors(index: Any) -> np.ndarray:
    """All vectors, row-aligned with index.chunks, of an index folder (a ``LoadedIndex``)."""
    if not isinstance(index, LoadedIndex):
        raise IndexError_(f"{index.folder} is not an index folder; this needs index_backend='faiss'")
    n = index.vectors.ntotal
    if n == 0:
        return np.zeros((0, index.vectors.d), dtype=np.float32)
    if index.exact is not None:
        return np.array(index.exact, dtype=np.float32)
    return index.vectors.reconstruct_n(0, n)
