#!/usr/bin/env bash
# Optimization quality and cost, skill-fleet vs DSPy, on the same LM, trainset,
# split and seed (docs/benchmarks.md, part D; issues 14 and 15). One run of this
# script makes every figure of part D; it is resumable, since the whole run
# takes hours.
#
# A run lives in bench/out/quality/RUN_ID/ and is a list of cells, each one
# (seed, mode, variant): one command on a fresh database (and, for DSPy, a
# fresh disk cache) of its own, so a cell's result never depends on which cells
# ran before it, in this session or an earlier one. Cells run seed-major (every
# cell of the first seed, then the second, ...), so an interrupted run has its
# complete seeds first. A finished cell writes cells/<cell>.json atomically
# (scores, calls, tokens, its start and end time in UTC, the session and the
# exact command); a resumed run skips those and reruns any other cell from
# scratch (its work directory is deleted first, never reused half-done).
#
# Modes (one llama-server, bench/build_llama_server.sh, no native CPU flags,
# serves the bundled model to both sides):
#   completion  ours: every role on the openai provider in completion mode, the
#               completion adapter; DSPy: model_type="text"
#   chat        ours: chat mode with `adapter: chat`; DSPy: model_type="chat",
#               its ChatAdapter (each side on its chat path)
#   local       ours in-process (the embedded default); the server is stopped
#               while these cells run
# Variants (a cell is MODE/VARIANT):
#   ours-zeroshot          `skill-fleet eval` of the bundled program on the test split
#   ours-OPT               `skill-fleet optimize --optimizer OPT` (bootstrap, miprov2, gepa,
#                          knn (BM25), or a chain such as bootstrap+knn)
#   ...-c                  the same with `constrained: true` in the program spec
#   dspy-OPT               bench/dspy_quality.py --optimizer OPT (bootstrap, miprov2, gepa,
#                          knn = KNNFewShot with a BM25 vectorizer, knn-labeled)
#   dspy-nostop-bootstrap  DSPy without a stop sequence (its default)
#   dspy-jsonfb-OPT        the ChatAdapter's JSONAdapter fallback on (DSPy's default) where the
#                          default runs turn it off: the task LM in completion mode (there it only
#                          adds LiteLLM's retry backoff) and MIPROv2's adapter in both modes
#   dspy-longprop-miprov2  MIPROv2's proposer LM with 1024 new tokens instead of 160 (our prompt
#                          role's limit): what DSPy's "LM response was truncated; increase
#                          max_tokens" warning asks for when the proposal fails
# Every optimize/DSPy cell also reports the zero-shot score on the test split
# (its baseline); DSPy's zero-shot is that baseline.
#
# Usage:
#   bash bench/quality_vs_dspy.sh              # a new run, RUN_ID = UTC timestamp
#   RESUME=RUN_ID bash bench/quality_vs_dspy.sh  # continue that run
# Env (a new run; a resumed run takes them from its config.json):
#   RUN_ID (default: YYYYmmddTHHMMSSZ), SEEDS="1 2 3", VARIANTS (default below; words
#   MODE/VARIANT, or a bare VARIANT for every mode in MODES), MODES="completion chat",
#   THREADS=4, TRAIN_LIMIT (use only N trainset examples, evenly spaced: smoke tests),
#   STANDIN_SERVER=1 (bench/standin_server.py instead of llama-server: smoke tests of the
#   harness, scores meaningless), ALLOW_DIRTY=1 (start although bench scripts, config or
#   sources have uncommitted changes; recorded), SKILL_FLEET_BIN (a built binary instead
#   of building target/debug/skill-fleet), CELL_TIMEOUT (seconds per cell, default 7200).
# A run refuses to resume when the bench scripts, the config files, the binary's
# sources (their last commit or uncommitted changes), the model, the server or
# DSPy's version differ from what the run recorded at its start; it says which.
set -euo pipefail
{
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=bench/.venv/bin/python
MODEL=models/gemma-3-270m-q4_k_m.gguf
BIN=${SKILL_FLEET_BIN:-${CARGO_TARGET_DIR:-target}/debug/skill-fleet}
BASE_SPEC=config/programs/skill_understanding.yaml

# Issue 14 (both modes): BootstrapFewShot and MIPROv2 on each side. Issue 15
# (completion mode, where our BootstrapFewShot did best in the earlier runs):
# zero-shot, BootstrapFewShot and KNN (BM25) with and without constrained
# decoding (ours-bootstrap, completion, is the unconstrained BootstrapFewShot
# cell), a chain, and DSPy's KNNFewShot. The chain is bootstrap+knn,
# constrained: BootstrapFewShot's demos are answers the model itself wrote and
# the metric passed (right format), KNN then adds each input's nearest train
# examples after them (the category of similar requests, which is what the
# model gets wrong most), for one val and one test pass on top of BootstrapFewShot.
# bootstrap+miprov2 would add MIPROv2's ~13 minutes per seed; it can be asked
# for (completion/ours-bootstrap+miprov2-c).
DEFAULT_VARIANTS="completion/ours-bootstrap completion/dspy-bootstrap completion/ours-miprov2 completion/dspy-miprov2
completion/ours-zeroshot completion/ours-zeroshot-c completion/ours-bootstrap-c completion/ours-knn completion/ours-knn-c
completion/ours-bootstrap+knn-c completion/dspy-knn
chat/ours-bootstrap chat/dspy-bootstrap chat/ours-miprov2 chat/dspy-miprov2"

die() { echo "quality_vs_dspy.sh: $*" >&2; exit 1; }
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# ---- the run directory: new or resumed ----------------------------------------
RUNS=bench/out/quality
if [ -n "${RESUME:-}" ]; then
  RUN_ID=$RESUME
  RUN_DIR=$RUNS/$RUN_ID
  [ -f "$RUN_DIR/config.json" ] || die "no run $RUN_DIR (no config.json)"
else
  RUN_ID=${RUN_ID:-$(date -u +%Y%m%dT%H%M%SZ)}
  RUN_DIR=$RUNS/$RUN_ID
  [ -e "$RUN_DIR" ] && die "$RUN_DIR exists; continue it with RESUME=$RUN_ID"
  mkdir -p "$RUN_DIR"
fi
mkdir -p "$RUN_DIR/cells" "$RUN_DIR/work" "$RUN_DIR/failed" "$RUN_DIR/splits"
exec 9>"$RUN_DIR/lock"
flock -n 9 || die "another session is running $RUN_DIR"

# Processes a killed session left behind (its server, its cell's process
# group): found by the ids it recorded, checked by their command line, stopped.
if [ -f "$RUN_DIR/pids" ]; then
  while read -r kind pid tag; do
    [ -d "/proc/$pid" ] || continue
    if tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$tag"; then
      echo "stopping $kind $pid left by an earlier session"
      if [ "$kind" = cell ]; then kill -TERM -- "-$pid" 2>/dev/null || true; else kill "$pid" 2>/dev/null || true; fi
      for _ in $(seq 1 20); do [ -d "/proc/$pid" ] || break; sleep 0.5; done
      if [ "$kind" = cell ]; then kill -KILL -- "-$pid" 2>/dev/null || true; else kill -KILL "$pid" 2>/dev/null || true; fi
    fi
  done < "$RUN_DIR/pids"
  rm -f "$RUN_DIR/pids"
fi

# ---- setup (idempotent) --------------------------------------------------------
bash scripts/setup.sh >/dev/null
if [ ! -x "$PY" ] || ! "$PY" -c "import dspy, yaml, sklearn" 2>/dev/null; then
  python3 -m venv bench/.venv
  "$PY" -m pip install --quiet --upgrade pip
  "$PY" -m pip install --quiet "dspy==3.4.1" pyyaml "scikit-learn==1.9.1"
fi

if [ -n "${RESUME:-}" ]; then
  # A resumed run keeps its own settings; the environment's are ignored.
  eval "$(python3 - "$RUN_DIR/config.json" <<'EOF'
import json, shlex, sys
s = json.load(open(sys.argv[1]))["settings"]
for k in ("SEEDS", "VARIANTS", "THREADS", "TRAIN_LIMIT", "STANDIN_SERVER", "ALLOW_DIRTY", "CELL_TIMEOUT"):
    print(f"R_{k}={shlex.quote(str(s.get(k, '')))}")
EOF
)"
  for k in SEEDS VARIANTS THREADS TRAIN_LIMIT STANDIN_SERVER; do
    e=${!k-}; r=R_$k
    if [ -n "$e" ] && [ "$e" != "${!r}" ]; then echo "note: $k from the environment is ignored; the run has $k=${!r}"; fi
  done
  SEEDS=$R_SEEDS; VARIANTS=$R_VARIANTS; THREADS=$R_THREADS; TRAIN_LIMIT=$R_TRAIN_LIMIT
  STANDIN_SERVER=$R_STANDIN_SERVER; ALLOW_DIRTY=$R_ALLOW_DIRTY; CELL_TIMEOUT=$R_CELL_TIMEOUT
else
  SEEDS=${SEEDS:-"1 2 3"}
  MODES=${MODES:-"completion chat"}
  # Bare variants apply to every mode in MODES; MODE/VARIANT words stay, and the
  # default list is cut to MODES.
  v=
  for w in ${VARIANTS:-$DEFAULT_VARIANTS}; do
    if [[ $w == */* ]]; then
      if [ -n "${VARIANTS:-}" ] || [[ " $MODES " == *" ${w%%/*} "* ]]; then v+="$w "; fi
    else
      for m in $MODES; do v+="$m/$w "; done
    fi
  done
  VARIANTS=${v% }
  THREADS=${THREADS:-4}
  TRAIN_LIMIT=${TRAIN_LIMIT:-}
  STANDIN_SERVER=${STANDIN_SERVER:-0}
  ALLOW_DIRTY=${ALLOW_DIRTY:-0}
  CELL_TIMEOUT=${CELL_TIMEOUT:-7200}
fi
[ -n "$VARIANTS" ] || die "no cells (VARIANTS and MODES select none)"

if [ "$STANDIN_SERVER" = 1 ]; then
  SERVER_ARGV=(python3 bench/standin_server.py --host 127.0.0.1)
else
  bash bench/build_llama_server.sh >/dev/null
  SERVER_ARGV=(bench/out/llama-server/bin/llama-server -m "$MODEL" --host 127.0.0.1 -c 16384 -np 4 -t 2 -tb 2 -b 512 -ub 512)
fi

# The trainset: the bundled file, or (TRAIN_LIMIT) N evenly spaced examples of it.
TRAINSET=config/training/trainset.json
if [ -n "$TRAIN_LIMIT" ]; then
  TRAINSET=$RUN_DIR/trainset.json
  [ -f "$TRAINSET" ] || python3 - "$TRAIN_LIMIT" "$TRAINSET" <<'EOF'
import json, sys
n, out = int(sys.argv[1]), sys.argv[2]
rows = json.load(open("config/training/trainset.json"))
step = max(1, len(rows) // n)
json.dump(rows[::step][:n], open(out + ".tmp", "w"), indent=1)
import os; os.replace(out + ".tmp", out)
EOF
fi

# Built after the identity check (a refused resume builds nothing).
build_bin() {
  if [ -z "${SKILL_FLEET_BIN:-}" ]; then cargo build --quiet --bin skill-fleet; fi
  [ -x "$BIN" ] || die "no binary $BIN"
}

# ---- identity: recorded at the start, compared on resume -------------------------
identity() {
  python3 - "$BIN" "${SERVER_ARGV[*]}" "$PY" "$STANDIN_SERVER" <<'EOF'
import hashlib, json, os, subprocess, sys
bin_, server, py, standin = sys.argv[1:]
git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True, check=True).stdout.strip()
def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()
scripts = ["bench/quality_vs_dspy.sh", "bench/dspy_quality.py", "bench/quality_summary.py", "bench/standin_server.py"]
inputs = ["config/config.yaml", "config/programs/skill_understanding.yaml", "config/taxonomy.yaml", "config/training/trainset.json"]
sources = ["src", "Cargo.toml", "Cargo.lock", "migrations", "build.rs", "assets"]
sources = [s for s in sources if os.path.exists(s)]
dspy = subprocess.run([py, "-c", "import dspy, sklearn; print(dspy.__version__, sklearn.__version__)"], capture_output=True, text=True)
srv = server.split()[0] if standin != "1" else "bench/standin_server.py"
print(json.dumps({
    "bench_scripts": {p: git("hash-object", p) for p in scripts},
    "inputs": {p: git("hash-object", p) for p in inputs},
    "uncommitted": git("status", "--porcelain", "--", *scripts, *inputs, *sources).splitlines(),
    "binary_source_commit": git("log", "-1", "--format=%H", "--", *sources),
    "model_sha256": sha("models/gemma-3-270m-q4_k_m.gguf") if standin != "1" else "(stand-in server: no model)",
    "server_command": server + " --port PORT",
    "server_binary_sha256": sha(srv),
    "dspy_sklearn_versions": dspy.stdout.strip(),
}, indent=2, sort_keys=True))
EOF
}
ID_NOW=$(identity)
if [ -z "${RESUME:-}" ]; then
  if [ "$ALLOW_DIRTY" != 1 ] && python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["uncommitted"] else 1)' "$ID_NOW"; then
    rm -rf "$RUN_DIR"
    die "uncommitted changes in bench scripts, config or sources (every figure comes from a committed script); commit them, or ALLOW_DIRTY=1 for a smoke test"
  fi
  build_bin
  # The run keeps its own copy of the binary: a resumed session runs exactly
  # this build even if the checkout has moved on meanwhile.
  cp "$BIN" "$RUN_DIR/skill-fleet.tmp" && mv "$RUN_DIR/skill-fleet.tmp" "$RUN_DIR/skill-fleet"
  BIN=$RUN_DIR/skill-fleet
  python3 - "$RUN_DIR/config.json" "$ID_NOW" "$RUN_ID" "$(now)" "$(git rev-parse HEAD)" "$BIN" "$TRAINSET" \
    "$SEEDS" "$VARIANTS" "$THREADS" "$TRAIN_LIMIT" "$STANDIN_SERVER" "$ALLOW_DIRTY" "$CELL_TIMEOUT" <<'EOF'
import hashlib, json, os, platform, subprocess, sys
out, ident, run_id, started, head, bin_, trainset, *s = sys.argv[1:]
keys = ["SEEDS", "VARIANTS", "THREADS", "TRAIN_LIMIT", "STANDIN_SERVER", "ALLOW_DIRTY", "CELL_TIMEOUT"]
cfg = {"run_id": run_id, "started": started, "git_head": head, "identity": json.loads(ident),
       "binary": bin_, "binary_sha256": hashlib.sha256(open(bin_, "rb").read()).hexdigest(),
       "binary_version": subprocess.run([bin_, "--version"], capture_output=True, text=True).stdout.strip(),
       "trainset": trainset, "host": platform.node(), "cpus": os.cpu_count(),
       "command": "bash bench/quality_vs_dspy.sh", "settings": dict(zip(keys, s))}
json.dump(cfg, open(out + ".tmp", "w"), indent=2)
os.replace(out + ".tmp", out)
EOF
else
  python3 - "$RUN_DIR/config.json" "$ID_NOW" <<'EOF' || die "refusing to resume $RUN_DIR: the run would no longer be one run (see above)"
import json, sys
was = json.load(open(sys.argv[1]))["identity"]
now = json.loads(sys.argv[2])
bad = False
# The binary is the run's own copy (checked below by its hash), so later
# commits to the sources do not change what a resumed session runs.
for k in sorted((set(was) | set(now)) - {"binary_source_commit", "uncommitted"}):
    if was.get(k) != now.get(k):
        if isinstance(was.get(k), dict):
            for p in sorted(set(was[k]) | set(now.get(k, {}))):
                if was[k].get(p) != now.get(k, {}).get(p):
                    print(f"changed since the run started: {k} {p}: {was[k].get(p)} -> {now.get(k, {}).get(p)}", file=sys.stderr)
        else:
            print(f"changed since the run started: {k}: {was.get(k)!r} -> {now.get(k)!r}", file=sys.stderr)
        bad = True
sys.exit(1 if bad else 0)
EOF
  BIN=$RUN_DIR/skill-fleet
  python3 - "$RUN_DIR/config.json" "$BIN" <<'EOF' || die "refusing to resume $RUN_DIR: its copy of the binary is missing or changed"
import hashlib, json, sys
cfg, bin_ = json.load(open(sys.argv[1])), sys.argv[2]
try:
    now = hashlib.sha256(open(bin_, "rb").read()).hexdigest()
except OSError as e:
    sys.exit(f"{bin_}: {e}")
if now != cfg["binary_sha256"]:
    sys.exit(f"{bin_}: sha256 {now}, the run started with {cfg['binary_sha256']}")
EOF
fi

# ---- this session ---------------------------------------------------------------
SESSION=$(( $(cat "$RUN_DIR/sessions.jsonl" 2>/dev/null | grep -c '"event": "start"' || true) + 1 ))
SESSION_DIR=$RUN_DIR/session-$SESSION
mkdir -p "$SESSION_DIR"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log_session() { # event [status]
  python3 -c 'import json,sys; print(json.dumps({"session": int(sys.argv[1]), "event": sys.argv[2], "time": sys.argv[3], "port": int(sys.argv[4]), "pid": int(sys.argv[5]), "status": sys.argv[6]}))' \
    "$SESSION" "$1" "$(now)" "$PORT" "$$" "${2:-}" >> "$RUN_DIR/sessions.jsonl"
}
log_session start "$([ -n "${RESUME:-}" ] && echo resumed || echo new)"
echo "run $RUN_ID, session $SESSION ($([ -n "${RESUME:-}" ] && echo resumed || echo new)), $(wc -w <<< "$VARIANTS") variants x seeds $SEEDS"

# Our configuration with every role on the server, per mode (the port is this
# session's); for chat, the program with `adapter: chat`; -c variants get
# `constrained: true` on top.
for mode in completion chat; do
python3 - "$PORT" "$SESSION_DIR/config-server-$mode.yaml" "$mode" <<'EOF'
import sys, yaml
port, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
c = yaml.safe_load(open("config/config.yaml"))
for name, role in c["lm"]["roles"].items():
    role.update({"provider": "openai", "model": "gemma-3-270m", "base_url": f"http://127.0.0.1:{port}/v1",
                 "mode": mode, "max_concurrency": 4})
yaml.safe_dump(c, open(out, "w"), sort_keys=False)
EOF
done
SPECS=$RUN_DIR/specs
mkdir -p "$SPECS"
# The bundled spec's own `constrained` line is dropped: a variant is
# unconstrained unless it ends in -c.
grep -v '^constrained:' "$BASE_SPEC" > "$SPECS/completion.yaml"
sed 's/^adapter: completion$/adapter: chat/' "$SPECS/completion.yaml" > "$SPECS/chat.yaml"
grep -q '^adapter: chat$' "$SPECS/chat.yaml"
for m in completion chat; do
  { cat "$SPECS/$m.yaml"; printf '\n# bench/quality_vs_dspy.sh: the -c variants\nconstrained: true\n'; } > "$SPECS/$m-c.yaml"
done
cp "$SPECS/completion.yaml" "$SPECS/local.yaml"; cp "$SPECS/completion-c.yaml" "$SPECS/local-c.yaml"

SERVER_PID=
CELL_PID=
start_server() {
  if [ -n "$SERVER_PID" ]; then return 0; fi
  # (9>&-: children do not hold the run's lock)
  "${SERVER_ARGV[@]}" --port "$PORT" >>"$SESSION_DIR/server.log" 2>&1 9>&- &
  SERVER_PID=$!
  echo "server $SERVER_PID --port $PORT" >> "$RUN_DIR/pids"
  for _ in $(seq 1 240); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.5
  done
  die "the server did not become healthy; see $SESSION_DIR/server.log"
}
stop_server() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  SERVER_PID=
}
ENDED=0
on_exit() {
  local rc=$?
  if [ -n "$CELL_PID" ]; then kill -TERM -- "-$CELL_PID" 2>/dev/null || true; fi
  stop_server
  if [ $ENDED = 0 ]; then log_session end "stopped (exit $rc)"; fi
}
trap on_exit EXIT
trap 'echo "quality_vs_dspy.sh: line $LINENO: a command failed (exit $?)" >&2' ERR
trap 'exit 143' TERM
trap 'exit 130' INT

fresh_db() { # db seed
  "$BIN" --db "$1" trainset import "$TRAINSET" --name skills >/dev/null
  "$BIN" --db "$1" trainset split skills --seed "$2" >/dev/null
}
# The split of a cell's database as trainset indexes; every cell of a seed must
# have the same one (the first cell of the seed records it).
split_of() { # db out seed
  "$BIN" --db "$1" --json sql \
    "SELECT e.idx AS idx, a.part AS part FROM split_assignments a JOIN examples e ON e.id = a.example_id WHERE a.split_id = (SELECT MAX(id) FROM splits) ORDER BY e.idx" \
    | python3 -c '
import json, os, sys
rows = json.load(sys.stdin)
rows = rows if isinstance(rows, list) else rows["rows"]
out = {"train": [], "val": [], "test": []}
for r in rows:
    out[r["part"]].append(r["idx"])
json.dump(out, open(sys.argv[1], "w"))
ref = sys.argv[2]
if not os.path.exists(ref):
    json.dump(out, open(ref + ".tmp", "w")); os.replace(ref + ".tmp", ref)
elif json.load(open(ref)) != out:
    sys.exit(f"split differs from the seed'"'"'s first cell ({ref})")' "$2" "$RUN_DIR/splits/s$3.json"
}

# ---- one cell ---------------------------------------------------------------------
run_cell() { # seed mode variant
  local seed=$1 mode=$2 variant=$3
  local cell="s$seed-$mode-$variant"
  local result=$RUN_DIR/cells/$cell.json
  if [ -f "$result" ]; then echo "== $cell: done earlier, skipped"; return 0; fi
  local work=$RUN_DIR/work/$cell
  rm -rf "$work"; mkdir -p "$work"
  local side=${variant%%-*} rest=${variant#*-} constrained=0 opt spec cfg cmd=()
  if [[ $rest == *-c ]]; then constrained=1; rest=${rest%-c}; fi
  spec=$SPECS/$mode.yaml
  if [ $constrained = 1 ]; then spec=$SPECS/$mode-c.yaml; fi
  cfg=$SESSION_DIR/config-server-$mode.yaml
  if [ "$mode" = local ]; then stop_server; else start_server; fi
  local started; started=$(now)
  echo "== $cell ($started)"
  fresh_db "$work/db.sqlite" "$seed"
  split_of "$work/db.sqlite" "$work/split.json" "$seed" || { echo "$cell: split mismatch" >&2; return 1; }
  local base=("$BIN" --db "$work/db.sqlite" --json)
  if [ "$mode" != local ]; then base+=(--config "$cfg"); fi
  case $side in
    ours)
      opt=$rest
      if [ "$opt" = zeroshot ]; then
        cmd=("${base[@]}" eval --program "$spec" --trainset skills --split test --threads "$THREADS")
      else
        cmd=("${base[@]}" optimize --program "$spec" --trainset skills --optimizer "$opt" --seed "$seed" --threads "$THREADS")
        # Each step takes the flags it has: --auto (miprov2, gepa), k and the
        # retriever (knn), labeled demos (bootstrap, miprov2, knn).
        if [[ "+$opt+" =~ \+(miprov2|gepa)\+ ]]; then cmd+=(--auto light); fi
        if [[ "+$opt+" =~ \+(bootstrap|miprov2|knn|labeled|random-search)\+ ]]; then cmd+=(--max-labeled-demos 4); fi
        if [[ "+$opt+" == *+knn+* ]]; then cmd+=(--retriever bm25); fi
      fi
      ;;
    dspy)
      [ $constrained = 0 ] || die "$cell: DSPy has no constrained variant"
      [ "$mode" != local ] || die "$cell: DSPy runs against the server only"
      local extra=()
      # Prefixes combine, in this order (dspy-jsonfb-longprop-miprov2).
      if [[ $rest == nostop-* ]]; then extra+=(--no-stop); rest=${rest#nostop-}; fi
      if [[ $rest == jsonfb-* ]]; then extra+=(--json-adapter-fallback); rest=${rest#jsonfb-}; fi
      if [[ $rest == longprop-* ]]; then extra+=(--prompt-max-tokens 1024); rest=${rest#longprop-}; fi
      opt=$rest
      cmd=("$PY" bench/dspy_quality.py --optimizer "$opt" --seed "$seed" --split "$work/split.json" --port "$PORT"
        --mode "$mode" --out "$work/raw.json" --cache-dir "$work/dspy_cache" --predictions-dir "$work/pred"
        --db "$work/db.sqlite" --bin "$BIN" --threads "$THREADS" --trainset "$TRAINSET" "${extra[@]}")
      mkdir -p "$work/pred"
      ;;
    *) die "unknown variant $variant (ours-... or dspy-...)" ;;
  esac
  printf '%q ' "${cmd[@]}" > "$work/command.txt"
  # The cell runs in a process group of its own, so a later session can stop
  # what a killed one left running.
  local out=$work/stdout.json
  if [ "$side" = dspy ]; then out=$work/stdout.log; fi
  setsid timeout "$CELL_TIMEOUT" "${cmd[@]}" > "$out" 2> "$work/stderr.log" 9>&- &
  CELL_PID=$!
  echo "cell $CELL_PID $work" >> "$RUN_DIR/pids"
  local rc=0
  wait "$CELL_PID" || rc=$?
  CELL_PID=
  local ended; ended=$(now)
  if [ $rc != 0 ]; then
    echo "$cell: exit $rc; see $work/stderr.log" >&2
    tail -5 "$work/stderr.log" >&2 || true
    python3 -c 'import json,sys; json.dump({"cell": sys.argv[1], "exit": int(sys.argv[2]), "started": sys.argv[3], "ended": sys.argv[4], "session": int(sys.argv[5]), "command": open(sys.argv[6]).read()}, open(sys.argv[7], "w"), indent=2)' \
      "$cell" "$rc" "$started" "$ended" "$SESSION" "$work/command.txt" "$RUN_DIR/failed/$cell.json"
    return 0
  fi
  python3 - "$work" "$result" "$cell" "$seed" "$mode" "$variant" "$side" "$opt" "$constrained" "$started" "$ended" "$SESSION" "$BIN" <<'EOF'
import hashlib, json, os, subprocess, sys
work, result, cell, seed, mode, variant, side, opt, constrained, started, ended, session, bin_ = sys.argv[1:]
db = os.path.join(work, "db.sqlite")
meta = {"cell": cell, "seed": int(seed), "mode": mode, "variant": variant, "side": side, "optimizer": opt,
        "constrained": constrained == "1", "started": started, "ended": ended, "session": int(session),
        "command": open(os.path.join(work, "command.txt")).read().strip(),
        "split_sha256": hashlib.sha256(open(os.path.join(work, "split.json"), "rb").read()).hexdigest()}
def sql(q):
    out = subprocess.run([bin_, "--db", db, "--json", "sql", q], capture_output=True, text=True, check=True).stdout
    rows = json.loads(out)
    return rows if isinstance(rows, list) else rows["rows"]
if side == "dspy":
    raw = json.load(open(os.path.join(work, "raw.json")))
    r = {k: raw[k] for k in ("baseline_test", "optimized_test", "lm_calls", "provider_calls", "prompt_tokens",
                             "completion_tokens", "wall_secs", "error", "n_train", "n_val", "n_test",
                             "baseline_test_fallbacks", "optimized_test_fallbacks", "demos")}
    r["dspy_version"] = raw.get("dspy_version")
else:
    raw = json.load(open(os.path.join(work, "stdout.json")))
    reports = raw if isinstance(raw, list) else [raw]
    ids = ",".join(str(int(x["run_id"])) for x in reports)
    t = sql(f"SELECT COUNT(*) AS calls, COALESCE(SUM(cache_hit), 0) AS hits, "
            f"COALESCE(SUM(CASE WHEN cache_hit = 0 THEN prompt_tokens END), 0) AS pt, "
            f"COALESCE(SUM(CASE WHEN cache_hit = 0 THEN completion_tokens END), 0) AS ct, "
            f"COALESCE(SUM(CASE WHEN request_json LIKE '%\"grammar\"%' THEN 1 ELSE 0 END), 0) AS gr FROM traces WHERE run_id IN ({ids})")[0]
    if opt == "zeroshot":
        rep = reports[0]
        r = {"baseline_test": rep["mean"], "optimized_test": rep["mean"], "wall_secs": rep["wall_secs"],
             "n_test": rep["n"], "errors": rep.get("errors"), "error": None}
    else:
        first, last = reports[0], reports[-1]
        r = {"baseline_test": first["baseline_test"], "optimized_test": last["optimized_test"],
             "baseline_val": first["baseline_val"], "best_val": last["best_val"],
             "wall_secs": sum(x["wall_secs"] for x in reports), "n_train": first["n_train"], "n_val": first["n_val"],
             "n_test": first["n_test"], "steps": [x["optimizer"] for x in reports],
             "status": [str(x["status"]) for x in reports],
             "error": None if all(str(x["status"]) == "completed" for x in reports) and len(reports) == len(opt.split("+"))
                      else f"chain stopped: {[str(x['status']) for x in reports]}"}
    r.update({"lm_calls": t["calls"], "provider_calls": t["calls"] - t["hits"], "prompt_tokens": t["pt"],
              "completion_tokens": t["ct"], "calls_with_grammar": t["gr"]})
    # A constrained cell whose server refused the grammar was not constrained.
    log = open(os.path.join(work, "stderr.log")).read().lower()
    if meta["constrained"] and (t["gr"] == 0 or ("grammar" in log and "refuse" in log)):
        r["error"] = (r.get("error") or "") + " grammar not applied (no call carried one, or the server refused it)"
    r["runs"] = reports
meta.update(r)
json.dump(meta, open(result + ".tmp", "w"), indent=2)
os.replace(result + ".tmp", result)
EOF
  rm -f "$RUN_DIR/failed/$cell.json"
  # The cell's result is kept; its database and cache are not needed again.
  rm -rf "$work/dspy_cache"
  python3 - "$result" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
o = "failed" if r["optimized_test"] is None else f"{r['optimized_test']:.3f}"
print(f"   done ({r['ended']}): test {r['baseline_test']:.3f} -> {o}, {r['lm_calls']} LM calls, {r['wall_secs']:.0f} s"
      + (f"; error: {r['error']}" if r.get("error") else ""))
EOF
}

# Seed-major: every cell of a seed before the next seed; local cells last in a
# seed (the server stops for them).
for seed in $SEEDS; do
  for w in $VARIANTS; do if [ "${w%%/*}" != local ]; then run_cell "$seed" "${w%%/*}" "${w#*/}"; fi; done
  for w in $VARIANTS; do if [ "${w%%/*}" = local ]; then run_cell "$seed" local "${w#*/}"; fi; done
done
stop_server
n_failed=$(find "$RUN_DIR/failed" -name '*.json' | wc -l)
log_session end "$([ "$n_failed" = 0 ] && echo "finished" || echo "finished, $n_failed cell(s) failed")"
ENDED=1
python3 bench/quality_summary.py "$RUN_DIR" | tee "$RUN_DIR/summary.md"
}
