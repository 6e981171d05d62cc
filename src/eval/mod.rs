//! Parallel evaluation of a program on examples: every example is scored (an
//! error scores the failure score and never aborts the run) and reported as
//! soon as it finishes, so callers can persist it at once.

use crate::lm::client::{CallContext, LmClient};
use crate::metrics::Metric;
use crate::program::ensemble::{infer, Member, Strategy};
use crate::program::{run_program, Prediction, ProgramSpec};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// One example to evaluate, already split into inputs and gold labels.
#[derive(Debug, Clone)]
pub struct EvalExample {
    pub example_id: i64,
    pub inputs: Map<String, Value>,
    pub labels: Map<String, Value>,
}

/// Score of one example.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExampleScore {
    pub example_id: i64,
    pub score: f64,
    pub feedback: String,
    pub prediction: Option<Prediction>,
    pub error: Option<String>,
}

/// Result of an evaluation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalResult {
    pub mean: f64,
    pub scores: Vec<ExampleScore>,
    pub lm_calls: u32,
    pub cache_hits: u32,
}

impl EvalResult {
    /// Share of examples where each output field equals the gold label exactly
    /// (after trimming and lowercasing), for the per-field accuracy table.
    pub fn field_accuracy(&self, examples: &[EvalExample]) -> Vec<(String, f64)> {
        let gold: HashMap<i64, &Map<String, Value>> =
            examples.iter().map(|e| (e.example_id, &e.labels)).collect();
        let mut fields: Vec<String> = Vec::new();
        for e in examples {
            for k in e.labels.keys() {
                if !fields.contains(k) {
                    fields.push(k.clone());
                }
            }
        }
        fields
            .into_iter()
            .map(|f| {
                let mut hit = 0usize;
                let mut n = 0usize;
                for s in &self.scores {
                    let Some(g) = gold.get(&s.example_id) else {
                        continue;
                    };
                    n += 1;
                    if let Some(p) = &s.prediction {
                        let norm =
                            |m: &Map<String, Value>| crate::metrics::text_of(m, &f).to_lowercase();
                        if norm(g) == norm(&p.outputs) {
                            hit += 1;
                        }
                    }
                }
                (f, if n == 0 { 0.0 } else { hit as f64 / n as f64 })
            })
            .collect()
    }
}

/// What an evaluation needs.
#[derive(Clone)]
pub struct Evaluator {
    pub spec: Arc<ProgramSpec>,
    pub constants: Arc<Map<String, Value>>,
    pub lm: Arc<LmClient>,
    pub metric: Arc<dyn Metric>,
    /// Examples in flight at once.
    pub threads: usize,
    /// Score of an example whose run failed.
    pub failure_score: f64,
    /// Trace context (run and candidate ids) for every call.
    pub context: CallContext,
    /// How predictions are made: one run, or an ensemble strategy.
    pub strategy: Strategy,
    /// Further ensemble members (other versions or models) after this one.
    pub others: Vec<Member>,
}

impl Evaluator {
    /// Runs and scores one example.
    pub async fn score_one(&self, ex: &EvalExample) -> ExampleScore {
        let mut ctx = self.context.clone();
        ctx.example_id = Some(ex.example_id);
        let outcome = match &self.strategy {
            Strategy::Single => {
                run_program(&self.spec, &self.constants, &self.lm, &ex.inputs, &ctx)
                    .await
                    .map_err(|e| e.to_string())
            }
            strategy => {
                let mut members = vec![Member {
                    spec: self.spec.clone(),
                    constants: self.constants.clone(),
                    lm: self.lm.clone(),
                }];
                members.extend(self.others.iter().cloned());
                infer(&members, strategy, &ex.inputs, &ctx)
                    .await
                    .map(|c| c.prediction)
                    .map_err(|e| e.to_string())
            }
        };
        match outcome {
            Ok(pred) => {
                let r = self.metric.score(&ex.labels, &pred.outputs).await;
                ExampleScore {
                    example_id: ex.example_id,
                    score: r.score,
                    feedback: r.feedback,
                    prediction: Some(pred),
                    error: None,
                }
            }
            Err(e) => ExampleScore {
                example_id: ex.example_id,
                score: self.failure_score,
                feedback: format!("the program failed: {e}"),
                prediction: None,
                error: Some(e.to_string()),
            },
        }
    }

    /// Evaluates `examples` with up to `threads` in flight; `done` holds scores
    /// already stored (resume) that are reused, not recomputed. `on_score` is
    /// called for each newly computed score as it finishes.
    pub async fn evaluate(
        &self,
        examples: &[EvalExample],
        done: &HashMap<i64, ExampleScore>,
        mut on_score: impl FnMut(&ExampleScore),
    ) -> EvalResult {
        let limiter = Arc::new(Semaphore::new(self.threads.max(1)));
        let mut set = tokio::task::JoinSet::new();
        let mut scores: Vec<ExampleScore> = Vec::with_capacity(examples.len());
        for ex in examples {
            if let Some(s) = done.get(&ex.example_id) {
                scores.push(s.clone());
                continue;
            }
            let this = self.clone();
            let ex = ex.clone();
            let limiter = limiter.clone();
            set.spawn(async move {
                let _permit = limiter.acquire_owned().await;
                this.score_one(&ex).await
            });
        }
        while let Some(joined) = set.join_next().await {
            let s = match joined {
                Ok(s) => s,
                Err(e) => ExampleScore {
                    example_id: -1,
                    score: self.failure_score,
                    feedback: format!("evaluation task failed: {e}"),
                    prediction: None,
                    error: Some(e.to_string()),
                },
            };
            on_score(&s);
            scores.push(s);
        }
        let order: HashMap<i64, usize> = examples
            .iter()
            .enumerate()
            .map(|(i, e)| (e.example_id, i))
            .collect();
        scores.sort_by_key(|s| order.get(&s.example_id).copied().unwrap_or(usize::MAX));
        let mean = if scores.is_empty() {
            0.0
        } else {
            scores.iter().map(|s| s.score).sum::<f64>() / scores.len() as f64
        };
        let lm_calls = scores
            .iter()
            .filter_map(|s| s.prediction.as_ref())
            .map(|p| p.lm_calls)
            .sum();
        let cache_hits = scores
            .iter()
            .filter_map(|s| s.prediction.as_ref())
            .map(|p| p.cache_hits)
            .sum();
        EvalResult {
            mean,
            scores,
            lm_calls,
            cache_hits,
        }
    }
}
