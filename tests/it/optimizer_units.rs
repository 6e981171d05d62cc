//! Optimizers with deterministic inputs: demo selection from teacher traces
//! (BootstrapFewShot), and MIPROv2 and GEPA finding the one instruction that
//! works, with scripted language models in a real session on a real SQLite
//! file. (Runs against the real model: `bench/quality_vs_dspy.sh`.)

use serde_json::{json, Map};
use skill_fleet::config::{Config, RetryConfig};
use skill_fleet::eval::EvalExample;
use skill_fleet::lm::budget::Budget;
use skill_fleet::lm::client::{LmClient, LmOptions, Lms};
use skill_fleet::lm::scripted::ScriptedModel;
use skill_fleet::lm::LanguageModel;
use skill_fleet::optimize::fewshot::{bootstrap, with_labeled_demos, FewShotSettings};
use skill_fleet::optimize::gepa::{gepa, GepaSettings};
use skill_fleet::optimize::mipro::{mipro, Auto, MiproSettings};
use skill_fleet::optimize::Session;
use skill_fleet::program::ProgramSpec;
use skill_fleet::store::{NewRun, Store};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A scripted model answering each text prompt with `answer(prompt)`.
fn scripted(answer: fn(&str) -> String) -> Arc<ScriptedModel> {
    Arc::new(ScriptedModel::from_text_fn(answer))
}

/// The question a completion prompt ends with (`qN`).
fn last_question(prompt: &str) -> &str {
    let last = prompt.rsplit("Question: ").next().unwrap_or("");
    last.lines().next().unwrap_or("").trim()
}

/// Gets q1, q3 and q4 right, nothing else.
fn oracle(prompt: &str) -> String {
    match last_question(prompt) {
        q @ ("q1" | "q3" | "q4") => format!(" a{}", &q[1..]),
        _ => " wrong".into(),
    }
}

/// Answers `qN` with `aN`, but only when the prompt holds the word MAGIC
/// (which no instruction has until an optimizer proposes it).
fn needs_magic(prompt: &str) -> String {
    match last_question(prompt).strip_prefix('q') {
        Some(n) if prompt.contains("MAGIC") => format!(" a{n}"),
        _ => " wrong".into(),
    }
}

/// Proposes (MIPROv2's prompt role) or reflects (GEPA's reflection role) the
/// same instruction every time.
fn proposer(_prompt: &str) -> String {
    "Answer the question; say the MAGIC word.".into()
}

fn client(role: &str, model: Arc<dyn LanguageModel>) -> Arc<LmClient> {
    Arc::new(LmClient::new(role, model, RetryConfig::default()))
}

/// The magic-word task (10 examples, 6 train) with `role` served by a
/// scripted model that proposes the instruction that works; returns that
/// model so a test can check it was asked.
fn magic_session(dir: &std::path::Path, role: &str) -> (Session, Arc<ScriptedModel>) {
    let session = qa_session(dir, 10, 6, scripted(needs_magic));
    let proposer_lm = scripted(proposer);
    session
        .lms
        .set_role(role, client(role, proposer_lm.clone()));
    (session, proposer_lm)
}

/// The optimizer asked its proposer, and kept the proposed instruction, which
/// scores 1 on validation where the original scores 0.
fn assert_found_magic(proposer_lm: &ScriptedModel, best: &ProgramSpec, best_val_score: f64) {
    assert!(proposer_lm.calls() > 0);
    assert_eq!(best_val_score, 1.0);
    assert!(best.predictors[0].signature.instructions.contains("MAGIC"));
}

/// A session on a fresh database holding `n` examples `qI -> aI`; the first
/// `n_train` are train, the rest val.
fn qa_session(
    dir: &std::path::Path,
    n: usize,
    n_train: usize,
    task: Arc<dyn LanguageModel>,
) -> Session {
    let mut store = Store::open(dir.join("t.db")).unwrap();
    // Examples must exist for score rows (foreign keys): import a generic trainset.
    let text = (0..n)
        .map(|i| json!({"question": format!("q{i}"), "answer": format!("a{i}")}).to_string())
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
    let mut examples: Vec<EvalExample> = (0..n)
        .map(|i| example(ids[i], &format!("q{i}"), &format!("a{i}")))
        .collect();
    let val = examples.split_off(n_train);
    let lms = Arc::new(
        Lms::new(
            Config::default(),
            LmOptions::default(),
            Arc::new(Budget::unlimited()),
        )
        .unwrap(),
    );
    Session {
        store: Mutex::new(store),
        run_id,
        base: spec(),
        constants: Arc::new(Map::new()),
        lms,
        task_lm: client("task", task),
        metric: skill_fleet::metrics::resolve("exact_match:answer", &Default::default(), None)
            .unwrap(),
        metric_name: "exact_match:answer".into(),
        train: examples,
        val,
        test: vec![],
        threads: 2,
        seed: 1,
        interrupted: Arc::new(AtomicBool::new(false)),
        deadline: None,
        planned: AtomicU64::new(0),
        done: AtomicU64::new(0),
        on_progress: None,
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
    // The teacher gets q1, q3 and q4 right.
    let session = qa_session(dir.path(), 6, 6, scripted(oracle));
    let (spec, train, run_id) = (spec(), session.train.clone(), session.run_id);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mipro_finds_the_proposed_instruction_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let (session, prompt_lm) = magic_session(dir.path(), "prompt");
    let out = mipro(&session, MiproSettings::new(Auto::Light))
        .await
        .unwrap();
    assert_found_magic(&prompt_lm, &out.best, out.best_val_score);
    // Trials are recorded candidates (a repeated configuration once), the
    // default program first; auto light runs 10 trials, as DSPy does.
    let store = session.store.lock().unwrap();
    let cands = store.candidates(session.run_id).unwrap();
    assert!(cands.iter().any(|c| c.origin == "bootstrap-teacher"));
    let trials: Vec<_> = cands
        .iter()
        .filter(|c| c.origin.starts_with("mipro"))
        .collect();
    assert_eq!(trials[0].origin, "mipro default");
    assert!((2..=11).contains(&trials.len()), "{}", trials.len());
    assert!(trials.iter().filter_map(|c| c.trial).all(|t| t <= 10));
    assert!(trials.iter().any(|c| Some(c.id) == out.best_candidate_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gepa_keeps_the_reflected_instruction_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let (session, reflector) = magic_session(dir.path(), "reflection");
    let settings = GepaSettings {
        max_metric_calls: Some(40),
        ..GepaSettings::new(Auto::Light)
    };
    let out = gepa(&session, settings).await.unwrap();
    assert_found_magic(&reflector, &out.best, out.best_val_score);
    // The budget holds (overshot by one iteration at most: two minibatches
    // and a validation) and the lineage is recorded.
    let done = session.done.load(Ordering::SeqCst);
    assert!((40..=40 + 3 + 3 + 4).contains(&done), "{done}");
    let store = session.store.lock().unwrap();
    let cands = store.candidates(session.run_id).unwrap();
    assert_eq!(cands[0].origin, "gepa seed");
    let best = cands
        .iter()
        .find(|c| Some(c.id) == out.best_candidate_id)
        .unwrap();
    assert!(best.origin.starts_with("gepa reflect"), "{}", best.origin);
}
