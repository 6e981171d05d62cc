//! Typed queries behind the MLflow export: the export mapping
//! (`mlflow_exports`) and the per-run figures an export sends (trial score
//! series, candidates with their scores; trace totals are `report.rs`'s).

use super::Store;
use crate::error::Result;
use crate::util::now;
use rusqlite::{params, OptionalExtension};

/// What has been exported of one object to one tracking server.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportMapping {
    pub experiment_id: String,
    pub mlflow_run_id: String,
    pub params_logged: bool,
    pub steps_logged: i64,
    pub finished: bool,
}

/// One full validation evaluation of a run, in the order it happened: the
/// series MLflow shows as a metric history (one step per trial).
#[derive(Debug, Clone)]
pub struct TrialScore {
    pub candidate_id: Option<i64>,
    pub mean: f64,
    /// Milliseconds since the epoch (MLflow's metric timestamp).
    pub at_ms: i64,
}

/// A candidate with its best full validation score and its minibatch scores.
#[derive(Debug, Clone)]
pub struct CandidateSummary {
    pub id: i64,
    pub origin: String,
    pub trial: Option<i64>,
    pub parent_ids: String,
    pub val_score: Option<f64>,
    pub minibatch_scores: Vec<f64>,
    pub created_at: String,
}

/// Milliseconds since the epoch of a stored RFC 3339 time (0 if unreadable).
pub fn epoch_ms(at: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

impl Store {
    /// The export mapping of `object` `local_id` on `tracking_uri`.
    pub fn mlflow_mapping(
        &self,
        tracking_uri: &str,
        object: &str,
        local_id: i64,
    ) -> Result<Option<ExportMapping>> {
        Ok(self
            .conn
            .query_row(
                "SELECT experiment_id, mlflow_run_id, params_logged, steps_logged, finished FROM mlflow_exports \
                 WHERE tracking_uri = ?1 AND object = ?2 AND local_id = ?3",
                params![tracking_uri, object, local_id],
                |r| {
                    Ok(ExportMapping {
                        experiment_id: r.get(0)?,
                        mlflow_run_id: r.get(1)?,
                        params_logged: r.get(2)?,
                        steps_logged: r.get(3)?,
                        finished: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records (or updates) what has been exported of an object.
    pub fn save_mlflow_mapping(
        &self,
        tracking_uri: &str,
        object: &str,
        local_id: i64,
        m: &ExportMapping,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO mlflow_exports (tracking_uri, experiment_id, object, local_id, mlflow_run_id, params_logged, \
             steps_logged, finished, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (tracking_uri, object, local_id) DO UPDATE SET experiment_id = excluded.experiment_id, \
             mlflow_run_id = excluded.mlflow_run_id, params_logged = excluded.params_logged, \
             steps_logged = excluded.steps_logged, finished = excluded.finished, updated_at = excluded.updated_at",
            params![
                tracking_uri,
                m.experiment_id,
                object,
                local_id,
                m.mlflow_run_id,
                m.params_logged,
                m.steps_logged,
                m.finished,
                now()
            ],
        )?;
        Ok(())
    }

    /// The full validation evaluations of a run's candidates, oldest first.
    pub fn trial_scores(&self, run_id: i64) -> Result<Vec<TrialScore>> {
        let mut stmt = self.conn.prepare(
            "SELECT candidate_id, mean_score, COALESCE(finished_at, created_at) FROM evaluations \
             WHERE run_id = ?1 AND kind = 'full' AND split = 'val' AND status = 'done' AND mean_score IS NOT NULL \
             ORDER BY id",
        )?;
        let rows = stmt
            .query_map([run_id], |r| {
                let at: String = r.get(2)?;
                Ok(TrialScore {
                    candidate_id: r.get(0)?,
                    mean: r.get(1)?,
                    at_ms: epoch_ms(&at),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// A run's candidates with their scores, oldest first.
    pub fn candidate_summaries(&self, run_id: i64) -> Result<Vec<CandidateSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT c.id, c.origin, c.trial, c.parent_ids, c.created_at, \
             (SELECT MAX(e.mean_score) FROM evaluations e WHERE e.candidate_id = c.id AND e.kind = 'full' \
              AND e.split = 'val' AND e.status = 'done'), \
             (SELECT json_group_array(e.mean_score) FROM evaluations e WHERE e.candidate_id = c.id \
              AND e.kind = 'minibatch' AND e.status = 'done' AND e.mean_score IS NOT NULL) \
             FROM candidates c WHERE c.run_id = ?1 ORDER BY c.id",
        )?;
        let rows = stmt
            .query_map([run_id], |r| {
                let minibatch: String = r.get(6)?;
                Ok(CandidateSummary {
                    id: r.get(0)?,
                    origin: r.get(1)?,
                    trial: r.get(2)?,
                    parent_ids: r.get(3)?,
                    created_at: r.get(4)?,
                    val_score: r.get(5)?,
                    minibatch_scores: serde_json::from_str(&minibatch).unwrap_or_default(),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Ids of runs to export: optimize and eval runs, optionally started at or
    /// after `since` (RFC 3339 text compares in time order), oldest first.
    pub fn exportable_runs(&self, since: Option<&str>) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare(
            "SELECT id FROM runs WHERE kind IN ('optimize', 'eval') AND (?1 IS NULL OR started_at >= ?1) ORDER BY id",
        )?;
        let rows = stmt
            .query_map([since], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }
}
