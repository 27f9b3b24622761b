#!/usr/bin/env bash
# Put llama.cpp into .venv: the shared libraries the Python bindings (llama-cpp-python, the
# in-process engine) load, and llama.cpp's own server (llama-server, the managed engine), both from
# ONE compile. Idempotent: a second run is a no-op. Run by scripts/setup.sh before `pip install`.
#
# llama-cpp-python is pip-installed with its own compile switched off (-DLLAMA_BUILD=OFF: only its
# Python files), and the libraries and the server are compiled once from the llama.cpp inside that
# same source package (the version pinned in pyproject.toml), for this CPU (-DGGML_NATIVE=ON: the
# native build reads prompts much faster than a portable one). Before, pip compiled llama.cpp for
# the bindings and this script compiled it again for the server. The build is kept in the model
# cache under a name that carries the version and this CPU's instruction-set flags, so a new .venv
# on the same machine copies it in seconds instead of compiling again (~5 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
version="$(sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml)"
[ -n "$version" ] || { echo "error: no llama-cpp-python pin in pyproject.toml" >&2; exit 1; }
cpu="$(grep -m1 '^flags' /proc/cpuinfo | sha256sum | cut -c1-12)"
cache="${RAG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rag}/bin"
built="$cache/llama.cpp-$version-$cpu"
pip=(.venv/bin/python -m pip --disable-pip-version-check)
work=""
cleanup() { [ -z "$work" ] || rm -rf "$work"; }
trap cleanup EXIT
sdist() {  # the source package, downloaded once per run
  if [ -z "$work" ]; then
    work="$(mktemp -d)"
    "${pip[@]}" download --quiet --no-deps --no-binary :all: -d "$work" "llama-cpp-python==$version"
    tar -xzf "$work/llama_cpp_python-$version.tar.gz" -C "$work"
  fi
}

if [ ! -x "$built/llama-server" ]; then
  command -v cmake >/dev/null || { echo "error: cmake is needed to build llama.cpp (apt-get install cmake)" >&2; exit 1; }
  echo "building llama.cpp $version for this CPU (first time: ~5 minutes on 2 cores)" >&2
  sdist
  src="$work/llama_cpp_python-$version/vendor/llama.cpp"
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  # shared libraries found next to each other ($ORIGIN); tools on for the server's folder, everything
  # else off; the web UI is neither downloaded nor built
  cmake -S "$src" -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON '-DCMAKE_INSTALL_RPATH=$ORIGIN' \
    -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF >"$work/configure.log" 2>&1 \
    || { tail -30 "$work/configure.log" >&2; exit 1; }
  cmake --build "$work/build" --target llama llama-server -j "${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; exit 1; }
  "$work/build/bin/llama-server" --version >/dev/null 2>&1 \
    || { echo "error: the llama-server just built does not run" >&2; exit 1; }
  mkdir -p "$cache"
  rm -rf "$built.tmp"
  mkdir "$built.tmp"
  cp -P "$work"/build/bin/lib*.so* "$work/build/bin/llama-server" "$built.tmp/"
  rm -rf "$built"
  mv "$built.tmp" "$built"
fi

installed="$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("llama_cpp_python"))' 2>/dev/null || true)"
if [ "$installed" != "$version" ]; then
  sdist
  # no wheel cache: a wheel without libraries must never be reused by another install
  CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" "${pip[@]}" install --quiet --no-cache-dir \
    "$work/llama_cpp_python-$version.tar.gz"
fi

lib="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')/llama_cpp/lib"
mkdir -p "$lib"
for file in "$built"/*; do
  name="$(basename "$file")"
  if [ -L "$file" ]; then
    ln -sfn "$(readlink "$file")" "$lib/$name"
  elif ! cmp -s "$file" "$lib/$name"; then
    cp "$file" "$lib/$name.tmp"
    mv "$lib/$name.tmp" "$lib/$name"
  fi
done
# the server finds its libraries beside its real path ($ORIGIN follows the link)
ln -sfn "$lib/llama-server" .venv/bin/llama-server
