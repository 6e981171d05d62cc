#!/usr/bin/env bash
# Benchmark: `skill-fleet traces export` of ROWS trace rows (default 1,000,000),
# JSONL and CSV, all rows and one run's. Reports wall time, rows/s, output size
# and peak RSS (GNU time's "Maximum resident set size"). The database is
# filled once through the store writer by `cargo run --example trace_fill`
# (bench/trace_fill.rs) and kept in bench/out/ (KEEP_DB=0 refills it).
#
# The page cache is left warm (the database was just written or read):
# the figures are export cost, not disk reads.
#
# Usage: bash bench/trace_export.sh            (ROWS=1000000 RUNS=100)
# Output: a Markdown table on stdout and bench/out/trace_export.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${ROWS:-1000000}"
RUNS="${RUNS:-100}"
OUT=bench/out/trace_export
DB="$OUT/traces-$ROWS.db"
mkdir -p "$OUT"
[ -x /usr/bin/time ] || { echo "GNU time is missing: apt-get install -y time" >&2; exit 1; }

TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --bin skill-fleet --example trace_fill
# A private copy: a shared target dir's binary may be rebuilt by another checkout meanwhile.
cp "$TARGET/debug/skill-fleet" "$OUT/skill-fleet"
cp "$TARGET/debug/examples/trace_fill" "$OUT/trace_fill"

if [ ! -s "$DB" ] || [ "${KEEP_DB:-1}" = 0 ]; then
  echo "filling $DB with $ROWS traces over $RUNS runs..." >&2
  "$OUT/trace_fill" --rows "$ROWS" --runs "$RUNS" --db "$DB" | tee "$OUT/fill.json" >&2
fi
DB_MB=$(( $(stat -c %s "$DB") / 1048576 ))

row() { # label, expected rows, export args...
  local label="$1" file="$OUT/export.$2" ; shift 2
  /usr/bin/time -v -o "$OUT/time.txt" "$OUT/skill-fleet" --db "$DB" traces export "$@" -o "$file" 2> "$OUT/stderr.txt"
  local n wall rss size
  n=$(grep -oE '^[0-9]+' "$OUT/stderr.txt" | head -1)
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$OUT/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/time.txt")
  size=$(( $(stat -c %s "$file") / 1048576 ))
  secs=$(python3 -c "import sys; p=sys.argv[1].split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))" "$wall")
  rate=$(python3 -c "import sys; print(f'{int(sys.argv[1])/float(sys.argv[2]):,.0f}')" "$n" "$secs")
  printf '| %s | %s | %.1f s | %s | %s MiB | %s MiB |\n' "$label" "$n" "$secs" "$rate" "$size" "$(( rss / 1024 ))"
  rm -f "$file"
}

{
  echo "Database: $ROWS traces over $RUNS runs, $DB_MB MiB ($DB)."
  echo
  echo "| export | rows | wall | rows/s | output | peak RSS |"
  echo "| --- | --- | --- | --- | --- | --- |"
  row "all, jsonl" jsonl --format jsonl
  row "all, csv" csv --format csv
  row "one run (--run 50), jsonl" jsonl --run 50 --format jsonl
  row "--since 2000-01-01, csv" csv --since 2000-01-01 --format csv
} | tee "$OUT/../trace_export.md"
