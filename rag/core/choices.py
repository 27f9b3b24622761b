"""The fixed choices a user makes, shared by the settings, the command line and the chat page."""

from __future__ import annotations

from enum import StrEnum

from rag.core.errors import ConfigError


class Choice(StrEnum):
    @classmethod
    def parse(cls, value: str, setting: str):
        """The member named ``value``; a ConfigError listing the valid values otherwise."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(m.value for m in cls)
            raise ConfigError(f"{setting}={value!r} is not valid; choose one of {valid}") from None

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)


class Mode(Choice):
    """Retrieval mode."""

    HYBRID = "hybrid"
    DENSE = "dense"
    BM25 = "bm25"


class Fusion(Choice):
    """How hybrid retrieval fuses the dense and BM25 lists."""

    CONVEX = "convex"  # weighted sum of normalised scores
    RRF = "rrf"  # weighted reciprocal rank fusion


class LLMBackend(Choice):
    LOCAL = "local"  # a GGUF file run in-process by llama.cpp
    OPENAI = "openai"  # any OpenAI-compatible endpoint


class LLMServer(Choice):
    """How the local GGUF model runs."""

    MANAGED = "managed"  # llama.cpp's llama-server as a managed subprocess: parallel slots, batched decoding
    IN_PROCESS = "in-process"  # llama-cpp-python in this process: one llama.cpp context, one answer at a time


class EmbedBackend(Choice):
    ONNX_INT8 = "onnx-int8"  # the verified int8 copy (faster on a CPU)
    TORCH = "torch"  # the sentence-transformers model as it is


class IngestEngine(Choice):
    """Where ingest chunks and embeds new or changed documents."""

    LOCAL = "local"  # in this process
    RAY = "ray"  # an actor pool on a Ray cluster (a local one for the run, or ray_address)


class IndexBackend(Choice):
    """Where the index lives."""

    FAISS = "faiss"  # a folder: FAISS vectors, bm25s data, JSONL chunk store (the default)
    MILVUS = "milvus"  # a Milvus collection (Milvus Lite in a folder, or a server at milvus_uri)
