//! Growing a trainset, through the real binary: `trainset expand` on the
//! fixture tree of skills in `tests/data/skills` (expected examples, skipped
//! files with their reasons, dropped duplicates), `merge`, `stats` gaps,
//! `synthesize` (stub LM and the real local model) and `from-traces` (on
//! predictions made by `eval`, `predict` and an A/B test against a stub LM).

use crate::util::*;

#[test]
fn expand_derives_one_valid_example_per_skill_and_names_every_skipped_file_and_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let skills = data("skills");
    let out_file = dir.path().join("expanded.json");
    let report: serde_json::Value = serde_json::from_str(&cli_ok(
        &db,
        &[
            "--json",
            "trainset",
            "expand",
            "--skills-dir",
            skills.to_str().unwrap(),
            "-o",
            out_file.to_str().unwrap(),
        ],
    ))
    .unwrap();
    let examples = report["examples"].as_array().unwrap();
    let by_name = |n: &str| {
        examples
            .iter()
            .find(|e| e["expected_name"] == n)
            .unwrap_or_else(|| panic!("no example named {n}: {report}"))
    };
    assert_eq!(examples.len(), 3, "{report}");
    let hub = by_name("python-packaging-hub");
    assert_eq!(hub["expected_skill_style"], "navigation_hub");
    assert_eq!(hub["expected_taxonomy_path"], "python/python-packaging-hub");
    assert_eq!(
        hub["expected_subdirectories"],
        serde_json::json!(["references", "guides"])
    );
    let minimal = by_name("python-asyncio-basics");
    assert_eq!(minimal["expected_skill_style"], "minimal");
    assert_eq!(
        minimal["expected_keywords"],
        serde_json::json!(["asyncio", "gather", "timeouts", "concurrency"])
    );
    assert!(minimal["task_description"]
        .as_str()
        .unwrap()
        .starts_with("Create a Python Asyncio Basics skill: "));
    let long = by_name("rust-error-handling");
    assert_eq!(long["expected_skill_style"], "comprehensive");
    assert_eq!(long["source"], "skills-dir");

    let skipped: Vec<(String, String)> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let reason = |part: &str| {
        skipped
            .iter()
            .find(|(p, _)| p.contains(part))
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{part} not skipped: {skipped:?}"))
    };
    assert!(reason("rust/broken/").contains("broken YAML frontmatter"));
    assert!(reason("testing/no-frontmatter/").contains("no YAML frontmatter"));
    let short = reason("devops/too-short/");
    assert!(
        short.contains("expected_description") && short.contains("Use when"),
        "{short}"
    );
    assert_eq!(skipped.len(), 3);
    let dups = report["duplicates"].as_array().unwrap();
    assert_eq!(dups.len(), 1);
    assert!(dups[0]["path"]
        .as_str()
        .unwrap()
        .contains("error-handling-copy"));
    assert_eq!(dups[0]["by"], "name");

    // The file holds the same examples, and it imports as a valid trainset.
    let written: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(&written, examples);
    cli_ok(&db, &["trainset", "validate", out_file.to_str().unwrap()]);
    let imported: serde_json::Value = serde_json::from_str(&cli_ok(
        &db,
        &[
            "--json",
            "trainset",
            "expand",
            "--skills-dir",
            skills.to_str().unwrap(),
            "--import",
            "from-skills",
        ],
    ))
    .unwrap();
    assert_eq!(imported["trainset"]["n_examples"], 3);
    assert_eq!(imported["trainset"]["name"], "from-skills");
}

/// The bundled trainset's examples.
fn bundled() -> Vec<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(bundled_trainset()).unwrap()).unwrap()
}

#[test]
fn merge_drops_duplicates_by_content_name_and_task_naming_which_example_each_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let all = bundled();
    // A: examples 0..4, stored. B: a file with an exact copy of A#1, A#2
    // renamed (same task), A#3's task re-spaced and upper-cased under a new
    // name, and two new examples.
    let a_file = dir.path().join("a.json");
    std::fs::write(&a_file, serde_json::to_string(&all[0..4]).unwrap()).unwrap();
    cli_ok(
        &db,
        &[
            "trainset",
            "import",
            a_file.to_str().unwrap(),
            "--name",
            "a",
        ],
    );
    let mut same_name = all[5].clone();
    same_name["expected_name"] = all[2]["expected_name"].clone();
    same_name["expected_taxonomy_path"] = all[2]["expected_taxonomy_path"].clone();
    let mut same_task = all[6].clone();
    same_task["task_description"] = serde_json::Value::String(format!(
        "  {}",
        all[3]["task_description"]
            .as_str()
            .unwrap()
            .to_uppercase()
            .replace(' ', "  ")
    ));
    let b = vec![
        all[1].clone(),
        same_name,
        same_task,
        all[7].clone(),
        all[8].clone(),
    ];
    let b_file = dir.path().join("b.json");
    std::fs::write(&b_file, serde_json::to_string(&b).unwrap()).unwrap();
    let out_file = dir.path().join("merged.json");
    let b_path = b_file.to_str().unwrap();
    let report: serde_json::Value = serde_json::from_str(&cli_ok(
        &db,
        &[
            "--json",
            "trainset",
            "merge",
            "a",
            b_path,
            "-o",
            out_file.to_str().unwrap(),
        ],
    ))
    .unwrap();
    assert_eq!(report["examples"].as_array().unwrap().len(), 6, "{report}");
    let dropped: Vec<(u64, String, u64)> = report["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["example"]["input"], b_path);
            assert_eq!(d["duplicate_of"]["input"], "a");
            (
                d["example"]["index"].as_u64().unwrap(),
                d["by"].as_str().unwrap().to_string(),
                d["duplicate_of"]["index"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        dropped,
        [
            (0, "content".to_string(), 1),
            (1, "expected_name".to_string(), 2),
            (2, "task".to_string(), 3)
        ]
    );
    // The merged file validates like an import, and imports.
    cli_ok(&db, &["trainset", "validate", out_file.to_str().unwrap()]);
    let imported: serde_json::Value = serde_json::from_str(&cli_ok(
        &db,
        &["--json", "trainset", "merge", "a", b_path, "--import", "ab"],
    ))
    .unwrap();
    assert_eq!(imported["trainset"]["n_examples"], 6);
}

#[test]
fn merge_of_an_unknown_trainset_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let out = cli(
        &db,
        &["trainset", "merge", "nope", "missing-too", "-o", "x.json"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn stats_lists_coverage_gaps_with_examples_to_add_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    // Only the expanded skills: python and rust, one navigation hub, no
    // category with 3 examples.
    let file = dir.path().join("few.json");
    let skills = data("skills");
    cli_ok(
        &db,
        &[
            "trainset",
            "expand",
            "--skills-dir",
            skills.to_str().unwrap(),
            "-o",
            file.to_str().unwrap(),
        ],
    );
    let s: serde_json::Value = serde_json::from_str(&cli_ok(
        &db,
        &["--json", "trainset", "stats", file.to_str().unwrap()],
    ))
    .unwrap();
    let gaps = s["gaps"].as_array().unwrap();
    let gap = |kind: &str, name: &str| {
        gaps.iter()
            .find(|g| g["kind"] == kind && g["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} gap {name}: {s}"))
    };
    let python = gap("category", "python");
    assert_eq!(
        (python["have"].as_u64(), python["add"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(gap("category", "devops")["add"], 3);
    assert!(gaps.iter().all(|g| g["kind"] != "style"), "{s}");
    let text = cli_ok(&db, &["trainset", "stats", file.to_str().unwrap()]);
    assert!(
        text.contains("to add:") && text.contains("add 1 example of category `python`"),
        "{text}"
    );
}

/// The continuation a stub model gives a synthesis prompt (which ends in
/// "Skill:"): a record with the given title, teaching and description.
fn record(title: &str, teaches: &str, keywords: &str, dirs: &str, description: &str) -> String {
    format!(" {title}\nTeaches: {teaches}\nKeywords: {keywords}\nSubdirectories: {dirs}\nDescription: {description}\n")
}

/// Answers in call order: round 1 gets a valid record, an invalid one and a
/// copy of the trainset's first example (by name); round 2 a rewording of
/// the first valid record and a second valid one; round 3 a third valid one.
fn synthesis_answers() -> Vec<String> {
    vec![
        record(
            "Docker Layer Caching",
            "ordering Dockerfile steps so builds reuse cached layers",
            "docker, layers, cache, builds",
            "examples",
            "Use when Docker builds are slow and you want to order Dockerfile steps so that unchanged layers come from the build cache.",
        ),
        record("Kubernetes Probes", "liveness probes", "kubernetes", "docs", "Probes for pods."),
        record(
            "Python Asyncio Patterns",
            "event loops and tasks",
            "asyncio, tasks, loops",
            "references",
            "Use when you write concurrent Python with asyncio and need patterns for tasks, gathering results and timeouts in one place.",
        ),
        record(
            "Docker Build Layer Caching",
            "ordering Dockerfile steps so builds reuse cached layers",
            "docker, layers, cache",
            "examples",
            "Use when a Docker build repeats work and you want the Dockerfile ordered so that cached layers are reused on every build.",
        ),
        record(
            "SQL Index Tuning",
            "choosing B-tree indexes for slow queries",
            "sql, indexes, queries",
            "none",
            "Use when a query is slow and you need to decide which columns to index and how to read the query plan to confirm it.",
        ),
        record(
            "Terraform State Locking",
            "keeping remote state safe with locks",
            "terraform, state, locking",
            "references, guides",
            "Use when several people run Terraform against one remote state and you need locking to stop concurrent applies from corrupting it.",
        ),
    ]
}

#[test]
fn synthesize_keeps_valid_answers_rejects_invalid_and_near_duplicate_ones_with_reasons_and_records_its_run(
) {
    let answers = synthesis_answers();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let p = StubProject::new(
        std::sync::Arc::new(move |_prompt: &str| {
            let i = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            answers.get(i).cloned().unwrap_or_default()
        }),
        6,
    );
    let before: serde_json::Value = p.json(&["trainset", "stats", "small"]);
    let out_file = p.dir.path().join("synthetic.json");
    let report = p.json(&[
        "trainset",
        "synthesize",
        "--trainset",
        "small",
        "--n",
        "3",
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(
        (
            report["asked"].as_u64(),
            report["produced"].as_u64(),
            report["rounds"].as_u64()
        ),
        (Some(3), Some(3), Some(3)),
        "{report}"
    );
    let names: std::collections::BTreeSet<&str> = report["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["expected_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "docker-layer-caching",
            "sql-index-tuning",
            "terraform-state-locking"
        ]
        .into()
    );
    // Three rejections, each with its kind and reason; a near-duplicate
    // names the example it repeats.
    let rejections = report["rejections"].as_array().unwrap();
    let by_kind = |kind: &str| -> Vec<&serde_json::Value> {
        rejections.iter().filter(|r| r["kind"] == kind).collect()
    };
    assert_eq!(rejections.len(), 3, "{report}");
    let invalid = by_kind("invalid");
    assert_eq!(invalid.len(), 1, "{report}");
    assert_eq!(invalid[0]["name"], "kubernetes-probes");
    let reason = invalid[0]["reason"].as_str().unwrap();
    for part in [
        "expected_keywords",
        "expected_subdirectories",
        "`docs`",
        "Use when",
    ] {
        assert!(reason.contains(part), "{part} not in {reason}");
    }
    let dups = by_kind("near_duplicate");
    let of: std::collections::BTreeSet<&str> = dups
        .iter()
        .map(|d| d["duplicate_of"].as_str().unwrap())
        .collect();
    assert_eq!(of, ["synthetic #0", "trainset #0"].into(), "{report}");
    let reworded = dups
        .iter()
        .find(|d| d["duplicate_of"] == "synthetic #0")
        .unwrap();
    assert!(
        reworded["reason"]
            .as_str()
            .unwrap()
            .contains("`docker-layer-caching`"),
        "{reworded}"
    );
    // Round 1's three requests went to three different thin categories.
    let small_cats = before["by_category"].as_object().unwrap();
    let round1: Vec<&str> = report["targets"].as_array().unwrap()[..3]
        .iter()
        .map(|t| t["category"].as_str().unwrap())
        .collect();
    assert_eq!(
        round1
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );
    assert!(
        round1.iter().all(|c| !small_cats.contains_key(*c)),
        "{round1:?} {before}"
    );

    // The file holds only the accepted examples, all synthetic and valid.
    let written: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(written.len(), 3);
    assert!(written.iter().all(|e| e["source"] == "synthetic"));
    assert!(!std::fs::read_to_string(&out_file)
        .unwrap()
        .contains("kubernetes"));
    p.ok(&["trainset", "validate", out_file.to_str().unwrap()]);

    // The run, its traces and its counts are in the database.
    let run = &query(
        &p.db,
        "SELECT r.id, r.kind, r.status, r.lm_calls, t.name AS trainset FROM runs r JOIN trainsets t ON t.id = r.trainset_id",
    )[0];
    assert_eq!(
        (
            run["kind"].as_str(),
            run["status"].as_str(),
            run["lm_calls"].as_i64(),
            run["trainset"].as_str()
        ),
        (
            Some("synthesize"),
            Some("completed"),
            Some(6),
            Some("small")
        ),
        "{run}"
    );
    assert_eq!(report["run_id"], run["id"]);
    let traces = query(
        &p.db,
        &format!(
            "SELECT predictor, role, prompt_tokens, response_text FROM traces WHERE run_id = {}",
            run["id"]
        ),
    );
    assert_eq!(traces.len(), 6);
    assert!(traces
        .iter()
        .all(|t| t["predictor"] == "synthesize" && t["role"] == "prompt"));
    assert_eq!(report["tokens"], 6 * 140, "{report}");

    // The same request again answers from the cache (no new model call)
    // and imports the examples as a trainset.
    let hits = p.server.hits();
    let imported = p.json(&[
        "trainset",
        "synthesize",
        "--trainset",
        "small",
        "--n",
        "3",
        "--import",
        "grown",
    ]);
    assert_eq!(imported["trainset"]["n_examples"], 3, "{imported}");
    assert_eq!(p.server.hits(), hits);
}

#[test]
fn synthesize_stops_at_its_call_budget_keeping_what_it_got_and_saying_why() {
    // A valid record about the requested category; records of two
    // categories share 2 of 4 topic words, under the near-duplicate line.
    let p = StubProject::new(
        std::sync::Arc::new(|prompt: &str| {
            let cat = prompt
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("Category: "))
                .unwrap_or("x")
                .to_string();
            record(
                &format!("{cat} Essentials"),
                &format!("{cat} specifics"),
                &format!("{cat}, release, checklist"),
                "none",
                &format!("Use when you ship a {cat} project and want one short checklist of the release steps so that nothing is forgotten on release day."),
            )
        }),
        6,
    );
    let report = p.json(&[
        "trainset",
        "synthesize",
        "--trainset",
        "small",
        "--n",
        "3",
        "--max-calls",
        "2",
        "-o",
        p.dir.path().join("s.json").to_str().unwrap(),
    ]);
    assert_eq!(report["produced"], 2, "{report}");
    assert_eq!(p.server.hits(), 2);
    let note = report["note"].as_str().unwrap();
    assert!(
        note.starts_with("budget exhausted: 2 calls made of 2"),
        "{note}"
    );
    let run = &query(&p.db, "SELECT status, error FROM runs")[0];
    assert_eq!(run["status"], "completed");
    assert_eq!(run["error"].as_str(), Some(note));
}

#[test]
fn synthesize_whose_model_cannot_load_leaves_a_failed_run_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        "lm:\n  roles:\n    prompt: {provider: local, model: /nonexistent/model.gguf, mode: completion}\n",
    )
    .unwrap();
    let ts = small_trainset(dir.path(), 6);
    let out_file = dir.path().join("never.json");
    let out = cli(
        &db,
        &[
            "--config",
            config.to_str().unwrap(),
            "trainset",
            "synthesize",
            "--trainset",
            &ts,
            "--n",
            "2",
            "-o",
            out_file.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(!out_file.exists());
    let runs = query(&db, "SELECT kind, status, error FROM runs");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        (runs[0]["kind"].as_str(), runs[0]["status"].as_str()),
        (Some("synthesize"), Some("failed"))
    );
    assert!(
        runs[0]["error"].as_str().unwrap().contains("nonexistent"),
        "{runs:?}"
    );
}

/// Synthesis against the real local model: whatever the small model writes,
/// only valid examples come out, every other answer is a rejection with a
/// reason, and the run with a trace per call is in the database.
#[cfg(feature = "local")]
#[test]
fn synthesize_with_the_local_model_writes_only_valid_examples_and_records_run_and_traces() {
    let Some(model) = model_path() else {
        panic!("model missing: run `bash scripts/setup.sh` or set SKILL_FLEET_MODEL");
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        format!(
            // A loaded 2-core machine makes a call slow: no time-out and
            // re-send (which doubles the work), and shorter answers.
            "lm:\n  roles:\n    prompt: {{provider: local, model: \"{}\", mode: completion, temperature: 0.7}}\n  retry: {{max_retries: 0, timeout_secs: 900}}\nsynthesize: {{max_tokens: 150}}\n",
            model.display()
        ),
    )
    .unwrap();
    let ts = small_trainset(dir.path(), 12);
    let out_file = dir.path().join("synthetic.json");
    let started = std::time::Instant::now();
    let report: serde_json::Value = serde_json::from_str(&cli_ok(
        &db,
        &[
            "--json",
            "--config",
            config.to_str().unwrap(),
            "trainset",
            "synthesize",
            "--trainset",
            &ts,
            "--n",
            "3",
            "--max-calls",
            "6",
            "-o",
            out_file.to_str().unwrap(),
        ],
    ))
    .unwrap();
    eprintln!(
        "local synthesis took {:.1} s: {report}",
        started.elapsed().as_secs_f64()
    );
    let produced = report["produced"].as_u64().unwrap();
    let rejections = report["rejections"].as_array().unwrap();
    // Calls the model answered (a call refused by --max-calls is traced
    // with the refusal as its error, and counted among the run's calls).
    let traced = query(
        &db,
        "SELECT COUNT(*) AS n, SUM(completion_tokens) AS tokens FROM traces WHERE predictor = 'synthesize' AND error IS NULL",
    );
    let answered = traced[0]["n"].as_u64().unwrap();
    assert!((3..=6).contains(&answered), "{report}");
    assert!(traced[0]["tokens"].as_u64().unwrap() > 0);
    // Every answer is either an example or a rejection.
    assert_eq!(produced + rejections.len() as u64, answered, "{report}");
    for r in rejections {
        assert!(!r["reason"].as_str().unwrap().is_empty(), "{r}");
        assert!(["unparsed", "invalid", "near_duplicate"].contains(&r["kind"].as_str().unwrap()));
    }
    let written: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(written.len() as u64, produced);
    if produced > 0 {
        cli_ok(&db, &["trainset", "validate", out_file.to_str().unwrap()]);
    }
    let runs = query(&db, "SELECT id, kind, status, lm_calls FROM runs");
    let all_traces = query(
        &db,
        "SELECT COUNT(*) AS n FROM traces WHERE predictor = 'synthesize'",
    );
    assert_eq!(
        (
            runs[0]["kind"].as_str(),
            runs[0]["status"].as_str(),
            runs[0]["lm_calls"].as_u64()
        ),
        (
            Some("synthesize"),
            Some("completed"),
            all_traces[0]["n"].as_u64()
        ),
        "{runs:?}"
    );
    assert_eq!(report["lm_calls"], runs[0]["lm_calls"]);
}

/// A stub task model's answer to a run of the bundled program: every skill
/// goes to `python`, named after the request's title; the Spark request gets
/// an answer that does not parse (the program falls back).
fn traced_answer(prompt: &str) -> String {
    let task = prompt
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("Task Description: "))
        .unwrap_or("");
    let title = task
        .strip_prefix("Create a ")
        .and_then(|t| t.split(" skill").next())
        .unwrap_or("Unknown");
    if title.contains("Spark") {
        return " I do not know.".into();
    }
    let name = title.to_lowercase().replace(' ', "-");
    let first = name.split('-').next().unwrap_or("x").to_string();
    format!(
        " python/{name}\nName: {name}\nSkill Style: minimal\nSubdirectories: references\nKeywords: {first}, skills, reference\nDescription: Use when you work on {title} and need a short and reliable reference that covers the essentials of the topic quickly."
    )
}

/// A database with traced predictions of `skill_understanding`: an eval of
/// version 1 on `small` (6 examples, one answer unparsable), two identical
/// predictions of version 2 (the second a cache hit), and one prediction
/// routed by A/B test `live` for key `alice` with outcome 0.9; version 2 is
/// aliased `prod`.
fn traced_project() -> StubProject {
    let p = StubProject::new(std::sync::Arc::new(traced_answer), 6);
    p.ok(&[
        "eval",
        "--program",
        "config/programs/skill_understanding.yaml",
        "--trainset",
        "small",
    ]);
    p.register_variants(&["V2"]);
    for _ in 0..2 {
        p.ok(&[
            "predict",
            "--program",
            "skill_understanding",
            "--version",
            "2",
            "--input",
            r#"{"task_description": "Create a Rust Lifetimes skill: borrowing rules in practice"}"#,
        ]);
    }
    p.ok(&[
        "ab",
        "create",
        "skill_understanding",
        "--name",
        "live",
        "--variant",
        "V1=50",
        "--variant",
        "V2=50",
    ]);
    p.ok(&[
        "predict",
        "--ab",
        "live",
        "--key",
        "alice",
        "--input",
        r#"{"task_description": "Create a Go Channels skill: select loops and buffered channels"}"#,
    ]);
    p.ok(&["ab", "record", "live", "--key", "alice", "--score", "0.9"]);
    p.ok(&[
        "program",
        "alias",
        "skill_understanding",
        "prod",
        "--version",
        "2",
    ]);
    p
}

fn trace_ids(report: &serde_json::Value) -> std::collections::BTreeSet<i64> {
    report["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["trace_id"].as_i64().unwrap())
        .collect()
}

fn ids_of(rows: &[serde_json::Value], col: &str) -> std::collections::BTreeSet<i64> {
    rows.iter().map(|r| r[col].as_i64().unwrap()).collect()
}

#[test]
fn from_traces_turns_eval_predict_and_ab_predictions_into_linked_valid_examples_filtered_by_score_alias_and_where(
) {
    let p = traced_project();
    let eval_traces = query(
        &p.db,
        "SELECT t.id, s.score, ex.fields_json FROM traces t JOIN evaluations e ON e.run_id = t.run_id \
         JOIN scores s ON s.evaluation_id = e.id AND s.example_id = t.example_id \
         JOIN examples ex ON ex.id = t.example_id ORDER BY t.id",
    );
    assert_eq!(eval_traces.len(), 6);
    let spark = eval_traces
        .iter()
        .find(|t| t["fields_json"].as_str().unwrap().contains("Spark"))
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let v2_predicts = ids_of(
        &query(&p.db, "SELECT t.id FROM traces t JOIN program_versions v ON v.id = t.version_id WHERE v.version = 2 AND t.assignment_id IS NULL ORDER BY t.id"),
        "id",
    );
    assert_eq!(v2_predicts.len(), 2);
    let ab_trace = query(
        &p.db,
        "SELECT id FROM traces WHERE assignment_id IS NOT NULL",
    )[0]["id"]
        .as_i64()
        .unwrap();

    // Everything: 6 eval + 2 predict + 1 A/B traces; the unparsable answer
    // is skipped and the repeated prediction dropped as a duplicate.
    let out_file = p.dir.path().join("from-traces.json");
    let all = p.json(&[
        "trainset",
        "from-traces",
        "--program",
        "skill_understanding",
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(all["matched"], 9, "{all}");
    let skipped = all["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{all}");
    assert_eq!(skipped[0]["trace_id"], spark);
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("does not parse"),
        "{all}"
    );
    let dups = all["duplicates"].as_array().unwrap();
    assert_eq!(dups.len(), 1, "{all}");
    let first_predict = *v2_predicts.first().unwrap();
    assert_eq!(dups[0]["duplicate_of_trace"], first_predict);
    assert_eq!(dups[0]["trace_id"], *v2_predicts.last().unwrap());
    let mut expected: std::collections::BTreeSet<i64> = ids_of(&eval_traces, "id")
        .into_iter()
        .filter(|id| *id != spark)
        .collect();
    expected.extend([first_predict, ab_trace]);
    assert_eq!(trace_ids(&all), expected);
    // Inputs from the traced request, labels from the parsed answer, linked back.
    let asyncio = all["examples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["expected_name"] == "python-asyncio-patterns")
        .unwrap();
    assert!(asyncio["task_description"]
        .as_str()
        .unwrap()
        .starts_with("Create a Python Asyncio Patterns skill: "));
    assert_eq!(
        asyncio["expected_taxonomy_path"],
        "python/python-asyncio-patterns"
    );
    assert_eq!(asyncio["expected_skill_style"], "minimal");
    assert_eq!(asyncio["source"], "trace");
    p.ok(&["trainset", "validate", out_file.to_str().unwrap()]);

    // --min-score: the traces scored at least the best eval score (and the
    // A/B outcome if as high); unscored predictions are left out with a reason.
    let best = eval_traces
        .iter()
        .filter(|t| t["id"] != spark)
        .map(|t| t["score"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    let min = format!("{best}");
    let scored = p.json(&[
        "trainset",
        "from-traces",
        "--program",
        "skill_understanding",
        "--min-score",
        &min,
        "-o",
        out_file.to_str().unwrap(),
    ]);
    let mut want: std::collections::BTreeSet<i64> = eval_traces
        .iter()
        .filter(|t| t["id"] != spark && t["score"].as_f64().unwrap() >= best)
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    if 0.9 >= best {
        want.insert(ab_trace);
    }
    assert_eq!(trace_ids(&scored), want, "{scored}");
    let reasons: Vec<&str> = scored["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("no recorded score")),
        "{reasons:?}"
    );
    assert!(
        eval_traces
            .iter()
            .all(|t| t["score"].as_f64().unwrap() >= best)
            || reasons.iter().any(|r| r.contains("below --min-score")),
        "{reasons:?}"
    );

    // --alias prod: version 2's traces only.
    let prod = p.json(&[
        "trainset",
        "from-traces",
        "--program",
        "skill_understanding",
        "--alias",
        "prod",
        "-o",
        out_file.to_str().unwrap(),
    ]);
    let v2_all = ids_of(
        &query(&p.db, "SELECT t.id FROM traces t JOIN program_versions v ON v.id = t.version_id WHERE v.version = 2"),
        "id",
    );
    let got = trace_ids(&prod);
    assert!(got.contains(&first_predict), "{prod}");
    assert!(
        got.is_subset(&v2_all),
        "{got:?} not all version 2 ({v2_all:?})"
    );

    // --where over the documented columns: the A/B prediction only, imported.
    let ab = p.json(&[
        "trainset",
        "from-traces",
        "--program",
        "skill_understanding",
        "--where",
        "origin = 'ab' AND ab_test = 'live' AND unit_key = 'alice' AND score > 0.5",
        "--import",
        "from-ab",
    ]);
    assert_eq!(ab["trainset"]["n_examples"], 1, "{ab}");
    let stored = query(&p.db, "SELECT e.fields_json FROM examples e JOIN trainsets t ON t.id = e.trainset_id WHERE t.name = 'from-ab'");
    let fields: serde_json::Value =
        serde_json::from_str(stored[0]["fields_json"].as_str().unwrap()).unwrap();
    assert_eq!(fields["trace_id"], ab_trace);
    assert_eq!(fields["expected_name"], "go-channels");
}

#[test]
fn from_traces_refuses_a_where_filter_that_does_not_parse_or_tries_to_write() {
    let p = traced_project();
    let n_traces = query(&p.db, "SELECT COUNT(*) AS n FROM traces")[0]["n"].clone();
    let never = p.dir.path().join("never.json");
    let never = never.to_str().unwrap();
    let out = p.cli(&[
        "trainset",
        "from-traces",
        "--program",
        "skill_understanding",
        "--where",
        "scor >",
        "-o",
        never,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--where `scor >` is not a valid SQL filter")
            && err.contains("columns: trace_id"),
        "{err}"
    );
    let out = p.cli(&[
        "trainset",
        "from-traces",
        "--program",
        "skill_understanding",
        "--where",
        "1); DELETE FROM traces; --",
        "-o",
        never,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--where"));
    assert_eq!(
        query(&p.db, "SELECT COUNT(*) AS n FROM traces")[0]["n"],
        n_traces
    );
    assert!(!std::path::Path::new(never).exists());
    // The help lists the columns a filter can use.
    let help =
        String::from_utf8_lossy(&p.cli(&["trainset", "from-traces", "--help"]).stdout).into_owned();
    for column in [
        "trace_id",
        "origin",
        "score",
        "ab_test",
        "unit_key",
        "response_text",
    ] {
        assert!(help.contains(column), "{column} not in help:\n{help}");
    }
}
