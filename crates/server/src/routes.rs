//! The HTTP handlers: thin wrappers that validate, run the engine off the
//! async runtime, and shape the original tool's JSON.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};

use logitlens_engine::default_model;
use logitlens_engine::{
    BackendKind, InferenceRequest, InferenceResponse, LensType, LoadOptions, LoadedModel,
};

use crate::error::{ApiError, ApiResult, AppJson};
use crate::models::{self, ModelEntry};
use crate::sessions::SessionEntry;
use crate::state::{Active, AppState, LastRun, LoadingStatus, Tensors};
use crate::viz;

pub const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Response header of /inference naming the run, for /save_state's `run_id`.
pub const RUN_ID_HEADER: &str = "x-logitlens-run-id";

/// Response header of /inference: how many layers were taken over from an
/// earlier run instead of recomputed (0 for a cold run).
pub const REUSED_LAYERS_HEADER: &str = "x-logitlens-reused-layers";

/// Backend names the API accepts; `transformerlens` is the original's name
/// for what is `hooked` here.
/// The name is echoed back as given, as the original echoed it.
fn check_backend(b: &str) -> ApiResult<BackendKind> {
    BackendKind::parse(b).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown backend {b:?} (known: {})",
            BackendKind::NAMES
        ))
    })
}

fn same_backend(a: &str, b: &str) -> bool {
    BackendKind::parse(a) == BackendKind::parse(b)
}

/// The model description /model_status and /load_model report.
pub fn model_info(m: &LoadedModel, backend: &str) -> Value {
    let c = m.info();
    json!({
        "loaded": true,
        "backend": backend,
        "model_name": m.name,
        "model_class": c.model_class,
        "family": c.family,
        "config": c.config,
        "num_layers": c.num_layers,
        "hidden_size": c.hidden_size,
        "num_heads": c.num_heads,
        "vocab_size": c.vocab_size,
        "compute_dtype": format!("{:?}", m.model.dtype()).to_lowercase(),
        "source": m.source,
        "has_chat_template": m.tokenizer.chat_template.is_some(),
        "instruct": models::is_instruct(&m.name),
    })
}

#[utoipa::path(get, path = "/model_status", responses((status = 200, description = "The loaded model and any load in progress")))]
pub async fn model_status(State(st): State<AppState>) -> Json<Value> {
    Json(st.status())
}

fn default_model_name() -> String {
    default_model::FILE_NAME.into()
}
fn default_backend() -> String {
    "custom".into()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoadModelRequest {
    /// A Hub repo id (org/name[@revision]), a local folder, a .gguf path or a
    /// .gguf file name in the models folder. Default: the SmolLM2 GGUF.
    #[serde(default = "default_model_name")]
    pub model_name: String,
    #[serde(default = "default_backend")]
    pub backend: String,
}

/// Load `name` off the runtime, reporting progress; the previous model stays
/// in service until the new one is ready, and stays if the load fails.
pub async fn load(st: &AppState, name: String, backend: String) -> ApiResult<Arc<LoadedModel>> {
    let _guard = st.load_lock.lock().await;
    if let Some((m, b)) = st.active() {
        if m.name == name && same_backend(&b, &backend) {
            return Ok(m);
        }
    }
    let kind = check_backend(&backend)?;
    st.set_loading(Some(LoadingStatus::new(&name, &backend)));
    let st2 = st.clone();
    let name2 = name.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut last_sent = Instant::now() - Duration::from_secs(1);
        let mut last_stage = String::new();
        let opts = LoadOptions {
            backend: kind,
            dtype: st2.cfg.compute_dtype,
            ..Default::default()
        };
        LoadedModel::load_with(&name2, opts, &mut |e| {
            let stage = {
                let mut l = st2.loading.lock().expect("state lock");
                let Some(s) = l.as_mut() else { return };
                s.apply(&e);
                s.stage.clone()
            };
            // Throttled, but every stage change is sent.
            if stage != last_stage || last_sent.elapsed() > Duration::from_millis(100) {
                last_stage = stage;
                last_sent = Instant::now();
                st2.broadcast_status();
            }
        })
    })
    .await
    .map_err(ApiError::internal)?;
    match result {
        Ok(m) => {
            let m = Arc::new(m);
            *st.active.write().expect("state lock") = Some(Active {
                model: m.clone(),
                backend,
            });
            *st.last_error.lock().expect("state lock") = None;
            st.set_loading(None);
            tracing::info!("model {name} loaded");
            Ok(m)
        }
        Err(e) => {
            let err = ApiError::from(e);
            let msg = format!("failed to load {name}: {}", err.detail);
            tracing::warn!("{msg}");
            *st.last_error.lock().expect("state lock") = Some(msg.clone());
            st.set_loading(None);
            Err(ApiError::new(err.status, msg))
        }
    }
}

#[utoipa::path(post, path = "/load_model", request_body = LoadModelRequest,
    responses((status = 200, description = "loaded or already_loaded"), (status = 400), (status = 404)))]
pub async fn load_model(
    State(st): State<AppState>,
    AppJson(req): AppJson<LoadModelRequest>,
) -> ApiResult<Json<Value>> {
    check_backend(&req.backend)?;
    let backend = req.backend.clone();
    if let Some((m, b)) = st.active() {
        if m.name == req.model_name && same_backend(&b, &backend) {
            let mut v = model_info(&m, &b);
            v.as_object_mut()
                .expect("object")
                .insert("status".into(), "already_loaded".into());
            return Ok(Json(v));
        }
    }
    let m = load(&st, req.model_name, backend.clone()).await?;
    let mut v = model_info(&m, &backend);
    v.as_object_mut()
        .expect("object")
        .insert("status".into(), "loaded".into());
    Ok(Json(v))
}

/// The session config the original wrote, plus what reproduces the run.
fn run_config(
    req: &InferenceRequest,
    model: &LoadedModel,
    backend: &str,
    resp: &InferenceResponse,
    ids: &[u32],
) -> Value {
    json!({
        "text": req.text,
        "interventions": req.interventions,
        "lens_type": req.lens_type,
        "model_name": model.name,
        "backend": backend,
        "apply_chat_template": req.apply_chat_template,
        "results": {"text": resp.text, "logit_lens": resp.logit_lens},
        "return_attention": req.return_attention,
        "input_ids": ids,
        "input_tokens": resp.input_tokens,
        "model_source": model.source,
        "compute_dtype": format!("{:?}", model.model.dtype()).to_lowercase(),
        "app": {"name": "logitlens", "version": APP_VERSION},
    })
}

#[utoipa::path(post, path = "/inference", request_body = InferenceRequest,
    responses((status = 200, body = InferenceResponse), (status = 400), (status = 409, description = "model is loading")))]
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
    let lens_type = LensType::parse(&req.lens_type).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown lens_type {:?} (known: {})",
            req.lens_type,
            LensType::NAMES
        ))
    })?;
    let max = st.cfg.max_prompt_tokens;
    // Recent runs of this model: a re-run that changes only later
    // interventions takes over their earlier layers.
    let earlier: Vec<Arc<LastRun>> = st
        .runs
        .lock()
        .expect("state lock")
        .iter()
        .rev()
        .filter(|_| st.cfg.reuse_runs)
        .filter(|(_, r)| matches!(&r.tensors, Tensors::Run { run, .. } if run.model_id == model.id))
        .map(|(_, r)| r.clone())
        .collect();
    let (body, last) = tokio::task::spawn_blocking(move || -> ApiResult<(Vec<u8>, LastRun)> {
        let ids = model.tokenize(&req)?;
        if ids.len() > max {
            return Err(ApiError::bad_request(format!(
                "the prompt is {} tokens long; this server's limit is {max} tokens (logitlens serve --max-tokens)",
                ids.len()
            )));
        }
        let earlier: Vec<&logitlens_engine::RunOutput> = earlier
            .iter()
            .filter_map(|r| match &r.tensors {
                Tensors::Run { run, .. } => Some(run.as_ref()),
                _ => None,
            })
            .collect();
        let run = model.run_ids_reusing(&req, lens_type, ids, &earlier)?;
        let body = serde_json::to_vec(&run.response).map_err(ApiError::internal)?;
        let config = run_config(&req, &model, &backend, &run.response, &run.ids);
        let tensors = Tensors::Run { run: Arc::new(run), with_attention: req.return_attention };
        Ok((body, LastRun { config, tensors, model: Some(model) }))
    })
    .await
    .map_err(ApiError::internal)??;
    let timings = match &last.tensors {
        Tensors::Run { run, .. } => run.timings,
        _ => Default::default(),
    };
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
pub struct AttentionQuery {
    /// Comma-separated layer indices (default: every layer).
    pub layers: Option<String>,
    /// json (default) or f16.
    pub format: Option<String>,
    /// none (default) or head_mean.
    pub reduce: Option<String>,
}

/// The attention of a recent run, fetched when a view needs it, so
/// /inference can answer with only what the first view shows.
#[utoipa::path(get, path = "/runs/{run_id}/attention", params(("run_id" = u64, Path, description = "from /inference's x-logitlens-run-id header"), AttentionQuery),
    responses((status = 200, description = "{run_id, layers, heads, tokens, reduce, data (f16) | attention (json)}"),
        (status = 404, description = "Unknown or no longer kept run"), (status = 400, description = "Bad layers, format or reduce")))]
pub async fn run_attention(
    State(st): State<AppState>,
    axum::extract::Path(run_id): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<AttentionQuery>,
) -> ApiResult<Response> {
    let id: u64 = run_id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("run id {run_id:?} is not a number")))?;
    let gone = || {
        ApiError::not_found(format!(
            "run {id} is not kept on the server (only the most recent runs are); run the request again"
        ))
    };
    let last = st.run(id).ok_or_else(gone)?;
    let Tensors::Run { run, .. } = &last.tensors else {
        return Err(gone());
    };
    let run = run.clone();
    let layers = q
        .layers
        .as_deref()
        .map(|s| {
            s.split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| {
                    p.trim().parse::<i64>().map_err(|_| {
                        ApiError::bad_request(format!(
                            "layers: {p:?} is not a layer index (use e.g. layers=0,5)"
                        ))
                    })
                })
                .collect::<ApiResult<Vec<i64>>>()
        })
        .transpose()?;
    let body = tokio::task::spawn_blocking(move || -> ApiResult<Vec<u8>> {
        use logitlens_engine::attention;
        let patterns = &run.capture.patterns;
        let spec = attention::Spec::new(
            q.format.as_deref(),
            layers.as_deref(),
            q.reduce.as_deref(),
            patterns.len(),
        )?;
        // Serialised from typed values, so f32s print as /inference prints them.
        #[derive(serde::Serialize)]
        struct Nested {
            run_id: u64,
            layers: Vec<usize>,
            heads: usize,
            tokens: usize,
            reduce: &'static str,
            attention: Vec<Vec<Vec<Vec<f32>>>>,
        }
        #[derive(serde::Serialize)]
        struct Compact {
            run_id: u64,
            #[serde(flatten)]
            packed: attention::Packed,
        }
        let body = if spec.format == attention::Format::F16 {
            serde_json::to_vec(&Compact {
                run_id: id,
                packed: attention::to_packed(patterns, &spec)?,
            })
        } else {
            let a = attention::to_json(patterns, &spec)?;
            serde_json::to_vec(&Nested {
                run_id: id,
                layers: spec.layer_list(patterns.len()),
                heads: a.first().map_or(0, |l| l.len()),
                tokens: run.ids.len(),
                reduce: spec.reduce.as_str(),
                attention: a,
            })
        };
        body.map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct SaveStateRequest {
    #[serde(default)]
    pub name: Option<String>,
    /// The run to save, from /inference's `x-logitlens-run-id` header.
    /// Without it, the server's last run or loaded session (as the original).
    #[serde(default)]
    pub run_id: Option<u64>,
}

#[utoipa::path(post, path = "/save_state", request_body = SaveStateRequest,
    responses((status = 200, description = "{status, session_id, path}"), (status = 400, description = "No state to save")))]
pub async fn save_state(
    State(st): State<AppState>,
    AppJson(req): AppJson<SaveStateRequest>,
) -> ApiResult<Json<Value>> {
    let last = match req.run_id {
        Some(id) => st.run(id).ok_or_else(|| {
            ApiError::not_found(format!(
                "run {id} is no longer kept (the server keeps the last {} runs); run it again, then save",
                crate::state::KEPT_RUNS
            ))
        })?,
        None => st.last_run.lock().expect("state lock").clone().ok_or_else(|| ApiError::bad_request("No state to save"))?,
    };
    let st2 = st.clone();
    let id = tokio::task::spawn_blocking(move || -> ApiResult<String> {
        let npz = match &last.tensors {
            Tensors::Run {
                run,
                with_attention,
            } => Some(crate::npz::run_npz(run, *with_attention).map_err(ApiError::internal)?),
            Tensors::File(b) => Some(b.to_vec()),
            Tensors::None => None,
        };
        let mut config = last.config.clone();
        if let Some(m) = &last.model {
            // Hashed at save time, once per model: the first run stays fast.
            let sha = m.weights_sha256().map_err(ApiError::internal)?;
            config["model_source"]["weights_sha256"] = Value::String(sha);
        }
        st2.sessions
            .save(req.name.as_deref(), &config, npz.as_deref())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(
        json!({"status": "saved", "session_id": id, "path": format!("saved_states/{id}")}),
    ))
}

#[utoipa::path(get, path = "/sessions", responses((status = 200, body = Vec<SessionEntry>)))]
pub async fn sessions(State(st): State<AppState>) -> ApiResult<Json<Vec<SessionEntry>>> {
    Ok(Json(st.sessions.list()?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SessionRequest {
    pub session_id: String,
}

#[utoipa::path(post, path = "/load_session", request_body = SessionRequest,
    responses((status = 200, description = "the session's config"), (status = 400), (status = 404)))]
pub async fn load_session(
    State(st): State<AppState>,
    AppJson(req): AppJson<SessionRequest>,
) -> ApiResult<Json<Value>> {
    let st2 = st.clone();
    let (config, npz) = tokio::task::spawn_blocking(move || st2.sessions.load(&req.session_id))
        .await
        .map_err(ApiError::internal)??;
    let tensors = match npz {
        Some(b) => Tensors::File(Arc::new(b)),
        None => Tensors::None,
    };
    *st.last_run.lock().expect("state lock") = Some(Arc::new(LastRun {
        config: config.clone(),
        tensors,
        model: None,
    }));
    Ok(Json(config))
}

#[utoipa::path(post, path = "/delete_session", request_body = SessionRequest,
    responses((status = 200, description = "{status, session_id}"), (status = 400), (status = 404)))]
pub async fn delete_session(
    State(st): State<AppState>,
    AppJson(req): AppJson<SessionRequest>,
) -> ApiResult<Json<Value>> {
    st.sessions.delete(&req.session_id)?;
    Ok(Json(
        json!({"status": "deleted", "session_id": req.session_id}),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct VisualizationRequest {
    /// `[query][key]`
    pub attention_data: Vec<Vec<f32>>,
    pub tokens: Vec<String>,
    pub title: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct GridVisualizationRequest {
    /// `[panel][query][key]`
    pub grid_data: Vec<Vec<Vec<f32>>>,
    pub tokens: Vec<String>,
    pub title: String,
    /// "layer_grid" titles panels "Layer i"; anything else "Head i".
    pub grid_type: String,
}

#[utoipa::path(post, path = "/save_visualization", request_body = VisualizationRequest,
    responses((status = 200, description = "{status, filepath}"), (status = 400)))]
pub async fn save_visualization(
    State(st): State<AppState>,
    AppJson(req): AppJson<VisualizationRequest>,
) -> ApiResult<Json<Value>> {
    let dir = st.cfg.data_dir.clone();
    let path = tokio::task::spawn_blocking(move || -> ApiResult<String> {
        let png = logitlens_heatmap::render_heatmap(&req.attention_data, &req.tokens, &req.title)
            .map_err(viz::render_error)?;
        viz::save_png(&dir, &req.title, &png)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(json!({"status": "success", "filepath": path})))
}

#[utoipa::path(post, path = "/save_grid_visualization", request_body = GridVisualizationRequest,
    responses((status = 200, description = "{status, filepath}"), (status = 400)))]
pub async fn save_grid_visualization(
    State(st): State<AppState>,
    AppJson(req): AppJson<GridVisualizationRequest>,
) -> ApiResult<Json<Value>> {
    let dir = st.cfg.data_dir.clone();
    let kind = if req.grid_type == "layer_grid" {
        logitlens_heatmap::GridKind::Layers
    } else {
        logitlens_heatmap::GridKind::Heads
    };
    let path = tokio::task::spawn_blocking(move || -> ApiResult<String> {
        let png = logitlens_heatmap::render_grid(&req.grid_data, &req.tokens, kind)
            .map_err(viz::render_error)?;
        viz::save_png(&dir, &req.title, &png)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(json!({"status": "success", "filepath": path})))
}

#[utoipa::path(get, path = "/models", responses((status = 200, body = Vec<ModelEntry>)))]
pub async fn list_models() -> ApiResult<Json<Vec<ModelEntry>>> {
    Ok(Json(
        tokio::task::spawn_blocking(models::list)
            .await
            .map_err(ApiError::internal)?,
    ))
}

/// Server-Sent Events: the /model_status body now, then at every change.
#[utoipa::path(get, path = "/events", responses((status = 200, description = "text/event-stream of /model_status bodies")))]
pub async fn events(
    State(st): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let first = tokio_stream::once(st.status());
    let rest = BroadcastStream::new(st.events.subscribe()).filter_map(|r| r.ok());
    let stream = first
        .chain(rest)
        .map(|v| Ok(Event::default().event("status").data(v.to_string())));
    Sse::new(stream).keep_alive(KeepAlive::default())
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
