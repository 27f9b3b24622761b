"""The composition root: builds the embedder, index, retriever and answer chain from Settings."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from rag.settings import Settings

log = logging.getLogger(__name__)


class Pipeline:
    """Holds the loaded parts; each is built on first use and can be reloaded after an ingest."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._embedder: Any = None
        self._index: Any = None
        self._retriever: Any = None
        self._chat_models: dict[tuple, Any] = {}

    @property
    def embedder(self):
        with self._lock:
            if self._embedder is None:
                from rag.embedder import load_embedder

                self._embedder = load_embedder(self.settings)
            return self._embedder

    @property
    def index(self):
        with self._lock:
            if self._index is None:
                from rag.index_store import load_index

                self._index = load_index(self.settings.index_dir, self.embedder.identity())
            return self._index

    @property
    def retriever(self):
        with self._lock:
            if self._retriever is None:
                from rag.retrieve import Retriever

                self._retriever = Retriever(self.index, self.embedder, retrieval_params(self.settings))
            return self._retriever

    def reload_index(self) -> None:
        with self._lock:
            self._index = None
            self._retriever = None

    def ingest(self, corpus: Path | None = None, *, rebuild: bool = False, check_only: bool = False, progress=None):
        from rag.ingest import ingest

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

    def chat_model(self, backend: str | None = None, model: str | None = None):
        from rag.llm import build_chat_model

        key = (backend or self.settings.llm_backend, model or self.settings.llm_model)
        with self._lock:
            if key not in self._chat_models:
                self._chat_models[key] = build_chat_model(self.settings.replace(llm_backend=key[0], llm_model=key[1]))
            return self._chat_models[key]

    def answerer(
        self, *, mode: str | None = None, k: int | None = None, backend: str | None = None, model: str | None = None
    ):
        from rag.chain import Answerer

        settings = self.settings.replace(mode=mode or self.settings.mode, k=k or self.settings.k)
        return Answerer(
            retriever=self.retriever,
            chat=self.chat_model(backend, model),
            settings=settings,
        )


def retrieval_params(settings: Settings):
    from rag.retrieve import RetrievalParams

    return RetrievalParams(
        mode=settings.mode,
        k=settings.k,
        fusion=settings.fusion,
        rrf_k=settings.rrf_k,
        dense_weight=settings.dense_weight,
        bm25_weight=settings.bm25_weight,
        cross_lingual_bm25_factor=settings.cross_lingual_bm25_factor,
    )


def ingest_params(settings: Settings):
    from rag.ingest import IngestParams

    return IngestParams(
        chunk_tokens=settings.chunk_tokens,
        overlap_sentences=settings.overlap_sentences,
        bm25_stem=settings.bm25_stem,
        bm25_stopwords=settings.bm25_stopwords,
    )
