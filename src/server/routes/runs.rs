//! `/api/v1/runs`: stored runs, and one run with its candidates and
//! evaluations (what `skill-fleet runs list|show` print).

use super::optimization::Limit;
use super::{blocking, AppState};
use crate::server::error::{ApiPath, ApiQuery, ApiResult, ErrorBody};
use axum::extract::State;
use axum::Json;
use serde_json::Value;

#[utoipa::path(get, path = "/api/v1/runs", tag = "runs",
    params(Limit),
    responses((status = 200, description = "Runs, newest first", body = Vec<Object>)))]
pub async fn runs(
    State(st): State<AppState>,
    ApiQuery(limit): ApiQuery<Limit>,
) -> ApiResult<Json<Value>> {
    let limit = limit.get()?;
    blocking(move || {
        Ok(Json(serde_json::to_value(
            st.ctx.reader()?.list_runs(limit)?,
        )?))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs",
    params(("id" = i64, Path, description = "The run")),
    responses(
        (status = 200, description = "The run with its candidates and evaluations", body = Object),
        (status = 404, description = "No such run", body = ErrorBody),
    ))]
pub async fn run(State(st): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let reader = st.ctx.reader()?;
        let run = reader.run(id)?;
        let candidates = reader.candidates(id)?;
        let evaluations = reader.evaluations(id)?;
        Ok(Json(serde_json::json!({
            "run": run,
            "candidates": candidates,
            "evaluations": evaluations,
        })))
    })
    .await
}
