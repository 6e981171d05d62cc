//! CSV rendering of a [`RunReport`]: the per-example table, one row per
//! example, because that is the part of a report a spreadsheet or pandas is
//! wanted for (the headline numbers, trials and leaderboard are in the JSON
//! form, and in SQL views). An optimize run writes best against baseline
//! (`COMPARISON_HEADER`, on test, else validation); an eval run writes its
//! scores (`SCORES_HEADER`). Predictions are JSON text.

use super::RunReport;
use crate::error::{Error, Result};
use crate::store::RunKind;
use serde_json::Value;
use std::io::Write;

/// Columns of an optimize run's CSV.
pub const COMPARISON_HEADER: [&str; 13] = [
    "split",
    "example_id",
    "idx",
    "input",
    "outcome",
    "baseline_score",
    "best_score",
    "baseline_prediction",
    "best_prediction",
    "baseline_feedback",
    "best_feedback",
    "baseline_error",
    "best_error",
];

/// Columns of an eval run's CSV.
pub const SCORES_HEADER: [&str; 7] = [
    "example_id",
    "idx",
    "input",
    "score",
    "prediction",
    "feedback",
    "error",
];

fn json_cell(v: Option<&Value>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Writes the per-example CSV of a run.
pub fn run_report(r: &RunReport, out: &mut dyn Write) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let e = |e: csv::Error| Error::Invalid(format!("writing CSV: {e}"));
    if r.run.kind == RunKind::Eval {
        w.write_record(SCORES_HEADER).map_err(e)?;
        for s in &r.example_scores {
            w.write_record([
                s.example_id.to_string(),
                s.idx.to_string(),
                s.input.clone().unwrap_or_default(),
                s.score.to_string(),
                json_cell(s.prediction.as_ref()),
                s.feedback.clone().unwrap_or_default(),
                s.error.clone().unwrap_or_default(),
            ])
            .map_err(e)?;
        }
    } else {
        w.write_record(COMPARISON_HEADER).map_err(e)?;
        if let Some(c) = &r.comparison {
            for x in &c.examples {
                w.write_record([
                    c.split.to_string(),
                    x.example_id.to_string(),
                    x.idx.to_string(),
                    x.input.clone().unwrap_or_default(),
                    x.outcome.clone(),
                    x.baseline_score.to_string(),
                    x.best_score.to_string(),
                    json_cell(x.baseline_prediction.as_ref()),
                    json_cell(x.best_prediction.as_ref()),
                    x.baseline_feedback.clone().unwrap_or_default(),
                    x.best_feedback.clone().unwrap_or_default(),
                    x.baseline_error.clone().unwrap_or_default(),
                    x.best_error.clone().unwrap_or_default(),
                ])
                .map_err(e)?;
            }
        }
    }
    w.flush().map_err(|err| Error::io("report output", err))
}
