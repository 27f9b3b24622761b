"""Make tiktoken work offline: copy its BPE files from the `litellm` wheel into a cache directory.

tiktoken looks in $TIKTOKEN_CACHE_DIR for a file named sha1(download URL) and checks its sha256.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rag.core.errors import ModelMissingError

# cache names (sha1 of the URL tiktoken would fetch); litellm ships the files under the same names
_FILES = {
    "9b5ad71b2ce5302211f9c61530b329a4922fc6a4": "cl100k_base",
    "fb374d419588a4632f3f557e76b4b70aebbca790": "o200k_base",
}


def litellm_tokenizer_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissingError(
            "tiktoken's files come from the `litellm` package, which is not installed; "
            "run `pip install --no-deps litellm` (the README's set-up command does it)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "litellm_core_utils" / "tokenizers"


def provision_tiktoken(cache_dir: Path) -> Path:
    """Fill ``cache_dir`` with tiktoken's files; point TIKTOKEN_CACHE_DIR at it to use them."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    source = litellm_tokenizer_dir()
    for cache_name, encoding in _FILES.items():
        target = cache_dir / cache_name
        if not target.is_file():
            src = source / cache_name
            if not src.is_file():
                raise ModelMissingError(f"{src} ({encoding}) is missing from the litellm package")
            shutil.copyfile(src, target)
    return cache_dir
