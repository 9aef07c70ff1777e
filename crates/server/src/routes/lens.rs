//! The lens resource: attach a tuned or a Jacobian lens to the model in
//! service, fit a Jacobian lens on it (kept when stopped, to resume), and
//! read what a token's Jacobian-lens vector says at each layer.

use std::time::Instant;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use logitlens_engine::api::{FitCheckpoint, FitJlensQuery, LensVectorQuery, LensVectorResponse};
use logitlens_engine::ops::fit_jlens::{JlensFitRequest, JlensFitSpec, JlensFitStep};

use crate::admission::admit;
use crate::error::{ApiError, ApiResult, AppJson};
use crate::lifecycle;
use crate::state::{AppState, KeptFit};
use crate::status::{AttachedJacobianLens, ModelDescription};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(load_lens))
        .routes(routes!(lens_vector))
        .routes(routes!(kept_fit, fit_jlens))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoadLensRequest {
    /// A lens on this machine: a tuned-lens folder (config.json and
    /// params.pt or params.safetensors, as the tuned-lens package saves
    /// them), or a Jacobian-lens file (`.pt` as TransformerLens or the
    /// reference implementation saves it, a fit checkpoint, or logitlens's
    /// `.safetensors`).
    pub path: String,
}

/// Attach a lens to the model in service: a tuned lens (`/inference
/// {"lens": "tuned"}`) or a Jacobian lens (`{"lens": "jacobian"}`, and the
/// `jlens_*` interventions). A lens of another width or depth is a 400
/// naming both sizes; one made for another model is attached with a
/// warning (in the answer's `tuned_lens_warning` or `jacobian_lens.warning`).
#[utoipa::path(post, path = "/load_lens", request_body = LoadLensRequest,
    responses((status = 200, body = ModelDescription), (status = 400, description = "The lens cannot be read or does not fit the model"),
        (status = 409, description = "No model is in service")))]
pub async fn load_lens(
    State(st): State<AppState>,
    AppJson(req): AppJson<LoadLensRequest>,
) -> ApiResult<Json<ModelDescription>> {
    let model = in_service(&st)?;
    lifecycle::attach_lens(&st, model.clone(), req.path.into()).await?;
    Ok(Json(ModelDescription::of(&model)))
}

/// What a token's Jacobian-lens vector says at each layer the attached lens
/// covers: v = J_ℓᵀ W_U[:, token] read through the model's own head (its
/// top tokens), and its norm. The direction `jlens_steer` pushes along.
#[utoipa::path(post, path = "/lens_vector", request_body = LensVectorQuery,
    responses((status = 200, body = LensVectorResponse),
        (status = 400, description = "No Jacobian lens attached, or a token that is not one token"),
        (status = 409, description = "No model is in service")))]
pub async fn lens_vector(
    State(st): State<AppState>,
    AppJson(q): AppJson<LensVectorQuery>,
) -> ApiResult<Json<LensVectorResponse>> {
    let model = in_service(&st)?;
    let lens = model.jacobian_lens().ok_or_else(|| {
        ApiError::bad_request(
            "no Jacobian lens is attached: attach one (POST /load_lens with a .pt or \
             .safetensors file) or fit one (POST /fit_jlens)",
        )
    })?;
    let body = tokio::task::spawn_blocking(move || LensVectorResponse::new(&model, &lens, &q))
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(body))
}

/// The model in service, for attaching to it: 409 without one.
pub(super) fn in_service(
    st: &AppState,
) -> ApiResult<std::sync::Arc<logitlens_engine::LoadedModel>> {
    st.active().map(|(m, _)| m).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "no model is in service: load one before attaching a lens",
        )
    })
}

/// The fit a request asks for, continuing the kept fit's sums when it asks
/// to resume (refused without one for the model in service).
fn fit_request(
    st: &AppState,
    model: &std::sync::Arc<logitlens_engine::LoadedModel>,
    q: FitJlensQuery,
) -> ApiResult<JlensFitRequest> {
    let resume = q.resume;
    let mut req = JlensFitRequest::try_from(q)?;
    if resume {
        let kept = st.kept_fit.lock().expect("fit lock");
        let sums = kept
            .as_ref()
            .filter(|k| {
                k.model
                    .upgrade()
                    .is_some_and(|m| std::sync::Arc::ptr_eq(&m, model))
            })
            .map(|k| k.sums.clone())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "resume: no stopped fit of the model in service is kept; fit without resume",
                )
            })?;
        req.resume = Some(sums);
    }
    Ok(req)
}

/// Fit a Jacobian lens on the model in service over a corpus (text, or
/// sampled from the model), save it under saved_states/ and attach it. As
/// /eval_lens is: admitted and watched (`fitting` run events on /events:
/// pieces of the fit done of all), stopped when its client goes away. A
/// stopped fit's sums are kept (GET /fit_jlens): a fit with `resume: true`
/// continues them.
#[utoipa::path(post, path = "/fit_jlens", request_body = FitJlensQuery,
    params(("x-logitlens-request" = Option<String>, Header, description = "Names the request in its `run` progress events on /events")),
    responses((status = 200, body = FitJlensResponse),
        (status = 400, description = "No model, no prompt to fit, settings that cannot fit, nothing to resume, or a fit over the server's limits; each with what to change"),
        (status = 409, description = "model is loading"),
        (status = 503, description = "Too many runs waiting; retry after the Retry-After header's seconds")))]
pub async fn fit_jlens(
    State(st): State<AppState>,
    headers: HeaderMap,
    AppJson(q): AppJson<FitJlensQuery>,
) -> ApiResult<Json<FitJlensResponse>> {
    let (model, _) = st.serving()?;
    let req = fit_request(&st, &model, q)?;
    let admitted = admit::<JlensFitSpec>(&st, &headers, req).await?;
    let (st2, weak) = (st.clone(), std::sync::Arc::downgrade(&admitted.model));
    let started = Instant::now();
    let skipped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let skipped2 = skipped.clone();
    let served = admitted
        .run(move |step: JlensFitStep| {
            if !step.fitted {
                skipped2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            *st2.kept_fit.lock().expect("fit lock") = Some(KeptFit {
                model: weak.clone(),
                sums: step.sums,
                total: step.total,
            });
            Ok(())
        })
        .await?;
    let sums = served.value;
    let path = st
        .sessions
        .new_file("jlens", &short_name(&served.model.name), "safetensors");
    let (m, p) = (served.model.clone(), path.clone());
    tokio::task::spawn_blocking(move || sums.lens(&m.name)?.save(&p))
        .await
        .map_err(ApiError::internal)??;
    *st.kept_fit.lock().expect("fit lock") = None;
    lifecycle::attach_lens(&st, served.model.clone(), path.clone()).await?;
    let attached = ModelDescription::of(&served.model).jacobian_lens;
    let lens = attached.ok_or_else(|| ApiError::internal("the fitted lens is not attached"))?;
    Ok(Json(FitJlensResponse {
        n_prompts: lens.n_prompts,
        skipped: skipped.load(std::sync::atomic::Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        saved: format!(
            "{}/{}",
            crate::sessions::SESSIONS_DIR,
            path.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ),
        jacobian_lens: lens,
    }))
}

/// The last part of a model's name (a folder, a file, a Hub id).
fn short_name(name: &str) -> String {
    name.trim_end_matches(['/', '\\'])
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(name)
        .trim_end_matches(".gguf")
        .to_owned()
}

/// What a fit answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FitJlensResponse {
    /// Prompts in the lens (a resumed fit's earlier ones included).
    pub n_prompts: u64,
    /// Prompts skipped this time: too short for a valid position.
    pub skipped: usize,
    pub seconds: f64,
    /// Where it was saved: `saved_states/<time>_jlens_<model>.safetensors`.
    pub saved: String,
    /// The lens, now attached.
    pub jacobian_lens: AttachedJacobianLens,
}

/// The kept sums of a stopped fit of the model in service, or `null`.
#[utoipa::path(get, path = "/fit_jlens",
    responses((status = 200, body = Option<FitCheckpoint>,
        description = "The sums a fit with resume: true continues; null when there are none")))]
pub async fn kept_fit(State(st): State<AppState>) -> Json<Option<FitCheckpoint>> {
    let active = st.active().map(|(m, _)| m);
    let kept = st.kept_fit.lock().expect("fit lock");
    Json(match (kept.as_ref(), active) {
        (Some(k), Some(m))
            if k.model
                .upgrade()
                .is_some_and(|km| std::sync::Arc::ptr_eq(&km, &m)) =>
        {
            Some(FitCheckpoint::of(&k.sums, k.total))
        }
        _ => None,
    })
}
