//! Trace recording off the hot path: calls send rows to a writer thread that
//! commits them in batched transactions.

use crate::store::{Store, TraceRow};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

enum Msg {
    Row(Box<TraceRow>),
    Flush(Sender<()>),
}

/// Handle to the trace writer; clone the [`TraceSink`] into every client.
pub struct Tracer {
    sink: TraceSink,
    handle: Option<JoinHandle<()>>,
}

/// Cheap, cloneable sender of trace rows.
#[derive(Clone)]
pub struct TraceSink {
    tx: Sender<Msg>,
}

/// Rows per transaction at most; larger batches only delay visibility.
const BATCH: usize = 512;

impl Tracer {
    /// Starts the writer thread on its own connection to `db_path`.
    pub fn start(db_path: &Path) -> crate::Result<Self> {
        let store = Store::open(db_path)?;
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("trace-writer".into())
            .spawn(move || writer(store, rx))
            .map_err(|e| crate::Error::io(db_path, e))?;
        Ok(Tracer {
            sink: TraceSink { tx },
            handle: Some(handle),
        })
    }

    /// A sender for clients.
    pub fn sink(&self) -> TraceSink {
        self.sink.clone()
    }

    /// Waits until every row sent so far is committed.
    pub fn flush(&self) {
        self.sink.flush();
    }
}

impl TraceSink {
    /// Queues a row; never blocks the caller on SQLite.
    pub fn record(&self, row: TraceRow) {
        let _ = self.tx.send(Msg::Row(Box::new(row)));
    }

    /// Waits until every row sent so far is committed.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        self.flush();
        // The thread ends when every sender is gone; clients may still hold
        // sinks, so detach instead of joining in that case.
        if let Some(h) = self.handle.take() {
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

fn writer(mut store: Store, rx: Receiver<Msg>) {
    let mut batch: Vec<TraceRow> = Vec::new();
    let mut waiters: Vec<Sender<()>> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Row(r) => batch.push(*r),
                Msg::Flush(w) => waiters.push(w),
            }
            next = if batch.len() < BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !batch.is_empty() {
            // A failed write is retried once (e.g. a long lock by another process).
            if store.insert_traces(&batch).is_err() {
                std::thread::sleep(std::time::Duration::from_millis(200));
                if let Err(e) = store.insert_traces(&batch) {
                    eprintln!("warning: {} trace rows not written: {e}", batch.len());
                }
            }
            batch.clear();
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_committed_by_flush() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let tracer = Tracer::start(&db).unwrap();
        let sink = tracer.sink();
        for i in 0..1000 {
            sink.record(TraceRow {
                provider: "p".into(),
                model: "m".into(),
                request_json: format!("{{\"i\":{i}}}"),
                ..Default::default()
            });
        }
        tracer.flush();
        assert_eq!(Store::open(&db).unwrap().count("traces").unwrap(), 1000);
    }
}
