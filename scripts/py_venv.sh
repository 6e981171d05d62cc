#!/usr/bin/env bash
# Creates a Python venv holding one pinned package and prints its python.
# Safe to run again: when the venv already has that version, it only prints
# the path (well under a second).
# Usage: bash scripts/py_venv.sh VENV_DIR PACKAGE VERSION
#   e.g. export SKILL_FLEET_DSPY_PYTHON="$(bash scripts/py_venv.sh target/dspy-venv dspy 3.4.1)"
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$1 PACKAGE=$2 VERSION=$3
PY="$VENV/bin/python"
installed() {
  [ -x "$PY" ] && "$PY" - "$PACKAGE" "$VERSION" 2>/dev/null <<'PYEOF'
import sys
from importlib.metadata import version
sys.exit(version(sys.argv[1]) != sys.argv[2])
PYEOF
}
if ! installed; then
  echo "py_venv: installing $PACKAGE==$VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$PY" -m pip install --quiet "$PACKAGE==$VERSION" >&2
  installed
fi
echo "$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"
