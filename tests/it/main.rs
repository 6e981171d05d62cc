//! The one integration test binary (like ripgrep's `tests/tests.rs`): each
//! module tests one area against real SQLite files, the real binary, loopback
//! HTTP servers or the real local model; `util` holds what they share.
//! One binary links llama.cpp once instead of once per test file.

mod util;

mod ab;

mod cli_paths;
mod dashboard;
mod data_tools;
mod dspy_roundtrip;
mod foundation;
mod jobs;
mod lm_providers;
#[cfg(feature = "local")]
mod local_model;
mod mlflow_export;
#[cfg(feature = "local")]
mod optimize;
mod optimizer_units;
mod programs;
mod registry;
mod report;
mod serve;
