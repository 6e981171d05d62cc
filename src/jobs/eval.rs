//! The `eval` job: one program version (or an ensemble) on one trainset or
//! split part, recorded as a run with an evaluation and a score row per example.

use super::{eval_examples, metric_name, rows_by_ids, ActiveRun, Context};
use crate::config::Config;
use crate::data::Part;
use crate::error::{Error, Result};
use crate::eval::Evaluator;
use crate::lm::budget::Budget;
use crate::lm::client::{CallContext, Lms};
use crate::optimize::session::row_from_score;
use crate::program::ensemble::{Member, Selector, Strategy};
use crate::program::{load_program, ProgramRef};
use crate::progress::{Event, EventFn};
use crate::store::{EvalKind, NewRun, RunKind, Split, Status, Store, Write};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// What to evaluate.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
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
        store: &Store,
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
        let lm = lms.role("task")?;
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

/// Runs an evaluation; `on_event` follows it (progress after every example).
pub async fn run_eval(
    ctx: &Context,
    req: EvalRequest,
    on_event: Option<EventFn>,
) -> Result<EvalReport> {
    let started = Instant::now();
    let program = req.program.clone();
    let (spec, version) = ctx.writer.call(move |s| load_program(s, &program))?;
    ctx.writer.flush()?;
    let reader = ctx.reader()?;
    let trainset = reader.find_trainset(&req.trainset)?;
    let all = reader.examples(trainset.id)?;
    let mut ids: Vec<i64> = match req.split {
        Some(part) => {
            let split = reader.latest_split(trainset.id)?.ok_or_else(|| {
                Error::Invalid(format!(
                    "trainset `{}` has no split; run `skill-fleet trainset split {}` first",
                    trainset.name, trainset.name
                ))
            })?;
            reader.split_part(split.id, part)?
        }
        None => all.iter().map(|e| e.id).collect(),
    };
    if let Some(l) = req.limit {
        ids.truncate(l);
    }
    let rows = rows_by_ids(&all, &ids);
    crate::program::check_examples(&spec, &rows)?;
    let examples = eval_examples(&spec, &rows);
    let metric_name = metric_name(req.metric.as_deref(), &spec);
    let split = req.split.map(Split::from).unwrap_or(Split::All);
    let mut new_run = NewRun::new(
        RunKind::Eval,
        serde_json::json!({"program": req.program, "trainset": req.trainset, "split": split, "metric": metric_name}).to_string(),
    );
    new_run.trainset_id = Some(trainset.id);
    new_run.program_id = Some(version.program_id);
    new_run.base_version_id = Some(version.id);
    let run = ActiveRun::start(&ctx.writer, new_run)?;
    let run_id = run.id();
    if let Some(f) = &on_event {
        f(&Event::RunStarted { run_id });
    }
    let body = async {
        let evaluation_id = {
            let (metric, n, version_id) = (metric_name.clone(), examples.len(), version.id);
            ctx.writer.call(move |s| {
                s.create_evaluation(
                    run_id,
                    None,
                    Some(version_id),
                    split,
                    EvalKind::Full,
                    &metric,
                    n,
                )
            })?
        };
        let lms = ctx.lms(req.no_cache, Arc::new(Budget::unlimited()))?;
        let lm = lms.role("task")?;
        let metric = crate::metrics::resolve(&metric_name, &ctx.config.metrics, Some(&lms))?;
        let constants = Arc::new(spec.resolve_constants(&ctx.config.taxonomy()?.names()));
        let (strategy, others) = match &req.ensemble {
            Some(e) => e.build(&ctx.config, &lms, &reader, &spec.name, &constants)?,
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
        let result = evaluator
            .evaluate(&examples, &HashMap::new(), |s| {
                ctx.writer.write(Write::Score {
                    evaluation_id,
                    row: row_from_score(s),
                });
                done += 1;
                let fraction = done as f64 / total.max(1) as f64;
                ctx.writer.write(Write::RunProgress {
                    run_id,
                    progress: fraction,
                    lm_calls: 0,
                    cache_hits: 0,
                });
                if let Some(f) = &on_event {
                    f(&Event::Progress {
                        run_id,
                        fraction,
                        done: done as u64,
                        planned: total as u64,
                        message: format!("example {done} of {total}"),
                    });
                }
            })
            .await;
        ctx.writer.write(Write::FinishEvaluation {
            evaluation_id,
            mean: result.mean,
        });
        ctx.writer.flush()?;
        let (calls, hits) = ctx.reader()?.run_trace_counts(run_id)?;
        let mean = result.mean;
        ctx.writer.write(Write::RunProgress {
            run_id,
            progress: 1.0,
            lm_calls: calls,
            cache_hits: hits,
        });
        ctx.writer
            .call(move |s| s.update_run_scores(run_id, Some(mean), None, None, None))?;
        if let Some(f) = &on_event {
            f(&Event::Scored {
                run_id,
                candidate_id: None,
                split,
                kind: EvalKind::Full,
                n: result.scores.len(),
                mean,
            });
        }
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
            metric: metric_name.clone(),
            n: result.scores.len(),
            mean,
            errors: result.scores.iter().filter(|s| s.error.is_some()).count(),
            field_accuracy: result.field_accuracy(&examples),
            worst,
            lm_calls: calls,
            cache_hits: hits,
            wall_secs: started.elapsed().as_secs_f64(),
        })
    };
    run.finish(body.await, |_| (Status::Completed, None))
}
