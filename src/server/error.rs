//! HTTP errors: every failure the API reports is an [`ApiError`], answered
//! as `{"error": message}` with the status that fits it, including malformed
//! JSON bodies ([`ApiJson`]), oversized bodies and panics in handlers.

use crate::error::Error;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// An error answered to a client: a status and a message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

/// The body of every error response.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the request names something it may not (a path outside the data dir).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 422: the body is well-formed JSON but a field's value is not acceptable.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 409: the request conflicts with the resource's state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 404 with the same text as the library's `NotFound`.
    pub fn not_found(kind: &str, name: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{kind} not found: {name}"))
    }
}

/// The status of a library error: what the client did wrong (404, 409, 422),
/// a model that failed (502), or our own fault (500).
impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::PromotionRefused(_) | Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Invalid(_)
            | Error::InvalidTrainset(_)
            | Error::ExamplesDoNotFit(_)
            | Error::Config { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Lm(_) | Error::Prediction(_) | Error::Mlflow(_) => StatusCode::BAD_GATEWAY,
            Error::Db(_) | Error::Migration(_) | Error::Io { .. } | Error::Json(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

/// Serializing our own data failed: our fault.
impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        Error::from(e).into()
    }
}

/// A body that could not be read as the expected JSON: axum's status (400
/// syntax, 413 too large, 415 not JSON, 422 wrong fields, naming the field)
/// with its text as a JSON error.
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::new(r.status(), r.body_text())
    }
}

/// `axum::Json` whose rejections are [`ApiError`]s.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

/// `axum::extract::Path` whose rejections (`/jobs/abc`) are [`ApiError`]s.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(r) => Err(ApiError::new(r.status(), r.body_text())),
        }
    }
}

/// `axum::extract::Query` whose rejections are [`ApiError`]s.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(r) => Err(ApiError::new(r.status(), r.body_text())),
        }
    }
}

/// The response of a panicking handler: a 500 with a JSON message (the
/// panic itself is logged on stderr).
pub fn panic_response(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    eprintln!("error: a request handler panicked: {text}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("internal error: the handler panicked ({text})"),
    )
    .into_response()
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(resp: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_panic_is_a_json_500_with_its_message() {
        let resp = panic_response(Box::new("boom".to_string()));
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_json(resp).await;
        assert!(body["error"].as_str().unwrap().contains("boom"), "{body}");
    }

    #[tokio::test]
    async fn library_errors_get_their_status() {
        let cases = [
            (
                Error::NotFound {
                    kind: "job",
                    name: "7".into(),
                },
                404,
            ),
            (Error::PromotionRefused("worse".into()), 409),
            (Error::Conflict("ended".into()), 409),
            (Error::Invalid("bad".into()), 422),
        ];
        for (e, status) in cases {
            let text = e.to_string();
            let resp = ApiError::from(e).into_response();
            assert_eq!(resp.status().as_u16(), status, "{text}");
            assert_eq!(body_json(resp).await["error"], text);
        }
    }
}
