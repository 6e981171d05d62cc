//! A pool of read-only connections to the tracker database, so that request
//! handlers and jobs reuse connections instead of opening one per read.
//!
//! Why: opening a SQLite connection parses the whole schema on its first
//! statement; under `skill-fleet serve` that parse (and SQLite's allocator
//! mutex it hammers) was most of the cost of a cached `POST /predict` or a
//! `GET /status` (profiled with `perf`, 2026-11-29). In WAL mode a pooled
//! reader still sees every commit: each statement outside a transaction
//! starts a fresh read snapshot.

use super::Store;
use crate::error::Result;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Idle connections kept for reuse; more may be open at once (each caller
/// that finds none idle opens its own), the extra ones are closed on return.
const MAX_IDLE: usize = 16;

/// Read-only connections to one database file, reused.
pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Store>>,
}

impl Readers {
    pub fn new(path: impl AsRef<Path>) -> Arc<Self> {
        Arc::new(Readers {
            path: path.as_ref().to_path_buf(),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// An idle connection, or a newly opened one when none is idle.
    pub fn get(self: &Arc<Self>) -> Result<PooledReader> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let store = match idle {
            Some(store) => store,
            None => Store::open_read_only(&self.path)?,
        };
        Ok(PooledReader {
            store: Some(store),
            pool: Arc::clone(self),
        })
    }

    /// Connections waiting for reuse.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }
}

/// A read-only connection that goes back to its pool when dropped.
pub struct PooledReader {
    store: Option<Store>,
    pool: Arc<Readers>,
}

impl Deref for PooledReader {
    type Target = Store;
    fn deref(&self) -> &Store {
        // Only `drop` takes the store out.
        self.store.as_ref().expect("pooled reader used after drop")
    }
}

impl DerefMut for PooledReader {
    fn deref_mut(&mut self) -> &mut Store {
        self.store.as_mut().expect("pooled reader used after drop")
    }
}

impl Drop for PooledReader {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        // A connection left inside a transaction (a caller that leaked one)
        // would pin an old snapshot: close it instead of reusing it.
        if !store.conn().is_autocommit() {
            return;
        }
        if let Ok(mut idle) = self.pool.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(store);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        Store::open(&path).expect("create");
        (dir, path)
    }

    #[test]
    fn a_returned_connection_is_reused_and_sees_later_commits() {
        let (_dir, path) = db();
        let readers = Readers::new(&path);
        let first = readers.get().expect("reader");
        let n = |r: &Store| -> i64 {
            r.conn()
                .query_row("SELECT COUNT(*) FROM trainsets", [], |row| row.get(0))
                .expect("count")
        };
        assert_eq!(n(&first), 0);
        drop(first);
        assert_eq!(readers.idle_count(), 1);
        let writer = Store::open(&path).expect("open");
        writer
            .conn()
            .execute(
                "INSERT INTO trainsets (name, content_hash, source, format, n_examples, created_at) \
                 VALUES ('t', 'h', 's', 'json', 0, 'now')",
                [],
            )
            .expect("insert");
        let again = readers.get().expect("reader");
        assert_eq!(readers.idle_count(), 0, "the idle connection was taken");
        assert_eq!(
            n(&again),
            1,
            "a reused reader sees a commit made after it was opened"
        );
    }

    #[test]
    fn a_connection_returned_inside_a_transaction_is_not_reused() {
        let (_dir, path) = db();
        let readers = Readers::new(&path);
        let reader = readers.get().expect("reader");
        reader.conn().execute_batch("BEGIN").expect("begin");
        drop(reader);
        assert_eq!(readers.idle_count(), 0);
    }
}
