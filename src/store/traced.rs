//! Traced predictions of a program, as `trainset from-traces` reads them: every
//! successful LM call made by `predict` (by version or alias, or routed by an
//! A/B test) or by `eval`, with the program version it ran, the score it got
//! (its evaluation's score, or the mean of its A/B assignment's outcomes) and
//! what it was asked. A user's filter is applied through
//! [`Store::query_read_only`], so it reads with the same guarantees as
//! `skill-fleet sql`: it cannot write, whatever it says.

use super::Store;
use crate::error::{Error, Result};
use serde_json::Value;

/// The columns a `--where` filter can use, with what each holds.
pub const TRACED_COLUMNS: &[(&str, &str)] = &[
    ("trace_id", "the trace's id"),
    ("at", "when the call was made (RFC 3339 UTC text)"),
    ("run_id", "the eval run of an eval trace (NULL for predict)"),
    (
        "origin",
        "'eval', 'predict' or 'ab' (predict routed by an A/B test)",
    ),
    ("version_id", "the program version's id"),
    ("version", "the program version's number"),
    ("example_id", "the trainset example an eval trace ran on"),
    ("predictor", "the predictor that made the call"),
    ("model", "the model that answered"),
    ("cache_hit", "1 when the answer came from the cache"),
    ("latency_ms", "the call's latency"),
    ("prompt_tokens", "tokens of the prompt"),
    ("completion_tokens", "tokens of the answer"),
    (
        "score",
        "the eval score of the example, or the mean A/B outcome (NULL if none)",
    ),
    ("ab_test", "the A/B test that routed the call"),
    ("ab_variant", "its variant"),
    ("unit_key", "the key the A/B test routed"),
    (
        "inputs_json",
        "the program inputs recorded with the call (JSON)",
    ),
    ("response_text", "the model's answer"),
];

/// One traced prediction of a program.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TracedPrediction {
    pub trace_id: i64,
    pub origin: String,
    pub version_id: i64,
    pub version: i64,
    pub example_id: Option<i64>,
    pub predictor: Option<String>,
    pub score: Option<f64>,
    /// The program inputs recorded with the call (newer traces).
    pub inputs_json: Option<String>,
    /// The fields of the example an eval trace ran on (for traces recorded
    /// before inputs were).
    pub example_fields_json: Option<String>,
    pub response_text: String,
}

/// The traced predictions of program `program_id` (of one version when
/// given) with every column of [`TRACED_COLUMNS`]. The version of an eval
/// trace is its run's; optimization traces (candidates) are not predictions
/// of a version and are left out, as are failed calls.
fn traced_sql(program_id: i64, version_id: Option<i64>) -> String {
    let version = version_id
        .map(|v| format!(" AND v.id = {v}"))
        .unwrap_or_default();
    format!(
        "SELECT t.id AS trace_id, t.at AS at, t.run_id AS run_id, \
           CASE WHEN t.assignment_id IS NOT NULL THEN 'ab' WHEN r.kind = 'eval' THEN 'eval' ELSE 'predict' END AS origin, \
           v.id AS version_id, v.version AS version, t.example_id AS example_id, t.predictor AS predictor, \
           t.model AS model, t.cache_hit AS cache_hit, t.latency_ms AS latency_ms, \
           t.prompt_tokens AS prompt_tokens, t.completion_tokens AS completion_tokens, \
           CASE WHEN t.assignment_id IS NOT NULL \
             THEN (SELECT AVG(o.score) FROM ab_outcomes o WHERE o.assignment_id = t.assignment_id) \
             ELSE (SELECT s.score FROM evaluations e JOIN scores s ON s.evaluation_id = e.id \
                   WHERE e.run_id = t.run_id AND e.candidate_id IS NULL AND s.example_id = t.example_id \
                   ORDER BY e.id DESC LIMIT 1) END AS score, \
           abt.name AS ab_test, abv.name AS ab_variant, a.unit_key AS unit_key, \
           t.inputs_json AS inputs_json, ex.fields_json AS example_fields_json, t.response_text AS response_text \
         FROM traces t \
         LEFT JOIN runs r ON r.id = t.run_id \
         JOIN program_versions v ON v.id = COALESCE(t.version_id, CASE WHEN r.kind = 'eval' THEN r.base_version_id END) \
         LEFT JOIN examples ex ON ex.id = t.example_id \
         LEFT JOIN ab_assignments a ON a.id = t.assignment_id \
         LEFT JOIN ab_tests abt ON abt.id = a.test_id \
         LEFT JOIN ab_variants abv ON abv.id = a.variant_id \
         WHERE t.error IS NULL AND t.response_text IS NOT NULL AND t.candidate_id IS NULL \
           AND (r.kind IS NULL OR r.kind IN ('eval', 'predict')) \
           AND v.program_id = {program_id}{version}"
    )
}

/// Why a `--where` filter was refused.
fn bad_filter(filter: &str, e: &Error) -> Error {
    let columns: Vec<&str> = TRACED_COLUMNS.iter().map(|(c, _)| *c).collect();
    Error::Invalid(format!(
        "--where `{filter}` is not a valid SQL filter over the traced predictions: {e}; \
         columns: {}",
        columns.join(", ")
    ))
}

impl Store {
    /// The traced predictions of a program (one version when given) that
    /// pass `filter`, a SQL boolean expression over [`TRACED_COLUMNS`],
    /// oldest first.
    pub fn traced_predictions(
        &self,
        program_id: i64,
        version_id: Option<i64>,
        filter: Option<&str>,
    ) -> Result<Vec<TracedPrediction>> {
        let inner = traced_sql(program_id, version_id);
        let outer = "trace_id, origin, version_id, version, example_id, predictor, score, \
                     inputs_json, example_fields_json, response_text";
        let sql = match filter {
            Some(f) => {
                format!("SELECT {outer} FROM ({inner}) AS traced WHERE ({f}) ORDER BY trace_id")
            }
            None => format!("SELECT {outer} FROM ({inner}) AS traced ORDER BY trace_id"),
        };
        let out = self.query_read_only(&sql).map_err(|e| match filter {
            Some(f) => bad_filter(f, &e),
            None => e,
        })?;
        let mut rows = Vec::with_capacity(out.rows.len());
        for r in out.rows {
            let int = |i: usize| r.get(i).and_then(Value::as_i64);
            let text = |i: usize| r.get(i).and_then(Value::as_str).map(str::to_string);
            let (Some(trace_id), Some(version_id), Some(version)) = (int(0), int(2), int(3)) else {
                continue;
            };
            rows.push(TracedPrediction {
                trace_id,
                origin: text(1).unwrap_or_default(),
                version_id,
                version,
                example_id: int(4),
                predictor: text(5),
                score: r.get(6).and_then(Value::as_f64),
                inputs_json: text(7),
                example_fields_json: text(8),
                response_text: text(9).unwrap_or_default(),
            });
        }
        Ok(rows)
    }
}
