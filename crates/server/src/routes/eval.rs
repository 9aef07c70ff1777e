//! The lens-quality resource: evaluate the logit lens (and the attached
//! tuned lens) of the model in service over a corpus, the measures
//! `logitlens eval-lens` prints, and the last evaluation kept for the
//! web app's Lens quality view.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use utoipa_axum::{router::OpenApiRouter, routes};

use logitlens_engine::api::EvalLensRequest;
use logitlens_engine::ops::eval::{EvalReport, EvalRequest, EvalSpec};
use logitlens_engine::ops::{Never, Operation};

use crate::admission::admit;
use crate::error::{ApiResult, AppJson};
use crate::routes::inference::no_events;
use crate::state::{AppState, Kept};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(last_eval, eval_lens))
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
    AppJson(query): AppJson<EvalLensRequest>,
) -> ApiResult<Json<EvalReport>> {
    let req = EvalRequest::try_from(query)?;
    let report = evaluate_and_keep::<EvalSpec>(&st, &headers, req, |st| &st.last_eval).await?;
    Ok(Json(report))
}

/// Admit and run an evaluation, then keep its report with the model it was
/// made with, in the slot `kept` names (what its GET route answers).
pub(super) async fn evaluate_and_keep<O>(
    st: &AppState,
    headers: &HeaderMap,
    req: O::Request,
    kept: impl Fn(&AppState) -> &Mutex<Option<Kept<O::Output>>>,
) -> ApiResult<O::Output>
where
    O: Operation<Event = Never> + Send + 'static,
    O::Request: Send + 'static,
    O::Output: Clone + Send + 'static,
{
    let served = admit::<O>(st, headers, req).await?.run(no_events).await?;
    let report = Arc::new(served.value);
    *kept(st).lock().expect("eval lock") = Some(Kept {
        model: Arc::downgrade(&served.model),
        report: report.clone(),
    });
    Ok(report.as_ref().clone())
}

/// The last evaluation made with the model in service, or `null` when
/// there is none yet (an empty state, not an error: the web app asks each
/// time its Lens quality view opens).
#[utoipa::path(get, path = "/eval_lens",
    responses((status = 200, body = Option<EvalReport>,
        description = "The last evaluation with the model in service; null when none has been run")))]
pub async fn last_eval(State(st): State<AppState>) -> Json<Option<EvalReport>> {
    let active = st.active().map(|(m, _)| m);
    Json(Kept::of(&st.last_eval.lock().expect("eval lock"), active))
}
