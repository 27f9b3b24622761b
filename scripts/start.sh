#!/usr/bin/env bash
# The product's main job on a fresh machine: install, provision the models, build or update the
# default index (corpus/ -> index/), and start the chat page on http://127.0.0.1:7860.
# Extra arguments go to `rag serve` (e.g. --port 8000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/rag models
exec .venv/bin/rag serve "$@"
