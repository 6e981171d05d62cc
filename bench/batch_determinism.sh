#!/usr/bin/env bash
# Is greedy decoding reproducible, one request at a time and in batches? (issue 14)
#
# The in-process engine batches up to 4 concurrent requests into one llama.cpp
# decode. This script evaluates the bundled program (constrained, so every answer
# is written by the model) on one test split with the cache off, greedy:
#   --threads 1, twice   every call alone
#   --threads 4, 3 times 4 inputs at a time sharing decodes
# and prints, for every pair of evaluations, how many of the test answers differ
# (the stored prediction per example) and each evaluation's mean score.
#
# Usage: bash bench/batch_determinism.sh     Env: SEED (1), OUT (bench/out/batch_determinism)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
cargo build --quiet --bin skill-fleet
BIN=${SKILL_FLEET_BIN:-target/debug/skill-fleet}
OUT=${OUT:-bench/out/batch_determinism}
SEED=${SEED:-1}
PROGRAM=config/programs/skill_understanding.yaml
mkdir -p "$OUT"
db=$OUT/s$SEED.db
rm -f "$db" "$db-wal" "$db-shm"
sf() { "$BIN" --db "$db" --json "$@"; }
sf trainset import config/training/trainset.json --name skills >/dev/null
sf trainset split skills --seed "$SEED" >/dev/null
labels=()
for threads in 1 1 4 4 4; do
  echo "== eval --threads $threads ($(date -u +%T))" >&2
  start=$(date +%s.%N)
  sf eval --program "$PROGRAM" --trainset skills --split test --threads "$threads" --no-cache >/dev/null
  labels+=("threads $threads, $(python3 -c "print(round($(date +%s.%N) - $start))") s")
done
python3 - "$db" "${labels[@]}" <<'PY'
import itertools, sqlite3, sys
db, labels = sys.argv[1], sys.argv[2:]
con = sqlite3.connect(db)
evals = [r[0] for r in con.execute("SELECT id FROM evaluations WHERE split = 'test' ORDER BY id")]
assert len(evals) == len(labels), (evals, labels)
preds = {e: dict(con.execute("SELECT example_id, prediction_json FROM scores WHERE evaluation_id = ?", (e,))) for e in evals}
means = {e: con.execute("SELECT mean_score FROM evaluations WHERE id = ?", (e,)).fetchone()[0] for e in evals}
print(f"{len(preds[evals[0]])} test answers per evaluation; `bash bench/batch_determinism.sh`, seed's split as in `trainset split --seed`\n")
print("| evaluation | mean test score |")
print("| --- | ---: |")
for i, e in enumerate(evals):
    print(f"| {i + 1}: {labels[i]} | {means[e]:.3f} |")
print("\n| pair | answers that differ |")
print("| --- | ---: |")
for (i, a), (j, b) in itertools.combinations(enumerate(evals), 2):
    diff = sum(1 for k in preds[a] if preds[a][k] != preds[b].get(k))
    print(f"| {i + 1} vs {j + 1} | {diff} |")
PY
