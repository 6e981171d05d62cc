//! The background job manager: optimization jobs queued in the `jobs` table
//! and run on their own threads, at most `--max-jobs` at a time (the rest
//! wait `pending`), each with its own async runtime because the local
//! model's work is CPU-bound and must not stall the HTTP handlers.
//!
//! The database is the record: a job's row is written when it is queued,
//! starts, links its run, and ends. In memory the manager keeps only what a
//! live job needs: its queue position, its cancel flag (the run's
//! `interrupted` flag, so it stops after its current step) and a broadcast
//! channel of its progress events for server-sent-event subscribers. A
//! restarted server marks jobs that were running `interrupted`; resuming one
//! continues its stored run (`run_optimization(.., Some(run_id), ..)`).

use crate::error::{Error, Result};
use crate::jobs::{run_optimization, Context, OptimizeReport, OptimizeRequest, RunHooks};
use crate::progress::Event;
use crate::store::{JobEnd, JobRow, RunKind, Status, Store};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// Events kept for a slow subscriber before it starts missing some.
const EVENT_BUFFER: usize = 1024;

/// What an optimization job produced, as the status endpoint reports it.
/// Scores are on the test split when the trainset has one, else validation.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobResult {
    pub run_id: i64,
    pub baseline_score: f64,
    pub quality_score: f64,
    pub improvement: f64,
    /// The split the two scores are on: `test` or `val`.
    pub split: String,
    /// The program version registered (absent when the run stopped early).
    pub version_id: Option<i64>,
    pub version: Option<i64>,
    pub promoted: Option<String>,
    pub candidates: usize,
    pub lm_calls: i64,
    pub cache_hits: i64,
}

impl JobResult {
    fn from_report(r: &OptimizeReport) -> Self {
        let (baseline, quality, split) = match (r.baseline_test, r.optimized_test) {
            (Some(b), Some(o)) => (b, o, "test"),
            _ => (r.baseline_val, r.best_val, "val"),
        };
        JobResult {
            run_id: r.run_id,
            baseline_score: baseline,
            quality_score: quality,
            improvement: quality - baseline,
            split: split.into(),
            version_id: r.version_id,
            version: r.version,
            promoted: r.promoted.clone(),
            candidates: r.candidates,
            lm_calls: r.lm_calls,
            cache_hits: r.cache_hits,
        }
    }
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobStatus {
    pub job_id: i64,
    #[schema(value_type = String, example = "running")]
    pub status: Status,
    /// Share of the run's planned work done, 0..1.
    pub progress: f64,
    pub message: Option<String>,
    pub run_id: Option<i64>,
    pub result: Option<JobResult>,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A job the manager holds: queued or running.
struct Live {
    events: broadcast::Sender<String>,
    interrupted: Arc<AtomicBool>,
    running: bool,
    cancel_requested: bool,
    message: Option<String>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<i64>,
    live: HashMap<i64, Live>,
    running: usize,
}

/// Runs optimization jobs in the background; one per server.
pub struct JobManager {
    ctx: Context,
    max_jobs: usize,
    state: Mutex<State>,
    /// Set on shutdown: nothing more starts.
    stopping: AtomicBool,
}

impl JobManager {
    /// Takes over the database's jobs: those left `running` by a process
    /// that is gone become `interrupted`, and `pending` ones are queued again.
    pub fn start(ctx: Context, max_jobs: usize) -> Result<Arc<Self>> {
        let pending = ctx.writer.call(|s| {
            s.interrupt_orphaned_jobs()?;
            s.job_ids_with_status(Status::Pending)
        })?;
        ctx.writer.flush()?;
        let manager = Arc::new(JobManager {
            ctx,
            max_jobs: max_jobs.max(1),
            state: Mutex::new(State::default()),
            stopping: AtomicBool::new(false),
        });
        {
            let mut st = manager.lock();
            for id in pending {
                st.enqueue(id);
            }
        }
        manager.schedule();
        Ok(manager)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every update
        // is a single field write), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an optimization; returns the job id.
    pub fn submit(self: &Arc<Self>, req: &OptimizeRequest) -> Result<i64> {
        let json = serde_json::to_string(req)?;
        let id = self
            .ctx
            .writer
            .call(move |s| s.create_job(RunKind::Optimize, &json))?;
        self.ctx.writer.flush()?;
        self.lock().enqueue(id);
        self.schedule();
        Ok(id)
    }

    /// Cancels a job: a pending one is dropped from the queue and never
    /// starts; a running one has its run's interrupted flag set, stops after
    /// its current step (the run stored `interrupted`) and ends `cancelled`.
    pub fn cancel(self: &Arc<Self>, id: i64) -> Result<()> {
        let mut st = self.lock();
        match st.live.get_mut(&id) {
            Some(live) if live.running => {
                live.cancel_requested = true;
                live.message = Some("cancel requested: stopping after the current step".into());
                live.interrupted.store(true, Ordering::SeqCst);
                Ok(())
            }
            Some(_) => {
                st.queue.retain(|q| *q != id);
                self.ctx.writer.call(move |s| {
                    s.set_job_status(id, Status::Cancelled, Some("cancelled before it started"))
                })?;
                self.ctx.writer.flush()?;
                if let Some(live) = st.live.remove(&id) {
                    let _ = live
                        .events
                        .send(final_event(id, Status::Cancelled, None, None));
                }
                Ok(())
            }
            None => {
                drop(st);
                let row = self.ctx.reader()?.job(id)?;
                Err(Error::Conflict(format!(
                    "job {id} is {}; only pending or running jobs can be cancelled",
                    row.status
                )))
            }
        }
    }

    /// Queues an interrupted job again; it continues its stored run.
    pub fn resume(self: &Arc<Self>, id: i64) -> Result<()> {
        let mut st = self.lock();
        let row = self.ctx.reader()?.job(id)?;
        if row.status != Status::Interrupted || st.live.contains_key(&id) {
            return Err(Error::Conflict(format!(
                "job {id} is {}; only interrupted jobs resume",
                row.status
            )));
        }
        self.ctx
            .writer
            .call(move |s| s.set_job_status(id, Status::Pending, Some("queued to resume")))?;
        self.ctx.writer.flush()?;
        st.enqueue(id);
        drop(st);
        self.schedule();
        Ok(())
    }

    /// A receiver of a live job's events (`None`: the job is not live, so
    /// its stored row is final).
    pub fn subscribe(&self, id: i64) -> Option<broadcast::Receiver<String>> {
        self.lock().live.get(&id).map(|l| l.events.subscribe())
    }

    /// A job as the API shows it: the stored row, with a running job's
    /// progress taken from its run (the work actually done) and its latest
    /// progress message.
    pub fn status(&self, reader: &Store, row: JobRow) -> Result<JobStatus> {
        let live_message = self
            .lock()
            .live
            .get(&row.id)
            .and_then(|l| l.message.clone());
        let progress = match (row.status, row.run_id) {
            (Status::Running, Some(run)) => reader.run(run)?.progress,
            _ => row.progress,
        };
        let result = row
            .result_json
            .as_deref()
            .map(serde_json::from_str::<JobResult>)
            .transpose()?;
        Ok(JobStatus {
            job_id: row.id,
            status: row.status,
            progress,
            message: live_message.or(row.message),
            run_id: row.run_id,
            result,
            error: row.error,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    /// Jobs per state: (queued in memory, running in memory).
    pub fn load(&self) -> (usize, usize) {
        let st = self.lock();
        (st.queue.len(), st.running)
    }

    /// On shutdown: stops every running job after its current step (stored
    /// `interrupted`, so resumable) and starts no more; waits up to
    /// `patience` for them to store how they ended.
    pub fn shutdown(&self, patience: std::time::Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        {
            let mut st = self.lock();
            st.queue.clear();
            for live in st.live.values().filter(|l| l.running) {
                live.interrupted.store(true, Ordering::SeqCst);
            }
        }
        let deadline = std::time::Instant::now() + patience;
        while self.lock().running > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Starts queued jobs while there are free slots.
    fn schedule(self: &Arc<Self>) {
        let mut st = self.lock();
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        while st.running < self.max_jobs {
            let Some(id) = st.queue.pop_front() else {
                break;
            };
            let Some(live) = st.live.get_mut(&id) else {
                continue;
            };
            live.running = true;
            let interrupted = live.interrupted.clone();
            st.running += 1;
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("job-{id}"))
                .spawn(move || me.run_job(id, interrupted));
            if let Err(e) = spawned {
                st.running -= 1;
                eprintln!("error: job {id} could not get a thread: {e}");
            }
        }
    }

    /// The body of a job's thread: runs it, records how it ended, frees its
    /// slot and starts the next.
    fn run_job(self: Arc<Self>, id: i64, interrupted: Arc<AtomicBool>) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.execute(id, interrupted)
        }))
        .unwrap_or_else(|_| Err(Error::Invalid(format!("job {id} panicked"))));
        let cancelled = self
            .lock()
            .live
            .get(&id)
            .is_some_and(|l| l.cancel_requested);
        let (status, end) = match outcome {
            Ok(report) => {
                let status = match report.status {
                    Status::Interrupted if cancelled => Status::Cancelled,
                    s => s,
                };
                let progress = if status == Status::Completed {
                    1.0
                } else {
                    self.run_progress(report.run_id)
                };
                let message = match status {
                    Status::Completed => "completed".to_string(),
                    Status::Cancelled => "cancelled: the run stopped after its current step".into(),
                    _ => format!(
                        "stopped: {}",
                        report.stopped.clone().unwrap_or_else(|| status.to_string())
                    ),
                };
                let result = serde_json::to_string(&JobResult::from_report(&report)).ok();
                (
                    status,
                    JobEnd {
                        progress,
                        message: Some(message),
                        result_json: result,
                        error: None,
                    },
                )
            }
            Err(e) => (
                Status::Failed,
                JobEnd {
                    progress: 0.0,
                    message: Some("failed".into()),
                    result_json: None,
                    error: Some(e.to_string()),
                },
            ),
        };
        let stored = end.clone();
        if let Err(e) = self
            .ctx
            .writer
            .call(move |s| s.end_job(id, status, &stored))
            .and_then(|_| self.ctx.writer.flush())
        {
            eprintln!("error: job {id} could not be stored as {status}: {e}");
        }
        {
            let mut st = self.lock();
            st.running = st.running.saturating_sub(1);
            if let Some(live) = st.live.remove(&id) {
                let result = end
                    .result_json
                    .as_deref()
                    .and_then(|r| serde_json::from_str(r).ok());
                let _ = live
                    .events
                    .send(final_event(id, status, result, end.error.clone()));
            }
        }
        self.schedule();
    }

    /// The stored progress of a run (0 when it cannot be read).
    fn run_progress(&self, run_id: i64) -> f64 {
        self.ctx
            .reader()
            .and_then(|r| r.run(run_id))
            .map_or(0.0, |r| r.progress)
    }

    /// Runs the job's optimization on a runtime of its own.
    fn execute(self: &Arc<Self>, id: i64, interrupted: Arc<AtomicBool>) -> Result<OptimizeReport> {
        let row = self.ctx.reader()?.job(id)?;
        let req: OptimizeRequest = serde_json::from_str(&row.request_json)?;
        // A job that had started a run continues it.
        let resume = row.run_id;
        self.ctx
            .writer
            .call(move |s| s.set_job_status(id, Status::Running, Some("starting")))?;
        self.ctx.writer.flush()?;
        let me = Arc::downgrade(self);
        let on_event = Arc::new(move |e: &Event| {
            let Some(me) = me.upgrade() else { return };
            if let Event::RunStarted { run_id } = e {
                let run_id = *run_id;
                // Linked at once, so a server killed from here on can resume it.
                let linked = me
                    .ctx
                    .writer
                    .call(move |s| s.set_job_run(id, run_id))
                    .and_then(|_| me.ctx.writer.flush());
                if let Err(err) = linked {
                    eprintln!("warning: job {id}: linking run {run_id} failed: {err}");
                }
            }
            let mut st = me.lock();
            if let Some(live) = st.live.get_mut(&id) {
                if let Event::Progress { message, .. } = e {
                    if !live.cancel_requested {
                        live.message = Some(message.clone());
                    }
                }
                if let Ok(json) = serde_json::to_string(e) {
                    let _ = live.events.send(json);
                }
            }
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("job-{id}-rt"))
            .enable_all()
            .build()
            .map_err(|e| Error::Invalid(format!("job {id}: no runtime: {e}")))?;
        let hooks = RunHooks {
            on_event: Some(on_event),
            interrupted: Some(interrupted),
        };
        runtime.block_on(run_optimization(&self.ctx, req, resume, hooks))
    }
}

impl State {
    fn enqueue(&mut self, id: i64) {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        self.live.insert(
            id,
            Live {
                events,
                interrupted: Arc::new(AtomicBool::new(false)),
                running: false,
                cancel_requested: false,
                message: Some("pending: waiting for a free job slot".into()),
            },
        );
        self.queue.push_back(id);
    }
}

/// The last event of a job's stream.
pub fn final_event(
    id: i64,
    status: Status,
    result: Option<JobResult>,
    error: Option<String>,
) -> String {
    serde_json::json!({
        "event": "job_finished",
        "job_id": id,
        "status": status,
        "result": result,
        "error": error,
    })
    .to_string()
}
