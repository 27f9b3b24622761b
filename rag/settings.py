"""One settings object for the whole product.

Precedence, lowest first: defaults < config file (TOML) < environment (RAG_<NAME>) < CLI flags.
Library code never reads the environment: the composition root builds a Settings and passes it down.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rag.core.choices import Choice, EmbedBackend, Fusion, IndexBackend, IngestEngine, LLMBackend, LLMServer, Mode
from rag.core.errors import ConfigError
from rag.models.registry import BUNDLED_EMBEDDER, BUNDLED_LLM

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "RAG_"
# the settings that take one of a fixed set of values
_CHOICES: dict[str, type[Choice]] = {
    "mode": Mode,
    "fusion": Fusion,
    "llm_backend": LLMBackend,
    "llm_server": LLMServer,
    "embed_backend": EmbedBackend,
    "ingest_engine": IngestEngine,
    "index_backend": IndexBackend,
}


def _default_cache_dir() -> Path:
    # XDG convention; the setting `cache_dir` (RAG_CACHE_DIR) moves it.
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag"


@dataclass(frozen=True)
class Settings:
    # where things live
    corpus_dir: Path = REPO_ROOT / "corpus"
    index_dir: Path = REPO_ROOT / "index"
    prompts_dir: Path = REPO_ROOT / "prompts"
    cache_dir: Path = dataclasses.field(default_factory=_default_cache_dir)
    # embedder: the bundled e5 (rebuilt offline), or any sentence-transformers name or path
    embedder: str = BUNDLED_EMBEDDER
    query_prefix: str | None = None  # None: taken from the model (e5 models: "query: ")
    passage_prefix: str | None = None
    embed_backend: EmbedBackend = (
        EmbedBackend.ONNX_INT8
    )  # "onnx-int8" (verified int8 copy, faster) or "torch" (the model as is)
    embed_threads: int = 2
    embed_batch_size: int = 16
    # chunking, in the embedder's own tokens
    chunk_tokens: int = 160
    overlap_sentences: int = 1
    # retrieval
    mode: Mode = Mode.HYBRID
    k: int = 5
    fusion: Fusion = Fusion.CONVEX  # hybrid fusion: "convex" (normalised scores) or "rrf"
    rrf_k: int = 60
    dense_weight: float = 0.5
    bm25_weight: float = 0.5
    cross_lingual_bm25_factor: float = 0.5  # BM25 weight scale when question and corpus languages differ
    bm25_stem: bool = True
    bm25_stopwords: bool = True
    # beyond one machine (docs/PERFORMANCE.md): ingest on Ray, the index on Milvus
    ingest_engine: IngestEngine = IngestEngine.LOCAL  # "local" (this process) or "ray" (an actor pool)
    ray_address: str = ""  # "" starts a local Ray for the run; e.g. "10.0.0.5:6379" joins a cluster
    ray_workers: int = 2  # embedding actors, each holding one embedder
    ray_gpus_per_worker: float = 0.0  # > 0 needs embed_backend="torch" (the int8 copy runs on CPUs)
    index_backend: IndexBackend = IndexBackend.FAISS  # "faiss" (a folder) or "milvus"
    milvus_uri: str = ""  # "" = Milvus Lite in <index_dir>/milvus.db; or http://host:19530
    milvus_collection: str = ""  # "" = derived from index_dir
    # hybrid on Milvus: False fuses the two lists here, exactly as for FAISS (two requests); True lets
    # Milvus fuse them in one (hybrid_search): measured 0.079 nDCG@10 lower on eval/ (docs/PERFORMANCE.md)
    milvus_server_fusion: bool = False
    # answering
    llm_backend: LLMBackend = (
        LLMBackend.LOCAL
    )  # "local" (a GGUF file run by llama.cpp) or "openai" (compatible endpoint)
    llm_model: str = BUNDLED_LLM  # local: bundled name or a .gguf path; openai: the model name
    llm_base_url: str = ""  # openai backend: e.g. http://127.0.0.1:11434/v1 for Ollama
    llm_api_key_env: str = "OPENAI_API_KEY"  # the *name* of the variable holding the key
    llm_threads: int = 2
    llm_context_tokens: int = 4096  # the in-process model's context
    llm_server: LLMServer = LLMServer.MANAGED  # local GGUF: "managed" (llama-server, parallel slots) or "in-process"
    llm_parallel: int = 2  # answers generated at once (llama-server slots); in-process runs one at a time
    llm_slot_context_tokens: int = 2048  # managed: each slot's context (a question needs ~1,000; KV 28 KB a token)
    llm_server_binary: str = ""  # "" = the llama-server scripts/setup.sh builds into .venv/bin
    max_answer_tokens: int = 256
    context_budget_tokens: int = 500  # passages sent to the model, in the model's tokens
    passage_tokens: int = 100  # one shown passage at most (sentences around the best one); 0 = whole chunks
    passage_margin: float = 0.02  # shown: passages within this cosine of the closest one (1 keeps all k)
    temperature: float = 0.0
    llm_timeout_s: float = 120.0
    min_evidence: float = 0.79  # evidence gate: the closest passage's cosine (calibrated, docs/EVALUATION.md)
    max_question_chars: int = 2000
    # serving
    host: str = "127.0.0.1"
    port: int = 7860
    auth: str = ""  # "user:password" required when host is not loopback (best from RAG_AUTH, not a flag)
    auth_file: Path | None = None  # a file of user:password lines (chmod 600), instead of or beside auth
    max_upload_mb: int = 20

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes).validated()

    def validated(self) -> Settings:
        """This Settings with its fixed choices parsed into their enums; a ConfigError names any bad value."""
        parsed = {name: kind.parse(getattr(self, name), name) for name, kind in _CHOICES.items()}
        if any(parsed[name] is not getattr(self, name) for name in parsed):
            return dataclasses.replace(self, **parsed).validated()
        for name in ("k", "chunk_tokens", "embed_threads", "llm_threads", "llm_parallel", "embed_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least 1")
        if not 0.0 <= self.passage_margin <= 2.0:
            raise ConfigError(f"passage_margin={self.passage_margin} must be a cosine margin from 0 to 2")
        if self.passage_tokens < 0:
            raise ConfigError(f"passage_tokens={self.passage_tokens} must be 0 (whole chunks) or more")
        if self.chunk_tokens > 480:
            raise ConfigError(
                f"chunk_tokens={self.chunk_tokens} must stay under the embedder's 512-token limit (<= 480)"
            )
        if self.ray_workers < 1:
            raise ConfigError(f"ray_workers={self.ray_workers} must be at least 1")
        if self.ray_gpus_per_worker < 0:
            raise ConfigError(f"ray_gpus_per_worker={self.ray_gpus_per_worker} must be 0 (CPU workers) or more")
        if self.overlap_sentences < 0:
            raise ConfigError(f"overlap_sentences={self.overlap_sentences} must be >= 0")
        if self.llm_backend == "openai" and not self.llm_base_url and self.llm_model == BUNDLED_LLM:
            raise ConfigError(
                "llm_backend='openai' needs llm_model (e.g. 'gpt-4o-mini' or 'qwen2.5:1.5b') "
                "and, for a local server, llm_base_url (e.g. http://127.0.0.1:11434/v1)"
            )
        return self


_FIELDS = {f.name: f for f in fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    """Turn a config/env/CLI value into the field's type, with a clear error."""
    field = _FIELDS[name]
    kind = str(field.type)
    if value is None:
        return None
    try:
        if "Path" in kind:
            return Path(str(value)).expanduser().resolve()
        if kind.startswith("bool"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
        return str(value)
    except ValueError as e:
        raise ConfigError(f"setting {name}={value!r} has the wrong type ({kind}): {e}") from e


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from defaults, a TOML file, RAG_* variables and explicit overrides (CLI)."""
    values: dict[str, Any] = {}
    environ = os.environ if environ is None else environ
    path = config_file or (Path(environ["RAG_CONFIG"]) if environ.get("RAG_CONFIG") else None)
    if path is None and (Path.cwd() / "rag.toml").is_file():
        path = Path.cwd() / "rag.toml"
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from e
        for key, value in data.items():
            if key not in _FIELDS:
                raise ConfigError(f"unknown setting {key!r} in {path}; valid: {', '.join(sorted(_FIELDS))}")
            values[key] = _coerce(key, value)
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and key != "RAG_CONFIG":
            name = key[len(ENV_PREFIX) :].lower()
            if name in _FIELDS:
                values[name] = _coerce(name, value)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in _FIELDS:
            raise ConfigError(f"unknown setting {key!r}; valid: {', '.join(sorted(_FIELDS))}")
        values[key] = _coerce(key, value)
    return Settings(**values).validated()
