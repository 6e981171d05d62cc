//! Issue 18: the web dashboard of `skill-fleet serve`. The real binary serves
//! it on loopback; `tests/browser/dashboard.mjs` drives it in headless
//! Chromium (playwright-core, Debian's `chromium`) and prints what each page
//! showed and what each click did; these tests compare that with the
//! database, read directly with rusqlite. One test holds a finished
//! optimization on the real local model (six examples, one demo); the
//! others use the loopback stub LM. Screenshots go to
//! `SKILL_FLEET_SCREENSHOTS` when set (the README's come from there), else
//! to a temp dir.

use crate::serve::{Project, Server};
use crate::util::*;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `dashboard.mjs`, next to the browser check.
fn script() -> PathBuf {
    let check = std::env::var_os("SKILL_FLEET_BROWSER_CHECK")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("tests/browser/check_page.mjs"));
    let dir = check.parent().expect("a directory").to_path_buf();
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "the browser check is not installed: run `bash scripts/setup.sh` (npm ci in tests/browser)"
    );
    dir.join("dashboard.mjs")
}

/// Where screenshots go: `SKILL_FLEET_SCREENSHOTS`, else a fresh temp dir
/// (kept alive by the returned guard).
fn screenshot_dir() -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var_os("SKILL_FLEET_SCREENSHOTS") {
        Some(d) => {
            let d = PathBuf::from(d);
            std::fs::create_dir_all(&d).expect("the screenshot dir");
            (d, None)
        }
        None => {
            let t = tempfile::tempdir().expect("a temp dir");
            (t.path().to_path_buf(), Some(t))
        }
    }
}

/// Runs one scenario of the dashboard script against `server`; asserts it
/// got through every step and saved its screenshots.
fn drive(server: &Server, plan: Value) -> Value {
    let (dir, _guard) = screenshot_dir();
    let out = Command::new("node")
        .arg(script())
        .arg(&server.base)
        .arg(&dir)
        .arg(plan.to_string())
        .output()
        .expect("node runs (bash scripts/setup.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the dashboard script failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).expect("the script prints JSON");
    assert!(seen.get("error").is_none(), "{}", seen["error"]);
    for shot in seen["screenshots"].as_array().expect("a list") {
        let path = Path::new(shot.as_str().expect("a path"));
        let size = std::fs::metadata(path)
            .expect("the screenshot exists")
            .len();
        assert!(
            size > 5_000,
            "{} is blank-small ({size} bytes)",
            path.display()
        );
    }
    seen
}

/// Asserts no page error, no failed request, no control without an
/// accessible name, and no console error except
/// the `allowed` (step, text fragment) pairs, each seen exactly once: the
/// browser itself logs an HTTP error status of a fetch (the evidence gate's
/// 409, the token prompt's 401) as a console error.
fn assert_clean(seen: &Value, allowed: &[(&str, &str)]) {
    assert_eq!(seen["page_errors"], json!([]), "page errors");
    assert_eq!(
        seen["unnamed_controls"],
        json!([]),
        "controls without a name"
    );
    assert_eq!(seen["failed_requests"], json!([]), "failed requests");
    let errors = seen["console_errors"].as_array().expect("a list");
    let unexpected: Vec<&Value> = errors
        .iter()
        .filter(|e| {
            !allowed.iter().any(|(step, text)| {
                e["step"] == *step && e["text"].as_str().unwrap_or("").contains(text)
            })
        })
        .collect();
    assert!(unexpected.is_empty(), "console errors: {unexpected:?}");
    assert_eq!(errors.len(), allowed.len(), "console errors: {errors:?}");
}

fn assert_canvases_drawn(canvases: &Value) {
    let list = canvases.as_array().expect("a list");
    assert!(!list.is_empty(), "no chart");
    for c in list {
        assert!(c["drawn_pixels"].as_u64().unwrap_or(0) > 0, "{c}");
    }
}

fn open_db(db: &Path) -> Connection {
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("the database")
}

fn count(conn: &Connection, sql: &str, run: i64) -> i64 {
    conn.query_row(sql, [run], |r| r.get(0)).expect("a count")
}

/// A table cell as the dashboard prints a score.
fn score(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{x:.3}"))
}

/// The row of table `rows` whose data attribute `key` is `value`.
fn row<'a>(rows: &'a Value, key: &str, value: &str) -> &'a Value {
    rows.as_array()
        .expect("rows")
        .iter()
        .find(|r| r[key] == value)
        .unwrap_or_else(|| panic!("no row with {key}={value} in {rows}"))
}

fn cells(row: &Value) -> Vec<String> {
    row["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| c.as_str().expect("text").to_string())
        .collect()
}

/// The run's baseline and best evaluations on test, as the report pairs them.
fn test_pair(conn: &Connection, run: i64) -> (i64, i64) {
    let eval_of = |candidate: i64| -> i64 {
        conn.query_row(
            "SELECT id FROM evaluations WHERE candidate_id = ?1 AND split = 'test' AND kind = 'full' \
             AND status = 'done' ORDER BY id DESC LIMIT 1",
            [candidate],
            |r| r.get(0),
        )
        .expect("a test evaluation")
    };
    let baseline: i64 = conn
        .query_row(
            "SELECT id FROM candidates WHERE run_id = ?1 AND origin = 'baseline'",
            [run],
            |r| r.get(0),
        )
        .expect("a baseline");
    let best: Option<i64> = conn
        .query_row(
            "SELECT best_candidate_id FROM runs WHERE id = ?1",
            [run],
            |r| r.get(0),
        )
        .expect("the run");
    (eval_of(baseline), eval_of(best.unwrap_or(baseline)))
}

/// The whole dashboard on a database holding a finished optimization made
/// with the real local model: every page's numbers match the database, the
/// tables sort, a trace opens with its stored response, the evidence gate's
/// refusal is shown and moves nothing, promote and rollback move the alias
/// in the database, an A/B test concludes, and the start form is built from
/// the optimizers' schema.
#[cfg(feature = "local")]
#[test]
fn dashboard_pages_match_the_database_of_a_real_optimization_and_move_aliases() {
    // Six examples (2 train, 2 val, 2 test): eight LM calls, and one demo
    // moves the score of this model on them.
    let (p, config, trainset) = Project::local_model(6);
    let cfg = config.to_str().expect("utf-8 path");
    let ok = |args: &[&str]| {
        let mut all = vec!["--config", cfg];
        all.extend_from_slice(args);
        cli_ok(&p.db, &all)
    };
    ok(&[
        "optimize",
        "--trainset",
        &trainset,
        "--optimizer",
        "labeled",
        "--max-labeled-demos",
        "1",
        "--threads",
        "2",
        "--seed",
        "3",
    ]);
    // A run whose best candidate does not beat the baseline registers no
    // new version (its best is the base program): then a second version is
    // registered by hand, so there is always a v2 to compare and promote.
    let n_versions: i64 = open_db(&p.db)
        .query_row("SELECT COUNT(*) FROM program_versions", [], |r| r.get(0))
        .expect("a count");
    if n_versions < 2 {
        let variant = program_variant(p.dir.path(), "dashboard");
        ok(&["program", "register", variant.to_str().expect("utf-8 path")]);
    }
    // Reuses the run's stored scores and cached calls where it can.
    ok(&[
        "compare",
        "skill_understanding",
        "1",
        "2",
        "--trainset",
        "small",
    ]);
    ok(&[
        "versions",
        "promote",
        "skill_understanding",
        "1",
        "--alias",
        "production",
    ]);
    ok(&[
        "ab",
        "create",
        "skill_understanding",
        "--variant",
        "V1=50",
        "--variant",
        "V2=50",
        "--name",
        "v1-vs-v2",
    ]);
    for (i, key) in ["a", "b", "c", "d", "e", "f"].iter().enumerate() {
        ok(&["ab", "route", "v1-vs-v2", "--key", key]);
        let outcome = if i % 3 == 0 { "--failure" } else { "--success" };
        ok(&["ab", "record", "v1-vs-v2", "--key", key, outcome]);
    }
    let server = Server::start(&p.db, &config, &p.data, &[], None);
    let seen = drive(
        &server,
        json!({"scenario": "tour", "run_id": 1, "program": "skill_understanding", "alias": "production",
               "refused_version": 2, "promote_version": 2, "ab_test": "v1-vs-v2", "winner": "V2"}),
    );
    assert_clean(&seen, &[("promote-refused", "409")]);
    let db = open_db(&p.db);
    let steps = &seen["steps"];

    // Runs: one row per stored run, the optimization's numbers as stored.
    let runs = &steps["runs"];
    let n_runs: i64 = db
        .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs["rows"].as_array().unwrap().len() as i64, n_runs);
    let (baseline, best_val, test): (Option<f64>, Option<f64>, Option<f64>) = db
        .query_row(
            "SELECT baseline_score, best_score, test_score FROM runs WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let traces = count(&db, "SELECT COUNT(*) FROM traces WHERE run_id = ?1", 1);
    assert!(traces > 0);
    let c = cells(row(&runs["rows"], "runId", "1"));
    assert_eq!(c[2], "labeled");
    assert_eq!(c[3], "skill_understanding");
    assert_eq!(c[4], "completed");
    assert_eq!(c[5], score(baseline));
    assert_eq!(c[6], score(test));
    assert_eq!(c[7], traces.to_string());
    let mut ids: Vec<i64> = (1..=n_runs).collect();
    ids.reverse();
    assert_eq!(
        runs["sorted_first_click"],
        json!(ids),
        "numbers sort largest first"
    );
    ids.reverse();
    assert_eq!(runs["sorted_second_click"], json!(ids));

    // The run: facts, leaderboard, wins and losses, best program, traces.
    let run = &steps["run"];
    assert_eq!(
        run["facts"]["best"],
        format!("{} / {}", score(best_val.or(baseline)), score(test))
    );
    assert_eq!(run["facts"]["lm_calls"], traces.to_string());
    let leaders = count(
        &db,
        "SELECT COUNT(*) FROM candidate_leaderboard WHERE run_id = ?1",
        1,
    );
    assert_eq!(run["leaderboard"].as_array().unwrap().len() as i64, leaders);
    // Wins and losses: only a run whose best beat the baseline has them.
    if run["examples_sorted"].is_null() {
        let improved: Option<i64> = db
            .query_row("SELECT best_candidate_id FROM runs WHERE id = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            improved, None,
            "a run with a best candidate shows its wins and losses"
        );
        assert_eq!(run["examples"], json!([]));
    } else {
        let (a, b) = test_pair(&db, 1);
        let (n, wins, losses): (i64, i64, i64) = db
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(b.score > a.score), 0), COALESCE(SUM(b.score < a.score), 0) \
                 FROM scores a JOIN scores b ON a.example_id = b.example_id \
                 WHERE a.evaluation_id = ?1 AND b.evaluation_id = ?2",
                [a, b],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(run["examples"].as_array().unwrap().len() as i64, n);
        assert_eq!(
            (run["wins"].as_i64(), run["losses"].as_i64()),
            (Some(wins), Some(losses))
        );
        for e in run["examples"].as_array().unwrap() {
            let id: i64 = e["exampleId"].as_str().unwrap().parse().unwrap();
            let stored: f64 = db
                .query_row(
                    "SELECT score FROM scores WHERE evaluation_id = ?1 AND example_id = ?2",
                    [b, id],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(cells(e)[4], format!("{stored:.3}"), "example {id}");
        }
        // "Sort by Best score" puts the highest first.
        let sorted: Vec<f64> = run["examples_sorted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| {
                db.query_row(
                    "SELECT score FROM scores WHERE evaluation_id = ?1 AND example_id = ?2",
                    [b, id.as_i64().unwrap()],
                    |r| r.get(0),
                )
                .unwrap()
            })
            .collect();
        assert!(sorted.windows(2).all(|w| w[0] >= w[1]), "{sorted:?}");
    }
    let val_points = count(
        &db,
        "SELECT COUNT(*) FROM evaluations WHERE run_id = ?1 AND split = 'val' AND status = 'done' AND mean_score IS NOT NULL",
        1,
    );
    assert_eq!(run["chart_points"].as_i64(), Some(val_points));
    let spec: String = db
        .query_row(
            "SELECT c.spec_json FROM runs r JOIN candidates c ON c.id = COALESCE(r.best_candidate_id, \
             (SELECT id FROM candidates WHERE run_id = r.id AND origin = 'baseline')) WHERE r.id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let spec: Value = serde_json::from_str(&spec).unwrap();
    assert_eq!(
        run["instructions"][0],
        spec["predictors"][0]["signature"]["instructions"]
    );
    assert_eq!(
        run["demos"].as_u64(),
        spec["predictors"][0]["demos"]
            .as_array()
            .map(|d| d.len() as u64)
    );
    assert_eq!(
        run["traces"].as_array().unwrap().len() as i64,
        traces.min(50)
    );
    let first: i64 = db
        .query_row("SELECT MIN(id) FROM traces WHERE run_id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(run["opened_trace"].as_i64(), Some(first));
    let response: Option<String> = db
        .query_row(
            "SELECT response_text FROM traces WHERE id = ?1",
            [first],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(run["opened_response"], response.unwrap_or_default());
    assert!(run["opened_request"].as_str().unwrap().contains("prompt"));
    assert_canvases_drawn(&run["canvases"]);

    // Programs: lineage as stored, the comparison's interval, and the alias
    // moved by promote and moved back by rollback; the refusal moved nothing.
    let prog = &steps["program"];
    // Each version is drawn one level below its parent.
    let parents: Vec<(i64, Option<i64>)> = db
        .prepare(
            "SELECT v.version, (SELECT version FROM program_versions WHERE id = v.parent_id) \
             FROM program_versions v ORDER BY v.version",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let depth = |mut v: i64| {
        let mut d = 0;
        while let Some(Some(parent)) = parents.iter().find(|(x, _)| *x == v).map(|(_, p)| *p) {
            d += 1;
            v = parent;
        }
        d
    };
    let expected: Vec<Value> = parents
        .iter()
        .map(|(v, _)| json!({"version": v, "depth": depth(*v)}))
        .collect();
    let mut drawn = prog["lineage"].as_array().expect("a list").clone();
    drawn.sort_by_key(|x| x["version"].as_i64());
    assert_eq!(drawn, expected);
    let (low, high, diff): (f64, f64, f64) = db
        .query_row(
            "SELECT ci_low, ci_high, mean_diff FROM comparisons",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let cmp = cells(&prog["comparisons"][0]);
    assert_eq!(cmp[7], format!("{diff:.3}"));
    assert_eq!(cmp[8], format!("[{low:.3}, {high:.3}] at 95%"));
    assert_canvases_drawn(&prog["canvases"]);
    assert_eq!(prog["refusal"]["status"], 409);
    assert!(
        prog["refusal"]["text"]
            .as_str()
            .unwrap()
            .contains("no stored comparison"),
        "{}",
        prog["refusal"]
    );
    let moves: Vec<(String, Option<i64>, i64, Option<String>)> = db
        .prepare(
            "SELECT h.action, f.version, t.version, h.reason FROM alias_history h \
             LEFT JOIN program_versions f ON f.id = h.from_version_id \
             JOIN program_versions t ON t.id = h.to_version_id WHERE h.alias = 'production' ORDER BY h.id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let dashboard = Some("from the dashboard".to_string());
    assert_eq!(
        moves[1..],
        [
            ("promote".to_string(), Some(1), 2, dashboard.clone()),
            ("rollback".to_string(), Some(2), 1, dashboard),
        ],
        "promote moved production to v2, rollback back to v1, the refusal nothing"
    );
    assert_eq!(
        prog["history_after_rollback"].as_array().unwrap().len(),
        moves.len()
    );
    let now: i64 = db
        .query_row(
            "SELECT v.version FROM aliases a JOIN program_versions v ON v.id = a.version_id WHERE a.alias = 'production'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(now, 1);

    // A/B: requests and outcomes per variant as stored; conclude stored.
    let ab = &steps["ab"];
    for v in ab["variants"].as_array().unwrap() {
        let name = v["variant"].as_str().unwrap();
        let (requests, outcomes): (i64, i64) = db
            .query_row(
                "SELECT (SELECT COUNT(*) FROM ab_assignments s WHERE s.variant_id = v.id), \
                 (SELECT COUNT(*) FROM ab_outcomes o JOIN ab_assignments s ON s.id = o.assignment_id \
                  WHERE s.variant_id = v.id) \
                 FROM ab_variants v WHERE v.name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let c = cells(v);
        assert_eq!(
            (c[3].as_str(), c[4].as_str()),
            (requests.to_string().as_str(), outcomes.to_string().as_str()),
            "{name}"
        );
    }
    assert_canvases_drawn(&ab["canvases"]);
    let concluded: Option<(String, Option<String>)> = db
        .query_row(
            "SELECT t.status, w.name FROM ab_tests t LEFT JOIN ab_variants w ON w.id = t.winner_variant_id \
             WHERE t.name = 'v1-vs-v2'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .unwrap();
    assert_eq!(concluded, Some(("concluded".into(), Some("V2".into()))));

    // Start a job: the form follows the optimizers' schema.
    let start = &steps["start"];
    assert_eq!(start["optimizers"], json!(OPTIMIZERS));
    assert_eq!(start["labeled_k"]["max"], "256");
    assert_eq!(start["labeled_k"]["value"], "16");
    for field in [
        "auto",
        "num_trials",
        "max_bootstrapped_demos",
        "max_labeled_demos",
    ] {
        assert!(
            start["miprov2_fields"]
                .as_array()
                .unwrap()
                .contains(&json!(field)),
            "{start}"
        );
    }
}

/// A job started from the form (its settings generated from the schema)
/// runs on a slow stub LM; the run page follows its event stream: examples
/// scored, chart points, events and LM calls grow while it runs, the budget
/// used, an ETA and a calls-per-second rate are shown, and at the end the page shows the
/// stored run (status, every validation point, the leaderboard).
#[test]
fn dashboard_live_run_page_advances_with_a_job_started_from_the_form() {
    let p = Project::new(400);
    cli_ok(
        &p.db,
        &[
            "program",
            "register",
            "config/programs/skill_understanding.yaml",
        ],
    );
    let server = p.serve(&[]);
    let seen = drive(
        &server,
        json!({"scenario": "live", "program": "skill_understanding", "trainset_file": "small.json",
               "optimizer": "random-search",
               "settings": {"num_candidates": 3, "max_bootstrapped_demos": 1, "max_labeled_demos": 2},
               "max_calls": 500}),
    );
    assert_clean(&seen, &[]);
    let live = &seen["steps"]["live"];
    let samples = live["samples"].as_array().expect("samples");
    let series =
        |k: &str| -> Vec<i64> { samples.iter().map(|s| s[k].as_i64().unwrap_or(0)).collect() };
    for k in ["done", "points", "events", "calls"] {
        let s = series(k);
        let mut distinct = s.clone();
        distinct.dedup();
        assert!(
            distinct.len() >= 3,
            "{k} advanced in fewer than 3 steps: {s:?}"
        );
        assert!(s.windows(2).all(|w| w[0] <= w[1]), "{k} went back: {s:?}");
    }
    assert!(
        samples.iter().any(|s| s["eta"]
            .as_str()
            .is_some_and(|e| e.ends_with('s') || e.ends_with('m'))),
        "no ETA shown: {samples:?}"
    );
    assert!(
        samples.iter().any(|s| s["rate"]
            .as_str()
            .and_then(|r| r.parse::<f64>().ok())
            .is_some_and(|r| r > 0.0)),
        "no LM calls per second shown: {samples:?}"
    );
    assert!(
        samples.iter().any(|s| s["budget"]
            .as_str()
            .is_some_and(|b| b.ends_with(" of 500 LM calls") && !b.starts_with("0 "))),
        "no budget used shown: {samples:?}"
    );
    let run = live["run_id"].as_i64().expect("the run id");
    let db = open_db(&p.db);
    let status: String = db
        .query_row("SELECT status FROM runs WHERE id = ?1", [run], |r| r.get(0))
        .unwrap();
    assert_eq!(status, "completed");
    assert_eq!(live["final_status"], status);
    let optimizer: String = db
        .query_row("SELECT optimizer FROM runs WHERE id = ?1", [run], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(optimizer, "random-search");
    let points = count(
        &db,
        "SELECT COUNT(*) FROM evaluations WHERE run_id = ?1 AND split = 'val' AND status = 'done' AND mean_score IS NOT NULL",
        run,
    );
    assert_eq!(live["final_points"].as_i64(), Some(points));
    let leaders = count(
        &db,
        "SELECT COUNT(*) FROM candidate_leaderboard WHERE run_id = ?1",
        run,
    );
    assert_eq!(
        live["leaderboard"].as_array().unwrap().len() as i64,
        leaders
    );
    assert_canvases_drawn(&live["canvases"]);
}

/// With a token configured the page loads (it holds no data), asks for the
/// token when the API answers 401, keeps it in the tab's sessionStorage and
/// sends it as a bearer header from then on.
#[test]
fn dashboard_asks_for_the_token_and_sends_it_as_a_bearer_header() {
    let p = Project::new(0);
    cli_ok(
        &p.db,
        &[
            "program",
            "register",
            "config/programs/skill_understanding.yaml",
        ],
    );
    let server = Server::start(&p.db, &p.config, &p.data, &[], Some("s3cret"));
    let seen = drive(&server, json!({"scenario": "token", "token": "s3cret"}));
    assert_clean(&seen, &[("token-asked", "401")]);
    let t = &seen["steps"]["token"];
    assert_eq!(t["dialog_label"], "Token");
    assert_eq!(t["stored"], "s3cret");
    let requests = t["api_requests"].as_array().expect("requests");
    assert_eq!(
        requests[0]["authorization"],
        Value::Null,
        "the first try has no token"
    );
    assert!(requests.len() >= 2);
    for r in &requests[1..] {
        assert_eq!(r["authorization"], "Bearer s3cret", "{r}");
    }
    let n: i64 = open_db(&p.db)
        .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(t["rows"].as_array().unwrap().len() as i64, n);
}

/// The pages come from the binary: `/` and every file under `/dashboard/`
/// with a content security policy that allows only this origin, Chart.js
/// byte for byte the vendored file, an unknown file 404; and the token
/// guards the API, not the pages.
#[test]
fn dashboard_files_are_served_from_the_binary_with_a_content_security_policy() {
    let p = Project::new(0);
    let server = Server::start(&p.db, &p.config, &p.data, &[], Some("tok"));
    let index = server.get("/");
    assert_eq!(index.status(), 200);
    let csp = index.headers()["content-security-policy"]
        .to_str()
        .expect("ASCII")
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert!(index.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = index.text().expect("text");
    let files: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("/dashboard/"))
        .collect();
    assert!(files.contains(&"/dashboard/app.js") && files.contains(&"/dashboard/chart.umd.min.js"));
    for f in &files {
        assert_eq!(server.get(f).status(), 200, "{f}");
    }
    // The modules app.js imports are served too.
    let app = server.get("/dashboard/app.js").text().expect("text");
    for module in app
        .split('\'')
        .filter(|s| s.starts_with("./") && s.ends_with(".js"))
    {
        let r = server.get(&format!("/dashboard/{}", &module[2..]));
        assert_eq!(r.status(), 200, "{module}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
    }
    let chart = server
        .get("/dashboard/chart.umd.min.js")
        .text()
        .expect("text");
    let vendored = std::fs::read_to_string(root().join("assets/vendor/chartjs/chart.umd.min.js"))
        .expect("the vendored Chart.js");
    assert!(chart == vendored, "Chart.js differs from the vendored file");
    assert_eq!(server.get("/dashboard/nope.js").status(), 404);
    assert_eq!(server.get("/api/v1/runs").status(), 401);
}
