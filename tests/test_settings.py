from pathlib import Path

import pytest

from rag.core.errors import ConfigError
from rag.settings import Settings, load_settings


def test_precedence_defaults_file_env_cli(tmp_path: Path):
    config = tmp_path / "rag.toml"
    config.write_text('k = 7\nmode = "bm25"\nllm_threads = 3\n', encoding="utf-8")
    env = {"RAG_K": "9", "RAG_EMBED_THREADS": "1"}
    s = load_settings(config_file=config, environ=env, overrides={"k": 4})
    assert s.k == 4  # CLI beats environment
    assert s.embed_threads == 1  # environment beats default
    assert s.mode == "bm25"  # file beats default
    assert s.llm_threads == 3
    assert load_settings(environ={}).k == Settings().k


def test_bad_values_name_the_choices(tmp_path: Path):
    with pytest.raises(ConfigError, match="hybrid, dense, bm25"):
        load_settings(environ={"RAG_MODE": "fuzzy"})
    with pytest.raises(ConfigError, match="wrong type"):
        load_settings(environ={"RAG_K": "many"})
    with pytest.raises(ConfigError, match="onnx-int8, torch"):
        load_settings(environ={"RAG_EMBED_BACKEND": "gpu"})
    config = tmp_path / "bad.toml"
    config.write_text("colour = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(config_file=config, environ={})


def test_paths_are_absolute():
    s = load_settings(environ={"RAG_INDEX_DIR": "some/relative"})
    assert s.index_dir.is_absolute()
