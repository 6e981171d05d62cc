//! Issue 4: adapters, parsing, metrics (hand-computed), DSPy JSON round trip,
//! and program runs with a scripted test double for the language model.

use serde_json::{json, Map, Value};
use skill_fleet::config::RetryConfig;
use skill_fleet::lm::client::{CallContext, LmClient};
use skill_fleet::lm::scripted::ScriptedModel;
use skill_fleet::lm::Prompt;
use skill_fleet::metrics::{self, Metric};
use skill_fleet::program::adapter::{self, ParseError};
use skill_fleet::program::dspy::{export_dspy_json, import_dspy_json, import_dspy_json_onto};
use skill_fleet::program::run::prompt_text;
use skill_fleet::program::{run_program, AdapterKind, ProgramSpec};
use std::sync::Arc;

fn bundled() -> ProgramSpec {
    ProgramSpec::load(&crate::util::root().join("config/programs/skill_understanding.yaml"))
        .unwrap()
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn constants() -> Map<String, Value> {
    obj(json!({"categories": "python, rust, web"}))
}

fn demo() -> Map<String, Value> {
    obj(json!({
        "task_description": "Create a Serde Derive skill: derive macros for serialization",
        "taxonomy_path": "rust/serde-derive", "name": "serde-derive", "skill_style": "minimal",
        "subdirectories": ["examples"], "keywords": ["serde", "derive", "rust"],
        "description": "Use when deriving Serialize and Deserialize for Rust structs and enums with field attributes and renames in everyday code."
    }))
}

fn with_demo(kind: AdapterKind) -> ProgramSpec {
    let mut spec = bundled();
    spec.adapter = kind;
    spec.predictors[0].demos = vec![demo()];
    spec
}

fn input() -> Map<String, Value> {
    obj(json!({"task_description": "Create a Tokio Select skill: racing futures with select!"}))
}

/// Rendering is stable: the exact prompt of each adapter is pinned here.
#[test]
fn completion_rendering_snapshot() {
    let spec = with_demo(AdapterKind::Completion);
    let r = adapter::render(spec.adapter, &spec.predictors[0], &constants(), &input());
    let text = prompt_text(&r.prompt);
    let expected_tail = "---\n\nTask Description: Create a Serde Derive skill: derive macros for serialization\nTaxonomy Path: rust/serde-derive\nName: serde-derive\nSkill Style: minimal\nSubdirectories: examples\nKeywords: serde, derive, rust\nDescription: Use when deriving Serialize and Deserialize for Rust structs and enums with field attributes and renames in everyday code.\n\n---\n\nTask Description: Create a Tokio Select skill: racing futures with select!\nTaxonomy Path:";
    assert!(text.ends_with(expected_tail), "{text}");
    assert!(text.contains("\nCategories: python, rust, web\n"));
    assert!(text.contains("Skill Style: one of: comprehensive, navigation_hub, minimal\n"));
    assert_eq!(
        r.stop,
        vec![
            "\n\n".to_string(),
            "\n---".to_string(),
            "\nTask Description:".to_string()
        ]
    );
    // Stable: the same call renders the same bytes.
    let again = adapter::render(spec.adapter, &spec.predictors[0], &constants(), &input());
    assert_eq!(again, r);
}

#[test]
fn chat_rendering_snapshot() {
    let spec = with_demo(AdapterKind::Chat);
    let r = adapter::render(spec.adapter, &spec.predictors[0], &constants(), &input());
    let Prompt::Chat(m) = &r.prompt else {
        panic!("chat adapter renders messages")
    };
    assert_eq!(m.len(), 4);
    assert_eq!(m[0].role, "system");
    assert!(
        m[0].content
            .starts_with("Your input fields are:\n1. `task_description` (str)"),
        "{}",
        m[0].content
    );
    assert!(m[0]
        .content
        .contains("[[ ## taxonomy_path ## ]]\n{taxonomy_path}"));
    assert!(m[0]
        .content
        .contains("Fixed context `categories`: python, rust, web"));
    assert_eq!(m[1].content, "[[ ## task_description ## ]]\nCreate a Serde Derive skill: derive macros for serialization\n\nRespond with the corresponding output fields, starting with the field `[[ ## taxonomy_path ## ]]`, then `[[ ## name ## ]]`, then `[[ ## skill_style ## ]]`, then `[[ ## subdirectories ## ]]`, then `[[ ## keywords ## ]]`, then `[[ ## description ## ]]`, and then ending with the marker for `[[ ## completed ## ]]`.");
    assert!(m[2].content.starts_with(
        "[[ ## taxonomy_path ## ]]\nrust/serde-derive\n\n[[ ## name ## ]]\nserde-derive"
    ));
    assert!(m[2].content.ends_with("[[ ## completed ## ]]"));
    assert_eq!(r.stop, vec!["[[ ## completed ## ]]".to_string()]);
}

#[test]
fn json_rendering_snapshot() {
    let spec = with_demo(AdapterKind::Json);
    let r = adapter::render(spec.adapter, &spec.predictors[0], &constants(), &input());
    let Prompt::Chat(m) = &r.prompt else { panic!() };
    // A JSON answer ends with its object; there is no end marker to stop at.
    assert!(r.stop.is_empty(), "{:?}", r.stop);
    assert!(m[0].content.contains("Answer with one JSON object with the keys \"taxonomy_path\", \"name\", \"skill_style\", \"subdirectories\", \"keywords\", \"description\""));
    let demo_answer: Value = serde_json::from_str(&m[2].content).unwrap();
    assert_eq!(demo_answer["keywords"], json!(["serde", "derive", "rust"]));
}

const GOOD: &str = " rust/tokio-select\nName: tokio-select\nSkill Style: minimal\nSubdirectories: examples\nKeywords: tokio, select, async\nDescription: Use when racing several futures with tokio select and cancelling the losers in async Rust code.";

#[test]
fn completion_parsing_accepts_good_and_rejects_bad_answers() {
    let spec = bundled();
    let p = &spec.predictors[0];
    let out = adapter::parse(AdapterKind::Completion, p, GOOD).unwrap();
    assert_eq!(out["taxonomy_path"], "rust/tokio-select");
    assert_eq!(out["skill_style"], "minimal");
    assert_eq!(out["subdirectories"], json!(["examples"]));
    assert_eq!(out["keywords"], json!(["tokio", "select", "async"]));
    // Lenient literal: case, separators.
    let out = adapter::parse(
        AdapterKind::Completion,
        p,
        &GOOD.replace("minimal", "Navigation Hub"),
    )
    .unwrap();
    assert_eq!(out["skill_style"], "navigation_hub");
    // Wrong literal.
    match adapter::parse(
        AdapterKind::Completion,
        p,
        &GOOD.replace("minimal", "detailed"),
    ) {
        Err(ParseError::Invalid { field, message }) => {
            assert_eq!(field, "skill_style");
            assert!(message.contains("not one of"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Missing field.
    let no_desc = GOOD.split("\nDescription:").next().unwrap();
    assert_eq!(
        adapter::parse(AdapterKind::Completion, p, no_desc),
        Err(ParseError::Missing("description".into()))
    );
    // Malformed list item (not in the Literal set).
    match adapter::parse(
        AdapterKind::Completion,
        p,
        &GOOD.replace("Subdirectories: examples", "Subdirectories: examples, docs"),
    ) {
        Err(ParseError::Invalid { field, .. }) => assert_eq!(field, "subdirectories"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn chat_and_json_parsing() {
    let spec = bundled();
    let p = &spec.predictors[0];
    let chat = "[[ ## taxonomy_path ## ]]\nrust/tokio-select\n\n[[ ## name ## ]]\ntokio-select\n\n[[ ## skill_style ## ]]\nminimal\n\n[[ ## subdirectories ## ]]\n[\"examples\"]\n\n[[ ## keywords ## ]]\ntokio, select, async\n\n[[ ## description ## ]]\nUse when racing futures.\n\n[[ ## completed ## ]]";
    let out = adapter::parse(AdapterKind::Chat, p, chat).unwrap();
    assert_eq!(out["subdirectories"], json!(["examples"]));
    // Cut by the stop at the end marker (the server leaves the marker out):
    // the last field ends with the text.
    let stopped = chat.trim_end_matches("[[ ## completed ## ]]");
    assert_ne!(stopped, chat);
    assert_eq!(
        adapter::parse(AdapterKind::Chat, p, stopped),
        Ok(out.clone())
    );
    // What a base model writes when nothing stops it: another turn after the
    // marker, which must not change the answer.
    let ran_on = format!("{chat}]<|im_end|>\n<|im_start|>user\n[[ ## task_description ## ]]\nCreate a skill\n\n[[ ## name ## ]]\nother");
    assert_eq!(adapter::parse(AdapterKind::Chat, p, &ran_on), Ok(out));
    assert_eq!(
        adapter::parse(AdapterKind::Chat, p, "[[ ## name ## ]]\nx"),
        Err(ParseError::Missing("taxonomy_path".into()))
    );
    let js = r#"Sure: {"taxonomy_path": "rust/tokio-select", "name": "tokio-select", "skill_style": "minimal", "subdirectories": [], "keywords": ["a","b","c"], "description": "Use when x."}"#;
    let out = adapter::parse(AdapterKind::Json, p, js).unwrap();
    assert_eq!(out["subdirectories"], json!([]));
    assert!(matches!(
        adapter::parse(AdapterKind::Json, p, "no json here"),
        Err(ParseError::NoJson(_))
    ));
    assert!(matches!(
        adapter::parse(AdapterKind::Json, p, r#"{"taxonomy_path": "x"#),
        Err(ParseError::NoJson(_))
    ));
}

fn gold() -> Map<String, Value> {
    obj(json!({
        "taxonomy_path": "rust/tokio-select", "name": "tokio-select", "skill_style": "minimal",
        "subdirectories": ["examples"], "keywords": ["tokio", "select", "async"],
        "description": "Use when racing several futures with tokio select and cancelling the losers in async Rust code."
    }))
}

async fn score(name: &str, g: &Map<String, Value>, p: &Map<String, Value>) -> f64 {
    let m = metrics::resolve(name, &Default::default(), None).unwrap();
    m.score(g, p).await.score
}

#[tokio::test]
async fn metrics_match_hand_computed_values() {
    let g = gold();
    // Exact path 1.0; same category 0.7; other category 0.
    assert_eq!(score("taxonomy_accuracy", &g, &g).await, 1.0);
    let mut p = g.clone();
    p.insert("taxonomy_path".into(), json!("rust/select"));
    assert_eq!(score("taxonomy_accuracy", &g, &p).await, 0.7);
    p.insert("taxonomy_path".into(), json!("web/tokio-select"));
    assert_eq!(score("taxonomy_accuracy", &g, &p).await, 0.0);
    // metadata_quality of gold: every criterion met = 1.0.
    assert!((score("metadata_quality", &g, &g).await - 1.0).abs() < 1e-9);
    // Not kebab (-0.25), 2 keywords (-0.20): 0.55.
    let mut p = g.clone();
    p.insert("name".into(), json!("Tokio Select"));
    p.insert("keywords".into(), json!(["tokio", "select"]));
    assert!((score("metadata_quality", &g, &p).await - 0.55).abs() < 1e-9);
    // Keywords F1: pred {tokio, select, rust} vs gold {tokio, select, async}: P = R = 2/3, F1 = 2/3.
    let mut p = g.clone();
    p.insert("keywords".into(), json!(["tokio", "select", "rust"]));
    assert!((score("keywords_f1", &g, &p).await - 2.0 / 3.0).abs() < 1e-9);
    assert!((score("list_f1:keywords", &g, &p).await - 2.0 / 3.0).abs() < 1e-9);
    // Name words: {tokio, select} vs {tokio}: P = 1, R = 1/2, F1 = 2/3.
    let mut p = g.clone();
    p.insert("name".into(), json!("tokio"));
    assert!((score("name_match", &g, &p).await - 2.0 / 3.0).abs() < 1e-9);
    // Token F1: "use when racing" vs gold description (16 tokens): common 3, P = 1, R = 3/16.
    let mut p = g.clone();
    p.insert("description".into(), json!("Use when racing"));
    let r = 3.0 / 16.0;
    assert!((score("token_f1:description", &g, &p).await - 2.0 * r / (1.0 + r)).abs() < 1e-9);
    assert_eq!(score("exact_match:name", &g, &g).await, 1.0);
    assert_eq!(
        score(
            "literal_match:skill_style",
            &g,
            &obj(json!({"skill_style": "Minimal"}))
        )
        .await,
        1.0
    );
    assert_eq!(score("regex:name:^[a-z]+(-[a-z]+)*$", &g, &g).await, 1.0);
    assert_eq!(score("length:description:15:35", &g, &g).await, 1.0);
    assert_eq!(score("length:description:15:35", &g, &p).await, 3.0 / 15.0);
    // Composite: wrong category (0), metadata 1.0, wrong style (0) = 0.4*0 + 0.3*1 + 0.3*0 = 0.3.
    let mut p = g.clone();
    p.insert("taxonomy_path".into(), json!("web/tokio-select"));
    p.insert("skill_style".into(), json!("comprehensive"));
    assert!((score("skill_comprehensive", &g, &p).await - 0.3).abs() < 1e-9);
    // Same category (0.7), metadata 1, style right: 0.28 + 0.3 + 0.3 = 0.88.
    let mut p = g.clone();
    p.insert("taxonomy_path".into(), json!("rust/other"));
    assert!((score("skill_comprehensive", &g, &p).await - 0.88).abs() < 1e-9);
    let m = metrics::resolve("skill_comprehensive", &Default::default(), None).unwrap();
    let fb = m.score(&g, &p).await.feedback;
    assert!(
        fb.contains("taxonomy_accuracy (0.70)") && fb.contains("should be `rust/tokio-select`"),
        "{fb}"
    );
    assert!(metrics::resolve("nonsense", &Default::default(), None).is_err());
}

#[tokio::test]
async fn command_metric_reads_score_and_feedback() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("m.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncat > /dev/null\necho '{\"score\": 0.25, \"feedback\": \"quarter\"}'\n",
    )
    .unwrap();
    let m = metrics::CommandMetric::new("cmd", vec!["sh".into(), script.display().to_string()])
        .unwrap();
    let r = m.score(&gold(), &gold()).await;
    assert_eq!((r.score, r.feedback.as_str()), (0.25, "quarter"));
    let bad =
        metrics::CommandMetric::new("bad", vec!["sh".into(), "-c".into(), "echo nope".into()])
            .unwrap();
    let r = bad.score(&gold(), &gold()).await;
    assert_eq!(r.score, 0.0);
    assert!(r.feedback.contains("not JSON"), "{}", r.feedback);
}

#[test]
fn dspy_json_round_trips_to_the_same_content_hash() {
    let mut spec = with_demo(AdapterKind::Completion);
    spec.predictors[0].module = skill_fleet::program::ModuleKind::ChainOfThought;
    let exported = export_dspy_json(&spec);
    // DSPy's layout: predictor key with signature fields and demos.
    let pred = &exported["understand.predict"];
    assert_eq!(
        pred["signature"]["instructions"],
        json!(spec.predictors[0].signature.instructions)
    );
    assert_eq!(pred["demos"][0]["name"], "serde-derive");
    let text = serde_json::to_string_pretty(&exported).unwrap();
    let imported = import_dspy_json("x.json", &text).unwrap();
    assert_eq!(imported, spec);
    assert_eq!(imported.content_hash(), spec.content_hash());
    let again = import_dspy_json(
        "y.json",
        &serde_json::to_string(&export_dspy_json(&imported)).unwrap(),
    )
    .unwrap();
    assert_eq!(again.content_hash(), spec.content_hash());
}

/// DSPy's `Module.load` raises `KeyError` on a `dependency_versions` key it
/// does not write itself (python, dspy, cloudpickle); ours lives under `x-skill-fleet`.
#[test]
fn dspy_export_metadata_has_only_keys_dspy_load_accepts() {
    let exported = export_dspy_json(&with_demo(AdapterKind::Completion));
    let versions = exported["metadata"]["dependency_versions"]
        .as_object()
        .expect("metadata.dependency_versions is an object");
    for key in versions.keys() {
        assert!(
            ["python", "dspy", "cloudpickle"].contains(&key.as_str()),
            "DSPy's load fails on dependency_versions key `{key}`"
        );
    }
    assert_eq!(
        exported["x-skill-fleet"]["exported_by"]["skill_fleet"],
        json!(env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn exports_with_the_old_skill_fleet_metadata_key_still_import() {
    let spec = with_demo(AdapterKind::Completion);
    let mut old = export_dspy_json(&spec);
    old["metadata"] = json!({"dependency_versions": {"skill_fleet": "0.1.0"}});
    if let Some(m) = old["x-skill-fleet"].as_object_mut() {
        m.remove("exported_by");
    }
    let imported = import_dspy_json("old.json", &old.to_string()).unwrap();
    assert_eq!(imported.content_hash(), spec.content_hash());
}

/// What DSPy 3.4.1's `Module.save` writes after `Module.load` of our export:
/// each predictor's state with fields reduced to prefix and description, its
/// own metadata, and no `x-skill-fleet` block.
fn as_dspy_saves(mut exported: Value) -> Value {
    let root = exported.as_object_mut().unwrap();
    root.remove("x-skill-fleet");
    root.insert(
        "metadata".into(),
        json!({"dependency_versions": {"python": "3.11", "dspy": "3.4.1", "cloudpickle": "3.1"}}),
    );
    for (_, pred) in root.iter_mut() {
        if let Some(fields) = pred
            .pointer_mut("/signature/fields")
            .and_then(Value::as_array_mut)
        {
            for f in fields {
                f.as_object_mut().unwrap().remove("name");
            }
        }
    }
    exported
}

#[test]
fn dspy_saved_json_imported_onto_its_base_keeps_the_content_hash() {
    for module in [
        skill_fleet::program::ModuleKind::Predict,
        skill_fleet::program::ModuleKind::ChainOfThought,
    ] {
        let mut spec = with_demo(AdapterKind::Chat);
        spec.predictors[0].module = module;
        let saved = as_dspy_saves(export_dspy_json(&spec)).to_string();
        let imported = import_dspy_json_onto("saved.json", &saved, &spec).unwrap();
        assert_eq!(imported, spec, "{module:?}");
        assert_eq!(imported.content_hash(), spec.content_hash());
        // Without the base, what DSPy dropped is gone: another program.
        let plain = import_dspy_json("saved.json", &saved).unwrap();
        assert_ne!(plain.content_hash(), spec.content_hash());
    }
}

#[test]
fn dspy_saved_json_onto_a_base_takes_instructions_and_demos_from_the_file() {
    let spec = with_demo(AdapterKind::Completion);
    let mut saved = as_dspy_saves(export_dspy_json(&spec));
    saved["understand"]["signature"]["instructions"] = json!("Optimized instructions.");
    saved["understand"]["demos"][0]["name"] = json!("serde-derive-2");
    let imported = import_dspy_json_onto("saved.json", &saved.to_string(), &spec).unwrap();
    let p = &imported.predictors[0];
    assert_eq!(p.signature.instructions, "Optimized instructions.");
    assert_eq!(p.demos[0]["name"], "serde-derive-2");
    assert!(!p.demos[0].contains_key("augmented"));
    // Everything else is the base's.
    assert_eq!(p.signature.outputs, spec.predictors[0].signature.outputs);
    assert_eq!(imported.field_map, spec.field_map);
    assert_eq!(imported.name, spec.name);
}

#[test]
fn dspy_saved_json_onto_a_base_rejects_what_a_spec_cannot_hold() {
    let spec = with_demo(AdapterKind::Completion);
    let saved = as_dspy_saves(export_dspy_json(&spec));
    let err_of = |v: &Value| {
        import_dspy_json_onto("saved.json", &v.to_string(), &spec)
            .unwrap_err()
            .to_string()
    };
    // A prefix edited in DSPy (e.g. by COPRO): our prefixes come from field names.
    let mut edited = saved.clone();
    edited["understand"]["signature"]["fields"][2]["prefix"] = json!("Path:");
    let err = err_of(&edited);
    assert!(
        err.contains("saved.json") && err.contains("`taxonomy_path`") && err.contains("\"Path:\""),
        "{err}"
    );
    // A field more or less.
    let mut fewer = saved.clone();
    fewer["understand"]["signature"]["fields"]
        .as_array_mut()
        .unwrap()
        .pop();
    assert!(
        err_of(&fewer).contains("has 7 fields"),
        "{}",
        err_of(&fewer)
    );
    // Another program's predictors.
    let mut renamed = saved.clone();
    let pred = renamed["understand"].take();
    renamed["classify"] = pred;
    renamed.as_object_mut().unwrap().remove("understand");
    let err = err_of(&renamed);
    assert!(err.contains("no predictor `understand`"), "{err}");
    let mut extra = saved.clone();
    extra["classify"] = saved["understand"].clone();
    let err = err_of(&extra);
    assert!(
        err.contains("\"classify\"") && err.contains("not in program"),
        "{err}"
    );
}

#[test]
fn plain_dspy_json_imports() {
    // What DSPy writes for `dspy.Predict("question -> answer")` after optimization.
    let text = r#"{"predict": {"traces": [], "train": [], "demos": [{"augmented": true, "question": "2+2?", "answer": "4"}],
      "signature": {"instructions": "Answer the question.", "fields": [{"prefix": "Question:", "description": "${question}"}, {"prefix": "Answer:", "description": "${answer}"}]},
      "lm": null}, "metadata": {"dependency_versions": {"python": "3.11", "dspy": "3.0.0"}}}"#;
    let spec = import_dspy_json("p.json", text).unwrap();
    let p = &spec.predictors[0];
    assert_eq!(p.signature.inputs[0].name, "question");
    assert_eq!(p.signature.outputs[0].name, "answer");
    assert_eq!(p.demos[0]["answer"], "4");
    assert!(!p.demos[0].contains_key("augmented"));
    let err = import_dspy_json("bad.json", "{\"x\": 1}").unwrap_err();
    assert!(
        err.to_string().contains("bad.json") && err.to_string().contains("no predictors"),
        "{err}"
    );
}

#[test]
fn plain_dspy_chain_of_thought_imports_with_inputs_before_reasoning() {
    // What DSPy 3.4.1 saves for a module with
    // `self.answer = dspy.ChainOfThought("question, context -> answer, confidence")`.
    let text = r#"{"answer.predict": {"traces": [], "train": [], "demos": [{"question": "2+2?", "context": "math", "reasoning": "add", "answer": "4", "confidence": "high", "augmented": true}],
      "signature": {"instructions": "Given the fields `question`, `context`, produce the fields `answer`, `confidence`.",
        "fields": [{"prefix": "Question:", "description": "${question}"}, {"prefix": "Context:", "description": "${context}"},
          {"prefix": "Reasoning:", "description": "${reasoning}"}, {"prefix": "Answer:", "description": "${answer}"},
          {"prefix": "Confidence:", "description": "${confidence}"}]},
      "lm": null}, "metadata": {"dependency_versions": {"python": "3.11", "dspy": "3.4.1", "cloudpickle": "3.1"}}}"#;
    let spec = import_dspy_json("cot.json", text).unwrap();
    let p = &spec.predictors[0];
    assert_eq!(p.name, "answer");
    assert_eq!(p.module, skill_fleet::program::ModuleKind::ChainOfThought);
    let names =
        |fs: &[skill_fleet::program::Field]| fs.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&p.signature.inputs), ["question", "context"]);
    assert_eq!(names(&p.signature.outputs), ["answer", "confidence"]);
    // DSPy 2.5's reasoning prefix names the same field.
    let old = text.replace(
        "\"Reasoning:\"",
        "\"Reasoning: Let's think step by step in order to\"",
    );
    assert_eq!(import_dspy_json("cot25.json", &old).unwrap(), spec);
}

/// A client of the shared scripted model answering `answers` in order.
fn client(answers: &[&str]) -> (Arc<ScriptedModel>, LmClient) {
    let s = Arc::new(ScriptedModel::queue(answers.iter().copied()).with_usage(10, 5));
    (s.clone(), LmClient::new("task", s, RetryConfig::default()))
}

#[tokio::test]
async fn validation_failures_are_retried_then_fall_back() {
    let mut spec = bundled();
    spec.validation_retries = 1;
    // First answer has a bad literal, the retry is good.
    let (s, lm) = client(&[&GOOD.replace("minimal", "huge"), GOOD]);
    let pred = run_program(&spec, &constants(), &lm, &input(), &CallContext::default())
        .await
        .unwrap();
    assert_eq!(pred.outputs["name"], "tokio-select");
    assert_eq!(pred.traces[0].failures.len(), 1);
    let retry_rollout = s.requests()[1].rollout_id.clone();
    assert_eq!(
        retry_rollout.as_deref(),
        Some("validation-retry-1"),
        "a retry must not hit the cache"
    );
    // Both answers bad: the configured fallback is used and marked.
    let (_, lm) = client(&["garbage", "more garbage"]);
    let pred = run_program(&spec, &constants(), &lm, &input(), &CallContext::default())
        .await
        .unwrap();
    assert!(pred.traces[0].used_fallback);
    assert_eq!(pred.outputs["name"], "unknown-skill");
    // Without a fallback the error names the predictor and the field.
    spec.predictors[0].fallback = None;
    let (_, lm) = client(&["garbage", "more garbage"]);
    let err = run_program(&spec, &constants(), &lm, &input(), &CallContext::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("understand") && err.to_string().contains("missing output field"),
        "{err}"
    );
}

#[tokio::test]
async fn pipelines_feed_outputs_into_later_predictors() {
    let yaml = r#"
name: two_step
predictors:
  - name: classify
    signature:
      instructions: Pick the category.
      inputs: [{name: text}]
      outputs: [{name: category, type: "Literal[a, b]"}]
  - name: explain
    module: chain_of_thought
    signature:
      inputs: [{name: text}, {name: category}]
      outputs: [{name: why}]
"#;
    let spec = ProgramSpec::from_yaml("inline", yaml).unwrap();
    assert_eq!(spec.input_fields(), vec!["text"]);
    let (s, lm) = client(&[" b", " because\nWhy: it is b"]);
    let pred = run_program(
        &spec,
        &Map::new(),
        &lm,
        &obj(json!({"text": "hello"})),
        &CallContext::default(),
    )
    .await
    .unwrap();
    assert_eq!(pred.outputs["category"], "b");
    assert_eq!(pred.outputs["why"], "it is b");
    assert!(!pred.outputs.contains_key("reasoning"));
    let seen = s.requests();
    let Prompt::Text(second) = &seen[1].prompt else {
        panic!()
    };
    assert!(second.contains("Category: b\nReasoning:"), "{second}");
}

#[test]
fn spec_errors_name_the_file() {
    let err = ProgramSpec::from_yaml("bad.yaml", "name: x\npredictors: []\n").unwrap_err();
    assert!(
        err.to_string().contains("bad.yaml") && err.to_string().contains("predictors"),
        "{err}"
    );
    let err = ProgramSpec::from_yaml("t.yaml", "name: x\npredictors:\n  - name: p\n    signature:\n      inputs: [{name: a, type: dict}]\n      outputs: [{name: b}]\n").unwrap_err();
    assert!(err.to_string().contains("dict"), "{err}");
}

/// `metrics score` scores predictions made elsewhere with our metric: gold
/// answers score 1, a hand-perturbed one its hand-computed value, and a bad
/// line is reported with its file and line number.
#[test]
fn metrics_score_rates_external_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let trainset = crate::util::bundled_trainset();
    crate::util::cli_ok(
        &db,
        &[
            "trainset",
            "import",
            trainset.to_str().unwrap(),
            "--name",
            "skills",
        ],
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&trainset).unwrap()).unwrap();
    let gold = |i: usize| {
        let r = &rows[i];
        serde_json::json!({
            "taxonomy_path": r["expected_taxonomy_path"],
            "name": r["expected_name"],
            "skill_style": r["expected_skill_style"],
            "subdirectories": r["expected_subdirectories"],
            "keywords": r["expected_keywords"],
            "description": r["expected_description"],
        })
    };
    // Example 1 with the wrong style: 0.4 taxonomy + 0.3 metadata + 0 style = 0.7.
    let mut wrong = gold(1);
    let other = if rows[1]["expected_skill_style"] == "minimal" {
        "comprehensive"
    } else {
        "minimal"
    };
    wrong["skill_style"] = serde_json::json!(other);
    let preds = dir.path().join("preds.jsonl");
    std::fs::write(
        &preds,
        format!(
            "{}\n{}\n",
            serde_json::json!({"idx": 0, "prediction": gold(0)}),
            serde_json::json!({"idx": 1, "prediction": wrong})
        ),
    )
    .unwrap();
    let out = crate::util::cli_ok(
        &db,
        &[
            "--json",
            "metrics",
            "score",
            "--trainset",
            "skills",
            preds.to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["n"], 2);
    assert!(
        (v["scores"][0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-9,
        "{v}"
    );
    assert!(
        (v["scores"][1]["score"].as_f64().unwrap() - 0.7).abs() < 1e-9,
        "{v}"
    );
    assert!((v["mean"].as_f64().unwrap() - 0.85).abs() < 1e-9, "{v}");

    std::fs::write(
        &preds,
        "{\"idx\": 0, \"prediction\": {}}\n{\"idx\": \"x\"}\n",
    )
    .unwrap();
    let out = crate::util::cli(
        &db,
        &[
            "metrics",
            "score",
            "--trainset",
            "skills",
            preds.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("preds.jsonl:2"), "{err}");
    std::fs::write(&preds, "{\"idx\": 999, \"prediction\": {}}\n").unwrap();
    let out = crate::util::cli(
        &db,
        &[
            "metrics",
            "score",
            "--trainset",
            "skills",
            preds.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("preds.jsonl:1") && err.contains("idx 999"),
        "{err}"
    );
}

/// Item 8: examples are checked against the program before any LM call.
#[test]
fn bundled_trainset_fits_the_bundled_program_and_a_qa_trainset_is_refused_by_name() {
    use crate::util::{bundled_trainset, cli_ok, data};
    use skill_fleet::program::check_examples;
    use skill_fleet::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    cli_ok(
        &db,
        &["trainset", "import", bundled_trainset().to_str().unwrap()],
    );
    cli_ok(
        &db,
        &[
            "trainset",
            "import",
            data("generic_qa.jsonl").to_str().unwrap(),
        ],
    );
    let store = Store::open(&db).unwrap();
    let skill = store
        .examples(store.find_trainset("trainset").unwrap().id)
        .unwrap();
    assert!(!skill.is_empty());
    check_examples(&bundled(), &skill).unwrap();

    let qa = store
        .examples(store.find_trainset("generic_qa").unwrap().id)
        .unwrap();
    let text = match check_examples(&bundled(), &qa) {
        Err(skill_fleet::Error::ExamplesDoNotFit(m)) => {
            assert_eq!(m.mismatched, qa.len());
            m.to_string()
        }
        other => panic!("expected ExamplesDoNotFit, got {other:?}"),
    };
    assert!(
        text.contains(&format!(
            "example #0 (id {}): missing input `task_description`; missing labels `taxonomy_path`, `name`",
            qa[0].id
        )),
        "{text}"
    );
    assert!(
        text.contains("`taxonomy_path` (column `expected_taxonomy_path`)"),
        "{text}"
    );
}

/// Item 9: `--alias` with a spec file used to show the file and ignore the alias.
#[test]
fn program_show_of_a_spec_file_with_alias_shows_the_aliased_version_or_refuses() {
    use crate::util::{cli, cli_ok};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let write = |file: &str, description: &str| {
        let path = dir.path().join(file);
        std::fs::write(
            &path,
            format!(
                "name: aliased\ndescription: {description}\npredictors:\n  - name: answer\n    signature:\n      inputs: [{{name: question}}]\n      outputs: [{{name: answer}}]\n"
            ),
        )
        .unwrap();
        path.display().to_string()
    };
    let first = write("first.yaml", "first version");
    let second = write("second.yaml", "second version");
    cli_ok(&db, &["program", "register", &first]);
    cli_ok(&db, &["program", "register", &second]);
    cli_ok(
        &db,
        &[
            "program",
            "alias",
            "aliased",
            "production",
            "--version",
            "1",
        ],
    );

    let out = cli_ok(&db, &["program", "show", &second, "--alias", "production"]);
    assert!(
        out.contains("first version") && !out.contains("second version"),
        "{out}"
    );
    let out = cli_ok(&db, &["program", "show", &second, "--version", "1"]);
    assert!(out.contains("first version"), "{out}");

    let out = cli(&db, &["program", "show", &second, "--alias", "staging"]);
    assert!(!out.status.success(), "an unknown alias was ignored");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("aliased@staging")
            && stderr.contains("versions 1, 2")
            && stderr.contains("production -> 1"),
        "{stderr}"
    );
}
