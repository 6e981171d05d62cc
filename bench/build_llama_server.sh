#!/usr/bin/env bash
# Builds llama.cpp's own `llama-server` into bench/out/llama-server/ (git-ignored),
# as the peer of benchmark C. Idempotent: does nothing when the binary exists.
#
# The llama.cpp core (src/, ggml/, common/, vendor/) is the copy vendored in the
# crates.io package llama-cpp-sys-2 that skill-fleet links, so both sides run
# the same inference code. That package strips tools/server and tools/ui, so
# those two directories (plus scripts/ui-assets.cmake) are taken from the
# llama.cpp copy vendored in the PyPI sdist of llama-cpp-python (pinned below),
# the nearest packaged llama.cpp that still ships the server sources.
#
# CPU flags: -DGGML_NATIVE=OFF (never native: AMX crashes on this host), which
# gives the same AVX/AVX2/FMA/F16C/BMI2 set that llama-cpp-sys-2 picks for the
# in-process engine (checked against target/*/build/llama-cpp-sys-2-*/out/build/CMakeCache.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out/llama-server
BIN=$OUT/bin/llama-server
if [ -x "$BIN" ]; then
  echo "llama-server: $BIN already built"
  exit 0
fi
PY_SDIST_VERSION=0.3.36
SYS_VERSION=$(awk '/^name = "llama-cpp-sys-2"/{getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
SYS=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/llama-cpp-sys-2-"$SYS_VERSION" 2>/dev/null | head -1 || true)
if [ -z "$SYS" ]; then
  cargo fetch --quiet
  SYS=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/llama-cpp-sys-2-"$SYS_VERSION" | head -1)
fi
echo "llama-server: llama.cpp core from $SYS"

mkdir -p "$OUT/dl"
SDIST=$OUT/dl/llama_cpp_python-$PY_SDIST_VERSION.tar.gz
if [ ! -s "$SDIST" ]; then
  # The file itself, from PyPI's simple index, checked against its sha256.
  # (`pip download --no-binary :all:` would build the sdist's build
  # dependencies from source, CMake included, which takes half an hour here.)
  python3 - "$PY_SDIST_VERSION" "$SDIST" <<'EOF'
import hashlib, re, sys, urllib.request
version, out = sys.argv[1], sys.argv[2]
name = f"llama_cpp_python-{version}.tar.gz"
index = urllib.request.urlopen("https://pypi.org/simple/llama-cpp-python/", timeout=60).read().decode()
m = re.search(r'href="([^"#]*/' + re.escape(name) + r')#sha256=([0-9a-f]{64})"', index)
if not m:
    sys.exit(f"{name} not found on https://pypi.org/simple/llama-cpp-python/")
data = urllib.request.urlopen(m.group(1), timeout=300).read()
if hashlib.sha256(data).hexdigest() != m.group(2):
    sys.exit(f"{name}: sha256 mismatch")
with open(out + ".part", "wb") as f:
    f.write(data)
EOF
  mv "$SDIST.part" "$SDIST"
fi
PY=llama_cpp_python-$PY_SDIST_VERSION/vendor/llama.cpp
rm -rf "$OUT/dl/extract" && mkdir -p "$OUT/dl/extract"
tar xzf "$SDIST" -C "$OUT/dl/extract" "$PY/tools/server" "$PY/tools/ui" "$PY/scripts/ui-assets.cmake"

SRC=$OUT/src
rm -rf "$SRC"
cp -rp "$SYS/llama.cpp" "$SRC"
chmod -R u+w "$SRC"
rm -rf "$SRC/tools/server" "$SRC/tools/ui"
cp -rp "$OUT/dl/extract/$PY/tools/server" "$SRC/tools/server"
cp -rp "$OUT/dl/extract/$PY/tools/ui" "$SRC/tools/ui"
mkdir -p "$SRC/scripts"
cp -p "$OUT/dl/extract/$PY/scripts/ui-assets.cmake" "$SRC/scripts/"
# API drift between the two llama.cpp copies: newer mtmd returns a struct from
# mtmd_get_memory_usage (only used with a multimodal projector, never here).
if grep -q "backend_mem_usage" "$SRC/tools/mtmd/mtmd.h"; then
  sed -i 's/auto mmproj_mem = mtmd_get_memory_usage(mmproj_path.c_str(), mparams);/auto mmproj_mem = mtmd_get_memory_usage(mmproj_path.c_str(), mparams).backend_mem_usage;/' \
    "$SRC/tools/server/server-context.cpp"
fi
# The newer common/ dropped fs_open_ifstream (a plain std::ifstream off Windows).
if ! grep -q "fs_open_ifstream" "$SRC/common/common.h"; then
  sed -i -E 's/fs_open_ifstream\(([^;]*), (std::ios[a-z_:|]*)\)/std::ifstream(\1, \2)/g' "$SRC/tools/server/server-mcp.cpp"
fi
# Only the tools the server needs (the packaged tools/ tree is partial).
cat > "$SRC/tools/CMakeLists.txt" <<'EOF'
find_package(Threads REQUIRED)
llama_add_compile_flags()
add_subdirectory(mtmd)
add_subdirectory(ui)
add_subdirectory(server)
EOF

nice -n 10 cmake -S "$SRC" -B "$OUT/build" -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_APP=OFF >"$OUT/cmake-configure.log" 2>&1 \
  || { tail -40 "$OUT/cmake-configure.log"; exit 1; }
grep -E "^GGML_(NATIVE|AVX|AVX2|FMA|F16C|BMI2|SSE42|AVX512|AMX_TILE|OPENMP):" "$OUT/build/CMakeCache.txt" | tr '\n' ' '
echo
nice -n 10 cmake --build "$OUT/build" --target llama-server -j "${BENCH_JOBS:-2}" >"$OUT/cmake-build.log" 2>&1 \
  || { tail -60 "$OUT/cmake-build.log"; exit 1; }
mkdir -p "$OUT/bin"
cp "$OUT/build/bin/llama-server" "$BIN"
echo "llama-server: built $BIN"
