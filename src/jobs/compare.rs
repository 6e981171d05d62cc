//! The `compare` job: versions A and B of a program on the same examples
//! (a split part of a trainset, or all of it). Each side's scores come from
//! a stored evaluation that covers those examples under the same metric when
//! one exists (an optimization's test evaluation of the version it stored,
//! an earlier eval), else from a new evaluation (which the LM cache makes
//! cheap for calls made before). The result is stored in `comparisons`.

use super::{metric_name, run_eval, Context, EvalRequest};
use crate::compare::{outcomes, Comparison, StatSettings};
use crate::data::Part;
use crate::error::{Error, Result};
use crate::program::{ProgramRef, ProgramSpec};
use crate::progress::EventFn;
use crate::store::{ScoreRow, Split, Store, VersionRow};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What to compare.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareRequest {
    /// A registered program name.
    pub program: String,
    /// Reference version (A) and challenger (B), by number.
    pub a: i64,
    pub b: i64,
    pub trainset: String,
    /// A part of the trainset's newest split, or every example.
    pub split: Option<Part>,
    pub metric: Option<String>,
    #[serde(default)]
    pub stats: StatSettings,
    pub threads: usize,
    pub no_cache: bool,
}

/// Scores of `version` on exactly `ids` under `metric`, from the newest
/// stored evaluation that covers them: (evaluation id, scores by example).
fn stored_scores(
    store: &Store,
    version: &VersionRow,
    split: Split,
    metric: &str,
    ids: &[i64],
) -> Result<Option<(i64, HashMap<i64, ScoreRow>)>> {
    for e in store.version_evaluations(version.id)? {
        if e.metric != metric || (e.split != split && split != Split::All) {
            continue;
        }
        let scores: HashMap<i64, ScoreRow> = store
            .scores(e.evaluation_id)?
            .into_iter()
            .map(|s| (s.example_id, s))
            .collect();
        if ids.iter().all(|id| scores.contains_key(id)) {
            return Ok(Some((e.evaluation_id, scores)));
        }
    }
    Ok(None)
}

/// Compares versions `req.a` and `req.b`; `on_event` follows the evaluations
/// it has to run. The comparison is stored and returned with its id.
pub async fn run_compare(
    ctx: &Context,
    req: CompareRequest,
    on_event: Option<EventFn>,
) -> Result<Comparison> {
    if req.a == req.b {
        return Err(Error::Invalid(format!(
            "compare needs two different versions (got {} twice)",
            req.a
        )));
    }
    let reader = ctx.reader()?;
    let va = reader.find_version(&req.program, Some(req.a))?;
    let vb = reader.find_version(&req.program, Some(req.b))?;
    let trainset = reader.find_trainset(&req.trainset)?;
    let split = req.split.map(Split::from).unwrap_or(Split::All);
    let (split_id, ids): (Option<i64>, Vec<i64>) = match req.split {
        Some(part) => {
            let s = reader.latest_split(trainset.id)?.ok_or_else(|| {
                Error::Invalid(format!(
                    "trainset `{}` has no split; run `skill-fleet trainset split {}` or compare with --split all",
                    trainset.name, trainset.name
                ))
            })?;
            (Some(s.id), reader.split_part(s.id, part)?)
        }
        None => (
            None,
            reader.examples(trainset.id)?.iter().map(|e| e.id).collect(),
        ),
    };
    if ids.is_empty() {
        return Err(Error::Invalid(format!(
            "split {split} of trainset `{}` has no examples",
            trainset.name
        )));
    }
    // Both versions are scored with one metric: the one asked for, else B's
    // own (the challenger is judged by what it was optimized for), else A's.
    let spec_b: ProgramSpec = serde_json::from_str(&vb.spec_json)?;
    let metric = metric_name(req.metric.as_deref(), &spec_b);
    let mut sides = Vec::new();
    for v in [&va, &vb] {
        let found = stored_scores(&reader, v, split, &metric, &ids)?;
        let side = match found {
            Some((eval_id, scores)) => (eval_id, scores, true),
            None => {
                let report = run_eval(
                    ctx,
                    EvalRequest {
                        program: ProgramRef {
                            program: req.program.clone(),
                            version: Some(v.version),
                            alias: None,
                        },
                        trainset: trainset.name.clone(),
                        split: req.split,
                        metric: Some(metric.clone()),
                        threads: req.threads,
                        no_cache: req.no_cache,
                        limit: None,
                        ensemble: None,
                    },
                    on_event.clone(),
                )
                .await?;
                ctx.writer.flush()?;
                let scores = ctx
                    .reader()?
                    .scores(report.evaluation_id)?
                    .into_iter()
                    .map(|s| (s.example_id, s))
                    .collect();
                (report.evaluation_id, scores, false)
            }
        };
        sides.push(side);
    }
    let (b_eval, b_scores, b_reused) = sides.pop().ok_or(Error::Invalid("no side".into()))?;
    let (a_eval, a_scores, a_reused) = sides.pop().ok_or(Error::Invalid("no side".into()))?;
    let (summary, examples, most_changed) = outcomes(&ids, &a_scores, &b_scores, req.stats);
    let mut comparison = Comparison {
        id: None,
        program: req.program.clone(),
        a_version: va.version,
        b_version: vb.version,
        a_version_id: va.id,
        b_version_id: vb.id,
        trainset: trainset.name.clone(),
        split,
        metric,
        a_evaluation_id: a_eval,
        b_evaluation_id: b_eval,
        a_reused,
        b_reused,
        summary,
        examples,
        most_changed,
    };
    let row = comparison.to_row(va.program_id, trainset.id, split_id)?;
    comparison.id = Some(ctx.writer.call(move |s| s.insert_comparison(&row))?);
    ctx.writer.flush()?;
    Ok(comparison)
}
