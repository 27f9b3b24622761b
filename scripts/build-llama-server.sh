#!/usr/bin/env bash
# Build llama.cpp's own server (llama-server) for the managed LLM engine (llm_server = "managed") and
# put it in .venv/bin. Idempotent: a second run is a no-op.
#
# It is compiled from the llama.cpp inside the llama-cpp-python source package pinned in
# pyproject.toml (the same llama.cpp the Python bindings use), for this CPU (-DGGML_NATIVE=ON: the
# native build reads prompts much faster than a portable one), as one static binary. The result is
# kept in the model cache under a name that carries the version and this CPU's instruction-set flags,
# so a new .venv on the same machine copies it in seconds instead of compiling again (~5 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
version="$(sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml)"
[ -n "$version" ] || { echo "error: no llama-cpp-python pin in pyproject.toml" >&2; exit 1; }
cpu="$(grep -m1 '^flags' /proc/cpuinfo | sha256sum | cut -c1-12)"
cache="${RAG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rag}/bin"
built="$cache/llama-server-$version-$cpu"
target=.venv/bin/llama-server
if [ -x "$target" ] && cmp -s "$target" "$built" 2>/dev/null; then
  exit 0
fi
if [ ! -x "$built" ]; then
  command -v cmake >/dev/null || { echo "error: cmake is needed to build llama-server (apt-get install cmake)" >&2; exit 1; }
  echo "building llama-server $version for this CPU (first time: ~5 minutes on 2 cores)" >&2
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  .venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$work" "llama-cpp-python==$version"
  tar -xzf "$work"/llama_cpp_python-"$version".tar.gz -C "$work"
  src="$work/llama_cpp_python-$version/vendor/llama.cpp"
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  # tools on for the server's folder, everything else off; the web UI is neither downloaded nor built
  cmake -S "$src" -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF >"$work/configure.log" 2>&1 \
    || { tail -30 "$work/configure.log" >&2; exit 1; }
  cmake --build "$work/build" --target llama-server -j "${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; exit 1; }
  "$work/build/bin/llama-server" --version >/dev/null 2>&1 \
    || { echo "error: the llama-server just built does not run" >&2; exit 1; }
  mkdir -p "$cache"
  cp "$work/build/bin/llama-server" "$built.tmp"
  mv "$built.tmp" "$built"
fi
cp "$built" "$target.tmp"
mv "$target.tmp" "$target"
