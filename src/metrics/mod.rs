//! Metrics: each returns a score in [0, 1] and a feedback text (GEPA reflects
//! on the feedback). Built-ins, the original skill-fleet's skill metrics,
//! weighted composites from config, an LLM judge and external commands.

mod builtin;
mod external;
mod judge;

pub use builtin::{ExactMatch, LengthBounds, ListF1, LiteralMatch, RegexMatch, TokenF1};
pub use external::CommandMetric;
pub use judge::JudgeMetric;

use crate::error::{Error, Result};
use crate::lm::client::Lms;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A score with the reason for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricResult {
    pub score: f64,
    pub feedback: String,
}

impl MetricResult {
    /// A result, with the score clamped into [0, 1].
    pub fn new(score: f64, feedback: impl Into<String>) -> Self {
        MetricResult {
            score: if score.is_finite() {
                score.clamp(0.0, 1.0)
            } else {
                0.0
            },
            feedback: feedback.into(),
        }
    }
}

/// Scores a prediction against gold labels (both keyed by program field names).
#[async_trait::async_trait]
pub trait Metric: Send + Sync {
    /// Name recorded with evaluations.
    fn name(&self) -> String;
    /// Scores one prediction.
    async fn score(&self, gold: &Map<String, Value>, pred: &Map<String, Value>) -> MetricResult;
}

/// A metric definition in `config.yaml` under `metrics:`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MetricDef {
    /// Weighted mean of other metrics.
    Composite(Vec<WeightedMetric>),
    /// An LLM judge scoring with a rubric.
    Judge {
        rubric: String,
        #[serde(default = "judge_role")]
        role: String,
    },
    /// An external command: example JSON on stdin, `{"score", "feedback"}` on stdout.
    Command(Vec<String>),
}

fn judge_role() -> String {
    "judge".into()
}

/// One part of a composite.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WeightedMetric {
    pub metric: String,
    pub weight: f64,
}

/// Definitions that exist without any config: the tasks' composites.
pub fn default_definitions() -> BTreeMap<String, MetricDef> {
    crate::tasks::skill::metric_definitions()
}

/// Weighted mean of metrics; feedback lists each part.
pub struct Composite {
    name: String,
    parts: Vec<(Arc<dyn Metric>, f64)>,
}

#[async_trait::async_trait]
impl Metric for Composite {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn score(&self, gold: &Map<String, Value>, pred: &Map<String, Value>) -> MetricResult {
        let total: f64 = self.parts.iter().map(|(_, w)| w).sum();
        let mut score = 0.0;
        let mut feedback = Vec::new();
        for (m, w) in &self.parts {
            let r = m.score(gold, pred).await;
            score += w * r.score;
            feedback.push(format!("{} ({:.2}): {}", m.name(), r.score, r.feedback));
        }
        MetricResult::new(
            if total > 0.0 { score / total } else { 0.0 },
            feedback.join("\n"),
        )
    }
}

/// Resolves a metric name: a configured definition, a skill metric, or a
/// parameterised built-in `kind:field[:args]` (e.g. `exact_match:name`,
/// `list_f1:keywords`, `regex:name:^[a-z0-9-]+$`, `length:description:15:35`).
pub fn resolve(
    name: &str,
    defs: &BTreeMap<String, MetricDef>,
    lms: Option<&Arc<Lms>>,
) -> Result<Arc<dyn Metric>> {
    resolve_depth(name, defs, lms, 0)
}

fn resolve_depth(
    name: &str,
    defs: &BTreeMap<String, MetricDef>,
    lms: Option<&Arc<Lms>>,
    depth: usize,
) -> Result<Arc<dyn Metric>> {
    if depth > 8 {
        return Err(Error::Invalid(format!(
            "metric `{name}`: composites nest too deeply (a cycle?)"
        )));
    }
    if let Some(def) = defs
        .get(name)
        .cloned()
        .or_else(|| default_definitions().get(name).cloned())
    {
        return match def {
            MetricDef::Composite(parts) => {
                let parts = parts
                    .iter()
                    .map(|p| Ok((resolve_depth(&p.metric, defs, lms, depth + 1)?, p.weight)))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Arc::new(Composite {
                    name: name.to_string(),
                    parts,
                }))
            }
            MetricDef::Judge { rubric, role } => {
                let lms = lms.ok_or_else(|| {
                    Error::Invalid(format!("metric `{name}` needs an LM (judge role)"))
                })?;
                let client = lms.role(&role).map_err(|e| Error::Invalid(e.to_string()))?;
                Ok(Arc::new(JudgeMetric::new(name, rubric, client)))
            }
            MetricDef::Command(argv) => Ok(Arc::new(CommandMetric::new(name, argv)?)),
        };
    }
    let parts: Vec<&str> = name.splitn(3, ':').collect();
    let field = || -> Result<String> {
        parts
            .get(1)
            .filter(|f| !f.is_empty())
            .map(|f| f.to_string())
            .ok_or_else(|| {
                Error::Invalid(format!("metric `{name}`: expected `{}:FIELD`", parts[0]))
            })
    };
    let m: Arc<dyn Metric> = match parts[0] {
        task if crate::tasks::skill::metric(task).is_some() => {
            crate::tasks::skill::metric(task).ok_or_else(|| Error::Invalid(task.to_string()))?
        }
        "exact_match" => Arc::new(ExactMatch(field()?)),
        "literal_match" => Arc::new(LiteralMatch(field()?)),
        "token_f1" => Arc::new(TokenF1(field()?)),
        "list_f1" => Arc::new(ListF1(field()?)),
        "regex" => {
            let pattern = parts.get(2).ok_or_else(|| {
                Error::Invalid(format!("metric `{name}`: expected `regex:FIELD:PATTERN`"))
            })?;
            Arc::new(RegexMatch::new(&field()?, pattern)?)
        }
        "length" => {
            let bounds: Vec<usize> = parts
                .get(2)
                .map(|b| b.split(':').filter_map(|x| x.parse().ok()).collect())
                .unwrap_or_default();
            if bounds.len() != 2 {
                return Err(Error::Invalid(format!(
                    "metric `{name}`: expected `length:FIELD:MIN:MAX` (words)"
                )));
            }
            Arc::new(LengthBounds {
                field: field()?,
                min_words: bounds[0],
                max_words: bounds[1],
            })
        }
        _ => {
            let mut known: Vec<String> = defs.keys().cloned().collect();
            known.extend(default_definitions().keys().cloned());
            known.extend(crate::tasks::skill::METRICS.iter().map(|s| s.to_string()));
            known.extend(
                [
                    "exact_match:F",
                    "literal_match:F",
                    "token_f1:F",
                    "list_f1:F",
                    "regex:F:P",
                    "length:F:MIN:MAX",
                ]
                .iter()
                .map(|s| s.to_string()),
            );
            return Err(Error::Invalid(format!(
                "unknown metric `{name}`; expected one of: {}",
                known.join(", ")
            )));
        }
    };
    Ok(m)
}

/// Lowercased, trimmed text of a field (lists joined), for comparisons.
pub fn text_of(map: &Map<String, Value>, field: &str) -> String {
    match map.get(field) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A list field as normalised strings (a string is split on commas).
pub fn list_of(map: &Map<String, Value>, field: &str) -> Vec<String> {
    match map.get(field) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|x| x.trim().to_lowercase())
            .filter(|x| !x.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// F1 between two bags of items (duplicates ignored). Both empty scores 1.
pub fn set_f1(gold: &[String], pred: &[String]) -> f64 {
    let g: std::collections::HashSet<&String> = gold.iter().collect();
    let p: std::collections::HashSet<&String> = pred.iter().collect();
    if g.is_empty() && p.is_empty() {
        return 1.0;
    }
    if g.is_empty() || p.is_empty() {
        return 0.0;
    }
    let tp = g.intersection(&p).count() as f64;
    if tp == 0.0 {
        return 0.0;
    }
    let precision = tp / p.len() as f64;
    let recall = tp / g.len() as f64;
    2.0 * precision * recall / (precision + recall)
}
