#!/usr/bin/env bash
# Optimization quality and cost, skill-fleet vs DSPy, on the same LM, trainset,
# split and seed (docs/benchmarks.md, part D).
#
# One llama-server (bench/build_llama_server.sh, no native CPU flags) serves the
# bundled model to both sides, in each mode of MODES:
#   - completion: ours-server (`skill-fleet optimize`, every role on the openai
#     provider pointed at that server, mode completion, the completion adapter)
#     and dspy (bench/dspy_quality.py, DSPy in bench/.venv, model_type="text");
#   - chat: ours-server-chat (mode chat, `adapter: chat`) and dspy-chat
#     (model_type="chat", DSPy's ChatAdapter), each side on its chat path;
#   - ours-local: `skill-fleet optimize` in-process (the embedded default), for
#     the seeds in LOCAL_SEEDS, after the server is stopped.
# For each seed S: a fresh database per side, split with seed S (37/28/27,
# stratified), then each optimizer with --seed S. Within a seed the optimizers
# share their side's cache (ours: the database; DSPy: its disk cache dir), the
# same on both sides. Test scores are computed by our metric on both sides
# (`skill-fleet metrics score` for DSPy's predictions).
#
# Usage: bash bench/quality_vs_dspy.sh
# Env: SEEDS="1 2 3" (empty: none), OPTIMIZERS="bootstrap miprov2" (gepa too), MODES="completion chat",
#      LOCAL_SEEDS="1" (empty: none), THREADS=4,
#      KEEP=1 (add runs to existing seed directories instead of starting them afresh),
#      SKILL_FLEET_BIN (a built binary to use instead of building target/debug/skill-fleet),
#      SIDES="ours dspy" (which llama-server sides to run; with KEEP=1, e.g. SIDES=dspy reruns DSPy only)
set -euo pipefail
{
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=bench/out/cmp
mkdir -p "$OUT"
SEEDS=${SEEDS-"1 2 3"}  # empty: no llama-server runs
OPTIMIZERS=${OPTIMIZERS:-"bootstrap miprov2"}
MODES=${MODES:-"completion chat"}  # llama-server endpoint and adapter of both sides
LOCAL_SEEDS=${LOCAL_SEEDS-"1"}  # empty: no in-process runs
THREADS=${THREADS:-4}
SIDES=${SIDES:-"ours dspy"}
side() { [[ " $SIDES " == *" $1 "* ]]; }
# SKILL_FLEET_BIN: an already built binary (bench/run_all.sh passes its
# optimized one); otherwise the dev build, made here.
BIN=${SKILL_FLEET_BIN:-target/debug/skill-fleet}
PY=bench/.venv/bin/python
MODEL=models/gemma-3-270m-q4_k_m.gguf

bash scripts/setup.sh >/dev/null
[ -n "${SKILL_FLEET_BIN:-}" ] || cargo build --all-targets --quiet
if [ ! -x "$PY" ] || ! "$PY" -c "import dspy, yaml" 2>/dev/null; then
  python3 -m venv bench/.venv
  "$PY" -m pip install --quiet --upgrade pip
  "$PY" -m pip install --quiet "dspy==3.4.1" pyyaml
fi
bash bench/build_llama_server.sh >/dev/null

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SERVER_CMD=(bench/out/llama-server/bin/llama-server -m "$MODEL" --host 127.0.0.1 --port "$PORT"
  -c 16384 -np 4 -t 2 -tb 2 -b 512 -ub 512)
echo "${SERVER_CMD[*]}" > "$OUT/server-command.txt"

# Our configuration with every role served by the llama-server, in
# text-completion mode and in chat mode; for chat, the bundled program with
# `adapter: chat` (DSPy's ChatAdapter format).
for mode in completion chat; do
python3 - "$PORT" "$OUT/config-server-$mode.yaml" "$mode" <<'EOF'
import sys, yaml
port, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
c = yaml.safe_load(open("config/config.yaml"))
for name, role in c["lm"]["roles"].items():
    role.update({"provider": "openai", "model": "gemma-3-270m", "base_url": f"http://127.0.0.1:{port}/v1",
                 "mode": mode, "max_concurrency": 4})
yaml.safe_dump(c, open(out, "w"), sort_keys=False)
EOF
done
sed 's/^adapter: completion$/adapter: chat/' config/programs/skill_understanding.yaml > "$OUT/skill_understanding-chat.yaml"
grep -q '^adapter: chat$' "$OUT/skill_understanding-chat.yaml"

SERVER_PID=
start_server() {
  "${SERVER_CMD[@]}" >"$OUT/llama-server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "llama-server did not become healthy; see $OUT/llama-server.log" >&2
  exit 1
}
stop_server() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }
trap stop_server EXIT

# Runs our optimizer and writes its report plus token counts from the traces.
ours() { # side db config opt seed out [program]
  local side=$1 db=$2 cfg=$3 opt=$4 seed=$5 out=$6 program=${7:-}
  local args=(--db "$db" --json) oargs=()
  [ -n "$cfg" ] && args+=(--config "$cfg")
  [ -n "$program" ] && oargs+=(--program "$program")
  "$BIN" "${args[@]}" optimize --trainset skills --optimizer "$opt" --auto light --seed "$seed" \
    --max-labeled-demos 4 --threads "$THREADS" "${oargs[@]}" > "$out.tmp"
  python3 - "$out.tmp" "$out" "$db" "$side" "$seed" "$BIN" <<'EOF'
import json, subprocess, sys
tmp, out, db, side, seed, bin_ = sys.argv[1:]
r = json.load(open(tmp))
q = subprocess.run([bin_, "--db", db, "--json", "sql",
    f"SELECT COUNT(*) AS calls, COALESCE(SUM(cache_hit), 0) AS hits, "
    f"COALESCE(SUM(CASE WHEN cache_hit = 0 THEN prompt_tokens END), 0) AS pt, "
    f"COALESCE(SUM(CASE WHEN cache_hit = 0 THEN completion_tokens END), 0) AS ct FROM traces WHERE run_id = {r['run_id']}"],
    capture_output=True, text=True, check=True)
rows = json.loads(q.stdout)
row = rows[0] if isinstance(rows, list) else rows["rows"][0]
r.update({"side": side, "seed": int(seed), "lm_calls": row["calls"], "provider_calls": row["calls"] - row["hits"],
          "prompt_tokens": row["pt"], "completion_tokens": row["ct"]})
json.dump(r, open(out, "w"), indent=2)
EOF
  rm -f "$out.tmp"
}

# KEEP=1 with an existing database: add runs to it (e.g. MIPROv2 after
# bootstrap) and keep its caches.
keep() { [ "${KEEP:-0}" = 1 ] && [ -f "$1" ]; }

# Earlier results are moved aside (NAME.YYYYmmdd-HHMMSS), never deleted.
set_aside() { # path...
  local f stamp
  stamp=$(date -u +%Y%m%d-%H%M%S)
  for f in "$@"; do
    if [ -e "$f" ]; then mv "$f" "$f.$stamp"; fi
  done
}

fresh_db() { # db seed
  set_aside "$1" "$1-wal" "$1-shm"
  "$BIN" --db "$1" trainset import config/training/trainset.json --name skills >/dev/null
  "$BIN" --db "$1" trainset split skills --seed "$2" >/dev/null
}

start_server
for seed in $SEEDS; do
  dir=$OUT/s$seed
  if ! keep "$dir/ours-server.db"; then
    # With KEEP, the seed's earlier results stay and the new database joins them.
    if [ "${KEEP:-0}" != 1 ]; then set_aside "$dir"; fi
    mkdir -p "$dir/pred"
    fresh_db "$dir/ours-server.db" "$seed"
  fi
  # The split both sides use, as trainset indexes.
  "$BIN" --db "$dir/ours-server.db" --json sql \
    "SELECT e.idx AS idx, a.part AS part FROM split_assignments a JOIN examples e ON e.id = a.example_id WHERE a.split_id = (SELECT MAX(id) FROM splits) ORDER BY e.idx" \
    | python3 -c '
import json, sys
rows = json.load(sys.stdin)
rows = rows if isinstance(rows, list) else rows["rows"]
out = {"train": [], "val": [], "test": []}
for r in rows:
    out[r["part"]].append(r["idx"])
json.dump(out, open(sys.argv[1], "w"))
print({k: len(v) for k, v in out.items()})' "$dir/split.json"
  for mode in $MODES; do
  # Text-completion rows keep their names; chat rows end in -chat.
  sfx=; cfg=$OUT/config-server-completion.yaml; program=
  if [ "$mode" = chat ]; then
    sfx=-chat; cfg=$OUT/config-server-chat.yaml; program=$OUT/skill_understanding-chat.yaml
  fi
  for opt in $OPTIMIZERS; do
    if side ours; then
      echo "== seed $seed $opt ($mode): ours via llama-server ($(date -u +%H:%M:%S))"
      ours "ours-server$sfx" "$dir/ours-server.db" "$cfg" "$opt" "$seed" "$dir/ours-server$sfx-$opt.json" "$program"
    fi
    side dspy || continue
    echo "== seed $seed $opt ($mode): DSPy via llama-server ($(date -u +%H:%M:%S))"
    # A fresh DSPy cache per run of its side, so a rerun (e.g. with other LM
    # settings) is measured cold, as the first was.
    [ -f "$dir/dspy$sfx-$opt.json" ] && rm -rf "$dir/dspy_cache$sfx"
    "$PY" bench/dspy_quality.py --optimizer "$opt" --seed "$seed" --split "$dir/split.json" --port "$PORT" \
      --mode "$mode" --out "$dir/dspy$sfx-$opt.json" --cache-dir "$dir/dspy_cache$sfx" --predictions-dir "$dir/pred" \
      --db "$dir/ours-server.db" --bin "$BIN" --threads "$THREADS" > "$dir/dspy$sfx-$opt.log" 2>&1 \
      || { echo "DSPy run failed; see $dir/dspy$sfx-$opt.log" >&2; tail -5 "$dir/dspy$sfx-$opt.log" >&2; }
  done
  done
done
stop_server
for seed in $LOCAL_SEEDS; do
  dir=$OUT/s$seed
  mkdir -p "$dir"
  if ! keep "$dir/ours-local.db"; then
    fresh_db "$dir/ours-local.db" "$seed"
  fi
  for opt in $OPTIMIZERS; do
    echo "== seed $seed $opt: ours in-process ($(date -u +%H:%M:%S))"
    ours ours-local "$dir/ours-local.db" "" "$opt" "$seed" "$dir/ours-local-$opt.json"
  done
done
python3 bench/quality_summary.py "$OUT" | tee "$OUT/summary.txt"
}
