//! The generation resource: the model in service writes a continuation
//! greedily, with the request's interventions at every step, and the lens
//! is drawn over prompt and written tokens; streamed as it is written when
//! asked.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::json;

use logitlens_engine::api::{self, GenerateEvent, GenerateQuery, Written};
use logitlens_engine::run::{GenerationOutput, GenerationRequest};
use logitlens_engine::{Answer, EngineError, InferenceRequest, LoadedModel, RunState};

use crate::error::{ApiError, ApiResult, AppJson};
use crate::routes::inference::{check_budget, kept_run, RUN_ID_HEADER};
use crate::state::AppState;
use crate::status::Backend;
use crate::stream::blocking_body;
use crate::watch::{admit, run_stages, RunWatch};

pub fn router() -> Router<AppState> {
    Router::new().route("/generate", post(generate))
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
    let (model, backend) = st.serving()?;
    st.check_text(&model, "the text", &query.inference.text)?;
    let stream = query.stream;
    let inference = query.inference.clone();
    let req = GenerationRequest::from(query);
    let admitted = match admit(&st, &headers, run_stages).await {
        Ok(a) => a,
        Err(busy) => return Ok(busy),
    };
    let (watch, permit, cancel) = (admitted.watch, admitted.permit, admitted.cancel);
    // Checked before anything is written, so a bad request is a 400 even
    // when the answer would be streamed.
    let (st2, m2, req2) = (st.clone(), model.clone(), req.clone());
    tokio::task::spawn_blocking(move || check(&st2, &m2, &req2))
        .await
        .map_err(ApiError::internal)??;
    let job = Job {
        st: st.clone(),
        model,
        backend,
        inference,
        req,
        watch,
    };
    if !stream {
        let (answer, state, written, run_id) = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            Ok::<_, ApiError>(job.keep(job.run(&mut |_| Ok(()))?))
        })
        .await
        .map_err(ApiError::internal)??;
        let body = blocking_body(move |w| {
            api::write_generation(&answer, &state.capture.patterns, &written, w)
        });
        return Ok((
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (
                    header::HeaderName::from_static(RUN_ID_HEADER),
                    run_id.to_string(),
                ),
            ],
            body,
        )
            .into_response());
    }
    let body = blocking_body(move |w| {
        // Held by the body: the generation goes on while it is read, and
        // stops when the client goes away (the next line cannot be sent).
        let (_permit, _cancel) = (permit, cancel);
        let result = job.run(&mut |event| {
            serde_json::to_writer(&mut *w, event)?;
            w.write_all(b"\n")?;
            w.flush()
        });
        // A client that went away gets nothing more.
        if matches!(result, Err(EngineError::Cancelled)) {
            return Ok(());
        }
        match result {
            Ok(out) => {
                let (answer, state, written, run_id) = job.keep(out);
                write!(w, "{{\"type\":\"done\",\"run_id\":{run_id},\"response\":")?;
                api::write_generation(&answer, &state.capture.patterns, &written, w)?;
                w.write_all(b"}\n")?;
            }
            Err(e) => {
                let event = GenerateEvent::Error {
                    detail: e.to_string(),
                };
                let line = serde_json::to_string(&event).unwrap_or_default();
                writeln!(w, "{line}")?;
            }
        }
        Ok(())
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// The request against the server's limits: the prompt and everything it
/// may write within the token limit, the run at the end within the memory
/// budget.
fn check(st: &AppState, model: &LoadedModel, req: &GenerationRequest) -> ApiResult<()> {
    let prompt = req.check(model)?;
    let max = st.cfg.max_prompt_tokens;
    if prompt + req.max_new_tokens > max {
        return Err(ApiError::bad_request(format!(
            "a prompt of {prompt} tokens and {} new ones make {}; this server's limit is {max} tokens \
             (logitlens serve --max-tokens)",
            req.max_new_tokens,
            prompt + req.max_new_tokens
        )));
    }
    check_budget(st, model, &req.longest_run(model, prompt)?)
}

/// A generation admitted: what it runs and where its run is kept.
struct Job {
    st: AppState,
    model: Arc<LoadedModel>,
    backend: Backend,
    inference: InferenceRequest,
    req: GenerationRequest,
    watch: Arc<RunWatch>,
}

impl Job {
    /// Generate, handing each pass to `on_event` as a `step` event.
    fn run(
        &self,
        on_event: &mut dyn FnMut(&GenerateEvent) -> std::io::Result<()>,
    ) -> Result<GenerationOutput, EngineError> {
        let earlier = self.st.earlier_runs();
        let earlier: Vec<&RunState> = earlier.iter().map(Arc::as_ref).collect();
        let out = self
            .model
            .generate_run(&self.req, &earlier, self.watch.as_ref(), &mut |s| {
                on_event(&GenerateEvent::step(s)).map_err(|_| EngineError::Cancelled)
            })?;
        Ok(out)
    }

    /// Keep the generation's run (for /save_state and later runs): the
    /// answer, the kept state, what was written and the run's id.
    fn keep(&self, out: GenerationOutput) -> (Answer, Arc<RunState>, Written, u64) {
        let written = Written::new(&out);
        let more =
            json!({"generated_ids": written.generated_ids, "prompt_tokens": written.prompt_tokens});
        let last = kept_run(
            self.model.clone(),
            self.backend,
            &self.inference,
            &out.run.answer,
            out.run.state,
            more,
        );
        let state = last.run().cloned().expect("a run keeps its state");
        let id = self.st.remember_run(Arc::new(last));
        (out.run.answer, state, written, id)
    }
}
