//! Metric jobs that run no model: `metrics test` (a metric on gold labels and
//! on perturbed ones) and `metrics score` (predictions made elsewhere, e.g.
//! by another framework, scored with our metric).

use super::Context;
use crate::error::{Error, Result};
use crate::metrics::Metric;
use crate::program::{load_program, ProgramRef, ProgramSpec};
use crate::store::{ExampleRow, TrainsetRow};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// What a metric job works with: the program (a spec file is registered),
/// the trainset, its examples and the metric.
type MetricJobInputs = (ProgramSpec, TrainsetRow, Vec<ExampleRow>, Arc<dyn Metric>);

/// The inputs of a metric job.
fn program_examples_metric(
    ctx: &Context,
    program: &str,
    trainset: &str,
    metric: &str,
) -> Result<MetricJobInputs> {
    let r = ProgramRef {
        program: program.to_string(),
        ..Default::default()
    };
    let (spec, _) = ctx.writer.call(move |s| load_program(s, &r))?;
    ctx.writer.flush()?;
    let reader = ctx.reader()?;
    let ts = reader.find_trainset(trainset)?;
    let rows = reader.examples(ts.id)?;
    let m = crate::metrics::resolve(metric, &ctx.config.metrics, None)?;
    Ok((spec, ts, rows, m))
}

/// Per example: the metric on gold and on each perturbation; and the means.
#[derive(Debug, Clone, Serialize)]
pub struct MetricTestReport {
    pub metric: String,
    /// Column labels: `gold`, then each perturbation.
    pub labels: Vec<String>,
    /// (example id, one score per label).
    pub rows: Vec<(i64, Vec<f64>)>,
    /// Mean per label, in `labels` order.
    pub means: Vec<f64>,
}

/// Scores `metric` on the gold labels of the first `examples` examples of
/// `trainset` and on their perturbations.
pub async fn test_metric(
    ctx: &Context,
    metric: &str,
    trainset: &str,
    program: &str,
    examples: usize,
) -> Result<MetricTestReport> {
    let (spec, _, all, m) = program_examples_metric(ctx, program, trainset, metric)?;
    let mut labels: Vec<String> = vec!["gold".into()];
    let mut rows = Vec::new();
    for e in all.iter().take(examples) {
        let (_, gold) = spec.example_io(&e.fields);
        let mut scores = vec![m.score(&gold, &gold).await.score];
        for (label, p) in crate::tasks::skill::perturb::perturb(&gold) {
            if !labels.iter().any(|l| l == label) {
                labels.push(label.to_string());
            }
            scores.push(m.score(&gold, &p).await.score);
        }
        rows.push((e.id, scores));
    }
    let means = (0..labels.len())
        .map(|i| {
            let col: Vec<f64> = rows.iter().filter_map(|(_, s)| s.get(i).copied()).collect();
            col.iter().sum::<f64>() / col.len().max(1) as f64
        })
        .collect();
    Ok(MetricTestReport {
        metric: m.name(),
        labels,
        rows,
        means,
    })
}

/// Predictions scored by `metrics score`.
#[derive(Debug, Clone, Serialize)]
pub struct ScoredPredictions {
    pub metric: String,
    pub n: usize,
    pub mean: f64,
    /// (example index, score, feedback), in file order.
    pub scores: Vec<(i64, f64, String)>,
}

/// One line of a predictions file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictionLine {
    idx: i64,
    prediction: Map<String, Value>,
}

/// Scores the JSONL predictions at `path` (one `{"idx": N, "prediction":
/// {...}}` per line, N the example's index in `trainset`) with `metric`.
pub async fn score_predictions(
    ctx: &Context,
    metric: &str,
    trainset: &str,
    program: &str,
    path: &Path,
) -> Result<ScoredPredictions> {
    let (spec, ts, rows, m) = program_examples_metric(ctx, program, trainset, metric)?;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let by_idx: HashMap<i64, _> = rows.iter().map(|r| (r.idx, r)).collect();
    let mut scores = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let p: PredictionLine = serde_json::from_str(line).map_err(|e| {
            Error::Invalid(format!(
                "{}:{}: {e}; expected {{\"idx\": <example index>, \"prediction\": {{<field>: <value>, ...}}}}",
                path.display(),
                n + 1
            ))
        })?;
        let example = by_idx.get(&p.idx).ok_or_else(|| {
            Error::Invalid(format!(
                "{}:{}: idx {} is not an example of trainset `{}` (it has {} examples, idx 0..{})",
                path.display(),
                n + 1,
                p.idx,
                ts.name,
                rows.len(),
                rows.len()
            ))
        })?;
        let (_, gold) = spec.example_io(&example.fields);
        let r = m.score(&gold, &p.prediction).await;
        scores.push((p.idx, r.score, r.feedback));
    }
    if scores.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no predictions",
            path.display()
        )));
    }
    let mean = scores.iter().map(|s| s.1).sum::<f64>() / scores.len() as f64;
    Ok(ScoredPredictions {
        metric: m.name(),
        n: scores.len(),
        mean,
        scores,
    })
}
