#!/usr/bin/env bash
# The test command: installs what is missing, then runs every test, including
# those against the real local model, a real SQLite file and loopback HTTP servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SKILL_FLEET_MODEL="$PWD/models/gemma-3-270m-q4_k_m.gguf"
# DSPy itself, for the export round trip (tests/it/dspy_roundtrip.rs).
SKILL_FLEET_DSPY_PYTHON="$(bash scripts/dspy_venv.sh)"
export SKILL_FLEET_DSPY_PYTHON
# An MLflow tracking server for the export tests (tests/it/mlflow_export.rs).
SKILL_FLEET_MLFLOW_PYTHON="$(bash scripts/py_venv.sh target/mlflow-venv mlflow 3.17.2)"
export SKILL_FLEET_MLFLOW_PYTHON
# Schemathesis, for the property-based run of the server's OpenAPI document
# (tests/it/serve.rs; CI's short run, 10 examples per operation).
SKILL_FLEET_SCHEMATHESIS="$(bash scripts/py_venv.sh target/schemathesis-venv schemathesis 4.32.5)"
export SKILL_FLEET_SCHEMATHESIS
# The headless-browser check of HTML pages (reports; tests/browser/).
export SKILL_FLEET_BROWSER_CHECK="$PWD/tests/browser/check_page.mjs"
# One test at a time: the real-model tests each use every core.
cargo test --all-targets -- --test-threads 1
