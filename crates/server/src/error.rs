//! Every error leaves as JSON `{"detail": "..."}` with a fitting status;
//! internal faults are logged, and clients get no internals.

use axum::extract::rejection::JsonRejection;
use axum::extract::FromRequest;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use logitlens_engine::EngineError;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }
    /// A fault of ours: the client sees a generic message, the log the cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {cause}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal server error (see the server log)",
        )
    }
}

#[derive(Serialize)]
struct Body<'a> {
    detail: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(Body {
                detail: &self.detail,
            }),
        )
            .into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match &e {
            EngineError::InvalidRequest(_)
            | EngineError::Unsupported(_)
            | EngineError::Template(_) => ApiError::bad_request(e.to_string()),
            EngineError::NotFound(_) => ApiError::not_found(e.to_string()),
            // A model whose files are inconsistent: the request named an unusable model.
            EngineError::Model(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
            _ => ApiError::internal(e),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let detail = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "request body too large".to_string(),
            _ => r.body_text(),
        };
        ApiError::new(status, detail)
    }
}

/// `Json` whose rejections use the API's error body.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct AppJson<T>(pub T);

pub type ApiResult<T> = Result<T, ApiError>;
