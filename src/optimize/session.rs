//! One optimization run as the optimizers see it: the examples, models and
//! metric they work with, and the bookkeeping they share — candidates and
//! scores sent to the store writer as they happen, reuse of stored scores on
//! resume, one best-so-far tracker, budget/time/Ctrl-C stops and progress.
//! Built with [`Session::builder`].

use crate::error::{Error, Result};
use crate::eval::{EvalExample, EvalResult, Evaluator, ExampleScore};
use crate::lm::client::{CallContext, LmClient, Lms};
use crate::metrics::Metric;
use crate::program::{Prediction, ProgramSpec};
use crate::progress::{Event, EventFn};
use crate::store::{EvalKind, ScoreRow, Split, Write, Writer};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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

/// The best candidate so far on the full validation set.
#[derive(Debug, Clone)]
pub struct Best {
    pub spec: ProgramSpec,
    pub candidate_id: i64,
    pub score: f64,
}

/// What an optimizer ends with: the session's best (the base program with
/// score 0 when nothing was validated) and why it stopped early, if it did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub best: ProgramSpec,
    pub best_candidate_id: Option<i64>,
    pub best_val_score: f64,
    pub stopped: Option<StopReason>,
}

/// Shared state of one optimization run.
pub struct Session {
    writer: Writer,
    run_id: i64,
    base: ProgramSpec,
    constants: Arc<Map<String, Value>>,
    lms: Arc<Lms>,
    task_lm: Arc<LmClient>,
    metric: Arc<dyn Metric>,
    metric_name: String,
    train: Vec<EvalExample>,
    val: Vec<EvalExample>,
    test: Vec<EvalExample>,
    threads: usize,
    seed: u64,
    interrupted: Arc<AtomicBool>,
    deadline: Option<Instant>,
    /// Example evaluations planned and done, for progress.
    planned: AtomicU64,
    done: AtomicU64,
    on_event: Option<EventFn>,
    best: Mutex<Option<Best>>,
}

/// Builds a [`Session`]; everything but the run, program, models and metric
/// has a default (no examples, 4 threads, seed 42, no deadline).
pub struct SessionBuilder {
    writer: Writer,
    run_id: i64,
    base: ProgramSpec,
    lms: Arc<Lms>,
    metric: Arc<dyn Metric>,
    metric_name: String,
    constants: Arc<Map<String, Value>>,
    train: Vec<EvalExample>,
    val: Vec<EvalExample>,
    test: Vec<EvalExample>,
    threads: usize,
    seed: u64,
    interrupted: Option<Arc<AtomicBool>>,
    deadline: Option<Instant>,
    on_event: Option<EventFn>,
}

impl SessionBuilder {
    /// The program's fixed inputs (resolved spec constants).
    pub fn constants(mut self, c: Arc<Map<String, Value>>) -> Self {
        self.constants = c;
        self
    }

    /// Train, validation and test examples.
    pub fn examples(
        mut self,
        train: Vec<EvalExample>,
        val: Vec<EvalExample>,
        test: Vec<EvalExample>,
    ) -> Self {
        (self.train, self.val, self.test) = (train, val, test);
        self
    }

    /// Examples evaluated at once.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Seed of every random choice the optimizers make.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// A flag that, once set (Ctrl-C, a cancel request), stops the run after
    /// the current step.
    pub fn interrupt(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupted = Some(flag);
        self
    }

    /// Stop after this instant.
    pub fn deadline(mut self, at: Option<Instant>) -> Self {
        self.deadline = at;
        self
    }

    /// Receives progress and score events.
    pub fn on_event(mut self, f: Option<EventFn>) -> Self {
        self.on_event = f;
        self
    }

    /// The session; fails when the `task` role cannot be built.
    pub fn build(self) -> Result<Session> {
        let task_lm = self.lms.role("task")?;
        Ok(Session {
            writer: self.writer,
            run_id: self.run_id,
            base: self.base,
            constants: self.constants,
            lms: self.lms,
            task_lm,
            metric: self.metric,
            metric_name: self.metric_name,
            train: self.train,
            val: self.val,
            test: self.test,
            threads: self.threads,
            seed: self.seed,
            interrupted: self.interrupted.unwrap_or_default(),
            deadline: self.deadline,
            planned: AtomicU64::new(0),
            done: AtomicU64::new(0),
            on_event: self.on_event,
            best: Mutex::new(None),
        })
    }
}

impl Session {
    /// Starts building the session of run `run_id` optimizing `base`, scored
    /// by `metric` (stored under `metric_name`).
    pub fn builder(
        writer: Writer,
        run_id: i64,
        base: ProgramSpec,
        lms: Arc<Lms>,
        metric_name: &str,
        metric: Arc<dyn Metric>,
    ) -> SessionBuilder {
        SessionBuilder {
            writer,
            run_id,
            base,
            lms,
            metric,
            metric_name: metric_name.to_string(),
            constants: Arc::new(Map::new()),
            train: Vec::new(),
            val: Vec::new(),
            test: Vec::new(),
            threads: 4,
            seed: 42,
            interrupted: None,
            deadline: None,
            on_event: None,
        }
    }

    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    /// The program being optimized.
    pub fn base(&self) -> &ProgramSpec {
        &self.base
    }

    pub fn train(&self) -> &[EvalExample] {
        &self.train
    }

    pub fn val(&self) -> &[EvalExample] {
        &self.val
    }

    pub fn test(&self) -> &[EvalExample] {
        &self.test
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Every LM role (proposers use `prompt` and `reflection`).
    pub fn lms(&self) -> &Arc<Lms> {
        &self.lms
    }

    pub fn metric_name(&self) -> &str {
        &self.metric_name
    }

    /// The store writer the session sends its writes to.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Example evaluations done so far (stored ones reused count too).
    pub fn work_done(&self) -> u64 {
        self.done.load(Ordering::SeqCst)
    }

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

    fn emit(&self, e: Event) {
        if let Some(f) = &self.on_event {
            f(&e);
        }
    }

    fn report(&self, what: &str) {
        let progress = self.progress();
        let (calls, _, _) = self.task_lm.budget().used();
        self.writer.write(Write::RunProgress {
            run_id: self.run_id,
            progress,
            lm_calls: calls as i64,
            cache_hits: 0,
        });
        self.emit(Event::Progress {
            run_id: self.run_id,
            fraction: progress,
            done: self.done.load(Ordering::SeqCst),
            planned: self.planned.load(Ordering::SeqCst),
            message: what.to_string(),
        });
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
        let (run, origin, parents, hash) = (
            self.run_id,
            origin.to_string(),
            parents.to_vec(),
            spec.content_hash(),
        );
        self.writer
            .call(move |s| s.add_candidate(run, &parents, &origin, &json, &hash, trial))
    }

    /// The best candidate so far on the full validation set.
    pub fn best(&self) -> Option<Best> {
        self.best.lock().ok().and_then(|b| b.clone())
    }

    /// The outcome as of now: the best so far, or the base program.
    pub fn outcome(&self, stopped: Option<StopReason>) -> Outcome {
        match self.best() {
            Some(b) => Outcome {
                best: b.spec,
                best_candidate_id: Some(b.candidate_id),
                best_val_score: b.score,
                stopped,
            },
            None => Outcome {
                best: self.base.clone(),
                best_candidate_id: None,
                best_val_score: 0.0,
                stopped,
            },
        }
    }

    /// Scores a candidate on `examples` of `split` with the task model — the
    /// one path every optimizer scores through. Each score is sent to the
    /// store as it finishes; scores this candidate already has for an example
    /// (from any earlier evaluation, e.g. before a crash) are reused, and an
    /// identical finished evaluation is returned as is. A full evaluation on
    /// validation that beats the best so far becomes the best.
    pub async fn score(
        &self,
        candidate_id: i64,
        spec: &ProgramSpec,
        split: Split,
        kind: EvalKind,
        examples: &[EvalExample],
    ) -> Result<EvalResult> {
        let ids: Vec<i64> = examples.iter().map(|e| e.example_id).collect();
        let (run, metric, wanted) = (self.run_id, self.metric_name.clone(), ids.clone());
        let (previous, existing) = self.writer.call(move |s| {
            let previous = s.candidate_scores(candidate_id, &metric)?;
            let existing =
                s.find_evaluation_for(run, candidate_id, split, kind, &metric, &wanted)?;
            Ok((previous, existing))
        })?;
        let done: HashMap<i64, ExampleScore> = previous
            .into_iter()
            .filter(|(id, _)| ids.contains(id))
            .map(|(id, row)| (id, score_from_row(row)))
            .collect();
        let result = match existing {
            Some((_, true)) if done.len() == ids.len() => {
                self.done.fetch_add(ids.len() as u64, Ordering::SeqCst);
                self.report("reused a finished evaluation");
                result_from(examples, &done)
            }
            _ => {
                let eval_id = match existing {
                    Some((id, _)) => id,
                    None => {
                        let (metric, n) = (self.metric_name.clone(), ids.len());
                        let id = self.writer.call(move |s| {
                            s.create_evaluation(
                                run,
                                Some(candidate_id),
                                None,
                                split,
                                kind,
                                &metric,
                                n,
                            )
                        })?;
                        // Scores reused from earlier evaluations are recorded here too,
                        // so every evaluation row has its complete set of scores.
                        for s in done.values() {
                            self.writer.write(Write::Score {
                                evaluation_id: id,
                                row: row_from_score(s),
                            });
                        }
                        id
                    }
                };
                self.done.fetch_add(done.len() as u64, Ordering::SeqCst);
                let evaluator = self.evaluator(spec, candidate_id);
                let message = format!("{split} {kind} of candidate {candidate_id}");
                let result = evaluator
                    .evaluate(examples, &done, |s| {
                        self.writer.write(Write::Score {
                            evaluation_id: eval_id,
                            row: row_from_score(s),
                        });
                        self.done.fetch_add(1, Ordering::SeqCst);
                        self.report(&message);
                    })
                    .await;
                self.writer.write(Write::FinishEvaluation {
                    evaluation_id: eval_id,
                    mean: result.mean,
                });
                result
            }
        };
        self.emit(Event::Scored {
            run_id: self.run_id,
            candidate_id: Some(candidate_id),
            split,
            kind,
            n: result.scores.len(),
            mean: result.mean,
        });
        if split == Split::Val && kind == EvalKind::Full {
            self.consider_best(spec, candidate_id, result.mean)?;
        }
        Ok(result)
    }

    /// Makes the candidate the best if it beats the best so far (a tie keeps
    /// the earlier one, so the baseline wins ties), and records it on the run.
    fn consider_best(&self, spec: &ProgramSpec, candidate_id: i64, score: f64) -> Result<()> {
        {
            let mut best = self
                .best
                .lock()
                .map_err(|_| Error::Invalid("best-so-far lock poisoned".into()))?;
            if best.as_ref().is_some_and(|b| b.score >= score) {
                return Ok(());
            }
            *best = Some(Best {
                spec: spec.clone(),
                candidate_id,
                score,
            });
        }
        let run = self.run_id;
        self.writer
            .call(move |s| s.update_run_scores(run, None, Some(score), Some(candidate_id), None))?;
        self.emit(Event::NewBest {
            run_id: self.run_id,
            candidate_id,
            score,
        });
        Ok(())
    }

    /// An evaluator of `spec` whose calls are traced to this run and candidate.
    fn evaluator(&self, spec: &ProgramSpec, candidate_id: i64) -> Evaluator {
        Evaluator {
            spec: Arc::new(spec.clone()),
            constants: self.constants.clone(),
            lm: self.task_lm.clone(),
            metric: self.metric.clone(),
            threads: self.threads,
            failure_score: 0.0,
            context: CallContext {
                run_id: Some(self.run_id),
                candidate_id: Some(candidate_id),
                ..Default::default()
            },
            strategy: crate::program::ensemble::Strategy::Single,
            others: Vec::new(),
        }
    }
}

/// The stored form of an example's score.
pub fn row_from_score(s: &ExampleScore) -> ScoreRow {
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
