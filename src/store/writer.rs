//! The one write path of a process: [`Writer`], a dedicated thread that owns
//! the writing connection and commits queued writes in groups.
//!
//! Every job (eval, optimize, predict, the coming server) sends its writes
//! here: scores, traces, progress, cache entries as fire-and-forget
//! [`Write`]s, and anything that needs an answer (a new run's id, a
//! candidate's id, a read of the job's own earlier writes) as a closure run
//! on the writer's connection with [`Writer::call`]. Because all of them go
//! through one queue in order, a closure sees every write sent before it.
//!
//! Group commit: the thread opens a transaction with the first write it
//! takes and commits it once the queue has been idle for [`IDLE`], or
//! [`MAX_DELAY`] after it began, or on a flush — so under load thousands of
//! rows and round trips share one commit. Durability bound: a write is
//! committed at most [`MAX_DELAY`] (10 ms) after the group it joined began,
//! plus the commit's own time; a SIGKILL loses at most the writes of that
//! last window. Writes are applied in chunks as they queue up; a chunk that
//! fails is applied again write by write, so one bad row (e.g. a score of a
//! deleted evaluation) loses only itself; such failures are recorded and
//! reported by [`Writer::flush`]. A call runs in a savepoint of the group, so
//! a call that fails leaves nothing behind.

use super::bulk::insert_chunked;
use super::{Readers, ScoreRow, Store, TraceRow};
use crate::error::{Error, Result};
use crate::util::now;
use rusqlite::{params, Connection, ToSql};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest a group stays open: the durability bound of a write.
pub const MAX_DELAY: Duration = Duration::from_millis(10);

/// A group is committed once no message has come for this long.
pub const IDLE: Duration = Duration::from_millis(1);

/// Queued writes applied to the open group at once (as multi-row inserts).
pub const MAX_GROUP: usize = 1024;

/// A write that needs no answer.
#[derive(Debug, Clone)]
pub enum Write {
    /// One example's score in an evaluation (replaces an earlier one).
    Score { evaluation_id: i64, row: ScoreRow },
    /// One LM call.
    Trace(Box<TraceRow>),
    /// A run's progress and call counts.
    RunProgress {
        run_id: i64,
        progress: f64,
        lm_calls: i64,
        cache_hits: i64,
    },
    /// Closes an evaluation with its mean.
    FinishEvaluation { evaluation_id: i64, mean: f64 },
    /// Stores an LM response (first writer wins).
    CachePut {
        key: String,
        provider: String,
        model: String,
        response_json: String,
    },
    /// Counts a cache hit.
    CacheHit { key: String },
}

/// A call; returns whether it succeeded (a failed one is rolled back).
type Call = Box<dyn FnOnce(&mut Store) -> bool + Send>;

enum Msg {
    Write(Write),
    Call(Call),
    Flush(Sender<Option<String>>),
}

/// Handle to the writer thread; cheap to clone, shared by every job.
#[derive(Clone)]
pub struct Writer {
    inner: Arc<Inner>,
}

struct Inner {
    tx: Mutex<Option<Sender<Msg>>>,
    handle: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
    /// Read-only connections to the same file, shared by everything that
    /// holds this writer (jobs, the LM cache, request handlers).
    readers: Arc<Readers>,
}

impl Drop for Inner {
    /// The last handle gone: close the queue and wait until everything queued
    /// is committed.
    fn drop(&mut self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Some(h) = self.handle.lock().ok().and_then(|mut h| h.take()) {
            let _ = h.join();
        }
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Writer {
    /// Opens (creating and migrating) the database at `path` and starts the
    /// writer thread on that connection.
    pub fn start(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let store = Store::open(&path)?;
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(store, rx))
            .map_err(|e| Error::io(&path, e))?;
        Ok(Writer {
            inner: Arc::new(Inner {
                tx: Mutex::new(Some(tx)),
                handle: Mutex::new(Some(handle)),
                readers: Readers::new(&path),
                path,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The pool of read-only connections to this writer's database.
    pub fn readers(&self) -> &Arc<Readers> {
        &self.inner.readers
    }

    fn send(&self, msg: Msg) -> Result<()> {
        let tx = self
            .inner
            .tx
            .lock()
            .map_err(|_| Error::Invalid("store writer lock poisoned".into()))?;
        tx.as_ref()
            .and_then(|tx| tx.send(msg).ok())
            .ok_or_else(|| Error::Invalid("the store writer has stopped".into()))
    }

    /// Queues a write; never waits for SQLite.
    pub fn write(&self, w: Write) {
        let _ = self.send(Msg::Write(w));
    }

    /// Runs `f` on the writer's connection, in the open group after every
    /// write queued before it, and returns its result. `f` is atomic (a
    /// savepoint): an error rolls back what it wrote. Store methods that
    /// write several rows nest their transaction in the group's.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = mpsc::channel();
        self.send(Msg::Call(Box::new(move |store: &mut Store| {
            let result = f(store);
            let ok = result.is_ok();
            let _ = tx.send(result);
            ok
        })))?;
        rx.recv()
            .map_err(|_| Error::Invalid("the store writer stopped during a call".into()))?
    }

    /// Waits until every write queued so far is committed; an error names the
    /// writes that could not be stored since the last flush.
    pub fn flush(&self) -> Result<()> {
        let (tx, rx) = mpsc::channel();
        self.send(Msg::Flush(tx))?;
        match rx.recv() {
            Ok(None) => Ok(()),
            Ok(Some(e)) => Err(Error::Invalid(e)),
            Err(_) => Err(Error::Invalid(
                "the store writer stopped during a flush".into(),
            )),
        }
    }
}

/// The open group: its transaction, the writes not yet applied to it, and
/// the failures to report at the next flush.
struct Group {
    started: Option<Instant>,
    pending: Vec<Write>,
    failures: Vec<String>,
}

impl Group {
    fn fail(&mut self, what: String) {
        eprintln!("warning: {what}");
        if self.failures.len() < 20 {
            self.failures.push(what);
        }
    }

    /// Opens the group's transaction unless it is open.
    fn begin(&mut self, store: &mut Store) {
        if self.started.is_some() {
            return;
        }
        match run_cached(&store.conn, "BEGIN IMMEDIATE") {
            Ok(()) => self.started = Some(Instant::now()),
            // Writes then go in autocommit mode, each its own transaction.
            Err(e) => self.fail(format!("a group commit could not begin: {e}")),
        }
    }

    /// Applies the pending writes inside the group: all at once, or, if that
    /// fails, one by one so only the failing ones are lost.
    fn apply(&mut self, store: &mut Store) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        if in_savepoint(&store.conn, |c| apply_writes_on(c, &pending)).is_err() {
            for w in &pending {
                if let Err(e) =
                    in_savepoint(&store.conn, |c| apply_writes_on(c, std::slice::from_ref(w)))
                {
                    self.fail(format!("a write was not stored: {e}"));
                }
            }
        }
    }

    /// Applies what is pending and commits the group.
    fn commit(&mut self, store: &mut Store) {
        self.apply(store);
        if self.started.take().is_some() {
            if let Err(e) = run_cached(&store.conn, "COMMIT") {
                self.fail(format!("a group commit failed: {e}"));
                let _ = store.conn.execute_batch("ROLLBACK");
            }
        }
    }

    /// Runs a call in a savepoint of the group.
    fn call(&mut self, store: &mut Store, f: Call) {
        self.begin(store);
        self.apply(store);
        let nested = run_cached(&store.conn, "SAVEPOINT call").is_ok();
        let ok = f(store);
        if nested {
            let end = if ok {
                run_cached(&store.conn, "RELEASE call")
            } else {
                run_cached(&store.conn, "ROLLBACK TO call")
                    .and_then(|_| run_cached(&store.conn, "RELEASE call"))
            };
            if let Err(e) = end {
                self.fail(format!("a call's savepoint could not end: {e}"));
            }
        }
    }

    fn report(&mut self) -> Option<String> {
        let report = (!self.failures.is_empty()).then(|| {
            format!(
                "{} write(s) could not be stored: {}",
                self.failures.len(),
                self.failures.join("; ")
            )
        });
        self.failures.clear();
        report
    }
}

/// The writer thread: group commits until every handle is gone.
fn run(mut store: Store, rx: Receiver<Msg>) {
    let mut group = Group {
        started: None,
        pending: Vec::new(),
        failures: Vec::new(),
    };
    loop {
        let msg = match group.started {
            None if group.pending.is_empty() => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            },
            started => {
                let left = started
                    .map(|t| MAX_DELAY.saturating_sub(t.elapsed()))
                    .unwrap_or(Duration::ZERO);
                match rx.recv_timeout(left.min(IDLE)) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        match msg {
            None => group.commit(&mut store),
            Some(Msg::Write(w)) => {
                group.begin(&mut store);
                group.pending.push(w);
                if group.pending.len() >= MAX_GROUP {
                    group.apply(&mut store);
                }
            }
            Some(Msg::Call(f)) => group.call(&mut store, f),
            Some(Msg::Flush(reply)) => {
                group.commit(&mut store);
                let _ = reply.send(group.report());
            }
        }
        if group.started.is_some_and(|t| t.elapsed() >= MAX_DELAY) {
            group.commit(&mut store);
        }
    }
    group.commit(&mut store);
}

/// Runs one statement through the connection's statement cache (the group's
/// savepoints run thousands of times a second).
fn run_cached(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Runs `f` in a savepoint: kept when it succeeds, rolled back when not.
fn in_savepoint(conn: &Connection, f: impl FnOnce(&Connection) -> Result<()>) -> Result<()> {
    run_cached(conn, "SAVEPOINT writes")?;
    match f(conn) {
        Ok(()) => run_cached(conn, "RELEASE writes"),
        Err(e) => {
            let _ = run_cached(conn, "ROLLBACK TO writes")
                .and_then(|_| run_cached(conn, "RELEASE writes"));
            Err(e)
        }
    }
}

impl Store {
    /// Applies `writes` in one transaction of their own (or a savepoint of
    /// an open one): all or nothing.
    pub fn apply_writes(&mut self, writes: &[Write]) -> Result<()> {
        let tx = self.write_transaction()?;
        apply_writes_on(&tx, writes)?;
        tx.commit()
    }
}

/// Applies `writes` on `conn` inside the caller's transaction: scores and
/// traces as multi-row inserts (scores' references checked once per distinct
/// parent, for a clear error), the rest one statement each.
fn apply_writes_on(conn: &Connection, writes: &[Write]) -> Result<()> {
    let scores: Vec<(i64, &ScoreRow)> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Score { evaluation_id, row } => Some((*evaluation_id, row)),
            _ => None,
        })
        .collect();
    let traces: Vec<&TraceRow> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Trace(t) => Some(t.as_ref()),
            _ => None,
        })
        .collect();
    apply_in_transaction(conn, writes, &scores, &traces)
}

fn apply_in_transaction(
    tx: &Connection,
    writes: &[Write],
    scores: &[(i64, &ScoreRow)],
    traces: &[&TraceRow],
) -> Result<()> {
    if !scores.is_empty() {
        let evaluations: BTreeSet<i64> = scores.iter().map(|(e, _)| *e).collect();
        let examples: BTreeSet<i64> = scores.iter().map(|(_, r)| r.example_id).collect();
        for (table, ids) in [("evaluations", &evaluations), ("examples", &examples)] {
            let mut stmt = tx.prepare_cached(&format!("SELECT 1 FROM {table} WHERE id = ?1"))?;
            for id in ids {
                if !stmt.exists([id])? {
                    return Err(Error::Invalid(format!(
                        "a score references {table} row {id}, which does not exist"
                    )));
                }
            }
        }
        const HEAD: &str = "INSERT OR REPLACE INTO scores \
            (evaluation_id, example_id, score, feedback, prediction_json, error) VALUES ";
        insert_chunked(tx, HEAD, 6, scores, |(e, r), v| {
            v.extend([
                e as &dyn ToSql,
                &r.example_id,
                &r.score,
                &r.feedback,
                &r.prediction_json,
                &r.error,
            ])
        })?;
    }
    if !traces.is_empty() {
        let at = now();
        super::lm::insert_trace_rows(tx, traces, &at)?;
    }
    // Progress is a gauge: of a run's updates in these writes only the last
    // is stored (an optimization sends one per score).
    let last_progress: std::collections::HashMap<i64, usize> = writes
        .iter()
        .enumerate()
        .filter_map(|(i, w)| match w {
            Write::RunProgress { run_id, .. } => Some((*run_id, i)),
            _ => None,
        })
        .collect();
    for (i, w) in writes.iter().enumerate() {
        match w {
            Write::Score { .. } | Write::Trace(_) => {}
            Write::RunProgress { run_id, .. } if last_progress.get(run_id) != Some(&i) => {}
            Write::RunProgress {
                run_id,
                progress,
                lm_calls,
                cache_hits,
            } => {
                tx.prepare_cached(
                    "UPDATE runs SET progress = ?2, lm_calls = ?3, cache_hits = ?4 WHERE id = ?1",
                )?
                .execute(params![
                    run_id,
                    progress.clamp(0.0, 1.0),
                    lm_calls,
                    cache_hits
                ])?;
            }
            Write::FinishEvaluation {
                evaluation_id,
                mean,
            } => {
                tx.prepare_cached(
                    "UPDATE evaluations SET mean_score = ?2, status = 'done', finished_at = ?3 WHERE id = ?1",
                )?
                .execute(params![evaluation_id, mean, now()])?;
            }
            Write::CachePut {
                key,
                provider,
                model,
                response_json,
            } => {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO lm_cache (key, provider, model, response_json, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![key, provider, model, response_json, now()])?;
            }
            Write::CacheHit { key } => {
                tx.prepare_cached("UPDATE lm_cache SET hits = hits + 1 WHERE key = ?1")?
                    .execute([key])?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EvalKind, NewRun, RunKind, Split};

    fn score(example_id: i64, score: f64) -> ScoreRow {
        ScoreRow {
            example_id,
            score,
            feedback: Some(format!("f{example_id}")),
            prediction_json: None,
            error: None,
        }
    }

    /// A database with one trainset of `n` examples, a run and an evaluation.
    fn setup(path: &Path, n: i64) -> (i64, i64) {
        let s = Store::open(path).unwrap();
        s.conn()
            .execute(
                "INSERT INTO trainsets (id, name, content_hash, source, format, n_examples, created_at) \
                 VALUES (1, 't', 'h', 's', 'json', ?1, 'now')",
                [n],
            )
            .unwrap();
        for i in 1..=n {
            s.conn()
                .execute(
                    "INSERT INTO examples (id, trainset_id, idx, fields_json, hash) VALUES (?1, 1, ?1, '{}', ?1)",
                    [i],
                )
                .unwrap();
        }
        let run = s
            .create_run(&NewRun::new(RunKind::Eval, "{}".into()))
            .unwrap();
        let ev = s
            .create_evaluation(run, None, None, Split::Val, EvalKind::Full, "m", n as usize)
            .unwrap();
        (run, ev)
    }

    #[test]
    fn queued_writes_are_committed_by_flush_and_seen_by_a_later_call() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let (run, ev) = setup(&db, 100);
        let w = Writer::start(&db).unwrap();
        for i in 1..=100 {
            w.write(Write::Score {
                evaluation_id: ev,
                row: score(i, i as f64 / 100.0),
            });
        }
        w.write(Write::RunProgress {
            run_id: run,
            progress: 0.5,
            lm_calls: 7,
            cache_hits: 2,
        });
        // A call runs after the writes queued before it.
        let n = w.call(move |s| Ok(s.scores(ev)?.len())).unwrap();
        assert_eq!(n, 100);
        w.write(Write::FinishEvaluation {
            evaluation_id: ev,
            mean: 0.505,
        });
        w.flush().unwrap();
        let reader = Store::open_read_only(&db).unwrap();
        assert_eq!(reader.scores(ev).unwrap()[41].score, 0.42);
        let r = reader.run(run).unwrap();
        assert_eq!((r.progress, r.lm_calls, r.cache_hits), (0.5, 7, 2));
        let e = &reader.evaluations(run).unwrap()[0];
        assert_eq!((e.mean_score, e.status.as_str()), (Some(0.505), "done"));
        assert_eq!(e.kind, EvalKind::Full);
    }

    /// One bad row in a group loses only itself, and flush reports it.
    #[test]
    fn a_bad_write_loses_only_itself_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let (_, ev) = setup(&db, 3);
        let w = Writer::start(&db).unwrap();
        w.write(Write::Score {
            evaluation_id: ev,
            row: score(1, 1.0),
        });
        w.write(Write::Score {
            evaluation_id: ev,
            row: score(999, 1.0),
        });
        w.write(Write::Score {
            evaluation_id: ev,
            row: score(3, 0.0),
        });
        let err = w.flush().unwrap_err();
        assert!(err.to_string().contains("examples row 999"), "{err}");
        let ids: Vec<i64> = Store::open_read_only(&db)
            .unwrap()
            .scores(ev)
            .unwrap()
            .iter()
            .map(|s| s.example_id)
            .collect();
        assert_eq!(ids, vec![1, 3]);
        // The failure was reported once.
        w.flush().unwrap();
    }

    /// Of a run's progress updates in one group only the last is stored:
    /// the stored progress is the newest sent.
    #[test]
    fn the_newest_progress_of_a_run_wins() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let (run, _) = setup(&db, 1);
        let mut s = Store::open(&db).unwrap();
        let progress = |p: f64| Write::RunProgress {
            run_id: run,
            progress: p,
            lm_calls: (p * 10.0) as i64,
            cache_hits: 0,
        };
        s.apply_writes(&[progress(0.1), progress(0.2), progress(0.3)])
            .unwrap();
        let r = s.run(run).unwrap();
        assert_eq!((r.progress, r.lm_calls), (0.3, 3));
    }

    /// Dropping the last handle commits what is still queued.
    #[test]
    fn dropping_the_writer_commits_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let (_, ev) = setup(&db, 50);
        let w = Writer::start(&db).unwrap();
        let w2 = w.clone();
        for i in 1..=50 {
            w2.write(Write::Score {
                evaluation_id: ev,
                row: score(i, 0.5),
            });
        }
        drop(w2);
        drop(w);
        assert_eq!(
            Store::open_read_only(&db)
                .unwrap()
                .scores(ev)
                .unwrap()
                .len(),
            50
        );
    }
}
