//! The `synthesize` job: asks a language model for new examples of a skill
//! trainset aimed at its coverage gaps, keeps those that parse, validate and
//! are no near-duplicate, and records the generation as a run (kind
//! `synthesize`) with a trace per LM call and the budget it used.
//!
//! Prompts and judging are the skill task's
//! ([`crate::tasks::skill::synthesis_prompts`], [`crate::tasks::skill::synthesize`]);
//! this module owns the run: rounds of requests, retries for the missing
//! count, the budget, and the run's end status.

use super::{ActiveRun, Context};
use crate::data::similar::SimilarityIndex;
use crate::data::{Example, Gap, Schema};
use crate::error::{Error, Result};
use crate::lm::budget::{Budget, BudgetLimits};
use crate::lm::client::CallContext;
use crate::lm::{LmError, LmRequest};
use crate::store::{NewRun, RunKind, Status, Write};
use crate::tasks::skill::synthesis_prompts::{synthesis_prompt, Target, RECORD_END};
use crate::tasks::skill::synthesize::{judge, pick_demos, plan, Coverage, Rejection};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// What to synthesize.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthesizeRequest {
    /// The trainset's name in reports (a stored trainset's key or a file).
    pub trainset: String,
    /// Examples wanted.
    pub n: usize,
    /// The LM role asked (`prompt` by default on the command line).
    pub role: String,
    #[serde(default)]
    pub budget: BudgetLimits,
    #[serde(default)]
    pub no_cache: bool,
}

/// What a synthesis produced and why the rest was rejected.
#[derive(Debug, Clone, Serialize)]
pub struct SynthesizeReport {
    pub run_id: i64,
    pub asked: usize,
    pub produced: usize,
    /// Rounds of requests made (the first, then one per retry).
    pub rounds: usize,
    /// The trainset's coverage gaps before synthesis (`trainset stats`).
    pub gaps: Vec<Gap>,
    /// What each request aimed at, in order.
    pub targets: Vec<Target>,
    /// The accepted examples (skill schema, `source: synthetic`).
    pub examples: Vec<Map<String, Value>>,
    pub rejections: Vec<Rejection>,
    pub lm_calls: i64,
    pub cache_hits: i64,
    pub tokens: u64,
    /// Why it stopped short of `asked`, when it did.
    pub note: Option<String>,
}

/// Runs a synthesis on `base` (the trainset's examples; `trainset_id` when
/// it is stored, to link the run).
pub async fn run_synthesize(
    ctx: &Context,
    req: SynthesizeRequest,
    base: &[Example],
    trainset_id: Option<i64>,
) -> Result<SynthesizeReport> {
    if req.n == 0 {
        return Err(Error::Invalid("--n: ask for at least one example".into()));
    }
    if Schema::detect(base) != Schema::Skill {
        return Err(Error::Invalid(format!(
            "trainset `{}` is not a skill trainset (no expected_* fields); synthesize writes skill examples",
            req.trainset
        )));
    }
    let taxonomy = ctx.config.taxonomy()?;
    let settings = ctx.config.synthesize.clone();
    let mut new_run = NewRun::new(RunKind::Synthesize, serde_json::to_string(&req)?);
    new_run.trainset_id = trainset_id;
    let run = ActiveRun::start(&ctx.writer, new_run)?;
    let run_id = run.id();
    let body = async {
        let budget = Arc::new(Budget::new(req.budget));
        let lms = ctx.lms(req.no_cache, budget.clone())?;
        let lm = lms.role(&req.role)?;
        let existing: Vec<Map<String, Value>> = base.iter().map(|e| e.fields.clone()).collect();
        let categories = taxonomy.names();
        let stats = crate::data::stats(base, &categories);
        let mut known = SimilarityIndex::new(settings.near_duplicate_similarity);
        for e in base {
            known.add(
                format!("trainset #{}", e.index),
                e.str_field("expected_name").unwrap_or(""),
                e.str_field("task_description").unwrap_or(""),
            );
        }
        let mut coverage = Coverage::of(&existing);
        let mut report = SynthesizeReport {
            run_id,
            asked: req.n,
            produced: 0,
            rounds: 0,
            gaps: stats.gaps,
            targets: Vec::new(),
            examples: Vec::new(),
            rejections: Vec::new(),
            lm_calls: 0,
            cache_hits: 0,
            tokens: 0,
            note: None,
        };
        let mut asked_so_far = 0usize;
        'rounds: for round in 1..=settings.max_rounds.max(1) {
            let missing = req.n - report.examples.len();
            if missing == 0 {
                break;
            }
            report.rounds = round;
            let targets = plan(&coverage, &categories, missing);
            let mut calls = tokio::task::JoinSet::new();
            for (i, target) in targets.iter().enumerate() {
                let shown: Vec<&Map<String, Value>> =
                    pick_demos(&existing, target, settings.demos, asked_so_far + i);
                let taken: Vec<String> = existing
                    .iter()
                    .chain(&report.examples)
                    .filter(|e| {
                        crate::tasks::skill::schema::category(e).as_deref()
                            == Some(target.category.as_str())
                    })
                    .filter_map(|e| e.get("expected_name").and_then(Value::as_str))
                    .take(settings.max_taken_names)
                    .map(str::to_string)
                    .collect();
                let mut request = LmRequest::text(synthesis_prompt(target, &shown, &taken));
                request.params = lm.default_params();
                request.params.max_tokens = settings.max_tokens;
                // A record ends at its marker; a model that skips the
                // marker and starts another record or a blank line is cut
                // there too, instead of writing up to max_tokens.
                request.params.stop = vec![
                    RECORD_END.to_string(),
                    "\nCategory:".to_string(),
                    "\n\n".to_string(),
                ];
                // A retry must not get the cached answer of the first try;
                // the same round and position of a rerun may.
                request.rollout_id = Some(format!("synthesize/{round}/{i}"));
                request.params.seed = Some((round * 1000 + i) as u64);
                let context = CallContext {
                    run_id: Some(run_id),
                    predictor: Some("synthesize".into()),
                    ..Default::default()
                };
                let lm = lm.clone();
                calls.spawn(async move { (i, lm.call(&request, &context).await) });
            }
            let mut answers = Vec::with_capacity(targets.len());
            while let Some(done) = calls.join_next().await {
                answers
                    .push(done.map_err(|e| Error::Invalid(format!("an LM call panicked: {e}")))?);
            }
            answers.sort_by_key(|(i, _)| *i);
            asked_so_far += targets.len();
            // The answers that came before the budget ran out still count.
            let mut exhausted = false;
            for ((_, answer), target) in answers.into_iter().zip(&targets) {
                report.targets.push(target.clone());
                let text = match answer {
                    Ok(out) => out.response.text().to_string(),
                    Err(LmError::Budget(why)) => {
                        report.note = Some(format!("budget exhausted: {why}"));
                        exhausted = true;
                        continue;
                    }
                    Err(e) => return Err(Error::Lm(e)),
                };
                match judge(target, round, &text, &taxonomy, &known) {
                    Ok(fields) => {
                        let k = report.examples.len();
                        known.add(
                            format!("synthetic #{k}"),
                            fields
                                .get("expected_name")
                                .and_then(Value::as_str)
                                .unwrap_or(""),
                            fields
                                .get("task_description")
                                .and_then(Value::as_str)
                                .unwrap_or(""),
                        );
                        coverage.count(&fields);
                        report.examples.push(fields);
                    }
                    Err(rejection) => report.rejections.push(*rejection),
                }
                if report.examples.len() == req.n {
                    break 'rounds;
                }
            }
            ctx.writer.write(Write::RunProgress {
                run_id,
                progress: report.examples.len() as f64 / req.n as f64,
                lm_calls: 0,
                cache_hits: 0,
            });
            if exhausted {
                break;
            }
        }
        lms.flush_traces()?;
        let (calls, hits) = ctx.reader()?.run_trace_counts(run_id)?;
        ctx.writer.write(Write::RunProgress {
            run_id,
            progress: 1.0,
            lm_calls: calls,
            cache_hits: hits,
        });
        report.produced = report.examples.len();
        report.lm_calls = calls;
        report.cache_hits = hits;
        report.tokens = budget.used().1;
        if report.produced < req.n && report.note.is_none() {
            report.note = Some(format!(
                "produced {} of {} after {} round(s); {} answer(s) rejected",
                report.produced,
                req.n,
                report.rounds,
                report.rejections.len()
            ));
        }
        Ok(report)
    };
    run.finish(body.await, |r| (Status::Completed, r.note.clone()))
}
