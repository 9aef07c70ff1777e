//! The diff resource: two saved sessions compared, each row's saved states
//! projected through its own model's head. Two sessions of one prompt on
//! two checkpoints give the diff between the checkpoints.

use std::io::Cursor;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use candle_core::{Device, Tensor};
use ndarray_npy::NpzReader;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use logitlens_engine::lens::{self, DiffCell, LensRow};
use logitlens_engine::LoadedModel;

use crate::error::{ApiError, ApiResult, AppJson};
use crate::lifecycle::{self, Then};
use crate::state::AppState;
use crate::status::Backend;

pub fn router() -> Router<AppState> {
    Router::new().route("/diff_sessions", post(diff_sessions))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DiffSessionsRequest {
    /// The baseline session's id (as GET /sessions lists it).
    pub a: String,
    /// The session compared with it.
    pub b: String,
}

/// One side of a session diff.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DiffSide {
    pub session_id: String,
    pub model_name: Option<String>,
    pub lens_type: Option<String>,
}

/// The body of POST /diff_sessions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DiffSessionsResponse {
    pub a: DiffSide,
    pub b: DiffSide,
    /// The tokens both sessions ran.
    pub input_tokens: Option<Vec<String>>,
    pub layer_names: Vec<String>,
    /// Each session's rows through its own model's head.
    pub a_logit_lens: Vec<LensRow>,
    pub b_logit_lens: Vec<LensRow>,
    /// `[row][position]`, with `a` as the baseline.
    pub diff: Vec<Vec<DiffCell>>,
}

/// What a diff needs of one saved session.
struct Saved {
    id: String,
    config: Value,
    names: Vec<String>,
    /// One `[T, D]` state per lens row.
    states: Vec<Tensor>,
    /// The tokens `T` and hidden size `D` of the states.
    tokens: usize,
    width: usize,
}

impl Saved {
    fn load(st: &AppState, id: &str) -> ApiResult<Self> {
        let (config, npz) = st.sessions.load(id)?;
        let bad = |what: String| ApiError::bad_request(format!("session {id:?}: {what}"));
        let npz =
            npz.ok_or_else(|| bad("it has no tensors.npz, so there is nothing to compare".into()))?;
        let mut z =
            NpzReader::new(Cursor::new(npz)).map_err(|e| bad(format!("tensors.npz: {e}")))?;
        let hidden: ndarray::ArrayD<f32> = z
            .by_name("hidden_states.npy")
            .map_err(|e| bad(format!("tensors.npz has no readable hidden_states: {e}")))?;
        let [rows, 1, t, d] = *hidden.shape() else {
            return Err(bad(format!(
                "hidden_states has shape {:?}, not [rows, 1, tokens, hidden size]",
                hidden.shape()
            )));
        };
        if rows == 0 || t == 0 || d == 0 {
            return Err(bad(format!(
                "hidden_states is empty (shape {:?}): no states to compare",
                hidden.shape()
            )));
        }
        let flat: Vec<f32> = hidden.iter().copied().collect();
        let all = Tensor::from_vec(flat, (rows, t, d), &Device::Cpu).map_err(ApiError::internal)?;
        let states = (0..rows)
            .map(|i| all.get(i))
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(ApiError::internal)?;
        Ok(Saved {
            id: id.to_owned(),
            names: session_names(&config, rows),
            config,
            states,
            tokens: t,
            width: d,
        })
    }

    fn ids(&self) -> Option<Vec<u64>> {
        self.config["input_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
    }

    fn str_field(&self, key: &str) -> Option<String> {
        self.config[key].as_str().map(str::to_owned)
    }

    fn side(&self) -> DiffSide {
        DiffSide {
            session_id: self.id.clone(),
            model_name: self.str_field("model_name"),
            lens_type: self.str_field("lens_type"),
        }
    }
}

/// Row names from the saved lens results, else generic ones.
fn session_names(config: &Value, rows: usize) -> Vec<String> {
    let from_results: Option<Vec<String>> = config["results"]["logit_lens"].as_array().map(|rs| {
        rs.iter()
            .filter_map(|r| r["layer_name"].as_str().map(str::to_owned))
            .collect()
    });
    match from_results {
        Some(n) if n.len() == rows => n,
        _ => (0..rows).map(|i| format!("Row {i}")).collect(),
    }
}

/// Why two sessions cannot be compared, if they cannot.
fn comparable(a: &Saved, b: &Saved) -> ApiResult<()> {
    match (a.ids(), b.ids()) {
        (Some(x), Some(y)) if x != y => {
            let at = x
                .iter()
                .zip(&y)
                .position(|(p, q)| p != q)
                .unwrap_or(x.len().min(y.len()));
            return Err(ApiError::bad_request(format!(
                "the sessions ran different token ids ({} vs {} tokens, first difference at position {at}); compare runs of the same text with the same tokenizer",
                x.len(),
                y.len()
            )));
        }
        (None, _) | (_, None) => return Err(ApiError::bad_request(
            "a session lacks input_ids (saved by another tool?), so its tokens cannot be checked",
        )),
        _ => {}
    }
    if a.tokens != b.tokens {
        return Err(ApiError::bad_request(format!(
            "the sessions saved states of {} and {} tokens; compare runs of the same text",
            a.tokens, b.tokens
        )));
    }
    if a.names != b.names {
        return Err(ApiError::bad_request(format!(
            "the lens rows differ ({} rows of {} vs {} rows of {}); save both with the same lens type and the same number of layers",
            a.names.len(),
            a.config["lens_type"].as_str().unwrap_or("?"),
            b.names.len(),
            b.config["lens_type"].as_str().unwrap_or("?")
        )));
    }
    Ok(())
}

/// The model a session was made with: the one in service when it is that
/// model, else loaded for this comparison through the server's one loading
/// path (the load lock, progress on /events), without taking it into service.
async fn model_of(st: &AppState, s: &Saved) -> ApiResult<Arc<LoadedModel>> {
    let name = s.str_field("model_name").ok_or_else(|| {
        ApiError::bad_request(format!("session {:?} does not name its model", s.id))
    })?;
    let backend: Backend = serde_json::from_value(s.config["backend"].clone()).unwrap_or_default();
    if let Some(m) = lifecycle::in_service(st, &name, backend) {
        return Ok(m);
    }
    lifecycle::load(st, name.clone(), backend, Then::Return)
        .await
        .map_err(|e| {
            ApiError::bad_request(format!(
                "session {:?} was made with {name:?}, which cannot be loaded here: {}",
                s.id, e.detail
            ))
        })
}

#[utoipa::path(post, path = "/diff_sessions", request_body = DiffSessionsRequest,
    responses((status = 200, body = DiffSessionsResponse),
        (status = 400, description = "The sessions cannot be compared (why)"), (status = 404, description = "Unknown session")))]
pub async fn diff_sessions(
    State(st): State<AppState>,
    AppJson(req): AppJson<DiffSessionsRequest>,
) -> ApiResult<Response> {
    let st2 = st.clone();
    let (a, b) = tokio::task::spawn_blocking(move || -> ApiResult<(Saved, Saved)> {
        let (a, b) = (Saved::load(&st2, &req.a)?, Saved::load(&st2, &req.b)?);
        comparable(&a, &b)?;
        Ok((a, b))
    })
    .await
    .map_err(ApiError::internal)??;
    let (ma, mb) = (model_of(&st, &a).await?, model_of(&st, &b).await?);
    for (s, m) in [(&a, &ma), (&b, &mb)] {
        let width = m.config().d_model;
        if width != s.width {
            return Err(ApiError::bad_request(format!(
                "session {:?} saved states of width {}, but its model {:?} has hidden size {width} (was the model changed since?)",
                s.id, s.width, m.name
            )));
        }
    }
    let body = tokio::task::spawn_blocking(move || -> ApiResult<Vec<u8>> {
        let (ta, tb, diff) = lens::diff_states(&ma.model, &a.states, &mb.model, &b.states)?;
        let rows = |m: &LoadedModel, s: &Saved, tops: &[Vec<lens::Top>]| {
            let tops: Vec<&[lens::Top]> = tops.iter().map(Vec::as_slice).collect();
            lens::rows_from_tops(&m.tokenizer, &s.names, &tops)
        };
        let input_tokens = serde_json::from_value(a.config["input_tokens"].clone()).ok();
        let body = DiffSessionsResponse {
            a_logit_lens: rows(&ma, &a, &ta)?,
            b_logit_lens: rows(&mb, &b, &tb)?,
            a: a.side(),
            b: b.side(),
            input_tokens,
            layer_names: a.names,
            diff,
        };
        serde_json::to_vec(&body).map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
