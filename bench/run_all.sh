#!/usr/bin/env bash
# Runs every benchmark of docs/benchmarks.md and regenerates its tables.
#
#   bash bench/run_all.sh                 # A (tracker), B (overhead), C (local model), D (quality vs DSPy)
#   BENCH_ONLY="B C" bash bench/run_all.sh
#
# Idempotent: installs its own peers (bench/.venv with MLflow, Optuna, DSPy;
# llama-server built into bench/out/llama-server), all git-ignored. Results go
# to bench/out/*.json; bench/report.py writes them into docs/benchmarks.md.
# Every step is bounded by `timeout`. On a fresh 2-core machine of the kind in
# docs/benchmarks.md the whole default run takes under 60 minutes, installs
# included (the figure is in docs/benchmarks.md, "Reproducing").
#
# Part D by default runs one seed of BootstrapFewShot on both sides, in both
# modes (a new run of bench/quality_vs_dspy.sh in bench/out/quality/RUN_ID);
# the full table of part D (3 seeds, every variant, about 5.5 hours of cells) is
# bench/quality_vs_dspy.sh on its own, resumable:
#   D_SEEDS="1 2 3" D_VARIANTS="" bash bench/run_all.sh   # (empty D_VARIANTS: the script's default list)
#   D_RESUME=RUN_ID BENCH_ONLY=D bash bench/run_all.sh      # continue an interrupted part D run
#
# Knobs (environment): BENCH_ONLY, MLFLOW_RUNS (default 50 of 1,000), MLFLOW_BATCHED_RUNS (200),
# OPTUNA_RUNS (default 5 of 1,000), LM_TRIALS (3), DSPY_CALLS (20000),
# OUR_CALLS (100000), QUIET_WAIT (90 s before each step), LM_QUIET_WAIT (60 s before
# each LM trial), D_SEEDS ("1"), D_VARIANTS ("ours-bootstrap dspy-bootstrap"), D_MODES
# ("completion chat"), D_RESUME (a part D run to continue).
set -euo pipefail
# Parsed whole before it runs (the braces), so editing this file mid-run is safe.
{
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=bench/out
mkdir -p "$OUT"
ONLY=${BENCH_ONLY:-"A B C D"}
want() { [[ " $ONLY " == *" $1 "* ]]; }
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }
START=$(date +%s)
# Runs a step after waiting (at most QUIET_WAIT seconds, default 90) for the
# machine to be 85% idle, and records the CPU share other processes took
# meanwhile (bench/out/load/NAME.json): this machine may be shared.
measure() {
  local name=$1
  shift
  python3 bench/measure.py "$name" --wait-quiet "${QUIET_WAIT:-90}" -- "$@"
}

# Optimized build of our crate on top of the dev profile: reuses the dev build
# of llama.cpp (opt-level 3 already) instead of a second, release build of it.
CARGO_OPT=(
  --config 'profile.dev.package.skill-fleet.opt-level=3'
  --config 'profile.dev.package.skill-fleet.debug-assertions=false'
  --config 'profile.dev.package.skill-fleet.overflow-checks=false'
  --config 'profile.dev.package.skill-fleet.codegen-units=16'
)

step "machine"
python3 - "$OUT/machine.json" <<'EOF'
import json, os, platform, subprocess, sys, datetime
info = {}
for l in open("/proc/cpuinfo"):
    if ":" in l:
        k, v = (x.strip() for x in l.split(":", 1))
        info.setdefault(k, v)
cpu = info.get("model name", "?")
simd = [f for f in ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "amx_tile", "sha_ni") if f in info.get("flags", "").split()]
cpu_detail = f"family {info.get('cpu family', '?')}, model {info.get('model', '?')}, stepping {info.get('stepping', '?')}; {info.get('cpu MHz', '?')} MHz; SIMD: {' '.join(simd)}" + ("; virtual machine" if "hypervisor" in info.get("flags", "") else "")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
osname = next((l.split("=", 1)[1].strip().strip('"') for l in open("/etc/os-release") if l.startswith("PRETTY_NAME")), platform.system())
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
m = {
    "cpu_model": cpu,
    "cpu_detail": cpu_detail,
    "nproc": int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()),
    "ram_gib": mem / 1024 / 1024,
    "os": f"{osname}, Linux {platform.release()}",
    "rustc": rustc,
    "python": sys.version.split()[0],
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
    "loadavg_at_start": open("/proc/loadavg").read().strip(),
}
json.dump(m, open(sys.argv[1], "w"), indent=2)
print(m)
EOF

step "peers: bench/.venv"
VENV=bench/.venv
PY=$VENV/bin/python
if [ ! -x "$PY" ]; then
  nice -n 10 python3 -m venv "$VENV"
fi
if ! "$PY" -c "import mlflow, optuna, dspy, httpx, yaml" 2>/dev/null; then
  nice -n 10 "$PY" -m pip install --quiet --upgrade pip
  nice -n 10 "$PY" -m pip install --quiet "mlflow==3.17.2" "optuna==5.0.0" "dspy==3.4.1" httpx pyyaml
fi
"$PY" -c "import mlflow, optuna, dspy; print('mlflow', mlflow.__version__, 'optuna', optuna.__version__, 'dspy', dspy.__version__)"

# Build tools (cmake, clang) and the model, when missing: the llama-server and
# Rust builds below need them.
bash scripts/setup.sh
if want C; then
  step "peers: llama-server"
  timeout 3600 bash bench/build_llama_server.sh
fi

step "build the Rust benchmarks (dev profile, our crate optimized)"
# The exact executables of this build (target/debug/examples/NAME is shared with
# plain dev builds, e.g. `cargo test --all-targets`), copied out of target/.
nice -n 10 cargo build --quiet --message-format=json-render-diagnostics \
  --bin skill-fleet --example tracker --example overhead --example lm_local "${CARGO_OPT[@]}" >"$OUT/cargo-artifacts.jsonl"
EX=$OUT/bin
mkdir -p "$EX"
python3 - "$OUT/cargo-artifacts.jsonl" "$EX" <<'EOF'
import json, shutil, sys
found = set()
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and {"example", "bin"} & set(m["target"]["kind"]):
        shutil.copy2(m["executable"], f"{sys.argv[2]}/{m['target']['name']}")
        found.add(m["target"]["name"])
assert found == {"skill-fleet", "tracker", "overhead", "lm_local"}, found
EOF

if want A; then
  step "A: tracker, skill-fleet and raw SQLite (1,000 x 100 x 10 + 1M traces)"
  measure tracker timeout 1200 "$EX/tracker" --out "$OUT/tracker.json" --dir "$OUT/db"
  step "A: MLflow (${MLFLOW_RUNS:-50} of 1,000 runs)"
  measure mlflow timeout 1200 "$PY" bench/peers_tracker.py mlflow --runs "${MLFLOW_RUNS:-50}" --out "$OUT/mlflow.json" >/dev/null
  step "A: MLflow, batched layout (${MLFLOW_BATCHED_RUNS:-200} of 1,000 runs)"
  measure mlflow_batched timeout 1200 "$PY" bench/peers_tracker.py mlflow --layout batched --runs "${MLFLOW_BATCHED_RUNS:-200}" --out "$OUT/mlflow_batched.json" >/dev/null
  step "A: Optuna (${OPTUNA_RUNS:-5} of 1,000 studies)"
  measure optuna timeout 1200 "$PY" bench/peers_tracker.py optuna --runs "${OPTUNA_RUNS:-5}" --out "$OUT/optuna.json" >/dev/null
  # The peers again with our durability (WAL, synchronous=NORMAL through an
  # SQLAlchemy connect hook), and Optuna also with a sampler that does no work.
  step "A: MLflow, MLflow batched and Optuna with matched durability"
  measure mlflow_matched timeout 1200 "$PY" bench/peers_tracker.py mlflow --durability matched --runs "${MLFLOW_RUNS:-50}" --out "$OUT/mlflow_matched.json" >/dev/null
  measure mlflow_batched_matched timeout 1200 "$PY" bench/peers_tracker.py mlflow --layout batched --durability matched --runs "${MLFLOW_BATCHED_RUNS:-200}" --out "$OUT/mlflow_batched_matched.json" >/dev/null
  measure optuna_matched_tpe timeout 1200 "$PY" bench/peers_tracker.py optuna --durability matched --runs "${OPTUNA_RUNS:-5}" --out "$OUT/optuna_matched_tpe.json" >/dev/null
  measure optuna_matched timeout 1200 "$PY" bench/peers_tracker.py optuna --durability matched --sampler fixed --runs "${OPTUNA_RUNS:-5}" --out "$OUT/optuna_matched.json" >/dev/null
  rm -rf "$OUT"/db/tracker-*.db* "$OUT"/db/mlflow*.db* "$OUT"/db/mlflow*-artifacts "$OUT"/db/optuna.db*
fi

if want B; then
  step "B: overhead, skill-fleet"
  measure overhead timeout 900 "$EX/overhead" --calls "${OUR_CALLS:-100000}" --out "$OUT/overhead.json" 2>/dev/null
  step "B: overhead, DSPy"
  measure dspy timeout 900 "$PY" bench/dspy_overhead.py --calls "${DSPY_CALLS:-20000}" --out "$OUT/dspy.json" >/dev/null
fi

if want C; then
  step "C: local model, skill-fleet vs llama-server (alternating trials)"
  QUIET_WAIT=0 measure lm timeout 2700 "$PY" bench/lm_compare.py --trials "${LM_TRIALS:-3}" --max-wait "${LM_QUIET_WAIT:-60}" --out-dir "$OUT"
fi

if want D; then
  # Optimization quality vs DSPy on one llama-server (bench/quality_vs_dspy.sh):
  # a resumable run of cells, each bounded by its CELL_TIMEOUT (2 h).
  step "D: optimization quality, skill-fleet vs DSPy"
  # Part D runs the same optimized binary (no second compile of our crate).
  SKILL_FLEET_BIN="$EX/skill-fleet" SEEDS="${D_SEEDS:-1}" VARIANTS="${D_VARIANTS-ours-bootstrap dspy-bootstrap}" \
    MODES="${D_MODES:-completion chat}" RESUME="${D_RESUME:-}" bash bench/quality_vs_dspy.sh
fi

step "report"
"$PY" bench/report.py
echo "bench/run_all.sh: done in $(( ($(date +%s) - START) / 60 )) min"
exit 0
}
