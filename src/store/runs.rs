//! Typed queries on runs, candidates, evaluations and per-example scores.
//! The high-volume writes (scores, progress, finishing an evaluation) are
//! [`super::Write`]s committed in groups by the store writer; the rest here
//! run on the writer's connection through `Writer::call`.

use super::{EvalKind, RunKind, Split, Status, Store};
use crate::error::{Error, Result};
use crate::util::now;
use rusqlite::{params, OptionalExtension};
use std::collections::HashMap;

/// A run as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub kind: RunKind,
    pub optimizer: Option<String>,
    pub config_json: String,
    pub trainset_id: Option<i64>,
    pub split_id: Option<i64>,
    pub program_id: Option<i64>,
    pub base_version_id: Option<i64>,
    pub status: Status,
    pub progress: f64,
    pub seed: Option<i64>,
    pub baseline_score: Option<f64>,
    pub best_score: Option<f64>,
    pub best_candidate_id: Option<i64>,
    pub test_score: Option<f64>,
    pub lm_calls: i64,
    pub cache_hits: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

/// What a new run records.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub kind: RunKind,
    pub optimizer: Option<String>,
    pub config_json: String,
    pub trainset_id: Option<i64>,
    pub split_id: Option<i64>,
    pub program_id: Option<i64>,
    pub base_version_id: Option<i64>,
    pub seed: Option<i64>,
}

impl NewRun {
    /// A run of `kind` with its config and nothing else linked yet.
    pub fn new(kind: RunKind, config_json: String) -> Self {
        NewRun {
            kind,
            optimizer: None,
            config_json,
            trainset_id: None,
            split_id: None,
            program_id: None,
            base_version_id: None,
            seed: None,
        }
    }
}

/// A stored score row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScoreRow {
    pub example_id: i64,
    pub score: f64,
    pub feedback: Option<String>,
    pub prediction_json: Option<String>,
    pub error: Option<String>,
}

/// A stored evaluation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvaluationRow {
    pub id: i64,
    pub run_id: i64,
    pub candidate_id: Option<i64>,
    pub version_id: Option<i64>,
    pub split: Split,
    pub kind: EvalKind,
    pub metric: String,
    pub n: i64,
    pub mean_score: Option<f64>,
    pub status: String,
}

/// A stored candidate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CandidateRow {
    pub id: i64,
    pub run_id: i64,
    pub parent_ids: String,
    pub origin: String,
    pub spec_json: String,
    pub hash: String,
    pub trial: Option<i64>,
}

pub(super) const RUN_COLS: &str = "id, kind, optimizer, config_json, trainset_id, split_id, program_id, base_version_id, status, \
    progress, seed, baseline_score, best_score, best_candidate_id, test_score, lm_calls, cache_hits, started_at, finished_at, error";

pub(super) fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        optimizer: r.get(2)?,
        config_json: r.get(3)?,
        trainset_id: r.get(4)?,
        split_id: r.get(5)?,
        program_id: r.get(6)?,
        base_version_id: r.get(7)?,
        status: r.get(8)?,
        progress: r.get(9)?,
        seed: r.get(10)?,
        baseline_score: r.get(11)?,
        best_score: r.get(12)?,
        best_candidate_id: r.get(13)?,
        test_score: r.get(14)?,
        lm_calls: r.get(15)?,
        cache_hits: r.get(16)?,
        started_at: r.get(17)?,
        finished_at: r.get(18)?,
        error: r.get(19)?,
    })
}

const EVAL_COLS: &str =
    "id, run_id, candidate_id, version_id, split, kind, metric, n, mean_score, status";

fn score_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScoreRow> {
    Ok(ScoreRow {
        example_id: r.get(0)?,
        score: r.get(1)?,
        feedback: r.get(2)?,
        prediction_json: r.get(3)?,
        error: r.get(4)?,
    })
}

fn eval_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EvaluationRow> {
    Ok(EvaluationRow {
        id: r.get(0)?,
        run_id: r.get(1)?,
        candidate_id: r.get(2)?,
        version_id: r.get(3)?,
        split: r.get(4)?,
        kind: r.get(5)?,
        metric: r.get(6)?,
        n: r.get(7)?,
        mean_score: r.get(8)?,
        status: r.get(9)?,
    })
}

impl Store {
    /// Starts a run (status `running`).
    pub fn create_run(&self, run: &NewRun) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO runs (kind, optimizer, config_json, trainset_id, split_id, program_id, base_version_id, seed, started_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![run.kind, run.optimizer, run.config_json, run.trainset_id, run.split_id, run.program_id,
                run.base_version_id, run.seed, now()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// A run by id.
    pub fn run(&self, id: i64) -> Result<RunRow> {
        self.conn
            .query_row(
                &format!("SELECT {RUN_COLS} FROM runs WHERE id = ?1"),
                [id],
                run_from_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound {
                kind: "run",
                name: id.to_string(),
            })
    }

    /// Recent runs, newest first.
    pub fn list_runs(&self, limit: i64) -> Result<Vec<RunRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {RUN_COLS} FROM runs ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt
            .query_map([limit], run_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Records the headline scores of a run as they become known.
    pub fn update_run_scores(
        &self,
        id: i64,
        baseline: Option<f64>,
        best: Option<f64>,
        best_candidate: Option<i64>,
        test: Option<f64>,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET baseline_score = COALESCE(?2, baseline_score), best_score = COALESCE(?3, best_score), \
             best_candidate_id = COALESCE(?4, best_candidate_id), test_score = COALESCE(?5, test_score) WHERE id = ?1",
            params![id, baseline, best, best_candidate, test],
        )?;
        Ok(())
    }

    /// Sets a run's status (`running` again on resume; finished states set
    /// `finished_at`, and `completed` sets progress to 1).
    pub fn set_run_status(&self, id: i64, status: Status, error: Option<&str>) -> Result<()> {
        let finished = status.is_finished().then(now);
        self.conn.execute(
            "UPDATE runs SET status = ?2, error = ?3, finished_at = ?4, \
             progress = CASE WHEN ?2 = 'completed' THEN 1.0 ELSE progress END WHERE id = ?1",
            params![id, status, error, finished],
        )?;
        Ok(())
    }

    /// Adds a candidate (or returns the existing one with the same spec hash in this run).
    pub fn add_candidate(
        &self,
        run_id: i64,
        parent_ids: &[i64],
        origin: &str,
        spec_json: &str,
        hash: &str,
        trial: Option<i64>,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT OR IGNORE INTO candidates (run_id, parent_ids, origin, spec_json, hash, trial, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![run_id, serde_json::to_string(parent_ids)?, origin, spec_json, hash, trial, now()],
        )?;
        Ok(self.conn.query_row(
            "SELECT id FROM candidates WHERE run_id = ?1 AND hash = ?2",
            params![run_id, hash],
            |r| r.get(0),
        )?)
    }

    /// Candidates of a run in creation order.
    pub fn candidates(&self, run_id: i64) -> Result<Vec<CandidateRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, run_id, parent_ids, origin, spec_json, hash, trial FROM candidates WHERE run_id = ?1 ORDER BY id",
        )?;
        let rows = stmt
            .query_map([run_id], |r| {
                Ok(CandidateRow {
                    id: r.get(0)?,
                    run_id: r.get(1)?,
                    parent_ids: r.get(2)?,
                    origin: r.get(3)?,
                    spec_json: r.get(4)?,
                    hash: r.get(5)?,
                    trial: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Starts an evaluation.
    #[allow(clippy::too_many_arguments)]
    pub fn create_evaluation(
        &self,
        run_id: i64,
        candidate_id: Option<i64>,
        version_id: Option<i64>,
        split: Split,
        kind: EvalKind,
        metric: &str,
        n: usize,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO evaluations (run_id, candidate_id, version_id, split, kind, metric, n, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![run_id, candidate_id, version_id, split, kind, metric, n as i64, now()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Scores of an evaluation.
    pub fn scores(&self, evaluation_id: i64) -> Result<Vec<ScoreRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT example_id, score, feedback, prediction_json, error FROM scores WHERE evaluation_id = ?1 ORDER BY example_id",
        )?;
        let rows = stmt
            .query_map([evaluation_id], score_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Evaluations of a run.
    pub fn evaluations(&self, run_id: i64) -> Result<Vec<EvaluationRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EVAL_COLS} FROM evaluations WHERE run_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt
            .query_map([run_id], eval_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// LM calls and cache hits recorded in traces for a run.
    pub fn run_trace_counts(&self, run_id: i64) -> Result<(i64, i64)> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(cache_hit), 0) FROM traces WHERE run_id = ?1",
            [run_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }
}

impl Store {
    /// Every stored score of a candidate under `metric`, newest per example.
    pub fn candidate_scores(
        &self,
        candidate_id: i64,
        metric: &str,
    ) -> Result<HashMap<i64, ScoreRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT s.example_id, s.score, s.feedback, s.prediction_json, s.error FROM scores s \
             JOIN evaluations e ON e.id = s.evaluation_id WHERE e.candidate_id = ?1 AND e.metric = ?2 ORDER BY e.id",
        )?;
        let rows = stmt.query_map(params![candidate_id, metric], score_from_row)?;
        let mut out = HashMap::new();
        for row in rows {
            let row = row?;
            out.insert(row.example_id, row);
        }
        Ok(out)
    }

    /// An evaluation of a candidate on exactly these examples, if one exists:
    /// (id, finished). Used to resume instead of starting a duplicate.
    pub fn find_evaluation_for(
        &self,
        run_id: i64,
        candidate_id: i64,
        split: Split,
        kind: EvalKind,
        metric: &str,
        example_ids: &[i64],
    ) -> Result<Option<(i64, bool)>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, status FROM evaluations WHERE run_id = ?1 AND candidate_id = ?2 AND split = ?3 AND kind = ?4 \
             AND metric = ?5 AND n = ?6 ORDER BY id",
        )?;
        let evals: Vec<(i64, String)> = stmt
            .query_map(
                params![
                    run_id,
                    candidate_id,
                    split,
                    kind,
                    metric,
                    example_ids.len() as i64
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<rusqlite::Result<_>>()?;
        let wanted: std::collections::BTreeSet<i64> = example_ids.iter().copied().collect();
        for (id, status) in evals {
            // The example set of an evaluation is its scores plus, while running,
            // those still missing; a finished one must match exactly. A running
            // one is taken when its scores are a subset of what is wanted.
            let mut s = self
                .conn
                .prepare_cached("SELECT example_id FROM scores WHERE evaluation_id = ?1")?;
            let have: std::collections::BTreeSet<i64> = s
                .query_map([id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let finished = status == "done";
            if (finished && have == wanted) || (!finished && have.is_subset(&wanted)) {
                return Ok(Some((id, finished)));
            }
        }
        Ok(None)
    }
}
