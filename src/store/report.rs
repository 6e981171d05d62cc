//! Read queries behind run reports (`crate::report`): a run's LM usage and
//! latency percentiles from `traces`, its leaderboard from the
//! `candidate_leaderboard` view, per-example outcomes of two evaluations from
//! the `example_wins_losses` view, the versions a run registered, and the
//! run listing of the API and the dashboard (runs with names, calls and cost).

use super::{Split, Store};
use crate::error::Result;
use rusqlite::{params, OptionalExtension};

/// Totals of a run's traced LM calls.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LmTotals {
    pub calls: i64,
    pub cache_hits: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_usd: f64,
}

/// How much one LM role (provider and model) was used in a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RoleUse {
    pub role: Option<String>,
    pub provider: String,
    pub model: String,
    pub calls: i64,
}

/// One row of the `candidate_leaderboard` view.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LeaderboardRow {
    pub rank: i64,
    pub candidate_id: i64,
    pub origin: String,
    pub trial: Option<i64>,
    pub val_score: Option<f64>,
    pub n_scored: i64,
}

/// One example scored by two evaluations (A the reference, B the challenger),
/// with the `example_wins_losses` outcome of B against A.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExampleOutcomeRow {
    pub example_id: i64,
    pub idx: i64,
    pub fields_json: String,
    pub outcome: String,
    pub a_score: f64,
    pub b_score: f64,
    pub a_feedback: Option<String>,
    pub b_feedback: Option<String>,
    pub a_prediction_json: Option<String>,
    pub b_prediction_json: Option<String>,
    pub a_error: Option<String>,
    pub b_error: Option<String>,
}

/// One score of an evaluation with its example's index and fields.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExampleScoreRow {
    pub example_id: i64,
    pub idx: i64,
    pub fields_json: String,
    pub score: f64,
    pub feedback: Option<String>,
    pub prediction_json: Option<String>,
    pub error: Option<String>,
}

/// A run as the API lists it: the row, its program's and trainset's names,
/// and the LM calls and cost of its traces (the row's own `lm_calls` is
/// written when the run ends, so a running run needs the traces' count).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunListing {
    #[serde(flatten)]
    pub run: super::RunRow,
    pub program: Option<String>,
    pub trainset: Option<String>,
    pub traced_calls: i64,
    pub cost_usd: f64,
}

impl Store {
    /// Recent runs, newest first, with names and traced LM use. Each
    /// count is an indexed lookup of `traces_run`, so `limit` bounds the work.
    pub fn list_run_listings(&self, limit: i64) -> Result<Vec<RunListing>> {
        let cols = super::runs::RUN_COLS;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {cols}, \
             (SELECT name FROM programs WHERE programs.id = runs.program_id), \
             (SELECT name FROM trainsets WHERE trainsets.id = runs.trainset_id), \
             (SELECT COUNT(*) FROM traces WHERE traces.run_id = runs.id), \
             (SELECT COALESCE(SUM(cost_usd), 0.0) FROM traces WHERE traces.run_id = runs.id) \
             FROM runs ORDER BY id DESC LIMIT ?1"
        ))?;
        let n = cols.split(',').count();
        let rows = stmt
            .query_map([limit], |r| {
                Ok(RunListing {
                    run: super::runs::run_from_row(r)?,
                    program: r.get(n)?,
                    trainset: r.get(n + 1)?,
                    traced_calls: r.get(n + 2)?,
                    cost_usd: r.get(n + 3)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Calls, cache hits, errors, tokens and cost of a run's traces.
    pub fn run_lm_totals(&self, run_id: i64) -> Result<LmTotals> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(cache_hit), 0), COALESCE(SUM(error IS NOT NULL), 0), \
             COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cost_usd), 0.0) \
             FROM traces WHERE run_id = ?1",
            [run_id],
            |r| {
                Ok(LmTotals {
                    calls: r.get(0)?,
                    cache_hits: r.get(1)?,
                    errors: r.get(2)?,
                    prompt_tokens: r.get(3)?,
                    completion_tokens: r.get(4)?,
                    cost_usd: r.get(5)?,
                })
            },
        )?)
    }

    /// Nearest-rank percentiles (each `p` in (0, 1]) of the latency of a
    /// run's calls that reached a provider (cache hits answer in
    /// microseconds and would hide the model's latency); `None` for each when
    /// there is no such call. SQLite has no percentile function here, so each
    /// is one indexed-order lookup by offset rather than loading every row.
    pub fn run_latency_percentiles(&self, run_id: i64, ps: &[f64]) -> Result<Vec<Option<f64>>> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM traces WHERE run_id = ?1 AND cache_hit = 0",
            [run_id],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn.prepare(
            "SELECT latency_ms FROM traces WHERE run_id = ?1 AND cache_hit = 0 \
             ORDER BY latency_ms LIMIT 1 OFFSET ?2",
        )?;
        ps.iter()
            .map(|&p| {
                if n == 0 {
                    return Ok(None);
                }
                let rank = ((p * n as f64).ceil() as i64).clamp(1, n);
                Ok(stmt
                    .query_row(params![run_id, rank - 1], |r| r.get(0))
                    .optional()?)
            })
            .collect()
    }

    /// The LM roles a run called, with their provider, model and call count.
    pub fn run_lm_roles(&self, run_id: i64) -> Result<Vec<RoleUse>> {
        let mut stmt = self.conn.prepare(
            "SELECT role, provider, model, COUNT(*) FROM traces WHERE run_id = ?1 \
             GROUP BY role, provider, model ORDER BY COUNT(*) DESC, role",
        )?;
        let rows = stmt
            .query_map([run_id], |r| {
                Ok(RoleUse {
                    role: r.get(0)?,
                    provider: r.get(1)?,
                    model: r.get(2)?,
                    calls: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// A run's candidates ranked by their best full validation score.
    pub fn candidate_leaderboard(&self, run_id: i64) -> Result<Vec<LeaderboardRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT rank, candidate_id, origin, trial, val_score, n_scored FROM candidate_leaderboard \
             WHERE run_id = ?1 ORDER BY rank, candidate_id",
        )?;
        let rows = stmt
            .query_map([run_id], |r| {
                Ok(LeaderboardRow {
                    rank: r.get(0)?,
                    candidate_id: r.get(1)?,
                    origin: r.get(2)?,
                    trial: r.get(3)?,
                    val_score: r.get(4)?,
                    n_scored: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The newest finished full evaluation of a candidate on `split`.
    pub fn candidate_evaluation(&self, candidate_id: i64, split: Split) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM evaluations WHERE candidate_id = ?1 AND split = ?2 AND kind = 'full' \
                 AND status = 'done' ORDER BY id DESC LIMIT 1",
                params![candidate_id, split],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every example scored by both evaluations, in trainset order, with B's
    /// outcome against A.
    pub fn example_outcomes(&self, a_eval: i64, b_eval: i64) -> Result<Vec<ExampleOutcomeRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT w.example_id, x.idx, x.fields_json, w.outcome, w.a_score, w.b_score, \
                    a.feedback, b.feedback, a.prediction_json, b.prediction_json, a.error, b.error \
             FROM example_wins_losses w \
             JOIN scores a ON a.evaluation_id = w.a_evaluation_id AND a.example_id = w.example_id \
             JOIN scores b ON b.evaluation_id = w.b_evaluation_id AND b.example_id = w.example_id \
             JOIN examples x ON x.id = w.example_id \
             WHERE w.a_evaluation_id = ?1 AND w.b_evaluation_id = ?2 ORDER BY x.idx",
        )?;
        let rows = stmt
            .query_map(params![a_eval, b_eval], |r| {
                Ok(ExampleOutcomeRow {
                    example_id: r.get(0)?,
                    idx: r.get(1)?,
                    fields_json: r.get(2)?,
                    outcome: r.get(3)?,
                    a_score: r.get(4)?,
                    b_score: r.get(5)?,
                    a_feedback: r.get(6)?,
                    b_feedback: r.get(7)?,
                    a_prediction_json: r.get(8)?,
                    b_prediction_json: r.get(9)?,
                    a_error: r.get(10)?,
                    b_error: r.get(11)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The scores of one evaluation with their examples, in trainset order.
    pub fn example_scores(&self, evaluation_id: i64) -> Result<Vec<ExampleScoreRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT s.example_id, x.idx, x.fields_json, s.score, s.feedback, s.prediction_json, s.error \
             FROM scores s JOIN examples x ON x.id = s.example_id WHERE s.evaluation_id = ?1 ORDER BY x.idx",
        )?;
        let rows = stmt
            .query_map([evaluation_id], |r| {
                Ok(ExampleScoreRow {
                    example_id: r.get(0)?,
                    idx: r.get(1)?,
                    fields_json: r.get(2)?,
                    score: r.get(3)?,
                    feedback: r.get(4)?,
                    prediction_json: r.get(5)?,
                    error: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The program version a run registered (its best candidate), if any.
    pub fn run_result_version(&self, run_id: i64) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM program_versions WHERE run_id = ?1 ORDER BY id DESC LIMIT 1",
                [run_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A program's name by id.
    pub fn program_name(&self, program_id: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT name FROM programs WHERE id = ?1",
                [program_id],
                |r| r.get(0),
            )
            .optional()?)
    }
}
