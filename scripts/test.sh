#!/usr/bin/env bash
# The test command: installs what is missing, then runs every test, including
# those against the real local model, a real SQLite file and loopback HTTP servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SKILL_FLEET_MODEL="$PWD/models/gemma-3-270m-q4_k_m.gguf"
# Three Python venvs the tests drive: DSPy itself, for the export round trip
# (tests/it/dspy_roundtrip.rs); an MLflow tracking server for the export tests
# (tests/it/mlflow_export.rs); Schemathesis, for the property-based run of the
# server's OpenAPI document (tests/it/serve.rs; CI's short run, 10 examples per
# operation). On a fresh machine their installs are mostly downloads (about
# 3 minutes in all), so they run while cargo compiles the tests.
venvs=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$venvs"' EXIT
bash scripts/dspy_venv.sh >"$venvs/dspy" &
dspy_job=$!
bash scripts/py_venv.sh target/mlflow-venv mlflow 3.17.2 >"$venvs/mlflow" &
mlflow_job=$!
bash scripts/py_venv.sh target/schemathesis-venv schemathesis 4.32.5 >"$venvs/schemathesis" &
schemathesis_job=$!
cargo test --all-targets --no-run
wait "$dspy_job"
wait "$mlflow_job"
wait "$schemathesis_job"
SKILL_FLEET_DSPY_PYTHON="$(cat "$venvs/dspy")"
SKILL_FLEET_MLFLOW_PYTHON="$(cat "$venvs/mlflow")"
SKILL_FLEET_SCHEMATHESIS="$(cat "$venvs/schemathesis")"
export SKILL_FLEET_DSPY_PYTHON SKILL_FLEET_MLFLOW_PYTHON SKILL_FLEET_SCHEMATHESIS
# The headless-browser check of HTML pages (reports; tests/browser/).
export SKILL_FLEET_BROWSER_CHECK="$PWD/tests/browser/check_page.mjs"
# One test at a time: the real-model tests each use every core.
cargo test --all-targets -- --test-threads 1
