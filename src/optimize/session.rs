//! One optimization run: the examples, models and metric an optimizer works
//! with, and the bookkeeping every optimizer shares — candidates and
//! evaluations committed as they happen, reuse of stored scores on resume,
//! budget/time/Ctrl-C stops and progress.

use crate::error::Result;
use crate::eval::{EvalExample, EvalResult, Evaluator, ExampleScore};
use crate::lm::client::{CallContext, LmClient, Lms};
use crate::metrics::Metric;
use crate::program::{Prediction, ProgramSpec};
use crate::store::{ScoreRow, Store};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A progress callback: fraction done (0..1) and what is happening.
pub type ProgressFn = Box<dyn Fn(f64, &str) + Send + Sync>;

/// Why an optimizer should stop early.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    Budget(String),
    Time,
    Interrupted,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Budget(b) => write!(f, "budget exhausted ({b})"),
            StopReason::Time => write!(f, "time limit reached"),
            StopReason::Interrupted => write!(f, "interrupted"),
        }
    }
}

/// Shared state of one optimization run.
pub struct Session {
    pub store: Mutex<Store>,
    pub run_id: i64,
    pub base: ProgramSpec,
    pub constants: Arc<Map<String, Value>>,
    pub lms: Arc<Lms>,
    pub task_lm: Arc<LmClient>,
    pub metric: Arc<dyn Metric>,
    pub metric_name: String,
    pub train: Vec<EvalExample>,
    pub val: Vec<EvalExample>,
    pub test: Vec<EvalExample>,
    pub threads: usize,
    pub seed: u64,
    /// Set by Ctrl-C; optimizers finish the current step and stop.
    pub interrupted: Arc<AtomicBool>,
    pub deadline: Option<Instant>,
    /// Example evaluations planned and done, for progress.
    pub planned: AtomicU64,
    pub done: AtomicU64,
    /// Called after every progress change (progress bar).
    pub on_progress: Option<ProgressFn>,
}

/// Outcome of an optimizer.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub best: ProgramSpec,
    pub best_candidate_id: Option<i64>,
    pub best_val_score: f64,
    pub stopped: Option<StopReason>,
}

impl Session {
    /// Whether work should stop now, and why.
    pub fn should_stop(&self) -> Option<StopReason> {
        if self.interrupted.load(Ordering::SeqCst) {
            return Some(StopReason::Interrupted);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Some(StopReason::Time);
        }
        let b = self.task_lm.budget();
        if b.fraction_used().is_some_and(|f| f >= 1.0) {
            let (calls, tokens, cost) = b.used();
            return Some(StopReason::Budget(format!(
                "{calls} calls, {tokens} tokens, ${cost:.4}"
            )));
        }
        None
    }

    /// Adds `n` example evaluations to the plan.
    pub fn plan(&self, n: usize) {
        self.planned.fetch_add(n as u64, Ordering::SeqCst);
    }

    /// Fraction of the run done: the larger of planned work done and budget used.
    pub fn progress(&self) -> f64 {
        let planned = self.planned.load(Ordering::SeqCst).max(1) as f64;
        let work = self.done.load(Ordering::SeqCst) as f64 / planned;
        let budget = self.task_lm.budget().fraction_used().unwrap_or(0.0);
        work.max(budget).min(0.99)
    }

    fn report(&self, what: &str) {
        let p = self.progress();
        let (calls, _, _) = self.task_lm.budget().used();
        if let Ok(store) = self.store.lock() {
            let _ = store.update_run_progress(self.run_id, p, calls as i64, 0);
        }
        if let Some(cb) = &self.on_progress {
            cb(p, what);
        }
    }

    /// Records a candidate program (idempotent by spec hash within the run).
    pub fn add_candidate(
        &self,
        spec: &ProgramSpec,
        origin: &str,
        parents: &[i64],
        trial: Option<i64>,
    ) -> Result<i64> {
        let json = serde_json::to_string(spec)?;
        let store = self
            .store
            .lock()
            .map_err(|_| crate::Error::Invalid("store lock poisoned".into()))?;
        store.add_candidate(
            self.run_id,
            parents,
            origin,
            &json,
            &spec.content_hash(),
            trial,
        )
    }

    /// An evaluator of `spec` whose calls are traced to this run and candidate.
    pub fn evaluator(
        &self,
        spec: &ProgramSpec,
        candidate_id: Option<i64>,
        lm: Arc<LmClient>,
    ) -> Evaluator {
        Evaluator {
            spec: Arc::new(spec.clone()),
            constants: self.constants.clone(),
            lm,
            metric: self.metric.clone(),
            threads: self.threads,
            failure_score: 0.0,
            context: CallContext {
                run_id: Some(self.run_id),
                candidate_id,
                ..Default::default()
            },
            strategy: crate::program::ensemble::Strategy::Single,
            others: Vec::new(),
        }
    }

    /// Evaluates a candidate on `examples` of `split` (`full` or `minibatch`),
    /// committing each score as it finishes. Scores this candidate already has
    /// for an example (from any earlier evaluation, e.g. before a crash) are
    /// reused, and an identical finished evaluation is returned as is.
    pub async fn evaluate(
        &self,
        candidate_id: i64,
        spec: &ProgramSpec,
        split: &str,
        kind: &str,
        examples: &[EvalExample],
    ) -> Result<EvalResult> {
        self.evaluate_with(
            candidate_id,
            spec,
            split,
            kind,
            examples,
            self.task_lm.clone(),
        )
        .await
    }

    /// [`Session::evaluate`] with another model (e.g. a teacher).
    pub async fn evaluate_with(
        &self,
        candidate_id: i64,
        spec: &ProgramSpec,
        split: &str,
        kind: &str,
        examples: &[EvalExample],
        lm: Arc<LmClient>,
    ) -> Result<EvalResult> {
        let ids: Vec<i64> = examples.iter().map(|e| e.example_id).collect();
        let (previous, existing) = {
            let store = self
                .store
                .lock()
                .map_err(|_| crate::Error::Invalid("store lock poisoned".into()))?;
            let previous = store.candidate_scores(candidate_id, &self.metric_name)?;
            let existing = store.find_evaluation_for(
                self.run_id,
                candidate_id,
                split,
                kind,
                &self.metric_name,
                &ids,
            )?;
            (previous, existing)
        };
        let done: HashMap<i64, ExampleScore> = previous
            .into_iter()
            .filter(|(id, _)| ids.contains(id))
            .map(|(id, row)| (id, score_from_row(row)))
            .collect();
        if let Some((eval_id, true)) = existing {
            if done.len() == ids.len() {
                let _ = eval_id;
                self.done.fetch_add(ids.len() as u64, Ordering::SeqCst);
                self.report("reused a finished evaluation");
                return Ok(result_from(examples, &done));
            }
        }
        let eval_id = match existing {
            Some((id, _)) => id,
            None => {
                let store = self
                    .store
                    .lock()
                    .map_err(|_| crate::Error::Invalid("store lock poisoned".into()))?;
                let id = store.create_evaluation(
                    self.run_id,
                    Some(candidate_id),
                    None,
                    split,
                    kind,
                    &self.metric_name,
                    ids.len(),
                )?;
                // Scores reused from earlier evaluations are recorded here too,
                // so every evaluation row has its complete set of scores.
                for s in done.values() {
                    store.insert_score(id, &row_from_score(s))?;
                }
                id
            }
        };
        self.done.fetch_add(done.len() as u64, Ordering::SeqCst);
        let evaluator = self.evaluator(spec, Some(candidate_id), lm);
        let mut write_error = None;
        let result = evaluator
            .evaluate(examples, &done, |s| {
                if let Ok(store) = self.store.lock() {
                    if let Err(e) = store.insert_score(eval_id, &row_from_score(s)) {
                        write_error = Some(e);
                    }
                }
                self.done.fetch_add(1, Ordering::SeqCst);
                self.report(&format!("{split} {kind} of candidate {candidate_id}"));
            })
            .await;
        if let Some(e) = write_error {
            return Err(e);
        }
        {
            let store = self
                .store
                .lock()
                .map_err(|_| crate::Error::Invalid("store lock poisoned".into()))?;
            store.finish_evaluation(eval_id, result.mean)?;
        }
        Ok(result)
    }
}

fn row_from_score(s: &ExampleScore) -> ScoreRow {
    ScoreRow {
        example_id: s.example_id,
        score: s.score,
        feedback: Some(s.feedback.clone()),
        prediction_json: s
            .prediction
            .as_ref()
            .and_then(|p| serde_json::to_string(p).ok()),
        error: s.error.clone(),
    }
}

fn score_from_row(r: ScoreRow) -> ExampleScore {
    ExampleScore {
        example_id: r.example_id,
        score: r.score,
        feedback: r.feedback.unwrap_or_default(),
        prediction: r
            .prediction_json
            .and_then(|j| serde_json::from_str::<Prediction>(&j).ok()),
        error: r.error,
    }
}

fn result_from(examples: &[EvalExample], done: &HashMap<i64, ExampleScore>) -> EvalResult {
    let scores: Vec<ExampleScore> = examples
        .iter()
        .filter_map(|e| done.get(&e.example_id).cloned())
        .collect();
    let mean = if scores.is_empty() {
        0.0
    } else {
        scores.iter().map(|s| s.score).sum::<f64>() / scores.len() as f64
    };
    EvalResult {
        mean,
        scores,
        lm_calls: 0,
        cache_hits: 0,
    }
}
