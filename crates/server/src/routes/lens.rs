//! The lens resource: attach a tuned or a Jacobian lens to the model in
//! service, and read what a token's Jacobian-lens vector says at each
//! layer.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use logitlens_engine::api::{LensVectorQuery, LensVectorResponse};

use crate::error::{ApiError, ApiResult, AppJson};
use crate::lifecycle;
use crate::state::AppState;
use crate::status::ModelDescription;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(load_lens))
        .routes(routes!(lens_vector))
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
fn in_service(st: &AppState) -> ApiResult<std::sync::Arc<logitlens_engine::LoadedModel>> {
    st.active().map(|(m, _)| m).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "no model is in service: load one before attaching a lens",
        )
    })
}
