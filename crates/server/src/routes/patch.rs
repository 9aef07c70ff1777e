//! The activation-patching resource: a sweep of one hook over every layer
//! and the positions asked, on the model in service.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use logitlens_engine::api::{PatchQuery, PatchResponse};
use logitlens_engine::run::{mib, PatchRequest, PatchSpec};
use logitlens_engine::types::Stage;

use crate::error::{ApiError, ApiResult, AppJson};
use crate::state::AppState;
use crate::status::RunStage;
use crate::watch::admit;

pub fn router() -> Router<AppState> {
    Router::new().route("/patch", post(patch))
}

/// Most patched runs (layers × positions) one sweep makes.
pub const MAX_PATCH_RUNS: usize = 16_384;

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
) -> ApiResult<Response> {
    let (model, _) = st.serving()?;
    st.check_text(&model, "clean_text", &query.clean_text)?;
    st.check_text(&model, "corrupted_text", &query.corrupted_text)?;
    let max = st.cfg.max_prompt_tokens;
    let req = PatchRequest::try_from(query)?;
    let admitted = match admit(&st, &headers, |s| {
        (s == Stage::Patch).then_some(RunStage::Patching)
    })
    .await
    {
        Ok(a) => a,
        Err(busy) => return Ok(busy),
    };
    let (watch, permit, _cancel) = (admitted.watch, admitted.permit, admitted.cancel);
    let budget = st.cfg.max_request_bytes;
    let body = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let spec = PatchSpec::new(&model, &req)?;
        let t = spec.clean.len();
        if t > max {
            return Err(ApiError::bad_request(format!(
                "the texts are {t} tokens long; this server's limit is {max} tokens (logitlens serve --max-tokens)"
            )));
        }
        let cfg = model.config();
        let runs = spec.runs(cfg.n_layers);
        if runs > MAX_PATCH_RUNS {
            return Err(ApiError::bad_request(format!(
                "this sweep makes {} layers × {} positions = {runs} patched runs; one sweep makes \
                 at most {MAX_PATCH_RUNS}: list fewer positions",
                cfg.n_layers,
                spec.positions.len()
            )));
        }
        let need = spec.peak_bytes(cfg, model.model.dtype().size_in_bytes());
        if need > budget {
            return Err(ApiError::bad_request(format!(
                "this sweep needs about {} at a time (three runs' captured states of {t} tokens); \
                 this server allows {} per request (logitlens serve --max-request-mib): use shorter texts",
                mib(need),
                mib(budget)
            )));
        }
        let patched = model.patch(&spec, watch.as_ref())?;
        Ok(PatchResponse::new(&model, &spec, patched)?)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(body).into_response())
}
