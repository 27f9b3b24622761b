"""Ingest on Ray Data: new or changed documents are chunked and embedded by a pool of actors, each
holding one embedder (CPU, or GPU with ``gpus_per_worker``).

The driver (this process) reads and normalises the corpus and plans by content hash as the local
engine does (rag/steps/ingest.py), so only new or changed documents go to Ray; it writes what comes
back through the index seam. Workers rebuild the embedder from an ``EmbedderSpec`` (plain, picklable
parameters; the model files must exist at ``location`` on every node, e.g. a shared cache_dir or
`rag models` run on each) and check that it has the driver's identity. Each worker uses one thread
(OMP/MKL/OpenBLAS pinned to 1) and one CPU.

A worker that dies is restarted by Ray and its batch retried (Ray Data's actor pools retry without
limit). Results are collected per document and keyed by chunk id: a document is complete when all
the chunks its worker announced have arrived, so a batch delivered twice is counted once, and a
document that never arrives fails the ingest before anything is committed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.errors import ConfigError, IndexError_
from rag.core.types import Chunk, Document
from rag.steps.chunking import chunk_document
from rag.steps.embedder import Embedder, OnnxInt8Embedder, SentenceTransformerEmbedder
from rag.steps.ingest import ProgressFn

log = logging.getLogger(__name__)

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
# Ray's usage statistics are on unless turned off. On, Ray Data starts a thread in the driver at its
# first run that queries Prometheus every 10 s for as long as the process lives (a chat server that
# ingested once, the test process), and records each run in a usage actor. The product sends nothing
# anywhere, so they are off unless the user's environment says otherwise (RAY_USAGE_STATS_ENABLED=1).
USAGE_STATS_ENV = "RAY_USAGE_STATS_ENABLED"


@dataclass(frozen=True)
class EmbedderSpec:
    """What a worker needs to rebuild the pipeline's embedder."""

    backend: str  # "onnx-int8" (a verified int8 folder) or "torch" (a sentence-transformers folder)
    location: str  # the model folder, as resolved on the driver
    name: str
    query_prefix: str | None
    passage_prefix: str | None
    batch_size: int
    threads: int = 1
    device: str = "cpu"  # "cuda" on GPU workers (torch only)


def build_embedder(spec: EmbedderSpec) -> Embedder:
    options: dict[str, Any] = {
        "name": spec.name,
        "query_prefix": spec.query_prefix,
        "passage_prefix": spec.passage_prefix,
        "threads": spec.threads,
        "batch_size": spec.batch_size,
    }
    if spec.backend == "onnx-int8":
        if spec.device != "cpu":
            raise ConfigError("GPU workers need embed_backend='torch': the int8 copy runs on CPUs")
        return OnnxInt8Embedder(Path(spec.location), **options)
    embedder = SentenceTransformerEmbedder(spec.location, **options)
    if spec.device != "cpu":
        embedder.model.to(spec.device)
    return embedder


def identity_digest(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class RayParams:
    address: str = ""  # "" starts a local Ray for the run; "host:port" joins a running cluster
    workers: int = 2
    gpus_per_worker: float = 0.0
    docs_per_batch: int = 8  # documents per actor call


class ChunkAndEmbed:
    """A Ray Data actor: chunks a batch of documents and embeds the chunks with its own embedder."""

    def __init__(self, spec: EmbedderSpec, chunk_tokens: int, overlap_sentences: int) -> None:
        self.embedder = build_embedder(spec)
        self.chunk_tokens = chunk_tokens
        self.overlap_sentences = overlap_sentences
        self.identity = identity_digest(self.embedder.identity())

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        rows: list[tuple[str, int, Chunk | None]] = []
        for doc_id, text, title, source, metadata in zip(
            batch["doc_id"], batch["text"], batch["title"], batch["source"], batch["metadata"], strict=True
        ):
            doc = Document(str(doc_id), str(text), str(title), str(source), json.loads(str(metadata)))
            chunks = chunk_document(
                doc,
                self.embedder.count_tokens,
                max_tokens=self.chunk_tokens,
                overlap_sentences=self.overlap_sentences,
                count_many=self.embedder.count_tokens_many,
            )
            # a document without chunks still answers, so the driver can tell it from a lost one
            rows.extend((doc.doc_id, len(chunks), c) for c in ([*chunks] if chunks else [None]))
        texts = [c.text for _, _, c in rows if c is not None]
        vectors = self.embedder.embed_documents(texts) if texts else np.zeros((0, self.embedder.dim), np.float32)
        matrix = np.zeros((len(rows), self.embedder.dim), dtype=np.float32)
        matrix[[i for i, (_, _, c) in enumerate(rows) if c is not None]] = vectors
        return {
            "doc_id": [d for d, _, _ in rows],
            "doc_chunks": np.array([n for _, n, _ in rows], dtype=np.int64),
            "chunk_id": [c.chunk_id if c else "" for _, _, c in rows],
            "start": np.array([c.start if c else 0 for _, _, c in rows], dtype=np.int64),
            "end": np.array([c.end if c else 0 for _, _, c in rows], dtype=np.int64),
            "text": [c.text if c else "" for _, _, c in rows],
            "title": [c.title if c else "" for _, _, c in rows],
            "vector": matrix,
            "identity": [self.identity] * len(rows),
        }


class RayEngine:
    """The ingest engine (rag/steps/ingest.py ``Engine``) that runs on Ray; progress in documents."""

    name = "ray"
    unit = "document"

    def __init__(
        self,
        spec: EmbedderSpec,
        identity: dict[str, Any],
        *,
        chunk_tokens: int,
        overlap_sentences: int,
        ray: RayParams,
    ) -> None:
        if ray.gpus_per_worker > 0 and spec.backend != "torch":
            raise ConfigError(
                f"ray_gpus_per_worker={ray.gpus_per_worker} needs embed_backend='torch' "
                f"(embed_backend={spec.backend!r} runs on CPUs); set embed_backend=torch or ray_gpus_per_worker=0"
            )
        self.spec = spec
        self.identity = identity_digest(identity)
        self.chunk_tokens = chunk_tokens
        self.overlap_sentences = overlap_sentences
        self.ray = ray

    def __call__(
        self, documents: Sequence[Document], progress: ProgressFn | None
    ) -> Iterator[tuple[str, list[Chunk], np.ndarray]]:
        if not documents:
            return
        import ray

        started_here = connect(self.ray)
        try:
            yield from self._run(documents, progress)
        except ray.exceptions.RayError as e:
            raise IndexError_(f"ingest on Ray failed: {_reason(e)}; nothing was committed") from e
        finally:
            if started_here:
                ray.shutdown()

    def _run(
        self, documents: Sequence[Document], progress: ProgressFn | None
    ) -> Iterator[tuple[str, list[Chunk], np.ndarray]]:
        import ray.data
        from ray.data import ActorPoolStrategy

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the product shows its own, in documents
        items = [
            {
                "doc_id": d.doc_id,
                "text": d.text,
                "title": d.title,
                "source": d.source,
                "metadata": json.dumps(d.metadata, ensure_ascii=False),
            }
            for d in documents
        ]
        # small runs still give every worker something to do
        per_batch = max(1, min(self.ray.docs_per_batch, -(-len(items) // self.ray.workers)))
        dataset = ray.data.from_items(items, override_num_blocks=-(-len(items) // per_batch)).map_batches(
            ChunkAndEmbed,
            fn_constructor_kwargs={
                "spec": self.spec,
                "chunk_tokens": self.chunk_tokens,
                "overlap_sentences": self.overlap_sentences,
            },
            compute=ActorPoolStrategy(size=self.ray.workers),
            batch_size=per_batch,
            num_cpus=1,
            num_gpus=self.ray.gpus_per_worker or None,
        )
        expected = {d.doc_id for d in documents}
        pending: dict[str, dict[str, tuple[Chunk, np.ndarray]]] = {}
        done: set[str] = set()
        repeats = 0
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for i, doc_id in enumerate(batch["doc_id"]):
                doc_id = str(doc_id)
                if str(batch["identity"][i]) != self.identity:
                    raise IndexError_(
                        "a Ray worker built a different embedder than this process "
                        f"({batch['identity'][i]} vs {self.identity}); check the model files at "
                        f"{self.spec.location} on every node"
                    )
                if doc_id in done or doc_id not in expected:
                    repeats += 1  # a retried batch delivered again
                    continue
                chunks = pending.setdefault(doc_id, {})
                chunk_id = str(batch["chunk_id"][i])
                if chunk_id:
                    chunk = Chunk(
                        chunk_id,
                        doc_id,
                        int(batch["start"][i]),
                        int(batch["end"][i]),
                        str(batch["text"][i]),
                        str(batch["title"][i]),
                    )
                    chunks[chunk_id] = (chunk, np.asarray(batch["vector"][i], dtype=np.float32))
                if len(chunks) == int(batch["doc_chunks"][i]):
                    del pending[doc_id]
                    done.add(doc_id)
                    ordered = sorted(chunks.values(), key=lambda cv: (cv[0].start, cv[0].end))
                    dim = np.asarray(batch["vector"]).shape[1]
                    matrix = np.stack([v for _, v in ordered]) if ordered else np.zeros((0, dim), np.float32)
                    yield doc_id, [c for c, _ in ordered], matrix
                    if progress:
                        progress(len(done), len(expected))
        if repeats:
            log.info("ignored %d chunk rows delivered twice by retried Ray tasks", repeats)
        lost = sorted(expected - done)
        if lost:
            raise IndexError_(
                f"Ray returned no complete result for {len(lost)} documents (first: {lost[0]!r}); "
                "nothing was committed, run the ingest again"
            )


def _reason(error: Exception) -> str:
    """The product's own message when a worker raised one (Ray keeps only the text), else Ray's."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    own = re.findall(r"rag\.core\.errors\.\w+: (.+)", text)
    return f"a worker stopped with: {own[-1]}" if own else f"{type(error).__name__}: {text}"


def connect(params: RayParams) -> bool:
    """Join the cluster at ``params.address`` or start a local Ray for this run; True when started here."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault(USAGE_STATS_ENV, "0")  # read by the driver at each Ray Data run
    runtime_env = {"env_vars": dict(ONE_THREAD)}
    try:
        if params.address:
            ray.init(
                address=params.address, runtime_env=runtime_env, log_to_driver=False, logging_level=logging.WARNING
            )
            return True  # a driver connection: shutdown() disconnects, the cluster keeps running
        ray.init(
            address="local",  # a new cluster for this run, never one that happens to run on this machine
            num_cpus=params.workers + 1,  # one per actor and one for Ray Data's own tasks
            num_gpus=None,
            include_dashboard=False,
            runtime_env=runtime_env,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = f"the Ray cluster at {params.address}" if params.address else "a local Ray"
        raise ConfigError(
            f"cannot start or join {where} ({e}); check ray_address (e.g. 10.0.0.5:6379, from `ray start "
            "--head`) or leave it empty to start one for the run. A cluster with token authentication "
            "also needs RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token)"
        ) from e
    return True
