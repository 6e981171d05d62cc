//! Progress events a job reports while it works: what the CLI's progress bar
//! shows, and what the HTTP server's event stream (`/status/{job_id}/events`)
//! sends.

use crate::store::{EvalKind, Split};
use std::sync::Arc;

/// One step of a job.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run row exists (jobs link to it).
    RunStarted { run_id: i64 },
    /// Share of the planned work done (0..1) and what is happening.
    Progress {
        run_id: i64,
        fraction: f64,
        /// Examples scored and planned so far.
        done: u64,
        planned: u64,
        message: String,
    },
    /// An evaluation finished.
    Scored {
        run_id: i64,
        candidate_id: Option<i64>,
        split: Split,
        kind: EvalKind,
        n: usize,
        mean: f64,
    },
    /// A candidate became the best on the full validation set.
    NewBest {
        run_id: i64,
        candidate_id: i64,
        score: f64,
    },
}

/// Receives a job's events; called on the job's threads, so it must be quick.
pub type EventFn = Arc<dyn Fn(&Event) + Send + Sync>;
