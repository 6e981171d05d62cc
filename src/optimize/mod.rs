//! Optimizers that improve a program's held-out score: LabeledFewShot,
//! BootstrapFewShot, random search, MIPROv2 and GEPA. All of them work through
//! a [`Session`], which commits every candidate and score as it happens.

pub mod fewshot;
pub mod gepa;
pub mod mipro;
pub mod pareto;
pub mod session;
pub mod tpe;

pub use session::{Outcome, Session, StopReason};
pub mod run;
pub use run::{run_optimization, OptimizeReport, OptimizeRequest, OptimizerKind, RunHooks};
