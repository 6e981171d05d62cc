"""How long each of our optimize cells of a quality run spent optimizing and
how long testing (bench/out/quality/RUN_ID/, made by bench/quality_vs_dspy.sh),
read from the cell's database: per run (a chain has one per step), the time
from the run's start to the end of its last train/val evaluation (the
optimization: baseline, candidates, the choice) and the time its test
evaluations took (the baseline's and the chosen program's test scores, which
`optimize` reports). Per mode and variant: mean over seeds, and each seed.

Usage: python3 bench/optimize_phases.py bench/out/quality/RUN_ID
"""

import glob
import os
import re
import sqlite3
import statistics
import sys
from datetime import datetime


def t(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def phases(db):
    """(optimization s, test s, run s) summed over the runs of a cell's database."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    opt = test = total = 0.0
    for run, started, finished in con.execute(
            "SELECT id, started_at, finished_at FROM runs WHERE finished_at IS NOT NULL ORDER BY id"):
        evals = con.execute(
            "SELECT split, created_at, finished_at FROM evaluations WHERE run_id = ? AND finished_at IS NOT NULL",
            (run,)).fetchall()
        last_fit = max((t(f) for s, _, f in evals if s != "test"), default=t(started))
        opt += last_fit - t(started)
        test += sum(t(f) - t(c) for s, c, f in evals if s == "test")
        total += t(finished) - t(started)
    return opt, test, total


def main():
    run_dir = sys.argv[1]
    rows = {}
    for db in sorted(glob.glob(os.path.join(run_dir, "work", "*", "db.sqlite"))):
        cell = os.path.basename(os.path.dirname(db))
        m = re.match(r"s(\d+)-([a-z]+)-(ours-.+)$", cell)
        if not m or "zeroshot" in cell or not os.path.exists(os.path.join(run_dir, "cells", cell + ".json")):
            continue
        rows.setdefault((m.group(2), m.group(3)), []).append((int(m.group(1)), phases(db)))
    print("| mode | variant | seeds | optimization, s | test evaluations, s | optimize command, s | per seed (optimization / total) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for (mode, variant), cells in sorted(rows.items()):
        mean = lambda i: statistics.mean(c[1][i] for c in cells)
        per = ", ".join(f"s{s}: {p[0]:.0f} / {p[2]:.0f}" for s, p in sorted(cells))
        print(f"| {mode} | {variant} | {len(cells)} | {mean(0):.0f} | {mean(1):.0f} | {mean(2):.0f} | {per} |")


if __name__ == "__main__":
    main()
