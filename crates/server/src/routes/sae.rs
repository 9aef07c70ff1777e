//! The SAE resource: attach sparse autoencoders to the model in service
//! and take them off, read what a feature says (and where it fires in a
//! kept run, or over a corpus), and measure how well each one
//! reconstructs the model's activations.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use utoipa_axum::{router::OpenApiRouter, routes};

use logitlens_engine::api::{
    EvalSaeQuery, LoadSaeQuery, SaeCorpusQuery, SaeFeaturesQuery, SaeFeaturesResponse,
    UnloadSaeQuery,
};
use logitlens_engine::ops::eval_sae::{EvalSaeRequest, EvalSaeSpec, SaeEvalReport};
use logitlens_engine::ops::sae_corpus::{SaeCorpusReport, SaeCorpusRequest, SaeCorpusSpec};

use crate::admission::admit;
use crate::error::{ApiError, ApiResult, AppJson};
use crate::lifecycle;
use crate::routes::inference::no_events;
use crate::state::{AppState, Kept};
use crate::status::ModelDescription;

use super::eval::evaluate_and_keep;
use super::lens::in_service;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(load_sae))
        .routes(routes!(unload_sae))
        .routes(routes!(sae_features))
        .routes(routes!(sae_feature_corpus))
        .routes(routes!(last_sae_eval, eval_sae))
}

/// Attach sparse autoencoders to the model in service, all of them or, when
/// one cannot be read or does not fit (its hook is not the model's, its
/// width is not the hook's: both sizes named), none. Each is named by its
/// folder unless given a name; one named as an attached one replaces it.
/// `/inference {"sae": true}` then reads their features, and the `sae_*`
/// interventions act through them.
#[utoipa::path(post, path = "/load_sae", request_body = LoadSaeQuery,
    responses((status = 200, body = ModelDescription),
        (status = 400, description = "An SAE cannot be read, or does not fit the model; nothing was attached"),
        (status = 404, description = "A folder does not exist"),
        (status = 409, description = "No model is in service")))]
pub async fn load_sae(
    State(st): State<AppState>,
    AppJson(q): AppJson<LoadSaeQuery>,
) -> ApiResult<Json<ModelDescription>> {
    let model = in_service(&st)?;
    if q.saes.is_empty() {
        return Err(ApiError::bad_request("saes: give at least one SAE folder"));
    }
    lifecycle::attach_saes(&st, model.clone(), q.saes).await?;
    Ok(Json(ModelDescription::of(&model)))
}

/// Take attached SAEs off the model in service, all those named or, when
/// one is not attached, none.
#[utoipa::path(post, path = "/unload_sae", request_body = UnloadSaeQuery,
    responses((status = 200, body = ModelDescription),
        (status = 400, description = "A name is not an attached SAE's; nothing was taken off"),
        (status = 409, description = "No model is in service")))]
pub async fn unload_sae(
    State(st): State<AppState>,
    AppJson(q): AppJson<UnloadSaeQuery>,
) -> ApiResult<Json<ModelDescription>> {
    let model = in_service(&st)?;
    if q.names.is_empty() {
        return Err(ApiError::bad_request(
            "names: name at least one attached SAE",
        ));
    }
    model.detach_saes(&q.names)?;
    tracing::info!("SAEs taken off: {}", q.names.join(", "));
    lifecycle::broadcast_status(&st);
    Ok(Json(ModelDescription::of(&model)))
}

/// What features of an attached SAE say: each one's top and bottom tokens
/// by its decoder row read through the unembedding (`W_dec[f]·W_U`), and,
/// with a kept run's `run_id`, its activation at every position of that
/// run (what `logitlens sae-features --json` prints, without them).
#[utoipa::path(post, path = "/sae_features", request_body = SaeFeaturesQuery,
    responses((status = 200, body = SaeFeaturesResponse),
        (status = 400, description = "An unknown SAE, a feature out of its range, or k out of 1..=1000"),
        (status = 404, description = "The run is no longer kept"),
        (status = 409, description = "No model is in service")))]
pub async fn sae_features(
    State(st): State<AppState>,
    AppJson(q): AppJson<SaeFeaturesQuery>,
) -> ApiResult<Json<SaeFeaturesResponse>> {
    let model = in_service(&st)?;
    q.check()?;
    let sae = model.attached_sae(&q.sae)?;
    let run = match q.run_id {
        None => None,
        Some(id) => Some(st.run(id).and_then(|r| r.run().cloned()).ok_or_else(|| {
            ApiError::not_found(format!(
                "run {id} is not kept on the server (only the most recent runs are); run the \
                 text again"
            ))
        })?),
    };
    let body = tokio::task::spawn_blocking(move || {
        SaeFeaturesResponse::of(&model, &sae, &q.features, q.k, run.as_deref())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(body))
}

/// Where a feature fires over a corpus (text, or sampled from the model):
/// how often, how strongly at most, and its strongest contexts with the
/// token marked. Progress goes to /events as `sampling` then `documents`
/// run events; the scan stops when its client goes away.
#[utoipa::path(post, path = "/sae_feature_corpus", request_body = SaeCorpusQuery,
    params(("x-logitlens-request" = Option<String>, Header, description = "Names the request in its `run` progress events on /events")),
    responses((status = 200, body = SaeCorpusReport),
        (status = 400, description = "An unknown SAE or feature, an empty corpus, too many documents or a request over the memory budget, with what to change"),
        (status = 409, description = "model is loading"),
        (status = 503, description = "Too many runs waiting; retry after the Retry-After header's seconds")))]
pub async fn sae_feature_corpus(
    State(st): State<AppState>,
    headers: HeaderMap,
    AppJson(q): AppJson<SaeCorpusQuery>,
) -> ApiResult<Json<SaeCorpusReport>> {
    let req = SaeCorpusRequest::try_from(q)?;
    let served = admit::<SaeCorpusSpec>(&st, &headers, req)
        .await?
        .run(no_events)
        .await?;
    Ok(Json(served.value))
}

/// Measure attached SAEs over a corpus (text, or sampled from the model):
/// next-token cross-entropy with each spliced in at its hook against the
/// clean model's (ΔCE) and the hook zeroed, KL from the clean output,
/// explained variance, MSE, mean L0 and dead features. Progress goes to
/// /events as `sampling` then `documents` run events; the evaluation stops
/// when its client goes away.
#[utoipa::path(post, path = "/eval_sae", request_body = EvalSaeQuery,
    params(("x-logitlens-request" = Option<String>, Header, description = "Names the request in its `run` progress events on /events")),
    responses((status = 200, body = SaeEvalReport),
        (status = 400, description = "No SAE attached or an unknown name, an empty corpus, too many documents or a request over the memory budget, with what to change"),
        (status = 409, description = "model is loading"),
        (status = 503, description = "Too many runs waiting; retry after the Retry-After header's seconds")))]
pub async fn eval_sae(
    State(st): State<AppState>,
    headers: HeaderMap,
    AppJson(q): AppJson<EvalSaeQuery>,
) -> ApiResult<Json<SaeEvalReport>> {
    let req = EvalSaeRequest::try_from(q)?;
    let report =
        evaluate_and_keep::<EvalSaeSpec>(&st, &headers, req, |st| &st.last_sae_eval).await?;
    Ok(Json(report))
}

/// The last SAE evaluation made with the model in service, or `null` when
/// there is none yet (the web app asks each time its SAE quality view
/// opens).
#[utoipa::path(get, path = "/eval_sae",
    responses((status = 200, body = Option<SaeEvalReport>,
        description = "The last SAE evaluation with the model in service; null when none has been run")))]
pub async fn last_sae_eval(State(st): State<AppState>) -> Json<Option<SaeEvalReport>> {
    let active = st.active().map(|(m, _)| m);
    Json(Kept::of(
        &st.last_sae_eval.lock().expect("eval lock"),
        active,
    ))
}
