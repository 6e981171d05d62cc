"""Issue 15's goal, checked on one run of bench/quality_vs_dspy.sh
(bench/out/quality/RUN_ID/): on the bundled task with the local model, our best
variant at least 0.70 on test, at least 0.15 above DSPy's best, at no more than
half its wall time.

"Best" is the variant (any mode) with the highest mean optimized test score over
the run's seeds, among variants that finished on every seed; a variant that
failed on a seed cannot be a side's best (the failures are listed). Zero-shot
variants count for neither side. The difference is taken per seed (both sides
ran on the same split) and averaged; the wall-time ratio is taken per seed (the
cells of a seed ran in one stretch, so machine speed drifts less inside a seed
than across seeds) and averaged. Wall time is the whole cell on both sides:
baseline test evaluation, optimization and the optimized program's test
evaluation. Tokens (prompt + completion, calls that reached the server) are
printed next to it because they do not depend on the machine's speed.

Usage: python3 bench/quality_goal.py bench/out/quality/RUN_ID
"""

import glob
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(__file__))
from quality_summary import MODES, label, stats  # noqa: E402

MIN_TEST = 0.70
MIN_MARGIN = 0.15
MAX_WALL_RATIO = 0.5


def fmt(xs, digits=3, sign=False):
    """Mean ± sd [95% t interval], as the summary prints it (quality_summary.stats)."""
    return stats(xs, lambda x: f"{x:{'+' if sign else ''}.{digits}f}", lambda x: f"{x:.{digits}f}")


def best(cells, seeds, side):
    """The side's variant with the highest mean optimized test score over all seeds,
    and the variants left out because a seed is missing or failed."""
    by_variant = {}
    for c in cells:
        if c["side"] != side or c["variant"].split("-", 1)[1].startswith("zeroshot"):
            continue
        by_variant.setdefault((c["mode"], c["variant"]), {})[str(c["seed"])] = c
    ranked, left_out = [], []
    for key, per_seed in by_variant.items():
        if set(per_seed) != set(seeds) or any(per_seed[s]["optimized_test"] is None for s in seeds):
            failed = [s for s in seeds if s in per_seed and per_seed[s]["optimized_test"] is None]
            missing = [s for s in seeds if s not in per_seed]
            left_out.append((key, failed, missing))
            continue
        ranked.append((statistics.mean(per_seed[s]["optimized_test"] for s in seeds), key, per_seed))
    ranked.sort(reverse=True)
    return ranked, left_out


def name(key):
    mode, variant = key
    return f"{label(variant)} ({MODES.get(mode, mode)})"


def main():
    run = sys.argv[1]
    cfg = json.load(open(os.path.join(run, "config.json")))
    seeds = cfg["settings"]["SEEDS"].split()
    cells = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(run, "cells", "*.json")))]
    ours, ours_out = best(cells, seeds, "ours")
    theirs, theirs_out = best(cells, seeds, "dspy")
    if not ours or not theirs:
        sys.exit(f"{run}: no variant of {'ours' if not ours else 'DSPy'} finished on every seed {seeds}")
    _, okey, o = ours[0]
    _, tkey, t = theirs[0]
    o_test = [o[s]["optimized_test"] for s in seeds]
    t_test = [t[s]["optimized_test"] for s in seeds]
    diff = [a - b for a, b in zip(o_test, t_test)]
    ratio = [o[s]["wall_secs"] / t[s]["wall_secs"] for s in seeds]
    tokens = lambda c: c["prompt_tokens"] + c["completion_tokens"]  # noqa: E731
    token_ratio = [tokens(o[s]) / tokens(t[s]) for s in seeds]
    walls = lambda d: ", ".join(f"{d[s]['wall_secs']:,.0f}" for s in seeds)  # noqa: E731

    m_test = statistics.mean(o_test)
    m_diff = statistics.mean(diff)
    m_ratio = statistics.mean(ratio)
    met = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    print(f"Run `{cfg['run_id']}`, seeds {', '.join(seeds)}: `python3 bench/quality_goal.py {run}`.\n")
    print("| goal | measured (mean ± sd over seeds [95% t interval]) | met? |")
    print("| --- | --- | --- |")
    print(f"| our best at least {MIN_TEST:.2f} on test | {name(okey)}: {fmt(o_test)}; "
          f"seeds {', '.join(f'{x:.3f}' for x in o_test)} | {met(m_test >= MIN_TEST)} |")
    print(f"| at least {MIN_MARGIN:.2f} above DSPy's best | {name(tkey)}: {fmt(t_test)}; "
          f"difference per seed {fmt(diff, sign=True)} | {met(m_diff >= MIN_MARGIN)} |")
    print(f"| at no more than half DSPy's best's wall time | ours {walls(o)} s, DSPy {walls(t)} s (seeds "
          f"{', '.join(seeds)}); ratio per seed {fmt(ratio, 2)}; tokens ratio {fmt(token_ratio, 2)} "
          f"| {met(m_ratio <= MAX_WALL_RATIO)} |")
    # Which of our variants meet the first two goals, and at what share of DSPy's best's wall time:
    # the third goal is missed or met by the best, but a cheaper variant may meet all three.
    print("\nOur variants that meet the first two goals, with their wall time per seed against DSPy's best's:\n")
    for m, key, per_seed in ours:
        d = [per_seed[s]["optimized_test"] - t[s]["optimized_test"] for s in seeds]
        if m >= MIN_TEST and statistics.mean(d) >= MIN_MARGIN:
            r = [per_seed[s]["wall_secs"] / t[s]["wall_secs"] for s in seeds]
            print(f"- {name(key)}: test {m:.3f}, difference {statistics.mean(d):+.3f}, wall-time ratio {fmt(r, 2)}"
                  f" ({met(statistics.mean(r) <= MAX_WALL_RATIO)})")
    print("\nRanking by mean test score:\n")
    for side, ranked, out in (("ours", ours, ours_out), ("DSPy", theirs, theirs_out)):
        print(f"- {side}: " + "; ".join(f"{label(k[1]).split(': ', 1)[1]} ({k[0]}) {m:.3f}" for m, k, _ in ranked))
        for key, failed, missing in out:
            why = []
            if failed:
                why.append(f"failed on seed(s) {', '.join(failed)}")
            if missing:
                why.append(f"no cell for seed(s) {', '.join(missing)}")
            print(f"  - left out: {name(key)}: {'; '.join(why)}")


if __name__ == "__main__":
    main()
