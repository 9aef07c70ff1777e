//! Every error leaves as JSON `{"detail": "..."}` with a fitting status;
//! internal faults are logged, and clients get no internals.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use logitlens_engine::EngineError;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    /// Seconds to wait before trying again (a 503's Retry-After).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            retry_after: None,
        }
    }
    /// 503: too busy now; come back in `retry_after_secs`.
    pub fn busy(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after_secs),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
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
        let body = Json(Body {
            detail: &self.detail,
        });
        match self.retry_after {
            Some(secs) => (
                self.status,
                [(axum::http::header::RETRY_AFTER, secs.to_string())],
                body,
            )
                .into_response(),
            None => (self.status, body).into_response(),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match &e {
            EngineError::InvalidRequest(_)
            | EngineError::OverLimit(_)
            | EngineError::Unsupported(_)
            | EngineError::Template(_) => ApiError::bad_request(e.to_string()),
            EngineError::NotFound(_) => ApiError::not_found(e.to_string()),
            // The machine cannot hold it now; the model in service stays.
            EngineError::TooLarge(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            // A model whose files are inconsistent: the request named an unusable model.
            EngineError::Model(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
            // Nobody is left to read it: nginx's "client closed request".
            EngineError::Cancelled => ApiError::new(
                StatusCode::from_u16(499).expect("a valid status"),
                "the client went away; the run was stopped",
            ),
            _ => ApiError::internal(e),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let text = r.body_text();
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(status, "request body too large"),
            // A value outside an enum (lens_type, backend, attention_format...)
            // is a bad request naming the allowed values, as before the
            // fields were typed.
            _ => match unknown_value(&text) {
                Some(detail) => ApiError::bad_request(detail),
                None => ApiError::new(status, text),
            },
        }
    }
}

/// serde's "field: unknown variant `x`, expected one of `a`, `b`" as
/// `unknown field "x" (known: a, b)`.
fn unknown_value(msg: &str) -> Option<String> {
    let (before, after) = msg.split_once("unknown variant `")?;
    let (value, rest) = after.split_once('`')?;
    let expected = rest.split_once("expected ")?.1;
    let expected = expected.split(" at line").next()?;
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let field = before
        .trim_end()
        .trim_end_matches(':')
        .rsplit(": ")
        .next()
        .filter(|f| !f.is_empty() && !f.contains(' '))
        .unwrap_or("value");
    Some(format!(
        "unknown {field} {value:?} (known: {})",
        known.join(", ")
    ))
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        let text = r.body_text();
        ApiError::bad_request(unknown_value(&text).unwrap_or(text))
    }
}

/// `Query` whose rejections use the API's error body.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct AppQuery<T>(pub T);

/// A JSON body, as axum's `Json` reads it, whose rejections use the API's
/// error body, and which must be a JSON object: serde would also read a
/// struct from an array of its fields in order.
pub struct AppJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            })
            .unwrap_or(false);
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expected request with `Content-Type: application/json`",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| match r.status() {
                StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::new(r.status(), "request body too large")
                }
                status => ApiError::new(status, r.body_text()),
            })?;
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => {}
            // Not JSON at all is the parser's to say; anything else is the wrong shape.
            Some(b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9') => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "the request body must be a JSON object",
                ))
            }
            _ => {}
        }
        Ok(AppJson(Json::<T>::from_bytes(&bytes)?.0))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_enum_values_name_the_allowed_ones() {
        let m = "Failed to deserialize the JSON body into the target type: lens_type: unknown variant `diagonal`, \
                 expected one of `block_output`, `post_attention`, `combined` at line 1 column 33";
        assert_eq!(
            unknown_value(m).unwrap(),
            "unknown lens_type \"diagonal\" (known: block_output, post_attention, combined)"
        );
        let m = "Failed to deserialize the query string: format: unknown variant `png`, expected `json` or `f16`";
        assert_eq!(
            unknown_value(m).unwrap(),
            "unknown format \"png\" (known: json, f16)"
        );
        assert!(unknown_value("missing field `text`").is_none());
    }
}
