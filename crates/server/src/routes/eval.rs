//! The lens-quality resource: evaluate the logit lens (and the attached
//! tuned lens) of the model in service over a corpus, the measures
//! `logitlens eval-lens` prints, and the last evaluation kept for the
//! web app's Lens quality view.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use logitlens_engine::lens::eval;
use logitlens_engine::run::mib;
use logitlens_engine::types::Stage;

use crate::error::{ApiError, ApiResult, AppJson};
use crate::state::{AppState, KeptEval};
use crate::status::{EvalReport, RunStage};
use crate::watch::{admit, Staged};

pub fn router() -> Router<AppState> {
    Router::new().route("/eval_lens", get(last_eval).post(eval_lens))
}

/// Most documents one evaluation takes.
pub const MAX_DOCUMENTS: usize = 4096;

fn default_max_tokens() -> usize {
    128
}

/// Most tokens a sampled corpus may hold (documents x max_tokens): each is
/// a step of generation.
pub const MAX_SAMPLED_TOKENS: usize = 1 << 16;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalLensRequest {
    /// The corpus: one document per line (blank lines skipped), each
    /// tokenized as /inference does without the chat template.
    pub corpus: Option<String>,
    /// Instead of `corpus`: this many documents of `max_tokens` ids sampled
    /// from the model itself (temperature 1, from BOS or its eos token).
    pub sample: Option<usize>,
    /// Seed of a sampled corpus (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Each document's first ids (default 128).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
}

/// Where an evaluation's documents come from.
enum Source {
    Text(Vec<String>),
    Sample { docs: usize, seed: u64 },
}

/// Evaluate the lenses of the model in service over a corpus: per
/// block-output row, KL to the model's output, cross-entropy of the next
/// token, entropy and top-1 agreement, for the logit lens and the attached
/// tuned lens. The corpus is text, or sampled from the model. Progress goes
/// to /events as `sampling` (tokens) then `documents` run events; the
/// evaluation stops when its client goes away.
#[utoipa::path(post, path = "/eval_lens", request_body = EvalLensRequest,
    params(("x-logitlens-request" = Option<String>, Header, description = "Names the request in its `run` progress events on /events")),
    responses((status = 200, body = EvalReport),
        (status = 400, description = "No model, an empty corpus, too many documents or a request over the memory budget, with what to change"),
        (status = 409, description = "model is loading"),
        (status = 503, description = "Too many runs waiting; retry after the Retry-After header's seconds")))]
pub async fn eval_lens(
    State(st): State<AppState>,
    headers: HeaderMap,
    AppJson(req): AppJson<EvalLensRequest>,
) -> ApiResult<Response> {
    let (model, _) = st.serving()?;
    let max = st.cfg.max_prompt_tokens;
    if req.max_tokens == 0 || req.max_tokens > max {
        return Err(ApiError::bad_request(format!(
            "max_tokens is {}; it must be between 1 and this server's limit of {max} tokens",
            req.max_tokens
        )));
    }
    let budget = st.cfg.max_request_bytes;
    let need = eval::peak_bytes(&model, req.max_tokens);
    if need > budget {
        return Err(ApiError::bad_request(format!(
            "evaluating documents of {} tokens needs about {} at a time; this server allows {} \
             per request (logitlens serve --max-request-mib): use a smaller max_tokens",
            req.max_tokens,
            mib(need),
            mib(budget)
        )));
    }
    let source = match (req.corpus, req.sample) {
        (Some(text), None) => {
            let docs = eval::documents(&text);
            if docs.is_empty() {
                return Err(ApiError::bad_request(
                    "the corpus has no text: give one document per line",
                ));
            }
            if docs.len() > MAX_DOCUMENTS {
                return Err(ApiError::bad_request(format!(
                    "the corpus has {} documents; one evaluation takes at most {MAX_DOCUMENTS}",
                    docs.len()
                )));
            }
            Source::Text(docs)
        }
        (None, Some(n)) => {
            if n == 0 || n > MAX_DOCUMENTS || n.saturating_mul(req.max_tokens) > MAX_SAMPLED_TOKENS
            {
                return Err(ApiError::bad_request(format!(
                    "sample: {n} documents of {} tokens; a sampled corpus holds 1 to \
                     {MAX_DOCUMENTS} documents and at most {MAX_SAMPLED_TOKENS} tokens",
                    req.max_tokens
                )));
            }
            Source::Sample {
                docs: n,
                seed: req.seed,
            }
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give either corpus (text) or sample (a number of documents), not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "give corpus (one document per line) or sample (documents sampled from the model)",
            ))
        }
    };
    let admitted = match admit(&st, &headers, |s| {
        (s == Stage::Lens).then_some(RunStage::Documents)
    })
    .await
    {
        Ok(a) => a,
        Err(busy) => return Ok(busy),
    };
    let (watch, permit, _cancel) = (admitted.watch, admitted.permit, admitted.cancel);
    let m = model.clone();
    let max_tokens = req.max_tokens;
    let report = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let lens = m.tuned_lens();
        let sample_seed = match source {
            Source::Sample { seed, .. } => Some(seed),
            Source::Text(_) => None,
        };
        let ids = match source {
            Source::Text(docs) => eval::corpus_ids(&m, &docs, max_tokens)?,
            Source::Sample { docs, seed } => {
                let sampling = Staged(&watch, |s| {
                    (s == Stage::Generate).then_some(RunStage::Sampling)
                });
                logitlens_engine::sample_corpus(&m, docs, max_tokens, seed, &sampling)?
            }
        };
        let evaluation = eval::evaluate(&m, &ids, lens.as_deref(), watch.as_ref())?;
        Ok::<_, ApiError>(EvalReport {
            model_name: m.name.clone(),
            tuned_lens: lens.map(|l| l.dir.display().to_string()),
            documents: ids.len(),
            sample_seed,
            max_tokens,
            evaluation,
        })
    })
    .await
    .map_err(ApiError::internal)??;
    let report = Arc::new(report);
    *st.last_eval.lock().expect("eval lock") = Some(KeptEval {
        model: Arc::downgrade(&model),
        report: report.clone(),
    });
    Ok(Json(report.as_ref()).into_response())
}

/// The last evaluation made with the model in service, or `null` when
/// there is none yet (an empty state, not an error: the web app asks each
/// time its Lens quality view opens).
#[utoipa::path(get, path = "/eval_lens",
    responses((status = 200, body = Option<EvalReport>,
        description = "The last evaluation with the model in service; null when none has been run")))]
pub async fn last_eval(State(st): State<AppState>) -> Json<Option<EvalReport>> {
    let active = st.active().map(|(m, _)| m);
    let kept = st.last_eval.lock().expect("eval lock");
    Json(match (kept.as_ref(), active) {
        (Some(k), Some(m)) if k.model.upgrade().is_some_and(|km| Arc::ptr_eq(&km, &m)) => {
            Some(k.report.as_ref().clone())
        }
        _ => None,
    })
}
