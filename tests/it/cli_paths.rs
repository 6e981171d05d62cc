//! One end-to-end test per command-line path that had none: program
//! versions/export/alias, `optimize --promote` and `--auto-select`, the
//! ensemble flags of `eval`, and `metrics test` — through the real binary,
//! on a real SQLite file, against the stub LM on loopback.

use crate::util::*;
use std::sync::Arc;

fn answering(answer: &'static str) -> StubAnswer {
    Arc::new(move |_: &str| answer.to_string())
}

#[test]
fn program_versions_export_and_alias_work_through_the_binary() {
    let f = StubProject::new(answering(SKILL_ANSWER), 6);
    f.register_variants(&["FIRST", "SECOND"]);
    let versions = f.json(&["program", "versions", "skill_understanding"]);
    let numbers: Vec<i64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![2, 1], "newest first");

    let out = f.dir.path().join("v1.json");
    f.ok(&[
        "program",
        "export",
        "skill_understanding",
        "--version",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let exported = std::fs::read_to_string(&out).unwrap();
    assert!(exported.contains("FIRST.") && !exported.contains("SECOND."));

    f.ok(&[
        "program",
        "alias",
        "skill_understanding",
        "staging",
        "--version",
        "2",
    ]);
    assert_eq!(f.alias_version("staging"), 2);
    let shown = f.ok(&[
        "program",
        "show",
        "skill_understanding",
        "--alias",
        "staging",
    ]);
    assert!(shown.contains("SECOND."), "{shown}");
}

#[test]
fn optimize_with_promote_points_the_alias_at_the_version_it_stored() {
    let f = StubProject::new(answering(SKILL_ANSWER), 12);
    let report = f.json(&[
        "optimize",
        "--trainset",
        "small",
        "--optimizer",
        "labeled",
        "--promote",
        "production",
    ]);
    assert_eq!(report["promoted"], "production", "{report}");
    let version = report["version"].as_i64().unwrap();
    assert_eq!(f.alias_version("production"), version);
    let moves = query(&f.db, "SELECT action, reason FROM alias_history");
    assert_eq!(moves.len(), 1);
    assert_eq!(moves[0]["action"], "promote");

    // An alias the registry would refuse is refused before any run starts.
    let out = f.cli(&[
        "optimize",
        "--trainset",
        "small",
        "--optimizer",
        "labeled",
        "--promote",
        "not valid",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("alias `not valid` is not valid"));
    assert_eq!(query(&f.db, "SELECT id FROM runs").len(), 1);
}

#[test]
fn optimize_auto_select_runs_and_records_the_optimizer_it_names() {
    let f = StubProject::new(answering(SKILL_ANSWER), 12);
    let out = f.cli(&["--json", "optimize", "--trainset", "small", "--auto-select"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("auto-select: "))
        .unwrap_or_else(|| panic!("no auto-select line in {err}"));
    let named = line["auto-select: ".len()..].split(' ').next().unwrap();
    let runs = query(&f.db, "SELECT optimizer, status FROM runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["optimizer"], named, "{line}");
    assert_eq!(runs[0]["status"], "completed");
}

#[test]
fn optimize_auto_select_on_a_large_trainset_runs_the_recommended_chain_step_by_step() {
    let f = StubProject::new(answering(SKILL_ANSWER), 8);
    // 120 examples: the bundled 92 and 28 of them again with reworded tasks.
    let mut rows: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(bundled_trainset()).expect("the bundled trainset"),
    )
    .expect("JSON");
    let again: Vec<serde_json::Value> = rows[..28]
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let task = r["task_description"].as_str().unwrap_or("").to_string();
            let name = r["expected_name"].as_str().unwrap_or("").to_string();
            r["task_description"] = format!("{task} (second request)").into();
            let path = r["expected_taxonomy_path"]
                .as_str()
                .unwrap_or("")
                .to_string();
            r["expected_name"] = format!("{name}-again").into();
            r["expected_taxonomy_path"] = format!("{path}-again").into();
            r
        })
        .collect();
    rows.extend(again);
    let large = f.dir.path().join("large.json");
    std::fs::write(&large, serde_json::to_string(&rows).expect("JSON")).expect("written");
    let out = f.cli(&[
        "--json",
        "optimize",
        "--trainset",
        large.to_str().expect("utf-8 path"),
        "--auto-select",
        "--max-metric-calls",
        "40",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("auto-select: bootstrap+gepa")),
        "{err}"
    );
    let runs = query(
        &f.db,
        "SELECT optimizer, status FROM runs WHERE kind = 'optimize' ORDER BY id",
    );
    let steps: Vec<(&str, &str)> = runs
        .iter()
        .map(|r| {
            (
                r["optimizer"].as_str().unwrap_or(""),
                r["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(steps, [("bootstrap", "completed"), ("gepa", "completed")]);
}

#[test]
fn eval_ensemble_flags_make_the_number_of_program_runs_they_ask_for() {
    let f = StubProject::new(answering(SKILL_ANSWER), 8);
    f.register_variants(&["OTHER"]);
    let eval = |extra: &[&str]| -> (serde_json::Value, usize) {
        let before = f.server.task_hits();
        let mut args = vec!["eval", "--trainset", "small", "--limit", "4", "--no-cache"];
        args.extend_from_slice(extra);
        let r = f.json(&args);
        (r, f.server.task_hits() - before)
    };
    let (single, calls) = eval(&[]);
    assert_eq!((single["n"].as_i64(), calls), (Some(4), 4));
    let (_, calls) = eval(&["--best-of", "3", "--reward", "metadata_quality"]);
    assert_eq!(calls, 12, "best-of 3 on 4 examples");
    let (voted, calls) = eval(&["--vote", "3", "--vote-field", "skill_style"]);
    assert_eq!(calls, 12, "vote 3 on 4 examples");
    assert_eq!(voted["n"].as_i64(), Some(4));
    // The bundled program plus version 1 (OTHER), a majority selector: both run.
    let (_, calls) = eval(&["--versions", "1", "--vote-field", "skill_style"]);
    assert_eq!(calls, 8, "two members on 4 examples");
    let bad = f.cli(&["eval", "--trainset", "small", "--vote", "3"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--vote needs --vote-field"));
}

#[test]
fn metrics_test_scores_gold_labels_full_and_every_perturbation_lower() {
    let f = StubProject::new(answering(SKILL_ANSWER), 8);
    let r = f.json(&["metrics", "test", "--trainset", "small", "--examples", "5"]);
    let means = r["mean"].as_object().expect("a mean per label");
    assert_eq!(means.keys().next().map(String::as_str), Some("gold"));
    assert!(means.len() >= 3, "{r}");
    assert!(
        (means["gold"].as_f64().unwrap() - 1.0).abs() < 1e-9,
        "gold must score 1: {r}"
    );
    for (label, mean) in means.iter().skip(1) {
        let mean = mean.as_f64().unwrap();
        assert!(mean < 1.0, "perturbation {label} scored {mean}");
    }
}

#[test]
fn a_chained_optimization_starts_each_step_from_the_previous_steps_version() {
    // The stub answers well only when the prompt shows demos, so the first
    // step (labeled demos) beats the zero-shot baseline and registers a
    // version of its own.
    let with_demos: StubAnswer = Arc::new(|prompt: &str| {
        if prompt.matches("Task Description:").count() > 2 {
            SKILL_ANSWER.to_string()
        } else {
            " ???".to_string()
        }
    });
    let f = StubProject::new(with_demos, 12);
    let reports = f.json(&[
        "optimize",
        "--trainset",
        "small",
        "--optimizer",
        "labeled+bootstrap",
        "--max-labeled-demos",
        "2",
        "--promote",
        "prod",
    ]);
    let reports = reports.as_array().expect("one report per step");
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_eq!(reports[0]["optimizer"], "labeled");
    assert_eq!(reports[1]["optimizer"], "bootstrap");
    assert_eq!(
        reports[0]["promoted"],
        serde_json::Value::Null,
        "only the last step promotes"
    );
    assert_eq!(reports[1]["promoted"], "prod");
    let first_version = reports[0]["version_id"]
        .as_i64()
        .expect("step 1 registered a version");
    let runs = query(
        &f.db,
        "SELECT id, optimizer, base_version_id FROM runs WHERE kind = 'optimize' ORDER BY id",
    );
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[1]["base_version_id"].as_i64(),
        Some(first_version),
        "step 2 starts from step 1's version"
    );
    let v1 = query(
        &f.db,
        &format!("SELECT run_id, parent_id FROM program_versions WHERE id = {first_version}"),
    );
    assert_eq!(
        v1[0]["run_id"], runs[0]["id"],
        "step 1's version names its run"
    );
    assert!(
        v1[0]["parent_id"].as_i64().is_some(),
        "step 1's version has the base as parent"
    );

    // A setting no step of the chain has is refused before anything runs.
    let out = f.cli(&[
        "optimize",
        "--trainset",
        "small",
        "--optimizer",
        "labeled+bootstrap",
        "--max-metric-calls",
        "10",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--max-metric-calls applies to none"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        query(&f.db, "SELECT id FROM runs WHERE kind = 'optimize'").len(),
        2
    );
}
