"""The composition root: the one place that reads Settings. It maps them into each step's small
parameter object, builds the parts on first use and keeps them (one Answerer per configuration)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.core.choices import EmbedBackend, LLMBackend, Mode
from rag.core.errors import ConfigError
from rag.models.registry import BUNDLED_EMBEDDER, BUNDLED_LLM
from rag.settings import Settings

if TYPE_CHECKING:
    from rag.models.provision import ModelRequest
    from rag.steps.answer.answerer import Answerer, AnswerParams
    from rag.steps.embedder import Embedder
    from rag.steps.index_store import LoadedIndex
    from rag.steps.ingest import IngestParams, IngestReport
    from rag.steps.llm import LLMParams
    from rag.steps.retrieve import RetrievalParams, Retriever

log = logging.getLogger(__name__)


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
        self._index: LoadedIndex | None = None
        self._retriever: Retriever | None = None
        self._chat_models: dict[LLMBackend, Any] = dict(chat_models or {})
        self._answerers: dict[tuple[Mode, int, LLMBackend], Answerer] = {}
        self._prompts: Any = None

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = build_embedder(self.settings)
            return self._embedder

    @property
    def index(self) -> LoadedIndex:
        with self._lock:
            if self._index is None:
                from rag.steps.index_store import load_index

                self._index = load_index(self.settings.index_dir, self.embedder.identity())
            return self._index

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

        with self._lock:
            report = ingest(
                corpus or self.settings.corpus_dir,
                self.settings.index_dir,
                self.embedder,
                ingest_params(self.settings),
                rebuild=rebuild,
                check_only=check_only,
                progress=progress,
            )
            if report.written:
                self.reload_index()
            return report

    def llm_model_for(self, backend: LLMBackend) -> str:
        """The configured model for the configured backend; the bundled one for the other (local)."""
        if backend == self.settings.llm_backend:
            return self.settings.llm_model
        if backend == LLMBackend.LOCAL:
            return BUNDLED_LLM
        raise ConfigError(f"llm_backend={backend.value!r} is not configured; set llm_backend and llm_model")

    def chat_model(self, backend: LLMBackend | None = None):
        from rag.steps.llm import build_chat_model

        backend = backend or self.settings.llm_backend
        with self._lock:
            if backend not in self._chat_models:
                self._chat_models[backend] = build_chat_model(llm_params(self.settings, backend, self))
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
                )
            return self._answerers[key]


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
        max_question_chars=settings.max_question_chars,
        gate=GateParams(min_evidence=settings.min_evidence),
    )


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
        context_tokens=settings.llm_context_tokens,
        max_answer_tokens=settings.max_answer_tokens,
        temperature=settings.temperature,
        timeout_s=settings.llm_timeout_s,
    )
