"""Benchmark A, peers: MLflow and Optuna logging the same shape as bench/tracker.rs.

Shape: RUNS optimization runs x CANDIDATES candidates x SCORES per-example scores.

MLflow (SQLite tracking store): each of our runs is a parent MLflow run; each
candidate is a child run (tag mlflow.parentRunId, tag origin) whose SCORES
per-example scores are the steps of metric `score` plus one `val_score`, all in
one log_batch; the parent logs `val_score` per candidate as its history.
Queries: best candidate of a run = search_runs(parent filter, order by
metrics.val_score DESC, max_results=1); score history of a run =
get_metric_history(parent, "val_score") and, with origins,
search_runs(parent filter, order by start_time).

MLflow, batched layout (`mlflow --layout batched`): MLflow's fastest write
path, as its docs recommend for many metrics. One MLflow run per optimization
run; candidate c's scores are steps c*SCORES+e of metric `score`, its mean is
step c of `val_score`, its origin the tag `origin.c` — all sent in log_batch
calls of at most 1,000 metrics (MLflow's limit per call). There are no
candidate rows to query: best candidate of a run = get_metric_history(run,
"val_score") and the maximum taken in Python; the score history with origins
adds get_run for the tags.

Optuna (RDBStorage on SQLite, TPE sampler): each of our runs is a study; each
candidate is a trial with 3 suggested params, a user attribute `origin`, SCORES
intermediate values (trial.report) and its mean as value. Queries on the
RDBStorage: best trial of a study (get_best_trial) and the history of a study
(get_all_trials).

Both write a documented fraction of the runs when the full size would take
long, and report rows/s, which do not depend on the fraction.

Durability (`--durability`): `default` leaves SQLite as the peer ships it
(rollback journal, synchronous=FULL); `matched` gives every connection the
peer opens the pragmas skill-fleet runs with (WAL, synchronous=NORMAL),
through an SQLAlchemy connect hook on every engine. Optuna's sampler
(`--sampler`): `tpe` (its default) or `fixed`, a sampler that does no work
(every parameter at its low end), so the timed loop is the storage alone.

Usage: python bench/peers_tracker.py mlflow --runs 50 --out bench/out/mlflow.json
       python bench/peers_tracker.py mlflow --durability matched --runs 50 --out bench/out/mlflow_matched.json
       python bench/peers_tracker.py optuna --durability matched --sampler fixed --runs 10 --out bench/out/optuna_matched.json
       python bench/peers_tracker.py mlflow --layout batched --runs 100 --out bench/out/mlflow_batched.json
       python bench/peers_tracker.py optuna --runs 10 --out bench/out/optuna.json
"""

import argparse
import json
import os
import statistics
import time


def score_of(run, cand, ex):
    """Deterministic pseudo-random score in [0, 1] (same idea as tracker.rs)."""
    x = ((run << 40) ^ (cand << 20) ^ ex ^ 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 33
    return (x % 1001) / 1000.0


def match_durability():
    """Every SQLAlchemy engine's new SQLite connections get WAL and
    synchronous=NORMAL, the pragmas skill-fleet's store opens with."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _pragmas(dbapi_conn, _record):
        if isinstance(dbapi_conn, sqlite3.Connection):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()


def journal_mode(path):
    """The journal mode the peer left the file in (WAL persists in the file;
    the rollback journal is `delete`), as a check that the setting took."""
    import sqlite3

    c = sqlite3.connect(path)
    mode = c.execute("PRAGMA journal_mode").fetchone()[0]
    c.close()
    return mode


def fresh(path):
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass


def size(path):
    return sum(os.path.getsize(path + s) for s in ("", "-wal", "-shm") if os.path.exists(path + s))


def median_ms(f, args_list):
    times = []
    for a in args_list:
        t = time.perf_counter()
        f(a)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def result_head(a, side, version, secs):
    """The fields every peer's result shares: shape, fraction written, time."""
    score_rows = a.runs * a.candidates * a.scores
    return {
        "benchmark": "tracker",
        "side": side,
        "version": version,
        "durability": a.durability,
        "runs": a.runs,
        "candidates_per_run": a.candidates,
        "scores_per_candidate": a.scores,
        "fraction_of_full": a.runs / 1000.0,
        "score_rows": score_rows,
        "secs": secs,
        "score_rows_per_sec": score_rows / secs,
        "extrapolated_full_secs": secs * 1_000_000 / score_rows,
    }


def bench_mlflow(a):
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    path = os.path.abspath(os.path.join(a.dir, "mlflow.db"))
    fresh(path)
    artifacts = os.path.abspath(os.path.join(a.dir, "mlflow-artifacts"))
    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    t_setup = time.perf_counter()
    exp = client.create_experiment("bench", artifact_location=f"file://{artifacts}")
    setup_secs = time.perf_counter() - t_setup

    parents = []
    t0 = time.perf_counter()
    for r in range(a.runs):
        parent = client.create_run(exp, run_name=f"run-{r}", tags={"kind": "optimize"}).info.run_id
        history = []
        for c in range(a.candidates):
            origin = "baseline" if c == 0 else f"trial-{c}"
            child = client.create_run(
                exp, run_name=f"cand-{c}", tags={"mlflow.parentRunId": parent, "origin": origin}
            ).info.run_id
            ts = int(time.time() * 1000)
            scores = [score_of(r, c, e) for e in range(a.scores)]
            mean = sum(scores) / len(scores)
            metrics = [Metric("score", s, ts, e) for e, s in enumerate(scores)]
            metrics.append(Metric("val_score", mean, ts, 0))
            client.log_batch(child, metrics=metrics)
            client.set_terminated(child)
            history.append(Metric("val_score", mean, ts, c))
        client.log_batch(parent, metrics=history)
        client.set_terminated(parent)
        parents.append(parent)
    secs = time.perf_counter() - t0

    picks = [parents[(k * 7919 + 13) % len(parents)] for k in range(20)]

    def best(p):
        rs = client.search_runs(
            [exp],
            filter_string=f"tags.mlflow.parentRunId = '{p}'",
            order_by=["metrics.val_score DESC"],
            max_results=1,
        )
        assert len(rs) == 1

    def history(p):
        h = client.get_metric_history(p, "val_score")
        assert len(h) == a.candidates

    def history_with_origin(p):
        rs = client.search_runs(
            [exp],
            filter_string=f"tags.mlflow.parentRunId = '{p}'",
            order_by=["attributes.start_time ASC"],
            max_results=1000,
        )
        assert len(rs) == a.candidates

    out = {
        **result_head(a, "mlflow", mlflow.__version__, secs),
        "setup_secs": setup_secs,
        "candidates_per_sec": a.runs * a.candidates / secs,
        "file_bytes": size(path),
        "journal_mode": journal_mode(path),
        "queries": {
            "best_candidate_of_run_ms": median_ms(best, picks),
            "score_history_of_run_ms": median_ms(history, picks),
            "score_history_with_origin_ms": median_ms(history_with_origin, picks),
        },
    }
    return out


def bench_mlflow_batched(a):
    import mlflow
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    path = os.path.abspath(os.path.join(a.dir, "mlflow-batched.db"))
    fresh(path)
    artifacts = os.path.abspath(os.path.join(a.dir, "mlflow-batched-artifacts"))
    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    exp = client.create_experiment("bench", artifact_location=f"file://{artifacts}")

    runs = []
    t0 = time.perf_counter()
    for r in range(a.runs):
        run = client.create_run(exp, run_name=f"run-{r}", tags={"kind": "optimize"}).info.run_id
        ts = int(time.time() * 1000)
        metrics, tags = [], []
        for c in range(a.candidates):
            scores = [score_of(r, c, e) for e in range(a.scores)]
            metrics += [Metric("score", s, ts, c * a.scores + e) for e, s in enumerate(scores)]
            metrics.append(Metric("val_score", sum(scores) / len(scores), ts, c))
            tags.append(RunTag(f"origin.{c}", "baseline" if c == 0 else f"trial-{c}"))
        # MLflow accepts at most 1,000 metrics and 100 tags per log_batch.
        batches = max(-(-len(metrics) // 1000), -(-len(tags) // 100))
        for k in range(batches):
            client.log_batch(run, metrics=metrics[k * 1000 : (k + 1) * 1000], tags=tags[k * 100 : (k + 1) * 100])
        client.set_terminated(run)
        runs.append(run)
    secs = time.perf_counter() - t0

    picks = [runs[(k * 7919 + 13) % len(runs)] for k in range(20)]

    def best(run):
        h = client.get_metric_history(run, "val_score")
        top = max(h, key=lambda m: m.value)
        assert 0 <= top.step < a.candidates

    def history(run):
        h = client.get_metric_history(run, "val_score")
        assert len(h) == a.candidates

    def history_with_origin(run):
        h = client.get_metric_history(run, "val_score")
        tags = client.get_run(run).data.tags
        assert all(f"origin.{m.step}" in tags for m in h)

    score_rows = a.runs * a.candidates * a.scores
    return {
        **result_head(a, "mlflow-batched", mlflow.__version__, secs),
        "metric_rows_per_sec": (score_rows + a.runs * a.candidates) / secs,
        "file_bytes": size(path),
        "journal_mode": journal_mode(path),
        "queries": {
            "best_candidate_of_run_ms": median_ms(best, picks),
            "score_history_of_run_ms": median_ms(history, picks),
            "score_history_with_origin_ms": median_ms(history_with_origin, picks),
        },
    }


def bench_optuna(a):
    import optuna

    class FixedSampler(optuna.samplers.BaseSampler):
        """Does no work: every parameter at the low end of its range (the
        first choice of a categorical), so the storage is what is timed."""

        def infer_relative_search_space(self, study, trial):
            return {}

        def sample_relative(self, study, trial, search_space):
            return {}

        def sample_independent(self, study, trial, name, distribution):
            if isinstance(distribution, optuna.distributions.CategoricalDistribution):
                return distribution.choices[0]
            return distribution.low

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = os.path.abspath(os.path.join(a.dir, "optuna.db"))
    fresh(path)
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    origins = ["instruction", "demos", "mutation", "merge"]
    names = []
    t0 = time.perf_counter()
    for r in range(a.runs):
        name = f"run-{r}"
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=r) if a.sampler == "tpe" else FixedSampler(),
        )

        def objective(trial, r=r):
            c = trial.number
            trial.suggest_float("temperature", 0.0, 1.0)
            trial.suggest_int("demos", 0, 8)
            origin = trial.suggest_categorical("origin", origins)
            trial.set_user_attr("origin", "baseline" if c == 0 else origin)
            scores = [score_of(r, c, e) for e in range(a.scores)]
            for e, s in enumerate(scores):
                trial.report(s, e)
            return sum(scores) / len(scores)

        study.optimize(objective, n_trials=a.candidates)
        names.append(name)
    secs = time.perf_counter() - t0

    ids = [storage.get_study_id_from_name(n) for n in names]
    picks = [ids[(k * 7919 + 13) % len(ids)] for k in range(20)]

    def best(sid):
        storage.get_best_trial(sid)

    def history(sid):
        ts = storage.get_all_trials(sid, deepcopy=False)
        assert len(ts) == a.candidates

    trials = a.runs * a.candidates
    return {
        **result_head(a, "optuna", optuna.__version__, secs),
        "sampler": a.sampler,
        "trials": trials,
        "trials_per_sec": trials / secs,
        "file_bytes": size(path),
        "journal_mode": journal_mode(path),
        "queries": {
            "best_candidate_of_run_ms": median_ms(best, picks),
            "score_history_of_run_ms": median_ms(history, picks),
        },
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("peer", choices=["mlflow", "optuna"])
    p.add_argument("--layout", choices=["child-runs", "batched"], default="child-runs", help="MLflow only")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--scores", type=int, default=10)
    p.add_argument("--durability", choices=["default", "matched"], default="default")
    p.add_argument("--sampler", choices=["tpe", "fixed"], default="tpe", help="Optuna only")
    p.add_argument("--dir", default="bench/out/db")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    if a.durability == "matched":
        match_durability()
    if a.peer == "optuna":
        res = bench_optuna(a)
    else:
        res = bench_mlflow(a) if a.layout == "child-runs" else bench_mlflow_batched(a)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
