//! The inference resource: run the lens on a text (the original's
//! `/inference`), and a recent run's attention fetched when a view needs it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use logitlens_engine::attention::{self, Format, Packed, Reduce};
use logitlens_engine::{
    InferenceRequest, InferenceResponse, LoadedModel, RunOutput, RunRequest, RunSpec, RunState,
    Timings,
};

use crate::error::{ApiError, ApiResult, AppJson, AppQuery};
use crate::state::{AppState, LastRun, Tensors};
use crate::status::{dtype_name, Backend};

pub const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Response header of /inference naming the run, for /save_state's `run_id`.
pub const RUN_ID_HEADER: &str = "x-logitlens-run-id";

/// Response header of /inference: how many layers were taken over from an
/// earlier run instead of recomputed (0 for a cold run).
pub const REUSED_LAYERS_HEADER: &str = "x-logitlens-reused-layers";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inference", post(inference))
        .route("/runs/{run_id}/attention", get(run_attention))
}

/// Tokenize, check and run one request off the runtime: the response body,
/// what /save_state and later runs keep of it, and where the time went.
fn run_blocking(
    st: &AppState,
    model: Arc<LoadedModel>,
    backend: Backend,
    req: InferenceRequest,
) -> ApiResult<(Vec<u8>, LastRun, Timings)> {
    let max = st.cfg.max_prompt_tokens;
    let ids = model.tokenize(&req.text, req.apply_chat_template)?;
    if ids.len() > max {
        return Err(ApiError::bad_request(format!(
            "the prompt is {} tokens long; this server's limit is {max} tokens (logitlens serve --max-tokens)",
            ids.len()
        )));
    }
    // The session config the original wrote, then what reproduces the run.
    let mut config = json!({
        "text": req.text,
        "interventions": req.interventions,
        "lens_type": req.lens_type,
        "model_name": model.name,
        "backend": backend,
        "apply_chat_template": req.apply_chat_template,
    });
    let with_attention = req.return_attention;
    // Recent runs: a re-run that changes only later interventions takes
    // over their earlier layers.
    let earlier = if st.cfg.reuse_runs {
        st.kept_runs()
    } else {
        Vec::new()
    };
    let earlier: Vec<&RunState> = earlier.iter().map(Arc::as_ref).collect();
    let spec = RunSpec::new(&model, &RunRequest::from(req), ids)?;
    let RunOutput {
        answer,
        state,
        timings,
    } = model.run_spec(spec, &earlier)?;
    let response = InferenceResponse::from(answer);
    let body = serde_json::to_vec(&response).map_err(ApiError::internal)?;
    let more = json!({
        "results": {"text": response.text, "logit_lens": response.logit_lens},
        "return_attention": with_attention,
        "input_ids": state.ids,
        "input_tokens": response.input_tokens,
        "model_source": model.source,
        "compute_dtype": dtype_name(&model),
        "app": {"name": "logitlens", "version": APP_VERSION},
    });
    if let (Value::Object(c), Value::Object(m)) = (&mut config, more) {
        c.extend(m);
    }
    let last = LastRun {
        config,
        tensors: Tensors::Run {
            run: Arc::new(state),
            with_attention,
        },
        model: Some(model),
    };
    Ok((body, last, timings))
}

#[utoipa::path(post, path = "/inference", request_body = InferenceRequest,
    responses((status = 200, body = InferenceResponse,
        headers(("x-logitlens-run-id" = u64, description = "The run, for /save_state's run_id and /runs/{run_id}/attention"),
                ("x-logitlens-reused-layers" = usize, description = "Layers taken over from an earlier run"))),
        (status = 400, description = "A bad request, with what to fix"), (status = 409, description = "model is loading")))]
pub async fn inference(
    State(st): State<AppState>,
    AppJson(req): AppJson<InferenceRequest>,
) -> ApiResult<Response> {
    if st.is_loading() {
        return Err(ApiError::conflict("model is loading"));
    }
    let (model, backend) = st
        .active()
        .ok_or_else(|| ApiError::bad_request("Model not loaded"))?;
    let st2 = st.clone();
    let (body, last, timings) =
        tokio::task::spawn_blocking(move || run_blocking(&st2, model, backend, req))
            .await
            .map_err(ApiError::internal)??;
    let run_id = st.remember_run(Arc::new(last));
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
                    "forward;dur={:.1}, lens;dur={:.1}, topk;dur={:.1}, attention;dur={:.1}",
                    ms(timings.forward),
                    ms(timings.lens_projection),
                    ms(timings.topk_decode),
                    ms(timings.attention)
                ),
            ),
        ],
        body,
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
        attention: Vec<Vec<Vec<Vec<f32>>>>,
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
    let layers = q.layers.as_deref().map(parse_layers).transpose()?;
    let body = tokio::task::spawn_blocking(move || -> ApiResult<Vec<u8>> {
        let patterns = &run.capture.patterns;
        let spec = attention::Spec::new(q.format, layers.as_deref(), q.reduce, patterns.len())?;
        // Serialised from typed values, so f32s print as /inference prints them.
        let body = match attention::render(patterns, &spec)? {
            attention::Attention::Packed(packed) => RunAttention::Compact { run_id: id, packed },
            attention::Attention::Nested(a) => RunAttention::Nested {
                run_id: id,
                layers: spec.layer_list(patterns.len()),
                heads: a.first().map_or(0, |l| l.len()),
                tokens: run.ids.len(),
                reduce: spec.reduce,
                attention: a,
            },
        };
        serde_json::to_vec(&body).map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
