"""Staying connected to Milvus while it stops and starts again: a deadline on every request, a new
connection when the engine went away, and an error that names the address and the fix.

What pymilvus 3.0 does alone (measured against a Milvus Lite server process killed with SIGKILL,
docs/PERFORMANCE.md "The index on Milvus"): a request to a dead engine fails in milliseconds
(connection refused), but one to a frozen engine has no deadline by default (still waiting after
60 s); once the engine is back its gRPC channel reconnects within about a second, yet a restarted
Milvus Lite has released every collection and each search then fails with "call load() before".
A connection here handles all three.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any

from rag.core.errors import IndexError_

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0  # longest wait for a connection (a host out of reach; a refusal is immediate)
LOOKUP_TIMEOUT_S = 10.0  # longest wait for a search or a read by key: a frozen engine fails here
WORK_TIMEOUT_S = 600.0  # longest wait for a write, a scan page or a load (Milvus Lite rebuilds its index then)
RECONNECT_FOR_S = 4.0  # how long a request keeps reconnecting to an engine that went away
LOOKUPS = frozenset(
    {"search", "hybrid_search", "get", "has_collection", "describe_collection", "list_collections", "list_aliases"}
)
ONCE = frozenset({"create_collection", "create_index", "create_alias", "drop_collection"})  # repeating may fail
WRITES = ONCE | {"upsert", "delete", "flush", "alter_collection_properties", "alter_alias"}
REQUESTS = LOOKUPS | WRITES | {"query", "load_collection"}
NOT_LOADED = 101  # Milvus's CollectionNotLoaded: a restarted engine has released the collection
CONNECT_FAILED = 2  # pymilvus: no connection (Milvus itself: service unavailable)


class MilvusUnreachable(IndexError_):
    """Milvus did not answer: stopped, restarting, frozen or out of reach. The next request reconnects."""


def open_client(uri: str, token: str):
    """A MilvusClient with a channel of its own (closing a shared one leaves it open for the next
    client); for a ``.db`` uri pymilvus first starts Milvus Lite in this process, or finds it running.
    ImportError when pymilvus is not installed."""
    # pymilvus configures its logger when first imported (level WARNING, a handler of its own) over
    # the level the application had set: that level is kept
    logger = logging.getLogger("pymilvus")
    level = logger.level
    from pymilvus import MilvusClient

    if level != logging.NOTSET:
        logger.setLevel(level)
    return MilvusClient(uri=uri, token=token, timeout=CONNECT_TIMEOUT_S, dedicated=True)


class MilvusConnection:
    """A MilvusClient that outlives its engine restarting: the methods the index uses, same arguments.

    Every request gets a deadline (LOOKUP_TIMEOUT_S, else WORK_TIMEOUT_S). When the engine cannot be
    reached (refused, reset, closed channel) the client is dropped, a new one connects (for Milvus Lite
    this starts the engine again) and the request is made again, for RECONNECT_FOR_S at most: searches,
    reads and idempotent writes (upserts and deletes by key, flushes, property and alias changes);
    a create or drop is not repeated. A collection that a restarted engine has released is loaded again,
    once. Then ``MilvusUnreachable`` names the address and the fix. Any other error is raised as it
    came, without a retry. Safe to share between threads.
    """

    def __init__(self, uri: str, token: str, client) -> None:
        self.uri = uri
        self.token = token
        self._client: Any = client
        self._lock = threading.Lock()  # one reconnection at a time; requests run concurrently
        self._down_since: float | None = None

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in REQUESTS:
            return functools.partial(self._request, name)
        return getattr(self._current(), name)  # no request: create_schema, prepare_index_params

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _current(self):
        with self._lock:
            if self._client is None:
                self._client = open_client(self.uri, self.token)
            return self._client

    def _drop(self, client) -> None:
        with self._lock:
            if self._client is not client:
                return  # another thread has replaced it already
            self._client = None
        try:
            client.close()
        except Exception as e:  # a broken channel may fail to close; it is dropped either way
            log.debug("closing the broken Milvus connection to %s: %s", self.uri, e)

    def _request(self, name: str, *args, **kwargs):
        timeout_s = LOOKUP_TIMEOUT_S if name in LOOKUPS else WORK_TIMEOUT_S
        kwargs.setdefault("timeout", timeout_s)
        give_up = time.monotonic() + RECONNECT_FOR_S
        wait_s, reloaded = 0.1, False
        while True:
            client = None
            try:
                client = self._current()
                result = getattr(client, name)(*args, **kwargs)
            except Exception as e:
                failure = "gone" if client is None else _failure(e)  # no client: connecting failed
                if not failure:
                    raise
                if failure == "unloaded":
                    if reloaded or not args:
                        raise
                    reloaded = True
                    log.warning("Milvus at %s had released %s (restarted?): loading it again", self.uri, args[0])
                    self._request("load_collection", args[0])
                    continue
                if client is not None:
                    self._drop(client)  # this request or the next connects anew
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    log.warning("Milvus at %s is not answering (%s)", self.uri, _reason(e))
                if failure == "slow":
                    raise MilvusUnreachable(self._message(name, f"no answer within {timeout_s:g} s")) from e
                if name in ONCE or time.monotonic() + wait_s > give_up:
                    raise MilvusUnreachable(self._message(name, _reason(e))) from e
                time.sleep(wait_s)
                wait_s = min(2 * wait_s, 1.0)
                continue
            if self._down_since is not None:
                log.warning("Milvus at %s answers again", self.uri)
                self._down_since = None
            return result

    def _message(self, name: str, reason: str) -> str:
        if self.uri.endswith(".db"):
            fix = (
                "Milvus Lite runs in this process: check that its folder is readable and that no other process holds it"
            )
        else:
            fix = "start Milvus again (or check milvus_uri); a running `rag serve` reconnects by itself"
        if name in WRITES:
            fix += "; then run the ingest again: it completes the interrupted one"
        return f"Milvus at {self.uri} is not answering ({name}: {reason}); {fix}"


def _failure(e: BaseException) -> str:
    """Why a request failed: "gone" (the engine cannot be reached), "slow" (no answer in time),
    "unloaded" (a restarted engine has released the collection) or "" (anything else)."""
    import grpc
    from pymilvus.exceptions import MilvusException

    code: Any = e.code() if isinstance(e, grpc.RpcError) else getattr(e, "code", None)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return "slow"
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        return "gone"
    if isinstance(e, MilvusException):
        if code == NOT_LOADED:
            return "unloaded"
        if code == CONNECT_FAILED or "closed channel" in str(e.message):
            return "gone"
    if isinstance(e, ValueError) and "closed channel" in str(e):
        return "gone"
    return ""


def _reason(e: BaseException) -> str:
    """One line about a pymilvus or gRPC failure: the gRPC details underneath when there are some
    (pymilvus's own message for a refused connection blames "illegal connection params")."""
    seen: set[int] = set()
    causes: list[BaseException | None] = [e]
    while causes:
        cause = causes.pop(0)
        if cause is None or id(cause) in seen:  # pymilvus raises e from e
            continue
        seen.add(id(cause))
        details = getattr(cause, "details", None)
        if callable(details) and details():
            return " ".join(str(details()).split())[:200]
        causes += [cause.__cause__, cause.__context__]
    return " ".join(str(getattr(e, "message", None) or e).split())[:200]
