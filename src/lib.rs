//! skill-fleet: optimize LM programs DSPy-style and keep every trainset, run,
//! candidate, score and trace in one local SQLite file.
//!
//! The library is organised one module per concern (see `DESIGN.md`):
//! [`store`] owns the database, [`data`] owns trainsets, [`lm`] talks to
//! language models, [`program`] renders and parses predictor calls,
//! [`metrics`] and [`eval`] score programs, [`optimize`] improves them,
//! [`tasks`] holds what is specific to the bundled skill task.
//! The `skill-fleet` binary is a thin [`cli`] over these modules.

pub mod cli;
pub mod config;
pub mod data;
pub mod error;
pub mod store;
pub mod util;

pub use error::{Error, Result};
pub mod eval;
pub mod lm;
pub mod metrics;
pub mod optimize;
pub mod program;
pub mod tasks;
