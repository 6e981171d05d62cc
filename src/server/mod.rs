//! `skill-fleet serve`: the HTTP API. This module builds the router from the
//! route modules (`routes/`), with the OpenAPI document generated from the
//! same route definitions (utoipa-axum), so the two cannot drift; the
//! layers every request passes (body limit, panic → JSON 500, latency
//! metrics, bearer token on `/api`); the dashboard's pages at `/`
//! (`dashboard`, outside the API and its document); and [`serve`], which
//! binds and runs.
//!
//! Handlers only translate HTTP into calls of `jobs`, `registry` and
//! `store`; background optimizations belong to [`jobs::JobManager`].

pub mod dashboard;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod routes;
pub mod security;

use crate::error::{Error, Result};
use crate::jobs::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::from_fn_with_state;
use axum::Router;
use error::ApiError;
use routes::{ab, optimization, predict, registry, reports, runs, AppState};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Request bodies larger than this are refused (413).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub host: IpAddr,
    pub port: u16,
    /// Files named in requests (`trainset_file`) must lie inside it.
    pub data_dir: PathBuf,
    /// Optimization jobs running at once; the rest wait `pending`.
    pub max_jobs: usize,
    /// Required as a bearer token on `/api` when set; needed off loopback.
    pub token: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "skill-fleet",
        description = "Optimize LM programs DSPy-style; every run, candidate, \
        score and version tracked in one SQLite file."
    ),
    components(schemas(error::ErrorBody))
)]
struct ApiDoc;

/// The router and the OpenAPI document of every route it serves.
pub fn router(state: AppState, token: Option<Arc<str>>) -> (Router, serde_json::Value) {
    let api = OpenApiRouter::new()
        .routes(routes!(optimization::start))
        .routes(routes!(optimization::status))
        .routes(routes!(optimization::events))
        .routes(routes!(optimization::optimizers))
        .routes(routes!(optimization::list_jobs))
        .routes(routes!(optimization::cancel))
        .routes(routes!(optimization::resume))
        .routes(routes!(registry::programs))
        .routes(routes!(registry::versions))
        .routes(routes!(registry::version))
        .routes(routes!(registry::promote))
        .routes(routes!(registry::rollback))
        .routes(routes!(runs::runs))
        .routes(routes!(runs::run))
        .routes(routes!(runs::traces))
        .routes(routes!(runs::trace))
        .routes(routes!(predict::predict))
        .routes(routes!(ab::create, ab::list))
        .routes(routes!(ab::status))
        .routes(routes!(ab::route))
        .routes(routes!(ab::record))
        .routes(routes!(ab::weights))
        .routes(routes!(ab::conclude))
        .routes(routes!(reports::run_report))
        .routes(routes!(reports::compare))
        .routes(routes!(reports::comparisons))
        .routes(routes!(reports::comparison))
        .routes(routes!(reports::comparison_report))
        .routes(routes!(reports::alias_history))
        .routes(routes!(reports::diff))
        .routes(routes!(reports::export))
        .routes(routes!(routes::openapi))
        .route_layer(from_fn_with_state(token, security::require_token));
    let open = OpenApiRouter::new()
        .routes(routes!(routes::health))
        .routes(routes!(routes::metrics));
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(api)
        .merge(open)
        .route_layer(from_fn_with_state(state.metrics.clone(), metrics::track))
        .split_for_parts();
    let mut doc = serde_json::to_value(&doc).unwrap_or_default();
    document_request_errors(&mut doc);
    let _ = state.openapi.set(doc.clone());
    let router = router
        .merge(dashboard::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .with_state(state);
    (router, doc)
}

/// Adds to every operation the errors its extractors answer before the
/// handler runs (see `error::ApiJson`, `ApiPath`, `ApiQuery`), unless the
/// route documents them itself: 400 for a path, query or body that does not
/// parse (`/jobs/99999999999999999999`, `\0` as JSON), 422 for a query or
/// body whose values do not fit, and for a body 413 (over the size limit)
/// and 415 (not `application/json`).
fn document_request_errors(doc: &mut serde_json::Value) {
    let error = |description: &str| {
        serde_json::json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        })
    };
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for operation in paths.values_mut().filter_map(|i| i.as_object_mut()) {
        for op in operation.values_mut() {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let has_query = params.iter().any(|p| p["in"] == "query");
            let has_body = op.get("requestBody").is_some();
            let mut add = Vec::new();
            if has_body || !params.is_empty() {
                add.push(("400", "The path, query or body does not parse"));
            }
            if has_body || has_query {
                add.push(("422", "A value does not fit its field"));
            }
            if has_body {
                add.push(("413", "The body is over the size limit"));
                add.push(("415", "The body is not `application/json`"));
            }
            let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else {
                continue;
            };
            for (status, description) in add {
                responses
                    .entry(status)
                    .or_insert_with(|| error(description));
            }
        }
    }
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Serves until Ctrl-C: checks the bind rule, takes over the database's
/// jobs, binds, and reports the bound address through `on_bound` (port 0
/// picks a free one).
pub async fn serve(
    ctx: Context,
    opts: ServeOptions,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<()> {
    security::check_bind(opts.host, opts.token.as_deref())?;
    let data_dir = opts
        .data_dir
        .canonicalize()
        .map_err(|e| Error::io(&opts.data_dir, e))?;
    let jobs = jobs::JobManager::start(ctx.clone(), opts.max_jobs)?;
    let state = AppState {
        ctx,
        jobs: jobs.clone(),
        metrics: metrics::Metrics::new(),
        data_dir: Arc::new(data_dir),
        openapi: Arc::new(OnceLock::new()),
    };
    let (app, _) = router(state, opts.token.map(Arc::from));
    let addr = SocketAddr::new(opts.host, opts.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(addr.to_string(), e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io(addr.to_string(), e))?;
    on_bound(bound);
    let stopping = jobs.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("shutting down: running jobs stop after their current step (resumable)");
            // Jobs end first, so their event streams close and the
            // connections drain.
            let _ = tokio::task::spawn_blocking(move || {
                stopping.shutdown(std::time::Duration::from_secs(30))
            })
            .await;
        })
        .await
        .map_err(|e| Error::io(bound.to_string(), e))
}
