//! Trace recording off the hot path: every LM call's row goes to the store's
//! one [`Writer`], which commits it with the rest of the job's writes.

use crate::store::{TraceRow, Write, Writer};

/// Cheap, cloneable sender of trace rows; one per client.
#[derive(Clone)]
pub struct TraceSink {
    writer: Writer,
}

impl TraceSink {
    /// A sink writing through `writer`.
    pub fn new(writer: &Writer) -> Self {
        TraceSink {
            writer: writer.clone(),
        }
    }

    /// Queues a row; never blocks the caller on SQLite.
    pub fn record(&self, row: TraceRow) {
        self.writer.write(Write::Trace(Box::new(row)));
    }

    /// Waits until every row sent so far is committed.
    pub fn flush(&self) -> crate::Result<()> {
        self.writer.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn rows_are_committed_by_flush() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let sink = TraceSink::new(&Writer::start(&db).unwrap());
        for i in 0..1000 {
            sink.record(TraceRow {
                provider: "p".into(),
                model: "m".into(),
                request_json: format!("{{\"i\":{i}}}"),
                ..Default::default()
            });
        }
        sink.flush().unwrap();
        assert_eq!(
            Store::open_read_only(&db).unwrap().count("traces").unwrap(),
            1000
        );
    }
}
