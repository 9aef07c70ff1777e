//! The generation resource: the model in service writes a continuation
//! greedily, with the request's interventions at every step, and the lens
//! is drawn over prompt and written tokens; streamed as it is written when
//! asked.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};

use logitlens_engine::api::{GenerateEvent, GenerateQuery, GenerateResponse};
use logitlens_engine::ops::generate::{GenerationOutput, GenerationRequest, GenerationSpec};
use logitlens_engine::ops::Operation;
use logitlens_engine::{EngineError, InferenceRequest};

use crate::admission::{admit, Served};
use crate::error::{ApiError, ApiResult, AppJson};
use crate::routes::inference::RUN_ID_HEADER;
use crate::sessions::SessionConfig;
use crate::state::{AppState, LastRun};
use crate::stream::json_body;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(generate))
}

/// Greedy generation with the lens: the /inference body over the prompt and
/// the written tokens, plus `generated_ids`, `generated_text`,
/// `prompt_tokens`, `stopped_at_eos` and, with `compare`,
/// `baseline_generation` (what the model writes without them, and the
/// first step where the two differ). Interventions act at every step;
/// their positions count over the whole sequence (negative ones back from
/// the prompt's end). With `stream: true` the body is newline-delimited
/// JSON: a `step` line per pass (the token chosen and the lens columns of
/// the positions it ran), then `done` with the whole body (or `error`).
/// Progress also goes to /events (`generating`: tokens written); the
/// generation stops when its client goes away.
#[utoipa::path(post, path = "/generate", request_body = GenerateQuery,
    params(("x-logitlens-request" = Option<String>, Header, description = "Names the request in its `run` progress events on /events")),
    responses((status = 200, body = logitlens_engine::api::GenerateResponse,
        description = "The whole body; with stream: true, application/x-ndjson lines of GenerateEvent",
        headers(("x-logitlens-run-id" = u64, description = "The run over prompt and written tokens, for /save_state's run_id"))),
        (status = 400, description = "A bad request, with what to fix: max_new_tokens, an intervention position past what will be written, a prompt and continuation over the token limit or the memory budget"),
        (status = 409, description = "model is loading"),
        (status = 503, description = "Too many runs waiting; retry after the Retry-After header's seconds")))]
pub async fn generate(
    State(st): State<AppState>,
    headers: HeaderMap,
    AppJson(query): AppJson<GenerateQuery>,
) -> ApiResult<Response> {
    let stream = query.stream;
    let inference = query.inference.clone();
    // Checked before anything is written, so a bad request is a 400 even
    // when the answer would be streamed.
    let admitted = admit::<GenerationSpec>(&st, &headers, GenerationRequest::from(query)).await?;
    if !stream {
        let served = admitted.run(|_| Ok(())).await?;
        let (response, run_id) = keep(served, &inference)?;
        return Ok((
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (
                    header::HeaderName::from_static(RUN_ID_HEADER),
                    run_id.to_string(),
                ),
            ],
            json_body(response),
        )
            .into_response());
    }
    let body = admitted.stream(move |job, cx, w| {
        let mut line = |event: &GenerateEvent| -> std::io::Result<()> {
            serde_json::to_writer(&mut *w, event)?;
            w.write_all(b"\n")?;
            w.flush()
        };
        let Served {
            st,
            model,
            backend,
            value: op,
        } = job;
        let result = op.run(&model, cx, &mut |step| {
            line(&GenerateEvent::from(step)).map_err(|_| EngineError::Cancelled)
        });
        let event = match result {
            // A client that went away gets nothing more.
            Err(EngineError::Cancelled) => return Ok(()),
            Err(e) => GenerateEvent::Error {
                detail: e.to_string(),
            },
            Ok(out) => {
                let served = Served {
                    st,
                    model,
                    backend,
                    value: out,
                };
                match keep(served, &inference) {
                    Ok((response, run_id)) => GenerateEvent::Done {
                        run_id,
                        response: Box::new(response),
                    },
                    Err(e) => GenerateEvent::Error { detail: e.detail },
                }
            }
        };
        Ok(line(&event)?)
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// Keep a generation's run (for /save_state and later runs): its body and
/// the kept run's id.
fn keep(
    served: Served<GenerationOutput>,
    inference: &InferenceRequest,
) -> ApiResult<(GenerateResponse, u64)> {
    let Served {
        st,
        model,
        backend,
        value: out,
    } = served;
    let (response, state) = GenerateResponse::new(out).map_err(ApiError::from)?;
    let mut config = SessionConfig::of_run(&model, backend, inference, &response.inference, &state);
    config.generated_ids = Some(response.written.generated_ids.clone());
    config.prompt_tokens = Some(response.written.prompt_tokens);
    let kept = LastRun::of_run(model, config, Arc::new(state), inference.return_attention);
    let run_id = st.remember_run(Arc::new(kept));
    Ok((response, run_id))
}
