//! Optimizer pieces with deterministic inputs: demo selection from teacher
//! traces (BootstrapFewShot) with a scripted language model in a real session
//! on a real SQLite file.

mod common;

use serde_json::{json, Map, Value};
use skill_fleet::config::{Config, RetryConfig};
use skill_fleet::eval::EvalExample;
use skill_fleet::lm::budget::Budget;
use skill_fleet::lm::client::{LmClient, LmOptions, Lms};
use skill_fleet::lm::{LanguageModel, LmError, LmRequest, LmResponse, Prompt};
use skill_fleet::optimize::fewshot::{bootstrap, with_labeled_demos, FewShotSettings};
use skill_fleet::optimize::Session;
use skill_fleet::program::ProgramSpec;
use skill_fleet::store::{NewRun, Store};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

/// Answers with the right label only for questions in `good`.
struct Oracle {
    good: Vec<(String, String)>,
}

#[async_trait::async_trait]
impl LanguageModel for Oracle {
    fn provider(&self) -> &str {
        "scripted"
    }
    fn model(&self) -> &str {
        "oracle"
    }
    async fn generate(&self, request: &LmRequest) -> Result<LmResponse, LmError> {
        let Prompt::Text(p) = &request.prompt else {
            unreachable!()
        };
        let last = p.rsplit("Question: ").next().unwrap_or("");
        let q = last.lines().next().unwrap_or("").trim().to_string();
        let answer = self
            .good
            .iter()
            .find(|(k, _)| *k == q)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| "wrong".into());
        Ok(LmResponse {
            choices: vec![format!(" {answer}")],
            prompt_tokens: 1,
            completion_tokens: 1,
        })
    }
}

fn spec() -> ProgramSpec {
    ProgramSpec::from_yaml(
        "qa",
        "name: qa\nmetric: exact_match:answer\nvalidation_retries: 0\npredictors:\n  - name: qa\n    signature:\n      instructions: Answer.\n      inputs: [{name: question}]\n      outputs: [{name: answer}]\n",
    )
    .unwrap()
}

fn example(id: i64, q: &str, a: &str) -> EvalExample {
    EvalExample {
        example_id: id,
        inputs: json!({"question": q}).as_object().cloned().unwrap(),
        labels: json!({"answer": a}).as_object().cloned().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_keeps_passing_traces_then_fills_with_labeled_demos() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let mut store = Store::open(&db).unwrap();
    // Examples must exist for score rows (foreign keys): import a generic trainset.
    let rows: Vec<Value> = (0..6)
        .map(|i| json!({"question": format!("q{i}"), "answer": format!("a{i}")}))
        .collect();
    let text = rows
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let ts = skill_fleet::data::load_text(
        "qa.jsonl",
        &text,
        skill_fleet::data::Format::Jsonl,
        &skill_fleet::config::Taxonomy::bundled(),
    )
    .unwrap();
    let (t, _) = store.import_trainset("qa", "qa.jsonl", &ts).unwrap();
    let ids: Vec<i64> = store.examples(t.id).unwrap().iter().map(|e| e.id).collect();
    let run_id = store
        .create_run(&NewRun {
            kind: "optimize",
            config_json: "{}".into(),
            ..Default::default()
        })
        .unwrap();
    let train: Vec<EvalExample> = (0..6)
        .map(|i| example(ids[i], &format!("q{i}"), &format!("a{i}")))
        .collect();
    // The teacher gets q1, q3 and q4 right.
    let oracle = Arc::new(Oracle {
        good: vec![
            ("q1".into(), "a1".into()),
            ("q3".into(), "a3".into()),
            ("q4".into(), "a4".into()),
        ],
    });
    let task = Arc::new(LmClient::new("task", oracle, RetryConfig::default()));
    let lms = Arc::new(
        Lms::new(
            Config::default(),
            LmOptions::default(),
            Arc::new(Budget::unlimited()),
        )
        .unwrap(),
    );
    let spec = spec();
    let metric =
        skill_fleet::metrics::resolve("exact_match:answer", &Default::default(), None).unwrap();
    let session = Session {
        store: Mutex::new(store),
        run_id,
        base: spec.clone(),
        constants: Arc::new(Map::new()),
        lms,
        task_lm: task,
        metric,
        metric_name: "exact_match:answer".into(),
        train: train.clone(),
        val: vec![],
        test: vec![],
        threads: 2,
        seed: 1,
        interrupted: Arc::new(AtomicBool::new(false)),
        deadline: None,
        planned: AtomicU64::new(0),
        done: AtomicU64::new(0),
        on_progress: None,
    };
    let settings = FewShotSettings {
        max_bootstrapped_demos: 2,
        max_labeled_demos: 4,
        max_rounds: 1,
        metric_threshold: 1.0,
    };
    // Unshuffled (seed u64::MAX): traces of q1 and q3 are the first two that pass.
    let (student, n) = bootstrap(&session, &spec, &spec, &train, settings, u64::MAX)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let demos = &student.predictors[0].demos;
    let answers: Vec<&str> = demos
        .iter()
        .map(|d| d["answer"].as_str().unwrap())
        .collect();
    // Two bootstrapped (from the model's own answers), then labeled demos of
    // examples that were not bootstrapped, up to 4 in total.
    assert_eq!(demos.len(), 4);
    assert_eq!(&answers[..2], &["a1", "a3"]);
    assert!(!answers[2..].contains(&"a1") && !answers[2..].contains(&"a3"));
    assert!(answers[2..].iter().all(|a| a.starts_with('a')));
    // A seeded shuffle picks reproducibly.
    let (s1, _) = bootstrap(&session, &spec, &spec, &train, settings, 9)
        .await
        .unwrap();
    let (s2, _) = bootstrap(&session, &spec, &spec, &train, settings, 9)
        .await
        .unwrap();
    assert_eq!(s1.predictors[0].demos, s2.predictors[0].demos);
    // The teacher's runs were recorded: one candidate, scores for the examples it ran.
    let store = session.store.lock().unwrap();
    let cands = store.candidates(run_id).unwrap();
    assert!(cands.iter().any(|c| c.origin == "bootstrap-teacher"));
    // Labeled demos: k sampled with the seed, each with all fields.
    let l = with_labeled_demos(&spec, &train, 3, 4);
    assert_eq!(l.predictors[0].demos.len(), 3);
    assert_eq!(l, with_labeled_demos(&spec, &train, 3, 4));
}
