//! The SQLite tracker store: the only module (besides migrations and the `sql`
//! passthrough) that holds SQL strings.
//!
//! One [`Store`] wraps one connection. Connections are opened in WAL mode with a
//! busy timeout so that several processes (an optimization, a user running
//! `skill-fleet sql`) can share the file, and with foreign keys on so that the
//! schema's references hold. Within a process, jobs write through the one
//! [`Writer`] thread; reads that need no ordering with a job's own writes use
//! read-only connections ([`Store::open_read_only`]).

mod ab;
mod bulk;
mod jobs;
mod lm;
mod mlflow;
mod programs;
mod query;
mod readers;
mod registry;
mod report;
mod runs;
mod traced;
mod trainsets;
mod types;
mod writer;

pub use ab::{AbOutcomeRow, AbTestRow, AbVariantRow, NewAbVariant};
pub use jobs::{JobEnd, JobRow};
pub use lm::{CacheStats, StoredTrace, TraceFilter, TraceRow};
pub use mlflow::{epoch_ms, CandidateSummary, ExportMapping, TrialScore};
pub use programs::{NewVersion, ProgramSummary, VersionRow};
pub use query::{QueryOutput, ReadOnlyQueryError};
pub use readers::{PooledReader, Readers};
pub use registry::{AliasMove, ComparisonRow, VersionEvaluation};
pub use report::{
    ExampleOutcomeRow, ExampleScoreRow, LeaderboardRow, LmTotals, RoleUse, RunListing,
};
pub use runs::{CandidateRow, EvaluationRow, NewRun, RunRow, ScoreRow};
pub use traced::{TracedPrediction, TRACED_COLUMNS};
pub use trainsets::{ExampleRow, SplitRow, TrainsetRow};
pub use types::{AbStatus, AbStrategy, EvalKind, OutcomeKind, RunKind, Split, Status};
pub use writer::{Write, Writer, IDLE, MAX_DELAY, MAX_GROUP};

use crate::error::{Error, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// How long a writer waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Prepared statements kept per connection. rusqlite's default of 16 is
/// fewer than the writer's distinct statements (each table's single- and
/// multi-row inserts, cache and alias updates), which made it re-parse them.
const STATEMENT_CACHE: usize = 64;

/// A connection to the tracker database, migrated to the newest schema.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Sizes and versions reported by `skill-fleet db info`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DbInfo {
    pub path: String,
    pub schema_version: i64,
    pub file_size_bytes: u64,
    pub tables: Vec<(String, i64)>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        // Two processes creating the same file at once contend for the lock
        // that switching to WAL takes; SQLite may answer "busy" without waiting,
        // so setting up is retried as a whole.
        let mut attempt = 0u64;
        loop {
            let mut conn = Connection::open(&path)?;
            match configure(&conn).and_then(|_| migrate(&mut conn)) {
                Ok(()) => return Ok(Store { conn, path }),
                Err(e) if attempt < 20 && is_contention(&e) => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(25 * attempt));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Opens an existing database read-only: used by `skill-fleet sql` so that a
    /// user's query can never change the file.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            return Err(Error::NotFound {
                kind: "database",
                name: path.display().to_string(),
            });
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.pragma_update(None, "query_only", true)?;
        Ok(Store { conn, path })
    }

    /// The underlying connection, for modules that need a transaction spanning several calls.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Mutable access for transactions.
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Highest applied migration version.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM refinery_schema_history",
            [],
            |r| r.get(0),
        )?)
    }

    /// Schema version, file size and row counts of every table.
    pub fn info(&self) -> Result<DbInfo> {
        let mut stmt = self.conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?;
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut tables = Vec::with_capacity(names.len());
        for name in names {
            // Table names come from sqlite_master, not from the user.
            let n: i64 =
                self.conn
                    .query_row(&format!("SELECT COUNT(*) FROM \"{name}\""), [], |r| {
                        r.get(0)
                    })?;
            tables.push((name, n));
        }
        let file_size_bytes = [
            self.path.clone(),
            wal_path(&self.path, "-wal"),
            wal_path(&self.path, "-shm"),
        ]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
        Ok(DbInfo {
            path: self.path.display().to_string(),
            schema_version: self.schema_version()?,
            file_size_bytes,
            tables,
        })
    }

    /// Row count of one table (used by tests and `db info`).
    pub fn count(&self, table: &str) -> Result<i64> {
        if !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::Invalid(format!("not a table name: {table}")));
        }
        Ok(self
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
    }
}

/// The transaction of one store method that writes several rows: its own
/// IMMEDIATE transaction (the write lock taken up front, so two writers
/// serialise instead of failing on lock upgrade), or — when the connection is
/// already inside one, as the store writer's group commit is — a savepoint in
/// it. Either way the method's rows are stored all or none.
pub(crate) enum WriteTx<'c> {
    Own(rusqlite::Transaction<'c>),
    Nested(rusqlite::Savepoint<'c>),
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            WriteTx::Own(t) => t,
            WriteTx::Nested(s) => s,
        }
    }
}

impl WriteTx<'_> {
    pub(crate) fn commit(self) -> Result<()> {
        match self {
            WriteTx::Own(t) => t.commit()?,
            WriteTx::Nested(s) => s.commit()?,
        }
        Ok(())
    }
}

impl Store {
    /// Starts the transaction of a method that writes several rows (see [`WriteTx`]).
    pub(crate) fn write_transaction(&mut self) -> Result<WriteTx<'_>> {
        Ok(if self.conn.is_autocommit() {
            WriteTx::Own(
                self.conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?,
            )
        } else {
            WriteTx::Nested(self.conn.savepoint()?)
        })
    }
}

/// Errors another process's concurrent set-up can cause.
fn is_contention(e: &Error) -> bool {
    let text = e.to_string();
    text.contains("locked") || text.contains("busy") || text.contains("already exists")
}

fn wal_path(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // journal_mode returns a row, so it is read rather than executed.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Applies embedded migrations. Two processes opening a fresh file at once can
/// race on the first migration; the loser sees "already exists" or a lock, waits
/// and retries, and then finds the history up to date.
///
/// Foreign-key enforcement is off while migrating (it cannot change inside
/// the migration's transaction): rebuilding a referenced table (version 3
/// rebuilds `runs`) would otherwise cascade or fail. Ids are kept by every
/// rebuild, so references stay valid; enforcement is back on afterwards.
fn migrate(conn: &mut Connection) -> Result<()> {
    conn.pragma_update(None, "foreign_keys", false)?;
    let mut last_err = None;
    for attempt in 0..8u64 {
        match embedded::migrations::runner().run(conn) {
            Ok(_) => {
                last_err = None;
                break;
            }
            Err(e) => {
                last_err = Some(e.to_string());
                std::thread::sleep(Duration::from_millis(50 * (attempt + 1)));
            }
        }
    }
    conn.pragma_update(None, "foreign_keys", true)?;
    match last_err {
        None => Ok(()),
        Some(e) => Err(Error::Migration(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_and_migrates_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), 8);
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), 8);
        let fk: i64 = s
            .conn()
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    }

    /// A database written by schema version 1 keeps its scores when version 2
    /// rebuilds `scores` as a clustered table and redefines the views, and its
    /// runs when version 3 rebuilds `runs` with the one status vocabulary.
    #[test]
    fn version_1_scores_and_runs_survive_the_version_2_and_3_rebuilds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            embedded::migrations::runner()
                .set_target(refinery::Target::Version(1))
                .run(&mut conn)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO trainsets (id, name, content_hash, source, format, n_examples, created_at) \
                 VALUES (1, 't', 'h', 's', 'json', 2, 'now'); \
                 INSERT INTO examples (id, trainset_id, idx, fields_json, hash) VALUES (1, 1, 0, '{}', 'a'), (2, 1, 1, '{}', 'b'); \
                 INSERT INTO runs (id, kind, started_at) VALUES (1, 'optimize', 'now'); \
                 INSERT INTO runs (id, kind, status, started_at) VALUES (2, 'eval', 'succeeded', 'now'); \
                 INSERT INTO candidates (id, run_id, origin, spec_json, hash, created_at) VALUES (1, 1, 'baseline', '{}', 'x', 'now'); \
                 INSERT INTO evaluations (id, run_id, candidate_id, split, kind, metric, n, mean_score, status, created_at) \
                 VALUES (1, 1, 1, 'val', 'full', 'm', 2, 0.5, 'done', 'now'); \
                 INSERT INTO scores (evaluation_id, example_id, score, feedback) VALUES (1, 1, 0.25, 'f1'), (1, 2, 0.75, 'f2');",
            )
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), 8);
        let rows = s.scores(1).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].score, rows[0].feedback.as_deref()),
            (0.25, Some("f1"))
        );
        assert_eq!(
            (rows[1].score, rows[1].feedback.as_deref()),
            (0.75, Some("f2"))
        );
        let sql: String = s
            .conn()
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'scores'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.contains("WITHOUT ROWID"), "{sql}");
        let best: i64 = s
            .conn()
            .query_row(
                "SELECT candidate_id FROM candidate_leaderboard WHERE run_id = 1 AND rank = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(best, 1);
        // Version 3: `succeeded` is `completed`, other statuses stay, and
        // every reference to the rebuilt `runs` still holds.
        assert_eq!(s.run(1).unwrap().status, Status::Running);
        assert_eq!(s.run(2).unwrap().status, Status::Completed);
        let broken: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(broken, 0);
    }
}
