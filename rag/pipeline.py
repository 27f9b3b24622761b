"""The composition root: the one place that reads Settings. It maps them into each step's small
parameter object, builds the parts on first use and keeps them (one Answerer per configuration)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rag.core.choices import EmbedBackend, IndexBackend, IngestEngine, LLMBackend, LLMServer, Mode
from rag.core.errors import ConfigError
from rag.core.heap import Settled, settle
from rag.models.registry import BUNDLED_EMBEDDER, BUNDLED_LLM
from rag.settings import Settings

if TYPE_CHECKING:
    from rag.models.provision import ModelRequest
    from rag.steps.answer.answerer import Answerer, AnswerParams
    from rag.steps.embedder import Embedder
    from rag.steps.focus import SentenceVectors
    from rag.steps.generation_queue import GenerationQueue
    from rag.steps.ingest import Engine, IngestParams, IngestReport
    from rag.steps.ingest_ray import EmbedderSpec
    from rag.steps.llm import LLMParams, ServerOptions
    from rag.steps.retrieve import RetrievalParams, Retriever
    from rag.steps.store.base import IndexWriter, SearchIndex
    from rag.steps.store.milvus_client import MilvusParams

log = logging.getLogger(__name__)

ANSWERS_FIRST_MAX_WAIT_S = 30.0  # an ingest in the serving process embeds at least a batch this often
T = TypeVar("T")
# `rag serve` says so on stderr when the passages' sentence vectors are computed (benchmarks wait for it)
SENTENCES_KEPT_LOG = "passages' sentences kept ahead"
INGEST_NICENESS = 10  # added to an ingest thread's nice value in a serving process (Linux: per thread)
KEEP_SENTENCES_MAX_CHUNKS = 5_000  # an index this small has its passages' sentence vectors computed ahead


class Pipeline:
    """Holds the loaded parts; each is built on first use and can be reloaded after an ingest."""

    def __init__(
        self, settings: Settings, *, embedder: Embedder | None = None, chat_models: dict[LLMBackend, Any] | None = None
    ) -> None:
        """``embedder`` and ``chat_models`` replace the configured ones (tests, or an application that
        builds its own)."""
        self.settings = settings
        self._lock = threading.RLock()
        self._embedder: Embedder | None = embedder
        self._index: SearchIndex | None = None
        self._retriever: Retriever | None = None
        self._sentences: SentenceVectors | None = None
        self._given_chat_models: dict[LLMBackend, Any] = dict(chat_models or {})
        self._chat_models: dict[LLMBackend, Any] = {}  # each behind its backend's generation queue
        self._queues: dict[LLMBackend, GenerationQueue] = {}
        self._answerers: dict[tuple[Mode, int, LLMBackend], Answerer] = {}
        self._prompts: Any = None
        self._ingest_lock = threading.Lock()  # one ingest at a time; answers never wait for it
        self._switch_lock = threading.Lock()  # one thread loads a newer index generation at a time
        self._index_stamp: tuple[int, int, int] | None = None  # manifest.json when the index was loaded
        self.index_problem = ""  # why the newest index generation is not served ("" when it is)
        self.ingest_progress: tuple[int, int] | None = None  # (done, total) passages while an ingest embeds
        self._settled = False  # a serving process froze its loaded objects (settle_heap)

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = build_embedder(self.settings)
                start_worker_pools(self._embedder)
            return self._embedder

    @property
    def index(self) -> SearchIndex:
        index = self._index  # loaded: no lock (the page's status line reads it while answers are built)
        if index is not None:
            return index
        with self._lock:
            if self._index is None:
                self._index_stamp = index_stamp(self.settings)
                self._index = self._load_index()
            return self._index

    @property
    def sentence_vectors(self) -> SentenceVectors:
        """The passages' sentences and vectors that answers focus on, kept across questions and index
        generations (keyed by the passage's text, so a changed passage is computed again)."""
        with self._lock:
            if self._sentences is None:
                from rag.steps.focus import SentenceVectors

                self._sentences = SentenceVectors(self.embedder)
            return self._sentences

    def keep_passage_sentences(self) -> int:
        """Compute the sentence vectors of every passage of an index of at most
        KEEP_SENTENCES_MAX_CHUNKS chunks ahead of the questions, so that a question's evidence does not
        wait for them; in a thread at INGEST_NICENESS, answers first before each batch. Returns the
        number of passages (0 for a larger index: its passages are computed when first shown)."""
        index = self.index
        if int(index.manifest.get("counts", {}).get("chunks", 0)) > KEEP_SENTENCES_MAX_CHUNKS:
            return 0
        texts = [c.text for c in index.chunks]
        kept = self.sentence_vectors

        def work() -> None:
            for start in range(0, len(texts), 64):
                self._answers_first()
                kept.add(texts[start : start + 64])

        run_niced(work, INGEST_NICENESS)
        return len(texts)

    def settle_heap(self) -> Settled:
        """Keep what is loaded now out of the garbage collector's full passes (rag/core/heap.py); a
        serving process calls it once loaded, and it is repeated after each index switch."""
        self._settled = True
        return settle()

    def _load_index(self) -> SearchIndex:
        return open_index(self.settings, self.embedder.identity())

    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is None:
                from rag.steps.retrieve import Retriever

                self._retriever = Retriever(self.index, self.embedder, retrieval_params(self.settings))
            return self._retriever

    def reload_index(self) -> None:
        with self._lock:
            self._index = None
            self._retriever = None
            self._answerers.clear()

    def ingest(
        self, corpus: Path | None = None, *, rebuild: bool = False, check_only: bool = False, progress=None
    ) -> IngestReport:
        from rag.steps.ingest import ingest

        def track(done: int, total: int) -> None:
            self.ingest_progress = (done, total)
            if progress is not None:
                progress(done, total)

        embedder = self.embedder  # built here, not in the lower-priority thread (see start_worker_pools)

        def run() -> IngestReport:
            return ingest(
                corpus or self.settings.corpus_dir,
                self.settings.index_dir,
                embedder,
                ingest_params(self.settings),
                rebuild=rebuild,
                check_only=check_only,
                progress=track,
                writer=index_writer(self.settings),
                engine=ingest_engine(self.settings, embedder) or self._local_engine(),
            )

        with self._ingest_lock:  # not self._lock: answers keep reading the current index meanwhile
            try:
                # a serving process ingests off the main thread: there it runs at a lower CPU priority
                on_main = threading.current_thread() is threading.main_thread()
                report = run() if on_main else run_niced(run, INGEST_NICENESS)
            finally:
                self.ingest_progress = None
        if report.written:
            self.refresh_index()
        return report

    def _local_engine(self) -> Engine:
        from rag.steps.ingest import LocalEngine

        return LocalEngine(self.embedder, ingest_params(self.settings), pause=self._answers_first)

    def _answers_first(self) -> None:
        """Before each batch an ingest embeds here: wait while answers are being generated or wait for
        a slot (indexing and generation share the cores), but at most ANSWERS_FIRST_MAX_WAIT_S, so that
        an ingest under a steady stream of questions still moves on."""
        deadline = time.monotonic() + ANSWERS_FIRST_MAX_WAIT_S
        while time.monotonic() < deadline and any(q.snapshot().length for q in list(self._queues.values())):
            time.sleep(0.05)

    def refresh_index(self, *, background: bool = False) -> bool:
        """Switch to the generation manifest.json names now when it changed since the index was loaded
        (an ingest here or in another process). One stat() when nothing changed. The new generation is
        loaded outside the lock and swapped in at once: answers in flight finish on the one they began
        with. A damaged new generation is logged and kept in ``index_problem``; the current one stays.
        ``background`` loads in a thread and returns at once. True when this call switched."""
        if self._index is None or index_stamp(self.settings) == self._index_stamp:
            return False
        if background:
            threading.Thread(target=self.refresh_index, name="index-switch", daemon=True).start()
            return False
        if not self._switch_lock.acquire(blocking=False):
            return False  # another thread is loading it
        try:
            stamp = index_stamp(self.settings)
            if stamp == self._index_stamp:
                return False
            from rag.core.errors import IndexError_
            from rag.steps.retrieve import Retriever

            try:
                index = self._load_index()
                retriever = Retriever(index, self.embedder, retrieval_params(self.settings))
            except IndexError_ as e:
                if str(e) != self.index_problem:
                    log.error("still serving the previous index: the new one cannot be used: %s", e)
                self.index_problem, self._index_stamp = str(e), stamp  # retried when manifest.json changes again
                return False
            with self._lock:
                self.reload_index()
                self._index, self._retriever, self._index_stamp = index, retriever, stamp
                self.index_problem = ""
            log.info("now serving index generation %s", index.manifest.get("generation"))
            if self._settled:  # the previous generation's cycles are collected, the new one frozen
                self.settle_heap()
            return True
        finally:
            self._switch_lock.release()

    def llm_model_for(self, backend: LLMBackend) -> str:
        """The configured model for the configured backend; the bundled one for the other (local)."""
        if backend == self.settings.llm_backend:
            return self.settings.llm_model
        if backend == LLMBackend.LOCAL:
            return BUNDLED_LLM
        raise ConfigError(f"llm_backend={backend.value!r} is not configured; set llm_backend and llm_model")

    @property
    def generation_queue(self) -> GenerationQueue:
        """Where generation with the configured backend waits for one of its slots: its length, the
        place of a request and the estimated wait (rag/steps/generation_queue.py)."""
        return self.generation_queue_for(self.settings.llm_backend)

    def generation_queue_for(self, backend: LLMBackend) -> GenerationQueue:
        queue = self._queues.get(backend)
        if queue is None:
            from rag.steps.generation_queue import GenerationQueue

            with self._lock:
                queue = self._queues.setdefault(backend, GenerationQueue(generation_slots(self.settings, backend)))
        return queue

    def chat_model(self, backend: LLMBackend | None = None):
        """The chat model for ``backend``, behind its generation queue; built once."""
        backend = backend or self.settings.llm_backend
        chat = self._chat_models.get(backend)  # no lock once built: a question never waits on a build
        if chat is not None:
            return chat
        from rag.steps.llm import QueuedChatModel, build_chat_model

        with self._lock:
            if backend not in self._chat_models:
                inner = self._given_chat_models.get(backend) or build_chat_model(
                    llm_params(self.settings, backend, self)
                )
                self._chat_models[backend] = QueuedChatModel(chat=inner, queue=self.generation_queue_for(backend))
            return self._chat_models[backend]

    def answerer(
        self, *, mode: Mode | str | None = None, k: int | None = None, backend: LLMBackend | str | None = None
    ):
        """The Answerer for one configuration, built once and kept until the index is reloaded."""
        from rag.steps.answer.answerer import Answerer
        from rag.steps.llm import token_counter
        from rag.steps.metadata import Articles
        from rag.steps.prompting import load_prompts

        key = (
            Mode.parse(mode, "mode") if mode else self.settings.mode,
            int(k or self.settings.k),
            LLMBackend.parse(backend, "llm_backend") if backend else self.settings.llm_backend,
        )
        cached = self._answerers.get(key)  # the hot path takes no lock
        if cached is not None:
            return cached
        with self._lock:
            if key not in self._answerers:
                if self._prompts is None:
                    self._prompts = load_prompts(self.settings.prompts_dir)
                chat = self.chat_model(key[2])
                from rag.models.registry import tiktoken_dir

                # tiktoken (token counts for endpoint models) reads its files from this variable only
                os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tiktoken_dir(self.settings.cache_dir)))
                self._answerers[key] = Answerer(
                    retriever=self.retriever,
                    embedder=self.embedder,
                    chat=chat,
                    prompts=self._prompts,
                    count_tokens=token_counter(chat, self.llm_model_for(key[2])),
                    params=answer_params(self.settings.replace(mode=key[0], k=key[1])),
                    articles=Articles(self.index.documents),
                    sentences=self.sentence_vectors,
                )
            return self._answerers[key]


def manifest_stamp(index_dir: Path) -> tuple[int, int, int] | None:
    """What tells one index generation from the next without reading it: manifest.json's inode,
    size and modification time (a commit replaces the file). None when there is none."""
    try:
        st = (Path(index_dir) / "manifest.json").stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def model_request(settings: Settings, *, llm: bool = True) -> ModelRequest:
    from rag.models.provision import ModelRequest

    local = llm and settings.llm_backend == LLMBackend.LOCAL
    return ModelRequest(
        settings.cache_dir, settings.embedder, settings.embed_backend, settings.llm_model if local else None
    )


def build_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for, provisioned on first use."""
    from rag.models.provision import ensure
    from rag.models.registry import embedder_source, int8_folder
    from rag.steps.embedder import OnnxInt8Embedder, SentenceTransformerEmbedder

    if settings.embedder == BUNDLED_EMBEDDER or settings.embed_backend == EmbedBackend.ONNX_INT8:
        ensure(model_request(settings, llm=False), "embedder")
    source = embedder_source(settings.cache_dir, settings.embedder)
    options: dict[str, Any] = {
        "name": settings.embedder,
        "query_prefix": settings.query_prefix,
        "passage_prefix": settings.passage_prefix,
        "threads": settings.embed_threads,
        "batch_size": settings.embed_batch_size,
    }
    if settings.embed_backend == EmbedBackend.ONNX_INT8:
        return OnnxInt8Embedder(int8_folder(settings.cache_dir, source), **options)
    return SentenceTransformerEmbedder(source, **options)


def retrieval_params(settings: Settings) -> RetrievalParams:
    from rag.steps.retrieve import RetrievalParams

    return RetrievalParams(
        mode=settings.mode,
        k=settings.k,
        fusion=settings.fusion,
        rrf_k=settings.rrf_k,
        dense_weight=settings.dense_weight,
        bm25_weight=settings.bm25_weight,
        cross_lingual_bm25_factor=settings.cross_lingual_bm25_factor,
    )


def ingest_params(settings: Settings) -> IngestParams:
    from rag.steps.ingest import IngestParams

    return IngestParams(
        chunk_tokens=settings.chunk_tokens,
        overlap_sentences=settings.overlap_sentences,
        bm25_stem=settings.bm25_stem,
        bm25_stopwords=settings.bm25_stopwords,
    )


def answer_params(settings: Settings) -> AnswerParams:
    from rag.steps.answer.answerer import AnswerParams
    from rag.steps.answer.gate import GateParams

    return AnswerParams(
        k=settings.k,
        mode=settings.mode,
        context_budget_tokens=settings.context_budget_tokens,
        passage_tokens=settings.passage_tokens,
        passage_margin=settings.passage_margin,
        max_question_chars=settings.max_question_chars,
        gate=GateParams(min_evidence=settings.min_evidence),
    )


def generation_slots(settings: Settings, backend: LLMBackend) -> int:
    """Answers generated at once: one for the in-process model (one llama.cpp context), else llm_parallel."""
    if backend == LLMBackend.LOCAL and settings.llm_server == LLMServer.IN_PROCESS:
        return 1
    return settings.llm_parallel


def server_options(settings: Settings) -> ServerOptions:
    """The managed llama-server: the configured binary, or the one scripts/setup.sh builds into the
    environment's bin/ (next to the `rag` command)."""
    import sys

    from rag.steps.llm import ServerOptions
    from rag.steps.llm_server import BINARY_NAME, find_server_binary

    binary = find_server_binary(settings.llm_server_binary, [Path(sys.prefix) / "bin" / BINARY_NAME])
    return ServerOptions(binary=binary, parallel=settings.llm_parallel, log_dir=settings.cache_dir / "logs")


def llm_params(settings: Settings, backend: LLMBackend, pipeline: Pipeline | None = None) -> LLMParams:
    """The chat model's parameters; the API key's value is read here, from the variable the settings name."""
    from rag.models.registry import llm_file
    from rag.steps.llm import LLMParams

    model = pipeline.llm_model_for(backend) if pipeline else settings.llm_model
    api_key = None
    if backend == LLMBackend.LOCAL:
        if model == BUNDLED_LLM:
            from rag.models.provision import ensure

            ensure(model_request(settings.replace(llm_backend=backend, llm_model=model)), "llm")
        model = str(llm_file(settings.cache_dir, model))
    else:
        api_key = os.environ.get(settings.llm_api_key_env) or None
        if api_key is None and not settings.llm_base_url:
            raise ConfigError(
                f"llm_backend=openai without llm_base_url talks to OpenAI and needs a key in ${settings.llm_api_key_env}"
            )
    return LLMParams(
        backend=backend,
        model=model,
        base_url=settings.llm_base_url,
        api_key=api_key,
        threads=settings.llm_threads,
        context_tokens=settings.llm_slot_context_tokens
        if backend == LLMBackend.LOCAL and settings.llm_server == LLMServer.MANAGED
        else settings.llm_context_tokens,
        max_answer_tokens=settings.max_answer_tokens,
        temperature=settings.temperature,
        timeout_s=settings.llm_timeout_s,
        server=settings.llm_server,
        server_options=server_options(settings)
        if backend == LLMBackend.LOCAL and settings.llm_server == LLMServer.MANAGED
        else None,
    )


# -- beyond one machine: where the index lives and where ingest runs (docs/PERFORMANCE.md) --


def milvus_params(settings: Settings) -> MilvusParams:
    from rag.steps.store.milvus_client import MilvusParams
    from rag.steps.store.milvus_schema import collection_name

    return MilvusParams(
        uri=settings.milvus_uri or str(settings.index_dir / "milvus.db"),
        collection=settings.milvus_collection or collection_name(settings.index_dir),
        server_fusion=settings.milvus_server_fusion,
    )


def open_index(settings: Settings, embedder_identity: dict[str, Any] | None) -> SearchIndex:
    """The index the settings name (FAISS folder or Milvus), checked against ``embedder_identity``."""
    if settings.index_backend == IndexBackend.MILVUS:
        from rag.steps.store.milvus_index import open_milvus_index

        return open_milvus_index(milvus_params(settings), embedder_identity)
    from rag.steps.index_store import load_index

    return load_index(settings.index_dir, embedder_identity)


def index_writer(settings: Settings) -> IndexWriter:
    if settings.index_backend == IndexBackend.MILVUS:
        from rag.steps.store.milvus_writer import MilvusWriter

        return MilvusWriter(milvus_params(settings))
    from rag.steps.store.faiss_folder import FaissFolderWriter

    return FaissFolderWriter(settings.index_dir)


def index_stamp(settings: Settings) -> tuple[int, int, int] | None:
    """What tells one version of the index from the next (see manifest_stamp); Milvus: its manifest's
    update time and counts."""
    if settings.index_backend == IndexBackend.MILVUS:
        from rag.steps.store.milvus_index import milvus_stamp

        return milvus_stamp(milvus_params(settings))
    return manifest_stamp(settings.index_dir)


def embedder_spec(settings: Settings) -> EmbedderSpec:
    """Plain parameters from which a Ray worker rebuilds the configured embedder (one thread each)."""
    from rag.models.provision import ensure
    from rag.models.registry import embedder_source, int8_folder
    from rag.steps.ingest_ray import EmbedderSpec

    if settings.embedder == BUNDLED_EMBEDDER or settings.embed_backend == EmbedBackend.ONNX_INT8:
        ensure(model_request(settings, llm=False), "embedder")
    source = embedder_source(settings.cache_dir, settings.embedder)
    int8 = settings.embed_backend == EmbedBackend.ONNX_INT8
    return EmbedderSpec(
        backend=settings.embed_backend.value,
        location=str(int8_folder(settings.cache_dir, source) if int8 else source),
        name=settings.embedder,
        query_prefix=settings.query_prefix,
        passage_prefix=settings.passage_prefix,
        batch_size=settings.embed_batch_size,
        threads=1,
        device="cuda" if settings.ray_gpus_per_worker > 0 else "cpu",
    )


def ingest_engine(settings: Settings, embedder: Embedder) -> Engine | None:
    """None for the local engine (ingest's default); a RayEngine for ingest_engine="ray"."""
    if settings.ingest_engine != IngestEngine.RAY:
        return None
    from rag.steps.ingest_ray import RayEngine, RayParams

    return RayEngine(
        embedder_spec(settings),
        embedder.identity(),
        chunk_tokens=settings.chunk_tokens,
        overlap_sentences=settings.overlap_sentences,
        ray=RayParams(
            address=settings.ray_address, workers=settings.ray_workers, gpus_per_worker=settings.ray_gpus_per_worker
        ),
    )


def start_worker_pools(embedder: Embedder) -> None:
    """Start the embedder's worker threads (the tokenizer's and the runtime's pools, shared by every
    later call) from the calling thread. A thread starts at its creator's nice value: pools first
    started by a lower-priority ingest would run every later question's embedding at that priority,
    behind the language model (measured: 1-4 s to evidence for questions arriving together)."""
    embedder.count_tokens_many(["a", "b"])
    embedder.embed_documents(["a", "b"])


def run_niced(work: Callable[[], T], niceness: int) -> T:
    """``work()`` in a new thread whose nice value is raised by ``niceness`` (on Linux nice is per
    thread, and a thread cannot lower it again without privileges: hence a thread of its own, which
    ends with the work). Elsewhere it runs as it is. Its exception is raised here."""
    result: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        if hasattr(os, "setpriority") and sys.platform.startswith("linux"):
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
        try:
            result.append(work())
        except BaseException as e:  # handed to the caller below
            failure.append(e)

    worker = threading.Thread(target=body, name="ingest", daemon=True)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return result[0]
