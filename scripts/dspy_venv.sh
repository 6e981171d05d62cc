#!/usr/bin/env bash
# The venv with DSPy that tests/it/dspy_roundtrip.rs loads our DSPy export
# into; prints its python.
#   SKILL_FLEET_DSPY_VENV  where the venv lives (default: target/dspy-venv)
# Usage: export SKILL_FLEET_DSPY_PYTHON="$(bash scripts/dspy_venv.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/py_venv.sh "${SKILL_FLEET_DSPY_VENV:-target/dspy-venv}" dspy 3.4.1
