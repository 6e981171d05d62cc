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
