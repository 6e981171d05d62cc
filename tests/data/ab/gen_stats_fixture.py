"""Generates stats_fixture.json: reference values for `src/ab/stats.rs`,
computed independently with scipy.

    python3 -m venv /tmp/scipyenv && /tmp/scipyenv/bin/pip install scipy
    /tmp/scipyenv/bin/python tests/data/ab/gen_stats_fixture.py

- wilson: 95% Wilson score intervals (scipy.stats.binomtest(...).proportion_ci).
- student_t: 95% Student t intervals of a mean (scipy.stats.t.interval with
  the standard error of the sample).
- beta_prob_best: P(X1 > X2) for X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2) by
  numerical integration of f1(x) * F2(x) (scipy.integrate.quad).
- normal_prob_best: P(X1 > X2) for independent normals, closed form
  Phi((m1 - m2) / sqrt(s1^2 + s2^2)).
"""

import json
import math
import pathlib

import numpy as np
from scipy import integrate, stats

out = {"scipy": __import__("scipy").__version__}

out["wilson"] = []
for s, n in [(0, 10), (1, 10), (5, 10), (10, 10), (45, 100), (3, 7), (912, 1000), (1, 1)]:
    ci = stats.binomtest(s, n).proportion_ci(confidence_level=0.95, method="wilson")
    out["wilson"].append({"successes": s, "n": n, "low": ci.low, "high": ci.high})

rng = np.random.default_rng(16)
samples = [
    [1.0, 2.0, 3.0],
    [0.2, 0.9],
    [round(x, 6) for x in rng.normal(0.7, 0.1, 12)],
    [round(x, 6) for x in rng.uniform(0, 1, 40)],
    [100.0, 100.5, 99.0, 101.25, 98.75],
]
out["student_t"] = []
for values in samples:
    a = np.array(values)
    sem = a.std(ddof=1) / math.sqrt(len(a))
    low, high = stats.t.interval(0.95, len(a) - 1, loc=a.mean(), scale=sem)
    out["student_t"].append({"values": values, "mean": a.mean(), "low": low, "high": high})

out["beta_prob_best"] = []
for a1, b1, a2, b2 in [(1, 1, 1, 1), (11, 91, 6, 96), (30, 70, 40, 60), (3, 5, 4, 4), (201, 801, 151, 851)]:
    f = lambda x: stats.beta.pdf(x, a1, b1) * stats.beta.cdf(x, a2, b2)
    p, _ = integrate.quad(f, 0, 1, limit=200)
    out["beta_prob_best"].append({"a1": a1, "b1": b1, "a2": a2, "b2": b2, "p1": p})

out["normal_prob_best"] = []
for m1, s1, m2, s2 in [(0.5, 0.1, 0.5, 0.1), (0.7, 0.05, 0.6, 0.04), (0.3, 0.2, 0.35, 0.1)]:
    p = stats.norm.cdf((m1 - m2) / math.hypot(s1, s2))
    out["normal_prob_best"].append({"m1": m1, "s1": s1, "m2": m2, "s2": s2, "p1": p})

path = pathlib.Path(__file__).with_name("stats_fixture.json")
path.write_text(json.dumps(out, indent=2) + "\n")
print(f"wrote {path}")
