"""The term statistics of a Milvus index (rag/steps/store/sparse.py): document frequencies kept
incrementally in the terms collection, recounted from the chunks after an interrupted ingest, and
the chunks' BM25 weights recomputed when the average chunk length drifts."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

from rag.core.errors import IndexError_
from rag.steps.bm25 import Tokenizer
from rag.steps.store.milvus_client import BATCH_IDS, BATCH_ROWS, MilvusParams, scan
from rag.steps.store.milvus_schema import PLACEHOLDER
from rag.steps.store.sparse import document_weights, term_counts

log = logging.getLogger(__name__)


def apply_df(client, p: MilvusParams, delta: Mapping[int, int]) -> None:
    """Add ``delta`` to the stored document frequencies; terms that reach 0 are deleted."""
    ids = [t for t, d in delta.items() if d]
    for begin in range(0, len(ids), BATCH_IDS):
        batch = ids[begin : begin + BATCH_IDS]
        df = {int(r["pk"]): int(r["df"]) for r in client.get(p.terms, ids=batch, output_fields=["df"])}
        new = {t: df.get(t, 0) + delta[t] for t in batch}
        if any(v < 0 for v in new.values()):
            raise IndexError_(f"term statistics of {p.where()} are inconsistent; run the ingest with --rebuild")
        upserts = [{"pk": t, "df": v, "placeholder": PLACEHOLDER} for t, v in new.items() if v > 0]
        gone = [t for t, v in new.items() if v == 0]
        if upserts:
            client.upsert(p.terms, upserts)
        if gone:
            client.delete(p.terms, ids=gone)


def recount_terms(client, p: MilvusParams, manifest: dict[str, Any]) -> tuple[int, int]:
    """Rebuild the terms collection and the chunk and token totals from the chunks themselves."""
    df: Counter[int] = Counter()
    n_chunks = tokens = 0
    for r in scan(client, p.collection, ["sparse", "n_tokens"]):
        df.update(int(t) for t in r["sparse"])
        n_chunks += 1
        tokens += int(r["n_tokens"])
    stored = [int(r["pk"]) for r in scan(client, p.terms, [], keys=2**32)]
    for begin in range(0, len(stored), BATCH_IDS):
        client.delete(p.terms, ids=stored[begin : begin + BATCH_IDS])
    rows = [{"pk": t, "df": n, "placeholder": PLACEHOLDER} for t, n in df.items()]
    for begin in range(0, len(rows), BATCH_ROWS * 8):
        client.upsert(p.terms, rows[begin : begin + BATCH_ROWS * 8])
    manifest["counts"] = {**manifest["counts"], "chunks": n_chunks}
    manifest["tokens"] = tokens
    log.info("recounted the term statistics of %s: %d chunks, %d terms", p.where(), n_chunks, len(df))
    return n_chunks, tokens


def reweight_all(
    client, p: MilvusParams, tokenizer: Tokenizer, avgdl: float, k1: float, b: float, skip: set[int]
) -> None:
    """Recompute every chunk's BM25 weights with ``avgdl`` (partial upserts of the sparse field)."""
    batch: list[dict[str, Any]] = []
    for r in scan(client, p.collection, ["pk", "text"]):
        if int(r["pk"]) in skip:
            continue
        tf, length = term_counts(tokenizer(r["text"]))
        batch.append({"pk": int(r["pk"]), "sparse": document_weights(tf, length, avgdl, k1, b)})
        if len(batch) == BATCH_ROWS * 4:
            client.upsert(p.collection, batch, partial_update=True)
            batch = []
    if batch:
        client.upsert(p.collection, batch, partial_update=True)
    log.info("re-weighted the BM25 vectors of %s for an average chunk length of %.2f", p.where(), avgdl)
