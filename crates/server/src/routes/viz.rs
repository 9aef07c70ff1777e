//! The visualization resource: attention heatmaps rendered to PNG files
//! under attention_visualizations/.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, AppJson};
use crate::exports;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(save_visualization))
        .routes(routes!(save_grid_visualization))
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

/// The body of both PNG endpoints.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SavedFile {
    /// Always "success".
    pub status: &'static str,
    /// `attention_visualizations/<YYYYMMDD_HHMMSS>_<title>.png`.
    pub filepath: String,
}

/// Render off the runtime and save under the title.
async fn render_and_save(
    st: &AppState,
    title: String,
    render: impl FnOnce() -> Result<Vec<u8>, logitlens_heatmap::HeatmapError> + Send + 'static,
) -> ApiResult<Json<SavedFile>> {
    let dir = st.cfg.data_dir.clone();
    let filepath = tokio::task::spawn_blocking(move || -> ApiResult<String> {
        let png = render().map_err(|e| ApiError::bad_request(e.to_string()))?;
        exports::save_png(&dir, &title, &png)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(SavedFile {
        status: "success",
        filepath,
    }))
}

#[utoipa::path(post, path = "/save_visualization", request_body = VisualizationRequest,
    responses((status = 200, body = SavedFile), (status = 400)))]
pub async fn save_visualization(
    State(st): State<AppState>,
    AppJson(req): AppJson<VisualizationRequest>,
) -> ApiResult<Json<SavedFile>> {
    let title = req.title.clone();
    render_and_save(&st, title, move || {
        logitlens_heatmap::render_heatmap(&req.attention_data, &req.tokens, &req.title)
    })
    .await
}

#[utoipa::path(post, path = "/save_grid_visualization", request_body = GridVisualizationRequest,
    responses((status = 200, body = SavedFile), (status = 400)))]
pub async fn save_grid_visualization(
    State(st): State<AppState>,
    AppJson(req): AppJson<GridVisualizationRequest>,
) -> ApiResult<Json<SavedFile>> {
    let kind = if req.grid_type == "layer_grid" {
        logitlens_heatmap::GridKind::Layers
    } else {
        logitlens_heatmap::GridKind::Heads
    };
    let title = req.title.clone();
    render_and_save(&st, title, move || {
        logitlens_heatmap::render_grid(&req.grid_data, &req.tokens, kind)
    })
    .await
}
