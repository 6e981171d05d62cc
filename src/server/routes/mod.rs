//! The HTTP routes, one file per area (`optimization`, `registry`, `runs`,
//! `predict`, `ab`, `reports`), and here the state they share, the helpers they use, and
//! the service routes (`/health`, `/metrics`, the OpenAPI document).

pub mod ab;
pub mod optimization;
pub mod predict;
pub mod registry;
pub mod reports;
pub mod runs;

use super::error::{ApiError, ApiResult};
use super::jobs::JobManager;
use super::metrics::Metrics;
use super::security::resolve_in_data_dir;
use crate::jobs::Context;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub ctx: Context,
    pub jobs: Arc<JobManager>,
    pub metrics: Arc<Metrics>,
    /// Canonical; files named in requests must lie under it.
    pub data_dir: Arc<PathBuf>,
    /// The OpenAPI document, set once the router is built from the routes.
    pub openapi: Arc<OnceLock<serde_json::Value>>,
}

/// Runs database work off the async workers (SQLite calls block).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        )
    })?
}

/// A program named in a request: a registered name, or a spec file inside
/// the data directory (anything that looks like a path is held to the same
/// rules as `trainset_file`, so no file outside is read).
pub fn checked_program(st: &AppState, program: &str) -> ApiResult<String> {
    let looks_like_path = program.contains(['/', '\\', '%'])
        || [".yaml", ".yml", ".json"]
            .iter()
            .any(|ext| program.ends_with(ext))
        || program.starts_with('.');
    if !looks_like_path {
        return Ok(program.to_string());
    }
    resolve_in_data_dir(&st.data_dir, "program", program).map(|p| p.to_string_lossy().into_owned())
}

/// `GET /health`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
    /// Jobs queued and running in this process.
    pub jobs_pending: usize,
    pub jobs_running: usize,
}

#[utoipa::path(get, path = "/health", tag = "service",
    responses((status = 200, description = "The server is up", body = Health)))]
pub async fn health(State(st): State<AppState>) -> Json<Health> {
    let (pending, running) = st.jobs.load();
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        jobs_pending: pending,
        jobs_running: running,
    })
}

#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus metrics (OpenMetrics text)", body = String,
        content_type = "application/openmetrics-text")))]
pub async fn metrics(State(st): State<AppState>) -> ApiResult<impl IntoResponse> {
    let text = blocking(move || Ok(st.metrics.render(&*st.ctx.reader()?)?)).await?;
    Ok(([(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)], text))
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "service",
    responses((status = 200, description = "This API's OpenAPI 3 document", body = Object)))]
pub async fn openapi(State(st): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    st.openapi.get().cloned().map(Json).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "the OpenAPI document is not built yet",
        )
    })
}
