#!/usr/bin/env bash
# Benchmark (not a test): `skill-fleet serve` under fixed-rate load from a
# second process on loopback, with oha (crates.io; installed here when
# missing). Two routes, one after the other:
#   POST /api/v1/predict                    on a cached path (the real local
#        model answers once to fill the LM cache; every later call is a hit)
#   GET  /api/v1/optimization/status/{id}   of a finished job (a tiny
#        `labeled` run on 4 bundled examples)
# Prints requests/s, success rate and p50/p99 latency per route, and writes
# them to bench/out/serve_load/results.md. The server is the dev build (the
# build the CLI and tests run; skill-fleet at opt-level 2).
#
# Each route is loaded REPEATS times (alternating routes); the table gives
# the mean of each figure over the repeats (never the best), and each
# repeat's figures are listed below it.
#
# Usage: bash bench/serve_load.sh     (RATE=2000 DURATION=20s REPEATS=3, env)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${RATE:-2000}"
DURATION="${DURATION:-20s}"
REPEATS="${REPEATS:-3}"
OHA_VERSION=1.16.0
OUT=bench/out/serve_load
TARGET="${CARGO_TARGET_DIR:-target}"
MODEL="${SKILL_FLEET_MODEL:-$PWD/models/gemma-3-270m-q4_k_m.gguf}"
[ -f "$MODEL" ] || { echo "model missing: bash scripts/setup.sh" >&2; exit 1; }
OHA="$(command -v oha || true)"
if [ -z "$OHA" ]; then
  cargo install --quiet --locked oha --version "$OHA_VERSION" >&2
  OHA="$HOME/.cargo/bin/oha"
fi

cargo build --quiet --bin skill-fleet
rm -rf "$OUT"
mkdir -p "$OUT/data"
# A private copy: a shared target dir's binary may be rebuilt meanwhile.
cp "$TARGET/debug/skill-fleet" "$OUT/skill-fleet"
sed "s#models/gemma-3-270m-q4_k_m.gguf#$MODEL#" config/config.yaml > "$OUT/config.yaml"
SF=("$OUT/skill-fleet" --db "$OUT/bench.db" --config "$OUT/config.yaml")
"${SF[@]}" trainset import config/training/trainset.json --name skills > /dev/null
"${SF[@]}" program register config/programs/skill_understanding.yaml > /dev/null
python3 - "$OUT/data/tiny.json" <<'PYEOF'
import json, sys
rows = json.load(open("config/training/trainset.json"))
json.dump(rows[:: max(1, len(rows) // 4)][:4], open(sys.argv[1], "w"))
PYEOF

"${SF[@]}" serve --port 0 --data-dir "$OUT/data" > "$OUT/server.out" 2> "$OUT/server.err" &
SERVER=$!
trap 'kill "$SERVER" 2> /dev/null || true; wait "$SERVER" 2> /dev/null || true' EXIT
for _ in $(seq 100); do grep -q '^listening on' "$OUT/server.out" && break; sleep 0.1; done
BASE="$(sed -n 's#^listening on ##p' "$OUT/server.out" | head -1 | sed 's#0\.0\.0\.0#127.0.0.1#')"
[ -n "$BASE" ] || { cat "$OUT/server.err" >&2; exit 1; }
echo "server at $BASE (pid $SERVER)" >&2

PREDICT='{"program":"skill_understanding","input":{"task_description":"Create a tokio cancellation skill: cancel tasks safely"}}'
post() { curl -sS --fail-with-body -H 'content-type: application/json' -d "$2" "$BASE$1"; }
echo "warming the cache (one real-model prediction)..." >&2
post /api/v1/predict "$PREDICT" > "$OUT/predict-cold.json"
post /api/v1/predict "$PREDICT" > "$OUT/predict-warm.json"
python3 - "$OUT/predict-warm.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["lm_calls"] == r["cache_hits"] and r["cache_hits"] > 0, f"not a cache hit: {r}"
PYEOF

echo "running a tiny labeled job for a status id..." >&2
JOB="$(post /api/v1/optimization/start '{"program":"skill_understanding","optimizer":"labeled","trainset_file":"tiny.json","seed":3,"max_labeled_demos":1}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')"
for _ in $(seq 1800); do
  STATUS="$(curl -sS "$BASE/api/v1/optimization/status/$JOB" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')"
  case "$STATUS" in pending|running) sleep 0.5 ;; *) break ;; esac
done
echo "job $JOB: $STATUS" >&2

load() { # name, oha args...
  local name=$1; shift
  echo "oha $name: $RATE req/s for $DURATION..." >&2
  "$OHA" -z "$DURATION" -q "$RATE" --latency-correction --no-tui --output-format json "$@" > "$OUT/$name.json"
}
for i in $(seq "$REPEATS"); do
  load "predict-$i" -m POST -H 'content-type: application/json' -d "$PREDICT" "$BASE/api/v1/predict"
  load "status-$i" "$BASE/api/v1/optimization/status/$JOB"
done

python3 - "$OUT" "$RATE" "$DURATION" "$REPEATS" <<'PYEOF' | tee "$OUT/results.md"
import json, sys
out, rate, duration, repeats = sys.argv[1:]
repeats = int(repeats)
routes = [("predict", "POST /api/v1/predict (cache hit)"),
          ("status", "GET /api/v1/optimization/status/{id}")]
ms = lambda v: f"{v * 1000:.2f} ms"
def runs(name):
    for i in range(1, repeats + 1):
        r = json.load(open(f"{out}/{name}-{i}.json"))
        yield r["summary"], r["latencyPercentiles"], r.get("statusCodeDistribution", {})
print(f"Mean of {repeats} repeats per route.\n")
print("| route | offered | achieved req/s | success | p50 | p99 | p99 < 5 ms at 2,000 req/s? |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for name, route in routes:
    rs = list(runs(name))
    mean = lambda f: sum(f(s, p) for s, p, _ in rs) / len(rs)
    rps, ok = mean(lambda s, p: s["requestsPerSec"]), mean(lambda s, p: s["successRate"])
    p50, p99 = mean(lambda s, p: p["p50"]), mean(lambda s, p: p["p99"])
    codes = {}
    for _, _, c in rs:
        for k, v in c.items():
            codes[k] = codes.get(k, 0) + v
    if int(rate) < 2000:
        met = "not tested (rate below 2,000)"
    else:
        met = "yes" if p99 * 1000 < 5 and rps >= 0.98 * 2000 else "no"
    print(f"| {route} | {rate}/s for {duration} | {rps:,.0f} | {ok * 100:.2f}% {codes} | {ms(p50)} | {ms(p99)} | {met} |")
print("\nEach repeat (req/s, p50, p99):\n")
for name, route in routes:
    each = [f"{s['requestsPerSec']:,.0f}, {ms(p['p50'])}, {ms(p['p99'])}" for s, p, _ in runs(name)]
    print(f"- {route}: " + "; ".join(each))
PYEOF
