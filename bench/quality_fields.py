"""Where the test score of each of our cells in a quality run comes from
(bench/out/quality/RUN_ID/, made by bench/quality_vs_dspy.sh): per mode and
variant, averaged over seeds, the test split's

  - answers that fell back (no parseable answer: the spec's fallback stood),
  - answers written by the model (not the fallback) whose category (the
    taxonomy path's first segment) is one of the taxonomy's categories,
  - answers whose path is exactly the gold one,
  - style exactly right,
  - the metric's three parts (taxonomy_accuracy 0.4, metadata_quality 0.3,
    skill_style_alignment 0.3), read from the feedback it stored per example,

for the program the cell tested: the optimized one (the last test evaluation of
the cell's database: a chain's last step); a zero-shot cell's is the bundled
program.
DSPy's cells are left out (their predictions are scored outside their
database; their fallback counts are in the cells' JSON).

Usage: python3 bench/quality_fields.py bench/out/quality/RUN_ID
"""

import glob
import json
import os
import re
import sqlite3
import statistics
import sys

sys.path.insert(0, os.path.dirname(__file__))
from quality_summary import MODES, label  # noqa: E402

PART = re.compile(r"^(taxonomy_accuracy|metadata_quality|skill_style_alignment) \(([0-9.]+)\)", re.M)


def categories():
    import yaml

    tax = yaml.safe_load(open("config/taxonomy.yaml"))
    return {c["name"] if isinstance(c, dict) else c for c in tax["categories"]}


def test_eval(db):
    row = db.execute("SELECT id FROM evaluations WHERE split = 'test' ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return None
    rows = db.execute(
        "SELECT s.score, s.feedback, s.prediction_json, x.fields_json FROM scores s "
        "JOIN examples x ON x.id = s.example_id WHERE s.evaluation_id = ?",
        (row[0],),
    ).fetchall()
    return rows


def fields(rows, cats):
    n = len(rows)
    fell = valid = exact = style = 0
    parts = {"taxonomy_accuracy": [], "metadata_quality": [], "skill_style_alignment": []}
    for score, feedback, pred, gold in rows:
        p = json.loads(pred or "{}")
        out = p.get("outputs", {})
        g = json.loads(gold or "{}")
        fb = any(t.get("used_fallback") for t in p.get("traces", []))
        fell += fb
        path = str(out.get("taxonomy_path", ""))
        valid += not fb and path.split("/")[0] in cats  # the fallback's own category does not count
        exact += path == g.get("expected_taxonomy_path")
        style += out.get("skill_style") == g.get("expected_skill_style")
        for k, v in PART.findall(feedback or ""):
            parts[k].append(float(v))
    mean = lambda xs: statistics.mean(xs) if xs else float("nan")
    return {"n": n, "fallback": fell, "valid_category": valid, "exact_path": exact, "style": style,
            **{k: mean(v) for k, v in parts.items()}}


def main():
    run = sys.argv[1]
    cats = categories()
    cells = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(run, "cells", "*.json")))]
    by = {}
    for c in cells:
        if c.get("side") != "ours":
            continue
        path = os.path.join(run, "work", c["cell"], "db.sqlite")
        if not os.path.exists(path):
            continue
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        rows = test_eval(db)
        if rows:
            by.setdefault((c["mode"], c["variant"]), []).append(fields(rows, cats))
    print("Per test answer, mean over seeds (n = 27 a seed): answers that fell back, model answers with a category of the "
          "taxonomy, with the exact gold path, with the gold style; and the metric's parts.\n")
    print("| mode | variant | seeds | fell back | valid category | exact path | right style | "
          "taxonomy (0.4) | metadata (0.3) | style (0.3) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    order = {w: i for i, w in enumerate(json.load(open(os.path.join(run, "config.json")))["settings"]["VARIANTS"].split())}
    for (mode, variant), rs in sorted(by.items(), key=lambda kv: (list(MODES).index(kv[0][0]), order.get("/".join(kv[0]), 999))):
        m = lambda k: statistics.mean(r[k] for r in rs)
        print(f"| {mode} | {label(variant)} | {len(rs)} | {m('fallback'):.1f} | {m('valid_category'):.1f} | "
              f"{m('exact_path'):.1f} | {m('style'):.1f} | {m('taxonomy_accuracy'):.3f} | {m('metadata_quality'):.3f} | "
              f"{m('skill_style_alignment'):.3f} |")


if __name__ == "__main__":
    main()
