//! skill-fleet: optimize LM programs DSPy-style and keep every trainset, run,
//! candidate, score and trace in one local SQLite file.
//!
//! One module per concern (`docs/architecture.md` walks them): [`store`]
//! owns the database and its one writer, [`data`] owns trainsets, [`lm`]
//! talks to language models, [`program`] renders and parses predictor calls,
//! [`metrics`] and [`eval`] score programs, [`optimize`] improves them,
//! [`tasks`] holds what is specific to the bundled skill task, and [`jobs`]
//! are what a user asks for (evaluate, optimize, predict); [`report`] turns a
//! run into Markdown, HTML, JSON or CSV and exports traces. The `skill-fleet`
//! binary is a thin [`cli`] over [`jobs`] and [`store`].

pub mod ab;
pub mod cli;
pub mod compare;
pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod export;
pub mod jobs;
pub mod lm;
pub mod metrics;
pub mod optimize;
pub mod program;
pub mod progress;
pub mod registry;
pub mod report;
pub mod server;
pub mod store;
pub mod tasks;
pub mod util;

pub use error::{Error, Result};
