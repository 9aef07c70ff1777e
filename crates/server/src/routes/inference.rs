//! The inference resource: run the lens on a text (the original's
//! `/inference`), and a recent run's attention fetched when a view needs it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use logitlens_engine::api::{InferenceBatchRequest, InferenceBatchResponse};
use logitlens_engine::attention::{self, Attention, Format, Nested, Packed, Reduce};
use logitlens_engine::ops::run::batch::{BatchOutput, BatchSpec};
use logitlens_engine::ops::Never;
use logitlens_engine::{InferenceRequest, InferenceResponse, RunOutput, RunRequest, RunSpec};

use crate::admission::{admit, Served};
use crate::error::{ApiError, ApiResult, AppJson, AppQuery};
use crate::sessions::SessionConfig;
use crate::state::{AppState, LastRun};
use crate::stream::json_body;

/// Response header of /inference naming the run, for /save_state's `run_id`.
pub const RUN_ID_HEADER: &str = "x-logitlens-run-id";

/// Response header of /inference: how many layers were taken over from an
/// earlier run instead of recomputed (0 for a cold run).
pub const REUSED_LAYERS_HEADER: &str = "x-logitlens-reused-layers";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(inference))
        .routes(routes!(inference_batch))
        .routes(routes!(run_attention))
}

/// An operation that hands nothing over while it runs.
pub(crate) fn no_events(e: Never) -> logitlens_engine::Result<()> {
    match e {}
}

#[utoipa::path(post, path = "/inference", request_body = InferenceRequest,
    params(("x-logitlens-request" = Option<String>, Header, description = "Names the request in its `run` progress events on /events")),
    responses((status = 200, body = InferenceResponse,
        headers(("x-logitlens-run-id" = u64, description = "The run, for /save_state's run_id and /runs/{run_id}/attention"),
                ("x-logitlens-reused-layers" = usize, description = "Layers taken over from an earlier run"))),
        (status = 400, description = "A bad request, with what to fix (a prompt over the token limit or the memory budget included)"),
        (status = 409, description = "model is loading"),
        (status = 503, description = "Too many runs waiting; retry after the Retry-After header's seconds")))]
pub async fn inference(
    State(st): State<AppState>,
    headers: HeaderMap,
    AppJson(req): AppJson<InferenceRequest>,
) -> ApiResult<Response> {
    let admitted = admit::<RunSpec>(&st, &headers, RunRequest::from(req.clone())).await?;
    let Served {
        model,
        backend,
        value: out,
        ..
    } = admitted.run(no_events).await?;
    let RunOutput {
        answer,
        state,
        timings,
    } = out;
    let body = InferenceResponse::new(answer, &state.capture.patterns)?;
    let config = SessionConfig::of_run(&model, backend, &req, &body, &state);
    let state = Arc::new(state);
    let run_id = st.remember_run(Arc::new(LastRun::of_run(
        model,
        config,
        state,
        req.return_attention,
    )));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (
                header::HeaderName::from_static(RUN_ID_HEADER),
                run_id.to_string(),
            ),
            (
                header::HeaderName::from_static(REUSED_LAYERS_HEADER),
                timings.reused_layers.to_string(),
            ),
            // Shown by browsers' developer tools next to the request.
            (
                header::HeaderName::from_static("server-timing"),
                format!(
                    "forward;dur={:.1}, lens;dur={:.1}, topk;dur={:.1}",
                    ms(timings.forward),
                    ms(timings.lens_projection),
                    ms(timings.topk_decode),
                ),
            ),
        ],
        json_body(body),
    )
        .into_response())
}

/// Response header of /inference_batch: each prompt's run, in request
/// order, comma-separated (for /save_state's `run_id`).
pub const RUN_IDS_HEADER: &str = "x-logitlens-run-ids";

#[utoipa::path(post, path = "/inference_batch", request_body = InferenceBatchRequest,
    params(("x-logitlens-request" = Option<String>, Header, description = "Names the request in its `run` progress events on /events")),
    responses((status = 200, body = InferenceBatchResponse,
        headers(("x-logitlens-run-ids" = String, description = "Each prompt's run, comma-separated in request order, for /save_state's run_id"))),
        (status = 400, description = "A bad request, with what to fix, naming the prompt (a prompt over the token limit, or the prompts together over the memory budget, included)"),
        (status = 409, description = "model is loading"),
        (status = 503, description = "Too many runs waiting; retry after the Retry-After header's seconds")))]
/// Several /inference runs in one request, one answer each: the prompts go
/// through the model as padded batches, each under its own interventions.
pub async fn inference_batch(
    State(st): State<AppState>,
    headers: HeaderMap,
    AppJson(req): AppJson<InferenceBatchRequest>,
) -> ApiResult<Response> {
    let requests = req.requests.clone();
    let admitted = admit::<BatchSpec>(&st, &headers, req.into()).await?;
    let Served {
        model,
        backend,
        value: out,
        ..
    } = admitted.run(no_events).await?;
    let BatchOutput { runs, passes } = out;
    let mut run_ids = Vec::with_capacity(runs.len());
    let mut answered = Vec::with_capacity(runs.len());
    for (req, RunOutput { answer, state, .. }) in requests.iter().zip(runs) {
        let body = InferenceResponse::new(answer, &state.capture.patterns)?;
        let config = SessionConfig::of_run(&model, backend, req, &body, &state);
        let state = Arc::new(state);
        run_ids.push(st.remember_run(Arc::new(LastRun::of_run(
            model.clone(),
            config,
            state,
            req.return_attention,
        ))));
        answered.push(body);
    }
    let ids: Vec<String> = run_ids.iter().map(u64::to_string).collect();
    let body = InferenceBatchResponse {
        results: answered,
        passes,
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (
                header::HeaderName::from_static(RUN_IDS_HEADER),
                ids.join(","),
            ),
        ],
        json_body(body),
    )
        .into_response())
}

/// Query of GET /runs/{run_id}/attention.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttentionQuery {
    /// Comma-separated layer indices (default: every layer).
    pub layers: Option<String>,
    /// json (default) or f16.
    pub format: Option<Format>,
    /// none (default) or head_mean.
    pub reduce: Option<Reduce>,
}

/// The attention of a kept run: the nested numbers or the compact form.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum RunAttention {
    Nested {
        run_id: u64,
        layers: Vec<usize>,
        heads: usize,
        tokens: usize,
        /// none or head_mean.
        reduce: Reduce,
        /// `[layer][head][query][key]`.
        #[schema(value_type = Vec<Vec<Vec<Vec<f32>>>>)]
        attention: Nested,
    },
    Compact {
        run_id: u64,
        #[serde(flatten)]
        packed: Packed,
    },
}

/// A comma-separated list of layer indices.
fn parse_layers(s: &str) -> ApiResult<Vec<i64>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.trim().parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "layers: {p:?} is not a layer index (use e.g. layers=0,5)"
                ))
            })
        })
        .collect()
}

/// The attention of a recent run, fetched when a view needs it, so
/// /inference can answer with only what the first view shows.
#[utoipa::path(get, path = "/runs/{run_id}/attention",
    params(("run_id" = u64, Path, description = "from /inference's x-logitlens-run-id header"), AttentionQuery),
    responses((status = 200, body = RunAttention),
        (status = 404, description = "Unknown or no longer kept run"), (status = 400, description = "Bad layers, format or reduce")))]
pub async fn run_attention(
    State(st): State<AppState>,
    Path(run_id): Path<String>,
    AppQuery(q): AppQuery<AttentionQuery>,
) -> ApiResult<Response> {
    let id: u64 = run_id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("run id {run_id:?} is not a number")))?;
    let gone = || {
        ApiError::not_found(format!(
            "run {id} is not kept on the server (only the most recent runs are); run the request again"
        ))
    };
    let run = st.run(id).and_then(|r| r.run().cloned()).ok_or_else(gone)?;
    let patterns = &run.capture.patterns;
    if patterns.is_empty() {
        return Err(ApiError::bad_request(format!(
            "run {id} did not keep its attention (it was made without return_attention); \
             run the request with return_attention: true"
        )));
    }
    let layers = q.layers.as_deref().map(parse_layers).transpose()?;
    let spec = attention::Spec::new(q.format, layers.as_deref(), q.reduce, patterns.len())?;
    let body = match Attention::of(patterns, &spec)? {
        Attention::Packed(packed) => RunAttention::Compact { run_id: id, packed },
        Attention::Nested(attention) => RunAttention::Nested {
            run_id: id,
            layers: spec.layer_list(patterns.len()),
            heads: match spec.reduce {
                Reduce::None => patterns[0].dim(0).map_err(ApiError::internal)?,
                Reduce::HeadMean => 1,
            },
            tokens: run.ids.len(),
            reduce: spec.reduce,
            attention,
        },
    };
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        json_body(body),
    )
        .into_response())
}
