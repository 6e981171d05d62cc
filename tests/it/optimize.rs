//! Issue 5: optimizations against the real local model and a real SQLite file:
//! kill -9 mid-run and resume, reproducibility by seed, eval and predict.
//! Built only with the `local` feature (the default): they run the embedded model.

use crate::util::*;
use serde_json::Value;
use skill_fleet::store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn q(db: &Path, sql: &str) -> Vec<Value> {
    serde_json::from_str(&cli_ok(db, &["--json", "sql", sql])).unwrap()
}

const OPT: &[&str] = &[
    "optimize",
    "--optimizer",
    "random-search",
    "--num-candidates",
    "2",
    "--max-labeled-demos",
    "2",
    "--max-bootstrapped-demos",
    "2",
    "--metric-threshold",
    "0.5",
    "--threads",
    "2",
    "--seed",
    "5",
];

#[test]
fn killed_optimization_resumes_without_recomputing() {
    assert!(
        model_path().is_some(),
        "model missing: run `bash scripts/setup.sh`"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let ts = small_trainset(dir.path(), 16);
    let mut args: Vec<String> = vec!["--db".into(), db.display().to_string()];
    args.extend(OPT.iter().map(|s| s.to_string()));
    args.extend(["--trainset".to_string(), ts.clone()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_skill-fleet"))
        .current_dir(root())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once one evaluation has finished and another has started scoring.
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "optimization made no progress"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("optimization finished ({status}) before it could be killed; make it longer");
        }
        let Ok(store) = Store::open_read_only(&db) else {
            continue;
        };
        let Ok(done) =
            store.query_read_only("SELECT COUNT(*) FROM evaluations WHERE status = 'done'")
        else {
            continue;
        };
        let Ok(partial) = store.query_read_only(
            "SELECT COUNT(*) FROM evaluations e WHERE e.status = 'running' AND EXISTS (SELECT 1 FROM scores s WHERE s.evaluation_id = e.id)",
        ) else { continue };
        if done.rows[0][0].as_i64() >= Some(2) && partial.rows[0][0].as_i64() >= Some(1) {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let run_id = q(&db, "SELECT id FROM runs")[0]["id"].as_i64().unwrap();
    assert_eq!(
        q(&db, "SELECT status FROM runs")[0]["status"],
        "running",
        "a killed run is left running"
    );
    let done_before = q(&db, "SELECT id, candidate_id, split, kind, n, mean_score FROM evaluations WHERE status = 'done' ORDER BY id");
    let scored_before: BTreeSet<(i64, i64)> = q(&db, "SELECT e.candidate_id AS c, s.example_id AS x FROM scores s JOIN evaluations e ON e.id = s.evaluation_id")
        .iter()
        .map(|r| (r["c"].as_i64().unwrap(), r["x"].as_i64().unwrap()))
        .collect();
    let max_trace = q(&db, "SELECT COALESCE(MAX(id), 0) AS m FROM traces")[0]["m"]
        .as_i64()
        .unwrap();

    let out = cli_ok(
        &db,
        &["--json", "optimize", "--resume", &run_id.to_string()],
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["status"], "completed", "{report}");
    assert_eq!(report["run_id"], run_id);
    assert!(report["optimized_test"].is_number());

    // Finished evaluations are unchanged and not duplicated.
    let after = q(&db, "SELECT id, candidate_id, split, kind, n, mean_score FROM evaluations WHERE status = 'done' ORDER BY id");
    for e in &done_before {
        assert!(after.contains(e), "evaluation {e} changed or vanished");
        let dups = after
            .iter()
            .filter(|a| {
                a["candidate_id"] == e["candidate_id"]
                    && a["split"] == e["split"]
                    && a["kind"] == e["kind"]
                    && a["n"] == e["n"]
                    && a["kind"] == "full"
            })
            .count();
        assert!(
            e["kind"] != "full" || dups == 1,
            "full evaluation {e} was recomputed"
        );
    }
    // No LM call after the resume concerns an (candidate, example) pair scored before the kill.
    let new_calls = q(&db, &format!("SELECT candidate_id AS c, example_id AS x FROM traces WHERE id > {max_trace} AND example_id IS NOT NULL"));
    for r in &new_calls {
        let key = (r["c"].as_i64().unwrap_or(-1), r["x"].as_i64().unwrap_or(-1));
        assert!(
            !scored_before.contains(&key),
            "example {} of candidate {} was scored again",
            key.1,
            key.0
        );
    }
    let run = &q(
        &db,
        &format!("SELECT status, progress, test_score FROM runs WHERE id = {run_id}"),
    )[0];
    assert_eq!(run["status"], "completed");
    assert_eq!(run["progress"], 1.0);
    // Every evaluation is complete: its score rows match its size.
    for e in q(&db, "SELECT e.id, e.n, (SELECT COUNT(*) FROM scores s WHERE s.evaluation_id = e.id) AS k FROM evaluations e") {
        assert_eq!(e["n"], e["k"], "evaluation {e} is incomplete");
    }
}

#[test]
fn same_seed_with_warm_cache_reproduces_candidates_and_scores() {
    assert!(
        model_path().is_some(),
        "model missing: run `bash scripts/setup.sh`"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let ts = small_trainset(dir.path(), 12);
    let mut args: Vec<&str> = vec!["--json"];
    args.extend(OPT);
    let k = args.iter().position(|a| *a == "--num-candidates").unwrap();
    args[k + 1] = "1";
    args.extend(["--trainset", &ts]);
    let first: Value = serde_json::from_str(&cli_ok(&db, &args)).unwrap();
    let second: Value = serde_json::from_str(&cli_ok(&db, &args)).unwrap();
    for k in [
        "baseline_val",
        "best_val",
        "baseline_test",
        "optimized_test",
        "candidates",
    ] {
        assert_eq!(first[k], second[k], "{k} differs");
    }
    let cands = |run: &Value| -> Vec<Value> {
        q(
            &db,
            &format!(
                "SELECT hash, origin FROM candidates WHERE run_id = {} ORDER BY id",
                run["run_id"]
            ),
        )
    };
    assert_eq!(cands(&first), cands(&second));
    let scores = |run: &Value| -> BTreeMap<String, f64> {
        q(&db, &format!("SELECT c.hash || '/' || e.split || '/' || e.kind || '/' || s.example_id AS k, s.score FROM scores s JOIN evaluations e ON e.id = s.evaluation_id JOIN candidates c ON c.id = e.candidate_id WHERE e.run_id = {}", run["run_id"]))
            .iter()
            .map(|r| (r["k"].as_str().unwrap().to_string(), r["score"].as_f64().unwrap()))
            .collect()
    };
    assert_eq!(scores(&first), scores(&second));
    // The second run made no provider calls: every call was a cache hit.
    let misses = q(
        &db,
        &format!(
            "SELECT COUNT(*) AS n FROM traces WHERE run_id = {} AND cache_hit = 0",
            second["run_id"]
        ),
    );
    assert_eq!(misses[0]["n"], 0);
    assert!(second["cache_hits"].as_i64().unwrap() > 0);
    // The report of a finished real-model run renders in every format (issue 16).
    let report = crate::report::check_report_in_every_format(
        &db,
        first["run_id"].as_i64().unwrap(),
        dir.path(),
    );
    assert_eq!(report["scores"]["best_test"], first["optimized_test"]);
    assert_eq!(report["lm"]["calls"], first["lm_calls"]);
    // The optimized program is registered once (content-addressed): the
    // version the first run registered is the one the second run reports,
    // and it names the first run and its best candidate.
    assert_eq!(first["version_id"], second["version_id"]);
    let v = q(
        &db,
        &format!(
            "SELECT run_id, candidate_id, parent_id FROM program_versions WHERE id = {}",
            first["version_id"]
        ),
    );
    assert_eq!(v[0]["run_id"], first["run_id"], "{v:?}");
    let best = q(
        &db,
        &format!(
            "SELECT best_candidate_id FROM runs WHERE id = {}",
            first["run_id"]
        ),
    );
    assert_eq!(v[0]["candidate_id"], best[0]["best_candidate_id"], "{v:?}");
}

#[test]
fn eval_stores_a_score_for_every_example_and_demos_change_scores() {
    assert!(
        model_path().is_some(),
        "model missing: run `bash scripts/setup.sh`"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let ts = small_trainset(dir.path(), 8);
    cli_ok(&db, &["trainset", "import", &ts, "--name", "small"]);
    let zero: Value = serde_json::from_str(&cli_ok(
        &db,
        &["--json", "eval", "--trainset", "small", "--threads", "4"],
    ))
    .unwrap();
    assert_eq!(zero["n"], 8);
    let eval_id = zero["evaluation_id"].as_i64().unwrap();
    let n = q(
        &db,
        &format!("SELECT COUNT(*) AS n FROM scores WHERE evaluation_id = {eval_id}"),
    );
    assert_eq!(n[0]["n"], 8);
    // The program with 4 labeled demos (registered as a new version) scores differently.
    let out = cli_ok(
        &db,
        &[
            "--json",
            "optimize",
            "--trainset",
            "small",
            "--optimizer",
            "labeled",
            "--max-labeled-demos",
            "4",
            "--train-frac",
            "0.5",
            "--val-frac",
            "0.25",
            "--threads",
            "4",
        ],
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["status"], "completed");
    // On the same validation examples, the program with demos scores
    // differently from the zero-shot baseline on at least one example.
    let per_example = |origin: &str| -> BTreeMap<i64, f64> {
        q(
            &db,
            &format!(
                "SELECT s.example_id AS id, s.score FROM scores s JOIN evaluations e ON e.id = s.evaluation_id \
                 JOIN candidates c ON c.id = e.candidate_id WHERE e.run_id = {} AND e.split = 'val' \
                 AND e.kind = 'full' AND c.origin = '{origin}'",
                report["run_id"]
            ),
        )
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r["score"].as_f64().unwrap()))
        .collect()
    };
    let (zero_shot, with_demos) = (per_example("baseline"), per_example("labeled"));
    assert!(!zero_shot.is_empty());
    assert_eq!(
        zero_shot.keys().collect::<Vec<_>>(),
        with_demos.keys().collect::<Vec<_>>()
    );
    assert_ne!(zero_shot, with_demos, "4 demos changed no score");
    let predict: Value = serde_json::from_str(&cli_ok(&db, &["--json", "predict", "--input", r#"{"task_description": "Create a Pytest Fixtures skill: an in-depth guide to fixtures, scopes and factories"}"#])).unwrap();
    for f in [
        "taxonomy_path",
        "name",
        "skill_style",
        "subdirectories",
        "keywords",
        "description",
    ] {
        assert!(
            predict["outputs"].get(f).is_some(),
            "missing {f}: {predict}"
        );
    }
    let runs = q(&db, "SELECT kind, status FROM runs ORDER BY id");
    assert_eq!(runs[0]["kind"], "eval");
    assert_eq!(runs[0]["status"], "completed");
}

/// Issue 15, KNN few-shot through the binary with the real model: the
/// `knn` optimizer's candidate picks its demos per input from the train
/// split, every call of it records the demos it got, and different inputs
/// get different demos; the same version picks and records its demos in
/// `predict` too.
#[test]
fn knn_optimizer_traces_the_demos_each_input_got() {
    assert!(
        model_path().is_some(),
        "model missing: run `bash scripts/setup.sh`"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let run = optimize_knn_on_small_trainset(dir.path(), &db, &[]);
    let part = |p: &str| -> BTreeSet<i64> {
        q(
            &db,
            &format!(
                "SELECT sa.example_id AS id FROM split_assignments sa JOIN runs r ON r.split_id = sa.split_id \
                 WHERE r.id = {run} AND sa.part = '{p}'"
            ),
        )
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
    };
    let (train, val) = (part("train"), part("val"));
    assert!(train.len() > 2 && val.len() > 1, "{train:?} {val:?}");
    let traces = q(
        &db,
        &format!(
            "SELECT t.example_id, t.selected_demos, c.origin, c.spec_json FROM traces t \
             JOIN candidates c ON c.id = t.candidate_id WHERE t.run_id = {run} ORDER BY t.id"
        ),
    );
    let (knn, baseline): (Vec<&Value>, Vec<&Value>) = traces
        .iter()
        .partition(|t| t["origin"].as_str().unwrap().starts_with("knn"));
    assert_eq!(knn.len(), val.len(), "one call per val example: {traces:?}");
    assert!(baseline.iter().all(|t| t["selected_demos"].is_null()));
    let mut picked: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for t in &knn {
        let chosen: Vec<Value> =
            serde_json::from_str(t["selected_demos"].as_str().expect("demos traced")).unwrap();
        assert_eq!(chosen.len(), 2, "{chosen:?}");
        let ids: Vec<i64> = chosen
            .iter()
            .map(|c| c["example_id"].as_i64().unwrap())
            .collect();
        assert!(
            ids.iter().all(|id| train.contains(id)),
            "{ids:?} not in {train:?}"
        );
        assert!(chosen[0]["score"].as_f64() >= chosen[1]["score"].as_f64());
        picked.insert(t["example_id"].as_i64().unwrap(), ids);
    }
    let distinct: BTreeSet<&Vec<i64>> = picked.values().collect();
    assert!(
        distinct.len() > 1,
        "every input got the same demos: {picked:?}"
    );
    // The candidate is a self-contained version: its pool is the train split.
    let spec: Value = serde_json::from_str(knn[0]["spec_json"].as_str().unwrap()).unwrap();
    let pool = spec["demo_selection"]["knn"]["pool"].as_array().unwrap();
    let pool_ids: BTreeSet<i64> = pool
        .iter()
        .map(|p| p["example_id"].as_i64().unwrap())
        .collect();
    assert_eq!(pool_ids, train);
    // Run as a program file by `predict`, it picks (and traces) per input.
    let file = dir.path().join("knn.yaml");
    std::fs::write(&file, knn[0]["spec_json"].as_str().unwrap()).unwrap();
    for task in [
        "Create a Pytest Fixtures skill: an in-depth guide to fixtures, scopes and factories",
        "Create a Docker Networking skill: a checklist for bridge and overlay networks",
    ] {
        let input = serde_json::json!({ "task_description": task }).to_string();
        cli_ok(
            &db,
            &[
                "predict",
                "--program",
                file.to_str().unwrap(),
                "--input",
                &input,
            ],
        );
    }
    let predicted = q(
        &db,
        "SELECT selected_demos FROM traces WHERE run_id IS NULL AND version_id IS NOT NULL ORDER BY id",
    );
    assert_eq!(predicted.len(), 2, "{predicted:?}");
    assert!(predicted.iter().all(|t| t["selected_demos"].is_string()));
}

/// `--retriever embedding` through the binary with the real model: the
/// version records the retriever, and each input's demos are ranked by the
/// cosine of the model's embeddings (scores in [-1, 1], nearest first), not
/// by BM25 (whose scores are unbounded sums).
#[test]
fn knn_optimizer_with_embedding_retriever_ranks_demos_by_cosine() {
    assert!(
        model_path().is_some(),
        "model missing: run `bash scripts/setup.sh`"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let run = optimize_knn_on_small_trainset(dir.path(), &db, &["--retriever", "embedding"]);
    let traces = q(
        &db,
        &format!(
            "SELECT t.selected_demos, c.spec_json FROM traces t JOIN candidates c ON c.id = t.candidate_id \
             WHERE t.run_id = {run} AND c.origin LIKE 'knn%' ORDER BY t.id"
        ),
    );
    assert!(!traces.is_empty(), "no KNN calls traced");
    let spec: Value = serde_json::from_str(traces[0]["spec_json"].as_str().unwrap()).unwrap();
    assert_eq!(spec["demo_selection"]["knn"]["retriever"], "embedding");
    for t in &traces {
        let chosen: Vec<Value> =
            serde_json::from_str(t["selected_demos"].as_str().expect("demos traced")).unwrap();
        assert_eq!(chosen.len(), 2, "{chosen:?}");
        let scores: Vec<f64> = chosen
            .iter()
            .map(|c| c["score"].as_f64().unwrap())
            .collect();
        assert!(
            scores.iter().all(|s| (-1.0001..=1.0001).contains(s)),
            "not cosines: {scores:?}"
        );
        assert!(scores[0] >= scores[1], "not nearest first: {scores:?}");
    }
}

/// Imports 8 bundled examples into `db` and runs `optimize --optimizer knn`
/// on them with 2 demos per input (plus `extra` flags); returns the run id.
fn optimize_knn_on_small_trainset(
    dir: &std::path::Path,
    db: &std::path::Path,
    extra: &[&str],
) -> i64 {
    let ts = small_trainset(dir, 8);
    cli_ok(db, &["trainset", "import", &ts, "--name", "small"]);
    let mut args = vec![
        "--json",
        "optimize",
        "--trainset",
        "small",
        "--optimizer",
        "knn",
        "--max-labeled-demos",
        "2",
        "--train-frac",
        "0.5",
        "--val-frac",
        "0.5",
        "--threads",
        "2",
    ];
    args.extend_from_slice(extra);
    let report: Value = serde_json::from_str(&cli_ok(db, &args)).unwrap();
    assert_eq!(report["status"], "completed", "{report}");
    report["run_id"].as_i64().unwrap()
}
