"""A Milvus index's layout: its three collections, the builds behind their names, and the
manifest kept in their properties.

One index is three collections (Milvus wants a vector field in each, hence a 2-d placeholder vector
where nothing else is searched):

- ``<name>``: one row per chunk (primary key: a stable 63-bit hash of the chunk id), the chunk's
  fields, ``dense`` (FLOAT_VECTOR, inner product) and ``sparse`` (the chunk's BM25 tf weights,
  rag/steps/store/sparse.py; SPARSE_INVERTED_INDEX, inner product). Its properties hold the manifest
  (format, embedder, chunker, BM25, counts) as JSON under ``rag.manifest``, and ``rag.state``.
- ``<name>_docs``: the documents, split into parts of at most PART_CHARS characters (VARCHAR holds
  65,535 bytes) with title, source, metadata and the sha256 that plans incremental ingests.
- ``<name>_terms``: document frequency per term id, for the query side's IDF.

The three names are aliases: a full build writes new collections (``<name>_g<time>_<random>``...) and
``switch`` points the names at them at its commit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any

from rag.core.errors import IndexError_
from rag.steps.store.milvus_client import MilvusParams

log = logging.getLogger(__name__)

FORMAT = "rag-milvus-index"
FORMAT_VERSION = 1
MANIFEST_PROPERTY = "rag.manifest"
STATE_PROPERTY = "rag.state"  # "clean", or "writing" while an ingest runs (or after one was interrupted)
PART_CHARS = 16_000  # at most 4 bytes a character: under VARCHAR's 65,535 bytes
CHUNK_FIELDS = ["chunk_id", "doc_id", "title", "start", "end", "text"]
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 256  # raised to the number of candidates asked for when that is larger


def collection_name(index_dir: Path) -> str:
    """``rag_<folder name>_<8 hex of the resolved path>``: letters, digits and underscores only."""
    resolved = Path(index_dir).expanduser().resolve()
    slug = re.sub(r"[^0-9A-Za-z]+", "_", resolved.name).strip("_")[:40] or "index"
    digest = hashlib.blake2b(str(resolved).encode("utf-8"), digest_size=4).hexdigest()
    return f"rag_{slug}_{digest}"


def stable_id(text: str) -> int:
    """A non-negative int64 key for a chunk id or document part, the same in every process."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little") & (2**63 - 1)


def read_properties(client, name: str) -> dict[str, str]:
    return dict(client.describe_collection(name).get("properties", {}) or {})


def read_manifest(client, params: MilvusParams) -> tuple[dict[str, Any], str]:
    """(manifest, state) of an existing index; an IndexError_ naming the fix otherwise."""
    fix = f"run `rag ingest --rebuild --index-backend milvus --milvus-uri {params.uri}`"
    missing = [n for n in (params.collection, params.docs, params.terms) if not client.has_collection(n)]
    if missing:
        raise IndexError_(
            f"no index in Milvus at {params.where()} (collection {missing[0]} is missing); "
            f"run `rag ingest --index-backend milvus --milvus-uri {params.uri}`"
        )
    properties = read_properties(client, params.collection)
    try:
        manifest = json.loads(properties[MANIFEST_PROPERTY])
    except (KeyError, ValueError) as e:
        raise IndexError_(f"Milvus collection {params.collection} has no readable rag manifest ({e}); {fix}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexError_(f"Milvus collection {params.collection} is not a rag index; {fix}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexError_(
            f"Milvus index {params.where()} has format version {manifest.get('format_version')}, "
            f"this rag reads version {FORMAT_VERSION}; {fix}"
        )
    return manifest, properties.get(STATE_PROPERTY, "clean")


def write_properties(client, params: MilvusParams, manifest: dict[str, Any] | None, state: str) -> None:
    properties = {STATE_PROPERTY: state}
    if manifest is not None:
        properties[MANIFEST_PROPERTY] = json.dumps(manifest, ensure_ascii=False, sort_keys=True)
    client.alter_collection_properties(params.collection, properties=properties)


def new_generation(params: MilvusParams) -> MilvusParams:
    """The collections of a full build: ``<name>_g<time>_<random>`` (+ ``_docs``, ``_terms``), written
    while the index's names still point at the previous build; ``switch`` makes them current."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "_" + uuid.uuid4().hex[:6]
    return dataclasses.replace(params, collection=f"{params.collection}_g{stamp}")


def _generations(client, params: MilvusParams) -> dict[str, list[str]]:
    """Every collection of this index's builds -> the names (aliases) that point at it."""
    pattern = re.compile(re.escape(params.collection) + r"_g\d{14}_[0-9a-f]{6}(_docs|_terms)?")
    return {
        name: list(client.list_aliases(name).get("aliases", []))
        for name in client.list_collections()
        if pattern.fullmatch(name)
    }


def switch(client, params: MilvusParams, target: MilvusParams) -> None:
    """Point the index's names (aliases) at ``target``'s collections, then drop the previous build's.
    Searches see the old build or the new one, never a half-written one."""
    generations = _generations(client, params)
    current = {alias: name for name, aliases in generations.items() for alias in aliases}
    plain = set(client.list_collections())
    for alias, name in zip(
        (params.collection, params.docs, params.terms), (target.collection, target.docs, target.terms)
    ):
        if alias in current:
            client.alter_alias(name, alias)
        else:
            if alias in plain:  # a collection (not an alias) by the index's name: replaced by this build
                client.drop_collection(alias)
            client.create_alias(name, alias)
    for previous in {current[a] for a in (params.collection, params.docs, params.terms) if a in current}:
        client.drop_collection(previous)


def drop_unused_generations(client, params: MilvusParams) -> None:
    """Drop the collections of builds no name points at (full builds that were interrupted)."""
    for name, aliases in _generations(client, params).items():
        if not aliases:
            client.drop_collection(name)


def create(client, params: MilvusParams, dim: int, manifest: dict[str, Any]) -> None:
    """Create the three (empty) collections of an index, indexed and loaded."""
    from pymilvus import DataType

    chunks = client.create_schema(auto_id=False, enable_dynamic_field=False)
    chunks.add_field("pk", DataType.INT64, is_primary=True)
    chunks.add_field("chunk_id", DataType.VARCHAR, max_length=4096)
    chunks.add_field("doc_id", DataType.VARCHAR, max_length=4096)
    chunks.add_field("title", DataType.VARCHAR, max_length=8192)
    chunks.add_field("start", DataType.INT64)
    chunks.add_field("end", DataType.INT64)
    chunks.add_field("text", DataType.VARCHAR, max_length=65535)
    chunks.add_field("n_tokens", DataType.INT64)  # the chunk's BM25 length
    chunks.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    chunks.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    index = client.prepare_index_params()
    if params.dense_index == "HNSW":
        index.add_index(
            "dense", index_type="HNSW", metric_type="IP", params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION}
        )
    else:
        index.add_index("dense", index_type="FLAT", metric_type="IP")
    # explicit parameters: Milvus Lite rejects AUTOINDEX and drop_ratio_build
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    index.add_index("doc_id", index_type="INVERTED")
    properties = {
        MANIFEST_PROPERTY: json.dumps(manifest, ensure_ascii=False, sort_keys=True),
        STATE_PROPERTY: "writing",
    }
    _create_indexed(client, params.collection, chunks, index, properties)
    docs = client.create_schema(auto_id=False, enable_dynamic_field=False)
    docs.add_field("pk", DataType.INT64, is_primary=True)
    docs.add_field("doc_id", DataType.VARCHAR, max_length=4096)
    docs.add_field("part", DataType.INT64)
    docs.add_field("parts", DataType.INT64)
    docs.add_field("text", DataType.VARCHAR, max_length=65535)
    docs.add_field("title", DataType.VARCHAR, max_length=8192)
    docs.add_field("source", DataType.VARCHAR, max_length=8192)
    docs.add_field("sha256", DataType.VARCHAR, max_length=64)
    docs.add_field("chunks", DataType.INT64)
    docs.add_field("metadata", DataType.JSON)
    docs.add_field("placeholder", DataType.FLOAT_VECTOR, dim=2)
    _create_with_placeholder(client, params.docs, docs, scalar="doc_id")
    terms = client.create_schema(auto_id=False, enable_dynamic_field=False)
    terms.add_field("pk", DataType.INT64, is_primary=True)  # the term id
    terms.add_field("df", DataType.INT64)
    terms.add_field("placeholder", DataType.FLOAT_VECTOR, dim=2)
    _create_with_placeholder(client, params.terms, terms, scalar=None)


def _create_with_placeholder(client, name: str, schema, scalar: str | None) -> None:
    index = client.prepare_index_params()
    index.add_index("placeholder", index_type="FLAT", metric_type="IP")
    if scalar:
        index.add_index(scalar, index_type="INVERTED")
    _create_indexed(client, name, schema, index, None)


def _create_indexed(client, name: str, schema, index, properties: dict[str, str] | None) -> None:
    # Strong consistency: a search right after an ingest sees every row it wrote
    client.create_collection(name, schema=schema, properties=properties, consistency_level="Strong")
    # the collection is empty, so its indexes are built at once: no need to poll (0.5 s each) for them
    client.create_index(name, index, sync=False)
    client.load_collection(name)


PLACEHOLDER = [1.0, 0.0]
