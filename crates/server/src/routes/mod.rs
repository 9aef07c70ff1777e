//! The HTTP API, a router per resource: the model, inference, sessions,
//! PNG exports, session diffs, lens evaluations, patching sweeps and generation. Handlers are thin: they validate, run the
//! engine off the async runtime, and shape the JSON.

pub mod diff;
pub mod eval;
pub mod generate;
pub mod inference;
pub mod model;
pub mod patch;
pub mod sessions;
pub mod viz;

use axum::http::StatusCode;
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// Every resource's routes.
pub fn api() -> Router<AppState> {
    Router::new()
        .merge(model::router())
        .merge(inference::router())
        .merge(sessions::router())
        .merge(viz::router())
        .merge(diff::router())
        .merge(eval::router())
        .merge(patch::router())
        .merge(generate::router())
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed for this endpoint",
    )
}
