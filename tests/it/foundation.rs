//! Issue 2: the store, trainsets and SQL access, against real SQLite files and the real binary.

use crate::util::*;
use serde_json::Value;
use skill_fleet::config::Taxonomy;
use skill_fleet::data::{self, Part, SplitFractions};
use skill_fleet::store::Store;
use skill_fleet::Error;

fn counts(db: &std::path::Path) -> Vec<(String, i64)> {
    Store::open(db).unwrap().info().unwrap().tables
}

#[test]
fn migrations_apply_on_fresh_and_migrated_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/dir/t.db");
    let s = Store::open(&db).unwrap();
    let v = s.schema_version().unwrap();
    assert!(v >= 1);
    let tables: Vec<String> = s.info().unwrap().tables.into_iter().map(|t| t.0).collect();
    for t in [
        "trainsets",
        "examples",
        "splits",
        "split_assignments",
        "programs",
        "program_versions",
        "aliases",
        "alias_history",
        "runs",
        "candidates",
        "evaluations",
        "scores",
        "traces",
        "lm_cache",
        "ab_tests",
        "ab_variants",
        "ab_assignments",
        "ab_outcomes",
        "jobs",
    ] {
        assert!(tables.contains(&t.to_string()), "missing table {t}");
    }
    drop(s);
    // Re-opening an already-migrated file applies nothing and keeps the data.
    let mut s = Store::open(&db).unwrap();
    let ts = data::load_file(&bundled_trainset(), &Taxonomy::bundled()).unwrap();
    s.import_trainset("bundled", "x", &ts).unwrap();
    drop(s);
    let s = Store::open(&db).unwrap();
    assert_eq!(s.schema_version().unwrap(), v);
    assert_eq!(s.count("examples").unwrap(), ts.examples.len() as i64);
    let journal: String = s
        .conn()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    // The views answer.
    for view in [
        "run_summary",
        "candidate_leaderboard",
        "example_wins_losses",
    ] {
        s.query_read_only(&format!("SELECT * FROM {view}")).unwrap();
    }
}

#[test]
fn import_is_idempotent_by_content_hash() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let out = cli_ok(
        &db,
        &[
            "--json",
            "trainset",
            "import",
            "config/training/trainset.json",
        ],
    );
    let first: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(first["created"], true);
    let out = cli_ok(
        &db,
        &[
            "--json",
            "trainset",
            "import",
            "config/training/trainset.json",
            "--name",
            "again",
        ],
    );
    let second: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(second["created"], false);
    assert_eq!(first["trainset"]["id"], second["trainset"]["id"]);
    let s = Store::open(&db).unwrap();
    assert_eq!(s.count("trainsets").unwrap(), 1);

    // The same examples as JSONL (other key order, other format) are the same trainset.
    let ts = data::load_file(&bundled_trainset(), &Taxonomy::bundled()).unwrap();
    let jsonl = dir.path().join("same.jsonl");
    let text: String = ts
        .examples
        .iter()
        .map(|e| {
            let mut keys: Vec<_> = e.fields.iter().collect();
            keys.reverse();
            let obj: serde_json::Map<String, Value> = keys
                .into_iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            format!("{}\n", Value::Object(obj))
        })
        .collect();
    std::fs::write(&jsonl, text).unwrap();
    let out = cli_ok(
        &db,
        &["--json", "trainset", "import", jsonl.to_str().unwrap()],
    );
    let third: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(third["created"], false);
    assert_eq!(third["trainset"]["id"], first["trainset"]["id"]);
}

#[test]
fn csv_jsonl_and_generic_files_import() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    for f in ["valid_small.csv", "valid_small.jsonl", "generic_qa.jsonl"] {
        let path = data(f);
        cli_ok(&db, &["trainset", "import", path.to_str().unwrap()]);
    }
    let s = Store::open(&db).unwrap();
    assert_eq!(s.count("trainsets").unwrap(), 3);
    let generic = s.find_trainset("generic_qa").unwrap();
    let ex = s.examples(generic.id).unwrap();
    assert_eq!(ex.len(), 6);
    assert!(ex[0].fields.contains_key("question") && ex[0].fields.contains_key("answer"));
}

#[test]
fn malformed_corpus_is_rejected_with_locations_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    cli_ok(
        &db,
        &["trainset", "import", "config/training/trainset.json"],
    );
    let before = counts(&db);
    let manifest: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(data("malformed/expected.json")).unwrap())
            .unwrap();
    assert!(manifest.len() >= 15, "corpus has {} files", manifest.len());
    let taxonomy = Taxonomy::bundled();
    for case in &manifest {
        let file = case["file"].as_str().unwrap();
        let path = data(&format!("malformed/{file}"));
        let problems = match data::load_file(&path, &taxonomy) {
            Err(Error::InvalidTrainset(p)) => p,
            other => panic!("{file}: expected InvalidTrainset, got {other:?}"),
        };
        let hit = problems.iter().any(|p| {
            p.kind.as_str() == case["kind"].as_str().unwrap()
                && p.index.map(|i| i as u64) == case["index"].as_u64()
                && p.field.as_deref() == case["field"].as_str()
                && (case["line"].is_null() || p.line.map(|l| l as u64) == case["line"].as_u64())
        });
        assert!(hit, "{file}: expected {case}, got {problems:#?}");
        // Every problem names the file.
        assert!(problems.iter().all(|p| p.file.ends_with(file)));

        // The binary refuses it, prints the location, and changes nothing.
        let out = cli(&db, &["trainset", "import", path.to_str().unwrap()]);
        assert!(!out.status.success(), "{file} was imported");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(file),
            "{file}: stderr does not name the file: {stderr}"
        );
        assert!(
            stderr.contains(case["kind"].as_str().unwrap()),
            "{file}: {stderr}"
        );
        if let Some(line) = case["line"].as_u64() {
            assert!(
                stderr.contains(&format!("{file}:{line}")),
                "{file}: no line {line} in {stderr}"
            );
        }
        let out = cli(&db, &["trainset", "validate", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{file}: validate should fail");
        assert_eq!(counts(&db), before, "{file}: database changed");
    }
}

/// Item 8: a skill file missing `task_description` used to be taken for a
/// generic trainset, imported, and run on an empty input.
#[test]
fn skill_file_missing_task_description_is_refused_naming_field_and_example() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let path = data("malformed/missing_task_description.json");
    let path = path.to_str().unwrap();

    let out = cli(&db, &["trainset", "validate", path]);
    assert_eq!(out.status.code(), Some(1), "validate should fail");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(
            "missing_task_description.json:2: example #0 field `task_description` [missing_field]"
        ),
        "{text}"
    );
    assert!(!text.contains("generic schema"), "{text}");

    let before = counts(&db);
    let out = cli(&db, &["trainset", "import", path]);
    assert!(!out.status.success(), "the file was imported");
    assert_eq!(counts(&db), before, "import wrote to the database");
    assert_eq!(Store::open(&db).unwrap().count("examples").unwrap(), 0);
}

#[test]
fn validate_reports_every_problem_at_once() {
    let text = r#"[
  {"task_description": "", "expected_taxonomy_path": "nowhere/x", "expected_name": "X_y",
   "expected_skill_style": "long", "expected_subdirectories": ["docs"], "expected_keywords": ["A"],
   "expected_description": "Helps with things"}
]"#;
    let err = data::load_text(
        "inline.json",
        text,
        data::Format::Json,
        &Taxonomy::bundled(),
    )
    .unwrap_err();
    let Error::InvalidTrainset(problems) = err else {
        panic!("wrong error")
    };
    let kinds: Vec<String> = problems.iter().map(|p| p.kind.as_str()).collect();
    for k in [
        "empty_string",
        "unknown_category",
        "not_kebab_case",
        "invalid_literal",
        "keyword_count",
        "not_lowercase",
        "description_prefix",
    ] {
        assert!(kinds.contains(&k.to_string()), "missing {k} in {kinds:?}");
    }
    assert!(problems
        .iter()
        .all(|p| p.line == Some(2) && p.index == Some(0)));
}

#[test]
fn bundled_trainset_is_valid_and_covers_every_category() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let out = cli_ok(
        &db,
        &["trainset", "validate", "config/training/trainset.json"],
    );
    assert!(out.contains("valid"), "{out}");
    let out = cli_ok(
        &db,
        &[
            "--json",
            "trainset",
            "stats",
            "config/training/trainset.json",
        ],
    );
    let stats: Value = serde_json::from_str(&out).unwrap();
    let n = stats["n_examples"].as_u64().unwrap();
    assert!(n >= 80);
    let cats = stats["by_category"].as_object().unwrap();
    for c in Taxonomy::bundled().names() {
        assert!(
            cats.get(&c).and_then(Value::as_u64).unwrap_or(0) >= 3,
            "category {c}"
        );
    }
    let share = |s: &str| stats["by_style"][s].as_u64().unwrap() as f64 / n as f64;
    assert!((0.45..0.65).contains(&share("comprehensive")));
    assert!((0.18..0.32).contains(&share("navigation_hub")));
    assert!((0.13..0.27).contains(&share("minimal")));
    let text = cli_ok(&db, &["trainset", "stats", "config/training/trainset.json"]);
    for c in Taxonomy::bundled().names() {
        assert!(text.contains(&c), "stats output lacks {c}");
    }
}

#[test]
fn sql_refuses_writes_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    cli_ok(
        &db,
        &["trainset", "import", "config/training/trainset.json"],
    );
    let before = counts(&db);
    let other = dir.path().join("other.db");
    let attach = format!("ATTACH DATABASE '{}' AS x", other.display());
    let writes = [
        "INSERT INTO programs (name, created_at) VALUES ('p', 'now')",
        "UPDATE examples SET idx = idx + 1000",
        "DELETE FROM examples",
        "DROP TABLE examples",
        attach.as_str(),
        "PRAGMA journal_mode = DELETE",
        "PRAGMA user_version = 7",
        "VACUUM",
        "CREATE TABLE t (x)",
        "SELECT 1; DELETE FROM examples",
    ];
    for q in writes {
        let out = cli(&db, &["sql", q]);
        assert!(!out.status.success(), "`{q}` was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("error"), "{q}: {stderr}");
    }
    assert!(!other.exists(), "ATTACH created a file");
    // A bad statement is reported once, not once per error in the chain.
    let out = cli(&db, &["sql", "SELEC 1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("syntax error").count(), 1, "{stderr}");
    assert_eq!(counts(&db), before);
    let s = Store::open(&db).unwrap();
    let uv: i64 = s
        .conn()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(uv, 0);

    // Reads work, in every output format.
    let out = cli_ok(
        &db,
        &[
            "--json",
            "sql",
            "SELECT category, COUNT(*) AS n FROM examples GROUP BY category ORDER BY category",
        ],
    );
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), 16);
    let out = cli_ok(&db, &["sql", "--csv", "SELECT COUNT(*) AS n FROM examples"]);
    assert!(out.starts_with("n\n"));
    let out = cli_ok(&db, &["sql", "PRAGMA table_info(examples)"]);
    assert!(out.contains("fields_json"));
}

#[test]
fn stratified_split_is_reproducible_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let mut s = Store::open(&db).unwrap();
    let ts = data::load_file(&bundled_trainset(), &Taxonomy::bundled()).unwrap();
    let (row, _) = s.import_trainset("b", "x", &ts).unwrap();
    let a = s
        .split_trainset(row.id, 7, SplitFractions::default())
        .unwrap();
    let b = s
        .split_trainset(row.id, 7, SplitFractions::default())
        .unwrap();
    assert_eq!(a.id, b.id, "same seed reuses the recorded split");
    let parts = |s: &Store, id| -> Vec<Vec<i64>> {
        [Part::Train, Part::Val, Part::Test]
            .iter()
            .map(|p| s.split_part(id, *p).unwrap())
            .collect()
    };
    let pa = parts(&s, a.id);
    // A fresh database with the same seed makes the same split.
    let db2 = dir.path().join("t2.db");
    let mut s2 = Store::open(&db2).unwrap();
    let (row2, _) = s2.import_trainset("b", "x", &ts).unwrap();
    let c = s2
        .split_trainset(row2.id, 7, SplitFractions::default())
        .unwrap();
    assert_eq!(parts(&s2, c.id), pa);
    let d = s
        .split_trainset(row.id, 8, SplitFractions::default())
        .unwrap();
    assert_ne!(parts(&s, d.id), pa);
    let n = ts.examples.len() as f64;
    assert!((a.counts[0] as f64 - 0.4 * n).abs() <= 1.0);
    assert!((a.counts[1] as f64 - 0.3 * n).abs() <= 1.0);
    assert_eq!(a.counts.iter().sum::<i64>(), ts.examples.len() as i64);
    // Stratified: each style appears in every part.
    let examples = s.examples(row.id).unwrap();
    for part in &pa {
        for style in skill_fleet::tasks::skill::schema::SKILL_STYLES {
            assert!(part.iter().any(|id| examples
                .iter()
                .any(|e| e.id == *id && e.style.as_deref() == Some(style))));
        }
    }
    // The CLI reports it too.
    let out = cli_ok(&db, &["trainset", "split", "b", "--seed", "7"]);
    assert!(out.contains(&format!("split #{}", a.id)), "{out}");
}

#[test]
fn concurrent_imports_from_two_processes_both_succeed() {
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let spawn = |file: String| {
            std::process::Command::new(env!("CARGO_BIN_EXE_skill-fleet"))
                .current_dir(root())
                .args(["--db", db.to_str().unwrap(), "trainset", "import", &file])
                .output()
                .unwrap()
        };
        let a = data("valid_small.jsonl").display().to_string();
        let b = "config/training/trainset.json".to_string();
        let (oa, ob) = std::thread::scope(|sc| {
            let ha = sc.spawn(|| spawn(a.clone()));
            let hb = sc.spawn(|| spawn(b.clone()));
            (ha.join().unwrap(), hb.join().unwrap())
        });
        for o in [&oa, &ob] {
            assert!(
                o.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert_eq!(Store::open(&db).unwrap().count("trainsets").unwrap(), 2);
    }
}

#[test]
fn db_info_lists_tables_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let out = cli_ok(&db, &["--json", "db", "info"]);
    let info: Value = serde_json::from_str(&out).unwrap();
    assert!(info["schema_version"].as_i64().unwrap() >= 1);
    assert!(info["file_size_bytes"].as_u64().unwrap() > 0);
    let out = cli_ok(&db, &["db", "info"]);
    assert!(out.contains("schema version") && out.contains("traces"));
}

/// Output piped into a reader that stops early (`skill-fleet ... | head`)
/// ends the command quietly, as SIGPIPE does for other tools, instead of a
/// panic about a broken pipe.
#[test]
fn a_closed_output_pipe_ends_the_command_without_a_panic() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    cli_ok(&db, &["db", "info"]);
    // Far more than a pipe buffer holds, so the command is still writing.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_skill-fleet"))
        .current_dir(root())
        .arg("--db")
        .arg(&db)
        .args([
            "sql",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000) SELECT i FROM n",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}
