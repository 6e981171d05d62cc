//! `/api/v1/programs/...`: the program registry over `crate::registry` —
//! programs, versions, a version's detail, promote (with the evidence gate;
//! a refusal is 409 with its reason) and rollback. Alias moves go through the
//! store writer like every other write of the process.

use super::{blocking, AppState};
use crate::registry::{self, EvidenceGate, GateRule, PromoteRequest};
use crate::server::error::{ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::store::Split;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

#[utoipa::path(get, path = "/api/v1/programs", tag = "registry",
    responses((status = 200, description = "Registered programs with their version counts", body = Vec<Object>)))]
pub async fn programs(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    blocking(move || {
        Ok(Json(serde_json::to_value(
            st.ctx.reader()?.list_programs()?,
        )?))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/programs/{name}/versions", tag = "registry",
    params(("name" = String, Path, description = "The program")),
    responses(
        (status = 200, description = "Its versions, newest first, with their aliases", body = Vec<Object>),
        (status = 404, description = "No such program", body = ErrorBody),
    ))]
pub async fn versions(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let reader = st.ctx.reader()?;
        Ok(Json(serde_json::to_value(registry::list_versions(
            &reader, &name,
        )?)?))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/programs/{name}/versions/{version}", tag = "registry",
    params(("name" = String, Path, description = "The program"),
           ("version" = i64, Path, description = "The version number")),
    responses(
        (status = 200, description = "The version: spec, aliases, lineage, scores", body = Object),
        (status = 404, description = "No such program or version", body = ErrorBody),
    ))]
pub async fn version(
    State(st): State<AppState>,
    ApiPath((name, version)): ApiPath<(String, i64)>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let reader = st.ctx.reader()?;
        Ok(Json(serde_json::to_value(registry::version_detail(
            &reader, &name, version,
        )?)?))
    })
    .await
}

/// `POST .../aliases/{alias}/promote`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteBody {
    /// The version number to point the alias at.
    pub version: i64,
    pub reason: Option<String>,
    /// Require a stored comparison showing the version no worse than the
    /// alias's current one (the evidence gate).
    #[serde(default)]
    pub require_better: bool,
    /// The split of that comparison (default test).
    #[schema(value_type = Option<String>, example = "test")]
    pub split: Option<Split>,
    /// How much worse the new version may be (default 0).
    #[schema(minimum = 0.0)]
    pub margin: Option<f64>,
    /// `mean` (default) or `interval`.
    #[schema(value_type = Option<String>, example = "mean")]
    pub rule: Option<GateRule>,
}

#[utoipa::path(post, path = "/api/v1/programs/{name}/aliases/{alias}/promote", tag = "registry",
    params(("name" = String, Path, description = "The program"),
           ("alias" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "The alias to move")),
    request_body = PromoteBody,
    responses(
        (status = 200, description = "The move that was made", body = Object),
        (status = 404, description = "No such program or version", body = ErrorBody),
        (status = 409, description = "Promotion refused by the evidence gate", body = ErrorBody),
    ))]
pub async fn promote(
    State(st): State<AppState>,
    ApiPath((name, alias)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PromoteBody>,
) -> ApiResult<Json<Value>> {
    if let Some(m) = body.margin {
        if !(m.is_finite() && m >= 0.0) {
            return Err(crate::server::error::ApiError::unprocessable(format!(
                "field `margin`: {m} is out of range; expected 0 or more"
            )));
        }
    }
    let gate = body.require_better.then(|| EvidenceGate {
        split: body.split.unwrap_or(Split::Test),
        margin: body.margin.unwrap_or(0.0),
        rule: body.rule.unwrap_or_default(),
    });
    let req = PromoteRequest {
        program: name,
        version: body.version,
        alias,
        reason: body.reason,
        gate,
    };
    blocking(move || {
        let report = st.ctx.writer.call(move |s| registry::promote(s, &req))?;
        st.ctx.writer.flush()?;
        Ok(Json(serde_json::to_value(report)?))
    })
    .await
}

/// `POST .../aliases/{alias}/rollback`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The version to point back to (default: the one before the latest move).
    pub to: Option<i64>,
    pub reason: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/programs/{name}/aliases/{alias}/rollback", tag = "registry",
    params(("name" = String, Path, description = "The program"),
           ("alias" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "The alias to move back")),
    request_body = RollbackBody,
    responses(
        (status = 200, description = "The move that was made", body = Object),
        (status = 404, description = "No such program, alias or version", body = ErrorBody),
        (status = 422, description = "Nothing to roll back to", body = ErrorBody),
    ))]
pub async fn rollback(
    State(st): State<AppState>,
    ApiPath((name, alias)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let report = st
            .ctx
            .writer
            .call(move |s| registry::rollback(s, &name, &alias, body.to, body.reason.as_deref()))?;
        st.ctx.writer.flush()?;
        Ok(Json(serde_json::to_value(report)?))
    })
    .await
}
