#!/usr/bin/env bash
# Install whatever is missing into ./.venv (idempotent; a second run is a no-op).
# Usage: scripts/setup.sh [dev]
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
python="${PYTHON:-python3}"
"$python" - <<'PY' || { echo "error: Python >= 3.11 is needed (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv" >&2
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)${extra:+-$extra}"
if [ ! -f "$stamp" ]; then
  echo "installing the product${extra:+ with its $extra tools} into .venv (first time: ~10 minutes, llama-cpp-python compiles)" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extra:+[$extra]}"
  # tiktoken's BPE files ship inside litellm; only the files are used, so none of its dependencies
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps litellm==1.109.1
  rm -f .venv/.installed-*
  touch "$stamp"
fi
