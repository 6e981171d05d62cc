"""Summarizes one run of bench/quality_vs_dspy.sh (bench/out/quality/RUN_ID/):
per mode and variant, the mean ± sample standard deviation over seeds (and a 95%
t interval of the mean when there are 2+ seeds) of the zero-shot test score
(baseline), the optimized test score, the improvement, LM calls, tokens and wall
time; then every cell, the cells missing or failed, and the sessions the run
took (when it was resumed, which cells ran in which session).

Only complete cells (cells/*.json) are used. With --doc FILE the Markdown also
replaces the text between <!-- bench:quality_vs_dspy --> markers in FILE.

Usage: python3 bench/quality_summary.py bench/out/quality/RUN_ID [--doc docs/benchmarks.md]
"""

import glob
import json
import math
import os
import re
import statistics
import sys

MODES = {
    "completion": "text-completion mode",
    "chat": "chat mode (ours `adapter: chat`, DSPy's ChatAdapter)",
    "local": "in-process (`local` provider)",
}

# Two-sided 95% Student t quantiles by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def label(variant):
    side, _, rest = variant.partition("-")
    c = rest.endswith("-c")
    rest = rest[:-2] if c else rest
    jsonfb = rest.startswith("jsonfb-")
    rest = rest[len("jsonfb-"):] if jsonfb else rest
    longprop = rest.startswith("longprop-")
    rest = rest[len("longprop-"):] if longprop else rest
    names = {"zeroshot": "zero-shot", "bootstrap": "BootstrapFewShot", "miprov2": "MIPROv2 light", "gepa": "GEPA light",
             "knn": "KNN (BM25, k=4)", "knn-labeled": "KNN, labeled demos only (BM25, k=4)",
             "nostop-bootstrap": "BootstrapFewShot, no stop sequence"}
    if side == "dspy" and rest in ("knn", "knn-labeled"):
        names = dict(names, knn="KNNFewShot (BM25 vectorizer, k=4)", **{"knn-labeled": "KNNFewShot, labeled only (BM25, k=4)"})
    opt = " → ".join(names.get(s, s) for s in rest.split("+")) if "+" in rest else names.get(rest, rest)
    who = "skill-fleet" if side == "ours" else "DSPy" if side == "dspy" else side
    return f"{who}: {opt}" + (", constrained" if c else "") + (", JSONAdapter fallback on" if jsonfb else "") + (
        ", proposer 1024 tokens" if longprop else "")


def stats(xs, fmt, sd_fmt=None, interval=True):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return fmt(xs[0])
    m, sd = statistics.mean(xs), statistics.stdev(xs)
    s = f"{fmt(m)} ± {(sd_fmt or fmt)(sd)}"
    if interval:
        h = T95.get(len(xs) - 1, 1.96) * sd / math.sqrt(len(xs))
        s += f" [{fmt(m - h)}, {fmt(m + h)}]"
    return s


def main():
    args = sys.argv[1:]
    doc = None
    if "--doc" in args:
        i = args.index("--doc")
        doc = args[i + 1]
        del args[i : i + 2]
    run = args[0]
    cfg = json.load(open(os.path.join(run, "config.json")))
    settings = cfg["settings"]
    cells = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(run, "cells", "*.json")))]
    failed = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(run, "failed", "*.json")))]
    sessions = []
    if os.path.exists(os.path.join(run, "sessions.jsonl")):
        sessions = [json.loads(l) for l in open(os.path.join(run, "sessions.jsonl")) if l.strip()]
    seeds = settings["SEEDS"].split()
    wanted = [(s, w.split("/", 1)[0], w.split("/", 1)[1]) for s in seeds for w in settings["VARIANTS"].split()]
    have = {(str(c["seed"]), c["mode"], c["variant"]) for c in cells}
    missing = [f"s{s}-{m}-{v}" for s, m, v in wanted if (s, m, v) not in have]

    f3 = lambda x: f"{x:.3f}"
    f0 = lambda x: f"{x:,.0f}"
    out = []
    if settings.get("STANDIN_SERVER") == "1":
        out.append("**STAND-IN SERVER (bench/standin_server.py): a smoke test of the harness; the scores mean nothing.**\n")
    if settings.get("TRAIN_LIMIT"):
        out.append(f"**TRAIN_LIMIT={settings['TRAIN_LIMIT']}: a cut trainset (smoke test).**\n")
    if missing:
        out.append(f"**Incomplete run: {len(missing)} of {len(wanted)} cells missing** ({', '.join(missing)}).\n")
    starts = [s for s in sessions if s["event"] == "start"]
    ends = [c["ended"] for c in cells]
    out.append(
        f"Run `{cfg['run_id']}`: `{cfg['command']}` at commit `{cfg['git_head'][:12]}` (binary sources "
        f"`{cfg['identity']['binary_source_commit'][:12]}`), started {cfg['started']}"
        + (f", last cell ended {max(ends)}" if ends else "")
        + f"; seeds {', '.join(seeds)}, {settings['THREADS']} threads per side; "
        + (f"resumed {len(starts) - 1} time(s) ({len(starts)} sessions)." if len(starts) > 1 else "one session.")
    )
    out.append("")
    cols = ("| variant | seeds | test zero-shot (baseline) | test optimized | Δ test | LM calls (provider) | "
            "prompt + completion tokens (provider) | wall time, s |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    modes = [m for m in MODES if any(c["mode"] == m for c in cells)]
    order = {w: i for i, w in enumerate(settings["VARIANTS"].split())}
    for mode in modes:
        out.append(f"**{MODES[mode]}** (mean ± sd over seeds [95% t interval of the mean])\n")
        out.append(cols)
        variants = sorted({c["variant"] for c in cells if c["mode"] == mode}, key=lambda v: order.get(f"{mode}/{v}", 999))
        for v in variants:
            rs = sorted((c for c in cells if c["mode"] == mode and c["variant"] == v), key=lambda c: c["seed"])
            ok = [r for r in rs if r.get("optimized_test") is not None]
            out.append(
                f"| {label(v)} | {', '.join(str(r['seed']) for r in rs)} | {stats([r['baseline_test'] for r in rs], f3)} | "
                f"{stats([r['optimized_test'] for r in ok], f3)} | "
                f"{stats([r['optimized_test'] - r['baseline_test'] for r in ok], lambda x: f'{x:+.3f}', f3)} | "
                f"{stats([r['lm_calls'] for r in rs], f0, interval=False)} ({stats([r['provider_calls'] for r in rs], f0, interval=False)}) | "
                f"{stats([r['prompt_tokens'] + r['completion_tokens'] for r in rs], f0, interval=False)} | "
                f"{stats([r['wall_secs'] for r in rs], f0, interval=False)} |"
            )
        out.append("")
    out.append("Every cell:\n")
    out.append("| cell | session | started (UTC) | ended (UTC) | test baseline | test optimized | LM calls (provider) | "
               "tokens (provider) | wall s | note |\n| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for c in sorted(cells, key=lambda c: (c["seed"], order.get(f"{c['mode']}/{c['variant']}", 999))):
        o = "failed" if c.get("optimized_test") is None else f"{c['optimized_test']:.3f}"
        # One line, in a code span: an error can hold newlines, pipes and chat-template tags.
        err = " ".join((c.get("error") or "").split())[:140].replace("`", "'").replace("|", "\\|")
        note = f"`{err}`" if err else ""
        if c.get("constrained") and "calls_with_grammar" in c:
            note = (note + f" grammar on {c['calls_with_grammar']} of {c['lm_calls']} calls").strip()
        out.append(f"| {c['cell']} | {c['session']} | {c['started']} | {c['ended']} | {c['baseline_test']:.3f} | {o} | "
                   f"{c['lm_calls']:,} ({c['provider_calls']:,}) | {c['prompt_tokens']:,} + {c['completion_tokens']:,} | "
                   f"{c['wall_secs']:,.0f} | {note} |")
    if failed:
        out.append("\nCells whose command failed (rerun on resume): " + ", ".join(
            f"{f['cell']} (exit {f['exit']}, session {f['session']})" for f in failed))
    if sessions:
        out.append("\nSessions:\n")
        for s in starts:
            end = next((e for e in sessions if e["event"] == "end" and e["session"] == s["session"]), None)
            ran = [c["cell"] for c in cells if c["session"] == s["session"]]
            out.append(f"- session {s['session']} ({s['status']}): {s['time']} – "
                       + (f"{end['time']}, {end['status']}" if end else "no end recorded (killed)")
                       + f"; {len(ran)} cell(s) finished" + (f": {', '.join(ran)}" if ran else ""))
    idn = cfg["identity"]
    versions = str(idn["dspy_sklearn_versions"]).split()
    versions = f"DSPy {versions[0]}, scikit-learn {versions[1]}" if len(versions) == 2 else f"DSPy and scikit-learn {versions}"
    out.append(f"\nServer: `{idn['server_command']}` (the port is picked per session); {versions}. Each cell: a fresh database (ours) or a fresh database and disk cache "
               f"(DSPy), split with the seed (checked equal across the seed's cells).")
    md = "\n".join(out)
    print(md)
    if doc and os.path.exists(doc):
        text = open(doc).read()
        pat = re.compile(r"(<!-- bench:quality_vs_dspy -->\n).*?(\n<!-- /bench:quality_vs_dspy -->)", re.S)
        if pat.search(text):
            open(doc, "w").write(pat.sub(lambda m: m.group(1) + md + m.group(2), text))


if __name__ == "__main__":
    main()
