//! Benchmark A (our side): tracker write and query throughput.
//!
//! Writes RUNS runs x CANDIDATES candidates x SCORES per-example scores (one
//! full validation evaluation per candidate) plus TRACES trace rows into a
//! fresh SQLite file, three times:
//!
//! - `ours`: the path an optimization takes — the store writer
//!   (`src/store/writer.rs`): a run, then per candidate `add_candidate` and
//!   `create_evaluation` as round trips (`Writer::call`, as the session makes
//!   them), its scores, `FinishEvaluation` and progress as queued writes, and
//!   the traces as queued writes, all committed in groups by the writer thread;
//! - `raw`: the same schema (migrations V1-V3), pragmas (WAL, synchronous=NORMAL,
//!   foreign_keys) and rows through a minimal rusqlite prepared-statement loop,
//!   one transaction per run (a plain loop, not a limit of SQLite);
//! - `raw_limit`: what SQLite itself takes: the same schema, pragmas and rows
//!   with ids assigned up front, foreign keys off, prepared multi-row inserts
//!   and one transaction per phase.
//!
//! Then times two queries on each file (median of 20, each on a different run):
//! "best candidate of a run" through the `candidate_leaderboard` view, and
//! "score history of a run" (its evaluations in order, with candidate origin).
//!
//! Run: cargo run --example tracker [-- --runs 1000 --candidates 100 --scores 10
//!      --traces 1000000 --out bench/out/tracker.json --dir bench/out/db]

use rusqlite::{params, Connection};
use serde_json::{json, Value};
use skill_fleet::store::{
    EvalKind, NewRun, RunKind, ScoreRow, Split, Store, TraceRow, Write, Writer,
};
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Args {
    runs: usize,
    candidates: usize,
    scores: usize,
    traces: usize,
    out: PathBuf,
    dir: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        runs: 1000,
        candidates: 100,
        scores: 10,
        traces: 1_000_000,
        out: "bench/out/tracker.json".into(),
        dir: "bench/out/db".into(),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--runs" => a.runs = val.parse().expect("--runs N"),
            "--candidates" => a.candidates = val.parse().expect("--candidates N"),
            "--scores" => a.scores = val.parse().expect("--scores N"),
            "--traces" => a.traces = val.parse().expect("--traces N"),
            "--out" => a.out = val.into(),
            "--dir" => a.dir = val.into(),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

/// The schema as the migrations leave it (the raw side creates it directly).
const SCHEMA: &str = concat!(
    include_str!("../migrations/V1__initial_schema.sql"),
    include_str!("../migrations/V2__scores_clustered_leaderboard_per_run.sql"),
    include_str!("../migrations/V3__one_status_vocabulary_and_jobs.sql")
);

/// Deterministic pseudo-random score in [0, 1].
fn score_of(run: usize, cand: usize, ex: usize) -> f64 {
    let mut x = (run as u64) << 40 ^ (cand as u64) << 20 ^ ex as u64 ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x % 1001) as f64 / 1000.0
}

fn feedback(s: f64) -> String {
    format!("taxonomy {s:.2}; style ok")
}

fn spec_json(run: usize, cand: usize) -> String {
    format!(
        "{{\"name\":\"skill_understanding\",\"predictors\":[{{\"name\":\"understand\",\"instructions\":\"variant {cand} of run {run}\",\"demos\":[{}]}}]}}",
        cand % 5
    )
}

fn request_json(i: usize) -> String {
    format!(
        "{{\"prompt\":{{\"kind\":\"text\",\"value\":\"Turn a request to create an agent skill into the skill's metadata. Task Description: Create a skill number {i} about tokio task cancellation\\nTaxonomy Path:\"}},\"params\":{{\"temperature\":0.0,\"max_tokens\":256,\"stop\":[\"\\n\\n\"],\"n\":1}}}}"
    )
}

const RESPONSE: &str =
    " rust/tokio-task-cancellation\nName: tokio-task-cancellation\nSkill Style: minimal";

fn fresh(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn file_size(path: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| {
            let mut p = path.as_os_str().to_owned();
            p.push(s);
            std::fs::metadata(PathBuf::from(p)).ok()
        })
        .map(|m| m.len())
        .sum()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

const Q_BEST: &str = "SELECT candidate_id, origin, val_score FROM candidate_leaderboard WHERE run_id = ?1 AND rank = 1";
/// The same answer without the view, as a cross-check of its rows and speed.
const Q_BEST_INDEXED: &str =
    "SELECT c.id, c.origin, MAX(e.mean_score) AS val_score FROM evaluations e \
    JOIN candidates c ON c.id = e.candidate_id \
    WHERE e.run_id = ?1 AND e.kind = 'full' AND e.status = 'done' \
    GROUP BY c.id ORDER BY val_score DESC LIMIT 1";
const Q_BEST_ALL: &str =
    "SELECT run_id, candidate_id, val_score FROM candidate_leaderboard WHERE rank = 1";
const Q_HISTORY: &str = "SELECT e.id, e.kind, e.split, e.mean_score, c.origin FROM evaluations e \
    JOIN candidates c ON c.id = e.candidate_id WHERE e.run_id = ?1 ORDER BY e.id";

fn plan(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let n = stmt.parameter_count();
    let p: Vec<i64> = vec![1; n];
    stmt.query_map(rusqlite::params_from_iter(p), |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Times the queries on an open connection: median of 20 over distinct runs.
fn time_queries(conn: &Connection, run_ids: &[i64], candidates: usize) -> Value {
    let pick = |k: usize| run_ids[(k * 7919 + 13) % run_ids.len()];
    let mut best = Vec::new();
    let mut best_idx = Vec::new();
    let mut hist = Vec::new();
    let mut best_all = Vec::new();
    for k in 0..20 {
        let run = pick(k);
        let t = Instant::now();
        let mut stmt = conn.prepare_cached(Q_BEST).unwrap();
        let rows: Vec<(i64, String, f64)> = stmt
            .query_map([run], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        best.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(!rows.is_empty(), "no best candidate for run {run}");

        let t = Instant::now();
        let mut stmt = conn.prepare_cached(Q_BEST_INDEXED).unwrap();
        let best_row: (i64, String, f64) = stmt
            .query_row([run], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        best_idx.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(
            rows.iter().any(|r| r.0 == best_row.0),
            "the indexed query disagrees with the view for run {run}"
        );

        let t = Instant::now();
        let mut stmt = conn.prepare_cached(Q_HISTORY).unwrap();
        let rows: Vec<(i64, String, String, Option<f64>, String)> = stmt
            .query_map([run], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        hist.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(rows.len(), candidates);
    }
    for _ in 0..5 {
        let t = Instant::now();
        let mut stmt = conn.prepare_cached(Q_BEST_ALL).unwrap();
        let n = stmt.query_map([], |r| r.get::<_, i64>(0)).unwrap().count();
        best_all.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(n >= run_ids.len());
    }
    json!({
        "best_candidate_of_run_ms": median(best),
        "best_candidate_of_run_indexed_ms": median(best_idx),
        "score_history_of_run_ms": median(hist),
        "best_candidate_of_every_run_ms": median(best_all),
        "plan_best_candidate": plan(conn, Q_BEST),
        "plan_best_candidate_indexed": plan(conn, Q_BEST_INDEXED),
        "plan_score_history": plan(conn, Q_HISTORY),
    })
}

fn ours(a: &Args, path: &Path) -> Value {
    fresh(path);
    let mut store = Store::open(path).unwrap();
    // Ten real examples to score (scores reference examples).
    let config = skill_fleet::config::Config::load(Path::new("config/config.yaml"), false).unwrap();
    let taxonomy = config.taxonomy().unwrap();
    let trainset =
        skill_fleet::data::load_file(Path::new("config/training/trainset.json"), &taxonomy)
            .unwrap();
    let (ts, _) = store
        .import_trainset("bench", "config/training/trainset.json", &trainset)
        .unwrap();
    let examples: Vec<i64> = store
        .examples(ts.id)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .take(a.scores)
        .collect();
    assert_eq!(
        examples.len(),
        a.scores,
        "trainset has fewer examples than --scores"
    );

    drop(store);
    let writer = Writer::start(path).unwrap();
    let t0 = Instant::now();
    let mut run_ids = Vec::with_capacity(a.runs);
    let mut cand_ids: Vec<Vec<i64>> = Vec::with_capacity(a.runs);
    for r in 0..a.runs {
        let mut new_run = NewRun::new(RunKind::Optimize, "{}".into());
        new_run.optimizer = Some("bench".into());
        new_run.seed = Some(r as i64);
        let run = writer.call(move |s| s.create_run(&new_run)).unwrap();
        let mut ids = Vec::with_capacity(a.candidates);
        for c in 0..a.candidates {
            let parents: Vec<i64> = if c == 0 { vec![] } else { vec![ids[c - 1]] };
            let origin = if c == 0 {
                "baseline".to_string()
            } else {
                format!("trial-{c}")
            };
            let (json, hash) = (spec_json(r, c), format!("{r:08x}{c:08x}"));
            let n = a.scores;
            let cand = writer
                .call(move |s| {
                    s.add_candidate(run, &parents, &origin, &json, &hash, Some(c as i64))
                })
                .unwrap();
            let ev = writer
                .call(move |s| {
                    s.create_evaluation(
                        run,
                        Some(cand),
                        None,
                        Split::Val,
                        EvalKind::Full,
                        "skill_comprehensive",
                        n,
                    )
                })
                .unwrap();
            let mut sum = 0.0;
            for (e, ex) in examples.iter().enumerate() {
                let score = score_of(r, c, e);
                sum += score;
                writer.write(Write::Score {
                    evaluation_id: ev,
                    row: ScoreRow {
                        example_id: *ex,
                        score,
                        feedback: Some(feedback(score)),
                        prediction_json: None,
                        error: None,
                    },
                });
                writer.write(Write::RunProgress {
                    run_id: run,
                    progress: (c * a.scores + e) as f64 / (a.candidates * a.scores) as f64,
                    lm_calls: 0,
                    cache_hits: 0,
                });
            }
            writer.write(Write::FinishEvaluation {
                evaluation_id: ev,
                mean: sum / a.scores as f64,
            });
            ids.push(cand);
        }
        run_ids.push(run);
        cand_ids.push(ids);
    }
    writer.flush().unwrap();
    let score_secs = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let per_batch = (a.candidates * a.scores).max(1);
    let mut written = 0usize;
    let mut k = 0usize;
    while written < a.traces {
        let n = per_batch.min(a.traces - written);
        let r = k % a.runs;
        let rows: Vec<TraceRow> = (0..n)
            .map(|j| TraceRow {
                run_id: Some(run_ids[r]),
                candidate_id: Some(cand_ids[r][(j / a.scores) % a.candidates]),
                example_id: Some(examples[j % a.scores]),
                predictor: Some("understand".into()),
                role: Some("task".into()),
                provider: "local".into(),
                model: "gemma-3-270m-q4_k_m".into(),
                prompt_tokens: 412,
                completion_tokens: 57,
                cost_usd: 0.0,
                latency_ms: 812.5,
                cache_hit: j % 3 == 0,
                attempts: 1,
                error: None,
                version_id: None,
                inputs_json: None,
                assignment_id: None,
                selected_demos: None,
                request_json: request_json(written + j),
                response_text: Some(RESPONSE.into()),
            })
            .collect();
        for row in rows {
            writer.write(Write::Trace(Box::new(row)));
        }
        written += n;
        k += 1;
    }
    writer.flush().unwrap();
    let trace_secs = t1.elapsed().as_secs_f64();
    drop(writer);
    let store = Store::open(path).unwrap();
    store
        .conn()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let queries = time_queries(store.conn(), &run_ids, a.candidates);
    report("ours", a, path, score_secs, trace_secs, queries)
}

/// A fresh file with the migrations' schema, WAL and `synchronous=NORMAL`,
/// foreign keys on or off, and the trainset the scores point at; returns the
/// connection and the example ids.
fn raw_setup(a: &Args, path: &Path, foreign_keys: bool) -> (Connection, Vec<i64>) {
    fresh(path);
    let conn = Connection::open(path).unwrap();
    let _mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.pragma_update(None, "foreign_keys", foreign_keys)
        .unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    conn.execute(
        "INSERT INTO trainsets (name, content_hash, source, format, n_examples, created_at) VALUES ('bench', 'h', 's', 'json', ?1, 'now')",
        [a.scores as i64],
    )
    .unwrap();
    let ts = conn.last_insert_rowid();
    let mut examples = Vec::new();
    for i in 0..a.scores {
        conn.execute(
            "INSERT INTO examples (trainset_id, idx, fields_json, hash) VALUES (?1, ?2, '{}', ?3)",
            params![ts, i as i64, format!("h{i}")],
        )
        .unwrap();
        examples.push(conn.last_insert_rowid());
    }
    (conn, examples)
}

fn raw(a: &Args, path: &Path) -> Value {
    let (mut conn, examples) = raw_setup(a, path, true);
    let now = skill_fleet::util::now();

    let t0 = Instant::now();
    let mut run_ids = Vec::with_capacity(a.runs);
    let mut cand_ids: Vec<Vec<i64>> = Vec::with_capacity(a.runs);
    for r in 0..a.runs {
        let tx = conn.transaction().unwrap();
        let run;
        let mut ids = Vec::with_capacity(a.candidates);
        {
            tx.execute(
                "INSERT INTO runs (kind, optimizer, config_json, seed, started_at) VALUES ('optimize', 'bench', '{}', ?1, ?2)",
                params![r as i64, now],
            )
            .unwrap();
            run = tx.last_insert_rowid();
            let mut ci = tx
                .prepare_cached("INSERT INTO candidates (run_id, parent_ids, origin, spec_json, hash, trial, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                .unwrap();
            let mut ei = tx
                .prepare_cached("INSERT INTO evaluations (run_id, candidate_id, split, kind, metric, n, mean_score, status, created_at, finished_at) VALUES (?1, ?2, 'val', 'full', 'skill_comprehensive', ?3, ?4, 'done', ?5, ?5)")
                .unwrap();
            let mut si = tx
                .prepare_cached("INSERT INTO scores (evaluation_id, example_id, score, feedback) VALUES (?1, ?2, ?3, ?4)")
                .unwrap();
            for c in 0..a.candidates {
                let parents = if c == 0 {
                    "[]".to_string()
                } else {
                    format!("[{}]", c - 1)
                };
                let origin = if c == 0 {
                    "baseline".to_string()
                } else {
                    format!("trial-{c}")
                };
                ci.execute(params![
                    run,
                    parents,
                    origin,
                    spec_json(r, c),
                    format!("{r:08x}{c:08x}"),
                    c as i64,
                    now
                ])
                .unwrap();
                let cid = tx.last_insert_rowid();
                ids.push(cid);
                let mean = (0..a.scores).map(|e| score_of(r, c, e)).sum::<f64>() / a.scores as f64;
                ei.execute(params![run, cid, a.scores as i64, mean, now])
                    .unwrap();
                let eid = tx.last_insert_rowid();
                for (e, ex) in examples.iter().enumerate() {
                    let s = score_of(r, c, e);
                    si.execute(params![eid, ex, s, feedback(s)]).unwrap();
                }
            }
        }
        tx.commit().unwrap();
        run_ids.push(run);
        cand_ids.push(ids);
    }
    let score_secs = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let per_batch = (a.candidates * a.scores).max(1);
    let mut written = 0usize;
    let mut k = 0usize;
    while written < a.traces {
        let n = per_batch.min(a.traces - written);
        let r = k % a.runs;
        let tx = conn.transaction().unwrap();
        {
            let mut ti = tx
                .prepare_cached("INSERT INTO traces (run_id, candidate_id, example_id, predictor, role, provider, model, prompt_tokens, completion_tokens, cost_usd, latency_ms, cache_hit, attempts, request_json, response_text, at) VALUES (?1, ?2, ?3, 'understand', 'task', 'local', 'gemma-3-270m-q4_k_m', 412, 57, 0.0, 812.5, ?4, 1, ?5, ?6, ?7)")
                .unwrap();
            for j in 0..n {
                ti.execute(params![
                    run_ids[r],
                    cand_ids[r][(j / a.scores) % a.candidates],
                    examples[j % a.scores],
                    j % 3 == 0,
                    request_json(written + j),
                    RESPONSE,
                    now
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
        written += n;
        k += 1;
    }
    let trace_secs = t1.elapsed().as_secs_f64();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let queries = time_queries(&conn, &run_ids, a.candidates);
    report("raw", a, path, score_secs, trace_secs, queries)
}

/// Rows per multi-row `INSERT` on the limit side.
const LIMIT_CHUNK: usize = 128;
/// Trace rows per transaction on the limit side.
const TRACE_TX: usize = 10_000;

/// Collects rows of one table and sends them `LIMIT_CHUNK` rows per prepared
/// multi-row `INSERT`.
struct Chunked<'t> {
    tx: &'t rusqlite::Transaction<'t>,
    head: String,
    ncols: usize,
    buf: Vec<rusqlite::types::Value>,
}

impl<'t> Chunked<'t> {
    fn new(tx: &'t rusqlite::Transaction<'t>, table: &str, cols: &[&str]) -> Self {
        Chunked {
            tx,
            head: format!("INSERT INTO {table} ({}) VALUES ", cols.join(", ")),
            ncols: cols.len(),
            buf: Vec::with_capacity(cols.len() * LIMIT_CHUNK),
        }
    }

    fn push(&mut self, row: impl IntoIterator<Item = rusqlite::types::Value>) {
        self.buf.extend(row);
        if self.buf.len() == self.ncols * LIMIT_CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let rows = self.buf.len() / self.ncols;
        let one = format!("({})", vec!["?"; self.ncols].join(", "));
        let sql = format!("{}{}", self.head, vec![one; rows].join(", "));
        self.tx
            .prepare_cached(&sql)
            .unwrap()
            .execute(rusqlite::params_from_iter(self.buf.drain(..)))
            .unwrap();
    }
}

/// What SQLite itself can take on this disk: the same schema, pragmas and
/// rows, with ids assigned up front, foreign keys off, prepared multi-row
/// inserts of `LIMIT_CHUNK` rows, one transaction for the score phase and
/// one per `TRACE_TX` trace rows.
fn raw_limit(a: &Args, path: &Path) -> Value {
    use rusqlite::types::Value as V;
    let (mut conn, examples) = raw_setup(a, path, false);
    let now = skill_fleet::util::now();
    let text = |s: String| V::Text(s);

    let t0 = Instant::now();
    let tx = conn.transaction().unwrap();
    let mut run_ids = Vec::with_capacity(a.runs);
    let mut cand_ids: Vec<Vec<i64>> = Vec::with_capacity(a.runs);
    {
        let mut runs = Chunked::new(
            &tx,
            "runs",
            &[
                "id",
                "kind",
                "optimizer",
                "config_json",
                "seed",
                "started_at",
            ],
        );
        let mut cands = Chunked::new(
            &tx,
            "candidates",
            &[
                "id",
                "run_id",
                "parent_ids",
                "origin",
                "spec_json",
                "hash",
                "trial",
                "created_at",
            ],
        );
        let mut evals = Chunked::new(
            &tx,
            "evaluations",
            &[
                "id",
                "run_id",
                "candidate_id",
                "split",
                "kind",
                "metric",
                "n",
                "mean_score",
                "status",
                "created_at",
                "finished_at",
            ],
        );
        let mut scores = Chunked::new(
            &tx,
            "scores",
            &["evaluation_id", "example_id", "score", "feedback"],
        );
        let mut next_id = 1i64;
        for r in 0..a.runs {
            let run = r as i64 + 1;
            runs.push([
                V::Integer(run),
                text("optimize".into()),
                text("bench".into()),
                text("{}".into()),
                V::Integer(r as i64),
                text(now.clone()),
            ]);
            let mut ids = Vec::with_capacity(a.candidates);
            for c in 0..a.candidates {
                let (cid, eid) = (next_id, next_id);
                next_id += 1;
                let parents = if c == 0 {
                    "[]".to_string()
                } else {
                    format!("[{}]", cid - 1)
                };
                let origin = if c == 0 {
                    "baseline".to_string()
                } else {
                    format!("trial-{c}")
                };
                cands.push([
                    V::Integer(cid),
                    V::Integer(run),
                    text(parents),
                    text(origin),
                    text(spec_json(r, c)),
                    text(format!("{r:08x}{c:08x}")),
                    V::Integer(c as i64),
                    text(now.clone()),
                ]);
                let mean = (0..a.scores).map(|e| score_of(r, c, e)).sum::<f64>() / a.scores as f64;
                evals.push([
                    V::Integer(eid),
                    V::Integer(run),
                    V::Integer(cid),
                    text("val".into()),
                    text("full".into()),
                    text("skill_comprehensive".into()),
                    V::Integer(a.scores as i64),
                    V::Real(mean),
                    text("done".into()),
                    text(now.clone()),
                    text(now.clone()),
                ]);
                for (e, ex) in examples.iter().enumerate() {
                    let s = score_of(r, c, e);
                    scores.push([
                        V::Integer(eid),
                        V::Integer(*ex),
                        V::Real(s),
                        text(feedback(s)),
                    ]);
                }
                ids.push(cid);
            }
            run_ids.push(run);
            cand_ids.push(ids);
        }
        // What is left of each table (the foreign key check below covers
        // the order chunks went in).
        runs.flush();
        cands.flush();
        evals.flush();
        scores.flush();
    }
    tx.commit().unwrap();
    let score_secs = t0.elapsed().as_secs_f64();

    // Traces commit every TRACE_TX rows: one transaction over 1M rows of
    // ~450 bytes grows the WAL to the whole table before the commit, which
    // measured slower than committing as the plain loop does.
    let t1 = Instant::now();
    let per_batch = (a.candidates * a.scores).max(1);
    let mut start = 0;
    while start < a.traces {
        let end = (start + TRACE_TX).min(a.traces);
        let tx = conn.transaction().unwrap();
        let mut traces = Chunked::new(
            &tx,
            "traces",
            &[
                "run_id",
                "candidate_id",
                "example_id",
                "predictor",
                "role",
                "provider",
                "model",
                "prompt_tokens",
                "completion_tokens",
                "cost_usd",
                "latency_ms",
                "cache_hit",
                "attempts",
                "request_json",
                "response_text",
                "at",
            ],
        );
        for i in start..end {
            let (r, j) = ((i / per_batch) % a.runs, i % per_batch);
            traces.push([
                V::Integer(run_ids[r]),
                V::Integer(cand_ids[r][(j / a.scores) % a.candidates]),
                V::Integer(examples[j % a.scores]),
                text("understand".into()),
                text("task".into()),
                text("local".into()),
                text("gemma-3-270m-q4_k_m".into()),
                V::Integer(412),
                V::Integer(57),
                V::Real(0.0),
                V::Real(812.5),
                V::Integer(i64::from(j % 3 == 0)),
                V::Integer(1),
                text(request_json(i)),
                text(RESPONSE.into()),
                text(now.clone()),
            ]);
        }
        traces.flush();
        drop(traces);
        tx.commit().unwrap();
        start = end;
    }
    let trace_secs = t1.elapsed().as_secs_f64();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let fk: Vec<String> = conn
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(fk.is_empty(), "the limit side wrote dangling rows: {fk:?}");
    let queries = time_queries(&conn, &run_ids, a.candidates);
    report("raw_limit", a, path, score_secs, trace_secs, queries)
}

fn report(
    name: &str,
    a: &Args,
    path: &Path,
    score_secs: f64,
    trace_secs: f64,
    queries: Value,
) -> Value {
    let score_rows = a.runs * a.candidates * a.scores;
    // Rows written in the score phase: runs + candidates + evaluations + scores.
    let all_rows = a.runs + 2 * a.runs * a.candidates + score_rows;
    let v = json!({
        "side": name,
        "runs": a.runs, "candidates_per_run": a.candidates, "scores_per_candidate": a.scores,
        "score_rows": score_rows, "score_phase_rows": all_rows, "score_phase_secs": score_secs,
        "score_rows_per_sec": score_rows as f64 / score_secs,
        "score_phase_rows_per_sec": all_rows as f64 / score_secs,
        "trace_rows": a.traces, "trace_secs": trace_secs,
        "trace_rows_per_sec": a.traces as f64 / trace_secs,
        "file_bytes": file_size(path),
        "queries": queries,
    });
    eprintln!("{}", serde_json::to_string_pretty(&v).unwrap());
    v
}

fn main() {
    let a = args();
    std::fs::create_dir_all(&a.dir).unwrap();
    let ours = ours(&a, &a.dir.join("tracker-ours.db"));
    let raw = raw(&a, &a.dir.join("tracker-raw.db"));
    let raw_limit = raw_limit(&a, &a.dir.join("tracker-raw-limit.db"));
    let out = json!({
        "benchmark": "tracker",
        "sqlite_version": rusqlite::version(),
        "profile": if cfg!(debug_assertions) { "debug-assertions on" } else { "optimized" },
        "ours": ours,
        "raw": raw,
        "raw_limit": raw_limit,
    });
    if let Some(dir) = a.out.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&a.out, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    eprintln!("wrote {}", a.out.display());
}
