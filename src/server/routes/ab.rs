//! `/api/v1/ab/...`: A/B tests between program versions over `crate::ab` —
//! create, list, status (intervals, P(best), the stop rule), route a key,
//! record an outcome, change weights, conclude (optionally promoting the
//! winner). Writes go through the store writer; reads use read-only
//! connections.

use super::{blocking, AppState};
use crate::ab::{self, CreateRequest, Outcome, StatusOptions, VariantWeight};
use crate::server::error::{ApiError, ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::store::AbStrategy;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

fn variants(list: &[String]) -> ApiResult<Vec<VariantWeight>> {
    list.iter()
        .map(|v| {
            v.parse::<VariantWeight>()
                .map_err(|e| ApiError::unprocessable(format!("field `variants`: {e}")))
        })
        .collect()
}

/// `POST /api/v1/ab`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// A registered program.
    pub program: String,
    /// The test's name (default `PROGRAM-V3-vs-V4`).
    pub name: Option<String>,
    /// `sticky` (default: the same key always gets the same variant) or `random`.
    #[schema(value_type = Option<String>, example = "sticky")]
    pub strategy: Option<AbStrategy>,
    /// Versions with weights, e.g. `["V3=90", "V4=10"]`.
    #[schema(example = json!(["V3=90", "V4=10"]))]
    pub variants: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/ab", tag = "ab",
    request_body = CreateBody,
    responses(
        (status = 200, description = "The test with its variants", body = Object),
        (status = 404, description = "No such program or version", body = ErrorBody),
        (status = 422, description = "Bad variants or weights", body = ErrorBody),
    ))]
pub async fn create(
    State(st): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<Json<Value>> {
    let req = CreateRequest {
        program: body.program,
        name: body.name,
        strategy: body.strategy.unwrap_or(AbStrategy::Sticky),
        variants: variants(&body.variants)?,
    };
    blocking(move || {
        let t = st.ctx.writer.call(move |s| ab::create(s, &req))?;
        st.ctx.writer.flush()?;
        Ok(Json(serde_json::to_value(t)?))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/ab", tag = "ab",
    responses((status = 200, description = "Every A/B test", body = Vec<Object>)))]
pub async fn list(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    blocking(move || Ok(Json(serde_json::to_value(ab::list(&*st.ctx.reader()?)?)?))).await
}

#[utoipa::path(get, path = "/api/v1/ab/{test}", tag = "ab",
    params(("test" = String, Path, description = "The test's name")),
    responses(
        (status = 200, description = "Per variant: requests, outcomes, mean and interval, P(best); the stop rule", body = Object),
        (status = 404, description = "No such test", body = ErrorBody),
    ))]
pub async fn status(
    State(st): State<AppState>,
    ApiPath(test): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let r = ab::status(&*st.ctx.reader()?, &test, &StatusOptions::default())?;
        Ok(Json(serde_json::to_value(r)?))
    })
    .await
}

/// `POST /api/v1/ab/{test}/route`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteBody {
    /// The routing key (a user or session id).
    pub key: String,
}

#[utoipa::path(post, path = "/api/v1/ab/{test}/route", tag = "ab",
    params(("test" = String, Path, description = "The test's name")),
    request_body = RouteBody,
    responses(
        (status = 200, description = "The variant and version the key gets (the assignment is stored)", body = Object),
        (status = 404, description = "No such test", body = ErrorBody),
        (status = 422, description = "The test is concluded", body = ErrorBody),
    ))]
pub async fn route(
    State(st): State<AppState>,
    ApiPath(test): ApiPath<String>,
    ApiJson(body): ApiJson<RouteBody>,
) -> ApiResult<Json<Value>> {
    if body.key.is_empty() {
        return Err(ApiError::unprocessable(
            "field `key`: expected a non-empty key",
        ));
    }
    blocking(move || {
        let keys = vec![body.key];
        let mut r = st.ctx.writer.call(move |s| ab::route(s, &test, &keys))?;
        st.ctx.writer.flush()?;
        let routed = r
            .pop()
            .ok_or_else(|| ApiError::unprocessable("nothing routed"))?;
        Ok(Json(serde_json::to_value(routed)?))
    })
    .await
}

/// `POST /api/v1/ab/{test}/record`: exactly one of `score` and `success`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordBody {
    /// The key whose latest routed request the outcome belongs to.
    pub key: String,
    /// A score outcome.
    pub score: Option<f64>,
    /// A success (true) or failure (false) outcome.
    pub success: Option<bool>,
}

#[utoipa::path(post, path = "/api/v1/ab/{test}/record", tag = "ab",
    params(("test" = String, Path, description = "The test's name")),
    request_body = RecordBody,
    responses(
        (status = 200, description = "The stored outcome", body = Object),
        (status = 404, description = "No such test", body = ErrorBody),
        (status = 422, description = "A key never routed, or not exactly one outcome", body = ErrorBody),
    ))]
pub async fn record(
    State(st): State<AppState>,
    ApiPath(test): ApiPath<String>,
    ApiJson(body): ApiJson<RecordBody>,
) -> ApiResult<Json<Value>> {
    let outcome = match (body.score, body.success) {
        (Some(x), None) if x.is_finite() => Outcome::Score(x),
        (Some(x), None) => {
            return Err(ApiError::unprocessable(format!(
                "field `score`: expected a finite number, got {x}"
            )))
        }
        (None, Some(true)) => Outcome::Success,
        (None, Some(false)) => Outcome::Failure,
        _ => {
            return Err(ApiError::unprocessable(
                "give exactly one of `score` and `success`",
            ))
        }
    };
    blocking(move || {
        let key = body.key;
        let r = st
            .ctx
            .writer
            .call(move |s| ab::record(s, &test, &key, outcome))?;
        st.ctx.writer.flush()?;
        Ok(Json(serde_json::to_value(r)?))
    })
    .await
}

/// `POST /api/v1/ab/{test}/weights`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightsBody {
    /// New weights, e.g. `["V3=80", "V4=20"]`.
    pub variants: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/ab/{test}/weights", tag = "ab",
    params(("test" = String, Path, description = "The test's name")),
    request_body = WeightsBody,
    responses(
        (status = 200, description = "The test with its new weights (the change is kept in history)", body = Object),
        (status = 404, description = "No such test", body = ErrorBody),
        (status = 422, description = "Bad variants or weights", body = ErrorBody),
    ))]
pub async fn weights(
    State(st): State<AppState>,
    ApiPath(test): ApiPath<String>,
    ApiJson(body): ApiJson<WeightsBody>,
) -> ApiResult<Json<Value>> {
    let w = variants(&body.variants)?;
    blocking(move || {
        let t = st.ctx.writer.call(move |s| ab::set_weights(s, &test, &w))?;
        st.ctx.writer.flush()?;
        Ok(Json(serde_json::to_value(t)?))
    })
    .await
}

/// `POST /api/v1/ab/{test}/conclude`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConcludeBody {
    /// The winning variant, e.g. `V4`.
    pub winner: String,
    /// Move this alias of the program to the winner's version.
    pub promote: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/ab/{test}/conclude", tag = "ab",
    params(("test" = String, Path, description = "The test's name")),
    request_body = ConcludeBody,
    responses(
        (status = 200, description = "The concluded test", body = Object),
        (status = 404, description = "No such test or variant", body = ErrorBody),
        (status = 422, description = "Already concluded", body = ErrorBody),
    ))]
pub async fn conclude(
    State(st): State<AppState>,
    ApiPath(test): ApiPath<String>,
    ApiJson(body): ApiJson<ConcludeBody>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let t = st
            .ctx
            .writer
            .call(move |s| ab::conclude(s, &test, &body.winner, body.promote.as_deref()))?;
        st.ctx.writer.flush()?;
        Ok(Json(serde_json::to_value(t)?))
    })
    .await
}
