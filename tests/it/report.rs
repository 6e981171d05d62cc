//! Issue 16, parts 4 and 5: `skill-fleet report` (Markdown, HTML, JSON, CSV)
//! and `skill-fleet traces export`, on runs made through the binary against
//! the loopback stub LM. (The report of a real-model run is checked in
//! `optimize.rs`, on a run that test makes anyway.)

use crate::util::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// An API key the runs below are given; it must never reach a report or an export.
const SECRET: &str = "sk-test-0123456789abcdefSECRET";

/// Markup in a model's answer: a report must show it as text.
const HOSTILE: &str = "</script><script>alert(1)</script><b>bold</b>";

/// A stub model that answers only with demos in the prompt (zero-shot it
/// writes nothing parsable, so the baseline scores the program's fallback and
/// the optimized program wins examples), with markup in its answers.
fn demo_sensitive(prompt: &str) -> String {
    if !is_task(prompt) {
        return " Place the skill in the taxonomy.".into();
    }
    // One separator before the input; more means demo blocks precede it.
    if prompt.matches("\n---\n").count() >= 2 {
        SKILL_ANSWER.replace("graceful shutdown", HOSTILE)
    } else {
        " I am not sure.".into()
    }
}

/// Runs the binary with the secret in its environment.
fn run(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skill-fleet"))
        .current_dir(root())
        .env("OPENAI_API_KEY", SECRET)
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("the skill-fleet binary runs")
}

fn run_ok(db: &Path, args: &[&str]) -> String {
    let out = run(db, args);
    assert!(
        out.status.success(),
        "skill-fleet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A finished random-search run against the stub: (server, run id).
fn stub_optimize_run(dir: &Path, db: &Path) -> (StubLmServer, i64) {
    let server = StubLmServer::start_with(std::sync::Arc::new(demo_sensitive), Duration::ZERO);
    let config = stub_config(dir, &server.url);
    let ts = small_trainset(dir, 16);
    let out = run_ok(
        db,
        &[
            "--json",
            "--config",
            config.to_str().unwrap(),
            "optimize",
            "--trainset",
            &ts,
            "--optimizer",
            "random-search",
            "--num-candidates",
            "3",
            "--max-labeled-demos",
            "2",
            "--max-bootstrapped-demos",
            "2",
        ],
    );
    let report: Value = serde_json::from_str(&out).expect("optimize prints JSON");
    let id = report["run_id"].as_i64().expect("a run id");
    (server, id)
}

/// Renders run `run_id` in all four formats through the binary (files in
/// `dir`) and checks each is whole: Markdown with its headline sections, JSON
/// naming the run, CSV with its header and one row per compared example, and
/// HTML that opens in headless Chromium without errors, with a drawn chart.
/// Returns the JSON report. Used on the real-model run in `optimize.rs`.
pub fn check_report_in_every_format(db: &Path, run_id: i64, dir: &Path) -> Value {
    let id = run_id.to_string();
    let md = cli_ok(db, &["report", &id, "--format", "md"]);
    for section in [
        "## Configuration",
        "## Scores",
        "## Score over trials",
        "## LM usage",
        "## Best program",
    ] {
        assert!(md.contains(section), "missing {section}:\n{md}");
    }
    let json = json_report(db, run_id);
    assert_eq!(json["run"]["id"], run_id);
    let csv_path = dir.join(format!("run{id}.csv"));
    cli_ok(
        db,
        &[
            "report",
            &id,
            "--format",
            "csv",
            "-o",
            csv_path.to_str().unwrap(),
        ],
    );
    let mut rd = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(rd.headers().unwrap().len(), 13);
    let n_compared = json["comparison"]["examples"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(rd.records().count(), n_compared);
    let html_path = dir.join(format!("run{id}.html"));
    cli_ok(
        db,
        &[
            "report",
            &id,
            "--format",
            "html",
            "-o",
            html_path.to_str().unwrap(),
        ],
    );
    let verdict = browser_check(&html_path, &dir.join(format!("run{id}.png")));
    assert_page_renders_cleanly(&verdict);
    assert_eq!(
        verdict["canvases"].as_array().unwrap().len(),
        1,
        "{verdict}"
    );
    json
}

fn json_report(db: &Path, run_id: i64) -> Value {
    serde_json::from_str(&run_ok(
        db,
        &["report", &run_id.to_string(), "--format", "json"],
    ))
    .expect("the JSON report parses")
}

#[test]
fn json_report_of_an_optimize_run_matches_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let (_server, id) = stub_optimize_run(dir.path(), &db);
    let r = json_report(&db, id);

    let row = &query(
        &db,
        &format!("SELECT * FROM run_summary WHERE run_id = {id}"),
    )[0];
    assert_eq!(r["run"]["id"], id);
    assert_eq!(r["run"]["optimizer"], "random-search");
    assert_eq!(
        r["config"]["optimizer"]["kind"], "random-search",
        "{}",
        r["config"]
    );
    assert_eq!(r["scores"]["baseline_val"], row["baseline_score"]);
    assert_eq!(r["scores"]["best_test"], row["test_score"]);
    // Split sizes add up to the trainset.
    let t = &r["trainset"];
    let split = &t["split"];
    assert_eq!(
        split["train"].as_i64().unwrap()
            + split["val"].as_i64().unwrap()
            + split["test"].as_i64().unwrap(),
        t["n_examples"].as_i64().unwrap(),
        "{t}"
    );
    assert_eq!(t["n_examples"], 16);
    // LM usage is the traces table's.
    let tr = &query(
        &db,
        &format!("SELECT COUNT(*) AS n, SUM(cache_hit) AS hits, SUM(prompt_tokens) AS pt FROM traces WHERE run_id = {id}"),
    )[0];
    assert_eq!(r["lm"]["calls"], tr["n"]);
    assert_eq!(r["lm"]["cache_hits"], tr["hits"]);
    assert_eq!(r["lm"]["prompt_tokens"], tr["pt"]);
    let p50 = r["lm"]["latency_p50_ms"].as_f64().expect("a p50");
    let p99 = r["lm"]["latency_p99_ms"].as_f64().expect("a p99");
    assert!(p50 <= p99, "{}", r["lm"]);
    assert_eq!(r["lm"]["roles"][0]["model"], "stub");
    // Score over trials: one point per validation evaluation; best so far never falls.
    let trials = r["trials"].as_array().unwrap();
    let n_val = query(
        &db,
        &format!("SELECT COUNT(*) AS n FROM evaluations WHERE run_id = {id} AND split = 'val' AND status = 'done'"),
    )[0]["n"]
        .as_u64()
        .unwrap();
    assert_eq!(trials.len() as u64, n_val);
    assert!(trials.len() >= 3, "{trials:?}");
    let bests: Vec<f64> = trials
        .iter()
        .filter_map(|t| t["best_so_far"].as_f64())
        .collect();
    assert!(bests.windows(2).all(|w| w[0] <= w[1]), "{bests:?}");
    assert_eq!(bests.last().copied(), r["scores"]["best_val"].as_f64());
    // The leaderboard is the view's.
    let lb = query(
        &db,
        &format!("SELECT candidate_id, rank FROM candidate_leaderboard WHERE run_id = {id} ORDER BY rank, candidate_id"),
    );
    let got: Vec<(Value, Value)> = r["leaderboard"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["candidate_id"].clone(), l["rank"].clone()))
        .collect();
    let want: Vec<(Value, Value)> = lb
        .iter()
        .map(|l| (l["candidate_id"].clone(), l["rank"].clone()))
        .collect();
    assert_eq!(got, want);
    // Wins and losses on test agree with the example_wins_losses view.
    let c = &r["comparison"];
    assert_eq!(c["split"], "test", "{c}");
    let outcomes = query(
        &db,
        &format!(
            "SELECT outcome, COUNT(*) AS n FROM example_wins_losses WHERE a_evaluation_id = {} AND b_evaluation_id = {} GROUP BY outcome",
            c["baseline_evaluation_id"], c["best_evaluation_id"]
        ),
    );
    for o in &outcomes {
        let key = match o["outcome"].as_str().unwrap() {
            "win" => "wins",
            "loss" => "losses",
            _ => "ties",
        };
        assert_eq!(c[key], o["n"], "{key}: {c}");
    }
    assert!(
        c["wins"].as_u64().unwrap() > 0,
        "the demos should win somewhere: {c}"
    );
    assert_eq!(
        c["examples"].as_array().unwrap().len() as u64,
        split["test"].as_u64().unwrap()
    );
    // The best program's demos are the best candidate's.
    let best = r["scores"]["best_candidate_id"].as_i64().unwrap();
    let spec: Value = serde_json::from_str(
        query(
            &db,
            &format!("SELECT spec_json FROM candidates WHERE id = {best}"),
        )[0]["spec_json"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        r["best_program"]["predictors"][0]["demos"],
        spec["predictors"][0]["demos"]
    );
    assert!(!r["best_program"]["predictors"][0]["demos"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(!r.to_string().contains(SECRET));
}

#[test]
fn markdown_csv_and_html_reports_have_every_section_and_escape_markup() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let (_server, id) = stub_optimize_run(dir.path(), &db);
    let run_id = id.to_string();

    let md = run_ok(&db, &["report", &run_id, "--format", "md"]);
    for section in [
        "## Configuration",
        "### LM roles",
        "## Trainset",
        "## Scores",
        "## Score over trials",
        "## Candidate leaderboard",
        "## Wins and losses of best vs baseline (test)",
        "## LM usage",
        "## Best program",
        "latency p50 / p90 / p99",
    ] {
        assert!(md.contains(section), "missing {section}:\n{md}");
    }
    assert!(!md.contains(SECRET));

    let csv_path = dir.path().join("r.csv");
    run_ok(
        &db,
        &[
            "report",
            &run_id,
            "--format",
            "csv",
            "-o",
            csv_path.to_str().unwrap(),
        ],
    );
    let mut rd = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(rd.headers().unwrap().get(4), Some("outcome"));
    let recs: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    let n_test = query(&db, &format!("SELECT s.id FROM runs r JOIN split_assignments a ON a.split_id = r.split_id JOIN splits s ON s.id = r.split_id WHERE r.id = {id} AND a.part = 'test'")).len();
    assert_eq!(recs.len(), n_test);
    assert!(recs.iter().any(|r| &r[4] == "win"));
    // A prediction with markup and commas survives CSV quoting as JSON.
    assert!(recs.iter().any(|r| r[8].contains(HOSTILE)), "{recs:?}");

    let html_path = dir.path().join("r.html");
    run_ok(
        &db,
        &[
            "report",
            &run_id,
            "--format",
            "html",
            "-o",
            html_path.to_str().unwrap(),
        ],
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        !html.contains("<script>alert(1)"),
        "markup from data reached the page"
    );
    assert!(html.contains("&lt;/script&gt;&lt;script&gt;alert(1)"));
    assert!(html.contains("<th scope=\"col\">val score</th>"));
    assert!(html.contains("Chart.js v4"), "the chart library is inlined");
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    assert!(!html.contains(SECRET));
    let verdict = browser_check(&html_path, &dir.path().join("r.png"));
    assert_page_renders_cleanly(&verdict);
    assert_eq!(
        verdict["canvases"].as_array().unwrap().len(),
        1,
        "{verdict}"
    );
    // The all-formats check the real-model test (optimize.rs) runs, here on the stub run.
    check_report_in_every_format(&db, id, dir.path());
}

#[test]
fn report_of_an_eval_run_lists_its_scores_without_optimizer_sections() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let server = StubLmServer::start(SKILL_ANSWER, Duration::ZERO);
    let config = stub_config(dir.path(), &server.url);
    let ts = small_trainset(dir.path(), 6);
    run_ok(&db, &["trainset", "import", &ts, "--name", "small"]);
    run_ok(
        &db,
        &[
            "--config",
            config.to_str().unwrap(),
            "eval",
            "--trainset",
            "small",
        ],
    );
    let id = query(&db, "SELECT id FROM runs")[0]["id"].as_i64().unwrap();

    let r = json_report(&db, id);
    assert_eq!(r["run"]["kind"], "eval");
    assert_eq!(r["example_scores"].as_array().unwrap().len(), 6);
    assert_eq!(r["trials"], serde_json::json!([]));
    assert!(r["comparison"].is_null());
    assert_eq!(r["lm"]["calls"].as_i64().unwrap(), 6);
    let md = run_ok(&db, &["report", &id.to_string()]);
    assert!(md.contains("## Per-example scores"), "{md}");
    assert!(!md.contains("## Score over trials"), "{md}");
    assert!(!md.contains("## Candidate leaderboard"), "{md}");
    let csv = run_ok(&db, &["report", &id.to_string(), "--format", "csv"]);
    assert!(csv.starts_with("example_id,idx,input,score,"), "{csv}");
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), 6, "{csv}");
    let prediction: Value = serde_json::from_str(&rows[0][4]).unwrap();
    assert_eq!(
        prediction["name"], "tokio-task-cancellation",
        "{prediction}"
    );
    // An HTML page without a chart still renders.
    let html_path = dir.path().join("e.html");
    run_ok(
        &db,
        &[
            "report",
            &id.to_string(),
            "--format",
            "html",
            "-o",
            html_path.to_str().unwrap(),
        ],
    );
    assert!(!std::fs::read_to_string(&html_path)
        .unwrap()
        .contains("Chart.js v4"));
}

#[test]
fn report_of_an_unknown_run_or_format_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let out = run(&db, &["report", "42"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run not found: 42"), "{err}");
    let out = run(&db, &["report", "42", "--format", "pdf"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("report format `pdf`: expected md, html, json or csv"),
        "{err}"
    );
}

#[test]
fn trace_export_writes_every_trace_of_a_run_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let (_server, id) = stub_optimize_run(dir.path(), &db);
    // A second run's traces must be left out of a --run export.
    let other_server = StubLmServer::start(SKILL_ANSWER, Duration::ZERO);
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other_config = stub_config(&other_dir, &other_server.url);
    let ts = small_trainset(dir.path(), 4);
    run_ok(&db, &["trainset", "import", &ts, "--name", "four"]);
    run_ok(
        &db,
        &[
            "--config",
            other_config.to_str().unwrap(),
            "eval",
            "--trainset",
            "four",
            "--no-cache",
        ],
    );
    let n_run = query(
        &db,
        &format!("SELECT COUNT(*) AS n FROM traces WHERE run_id = {id}"),
    )[0]["n"]
        .as_u64()
        .unwrap();
    let n_all = query(&db, "SELECT COUNT(*) AS n FROM traces")[0]["n"]
        .as_u64()
        .unwrap();
    assert!(n_all > n_run && n_run > 0);

    let jsonl = dir.path().join("t.jsonl");
    run_ok(
        &db,
        &[
            "traces",
            "export",
            "--run",
            &id.to_string(),
            "--format",
            "jsonl",
            "-o",
            jsonl.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len() as u64, n_run);
    assert!(rows.iter().all(|r| r["run_id"] == id));
    assert!(rows[0]["request_json"].as_str().unwrap().contains("prompt"));
    assert!(!text.contains(SECRET));
    assert!(!text.to_ascii_lowercase().contains("authorization"));

    let csv_path = dir.path().join("t.csv");
    run_ok(
        &db,
        &[
            "traces",
            "export",
            "--format",
            "csv",
            "-o",
            csv_path.to_str().unwrap(),
        ],
    );
    let mut rd = csv::Reader::from_path(&csv_path).unwrap();
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, skill_fleet::report::traces::CSV_HEADER);
    assert_eq!(header.last().map(String::as_str), Some("selected_demos"));
    assert_eq!(rd.records().count() as u64, n_all);
    assert!(!std::fs::read_to_string(&csv_path).unwrap().contains(SECRET));

    // --since: a date in the future selects nothing; one in the past, everything.
    run_ok(
        &db,
        &[
            "traces",
            "export",
            "--since",
            "2999-01-01",
            "-o",
            jsonl.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 0);
    run_ok(
        &db,
        &[
            "traces",
            "export",
            "--since",
            "2000-01-01T00:00:00+01:00",
            "-o",
            jsonl.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(&jsonl).unwrap().lines().count() as u64,
        n_all
    );
    let out = run(
        &db,
        &[
            "traces",
            "export",
            "--since",
            "last tuesday",
            "-o",
            jsonl.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--since `last tuesday`: expected an RFC 3339 time"),
        "{err}"
    );
    let out = run(
        &db,
        &[
            "traces",
            "export",
            "--run",
            "999",
            "-o",
            jsonl.to_str().unwrap(),
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("run not found: 999"));
}
