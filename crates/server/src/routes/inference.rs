//! The inference resource: run the lens on a text (the original's
//! `/inference`), and a recent run's attention fetched when a view needs it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use logitlens_engine::attention::{self, Format, Packed, Reduce};
use logitlens_engine::lens::Lens;
use logitlens_engine::run::mib;
use logitlens_engine::{
    api, Answer, EngineError, InferenceRequest, InferenceResponse, LoadedModel, RunOutput,
    RunRequest, RunSpec, RunState, Timings,
};

use crate::error::{ApiError, ApiResult, AppJson, AppQuery};
use crate::state::{AppState, LastRun, Tensors};
use crate::status::{dtype_name, Backend};
use crate::stream::blocking_body;
use crate::watch::{admit, run_stages, RunWatch};

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

/// Tokenize, check (token limit, memory budget) and run one request off the
/// runtime: the answer, what /save_state and later runs keep of it, and
/// where the time went.
fn run_blocking(
    st: &AppState,
    model: Arc<LoadedModel>,
    backend: Backend,
    req: InferenceRequest,
    watch: &RunWatch,
) -> ApiResult<(Answer, LastRun, Timings)> {
    let max = st.cfg.max_prompt_tokens;
    let ids = model.tokenize(&req.text, req.apply_chat_template)?;
    if ids.len() > max {
        return Err(ApiError::bad_request(format!(
            "the prompt is {} tokens long; this server's limit is {max} tokens (logitlens serve --max-tokens)",
            ids.len()
        )));
    }
    let spec = RunSpec::new(&model, &RunRequest::from(req.clone()), ids)?;
    check_budget(st, &model, &spec)?;
    // Recent runs: a re-run that changes only later interventions takes
    // over their earlier layers.
    let earlier = st.earlier_runs();
    let earlier: Vec<&RunState> = earlier.iter().map(Arc::as_ref).collect();
    let RunOutput {
        answer,
        state,
        timings,
    } = model.run_watched(spec, &earlier, watch)?;
    let last = kept_run(model, backend, &req, &answer, state, json!({}));
    Ok((answer, last, timings))
}

/// What /save_state and later runs keep of a run of `req`: the session
/// config the original wrote, then what reproduces the run (and `more`).
pub(crate) fn kept_run(
    model: Arc<LoadedModel>,
    backend: Backend,
    req: &InferenceRequest,
    answer: &Answer,
    state: RunState,
    more: Value,
) -> LastRun {
    let mut config = json!({
        "text": req.text,
        "interventions": req.interventions,
        "lens_type": req.lens_type,
        "model_name": model.name,
        "backend": backend,
        "apply_chat_template": req.apply_chat_template,
        "results": {"text": answer.text, "logit_lens": answer.logit_lens},
        "return_attention": req.return_attention,
        "input_ids": state.ids,
        "input_tokens": answer.input_tokens,
        "model_source": model.source,
        "compute_dtype": dtype_name(&model),
        // Which lens drew the rows (and, for a tuned one, its folder).
        "lens": state.lens,
        "tuned_lens": (state.lens == Lens::Tuned)
            .then(|| model.tuned_lens().map(|l| l.dir.display().to_string()))
            .flatten(),
        "app": {"name": "logitlens", "version": APP_VERSION},
    });
    if let (Value::Object(c), Value::Object(m)) = (&mut config, more) {
        c.extend(m);
    }
    LastRun {
        config,
        tensors: Tensors::Run {
            run: Arc::new(state),
            with_attention: req.return_attention,
        },
        model: Some(model),
    }
}

/// Refuse a run whose estimated peak memory is over the server's
/// per-request budget, with the numbers and what to change.
pub(crate) fn check_budget(st: &AppState, model: &LoadedModel, spec: &RunSpec) -> ApiResult<()> {
    let cost = spec.cost(model.config(), model.model.dtype().size_in_bytes());
    let budget = st.cfg.max_request_bytes;
    if cost.total() <= budget {
        return Ok(());
    }
    let mut fixes = Vec::new();
    if spec.attention.is_some() {
        fixes.push(format!(
            "leave out return_attention (this prompt's attention, every layer and head, is {} on its own)",
            mib(cost.patterns)
        ));
    }
    if spec.compare {
        fixes.push("leave out compare (it runs the text twice)".into());
    }
    fixes.push(format!("a shorter text than its {} tokens", spec.ids.len()));
    Err(ApiError::bad_request(format!(
        "this request would need about {} ({}); this server allows {} per request \
         (logitlens serve --max-request-mib). To fit: {}",
        mib(cost.total()),
        cost.describe(),
        mib(budget),
        fixes.join("; or ")
    )))
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
    let (model, backend) = st.serving()?;
    st.check_text(&model, "the text", &req.text)?;
    let admitted = match admit(&st, &headers, run_stages).await {
        Ok(a) => a,
        Err(busy) => return Ok(busy),
    };
    let (watch, permit, _cancel) = (admitted.watch, admitted.permit, admitted.cancel);
    let started = Instant::now();
    let (st2, watch2) = (st.clone(), watch.clone());
    let (answer, last, timings) = tokio::task::spawn_blocking(move || {
        // Held to the end of the run, even if this request is gone.
        let _permit = permit;
        run_blocking(&st2, model, backend, req, &watch2)
    })
    .await
    .map_err(ApiError::internal)??;
    st.gate.record(started.elapsed().as_secs_f64());
    let state = last.run().cloned().expect("a run keeps its state");
    let run_id = st.remember_run(Arc::new(last));
    let body = blocking_body(move |w| api::write_response(&answer, &state.capture.patterns, w));
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
    if run.capture.patterns.is_empty() {
        return Err(ApiError::bad_request(format!(
            "run {id} did not keep its attention (it was made without return_attention); \
             run the request with return_attention: true"
        )));
    }
    let layers = q.layers.as_deref().map(parse_layers).transpose()?;
    let n_layers = run.capture.patterns.len();
    let spec = attention::Spec::new(q.format, layers.as_deref(), q.reduce, n_layers)?;
    let body = blocking_body(move |w| {
        let patterns = &run.capture.patterns;
        // As `RunAttention` serialises, with the attention written a layer at a time.
        write!(w, "{{\"run_id\":{id}")?;
        if spec.format == attention::Format::F16 {
            // The packed object's fields, flattened beside run_id.
            let mut packed = Vec::new();
            attention::write_packed(patterns, &spec, &mut packed)?;
            w.write_all(b",")?;
            w.write_all(&packed[1..])?;
        } else {
            let heads = match spec.reduce {
                Reduce::None => patterns[0].dim(0)?,
                Reduce::HeadMean => 1,
            };
            write!(
                w,
                ",\"layers\":{},\"heads\":{heads},\"tokens\":{},\"reduce\":{},\"attention\":",
                serde_json::to_string(&spec.layer_list(n_layers)).map_err(engine_io)?,
                run.ids.len(),
                serde_json::to_string(&spec.reduce).map_err(engine_io)?,
            )?;
            attention::write_nested(patterns, &spec, w)?;
            w.write_all(b"}")?;
        }
        Ok(())
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn engine_io(e: serde_json::Error) -> EngineError {
    EngineError::Io(e.into())
}
