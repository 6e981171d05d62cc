//! Programs: typed signatures, predictors (Predict, ChainOfThought) wired into
//! pipelines, adapters that turn calls into prompts and answers into typed
//! fields, grammars for constrained decoding, and DSPy JSON import/export.

pub mod adapter;
pub mod check;
pub mod grammar;
pub mod json_schema;
pub mod knn;
pub mod parse;
pub mod run;
pub mod signature;
pub mod spec;

pub use check::check_examples;
pub use run::{run_program, Prediction, PredictorTrace, RunError};
pub use signature::{Field, FieldType, Signature};
pub use spec::{AdapterKind, Demo, ModuleKind, PredictorSpec, ProgramSpec};
pub mod dspy;
pub mod load;
pub use load::{load_program, load_stored_program, ProgramRef};
pub mod ensemble;
pub use run::{run_program_with, RunOptions};
