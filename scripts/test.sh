#!/usr/bin/env bash
# The whole test suite on a fresh machine: install (with the dev tools and Ray + Milvus), provision the models, install
# Chromium for the browser test when it is missing, then lint, type-check and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev,scale  # scale: Ray and Milvus Lite, started for real by their tests
.venv/bin/rag models
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser test" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "warning: chromium is not installed and cannot be installed here; the browser test will be skipped" >&2
  fi
fi
.venv/bin/ruff check rag ui tests
.venv/bin/ruff format --check rag ui tests
.venv/bin/mypy
.venv/bin/lint-imports  # the layering (pyproject.toml): edges > tools > composition root > settings > models > steps > core
# The tests themselves run offline: tests/conftest.py refuses every non-loopback connection.
# PYTHONFAULTHANDLER: a crash in native code, even after the last test while the process exits,
# prints every thread's Python stack instead of only "Segmentation fault".
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False PYTHONFAULTHANDLER=1 .venv/bin/python -m pytest "$@"
