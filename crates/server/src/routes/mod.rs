//! The HTTP API, a router per resource: the model, inference, sessions,
//! PNG exports, session diffs, lens evaluations, patching sweeps and
//! generation. Each route is registered once, with its OpenAPI description
//! (utoipa-axum's `OpenApiRouter`), so /openapi.json lists exactly the
//! routes served. Handlers are thin: heavy work goes through `admission`,
//! the rest validates, runs off the async runtime and shapes the JSON.

pub mod diff;
pub mod eval;
pub mod generate;
pub mod inference;
pub mod lens;
pub mod model;
pub mod patch;
pub mod sae;
pub mod sessions;
pub mod viz;

use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;

/// Every resource's routes, with their OpenAPI paths.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(model::router())
        .merge(lens::router())
        .merge(sae::router())
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
