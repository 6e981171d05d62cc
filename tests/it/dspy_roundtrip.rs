//! Our DSPy export against DSPy itself (dspy==3.4.1, offline: no LM call):
//! `program export`, DSPy's `Module.load` and `Module.save`
//! (tests/dspy_roundtrip.py), then `program register --dspy --base` back.
//!
//! The venv's python comes from `SKILL_FLEET_DSPY_PYTHON`, which
//! scripts/test.sh sets after creating the venv (scripts/dspy_venv.sh).

use crate::util::*;
use serde_json::{json, Value};
use skill_fleet::program::{ModuleKind, ProgramSpec};
use std::path::{Path, PathBuf};
use std::process::Command;

const HOW: &str = "run `bash scripts/test.sh`, or \
    `SKILL_FLEET_DSPY_PYTHON=$(bash scripts/dspy_venv.sh) cargo test dspy_roundtrip`";

/// The python with DSPy; `None` (test skipped, reason on stderr) when not
/// configured, except under CI, where a skipped check would pass unnoticed.
fn dspy_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SKILL_FLEET_DSPY_PYTHON") {
        return Some(PathBuf::from(p));
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "SKILL_FLEET_DSPY_PYTHON is not set (CI is): {HOW}"
    );
    eprintln!("skipped: SKILL_FLEET_DSPY_PYTHON is not set, so DSPy is not available; {HOW}");
    None
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The bundled program with two demos (one with list fields), as `module`.
fn program_with_demos(name: &str, module: ModuleKind) -> ProgramSpec {
    let mut spec =
        ProgramSpec::load(&root().join("config/programs/skill_understanding.yaml")).unwrap();
    spec.name = name.to_string();
    let p = &mut spec.predictors[0];
    p.module = module;
    p.demos = [
        json!({
            "task_description": "Create a Serde Derive skill - derive macros for serialization",
            "taxonomy_path": "rust/serde-derive", "name": "serde-derive", "skill_style": "minimal",
            "subdirectories": ["examples"], "keywords": ["serde", "derive", "rust"],
            "description": "Use when deriving Serialize and Deserialize for Rust structs and enums."
        }),
        json!({
            "task_description": "Create a Web Security skill - an index of web security topics",
            "taxonomy_path": "web/web-security", "name": "web-security",
            "skill_style": "navigation_hub", "subdirectories": [],
            "keywords": ["security", "web", "owasp"],
            "description": "Use when looking for the right guide among web security topics."
        }),
    ]
    .into_iter()
    .map(|d| d.as_object().cloned().unwrap())
    .collect();
    spec
}

/// Registers `spec`, exports it, loads and saves it with DSPy, registers the
/// DSPy-saved file onto it: the same version and content hash come back.
fn round_trip(python: &Path, spec: &ProgramSpec) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let yaml = dir.path().join("program.yaml");
    std::fs::write(&yaml, serde_yaml::to_string(spec).unwrap()).unwrap();
    let yaml_s = yaml.to_str().unwrap();
    let registered: Value =
        serde_json::from_str(&cli_ok(&db, &["--json", "program", "register", yaml_s])).unwrap();
    let original = &registered["version"];

    let exported = dir.path().join("exported.json");
    let loaded = dir.path().join("loaded.json");
    let saved = dir.path().join("saved.json");
    cli_ok(
        &db,
        &[
            "program",
            "export",
            &spec.name,
            "--out",
            exported.to_str().unwrap(),
        ],
    );
    let out = Command::new(python)
        .arg(root().join("tests/dspy_roundtrip.py"))
        .args([&exported, &loaded, &saved])
        .current_dir(dir.path())
        .env("DSPY_CACHEDIR", dir.path().join("dspy-cache"))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}; {HOW}", python.display()));
    assert!(
        out.status.success(),
        "DSPy could not load or save {}:\n{}",
        exported.display(),
        String::from_utf8_lossy(&out.stderr)
    );

    // What DSPy holds after `Module.load`: our instructions and demos, no warnings.
    let loaded = read_json(&loaded);
    assert_eq!(loaded["warnings"], json!([]), "DSPy warned while loading");
    let p = &spec.predictors[0];
    let key = match p.module {
        ModuleKind::ChainOfThought => format!("{}.predict", p.name),
        ModuleKind::Predict => p.name.clone(),
    };
    let preds = loaded["predictors"].as_object().unwrap();
    assert_eq!(preds.keys().collect::<Vec<_>>(), vec![&key]);
    let got = &preds[&key];
    assert_eq!(got["instructions"], json!(p.signature.instructions));
    let demos: Vec<Value> = got["demos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d.as_object_mut().unwrap().remove("augmented");
            d
        })
        .collect();
    assert_eq!(
        demos,
        p.demos
            .iter()
            .cloned()
            .map(Value::Object)
            .collect::<Vec<_>>()
    );
    let fields = got["fields"].as_array().unwrap();
    let exported_fields = read_json(&exported)[&key]["signature"]["fields"].clone();
    assert_eq!(fields.len(), exported_fields.as_array().unwrap().len());
    for (dspy_field, ours) in fields.iter().zip(exported_fields.as_array().unwrap()) {
        assert_eq!(dspy_field["prefix"], ours["prefix"]);
        assert_eq!(dspy_field["description"], ours["description"]);
    }

    // DSPy's own save, imported onto the original: the same stored version.
    let back: Value = serde_json::from_str(&cli_ok(
        &db,
        &[
            "--json",
            "program",
            "register",
            "--dspy",
            saved.to_str().unwrap(),
            "--base",
            &spec.name,
        ],
    ))
    .unwrap();
    assert_eq!(back["version"]["content_hash"], original["content_hash"]);
    assert_eq!(back["version"]["version"], original["version"]);
    assert_eq!(back["created"], json!(false));
}

#[test]
fn dspy_loads_our_predict_export_and_its_save_imports_to_the_same_hash() {
    let Some(python) = dspy_python() else { return };
    round_trip(
        &python,
        &program_with_demos("skill_understanding", ModuleKind::Predict),
    );
}

#[test]
fn dspy_loads_our_chain_of_thought_export_and_its_save_imports_to_the_same_hash() {
    let Some(python) = dspy_python() else { return };
    round_trip(
        &python,
        &program_with_demos("skill_understanding_cot", ModuleKind::ChainOfThought),
    );
}
