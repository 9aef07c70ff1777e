//! The sessions resource: save a run (or a loaded session), list, load and
//! delete saved ones.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, AppJson};
use crate::sessions::{SessionConfig, SessionEntry, SESSIONS_DIR};
use crate::state::{AppState, LastRun, Tensors};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(save_state))
        .routes(routes!(sessions))
        .routes(routes!(load_session))
        .routes(routes!(delete_session))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct SaveStateRequest {
    #[serde(default)]
    pub name: Option<String>,
    /// The run to save, from /inference's `x-logitlens-run-id` header.
    /// Without it, the server's last run or last loaded session is saved.
    #[serde(default)]
    pub run_id: Option<u64>,
}

/// The body of POST /save_state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SaveStateResponse {
    /// Always "saved".
    pub status: &'static str,
    pub session_id: String,
    /// `saved_states/<session_id>`.
    pub path: String,
}

#[utoipa::path(post, path = "/save_state", request_body = SaveStateRequest,
    responses((status = 200, body = SaveStateResponse), (status = 400, description = "No state to save"),
        (status = 404, description = "The run is no longer kept")))]
pub async fn save_state(
    State(st): State<AppState>,
    AppJson(req): AppJson<SaveStateRequest>,
) -> ApiResult<Json<SaveStateResponse>> {
    let last = match req.run_id {
        Some(id) => st.run(id).ok_or_else(|| {
            ApiError::not_found(format!(
                "run {id} is no longer kept: the server keeps recent runs within {} MiB \
                 (logitlens serve --kept-runs-mib); save a run soon after making it, or run it again and save",
                st.cfg.kept_run_bytes >> 20
            ))
        })?,
        None => st
            .last_run
            .lock()
            .expect("state lock")
            .clone()
            .ok_or_else(|| ApiError::bad_request("No state to save"))?,
    };
    let st2 = st.clone();
    let id = tokio::task::spawn_blocking(move || -> ApiResult<String> {
        // A loaded session's tensors.npz is re-saved from the bytes read (and
        // checked: a regular file within its limit) by /load_session, never
        // read again from its folder, whatever that holds by now.
        let npz: Option<Cow<'_, [u8]>> = match &last.tensors {
            Tensors::Run {
                run,
                with_attention,
            } => Some(Cow::Owned(
                crate::npz::run_npz(run, *with_attention).map_err(ApiError::internal)?,
            )),
            Tensors::File(b) => Some(Cow::Borrowed(b.as_slice())),
            Tensors::None => None,
        };
        let mut config = last.config.clone();
        if let (Some(m), Some(source)) = (&last.model, config.model_source.as_mut()) {
            // Hashed at save time, once per model: the first run stays fast.
            source.weights_sha256 = Some(m.weights_sha256().map_err(ApiError::internal)?);
        }
        st2.sessions
            .save(req.name.as_deref(), &config, npz.as_deref())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(SaveStateResponse {
        status: "saved",
        path: format!("{SESSIONS_DIR}/{id}"),
        session_id: id,
    }))
}

#[utoipa::path(get, path = "/sessions", responses((status = 200, body = Vec<SessionEntry>)))]
pub async fn sessions(State(st): State<AppState>) -> ApiResult<Json<Vec<SessionEntry>>> {
    Ok(Json(st.sessions.list()?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SessionRequest {
    pub session_id: String,
}

// The session's files are checked as they are read (`Sessions::load`): a
// symlinked, special or oversized config.json or tensors.npz is a 400 naming
// the file, and nothing is loaded. (A plain comment: a doc comment would
// become the operation's description in /openapi.json.)
#[utoipa::path(post, path = "/load_session", request_body = SessionRequest,
    responses((status = 200, body = SessionConfig), (status = 400), (status = 404)))]
pub async fn load_session(
    State(st): State<AppState>,
    AppJson(req): AppJson<SessionRequest>,
) -> ApiResult<Json<SessionConfig>> {
    let st2 = st.clone();
    let (config, npz) = tokio::task::spawn_blocking(move || st2.sessions.load(&req.session_id))
        .await
        .map_err(ApiError::internal)??;
    let tensors = match npz {
        Some(b) => Tensors::File(Arc::new(b)),
        None => Tensors::None,
    };
    *st.last_run.lock().expect("state lock") = Some(Arc::new(LastRun {
        config: config.clone(),
        tensors,
        model: None,
    }));
    Ok(Json(config))
}

/// The body of POST /delete_session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeleteSessionResponse {
    /// Always "deleted".
    pub status: &'static str,
    pub session_id: String,
}

#[utoipa::path(post, path = "/delete_session", request_body = SessionRequest,
    responses((status = 200, body = DeleteSessionResponse), (status = 400), (status = 404)))]
pub async fn delete_session(
    State(st): State<AppState>,
    AppJson(req): AppJson<SessionRequest>,
) -> ApiResult<Json<DeleteSessionResponse>> {
    st.sessions.delete(&req.session_id)?;
    Ok(Json(DeleteSessionResponse {
        status: "deleted",
        session_id: req.session_id,
    }))
}
