#!/usr/bin/env bash
# The product's main job on a fresh machine: install, provision the models, build or update the
# default index (corpus/ -> index/), and start the chat page on http://127.0.0.1:7860.
# Extra arguments go to `rag serve` (e.g. --port 8000). RAG_EXTRAS=scale also installs Ray and
# Milvus (docs/PERFORMANCE.md "Beyond one machine"), e.g. RAG_EXTRAS=scale scripts/start.sh --index-backend milvus
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh ${RAG_EXTRAS:-}
.venv/bin/rag models
exec .venv/bin/rag serve "$@"
