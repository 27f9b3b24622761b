"""Where each configured model lives, provisioning the bundled ones on first use."""

from __future__ import annotations

import logging
from pathlib import Path

from rag.settings import BUNDLED_EMBEDDER, BUNDLED_LLM, Settings

log = logging.getLogger(__name__)


def models_dir(settings: Settings) -> Path:
    return settings.cache_dir / "models"


def embedder_location(settings: Settings, *, provision: bool = True) -> str:
    """A local folder for the bundled or a path-given embedder, else the name (a Hub model id)."""
    from rag.models.embedder_provision import build_bundled_embedder, check_bundled_embedder

    if settings.embedder == BUNDLED_EMBEDDER:
        folder = models_dir(settings) / BUNDLED_EMBEDDER
        if folder.exists():
            check_bundled_embedder(folder)
        elif provision:
            log.warning("first use: rebuilding the bundled embedder into %s (about half a minute)", folder)
            build_bundled_embedder(folder)
        return str(folder)
    candidate = Path(settings.embedder).expanduser()
    if candidate.exists():
        # absolute: sentence-transformers would ask the Hub about a relative "a/b"
        return str(candidate.resolve())
    return settings.embedder


def int8_embedder_folder(settings: Settings) -> Path:
    """The verified int8 ONNX copy of the configured embedder, built on first use."""
    from rag.models.onnx_int8 import build_int8, check_int8_folder, int8_folder

    location = embedder_location(settings)
    folder = int8_folder(models_dir(settings), location)
    if folder.exists():
        check_int8_folder(folder)
        return folder
    log.warning("first use: building the int8 ONNX copy of %s into %s (about a minute)", settings.embedder, folder)
    return build_int8(location, folder, local=Path(location).is_dir())


def llm_location(settings: Settings, *, provision: bool = True) -> Path:
    from rag.errors import ModelMissingError
    from rag.models.llm_provision import GGUF_NAME, assemble_bundled_llm

    if settings.llm_model == BUNDLED_LLM:
        path = models_dir(settings) / GGUF_NAME
        if path.is_file() or provision:
            if not path.is_file():
                log.warning("first use: assembling the bundled LLM into %s (1.1 GB)", path)
            return assemble_bundled_llm(path)
        raise ModelMissingError(f"the bundled LLM is not at {path}; run `rag models`")
    path = Path(settings.llm_model).expanduser()
    if not path.is_file():
        raise ModelMissingError(
            f"llm_model={settings.llm_model!r} is neither {BUNDLED_LLM!r} nor an existing .gguf file; "
            "give a GGUF path, or set llm_backend=openai for an endpoint"
        )
    return path.resolve()


def tiktoken_dir(settings: Settings) -> Path:
    return settings.cache_dir / "tiktoken"
