//! The jobs layer through the real binary, against real SQLite files and a
//! stub OpenAI-compatible server on loopback: runs always end in a finished
//! status, and an optimization killed with SIGKILL during a burst of writes
//! resumes without scoring anything twice beyond the writer's window.

use crate::util::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The one run in `db`, as `runs list --json` shows it.
fn only_run(db: &Path) -> serde_json::Value {
    let runs: Vec<serde_json::Value> =
        serde_json::from_str(&cli_ok(db, &["--json", "runs", "list"])).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

#[test]
fn a_missing_model_file_leaves_a_failed_run_with_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        "lm:\n  roles:\n    task: {provider: local, model: /nonexistent/model.gguf, mode: completion}\n",
    )
    .unwrap();
    let ts = small_trainset(dir.path(), 6);
    cli_ok(&db, &["trainset", "import", &ts, "--name", "small"]);
    let out = cli(
        &db,
        &[
            "--config",
            config.to_str().unwrap(),
            "eval",
            "--trainset",
            "small",
        ],
    );
    assert!(!out.status.success());
    let run = only_run(&db);
    assert_eq!(run["status"], "failed", "{run}");
    let error = run["error"].as_str().unwrap();
    assert!(error.contains("/nonexistent/model.gguf"), "{error}");
    assert!(!run["finished_at"].is_null(), "{run}");
}

#[test]
fn an_unknown_metric_leaves_a_failed_run_with_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let server = StubLmServer::start(SKILL_ANSWER, Duration::ZERO);
    let config = stub_config(dir.path(), &server.url);
    let ts = small_trainset(dir.path(), 10);
    let out = cli(
        &db,
        &[
            "--config",
            config.to_str().unwrap(),
            "optimize",
            "--trainset",
            &ts,
            "--optimizer",
            "labeled",
            "--metric",
            "no_such_metric",
        ],
    );
    assert!(!out.status.success());
    let run = only_run(&db);
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("no_such_metric"),
        "{run}"
    );
    assert_eq!(server.hits(), 0, "no model call before the metric is known");
}

/// `optimize` flags for a random search of 6 candidates on 24 examples
/// against the stub server, without the response cache (every score is a
/// server request, so requests count scores computed).
fn search_args<'a>(config: &'a str, ts: &'a str) -> Vec<&'a str> {
    vec![
        "--config",
        config,
        "--json",
        "optimize",
        "--trainset",
        ts,
        "--optimizer",
        "random-search",
        "--num-candidates",
        "6",
        "--max-bootstrapped-demos",
        "2",
        "--max-labeled-demos",
        "4",
        "--seed",
        "5",
        "--threads",
        "2",
        "--no-cache",
    ]
}

/// Kill -9 in the middle of an optimization's burst of score writes, then
/// `--resume`: the run completes with the same result as an uninterrupted
/// one, no evaluation is stored twice, and the scores computed again are at
/// most the window the store writer states (examples in flight plus writes
/// queued but not committed: here at most 2 threads' worth, twice).
#[test]
fn sigkill_during_a_burst_of_writes_then_resume_scores_nothing_twice_beyond_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let ts = small_trainset(dir.path(), 24);

    // Reference: the same optimization, uninterrupted.
    let reference_server = StubLmServer::start(SKILL_ANSWER, Duration::from_millis(4));
    let reference_config = stub_config(dir.path(), &reference_server.url);
    let reference_db = dir.path().join("reference.db");
    let reference: serde_json::Value = serde_json::from_str(&cli_ok(
        &reference_db,
        &search_args(reference_config.to_str().unwrap(), &ts),
    ))
    .unwrap();
    let full = reference_server.hits();
    assert!(full > 60, "the reference made only {full} requests");

    let server = StubLmServer::start(SKILL_ANSWER, Duration::from_millis(4));
    let config = dir.path().join("killed");
    std::fs::create_dir_all(&config).unwrap();
    let config = stub_config(&config, &server.url);
    let db = dir.path().join("killed.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_skill-fleet"))
        .current_dir(root())
        .arg("--db")
        .arg(&db)
        .args(search_args(config.to_str().unwrap(), &ts))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while server.hits() < full / 2 {
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before_resume = server.hits();
    let run = only_run(&db);
    assert_eq!(run["status"], "running", "killed mid-run: {run}");
    let stored: i64 = query(&db, "SELECT COUNT(*) AS n FROM scores")[0]["n"]
        .as_i64()
        .unwrap();
    assert!(stored > 0, "scores were committed before the kill");

    let mut args = search_args(config.to_str().unwrap(), &ts);
    args.extend(["--resume", "1"]);
    let resumed: serde_json::Value = serde_json::from_str(&cli_ok(&db, &args)).unwrap();
    assert_eq!(resumed["status"], "completed", "{resumed}");
    for key in ["best_val", "baseline_test", "optimized_test", "candidates"] {
        assert_eq!(
            resumed[key], reference[key],
            "{key}: {resumed} vs {reference}"
        );
    }
    let recomputed = server.hits() as i64 - full as i64;
    eprintln!(
        "reference {full} requests; killed after {before_resume} with {stored} scores stored; \
         {recomputed} computed again after --resume"
    );
    assert!(
        (0..=4).contains(&recomputed),
        "{recomputed} scores computed again (killed after {before_resume} of {full} requests)"
    );
    // Every full evaluation of a candidate on a split exists once: the
    // resumed run continued the evaluations it found.
    let twice = query(
        &db,
        "SELECT candidate_id, split, COUNT(*) AS c FROM evaluations WHERE kind = 'full' \
         GROUP BY candidate_id, split HAVING c > 1",
    );
    assert!(twice.is_empty(), "evaluations stored twice: {twice:?}");
}

/// A trainset that does not fit the program is refused before any LM call:
/// the error names the example and the missing field, and no run is stored.
#[test]
fn eval_and_optimize_refuse_examples_missing_the_programs_fields_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let server = StubLmServer::start(SKILL_ANSWER, Duration::ZERO);
    let config = stub_config(dir.path(), &server.url);
    let config = config.to_str().unwrap();
    let qa = data("generic_qa.jsonl");
    cli_ok(
        &db,
        &["trainset", "import", qa.to_str().unwrap(), "--name", "qa"],
    );
    for args in [
        vec!["--config", config, "eval", "--trainset", "qa"],
        vec![
            "--config",
            config,
            "optimize",
            "--trainset",
            "qa",
            "--optimizer",
            "labeled",
        ],
    ] {
        let out = cli(&db, &args);
        assert!(!out.status.success(), "{args:?} ran");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("example #0") && err.contains("task_description"),
            "{args:?}: {err}"
        );
    }
    let runs: Vec<serde_json::Value> =
        serde_json::from_str(&cli_ok(&db, &["--json", "runs", "list"])).unwrap();
    assert!(runs.is_empty(), "{runs:?}");
    assert_eq!(server.hits(), 0);
}
