//! Typed queries on `jobs`: the HTTP server's persisted background jobs
//! (schema V3). A job row outlives the process that ran it, so a restarted
//! server shows finished jobs as they ended and jobs that were running as
//! `interrupted`.

use super::{RunKind, Status, Store};
use crate::error::{Error, Result};
use crate::util::now;
use rusqlite::{params, OptionalExtension};

/// A job as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobRow {
    pub id: i64,
    pub kind: RunKind,
    pub run_id: Option<i64>,
    pub request_json: String,
    pub status: Status,
    pub progress: f64,
    pub message: Option<String>,
    pub result_json: Option<String>,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

const JOB_COLS: &str = "id, kind, run_id, request_json, status, progress, message, result_json, error, created_at, updated_at";

fn job_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        run_id: r.get(2)?,
        request_json: r.get(3)?,
        status: r.get(4)?,
        progress: r.get(5)?,
        message: r.get(6)?,
        result_json: r.get(7)?,
        error: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

/// How a job ended: the columns written when it leaves `running`.
#[derive(Debug, Clone, Default)]
pub struct JobEnd {
    pub progress: f64,
    pub message: Option<String>,
    pub result_json: Option<String>,
    pub error: Option<String>,
}

impl Store {
    /// Queues a job (status `pending`).
    pub fn create_job(&self, kind: RunKind, request_json: &str) -> Result<i64> {
        let at = now();
        self.conn().execute(
            "INSERT INTO jobs (kind, request_json, status, created_at, updated_at) VALUES (?1, ?2, 'pending', ?3, ?3)",
            params![kind, request_json, at],
        )?;
        Ok(self.conn().last_insert_rowid())
    }

    /// One job.
    pub fn job(&self, id: i64) -> Result<JobRow> {
        self.conn()
            .prepare_cached(&format!("SELECT {JOB_COLS} FROM jobs WHERE id = ?1"))?
            .query_row([id], job_from_row)
            .optional()?
            .ok_or_else(|| Error::NotFound {
                kind: "job",
                name: id.to_string(),
            })
    }

    /// The newest `limit` jobs, newest first.
    pub fn list_jobs(&self, limit: i64) -> Result<Vec<JobRow>> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {JOB_COLS} FROM jobs ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt
            .query_map([limit], job_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Ids of the jobs with `status`, oldest first.
    pub fn job_ids_with_status(&self, status: Status) -> Result<Vec<i64>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT id FROM jobs WHERE status = ?1 ORDER BY id")?;
        let rows = stmt
            .query_map([status], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Jobs per status (every status, zero included).
    pub fn job_counts(&self) -> Result<Vec<(Status, i64)>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT status, COUNT(*) FROM jobs GROUP BY status")?;
        let found: Vec<(Status, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Status::ALL
            .iter()
            .map(|s| {
                let n = found.iter().find(|(f, _)| f == s).map_or(0, |(_, n)| *n);
                (*s, n)
            })
            .collect())
    }

    /// Sets a job's status (and clears an earlier error when it runs again).
    pub fn set_job_status(&self, id: i64, status: Status, message: Option<&str>) -> Result<()> {
        let n = self.conn().execute(
            "UPDATE jobs SET status = ?2, message = COALESCE(?3, message), \
             error = CASE WHEN ?2 IN ('pending', 'running') THEN NULL ELSE error END, updated_at = ?4 WHERE id = ?1",
            params![id, status, message, now()],
        )?;
        if n == 0 {
            return Err(Error::NotFound {
                kind: "job",
                name: id.to_string(),
            });
        }
        Ok(())
    }

    /// Links a job to the run it started.
    pub fn set_job_run(&self, id: i64, run_id: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE jobs SET run_id = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, run_id, now()],
        )?;
        Ok(())
    }

    /// Ends a job with `status` and what it produced.
    pub fn end_job(&self, id: i64, status: Status, end: &JobEnd) -> Result<()> {
        self.conn().execute(
            "UPDATE jobs SET status = ?2, progress = ?3, message = ?4, result_json = ?5, error = ?6, updated_at = ?7 \
             WHERE id = ?1",
            params![
                id,
                status,
                end.progress,
                end.message,
                end.result_json,
                end.error,
                now()
            ],
        )?;
        Ok(())
    }

    /// After a restart: every job still `running` belonged to a process that
    /// is gone, so it and its run become `interrupted` (resumable). Returns
    /// the job ids.
    pub fn interrupt_orphaned_jobs(&mut self) -> Result<Vec<i64>> {
        let ids = self.job_ids_with_status(Status::Running)?;
        let at = now();
        let tx = self.write_transaction()?;
        for id in &ids {
            tx.execute(
                "UPDATE runs SET status = 'interrupted', error = 'the server stopped while the run was going' \
                 WHERE id = (SELECT run_id FROM jobs WHERE id = ?1) AND status IN ('running', 'pending')",
                [id],
            )?;
            tx.execute(
                "UPDATE jobs SET status = 'interrupted', message = 'the server stopped while the job was running', \
                 updated_at = ?2 WHERE id = ?1",
                params![id, at],
            )?;
        }
        tx.commit()?;
        Ok(ids)
    }

    /// LM calls and cache hits over every stored trace.
    pub fn trace_totals(&self) -> Result<(i64, i64)> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*), COALESCE(SUM(cache_hit), 0) FROM traces",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }
}
