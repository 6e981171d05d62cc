#!/usr/bin/env bash
# The main job: optimize the bundled program on the bundled trainset with the
# embedded local model, then show the run as the tracker recorded it.
# Usage: bash scripts/run.sh [extra `skill-fleet optimize` flags, e.g. --optimizer miprov2]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Only the binary it runs; the dev profile the tests use, so llama.cpp is built once for both.
cargo build --bin skill-fleet --quiet
BIN=target/debug/skill-fleet
export SKILL_FLEET_DB="${SKILL_FLEET_DB:-skill-fleet.db}"
$BIN trainset import config/training/trainset.json --name skills
$BIN trainset stats skills
# KNN few-shot (the 4 train examples nearest to each input as its demos, BM25)
# under the bundled program's constrained decoding: the best-scoring
# combination whose optimization stays under 5 minutes on 2 cores here; the
# bootstrap -> KNN chain scores higher but its optimization took 297-362 s
# in-process, over 5 minutes on two seeds of three (docs/benchmarks.md, part D,
# "On the main job's path").
$BIN optimize --program config/programs/skill_understanding.yaml --trainset skills \
  --optimizer knn --retriever bm25 --max-labeled-demos 4 --threads 4 --seed 42 --promote production "$@"
$BIN sql "SELECT run_id, optimizer, status, baseline_score, best_score, test_score, lm_calls, cache_hits, n_candidates FROM run_summary ORDER BY run_id DESC LIMIT 3"
