//! Growing a trainset: `trainset expand` on the fixture tree of skills in
//! `tests/data/skills` (expected examples, skipped files with their reasons,
//! dropped duplicates), through the real binary.

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
