//! The activation-patching resource: a sweep of one hook over every layer
//! and the positions asked, on the model in service.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use utoipa_axum::{router::OpenApiRouter, routes};

use logitlens_engine::api::{PatchQuery, PatchResponse};
use logitlens_engine::ops::patch::{PatchRequest, PatchSpec};

use crate::admission::admit;
use crate::error::{ApiResult, AppJson};
use crate::routes::inference::no_events;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(patch))
}

/// Activation patching: the corrupted text is run with the hook's
/// activation at one layer and one position taken from the clean text's
/// run, for every layer and every position asked, and the metric read at
/// the last position each time. Progress goes to /events as `patching`
/// run events (patched runs done of all); the sweep stops when its client
/// goes away.
#[utoipa::path(post, path = "/patch", request_body = PatchQuery,
    params(("x-logitlens-request" = Option<String>, Header, description = "Names the request in its `run` progress events on /events")),
    responses((status = 200, body = PatchResponse),
        (status = 400, description = "No model; texts of different token counts; a hook, metric token or position that does not apply; a sweep over the server's limits; each with what to change"),
        (status = 409, description = "model is loading"),
        (status = 503, description = "Too many runs waiting; retry after the Retry-After header's seconds")))]
pub async fn patch(
    State(st): State<AppState>,
    headers: HeaderMap,
    AppJson(query): AppJson<PatchQuery>,
) -> ApiResult<Json<PatchResponse>> {
    let req = PatchRequest::try_from(query)?;
    let served = admit::<PatchSpec>(&st, &headers, req)
        .await?
        .run(no_events)
        .await?;
    Ok(Json(PatchResponse::new(&served.model, served.value)?))
}
