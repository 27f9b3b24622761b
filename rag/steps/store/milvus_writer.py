"""Writing a Milvus index through the seam (``IndexWriter``): upserts and deletes by document.

An ingest marks the index ``writing``, upserts the chunks of new and changed documents, deletes
their stale chunks and the chunks of removed documents, updates the term statistics, writes the
documents (their sha256 last: a document whose write was interrupted is planned again next time),
then records the manifest and marks the index ``clean``. Milvus has no transaction across these
steps: a search during an ingest can see a mix of old and new chunks. After an interrupted ingest
(an exception, or Milvus killed under it) the next one takes the chunk and token totals from the
chunks themselves, replaces every chunk the interrupted one may have left (of documents it writes
again or no longer in the corpus), recounts the term statistics, and re-weights every chunk when the
interrupted one was to: the result equals the same ingest uninterrupted.

BM25 weights (rag/steps/store/sparse.py) need the average chunk length. A full build uses the
exact one; an incremental ingest weights new chunks with the stored one, so all chunks share one
value, and re-weights every chunk when the real average has drifted more than REWEIGHT_DRIFT.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from rag.core.errors import IndexError_
from rag.core.types import Chunk, Document
from rag.steps.bm25 import Tokenizer
from rag.steps.store import milvus_schema as schema
from rag.steps.store.base import IndexIdentity, StoredState, check_documents_complete, rebuild_reason
from rag.steps.store.milvus_client import BATCH_IDS, BATCH_ROWS, MilvusParams, close, connect, load, quoted, scan
from rag.steps.store.milvus_connection import MilvusUnreachable
from rag.steps.store.milvus_terms import apply_df, recount_terms, reweight_all
from rag.steps.store.sparse import document_weights, term_counts

log = logging.getLogger(__name__)

REWEIGHT_DRIFT = 0.05  # re-weight every chunk when the average chunk length moved more than this


class MilvusWriter:
    """IndexWriter for a Milvus index (see milvus_schema.py for its collections)."""

    def __init__(self, params: MilvusParams) -> None:
        self.params = params
        self._client: Any = None
        self._stored: dict[str, str] = {}
        self._manifest: dict[str, Any] | None = None
        self._repair = False

    @property
    def client(self):
        if self._client is None:
            self._client = connect(self.params)
        return self._client

    def previous(self, identity: IndexIdentity) -> tuple[StoredState | None, str]:
        self._stored, self._manifest, self._repair = {}, None, False
        if not self.client.has_collection(self.params.collection):
            return None, "no index yet"
        try:
            manifest, state = schema.read_manifest(self.client, self.params)
        except MilvusUnreachable:
            raise  # the index may be fine: no rebuild because Milvus did not answer
        except IndexError_ as e:
            return None, f"previous index unusable: {e}"
        reason = rebuild_reason(manifest, identity)
        if reason:
            return None, reason
        self._manifest, self._repair = manifest, state != "clean"
        load(self.client, self.params)
        rows = scan(self.client, self.params.docs, ["doc_id", "sha256"], "part == 0")
        self._stored = {r["doc_id"]: r["sha256"] for r in rows}
        chunks = int(manifest["counts"]["chunks"])
        if self._repair:  # the manifest's count may be stale
            counted = self.client.query(self.params.collection, filter="", output_fields=["count(*)"])
            chunks = int(counted[0]["count(*)"]) if counted else 0
        return StoredState(dict(self._stored), chunks), ""

    def begin(
        self, identity: IndexIdentity, documents: Sequence[Document], hashes: Mapping[str, str], *, full: bool
    ) -> MilvusSession:
        if full or self._manifest is None:
            # a new build goes to new collections; the index's names switch to them at commit
            schema.drop_unused_generations(self.client, self.params)
            target = schema.new_generation(self.params)
            manifest = new_manifest(identity, self.params)
            schema.create(self.client, target, int(identity.embedder["dim"]), manifest)
            stored: dict[str, str] = {}
            repair = False
        else:
            target = self.params
            manifest, stored, repair = self._manifest, self._stored, self._repair
            schema.write_properties(self.client, self.params, None, "writing")
        session = MilvusSession(self.client, target, identity, manifest, documents, hashes, stored, repair)
        session.switch_to = self.params if target is not self.params else None
        return session

    def close(self) -> None:
        """Release the connection (and Milvus Lite's folder, for another process to open)."""
        if self._client is not None:
            close(self._client, self.params)
            self._client = None

    def tidy(self) -> None:
        schema.drop_unused_generations(self.client, self.params)
        if self._repair and self._manifest is not None:  # interrupted earlier, nothing to write now
            manifest = dict(self._manifest)
            n_chunks, tokens = recount_terms(self.client, self.params, manifest)
            manifest["counts"] = {"documents": len(self._stored), "chunks": n_chunks}
            bm25 = manifest["bm25"]
            true_avgdl = tokens / n_chunks if n_chunks else 1.0
            if bm25.get("avgdl") is not None and drifted(bm25["avgdl"], true_avgdl):
                # the interrupted ingest was to re-weight every chunk after its documents
                tokenizer = Tokenizer(stem=bool(bm25["stem"]), stopwords=bool(bm25["stopwords"]))
                k1, b = float(bm25["k1"]), float(bm25["b"])
                reweight_all(self.client, self.params, tokenizer, true_avgdl, k1, b, skip=set())
                manifest["bm25"] = {**bm25, "avgdl": true_avgdl}
            manifest["updated_ns"] = time.time_ns()
            schema.write_properties(self.client, self.params, manifest, "clean")
            self._repair = False


def drifted(stored_avgdl: float, true_avgdl: float) -> bool:
    """Whether the average chunk length moved so far from the one the weights used that all are redone."""
    return abs(true_avgdl / stored_avgdl - 1.0) > REWEIGHT_DRIFT


def new_manifest(identity: IndexIdentity, params: MilvusParams) -> dict[str, Any]:
    versions = {}
    for name in ("rag", "pymilvus", "milvus-lite", "bm25s", "numpy"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return {
        "format": schema.FORMAT,
        "format_version": schema.FORMAT_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "embedder": identity.embedder,
        "chunker": identity.chunker,
        "bm25": {
            **identity.bm25,
            "scoring": "bm25s lucene, tf part stored per chunk, idf at query time",
            "term_ids": "blake2b 32-bit",
            "avgdl": None,  # the average chunk length every stored weight was computed with
        },
        "vectors": {"index": params.dense_index, "metric": "inner_product", "dim": int(identity.embedder["dim"])},
        "counts": {"documents": 0, "chunks": 0},
        "tokens": 0,  # sum of chunk lengths (for the average)
        "versions": versions,
    }


class MilvusSession:
    def __init__(
        self,
        client,
        params: MilvusParams,
        identity: IndexIdentity,
        manifest: dict[str, Any],
        documents: Sequence[Document],
        hashes: Mapping[str, str],
        stored: Mapping[str, str],
        repair: bool,
    ) -> None:
        self.client = client
        self.params = params
        self.manifest = dict(manifest)
        self.documents = list(documents)
        self.hashes = dict(hashes)
        self.stored = dict(stored)
        self.repair = repair
        bm25 = identity.bm25
        self.k1, self.b = float(bm25["k1"]), float(bm25["b"])
        self.tokenizer = Tokenizer(stem=bool(bm25["stem"]), stopwords=bool(bm25["stopwords"]))
        self.fresh: dict[str, tuple[list[Chunk], np.ndarray]] = {}
        self.switch_to: MilvusParams | None = None  # a full build: the names to point at it

    def put(self, doc_id: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if len(chunks) != len(vectors):
            raise IndexError_(f"{len(vectors)} vectors for {len(chunks)} chunks of {doc_id!r}")
        self.fresh[doc_id] = (list(chunks), np.asarray(vectors, dtype=np.float32))

    def commit(self) -> int:
        p, client = self.params, self.client
        current = {d.doc_id for d in self.documents}
        held = {d for d, sha in self.stored.items() if self.hashes.get(d) == sha}
        check_documents_complete(self.documents, held, set(self.fresh), p.where())
        touched = [d for d in self.stored if d in self.fresh or d not in current]
        counts = self.manifest["counts"]
        if self.repair:  # the manifest's totals may not match the chunks an interrupted ingest left
            old, base_chunks, base_tokens = self._chunks_to_replace(current)
        else:
            old = list(scan(client, p.collection, ["pk", "sparse", "n_tokens"], *_in_filters("doc_id", touched)))
            base_chunks, base_tokens = int(counts["chunks"]), int(self.manifest["tokens"])
        analysed = [
            (doc_id, c, vectors[i], *term_counts(self.tokenizer(c.text)))
            for doc_id, (chunks, vectors) in self.fresh.items()
            for i, c in enumerate(chunks)
        ]
        # term statistics after this update (recounted below when an earlier ingest was interrupted)
        n_chunks = base_chunks - len(old) + len(analysed)
        tokens = base_tokens - sum(int(r["n_tokens"]) for r in old) + sum(a[4] for a in analysed)
        true_avgdl = tokens / n_chunks if n_chunks else 1.0
        avgdl = self.manifest["bm25"].get("avgdl")
        reweight = avgdl is not None and bool(self.stored) and drifted(avgdl, true_avgdl)
        if avgdl is None or reweight:
            avgdl = true_avgdl
        rows = [
            {
                "pk": schema.stable_id(c.chunk_id),
                "chunk_id": c.chunk_id,
                "doc_id": c.doc_id,
                "title": c.title,
                "start": c.start,
                "end": c.end,
                "text": c.text,
                "n_tokens": length,
                "dense": vector.tolist(),
                "sparse": document_weights(tf, length, avgdl, self.k1, self.b),
            }
            for _, c, vector, tf, length in analysed
        ]
        for begin in range(0, len(rows), BATCH_ROWS):
            client.upsert(p.collection, rows[begin : begin + BATCH_ROWS])
        fresh_pks = {r["pk"] for r in rows}
        stale = [int(r["pk"]) for r in old if int(r["pk"]) not in fresh_pks]
        for begin in range(0, len(stale), BATCH_IDS):
            client.delete(p.collection, ids=stale[begin : begin + BATCH_IDS])
        if self.repair:
            n_chunks, tokens = recount_terms(client, p, self.manifest)
        else:
            delta: Counter[int] = Counter()
            for r in old:
                delta.subtract(int(t) for t in r["sparse"])
            for a in analysed:
                delta.update(a[3].keys())
            apply_df(client, p, delta)
        self._write_documents(touched, current)
        if reweight:
            reweight_all(client, p, self.tokenizer, avgdl, self.k1, self.b, skip=fresh_pks)
        self.manifest["bm25"] = {**self.manifest["bm25"], "avgdl": avgdl}
        self.manifest["counts"] = {"documents": len(self.documents), "chunks": n_chunks}
        self.manifest["tokens"] = tokens
        self.manifest["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.manifest["updated_ns"] = time.time_ns()  # what tells a server that the index changed
        for name in (p.collection, p.docs, p.terms):
            client.flush(name)  # Milvus Lite searches unflushed rows slowly (2.2 s vs 24 ms at 50k)
        schema.write_properties(client, p, self.manifest, "clean")
        if self.switch_to is not None:
            schema.switch(client, self.switch_to, p)  # the commit point of a full build
        return n_chunks

    def _chunks_to_replace(self, current: set[str]) -> tuple[list[dict[str, Any]], int, int]:
        """After an interrupted ingest: the exact chunk and token totals, and the chunks to replace:
        those of the documents written now (the interrupted ingest may have left some of theirs) and
        of documents no longer in the corpus (also ones whose record it never wrote)."""
        old, n_chunks, tokens = [], 0, 0
        for r in scan(self.client, self.params.collection, ["pk", "doc_id", "n_tokens"]):
            n_chunks += 1
            tokens += int(r["n_tokens"])
            if r["doc_id"] in self.fresh or r["doc_id"] not in current:
                old.append(r)
        return old, n_chunks, tokens

    def _write_documents(self, touched: list[str], current: set[str]) -> None:
        p, client = self.params, self.client
        by_id = {d.doc_id: d for d in self.documents}
        rows: list[dict[str, Any]] = []
        for doc_id, (chunks, _) in self.fresh.items():
            doc = by_id[doc_id]
            parts = [doc.text[i : i + schema.PART_CHARS] for i in range(0, len(doc.text), schema.PART_CHARS)] or [""]
            rows.extend(
                {
                    "pk": schema.stable_id(f"{doc_id}\x00{i}"),
                    "doc_id": doc_id,
                    "part": i,
                    "parts": len(parts),
                    "text": text,
                    "title": doc.title,
                    "source": doc.source,
                    "sha256": self.hashes[doc_id],
                    "chunks": len(chunks),
                    "metadata": doc.metadata,
                    "placeholder": schema.PLACEHOLDER,
                }
                for i, text in enumerate(parts)
            )
        # surplus parts of documents that shrank, and every part of removed documents
        keep = {r["pk"] for r in rows}
        surplus = [
            int(r["pk"])
            for r in scan(client, p.docs, ["pk"], *_in_filters("doc_id", touched))
            if int(r["pk"]) not in keep
        ]
        for begin in range(0, len(rows), BATCH_ROWS):
            client.upsert(p.docs, rows[begin : begin + BATCH_ROWS])
        for begin in range(0, len(surplus), BATCH_IDS):
            client.delete(p.docs, ids=surplus[begin : begin + BATCH_IDS])


def _in_filters(field: str, values: Sequence[str]) -> list[str]:
    """Filter expressions ``field in [...]`` covering ``values`` (none when there are none: no rows)."""
    return [f"{field} in {quoted(values[i : i + BATCH_IDS])}" for i in range(0, len(values), BATCH_IDS)] or ["pk < 0"]
