//! The model resource: load one, its status (also as a Server-Sent Events
//! stream), the models one can pick, and its tokenizer.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};
use utoipa_axum::{router::OpenApiRouter, routes};

use logitlens_engine::{default_model, WeightsMode};

use crate::catalog::{self, ModelEntry};
use crate::error::{ApiError, ApiResult, AppJson};
use crate::lifecycle::{self, Then};
use crate::state::{AppState, ServerEvent};
use crate::status::{Backend, LoadModelResponse, LoadOutcome, ModelDescription, ModelStatus};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(load_model))
        .routes(routes!(model_status))
        .routes(routes!(events))
        .routes(routes!(list_models))
        .routes(routes!(tokenize))
}

fn default_model_name() -> String {
    default_model::FILE_NAME.into()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoadModelRequest {
    /// A Hub repo id (org/name[@revision]), a local folder, a .gguf path or a
    /// .gguf file name in the models folder. Default: the SmolLM2 GGUF.
    #[serde(default = "default_model_name")]
    pub model_name: String,
    #[serde(default)]
    pub backend: Backend,
    /// How to hold the weights: widened to f32, as stored (bf16, f16,
    /// quantized blocks), or `auto` (widened when that takes under 40% of
    /// the memory available). Default: the server's `--weights`.
    pub weights: Option<WeightsMode>,
}

/// Load a model and put it in service; the previous model serves until the
/// new one is ready, and stays if the load fails.
#[utoipa::path(post, path = "/load_model", request_body = LoadModelRequest,
    responses((status = 200, body = LoadModelResponse), (status = 400, description = "Unknown backend or unsupported model"),
        (status = 404, description = "No such model"),
        (status = 409, description = "The model does not fit in the memory available; the model in service stays")))]
pub async fn load_model(
    State(st): State<AppState>,
    AppJson(req): AppJson<LoadModelRequest>,
) -> ApiResult<Json<LoadModelResponse>> {
    let weights = req.weights.unwrap_or(st.cfg.weights);
    // Already in service: answered with the backend name it was loaded under.
    let serving = st.active().filter(|(m, b)| {
        m.name == req.model_name
            && b.kind() == req.backend.kind()
            && lifecycle::weights_match(m, weights)
    });
    let (status, model, backend) = match serving {
        Some((m, b)) => (LoadOutcome::AlreadyLoaded, m, b),
        None => (
            LoadOutcome::Loaded,
            lifecycle::load_as(&st, req.model_name, req.backend, weights, Then::Serve).await?,
            req.backend,
        ),
    };
    Ok(Json(LoadModelResponse {
        status,
        loaded: true,
        backend,
        model: ModelDescription::of(&model),
    }))
}

#[utoipa::path(get, path = "/model_status", responses((status = 200, body = ModelStatus)))]
pub async fn model_status(State(st): State<AppState>) -> Json<ModelStatus> {
    Json(lifecycle::status(&st))
}

/// Server-Sent Events: the /model_status body now and at every change
/// (`status` events), and the progress of runs (`run` events).
#[utoipa::path(get, path = "/events", responses((status = 200,
    description = "text/event-stream: `status` events whose data is a ModelStatus, `run` events whose data is a RunProgress")))]
pub async fn events(
    State(st): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let first = tokio_stream::once(ServerEvent::Status(lifecycle::status(&st)));
    let rest = BroadcastStream::new(st.events.subscribe()).filter_map(|r| r.ok());
    let stream = first.chain(rest).map(|e| {
        let (name, data) = match e {
            ServerEvent::Status(s) => ("status", serde_json::to_string(&s)),
            ServerEvent::Run(r) => ("run", serde_json::to_string(&r)),
        };
        Ok(Event::default()
            .event(name)
            .data(data.expect("events serialise")))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[utoipa::path(get, path = "/models", responses((status = 200, body = Vec<ModelEntry>)))]
pub async fn list_models() -> ApiResult<Json<Vec<ModelEntry>>> {
    Ok(Json(
        tokio::task::spawn_blocking(catalog::list)
            .await
            .map_err(ApiError::internal)?,
    ))
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenizeRequest {
    pub text: String,
    /// Wrap the text in the model's chat template first (as /inference does).
    #[serde(default)]
    pub apply_chat_template: bool,
    /// Add the tokenizer's special tokens (BOS), as /inference does (default
    /// true); false encodes a token as the metric and tracking fields do.
    #[serde(default = "yes")]
    pub add_special_tokens: bool,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TokenizeResponse {
    pub ids: Vec<u32>,
    /// Each token as `decode([id])` gives it.
    pub tokens: Vec<String>,
}

/// The model in service's tokens of a text, as /inference would run it:
/// for showing token counts and checking that a string is one token.
#[utoipa::path(post, path = "/tokenize", request_body = TokenizeRequest,
    responses((status = 200, body = TokenizeResponse),
        (status = 400, description = "No model, a text over the server's limit, or a template the model lacks"),
        (status = 409, description = "model is loading")))]
pub async fn tokenize(
    State(st): State<AppState>,
    AppJson(req): AppJson<TokenizeRequest>,
) -> ApiResult<Json<TokenizeResponse>> {
    let (model, _) = st.serving()?;
    st.limits()
        .check_texts(&model, &[("the text", &req.text)])?;
    let body = tokio::task::spawn_blocking(move || {
        let tok = &model.tokenizer;
        let ids = if req.apply_chat_template || req.add_special_tokens {
            if !req.add_special_tokens {
                return Err(ApiError::bad_request(
                    "apply_chat_template needs add_special_tokens: the template writes them",
                ));
            }
            model.tokenize(&req.text, req.apply_chat_template)?
        } else {
            tok.encode(&req.text, false)?
        };
        let tokens = ids
            .iter()
            .map(|&i| tok.decode_one(i))
            .collect::<logitlens_engine::Result<Vec<_>>>()?;
        Ok::<_, ApiError>(TokenizeResponse { ids, tokens })
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(body))
}
