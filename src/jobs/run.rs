//! [`ActiveRun`]: a run row held by a job, which always ends in a finished
//! status. Like MLflow's `ActiveRun.__exit__`, a job that returns an error
//! marks its run `failed` with the error text, and one that ends without
//! saying how (a panic, a dropped task) is marked `failed` too, so no run
//! stays `running` after its job is gone.

use crate::error::{Error, Result};
use crate::store::{NewRun, Status, Writer};

/// A run that a job has started or resumed.
pub struct ActiveRun {
    writer: Writer,
    id: i64,
    ended: bool,
}

impl ActiveRun {
    /// Creates the run row (status `running`).
    pub fn start(writer: &Writer, run: NewRun) -> Result<Self> {
        let id = writer.call(move |s| s.create_run(&run))?;
        Ok(ActiveRun {
            writer: writer.clone(),
            id,
            ended: false,
        })
    }

    /// Sets an existing run `running` again.
    pub fn resume(writer: &Writer, id: i64) -> Result<Self> {
        writer.call(move |s| s.set_run_status(id, Status::Running, None))?;
        Ok(ActiveRun {
            writer: writer.clone(),
            id,
            ended: false,
        })
    }

    pub fn id(&self) -> i64 {
        self.id
    }

    /// Ends the run with `status` and an optional note (why it stopped).
    pub fn end(mut self, status: Status, note: Option<String>) -> Result<()> {
        self.ended = true;
        let id = self.id;
        self.writer
            .call(move |s| s.set_run_status(id, status, note.as_deref()))?;
        self.writer.flush()
    }

    /// Ends the run `failed` with `error`'s text and returns the error.
    pub fn fail(mut self, error: Error) -> Error {
        self.ended = true;
        let (id, text) = (self.id, error.to_string());
        // A write failure of the job itself is part of the message.
        let text = match self.writer.flush() {
            Ok(()) => text,
            Err(e) => format!("{text}; {e}"),
        };
        if let Err(e) = self
            .writer
            .call(move |s| s.set_run_status(id, Status::Failed, Some(&text)))
            .and_then(|_| self.writer.flush())
        {
            eprintln!("warning: run {id} could not be marked failed: {e}");
        }
        error
    }

    /// Ends the run with the outcome of `result`: `failed` with the error
    /// text, or the status `status_of` gives the value.
    pub fn finish<T>(
        self,
        result: Result<T>,
        status_of: impl FnOnce(&T) -> (Status, Option<String>),
    ) -> Result<T> {
        match result {
            Ok(v) => {
                let (status, note) = status_of(&v);
                self.end(status, note)?;
                Ok(v)
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let id = self.id;
        let _ = self.writer.call(move |s| {
            s.set_run_status(
                id,
                Status::Failed,
                Some("the job ended without finishing its run (a panic or a cancelled task)"),
            )
        });
        let _ = self.writer.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RunKind, Store};

    #[test]
    fn an_error_marks_the_run_failed_with_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("r.db");
        let w = Writer::start(&db).unwrap();
        let run = ActiveRun::start(&w, NewRun::new(RunKind::Eval, "{}".into())).unwrap();
        let id = run.id();
        let r: Result<()> = run.finish(Err(Error::Invalid("metric `nope` unknown".into())), |_| {
            (Status::Completed, None)
        });
        assert!(r.is_err());
        let row = Store::open_read_only(&db).unwrap().run(id).unwrap();
        assert_eq!(row.status, Status::Failed);
        assert_eq!(row.error.as_deref(), Some("metric `nope` unknown"));
        assert!(row.finished_at.is_some());
    }

    #[test]
    fn a_run_dropped_without_ending_is_marked_failed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("r.db");
        let w = Writer::start(&db).unwrap();
        let id = {
            let run = ActiveRun::start(&w, NewRun::new(RunKind::Eval, "{}".into())).unwrap();
            run.id()
        };
        let row = Store::open_read_only(&db).unwrap().run(id).unwrap();
        assert_eq!(row.status, Status::Failed);
        assert!(row.error.unwrap().contains("without finishing"));
    }
}
