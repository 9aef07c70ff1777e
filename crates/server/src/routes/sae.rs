//! The SAE resource: attach sparse autoencoders to the model in service.

use axum::extract::State;
use axum::Json;
use utoipa_axum::{router::OpenApiRouter, routes};

use logitlens_engine::api::LoadSaeQuery;

use crate::error::{ApiError, ApiResult, AppJson};
use crate::lifecycle;
use crate::state::AppState;
use crate::status::ModelDescription;

use super::lens::in_service;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(load_sae))
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
