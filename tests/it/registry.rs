//! The registry and version comparison through the real binary, on a real
//! SQLite file, with a stub LM on loopback whose answers depend on the
//! version's instructions (so two versions really score differently).

use crate::util::*;

/// A database with versions 1 (marker GOOD), 2 (BAD) and 3 (BEST) of the
/// bundled program and a split trainset `small`; the stub answers a prompt
/// holding BAD with an unusable answer, so version 2 scores worse.
fn fixture() -> StubProject {
    let f = StubProject::new(
        std::sync::Arc::new(|prompt: &str| {
            if prompt.contains("BAD.") {
                " nothing useful".to_string()
            } else {
                SKILL_ANSWER.to_string()
            }
        }),
        20,
    );
    f.ok(&["trainset", "split", "small"]);
    f.register_variants(&["GOOD", "BAD", "BEST"]);
    f
}

const P: &str = "skill_understanding";

#[test]
fn rollback_after_two_promotions_returns_to_the_first_and_rolling_back_the_rollback_restores_the_second(
) {
    let f = fixture();
    f.ok(&["versions", "promote", P, "1", "--reason", "first release"]);
    f.ok(&[
        "versions",
        "promote",
        P,
        "3",
        "--reason",
        "better instructions",
    ]);
    assert_eq!(f.alias_version("production"), 3);

    let m = f.json(&["versions", "rollback", P, "--reason", "regression seen"]);
    assert_eq!(
        (m["from_version"].as_i64(), m["to_version"].as_i64()),
        (Some(3), Some(1))
    );
    assert_eq!(f.alias_version("production"), 1);

    f.ok(&["versions", "rollback", P]);
    assert_eq!(f.alias_version("production"), 3);

    let history = f.json(&["versions", "history", P, "--alias", "production"]);
    let moves: Vec<(String, Option<i64>, i64)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["action"].as_str().unwrap().to_string(),
                m["from_version"].as_i64(),
                m["to_version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        vec![
            ("rollback".to_string(), Some(1), 3),
            ("rollback".to_string(), Some(3), 1),
            ("promote".to_string(), Some(1), 3),
            ("promote".to_string(), None, 1),
        ]
    );
    assert_eq!(history[1]["reason"], "regression seen");
    assert!(history[1]["at"].as_str().is_some_and(|t| !t.is_empty()));

    // --to names any version; an alias that never moved has nothing to roll back to.
    f.ok(&["versions", "rollback", P, "--to", "2"]);
    assert_eq!(f.alias_version("production"), 2);
    f.ok(&["versions", "promote", P, "1", "--alias", "staging"]);
    let out = f.cli(&["versions", "rollback", P, "--alias", "staging"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no earlier version"));
}

#[test]
fn aliases_with_characters_outside_letters_digits_dash_underscore_are_refused() {
    let f = fixture();
    for bad in ["prod uction", "prod/1", "", "ünicode"] {
        let out = f.cli(&["versions", "promote", P, "1", "--alias", bad]);
        assert!(!out.status.success(), "{bad:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("letters, digits, `-` or `_`"),
            "{bad:?}: {err}"
        );
    }
    let out = f.cli(&["program", "alias", P, "a.b", "--version", "1"]);
    assert!(!out.status.success());
    f.ok(&["versions", "promote", P, "1", "--alias", "canary-2_b"]);
    assert_eq!(f.alias_version("canary-2_b"), 1);
}

#[test]
fn require_better_refuses_a_worse_version_and_accepts_one_a_comparison_supports() {
    let f = fixture();
    f.ok(&["versions", "promote", P, "1"]);

    // No comparison yet: refused, and the message says what to run.
    let out = f.cli(&["versions", "promote", P, "2", "--require-better"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no stored comparison") && err.contains("skill-fleet compare"),
        "{err}"
    );

    let c = f.json(&[
        "compare",
        P,
        "1",
        "2",
        "--trainset",
        "small",
        "--split",
        "test",
    ]);
    assert!(c["summary"]["mean_diff"].as_f64().unwrap() < 0.0, "{c}");
    let out = f.cli(&["versions", "promote", P, "2", "--require-better"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("promotion refused") && err.contains("worse than v1"),
        "{err}"
    );
    assert_eq!(f.alias_version("production"), 1);
    // A generous margin lets the same comparison through.
    f.ok(&[
        "versions",
        "promote",
        P,
        "2",
        "--require-better",
        "--margin",
        "1.0",
    ]);
    assert_eq!(f.alias_version("production"), 2);

    // Version 3 against the current (2): the comparison is stored the other
    // way round (3 as reference); the gate reads it from the new version's side.
    f.ok(&["compare", P, "3", "2", "--trainset", "small"]);
    let m = f.json(&["versions", "promote", P, "3", "--require-better"]);
    let comparison_id = m["comparison_id"].as_i64().expect("the evidence is named");
    let history = f.json(&["versions", "history", P]);
    assert_eq!(history[0]["comparison_id"].as_i64(), Some(comparison_id));
    assert_eq!(f.alias_version("production"), 3);
}

#[test]
fn compare_pairs_examples_stores_the_result_and_reuses_stored_scores_the_second_time() {
    let f = fixture();
    let c = f.json(&["compare", P, "1", "2", "--trainset", "small", "--seed", "3"]);
    let s = &c["summary"];
    let n = s["n"].as_i64().unwrap();
    let test_size = query(
        &f.db,
        "SELECT COUNT(*) AS n FROM split_assignments WHERE part = 'test'",
    )[0]["n"]
        .as_i64()
        .unwrap();
    assert_eq!(n, test_size);
    let (wins, losses, ties) = (
        s["wins"].as_i64().unwrap(),
        s["losses"].as_i64().unwrap(),
        s["ties"].as_i64().unwrap(),
    );
    assert_eq!(wins + losses + ties, n);
    // Per-example rows add up to the headline numbers.
    let examples = c["examples"].as_array().unwrap();
    let mean = |k: &str| examples.iter().map(|e| e[k].as_f64().unwrap()).sum::<f64>() / n as f64;
    assert!((mean("a_score") - s["a_mean"].as_f64().unwrap()).abs() < 1e-9);
    assert!((mean("b_score") - s["b_mean"].as_f64().unwrap()).abs() < 1e-9);
    assert!(s["ci_low"].as_f64().unwrap() <= s["mean_diff"].as_f64().unwrap());
    assert!(s["mean_diff"].as_f64().unwrap() <= s["ci_high"].as_f64().unwrap());
    assert_eq!(c["a_reused"], false);
    let stored = query(
        &f.db,
        "SELECT id, n, mean_diff, seed, a_version_id, b_version_id FROM comparisons",
    );
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["id"], c["id"]);
    assert_eq!(stored[0]["seed"].as_i64(), Some(3));

    // The same comparison again: both sides come from stored scores, no LM call.
    let hits = f.server.hits();
    let again = f.json(&["compare", P, "1", "2", "--trainset", "small", "--seed", "3"]);
    assert_eq!(f.server.hits(), hits, "the second compare called the LM");
    assert_eq!(
        (again["a_reused"].as_bool(), again["b_reused"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(again["summary"], c["summary"]);
    assert_eq!(query(&f.db, "SELECT id FROM comparisons").len(), 2);

    // The text form names the interval and the sign test.
    let text = f.ok(&["compare", P, "1", "2", "--trainset", "small"]);
    assert!(
        text.contains("paired bootstrap interval") && text.contains("sign test p ="),
        "{text}"
    );
    let bad = f.cli(&["compare", P, "1", "1", "--trainset", "small"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("two different versions"));
}

#[test]
fn versions_diff_shows_changed_instructions_side_by_side_and_list_shows_aliases() {
    let f = fixture();
    f.ok(&["versions", "promote", P, "3", "--alias", "staging"]);
    let text = f.ok(&["versions", "diff", P, "1", "3"]);
    assert!(text.contains("== predictor understand"), "{text}");
    assert!(text.contains("instructions (v1 | v3"), "{text}");
    let marked: Vec<&str> = text.lines().filter(|l| l.starts_with("* ")).collect();
    assert!(
        marked
            .iter()
            .any(|l| l.contains("GOOD") && l.contains("BEST")),
        "{text}"
    );
    let d = f.json(&["versions", "diff", P, "1", "3"]);
    assert_eq!(d["predictors"][0]["instructions_changed"], true);
    assert!(d["other_changes"].as_array().unwrap().is_empty(), "{d}");

    let list = f.json(&["versions", "list", P]);
    let v3 = list
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == 3)
        .unwrap();
    assert_eq!(v3["aliases"], serde_json::json!(["staging"]));
    let show = f.ok(&["versions", "show", P, "3"]);
    assert!(
        show.contains("aliases:  staging") && show.contains("BEST"),
        "{show}"
    );
}

#[test]
fn report_compare_renders_the_stored_comparison_in_every_format_and_the_html_opens_cleanly() {
    let f = fixture();
    let missing = f.cli(&["report", "compare", P, "1", "2"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no stored comparison"));
    let c = f.json(&[
        "compare",
        P,
        "1",
        "2",
        "--trainset",
        "small",
        "--split",
        "test",
    ]);
    let n = c["summary"]["n"].as_u64().unwrap() as usize;

    let md = f.ok(&["report", "compare", P, "1", "2", "--format", "md"]);
    assert!(
        md.contains("paired bootstrap interval") && md.contains("Most changed examples"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&f.ok(&["report", "compare", P, "1", "2", "--format", "json"]))
            .unwrap();
    assert_eq!(json["summary"], c["summary"]);
    let csv = f.ok(&["report", "compare", P, "1", "2", "--format", "csv"]);
    let records = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(records.len(), n, "one row per example");
    assert!(csv.starts_with("example_id,a_version,b_version,a_score,b_score,diff,outcome"));

    let html = f.dir.path().join("compare.html");
    f.ok(&[
        "report",
        "compare",
        P,
        "1",
        "2",
        "--format",
        "html",
        "-o",
        html.to_str().unwrap(),
    ]);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Per-example differences") && !page.contains("<script src="));
    let verdict = browser_check(&html, &f.dir.path().join("compare.png"));
    assert_page_renders_cleanly(&verdict);
}
