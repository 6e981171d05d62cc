"""Summarizes bench/quality_vs_dspy.sh: mean and spread over seeds per side and
optimizer, as a Markdown table printed and written into docs/benchmarks.md
between <!-- bench:quality_vs_dspy --> markers (when they exist).

Usage: python3 bench/quality_summary.py bench/out/cmp [docs/benchmarks.md]
"""

import glob
import json
import os
import re
import statistics
import sys

SIDES = [
    ("ours-server", "skill-fleet via llama-server, text-completion mode"),
    ("dspy", "DSPy via llama-server, text-completion mode"),
    ("ours-server-chat", "skill-fleet via llama-server, chat mode (`adapter: chat`)"),
    ("dspy-chat", "DSPy via llama-server, chat mode (ChatAdapter)"),
    # Earlier runs without a stop sequence (dspy_quality.py --no-stop), kept as
    # dspy-nostop-OPT.json.
    ("dspy-nostop", "DSPy via llama-server, no stop sequence"),
    ("ours-local", "skill-fleet in-process (`local`)"),
]


def spread(xs, fmt, sd_fmt=None):
    """Mean ± sample standard deviation over seeds (the value alone for one seed)."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return fmt(xs[0])
    return f"{fmt(statistics.mean(xs))} ± {(sd_fmt or fmt)(statistics.stdev(xs))}"


def main():
    out = sys.argv[1]
    doc = sys.argv[2] if len(sys.argv) > 2 else "docs/benchmarks.md"
    runs = {}
    for path in sorted(glob.glob(os.path.join(out, "s*", "*.json"))):
        if not re.fullmatch(r"s\d+", os.path.basename(os.path.dirname(path))):
            continue  # e.g. s1.20261127-074800, a seed directory moved aside
        name = os.path.basename(path)[:-5]
        side, _, opt = name.rpartition("-")
        if side not in dict(SIDES):
            continue
        r = json.load(open(path))
        runs.setdefault((side, opt), []).append(r)
    f3 = lambda x: f"{x:.3f}"
    f0 = lambda x: f"{x:,.0f}"
    lines = [
        "| optimizer | side | seeds | test baseline | test optimized | Δ test | LM calls (provider calls) | prompt + completion tokens (provider) | wall time, s |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    per_seed = []
    for opt in ("bootstrap", "miprov2", "gepa"):
        for side, label in SIDES:
            rs = sorted(runs.get((side, opt), []), key=lambda r: r["seed"])
            if not rs:
                continue
            ok = [r for r in rs if r.get("optimized_test") is not None]
            deltas = [r["optimized_test"] - r["baseline_test"] for r in ok]
            lines.append(
                f"| {opt} | {label} | {', '.join(str(r['seed']) for r in rs)} | "
                f"{spread([r['baseline_test'] for r in rs], f3)} | {spread([r['optimized_test'] for r in ok], f3)} | "
                f"{spread(deltas, lambda x: f'{x:+.3f}', f3)} | "
                f"{spread([r['lm_calls'] for r in rs], f0)} ({spread([r['provider_calls'] for r in rs], f0)}) | "
                f"{spread([r['prompt_tokens'] + r['completion_tokens'] for r in rs], f0)} | "
                f"{spread([r['wall_secs'] for r in rs], f0)} |"
            )
            for r in rs:
                err = r.get("error")
                per_seed.append(
                    f"| {opt} | {label} | {r['seed']} | {r['baseline_test']:.3f} | "
                    + (f"{r['optimized_test']:.3f}" if r.get("optimized_test") is not None else "failed")
                    + f" | {r['lm_calls']:,} ({r['provider_calls']:,}) | {r['prompt_tokens']:,} + {r['completion_tokens']:,} | {r['wall_secs']:,.0f} |"
                    + (f" {err[:160]} |" if err else " |")
                )
    md = "\n".join(lines)
    md += "\n\nEvery run:\n\n| optimizer | side | seed | test baseline | test optimized | LM calls (provider) | tokens (provider) | wall s | error |\n| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n"
    md += "\n".join(per_seed)
    server = os.path.join(out, "server-command.txt")
    if os.path.exists(server):
        md += f"\n\nllama-server command: `{open(server).read().strip()}` (the port is picked at random)."
    print(md)
    if os.path.exists(doc):
        text = open(doc).read()
        pat = re.compile(r"(<!-- bench:quality_vs_dspy -->\n).*?(\n<!-- /bench:quality_vs_dspy -->)", re.S)
        if pat.search(text):
            open(doc, "w").write(pat.sub(lambda m: m.group(1) + md + m.group(2), text))


if __name__ == "__main__":
    main()
