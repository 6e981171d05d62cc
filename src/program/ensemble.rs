//! Ensembles (the original's phase 3): BestOfN, MajorityVote and Ensemble
//! over several program versions or models, usable from predict and eval.

use super::run::{run_program_with, Prediction, RunError, RunOptions};
use super::spec::ProgramSpec;
use crate::lm::client::{CallContext, LmClient};
use crate::metrics::Metric;
use serde_json::{Map, Value};
use std::sync::Arc;

/// One program (spec, fixed inputs, model) taking part in an ensemble.
#[derive(Clone)]
pub struct Member {
    pub spec: Arc<ProgramSpec>,
    pub constants: Arc<Map<String, Value>>,
    pub lm: Arc<LmClient>,
}

/// How several predictions become one.
#[derive(Clone)]
pub enum Strategy {
    /// One run of the first member.
    Single,
    /// `n` samples at `temperature`; the highest `reward` wins, stopping early
    /// once a sample reaches `threshold`.
    BestOfN {
        n: usize,
        temperature: f32,
        reward: Arc<dyn Metric>,
        threshold: Option<f64>,
    },
    /// `n` samples; the most common normalised value of `field` wins when at
    /// least `min_agreement` of the valid samples agree.
    MajorityVote {
        n: usize,
        temperature: f32,
        field: String,
        min_agreement: f64,
    },
    /// Every member once; a selector picks the answer.
    Ensemble(Selector),
}

/// Picks among member predictions.
#[derive(Clone)]
pub enum Selector {
    /// Most common value of a field.
    Majority { field: String, min_agreement: f64 },
    /// Highest reward (gold-free metric, e.g. metadata_quality).
    Best(Arc<dyn Metric>),
    /// The first member that produced a valid answer.
    FirstValid,
}

/// The chosen prediction and how it was chosen.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Chosen {
    pub prediction: Prediction,
    /// Index of the sample or member chosen.
    pub index: usize,
    /// Samples or members that ran.
    pub runs: usize,
    /// Share of valid samples agreeing with the winner (votes only).
    pub agreement: Option<f64>,
    /// Reward of the winner (best-of only).
    pub reward: Option<f64>,
}

/// Why no answer could be chosen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EnsembleError {
    #[error("every run failed; last error: {0}")]
    AllFailed(RunError),
    #[error("no ensemble members")]
    Empty,
    #[error("agreement {agreement:.2} on `{field}` is below the minimum {min:.2}")]
    NoAgreement {
        field: String,
        agreement: f64,
        min: f64,
    },
}

/// Normalised text of a field for voting (case, whitespace, list order).
pub fn vote_key(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s
            .trim()
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        Some(Value::Array(items)) => {
            let mut keys: Vec<String> = items.iter().map(|i| vote_key(Some(i))).collect();
            keys.sort();
            keys.join(",")
        }
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Majority among predictions on `field`: (winner index, agreement).
pub fn majority(preds: &[(usize, Prediction)], field: &str) -> Option<(usize, f64)> {
    let mut counts: Vec<(String, usize, usize)> = Vec::new();
    for (i, p) in preds {
        let k = vote_key(p.outputs.get(field));
        match counts.iter_mut().find(|c| c.0 == k) {
            Some(c) => c.1 += 1,
            None => counts.push((k, 1, *i)),
        }
    }
    // Ties go to the value seen first (deterministic).
    let best = counts
        .iter()
        .fold(None::<&(String, usize, usize)>, |acc, c| match acc {
            Some(a) if a.1 >= c.1 => Some(a),
            _ => Some(c),
        })?;
    Some((best.2, best.1 as f64 / preds.len().max(1) as f64))
}

async fn sample(
    m: &Member,
    inputs: &Map<String, Value>,
    ctx: &CallContext,
    temperature: Option<f32>,
    rollout: String,
) -> Result<Prediction, RunError> {
    let options = RunOptions {
        temperature,
        rollout: Some(rollout),
    };
    run_program_with(&m.spec, &m.constants, &m.lm, inputs, ctx, &options).await
}

/// Runs `inputs` through `members` with `strategy`.
pub async fn infer(
    members: &[Member],
    strategy: &Strategy,
    inputs: &Map<String, Value>,
    ctx: &CallContext,
) -> Result<Chosen, EnsembleError> {
    let first = members.first().ok_or(EnsembleError::Empty)?;
    match strategy {
        Strategy::Single => {
            let options = RunOptions::default();
            let p = run_program_with(
                &first.spec,
                &first.constants,
                &first.lm,
                inputs,
                ctx,
                &options,
            )
            .await
            .map_err(EnsembleError::AllFailed)?;
            Ok(Chosen {
                prediction: p,
                index: 0,
                runs: 1,
                agreement: None,
                reward: None,
            })
        }
        Strategy::BestOfN {
            n,
            temperature,
            reward,
            threshold,
        } => {
            let mut best: Option<Chosen> = None;
            let mut last_err = None;
            let empty = Map::new();
            for i in 0..(*n).max(1) {
                match sample(
                    first,
                    inputs,
                    ctx,
                    Some(*temperature),
                    format!("best-of-{i}"),
                )
                .await
                {
                    Ok(p) => {
                        let r = reward.score(&empty, &p.outputs).await.score;
                        if best
                            .as_ref()
                            .is_none_or(|b| r > b.reward.unwrap_or(f64::MIN))
                        {
                            best = Some(Chosen {
                                prediction: p,
                                index: i,
                                runs: i + 1,
                                agreement: None,
                                reward: Some(r),
                            });
                        }
                        if threshold.is_some_and(|t| r >= t) {
                            break;
                        }
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            let runs = best.as_ref().map(|b| b.runs).unwrap_or(*n);
            match best {
                Some(mut b) => {
                    b.runs = runs.max(b.index + 1);
                    Ok(b)
                }
                None => Err(all_failed(last_err, "no samples")),
            }
        }
        Strategy::MajorityVote {
            n,
            temperature,
            field,
            min_agreement,
        } => {
            let mut preds = Vec::new();
            let mut last_err = None;
            for i in 0..(*n).max(1) {
                match sample(first, inputs, ctx, Some(*temperature), format!("vote-{i}")).await {
                    Ok(p) => preds.push((i, p)),
                    Err(e) => last_err = Some(e),
                }
            }
            choose_majority(preds, field, *min_agreement, *n, last_err)
        }
        Strategy::Ensemble(selector) => {
            let mut preds = Vec::new();
            let mut last_err = None;
            for (i, m) in members.iter().enumerate() {
                let options = RunOptions::default();
                match run_program_with(&m.spec, &m.constants, &m.lm, inputs, ctx, &options).await {
                    Ok(p) => {
                        if matches!(selector, Selector::FirstValid)
                            && !p.traces.iter().any(|t| t.used_fallback)
                        {
                            return Ok(Chosen {
                                prediction: p,
                                index: i,
                                runs: i + 1,
                                agreement: None,
                                reward: None,
                            });
                        }
                        preds.push((i, p));
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            match selector {
                Selector::Majority {
                    field,
                    min_agreement,
                } => choose_majority(preds, field, *min_agreement, members.len(), last_err),
                Selector::Best(reward) => {
                    let empty = Map::new();
                    let mut best: Option<Chosen> = None;
                    for (i, p) in preds {
                        let r = reward.score(&empty, &p.outputs).await.score;
                        if best
                            .as_ref()
                            .is_none_or(|b| r > b.reward.unwrap_or(f64::MIN))
                        {
                            best = Some(Chosen {
                                prediction: p,
                                index: i,
                                runs: members.len(),
                                agreement: None,
                                reward: Some(r),
                            });
                        }
                    }
                    best.ok_or_else(|| all_failed(last_err, "no members"))
                }
                Selector::FirstValid => preds
                    .into_iter()
                    .next()
                    .map(|(i, p)| Chosen {
                        prediction: p,
                        index: i,
                        runs: members.len(),
                        agreement: None,
                        reward: None,
                    })
                    .ok_or_else(|| all_failed(last_err, "no members")),
            }
        }
    }
}

/// The error for "nothing succeeded": the last run error, or `what` when none ran.
fn all_failed(last_err: Option<RunError>, what: &str) -> EnsembleError {
    EnsembleError::AllFailed(last_err.unwrap_or_else(|| RunError::Lm {
        predictor: "?".into(),
        error: crate::lm::LmError::Provider(what.into()),
    }))
}

fn choose_majority(
    preds: Vec<(usize, Prediction)>,
    field: &str,
    min: f64,
    runs: usize,
    last_err: Option<RunError>,
) -> Result<Chosen, EnsembleError> {
    let Some((winner, agreement)) = majority(&preds, field) else {
        return Err(all_failed(last_err, "no samples"));
    };
    if agreement < min {
        return Err(EnsembleError::NoAgreement {
            field: field.to_string(),
            agreement,
            min,
        });
    }
    let prediction = preds
        .into_iter()
        .find(|(i, _)| *i == winner)
        .map(|(_, p)| p)
        .ok_or(EnsembleError::Empty)?;
    Ok(Chosen {
        prediction,
        index: winner,
        runs,
        agreement: Some(agreement),
        reward: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pred(style: &str) -> Prediction {
        Prediction {
            outputs: json!({"skill_style": style})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            traces: vec![],
            lm_calls: 1,
            cache_hits: 0,
        }
    }

    #[test]
    fn majority_normalises_and_reports_agreement() {
        let preds = vec![
            (0, pred("Minimal")),
            (1, pred("comprehensive")),
            (2, pred(" minimal ")),
            (3, pred("minimal")),
        ];
        assert_eq!(majority(&preds, "skill_style"), Some((0, 0.75)));
        let tie = vec![(0, pred("a")), (1, pred("b"))];
        assert_eq!(majority(&tie, "skill_style"), Some((0, 0.5)));
        assert_eq!(
            vote_key(Some(&json!(["B", "a"]))),
            vote_key(Some(&json!(["a", "b"])))
        );
    }
}
