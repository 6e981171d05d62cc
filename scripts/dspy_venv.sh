#!/usr/bin/env bash
# Creates the venv with DSPy that tests/it/dspy_roundtrip.rs loads our DSPy
# export into, and prints its python. Safe to run again: when the venv
# already imports the pinned DSPy, it only prints the path (well under a second).
#   SKILL_FLEET_DSPY_VENV  where the venv lives (default: target/dspy-venv)
# Usage: export SKILL_FLEET_DSPY_PYTHON="$(bash scripts/dspy_venv.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."
DSPY_VERSION=3.4.1
VENV=${SKILL_FLEET_DSPY_VENV:-target/dspy-venv}
PY="$VENV/bin/python"
installed() {
  [ -x "$PY" ] && "$PY" - "$DSPY_VERSION" 2>/dev/null <<'PYEOF'
import sys
from importlib.metadata import version
sys.exit(version("dspy") != sys.argv[1])
PYEOF
}
if ! installed; then
  echo "dspy_venv: installing dspy==$DSPY_VERSION into $VENV (about a minute)" >&2
  python3 -m venv "$VENV"
  "$PY" -m pip install --quiet "dspy==$DSPY_VERSION" >&2
  installed
fi
echo "$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"
