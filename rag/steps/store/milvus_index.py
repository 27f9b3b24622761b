"""Reading a Milvus index through the seam (``SearchIndex`` and ``FusingIndex``).

A row is the chunk's primary key. Searches ask Milvus for the chunk fields too and keep them, so
``chunk(row)`` after a search costs no request; ``vectors_of`` fetches the few vectors of the final
hits in one request. BM25 queries are analysed here with the product's Tokenizer and weighted with
the IDF of the terms collection (one small request), so scores equal the FAISS folder's BM25.

Hybrid fusion. By default (``server_fusion=False``) the index is a plain ``SearchIndex``: the
Retriever fetches the dense and BM25 lists (two requests) and fuses them itself, exactly as for the
FAISS folder. With ``server_fusion=True`` Milvus fuses them in one ``hybrid_search``: RRFRanker for
rrf fusion (exact when the two weights are equal, i.e. same-language questions: a common factor does
not change the order; the cross-lingual BM25 weight cannot be applied) and WeightedRanker for convex
fusion, whose arctan normalisation (``norm_score``) is not the FAISS path's convex fusion (dense
min-max over the candidates + BM25 divided by its maximum). docs/PERFORMANCE.md measures both.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from rag.core.choices import Fusion
from rag.core.errors import IndexError_
from rag.core.types import Chunk, Document
from rag.steps.bm25 import Tokenizer
from rag.steps.index_store import check_embedder
from rag.steps.store.base import HybridQuery
from rag.steps.store.milvus_client import MilvusParams, connect, load, quoted, scan
from rag.steps.store.milvus_schema import CHUNK_FIELDS, HNSW_EF_SEARCH, read_manifest
from rag.steps.store.sparse import query_weights, term_id

log = logging.getLogger(__name__)

CACHE_CHUNKS = 20_000  # chunks kept from earlier searches (LRU)


def open_milvus_index(params: MilvusParams, embedder_identity: dict[str, Any] | None) -> MilvusIndex:
    client = connect(params)
    manifest, state = read_manifest(client, params)
    if embedder_identity is not None:
        check_embedder(
            manifest,
            embedder_identity,
            params.where(),
            rebuild=f"rag ingest --rebuild --index-backend milvus --milvus-uri {params.uri}",
        )
    if state != "clean":
        log.warning("Milvus index %s is being written (or an ingest was interrupted)", params.where())
    load(client, params)
    return (MilvusFusingIndex if params.server_fusion else MilvusIndex)(client, params, manifest)


class MilvusIndex:
    def __init__(self, client, params: MilvusParams, manifest: dict[str, Any]) -> None:
        self.client = client
        self.params = params
        self._manifest = manifest
        bm25 = manifest["bm25"]
        self.tokenizer = Tokenizer(stem=bool(bm25["stem"]), stopwords=bool(bm25["stopwords"]))
        self._cache: OrderedDict[int, Chunk] = OrderedDict()
        self._all: list[Chunk] | None = None
        self._documents: MilvusDocuments | None = None

    # -- what the chat page and the evaluation read --

    @property
    def folder(self) -> str:
        return self.params.where()

    @property
    def manifest(self) -> dict[str, Any]:
        return self._manifest

    @property
    def dim(self) -> int:
        return int(self._manifest["embedder"]["dim"])

    @property
    def chunks(self) -> list[Chunk]:
        if self._all is None:
            rows = scan(self.client, self.params.collection, ["pk", *CHUNK_FIELDS])
            self._all = sorted((_chunk(r) for r in rows), key=lambda c: (c.doc_id, c.start, c.end))
        return self._all

    @property
    def documents(self) -> MilvusDocuments:
        if self._documents is None:
            self._documents = MilvusDocuments(self.client, self.params)
        return self._documents

    def chunk(self, row: int) -> Chunk:
        found = self._cache.get(row)
        if found is None:
            got = self.client.get(self.params.collection, ids=[row], output_fields=CHUNK_FIELDS)
            if not got:
                raise IndexError_(f"chunk {row} is not in Milvus collection {self.params.collection}")
            found = self._remember(row, got[0])
        return found

    def vectors_of(self, rows: Sequence[int]) -> np.ndarray:
        if not len(rows):
            return np.zeros((0, self.dim), dtype=np.float32)
        got = self.client.get(self.params.collection, ids=list(rows), output_fields=["dense"])
        by_pk = {int(r["pk"]): r["dense"] for r in got}
        missing = [r for r in rows if r not in by_pk]
        if missing:
            raise IndexError_(f"chunks {missing[:3]} vanished from Milvus collection {self.params.collection}")
        return np.asarray([by_pk[r] for r in rows], dtype=np.float32)

    def sample_texts(self, n: int) -> list[str]:
        rows = self.client.query(self.params.collection, filter="", output_fields=["text"], limit=n)
        return [r["text"] for r in rows]

    # -- searches: (row, score) best first --

    def search_dense(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        found = self.client.search(
            self.params.collection,
            data=[_floats(vector)],
            anns_field="dense",
            limit=n,
            output_fields=CHUNK_FIELDS,
            search_params=self._dense_params(n),
        )
        return self._hits(found)

    def search_sparse(self, query: str, n: int) -> list[tuple[int, float]]:
        weights = self._query_weights(query)
        if not weights:
            return []
        found = self.client.search(
            self.params.collection,
            data=[weights],
            anns_field="sparse",
            limit=n,
            output_fields=CHUNK_FIELDS,
            search_params={"metric_type": "IP"},
        )
        return [(row, score) for row, score in self._hits(found) if score > 0]

    # -- helpers --

    def _query_weights(self, query: str) -> dict[int, float]:
        tokens = self.tokenizer(query)
        if not tokens:
            return {}
        ids = sorted({term_id(t) for t in tokens})
        got = self.client.get(self.params.terms, ids=ids, output_fields=["df"])
        df = {int(r["pk"]): int(r["df"]) for r in got}
        return query_weights(tokens, df, int(self._manifest["counts"]["chunks"]))

    def _dense_params(self, n: int) -> dict[str, Any]:
        if self.params.dense_index == "HNSW":
            return {"metric_type": "IP", "params": {"ef": max(HNSW_EF_SEARCH, n)}}
        return {"metric_type": "IP"}

    def _hits(self, found) -> list[tuple[int, float]]:
        out = []
        for hit in found[0] if found else []:
            row = int(hit["pk"])
            self._remember(row, hit["entity"])
            out.append((row, float(hit["distance"])))
        return out

    def _remember(self, row: int, fields: Mapping[str, Any]) -> Chunk:
        chunk = _chunk(fields)
        self._cache[row] = chunk
        self._cache.move_to_end(row)
        while len(self._cache) > CACHE_CHUNKS:
            self._cache.popitem(last=False)
        return chunk


class MilvusFusingIndex(MilvusIndex):
    """A Milvus index whose hybrid searches Milvus fuses (``hybrid_search``), in one request."""

    def search_hybrid(self, query: str, vector: np.ndarray, n: int, spec: HybridQuery) -> list[tuple[int, float]]:
        from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

        weights = self._query_weights(query)
        if not weights:  # nothing to fuse with: the dense list alone, ordered as fusion would
            return self.search_dense(vector, n)
        requests = [
            AnnSearchRequest(data=[_floats(vector)], anns_field="dense", param=self._dense_params(n), limit=n),
            AnnSearchRequest(data=[weights], anns_field="sparse", param={"metric_type": "IP"}, limit=n),
        ]
        ranker = (
            RRFRanker(spec.rrf_k)
            if spec.fusion == Fusion.RRF
            else WeightedRanker(spec.dense_weight, spec.bm25_weight, norm_score=True)
        )
        found = self.client.hybrid_search(
            self.params.collection, requests, ranker=ranker, limit=n, output_fields=CHUNK_FIELDS
        )
        return self._hits(found)


class MilvusDocuments(dict[str, Document]):
    """The index's documents as a dict that reads each one from Milvus on first use; iterating,
    ``len``, ``keys``, ``values`` and ``items`` read them all first. (A dict rather than a Mapping:
    the chat page and the evaluation take a dict.)"""

    def __init__(self, client, params: MilvusParams) -> None:
        super().__init__()
        self.client = client
        self.params = params
        self._complete = False

    def __missing__(self, doc_id: str) -> Document:
        if not self._complete:
            self._read(f"doc_id in {quoted([doc_id])}")
            if dict.__contains__(self, doc_id):
                return dict.__getitem__(self, doc_id)
        raise KeyError(doc_id)

    def get(self, doc_id: str, default: Any = None) -> Any:
        try:
            return self[doc_id]
        except KeyError:
            return default

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.get(doc_id) is not None

    def _read(self, filter: str) -> None:
        parts: dict[str, list[dict[str, Any]]] = {}
        for r in scan(self.client, self.params.docs, ["doc_id", "part", "text", "title", "source", "metadata"], filter):
            parts.setdefault(r["doc_id"], []).append(r)
        for doc_id, rows in parts.items():
            rows.sort(key=lambda r: r["part"])
            first = rows[0]
            text = "".join(r["text"] for r in rows)
            dict.__setitem__(self, doc_id, Document(doc_id, text, first["title"], first["source"], first["metadata"]))

    def _read_all(self) -> None:
        if not self._complete:
            self._read("")
            self._complete = True

    def __iter__(self) -> Iterator[str]:
        self._read_all()
        return super().__iter__()

    def __len__(self) -> int:
        self._read_all()
        return super().__len__()

    def keys(self):
        self._read_all()
        return super().keys()

    def values(self):
        self._read_all()
        return super().values()

    def items(self):
        self._read_all()
        return super().items()


def _chunk(fields: Mapping[str, Any]) -> Chunk:
    return Chunk(
        fields["chunk_id"], fields["doc_id"], int(fields["start"]), int(fields["end"]), fields["text"], fields["title"]
    )


def _floats(vector: np.ndarray) -> list[float]:
    return np.asarray(vector, dtype=np.float32).reshape(-1).tolist()


def milvus_stamp(params: MilvusParams) -> tuple[int, int, int] | None:
    """(update time in ns, documents, chunks) of the index's manifest; None when there is no index."""
    from rag.steps.store.milvus_schema import MANIFEST_PROPERTY, read_properties

    client = connect(params)
    if not client.has_collection(params.collection):
        return None
    try:
        manifest = json.loads(read_properties(client, params.collection)[MANIFEST_PROPERTY])
    except (KeyError, ValueError):
        return None
    counts = manifest.get("counts", {})
    return int(manifest.get("updated_ns", 0)), int(counts.get("documents", 0)), int(counts.get("chunks", 0))
