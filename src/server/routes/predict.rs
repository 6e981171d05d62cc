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
    if body.alias.is_some() && body.version.is_some() {
        return Err(ApiError::unprocessable(
            "give at most one of `alias` and `version`",
        ));
    }
    let req = PredictRequest {
        program: ProgramRef {
            program: checked_program(&st, &body.program)?,
            version: body.version,
            alias: body.alias,
        },
        inputs: body.input,
        no_cache: false,
        ensemble: None,
    };
    let report = predict_job(&st.ctx, req, false).await?;
    Ok(Json(serde_json::to_value(report)?))
}
