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

/// The scores a SIGKILL may cost with `threads` examples in flight and a
/// model answering in `delay`: those in flight, plus those finished within
/// the store writer's durability bound (`MAX_DELAY`) before the kill.
fn kill_window(threads: u32, delay: Duration) -> i64 {
    let per_thread = skill_fleet::store::MAX_DELAY.as_secs_f64() / delay.as_secs_f64();
    (threads as f64 * (1.0 + per_thread.ceil())) as i64
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

/// A deterministic stand-in for a model whose quality depends on the prompt:
/// an instruction request gets one of three instructions chosen by a hash of
/// its prompt. A program run gets one of three valid answers chosen by a hash
/// of the prompt (so instructions and demos change scores) — but half the
/// time an unparsable one, unless its prompt holds the third instruction
/// ("variant 2"): there is an instruction worth finding.
fn prompt_dependent(prompt: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    prompt.hash(&mut h);
    let k = h.finish();
    if !is_task(prompt) {
        return format!(
            " Place the skill in the taxonomy and write its metadata, variant {}.",
            k % 3
        );
    }
    if k.is_multiple_of(2) && !prompt.contains("variant 2") {
        return " garbage".to_string();
    }
    let answers = [
        SKILL_ANSWER.to_string(),
        SKILL_ANSWER.replace("rust/", "python/"),
        SKILL_ANSWER.replace("minimal", "comprehensive"),
    ];
    answers[((k / 2) % 3) as usize].clone()
}

/// Kills `optimize` (with `optimizer_args`) with SIGKILL in the middle of
/// its burst of score writes — once the stub server has answered half the
/// program runs an uninterrupted run makes — and resumes it: the run
/// completes as the uninterrupted one did (same scores, same best version),
/// no evaluation is stored twice, and the program runs made again are at
/// most the window the store writer states (see [`kill_window`]). The
/// response cache is off, so every score is a server request.
fn kill_and_resume_ends_like_an_uninterrupted_run(optimizer_args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let ts = small_trainset(dir.path(), 24);
    let args = |config: &Path| -> Vec<String> {
        let mut a: Vec<String> = [
            "--config",
            config.to_str().unwrap(),
            "--json",
            "optimize",
            "--trainset",
            &ts,
            "--seed",
            "11",
            "--threads",
            "2",
            "--no-cache",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(optimizer_args.iter().map(|s| s.to_string()));
        a
    };
    let run_cli = |db: &Path, a: &[String]| -> serde_json::Value {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        serde_json::from_str(&cli_ok(db, &a)).unwrap()
    };

    let reference_server = StubLmServer::start_with(
        std::sync::Arc::new(prompt_dependent),
        Duration::from_millis(2),
    );
    let reference_dir = dir.path().join("reference");
    std::fs::create_dir_all(&reference_dir).unwrap();
    let reference_config = stub_config(&reference_dir, &reference_server.url);
    let reference = run_cli(&dir.path().join("reference.db"), &args(&reference_config));
    let full = reference_server.task_hits();
    assert!(full > 40, "the reference ran the program only {full} times");

    let server = StubLmServer::start_with(
        std::sync::Arc::new(prompt_dependent),
        Duration::from_millis(2),
    );
    let killed_dir = dir.path().join("killed");
    std::fs::create_dir_all(&killed_dir).unwrap();
    let config = stub_config(&killed_dir, &server.url);
    let db = dir.path().join("killed.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_skill-fleet"))
        .current_dir(root())
        .arg("--db")
        .arg(&db)
        .args(args(&config))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while server.task_hits() < full / 2 {
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(only_run(&db)["status"], "running");

    let mut resume = args(&config);
    resume.extend(["--resume".to_string(), "1".to_string()]);
    let resumed = run_cli(&db, &resume);
    assert_eq!(resumed["status"], "completed", "{resumed}");
    for key in [
        "baseline_val",
        "best_val",
        "baseline_test",
        "optimized_test",
        "candidates",
    ] {
        assert_eq!(
            resumed[key], reference[key],
            "{key}: {resumed} vs {reference}"
        );
    }
    // The same best candidate: the versions registered hold the same spec.
    let spec = |db: &Path, v: &serde_json::Value| {
        query(
            db,
            &format!("SELECT content_hash FROM program_versions WHERE id = {v}"),
        )[0]["content_hash"]
            .clone()
    };
    assert_eq!(
        spec(&db, &resumed["version_id"]),
        spec(&dir.path().join("reference.db"), &reference["version_id"])
    );
    // Every full evaluation of a candidate on a split exists once: the
    // resumed run continued the evaluations it found.
    let twice = query(
        &db,
        "SELECT candidate_id, split, COUNT(*) AS c FROM evaluations WHERE kind = 'full' \
         GROUP BY candidate_id, split HAVING c > 1",
    );
    assert!(twice.is_empty(), "evaluations stored twice: {twice:?}");
    let recomputed = server.task_hits() as i64 - full as i64;
    eprintln!(
        "{optimizer_args:?}: reference {full} program runs, val {} -> {}; {recomputed} computed again after --resume",
        reference["baseline_val"], reference["best_val"]
    );
    // The search found something, so "ends like the uninterrupted run" says
    // more than "both kept the baseline".
    assert!(
        reference["best_val"].as_f64() > reference["baseline_val"].as_f64(),
        "{reference}"
    );
    let window = kill_window(2, Duration::from_millis(2));
    assert!(
        (0..=window).contains(&recomputed),
        "{recomputed} program runs repeated, over the window of {window}"
    );
}

#[test]
fn random_search_killed_during_a_burst_of_writes_and_resumed_ends_like_an_uninterrupted_run() {
    kill_and_resume_ends_like_an_uninterrupted_run(&[
        "--optimizer",
        "random-search",
        "--num-candidates",
        "6",
        "--max-bootstrapped-demos",
        "2",
        "--max-labeled-demos",
        "4",
    ]);
}

#[test]
fn miprov2_killed_and_resumed_ends_like_an_uninterrupted_run() {
    kill_and_resume_ends_like_an_uninterrupted_run(&[
        "--optimizer",
        "miprov2",
        "--num-trials",
        "6",
    ]);
}

#[test]
fn gepa_killed_and_resumed_ends_like_an_uninterrupted_run() {
    kill_and_resume_ends_like_an_uninterrupted_run(&[
        "--optimizer",
        "gepa",
        "--max-metric-calls",
        "160",
    ]);
}

/// The stored request of a MIPROv2 run holds every few-shot flag given,
/// including values equal to BootstrapFewShot's defaults
/// (`--max-labeled-demos 16`) and a threshold given alone.
#[test]
fn miprov2_runs_store_every_fewshot_flag_given() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let server = StubLmServer::start(SKILL_ANSWER, Duration::ZERO);
    let config = stub_config(dir.path(), &server.url);
    let ts = small_trainset(dir.path(), 12);
    cli_ok(
        &db,
        &[
            "--config",
            config.to_str().unwrap(),
            "optimize",
            "--trainset",
            &ts,
            "--optimizer",
            "miprov2",
            "--num-trials",
            "1",
            "--max-labeled-demos",
            "16",
            "--metric-threshold",
            "0.5",
        ],
    );
    let stored: serde_json::Value = serde_json::from_str(
        query(&db, "SELECT config_json FROM runs")[0]["config_json"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let o = &stored["optimizer"];
    assert_eq!(o["kind"], "miprov2", "{stored}");
    assert_eq!(o["fewshot"]["max_labeled_demos"], 16, "{stored}");
    assert_eq!(o["fewshot"]["max_bootstrapped_demos"], 4, "{stored}");
    assert_eq!(o["fewshot"]["metric_threshold"], 0.5, "{stored}");
    assert_eq!(o["num_trials"], 1, "{stored}");
    // A flag the optimizer does not have is refused, not ignored.
    let out = cli(
        &db,
        &[
            "--config",
            config.to_str().unwrap(),
            "optimize",
            "--trainset",
            &ts,
            "--optimizer",
            "bootstrap",
            "--num-trials",
            "3",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--num-trials does not apply"));
}
