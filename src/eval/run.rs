//! The `eval` job: one program version on one trainset (or split part),
//! recorded as a run with an evaluation and a score row per example.

use super::{EvalExample, Evaluator};
use crate::config::Config;
use crate::data::Part;
use crate::error::{Error, Result};
use crate::lm::budget::Budget;
use crate::lm::client::{CallContext, LmOptions, Lms};
use crate::program::ensemble::{Member, Selector, Strategy};
use crate::program::{load_program, ProgramRef};
use crate::store::{NewRun, ScoreRow, Store};
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    pub program: ProgramRef,
    pub trainset: String,
    /// A split part (`train`, `val`, `test`) of the newest split, or all examples.
    pub split: Option<Part>,
    pub metric: Option<String>,
    pub threads: usize,
    pub no_cache: bool,
    /// Evaluate at most this many examples.
    pub limit: Option<usize>,
    /// Ensemble strategy and extra members (other program versions).
    pub ensemble: Option<EnsembleRequest>,
}

/// An ensemble to evaluate or predict with, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct EnsembleRequest {
    /// BestOfN samples (with `reward`).
    pub best_of: Option<usize>,
    /// MajorityVote samples (with `vote_field`).
    pub vote: Option<usize>,
    pub vote_field: Option<String>,
    pub min_agreement: f64,
    pub temperature: f32,
    /// Reward metric for BestOfN or the `best` selector (gold-free, e.g. metadata_quality).
    pub reward: Option<String>,
    pub threshold: Option<f64>,
    /// Other versions of the program that join as ensemble members.
    pub versions: Vec<i64>,
}

impl EnsembleRequest {
    /// Builds the strategy and extra members.
    pub fn build(
        &self,
        config: &Config,
        lms: &Arc<Lms>,
        store: &mut Store,
        program: &str,
        constants: &Arc<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<(Strategy, Vec<Member>)> {
        let reward = |name: &Option<String>| -> Result<Arc<dyn crate::metrics::Metric>> {
            crate::metrics::resolve(
                name.as_deref().unwrap_or("metadata_quality"),
                &config.metrics,
                Some(lms),
            )
        };
        let lm = lms
            .role("task")
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let mut others = Vec::new();
        for v in &self.versions {
            let row = store.find_version(program, Some(*v))?;
            let spec: crate::program::ProgramSpec = serde_json::from_str(&row.spec_json)?;
            others.push(Member {
                spec: Arc::new(spec),
                constants: constants.clone(),
                lm: lm.clone(),
            });
        }
        let strategy = if let Some(n) = self.best_of {
            Strategy::BestOfN {
                n,
                temperature: self.temperature,
                reward: reward(&self.reward)?,
                threshold: self.threshold,
            }
        } else if let Some(n) = self.vote {
            let field = self
                .vote_field
                .clone()
                .ok_or_else(|| Error::Invalid("--vote needs --vote-field FIELD".into()))?;
            Strategy::MajorityVote {
                n,
                temperature: self.temperature,
                field,
                min_agreement: self.min_agreement,
            }
        } else if !others.is_empty() {
            Strategy::Ensemble(match (&self.vote_field, &self.reward) {
                (Some(f), _) => Selector::Majority {
                    field: f.clone(),
                    min_agreement: self.min_agreement,
                },
                (None, Some(_)) => Selector::Best(reward(&self.reward)?),
                (None, None) => Selector::FirstValid,
            })
        } else {
            Strategy::Single
        };
        Ok((strategy, others))
    }
}

/// Result of `eval`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub run_id: i64,
    pub evaluation_id: i64,
    pub program: String,
    pub version: i64,
    pub metric: String,
    pub n: usize,
    pub mean: f64,
    pub errors: usize,
    pub field_accuracy: Vec<(String, f64)>,
    /// (example id, score, feedback), lowest first.
    pub worst: Vec<(i64, f64, String)>,
    pub lm_calls: i64,
    pub cache_hits: i64,
    pub wall_secs: f64,
}

/// Runs an evaluation; `on_progress(done, total)` follows it.
pub async fn run_eval(
    db: PathBuf,
    config: Config,
    req: EvalRequest,
    on_progress: impl Fn(usize, usize),
) -> Result<EvalReport> {
    let started = Instant::now();
    let mut store = Store::open(&db)?;
    let taxonomy = config.taxonomy()?;
    let (spec, version) = load_program(&mut store, &req.program)?;
    let trainset = store.find_trainset(&req.trainset)?;
    let all = store.examples(trainset.id)?;
    let ids: Vec<i64> = match req.split {
        Some(part) => {
            let split = store.latest_split(trainset.id)?.ok_or_else(|| {
                Error::Invalid(format!(
                    "trainset `{}` has no split; run `skill-fleet trainset split {}` first",
                    trainset.name, trainset.name
                ))
            })?;
            store.split_part(split.id, part)?
        }
        None => all.iter().map(|e| e.id).collect(),
    };
    let mut examples: Vec<EvalExample> = ids
        .iter()
        .filter_map(|id| all.iter().find(|e| e.id == *id))
        .map(|e| {
            let (inputs, labels) = spec.example_io(&e.fields);
            EvalExample {
                example_id: e.id,
                inputs,
                labels,
            }
        })
        .collect();
    if let Some(l) = req.limit {
        examples.truncate(l);
    }
    let metric_name = req
        .metric
        .clone()
        .or_else(|| spec.metric.clone())
        .unwrap_or_else(|| "skill_comprehensive".into());
    let run_id = store.create_run(&NewRun {
        kind: "eval",
        optimizer: None,
        config_json: serde_json::json!({"program": req.program, "trainset": req.trainset, "split": req.split.map(|p| p.as_str()), "metric": metric_name}).to_string(),
        trainset_id: Some(trainset.id),
        split_id: None,
        program_id: Some(version.program_id),
        base_version_id: Some(version.id),
        seed: None,
    })?;
    let split_name = req.split.map(|p| p.as_str()).unwrap_or("all");
    let evaluation_id = store.create_evaluation(
        run_id,
        None,
        Some(version.id),
        split_name,
        "full",
        &metric_name,
        examples.len(),
    )?;
    let lms = Arc::new(
        Lms::new(
            config.clone(),
            LmOptions {
                db: Some(db.clone()),
                no_cache: req.no_cache,
            },
            Arc::new(Budget::unlimited()),
        )
        .map_err(|e| Error::Invalid(e.to_string()))?,
    );
    let lm = lms
        .role("task")
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let metric = crate::metrics::resolve(&metric_name, &config.metrics, Some(&lms))?;
    let constants = Arc::new(spec.resolve_constants(&taxonomy.names()));
    let (strategy, others) = match &req.ensemble {
        Some(e) => e.build(&config, &lms, &mut store, &spec.name, &constants)?,
        None => (Strategy::Single, Vec::new()),
    };
    let evaluator = Evaluator {
        spec: Arc::new(spec.clone()),
        constants,
        lm,
        metric,
        threads: req.threads.max(1),
        failure_score: 0.0,
        context: CallContext {
            run_id: Some(run_id),
            ..Default::default()
        },
        strategy,
        others,
    };
    let total = examples.len();
    let mut done = 0usize;
    let mut write_err = None;
    let result = evaluator
        .evaluate(&examples, &HashMap::new(), |s| {
            let row = ScoreRow {
                example_id: s.example_id,
                score: s.score,
                feedback: Some(s.feedback.clone()),
                prediction_json: s
                    .prediction
                    .as_ref()
                    .and_then(|p| serde_json::to_string(p).ok()),
                error: s.error.clone(),
            };
            if let Err(e) = store.insert_score(evaluation_id, &row) {
                write_err = Some(e);
            }
            done += 1;
            let _ = store.update_run_progress(run_id, done as f64 / total.max(1) as f64, 0, 0);
            on_progress(done, total);
        })
        .await;
    if let Some(e) = write_err {
        store.set_run_status(run_id, "failed", Some(&e.to_string()))?;
        return Err(e);
    }
    lms.flush_traces();
    store.finish_evaluation(evaluation_id, result.mean)?;
    let (calls, hits) = store.run_trace_counts(run_id)?;
    store.update_run_progress(run_id, 1.0, calls, hits)?;
    store.update_run_scores(run_id, Some(result.mean), None, None, None)?;
    store.set_run_status(run_id, "succeeded", None)?;
    let mut worst: Vec<(i64, f64, String)> = result
        .scores
        .iter()
        .map(|s| (s.example_id, s.score, s.feedback.clone()))
        .collect();
    worst.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
    worst.truncate(5);
    Ok(EvalReport {
        run_id,
        evaluation_id,
        program: spec.name.clone(),
        version: version.version,
        metric: metric_name,
        n: result.scores.len(),
        mean: result.mean,
        errors: result.scores.iter().filter(|s| s.error.is_some()).count(),
        field_accuracy: result.field_accuracy(&examples),
        worst,
        lm_calls: calls,
        cache_hits: hits,
        wall_secs: started.elapsed().as_secs_f64(),
    })
}
