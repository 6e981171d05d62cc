#!/usr/bin/env bash
# What per-input demos cost the prompt-prefix cache (issue 15), on the main
# job's path: the embedded model in-process, the bundled program as it is.
#
# Per seed, on one fresh database with the seed's split, two versions with 4
# demos each, both from the train split: `--optimizer labeled` (4 fixed train
# examples, the same in every prompt) and `--optimizer knn` (the 4 train
# examples nearest to each input, BM25). Then each version evaluates the test
# split with the cache off, twice:
#   --threads 1  every call alone: all the engine can reuse is the prefix the
#                previous call left (fixed demos: instructions + demos; KNN:
#                the instructions, as the demos change with the input)
#   --threads 4  4 inputs per llama.cpp batch sharing their common prefix
# and the script reports each evaluation's wall time and its calls' mean
# prompt tokens and latency (from the traces), and the KNN / fixed ratio.
#
# Usage: bash bench/knn_prefix_cost.sh        Env: SEEDS ("1 2 3"), OUT (bench/out/knn_prefix)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
cargo build --quiet --bin skill-fleet
BIN=${SKILL_FLEET_BIN:-target/debug/skill-fleet}
OUT=${OUT:-bench/out/knn_prefix}
SEEDS=${SEEDS:-1 2 3}
PROGRAM=config/programs/skill_understanding.yaml
mkdir -p "$OUT"
sf() { "$BIN" --db "$db" --json "$@"; }  # on the seed's database ($db, set below)
echo "# $(date -u +%FT%TZ) bash bench/knn_prefix_cost.sh (SEEDS=\"$SEEDS\") at $(git rev-parse --short HEAD)" >"$OUT/results.jsonl"
for seed in $SEEDS; do
  db="$OUT/s$seed.db"
  rm -f "$db" "$db-wal" "$db-shm"
  sf trainset import config/training/trainset.json --name skills >/dev/null
  sf trainset split skills --seed "$seed" >/dev/null
  echo "== seed $seed: versions" >&2
  labeled=$(sf optimize --program "$PROGRAM" --trainset skills --optimizer labeled --max-labeled-demos 4 \
    --seed "$seed" --threads 4 | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
  knn=$(sf optimize --program "$PROGRAM" --trainset skills --optimizer knn --retriever bm25 --max-labeled-demos 4 \
    --seed "$seed" --threads 4 | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
  for threads in 1 4; do
    for kind in labeled knn; do
      v=$labeled; [ "$kind" = knn ] && v=$knn
      echo "== seed $seed: $kind (version $v), --threads $threads" >&2
      sf eval --program "$PROGRAM" --version "$v" --trainset skills --split test --no-cache \
        --threads "$threads" >"$OUT/eval-s$seed-$kind-t$threads.json"
      python3 - "$db" "$OUT/eval-s$seed-$kind-t$threads.json" "$seed" "$kind" "$threads" >>"$OUT/results.jsonl" <<'EOF'
import json, sqlite3, sys
db, report, seed, kind, threads = sys.argv[1:]
r = json.load(open(report))
q = sqlite3.connect(f"file:{db}?mode=ro", uri=True).execute(
    "SELECT COUNT(*), AVG(prompt_tokens), AVG(completion_tokens), AVG(latency_ms), "
    "SUM(selected_demos IS NOT NULL) FROM traces WHERE run_id = ? AND cache_hit = 0", (r["run_id"],)).fetchone()
print(json.dumps({"seed": int(seed), "kind": kind, "threads": int(threads), "version": r["version"],
                  "test": r["mean"], "wall_secs": r["wall_secs"], "calls": q[0], "prompt_tokens": q[1],
                  "completion_tokens": q[2], "latency_ms": q[3], "calls_with_selected_demos": q[4]}))
EOF
    done
  done
done
python3 - "$OUT/results.jsonl" <<'EOF'
import json, statistics, sys
lines = open(sys.argv[1]).read().splitlines()
rows = [json.loads(l) for l in lines[1:]]
print(lines[0].lstrip("# "))
print()
print("| threads | demos | seeds | test | wall s per evaluation (27) | prompt tokens per call | completion tokens per call | latency per call, ms |")
print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |")
mean = lambda k, rs: statistics.mean(r[k] for r in rs)
for t in (1, 4):
    got = {}
    for kind, name in (("labeled", "4 fixed (labeled)"), ("knn", "4 per input (KNN, BM25)")):
        rs = [r for r in rows if r["threads"] == t and r["kind"] == kind]
        if not rs:
            continue
        got[kind] = rs
        print(f"| {t} | {name} | {', '.join(str(r['seed']) for r in rs)} | {mean('test', rs):.3f} | {mean('wall_secs', rs):.1f} | "
              f"{mean('prompt_tokens', rs):.0f} | {mean('completion_tokens', rs):.0f} | {mean('latency_ms', rs):,.0f} |")
    if len(got) == 2:
        ratio = mean("wall_secs", got["knn"]) / mean("wall_secs", got["labeled"])
        print(f"| {t} | KNN / fixed | | | {ratio:.2f}x | | | {mean('latency_ms', got['knn']) / mean('latency_ms', got['labeled']):.2f}x |")
EOF
