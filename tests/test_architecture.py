"""The composition root maps Settings into each step's parameters; the command line's exit codes."""

import subprocess
import sys

from rag.pipeline import answer_params, ingest_params, retrieval_params
from rag.settings import Settings


def test_step_parameters_take_every_value_from_the_settings():
    settings = Settings(chunk_tokens=99, bm25_stem=False, k=7, mode="bm25", fusion="rrf", min_evidence=0.5).validated()
    ingest = ingest_params(settings)
    assert (ingest.chunk_tokens, ingest.bm25_stem) == (99, False)
    retrieval = retrieval_params(settings)
    assert (retrieval.k, retrieval.mode, retrieval.fusion) == (7, "bm25", "rrf")
    answer = answer_params(settings)
    assert (answer.k, answer.mode, answer.gate.min_evidence) == (7, "bm25", 0.5)


def test_default_parameters_are_the_settings_defaults():
    defaults = Settings().validated()
    assert ingest_params(defaults).bm25_stem is defaults.bm25_stem is True
    assert answer_params(defaults).passage_tokens == defaults.passage_tokens


def _rag(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, timeout=120)


def test_usage_errors_and_failures_exit_differently(tmp_path):
    assert "exit codes:" in _rag("--help").stdout
    assert _rag("search").returncode == 2  # no question: a usage error
    assert _rag("search", "--mode", "bogus", "x").returncode == 2
    config = tmp_path / "rag.toml"
    config.write_text('mode = "bogus"\n', encoding="utf-8")
    failed = _rag("search", "x", "--config", str(config))  # the product refuses a setting: a failure
    assert failed.returncode == 3 and "mode='bogus' is not valid" in failed.stderr
