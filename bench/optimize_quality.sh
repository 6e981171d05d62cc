#!/usr/bin/env bash
# Optimization quality of skill-fleet's optimizers on the bundled program and
# trainset with the embedded local model: baseline vs optimized test score, LM
# calls, cache hits, wall time. One fresh database per optimizer and seed (cold cache).
# Usage: bash bench/optimize_quality.sh [optimizers...] (default: bootstrap miprov2)
# Env: SEEDS="42" (space-separated), THREADS=4
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --all-targets --quiet  # same build as the tests
BIN=target/debug/skill-fleet
OUT=bench/out/quality
mkdir -p "$OUT"
if [ $# -gt 0 ]; then OPTIMIZERS=("$@"); else OPTIMIZERS=(bootstrap miprov2); fi
for opt in "${OPTIMIZERS[@]}"; do
  for seed in ${SEEDS:-42}; do
    db="$OUT/$opt-$seed.db"
    rm -f "$db" "$db-wal" "$db-shm"
    $BIN --db "$db" trainset import config/training/trainset.json --name skills >/dev/null
    # The split is made with seed 42 for every run, so all optimizers and seeds compare on the same test examples.
    $BIN --db "$db" trainset split skills --seed 42 >/dev/null
    echo "== $opt seed $seed" >&2
    $BIN --db "$db" --json optimize --trainset skills --optimizer "$opt" --auto light --seed "$seed" \
      --max-labeled-demos 4 --threads "${THREADS:-4}" > "$OUT/$opt-$seed.json"
    python3 - "$OUT/$opt-$seed.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['optimizer']:<14} run {r['run_id']}: test {r['baseline_test']:.4f} -> {r['optimized_test']:.4f} "
      f"(val {r['baseline_val']:.4f} -> {r['best_val']:.4f}); {r['candidates']} candidates, "
      f"{r['lm_calls']} LM calls ({r['cache_hits']} cache hits), {r['wall_secs']:.0f} s")
PY
  done
done
