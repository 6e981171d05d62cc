//! Typed errors of the library. Binaries add context with `anyhow` at the edge.

use std::path::PathBuf;

/// Everything the library can fail with, grouped by the concern that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite refused a statement or the file could not be opened.
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// Applying the embedded migrations failed.
    #[error("migration error: {0}")]
    Migration(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A trainset file has problems; every problem is listed with its location.
    #[error("{} problem(s) in trainset:\n{}", .0.len(), crate::data::format_problems(.0))]
    InvalidTrainset(Vec<crate::data::Problem>),
    /// Stored examples lack fields a program needs; every such example is
    /// named (boxed: the report is large and errors travel by value).
    #[error("{0}")]
    ExamplesDoNotFit(Box<crate::program::check::ExamplesDoNotFit>),
    /// A configuration or spec file is malformed.
    #[error("{path}: {message}")]
    Config { path: String, message: String },
    /// Something named by the user does not exist.
    #[error("{kind} not found: {name}")]
    NotFound { kind: &'static str, name: String },
    /// The user's request cannot be honoured as given.
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the state of what it names (cancelling a
    /// job that has already ended, resuming one that is not interrupted).
    #[error("{0}")]
    Conflict(String),
    /// The registry refused to move an alias: the evidence gate found no
    /// comparison, or one showing the new version worse; the text says which.
    #[error("promotion refused: {0}")]
    PromotionRefused(String),
    /// An MLflow tracking server refused or failed a request (after retries).
    #[error("MLflow export: {0}")]
    Mlflow(String),
    /// A language model could not be set up or called.
    #[error("language model: {0}")]
    Lm(#[from] crate::lm::LmError),
    /// No prediction could be made (every run failed, or an ensemble disagreed).
    #[error("prediction failed: {0}")]
    Prediction(#[from] crate::program::ensemble::EnsembleError),
    /// JSON (de)serialisation failed on data we produced ourselves.
    #[error("json error: {0}")]
    Json(#[from] serde_json::Error),
}

/// Library result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns, so messages always name the file.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
