//! A/B tests through the binary: sticky routing across processes and weight
//! changes, outcomes and status, conclude with promotion, `predict --ab`
//! against the stub LM server, and the errors bad input gets.

use crate::util::{cli, cli_ok, query, root, stub_config, StubLmServer, SKILL_ANSWER};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PROGRAM: &str = "skill_understanding";

/// A database with versions 1 and 2 of the bundled program (version 2's
/// instructions start with one more sentence).
fn two_versions(dir: &Path) -> PathBuf {
    let db = dir.join("t.db");
    let bundled = root().join("config/programs/skill_understanding.yaml");
    let text = std::fs::read_to_string(&bundled).unwrap();
    assert!(text.contains("Turn a request to create"));
    let v2 = dir.join("v2.yaml");
    std::fs::write(
        &v2,
        text.replacen(
            "Turn a request to create",
            "Be precise. Turn a request to create",
            1,
        ),
    )
    .unwrap();
    cli_ok(&db, &["program", "register", bundled.to_str().unwrap()]);
    cli_ok(&db, &["program", "register", v2.to_str().unwrap()]);
    db
}

fn create(db: &Path, name: &str, variants: &[&str], strategy: &str) {
    let mut args = vec![
        "ab",
        "create",
        PROGRAM,
        "--name",
        name,
        "--strategy",
        strategy,
    ];
    for v in variants {
        args.extend(["--variant", v]);
    }
    cli_ok(db, &args);
}

/// Routes every key of `keys_file` in one process: key -> variant.
fn route_file(db: &Path, test: &str, keys_file: &Path) -> HashMap<String, String> {
    cli_ok(
        db,
        &[
            "ab",
            "route",
            test,
            "--keys-file",
            keys_file.to_str().unwrap(),
        ],
    )
    .lines()
    .map(|l| {
        let (k, v) = l.split_once('\t').expect("key<TAB>variant");
        (k.to_string(), v.to_string())
    })
    .collect()
}

fn keys_file(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("keys.txt");
    let keys: Vec<String> = (0..n).map(|i| format!("user-{i}")).collect();
    std::fs::write(&path, keys.join("\n")).unwrap();
    path
}

fn json(db: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend(args);
    serde_json::from_str(&cli_ok(db, &all)).unwrap()
}

fn err(db: &Path, args: &[&str]) -> String {
    let out = cli(db, args);
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn sticky_routing_of_10000_keys_is_identical_in_two_processes_and_splits_90_10() {
    let dir = tempfile::tempdir().unwrap();
    let db = two_versions(dir.path());
    create(&db, "split", &["V1=90", "V2=10"], "sticky");
    let keys = keys_file(dir.path(), 10_000);
    let first = route_file(&db, "split", &keys);
    let second = route_file(&db, "split", &keys);
    assert_eq!(first.len(), 10_000);
    assert_eq!(first, second, "a key changed variant between processes");
    let v1 = first.values().filter(|v| *v == "V1").count();
    assert!((8_800..=9_200).contains(&v1), "V1 got {v1} of 10000 keys");
    // Every routing is a row: two passes of 10,000 keys.
    let rows = query(&db, "SELECT COUNT(*) AS n FROM ab_assignments");
    assert_eq!(rows[0]["n"], 20_000);
}

#[test]
fn changing_90_10_to_80_20_moves_only_keys_from_v1_to_v2_about_a_tenth_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = two_versions(dir.path());
    create(&db, "shift", &["V1=90", "V2=10"], "sticky");
    let keys = keys_file(dir.path(), 10_000);
    let before = route_file(&db, "shift", &keys);
    cli_ok(
        &db,
        &[
            "ab",
            "weights",
            "shift",
            "--variant",
            "V1=80",
            "--variant",
            "V2=20",
        ],
    );
    let after = route_file(&db, "shift", &keys);
    let moved: Vec<&String> = before.keys().filter(|k| before[*k] != after[*k]).collect();
    for k in &moved {
        assert_eq!(
            (before[*k].as_str(), after[*k].as_str()),
            ("V1", "V2"),
            "key {k} moved the wrong way"
        );
    }
    assert!(
        (800..=1_200).contains(&moved.len()),
        "{} keys moved",
        moved.len()
    );
    let history = query(
        &db,
        "SELECT v.name, h.weight FROM ab_weight_history h JOIN ab_variants v ON v.id = h.variant_id ORDER BY h.id",
    );
    let weights: Vec<(String, f64)> = history
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().into(),
                r["weight"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        weights,
        [("V1", 90.0), ("V2", 10.0), ("V1", 80.0), ("V2", 20.0)].map(|(n, w)| (n.to_string(), w))
    );
}

#[test]
fn random_routing_draws_each_request_anew_by_weight() {
    let dir = tempfile::tempdir().unwrap();
    let db = two_versions(dir.path());
    create(&db, "coin", &["V1=1", "V2=1"], "random");
    let path = dir.path().join("same.txt");
    std::fs::write(&path, vec!["same-user"; 2_000].join("\n")).unwrap();
    let routed = json(
        &db,
        &["ab", "route", "coin", "--keys-file", path.to_str().unwrap()],
    );
    let v1 = routed
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["variant"] == "V1")
        .count();
    assert!((900..=1_100).contains(&v1), "V1 got {v1} of 2000 requests");
}

#[test]
fn create_route_record_status_and_conclude_with_promote_moves_the_alias_to_the_winner() {
    let dir = tempfile::tempdir().unwrap();
    let db = two_versions(dir.path());
    cli_ok(
        &db,
        &["program", "alias", PROGRAM, "production", "--version", "1"],
    );
    create(&db, "e2e", &["V1=1", "V2=1"], "sticky");
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let mut variants = HashMap::new();
    for k in &keys {
        let r = json(&db, &["ab", "route", "e2e", "--key", k]);
        variants.insert(k.clone(), r[0]["variant"].as_str().unwrap().to_string());
    }
    // V2 always succeeds, V1 always fails.
    for k in &keys {
        let flag = if variants[k] == "V2" {
            "--success"
        } else {
            "--failure"
        };
        let r = json(&db, &["ab", "record", "e2e", "--key", k, flag]);
        assert_eq!(r["variant"].as_str(), Some(variants[k].as_str()));
    }
    let n2 = variants.values().filter(|v| *v == "V2").count() as u64;
    assert!((5..=35).contains(&n2), "{n2}");
    let status = json(&db, &["ab", "status", "e2e", "--min-outcomes", "5"]);
    assert_eq!(status["measure"], "binary");
    assert_eq!(status["interval"], "wilson");
    let rows = status["variants"].as_array().unwrap();
    let v2 = rows.iter().find(|v| v["variant"] == "V2").unwrap();
    assert_eq!(v2["outcomes"].as_u64(), Some(n2));
    assert_eq!(v2["requests"].as_u64(), Some(n2));
    assert_eq!(v2["mean"].as_f64(), Some(1.0));
    assert!(v2["ci_low"].as_f64().unwrap() > 0.5, "{v2}");
    assert!(v2["p_best"].as_f64().unwrap() > 0.99, "{v2}");
    assert_eq!(status["decision"]["stop"], true, "{status}");
    assert_eq!(status["decision"]["leader"], "V2");
    // The default minimum (100 outcomes) is not met yet.
    let strict = json(&db, &["ab", "status", "e2e"]);
    assert_eq!(strict["decision"]["stop"], false);
    assert!(strict["decision"]["reason"]
        .as_str()
        .unwrap()
        .contains("fewer than the minimum 100"));
    // One kind of outcome per test.
    let e = err(
        &db,
        &["ab", "record", "e2e", "--key", "k0", "--score", "0.5"],
    );
    assert!(e.contains("success/failure"), "{e}");

    let done = json(
        &db,
        &[
            "ab",
            "conclude",
            "e2e",
            "--winner",
            "V2",
            "--promote",
            "production",
        ],
    );
    assert_eq!(done["status"], "concluded");
    assert_eq!(done["winner"], "V2");
    let alias = query(
        &db,
        "SELECT v.version, h.action, h.reason FROM aliases a JOIN program_versions v ON v.id = a.version_id \
         JOIN alias_history h ON h.alias = a.alias AND h.to_version_id = a.version_id WHERE a.alias = 'production'",
    );
    assert_eq!(alias[0]["version"], 2, "{alias:?}");
    assert_eq!(alias[0]["action"], "promote");
    assert!(alias[0]["reason"].as_str().unwrap().contains("e2e"));
    let e = err(&db, &["ab", "route", "e2e", "--key", "late"]);
    assert!(e.contains("concluded"), "{e}");
    let list = json(&db, &["ab", "list"]);
    assert_eq!(list[0]["promoted_alias"], "production");
}

#[test]
fn score_outcomes_get_student_t_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let db = two_versions(dir.path());
    create(&db, "scores", &["V1=1", "V2=1"], "sticky");
    for (i, score) in ["0.2", "0.4", "0.6", "0.8", "-0.5", "1.5"]
        .iter()
        .enumerate()
    {
        let key = format!("s{i}");
        cli_ok(&db, &["ab", "route", "scores", "--key", &key]);
        cli_ok(
            &db,
            &["ab", "record", "scores", "--key", &key, "--score", score],
        );
    }
    let status = json(&db, &["ab", "status", "scores", "--min-outcomes", "1"]);
    assert_eq!(status["measure"], "score");
    assert_eq!(status["interval"], "student-t");
    let total: u64 = status["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["outcomes"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 6);
}

#[test]
fn predict_through_an_ab_test_runs_the_routed_version_and_stores_the_assignment() {
    let dir = tempfile::tempdir().unwrap();
    let db = two_versions(dir.path());
    let server = StubLmServer::start(SKILL_ANSWER, Duration::ZERO);
    let config = stub_config(dir.path(), &server.url);
    create(&db, "live", &["V1=50", "V2=50"], "sticky");
    let input =
        r#"{"task_description": "Create a tokio task cancellation skill: cancel tasks safely"}"#;
    let config = config.to_str().unwrap();
    let predict = |json: bool| {
        let mut args = vec![
            "--config", config, "predict", "--ab", "live", "--key", "alice", "--input", input,
        ];
        if json {
            args.insert(0, "--json");
        }
        cli_ok(&db, &args)
    };
    let r: Value = serde_json::from_str(&predict(true)).unwrap();
    let variant = r["ab"]["variant"].as_str().unwrap().to_string();
    assert_eq!(r["ab"]["test"], "live");
    assert_eq!(format!("V{}", r["version"]), variant, "{r}");
    assert_eq!(r["outputs"]["name"], "tokio-task-cancellation", "{r}");
    assert!(server.task_hits() >= 1);
    // The prediction's traces name the version that answered.
    let traced = query(&db, "SELECT version_id FROM traces");
    assert!(!traced.is_empty());
    assert!(
        traced
            .iter()
            .all(|t| t["version_id"] == r["ab"]["version_id"]),
        "{traced:?} vs {}",
        r["ab"]
    );
    let rows = query(
        &db,
        "SELECT a.unit_key, v.name FROM ab_assignments a JOIN ab_variants v ON v.id = a.variant_id",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["unit_key"], "alice");
    assert_eq!(rows[0]["name"].as_str(), Some(variant.as_str()));
    // Sticky: routing alice again names the same variant, and the outcome
    // of the prediction can be recorded against her assignment.
    let again = json(&db, &["ab", "route", "live", "--key", "alice"]);
    assert_eq!(again[0]["variant"].as_str(), Some(variant.as_str()));
    cli_ok(
        &db,
        &["ab", "record", "live", "--key", "alice", "--success"],
    );
    // The text form names the variant too.
    let text = predict(false);
    assert!(text.contains(&format!("to variant {variant}")), "{text}");
}

#[test]
fn bad_input_is_refused_naming_the_flag_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let db = two_versions(dir.path());
    let create_with = |variants: &[&str]| {
        let mut args = vec!["ab", "create", PROGRAM];
        for v in variants {
            args.extend(["--variant", v]);
        }
        err(&db, &args)
    };
    let e = create_with(&["V1=90", "V9=10"]);
    assert!(
        e.contains("program version not found") && e.contains("v9"),
        "{e}"
    );
    let e = create_with(&["V1=90", "V2=0"]);
    assert!(e.contains("--variant") && e.contains("positive"), "{e}");
    let e = create_with(&["V1=90", "V2=ten"]);
    assert!(e.contains("--variant") && e.contains("not a number"), "{e}");
    let e = create_with(&["V1=90"]);
    assert!(e.contains("at least two variants"), "{e}");
    let e = create_with(&["V1=90", "v1=10"]);
    assert!(e.contains("given twice"), "{e}");
    let e = err(&db, &["ab", "route", "nope", "--key", "u"]);
    assert!(e.contains("A/B test not found: nope"), "{e}");
    let e = err(&db, &["ab", "status", "nope"]);
    assert!(e.contains("A/B test not found: nope"), "{e}");

    create(&db, "t", &["V1=90", "V2=10"], "sticky");
    let e = err(
        &db,
        &["ab", "record", "t", "--key", "stranger", "--success"],
    );
    assert!(e.contains("--key") && e.contains("never routed"), "{e}");
    let e = err(&db, &["ab", "weights", "t", "--variant", "V3=5"]);
    assert!(
        e.contains("variant not found") && e.contains("V1, V2"),
        "{e}"
    );
    let e = err(&db, &["ab", "conclude", "t", "--winner", "V7"]);
    assert!(e.contains("variant not found"), "{e}");
    let e = err(
        &db,
        &[
            "ab",
            "create",
            PROGRAM,
            "--variant",
            "V1=1",
            "--variant",
            "V2=1",
            "--strategy",
            "roundrobin",
        ],
    );
    assert!(
        e.contains("--strategy") && e.contains("sticky or random"),
        "{e}"
    );
    let e = err(
        &db,
        &[
            "ab",
            "create",
            PROGRAM,
            "--name",
            "t",
            "--variant",
            "V1=1",
            "--variant",
            "V2=1",
        ],
    );
    assert!(e.contains("exists already"), "{e}");
}
