//! `POST /api/v1/predict`: one input through a program version named by
//! alias or number, over `jobs::predict`; the answer names the version that
//! made it.

use super::{checked_program, AppState};
use crate::jobs::{predict as predict_job, PredictRequest};
use crate::program::ProgramRef;
use crate::server::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};

/// One prediction.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictBody {
    /// A registered program's name.
    pub program: String,
    /// The alias naming the version to use.
    pub alias: Option<String>,
    /// Or the version number.
    pub version: Option<i64>,
    /// Or an A/B test (of this program) that routes `key` to a version;
    /// the assignment is stored.
    pub ab_test: Option<String>,
    /// The routing key of `ab_test` (a user or session id).
    pub key: Option<String>,
    /// The program's input fields.
    #[schema(value_type = Object)]
    pub input: Map<String, Value>,
}

#[utoipa::path(post, path = "/api/v1/predict", tag = "predict",
    request_body = PredictBody,
    responses(
        (status = 200, description = "The outputs and the version that produced them", body = Object),
        (status = 404, description = "No such program, alias or version", body = ErrorBody),
        (status = 422, description = "Missing input fields or both alias and version", body = ErrorBody),
        (status = 502, description = "The language model failed", body = ErrorBody),
    ))]
pub async fn predict(
    State(st): State<AppState>,
    ApiJson(body): ApiJson<PredictBody>,
) -> ApiResult<Json<Value>> {
    let chosen = [
        body.alias.is_some(),
        body.version.is_some(),
        body.ab_test.is_some(),
    ];
    if chosen.iter().filter(|c| **c).count() > 1 {
        return Err(ApiError::unprocessable(
            "give at most one of `alias`, `version` and `ab_test`",
        ));
    }
    let ab = match (body.ab_test, body.key) {
        (Some(test), Some(key)) => Some(crate::jobs::AbSelection { test, key }),
        (Some(_), None) => {
            return Err(ApiError::unprocessable(
                "`ab_test` needs `key`, the routing key (a user or session id)",
            ))
        }
        (None, Some(_)) => {
            return Err(ApiError::unprocessable("`key` is only used with `ab_test`"))
        }
        (None, None) => None,
    };
    let req = PredictRequest {
        program: ProgramRef {
            program: checked_program(&st, &body.program)?,
            version: body.version,
            alias: body.alias,
        },
        inputs: body.input,
        no_cache: false,
        ensemble: None,
        ab,
    };
    let report = predict_job(&st.ctx, req, false).await?;
    Ok(Json(serde_json::to_value(report)?))
}
