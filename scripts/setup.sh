#!/usr/bin/env bash
# Install whatever is missing into ./.venv (idempotent; a second run is a no-op).
# Usage: scripts/setup.sh [EXTRA ...]   extras from pyproject.toml, comma- or space-separated:
#   dev (the test tools), scale (Ray and Milvus: docs/PERFORMANCE.md "Beyond one machine"),
#   e.g. scripts/setup.sh dev,scale   or   scripts/setup.sh dev scale
set -euo pipefail
cd "$(dirname "$0")/.."
extras="$(echo "$*" | tr ' ,' '\n\n' | sed '/^$/d' | sort -u | paste -sd, -)"
for extra in ${extras//,/ }; do
  case "$extra" in
    dev | scale) ;;
    *) echo "error: unknown extra '$extra'; choose from: dev, scale" >&2; exit 2 ;;
  esac
done
python="${PYTHON:-python3}"
"$python" - <<'PY' || { echo "error: Python >= 3.11 is needed (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv" >&2
  "$python" -m venv .venv
fi
# llama.cpp first: the bindings' libraries and llama-server from one compile (cached in the model cache)
scripts/install-llama-cpp.sh
stamp=".venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)${extras:+-${extras//,/-}}"
if [ ! -f "$stamp" ]; then
  echo "installing the product${extras:+ with its extras $extras} into .venv" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras:+[$extras]}"
  # tiktoken's BPE files ship inside litellm; only the files are used, so none of its dependencies
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps litellm==1.109.1
  rm -f .venv/.installed-*
  touch "$stamp"
fi
