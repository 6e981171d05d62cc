//! Exports of tracked data to other systems. Now: MLflow tracking servers
//! (`mlflow.rs`: runs, nested candidate runs, metric series, artifacts,
//! idempotent through the `mlflow_exports` mapping).

pub mod mlflow;
