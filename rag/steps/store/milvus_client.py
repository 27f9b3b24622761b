"""Talking to Milvus: where an index is (``MilvusParams``), one connection per address in a process
(it survives the engine restarting: milvus_connection.py), and reading many rows without a query
iterator.

``uri``: a path ending in ``.db`` is Milvus Lite (embedded: its server runs in this process and holds
the folder's lock); ``http://host:19530`` a Milvus standalone or distributed deployment.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.core.errors import IndexError_
from rag.steps.store.milvus_connection import MilvusConnection, open_client

BATCH_ROWS = 256  # rows per upsert request
BATCH_IDS = 500  # ids per get, delete or filter expression


@dataclass(frozen=True)
class MilvusParams:
    uri: str  # "<folder>/milvus.db" (Milvus Lite) or http(s)://host:port
    collection: str  # base name of the index's collections
    dense_index: str = "HNSW"  # "HNSW" (approximate) or "FLAT" (exact)
    server_fusion: bool = False  # hybrid search fused by Milvus (hybrid_search) rather than by the Retriever
    token: str = ""  # "user:password" or an API key, for servers with authentication

    @property
    def docs(self) -> str:
        return self.collection + "_docs"

    @property
    def terms(self) -> str:
        return self.collection + "_terms"

    def where(self) -> str:
        return f"{self.uri} collection {self.collection}"


_CLIENTS: dict[tuple[str, str], MilvusConnection] = {}  # one connection per address in a process
_CLIENTS_LOCK = threading.Lock()


def connect(params: MilvusParams) -> MilvusConnection:
    """The connection to ``params.uri``; a failure to open it becomes an IndexError_ that names the fix."""
    with _CLIENTS_LOCK:
        client = _CLIENTS.get((params.uri, params.token))
        if client is None:
            client = _CLIENTS[(params.uri, params.token)] = MilvusConnection(
                params.uri, params.token, _new_client(params)
            )
        return client


def _new_client(params: MilvusParams):
    if params.uri.endswith(".db"):
        Path(params.uri).parent.mkdir(parents=True, exist_ok=True)
    try:
        return open_client(params.uri, params.token)
    except ImportError as e:
        raise IndexError_(
            f"index_backend=milvus needs pymilvus and milvus-lite ({e}); run `scripts/setup.sh scale`"
        ) from e
    except Exception as e:  # pymilvus raises MilvusException and grpc errors alike
        hint = (
            "another process (a running `rag serve`?) may hold this Milvus Lite folder"
            if params.uri.endswith(".db")
            else "check milvus_uri and that the server is running"
        )
        raise IndexError_(f"cannot open Milvus at {params.uri} ({e}); {hint}") from e


def quoted(values) -> str:
    """A Milvus filter list literal of strings: ["a", "b"] (JSON escaping is Milvus's string syntax)."""
    return json.dumps(list(values), ensure_ascii=False)


QUERY_LIMIT = 16_384  # Milvus's largest offset + limit for one query
SCAN_PAGE = 8_000  # rows a scan asks for at a time (expected; the key ranges are split to fit)
KEY_SPACE = 2**63 - 1  # chunk and document keys: stable_id(); term keys are below 2**32


def scan(client, name: str, fields: list[str], *filters: str, keys: int = KEY_SPACE) -> Iterator[dict[str, Any]]:
    """Every row of ``name`` matching any of ``filters`` (all rows when none is given).

    Keys are uniform hashes, so splitting the key range into equal parts splits the rows evenly:
    each part is one ``query`` (no query_iterator, which Milvus Lite cannot pin to a snapshot and which
    warns on every use). A part that comes back full is split again.
    """
    for expression in filters or ("",):
        counted = client.query(name, filter=expression, output_fields=["count(*)"])
        total = int(counted[0]["count(*)"]) if counted else 0
        if total:
            parts = -(-total // SCAN_PAGE)
            step = -(-(keys + 1) // parts)
            for lo in range(0, keys + 1, step):
                yield from _scan_keys(client, name, fields, expression, lo, min(lo + step, keys + 1) - 1)


def _scan_keys(client, name: str, fields: list[str], expression: str, lo: int, hi: int) -> Iterator[dict[str, Any]]:
    where = f"pk >= {lo} and pk <= {hi}" + (f" and ({expression})" if expression else "")
    rows = client.query(name, filter=where, output_fields=list(dict.fromkeys(["pk", *fields])), limit=QUERY_LIMIT)
    if len(rows) < QUERY_LIMIT or lo == hi:
        yield from rows
        return
    middle = (lo + hi) // 2
    yield from _scan_keys(client, name, fields, expression, lo, middle)
    yield from _scan_keys(client, name, fields, expression, middle + 1, hi)


def load(client, params: MilvusParams) -> None:
    """Load the index's collections (Milvus searches and queries only loaded ones; a restarted Milvus
    Lite has released them)."""
    for name in (params.collection, params.docs, params.terms):
        client.load_collection(name)


def close(client, params: MilvusParams) -> None:
    """Close the connection and, for Milvus Lite, stop its in-process server (which holds the folder's
    lock, so another process can open it)."""
    with _CLIENTS_LOCK:
        _CLIENTS.pop((params.uri, params.token), None)
    client.close()
    if params.uri.endswith(".db"):
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(params.uri)


def close_all() -> None:
    """Close every Milvus connection this process opened (and stop its Milvus Lite servers)."""
    with _CLIENTS_LOCK:
        opened = list(_CLIENTS.items())
    for (uri, token), client in opened:
        close(client, MilvusParams(uri=uri, collection="", token=token))
