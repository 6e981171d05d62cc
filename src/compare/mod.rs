//! Version comparison: two versions scored on the same examples, summed up
//! as a mean difference with a paired bootstrap interval, the sign test on
//! per-example wins, and the examples that changed most (`stats.rs` holds
//! the statistics). The job that gathers the scores (reusing stored ones)
//! and stores the result is `jobs::compare`.

pub mod stats;

pub use stats::{paired_summary, PairedSummary};

use crate::store::{ComparisonRow, ScoreRow, Split};
use serde::{Deserialize, Serialize};

/// How many of the most changed examples a comparison lists.
pub const MOST_CHANGED: usize = 5;

/// One example scored by both versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExampleOutcome {
    pub example_id: i64,
    pub a_score: f64,
    pub b_score: f64,
    /// `b_score - a_score`.
    pub diff: f64,
    /// `win` (B higher), `loss` or `tie`.
    pub outcome: String,
    pub a_feedback: Option<String>,
    pub b_feedback: Option<String>,
    pub a_prediction: Option<serde_json::Value>,
    pub b_prediction: Option<serde_json::Value>,
}

/// A comparison of version B (challenger) against A (reference).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// Row id once stored.
    pub id: Option<i64>,
    pub program: String,
    pub a_version: i64,
    pub b_version: i64,
    pub a_version_id: i64,
    pub b_version_id: i64,
    pub trainset: String,
    pub split: Split,
    pub metric: String,
    pub a_evaluation_id: i64,
    pub b_evaluation_id: i64,
    /// Whether each side's scores were taken from an earlier evaluation
    /// (true) or made by this comparison.
    pub a_reused: bool,
    pub b_reused: bool,
    pub summary: PairedSummary,
    /// Every example, in the order of the split.
    pub examples: Vec<ExampleOutcome>,
    /// The examples with the largest |difference|, largest first.
    pub most_changed: Vec<ExampleOutcome>,
}

/// Settings of the statistics.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StatSettings {
    pub confidence: f64,
    pub resamples: usize,
    pub seed: u64,
}

impl Default for StatSettings {
    fn default() -> Self {
        StatSettings {
            confidence: 0.95,
            resamples: 10_000,
            seed: 0,
        }
    }
}

fn prediction(row: &ScoreRow) -> Option<serde_json::Value> {
    row.prediction_json
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
}

/// Pairs the scores of A and B on `example_ids` (each side must hold every
/// id; the caller checked) and sums them up.
pub fn outcomes(
    example_ids: &[i64],
    a: &std::collections::HashMap<i64, ScoreRow>,
    b: &std::collections::HashMap<i64, ScoreRow>,
    settings: StatSettings,
) -> (PairedSummary, Vec<ExampleOutcome>, Vec<ExampleOutcome>) {
    let mut examples = Vec::with_capacity(example_ids.len());
    for id in example_ids {
        let (Some(ra), Some(rb)) = (a.get(id), b.get(id)) else {
            continue;
        };
        let diff = rb.score - ra.score;
        let outcome = if diff > stats::TIE_EPSILON {
            "win"
        } else if diff < -stats::TIE_EPSILON {
            "loss"
        } else {
            "tie"
        };
        examples.push(ExampleOutcome {
            example_id: *id,
            a_score: ra.score,
            b_score: rb.score,
            diff,
            outcome: outcome.into(),
            a_feedback: ra.feedback.clone(),
            b_feedback: rb.feedback.clone(),
            a_prediction: prediction(ra),
            b_prediction: prediction(rb),
        });
    }
    let sa: Vec<f64> = examples.iter().map(|e| e.a_score).collect();
    let sb: Vec<f64> = examples.iter().map(|e| e.b_score).collect();
    let summary = paired_summary(
        &sa,
        &sb,
        settings.confidence,
        settings.resamples,
        settings.seed,
    );
    let mut most: Vec<ExampleOutcome> = examples
        .iter()
        .filter(|e| e.outcome != "tie")
        .cloned()
        .collect();
    most.sort_by(|x, y| y.diff.abs().total_cmp(&x.diff.abs()));
    most.truncate(MOST_CHANGED);
    (summary, examples, most)
}

impl Comparison {
    /// The stored row of this comparison (headline columns plus the whole
    /// result as JSON).
    pub fn to_row(
        &self,
        program_id: i64,
        trainset_id: i64,
        split_id: Option<i64>,
    ) -> crate::Result<ComparisonRow> {
        let s = &self.summary;
        Ok(ComparisonRow {
            id: 0,
            program_id,
            a_version_id: self.a_version_id,
            b_version_id: self.b_version_id,
            trainset_id,
            split_id,
            split: self.split,
            metric: self.metric.clone(),
            a_evaluation_id: Some(self.a_evaluation_id),
            b_evaluation_id: Some(self.b_evaluation_id),
            n: s.n as i64,
            a_mean: s.a_mean,
            b_mean: s.b_mean,
            mean_diff: s.mean_diff,
            ci_low: s.ci_low,
            ci_high: s.ci_high,
            confidence: s.confidence,
            wins: s.wins as i64,
            losses: s.losses as i64,
            ties: s.ties as i64,
            p_value: s.p_value,
            seed: s.seed as i64,
            resamples: s.resamples as i64,
            result_json: serde_json::to_string(self)?,
            created_at: String::new(),
        })
    }

    /// Reads a stored comparison back.
    pub fn from_row(row: &ComparisonRow) -> crate::Result<Comparison> {
        let mut c: Comparison = serde_json::from_str(&row.result_json)?;
        c.id = Some(row.id);
        Ok(c)
    }
}
