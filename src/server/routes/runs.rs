//! `/api/v1/runs`: stored runs (with program names, traced LM calls and
//! cost), one run with its candidates and evaluations (what `skill-fleet runs
//! list|show` print), a page of a run's traces, and one trace with its
//! request and response (`/api/v1/traces/{id}`), scrubbed as the export is.

use super::optimization::Limit;
use super::{blocking, AppState};
use crate::report::redact::Redactor;
use crate::report::traces::{trace_detail, trace_page};
use crate::server::error::{ApiError, ApiPath, ApiQuery, ApiResult, ErrorBody};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

#[utoipa::path(get, path = "/api/v1/runs", tag = "runs",
    params(Limit),
    responses((status = 200, description = "Runs, newest first, with program and trainset names and \
        their traced LM calls and cost", body = Vec<Object>)))]
pub async fn runs(
    State(st): State<AppState>,
    ApiQuery(limit): ApiQuery<Limit>,
) -> ApiResult<Json<Value>> {
    let limit = limit.get()?;
    blocking(move || {
        Ok(Json(serde_json::to_value(
            st.ctx.reader()?.list_run_listings(limit)?,
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

/// `?limit=&offset=` of a page of traces.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Rows at most (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Rows to skip (default 0).
    #[param(minimum = 0, maximum = 9007199254740991_i64)]
    pub offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/runs/{id}/traces", tag = "runs",
    params(("id" = i64, Path, description = "The run"), Page),
    responses(
        (status = 200, description = "A page of the run's LM calls in order: model, tokens, latency, \
            cost, cache hit, error (no request or response; open one trace for those)", body = Vec<Object>),
        (status = 404, description = "No such run", body = ErrorBody),
    ))]
pub async fn traces(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Vec<Value>>> {
    let limit = page.limit.unwrap_or(100);
    let offset = page.offset.unwrap_or(0);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::unprocessable(format!(
            "parameter `limit`: {limit} is out of range; expected 1 to 1000"
        )));
    }
    if offset < 0 {
        return Err(ApiError::unprocessable(format!(
            "parameter `offset`: {offset} is out of range; expected 0 or more"
        )));
    }
    blocking(move || {
        let rows = trace_page(&*st.ctx.reader()?, id, limit, offset, &Redactor::from_env())?;
        Ok(Json(rows))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/traces/{id}", tag = "runs",
    params(("id" = i64, Path, description = "The trace")),
    responses(
        (status = 200, description = "One LM call with its request and response, secrets scrubbed", body = Object),
        (status = 404, description = "No such trace", body = ErrorBody),
    ))]
pub async fn trace(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        Ok(Json(trace_detail(
            &*st.ctx.reader()?,
            id,
            &Redactor::from_env(),
        )?))
    })
    .await
}
