//! POST /diff_sessions: the diff between two saved sessions, each row's
//! saved states projected through its own model's head. Two sessions of the
//! same prompt on two checkpoints give the diff between the checkpoints.

use std::io::Cursor;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use candle_core::{Device, Tensor};
use ndarray_npy::NpzReader;
use serde::Deserialize;
use serde_json::{json, Value};

use logitlens_engine::lens::{self, LensModel};
use logitlens_engine::{BackendKind, LoadOptions, LoadedModel};

use crate::error::{ApiError, ApiResult, AppJson};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DiffSessionsRequest {
    /// The baseline session's id (as GET /sessions lists it).
    pub a: String,
    /// The session compared with it.
    pub b: String,
}

/// What a diff needs of one saved session.
struct Saved {
    id: String,
    config: Value,
    names: Vec<String>,
    /// One `[T, D]` state per lens row.
    states: Vec<Tensor>,
}

fn load(st: &AppState, id: &str) -> ApiResult<Saved> {
    let (config, npz) = st.sessions.load(id)?;
    let npz = npz.ok_or_else(|| {
        ApiError::bad_request(format!(
            "session {id:?} has no tensors.npz, so there is nothing to compare"
        ))
    })?;
    let bad = |what: String| ApiError::bad_request(format!("session {id:?}: {what}"));
    let mut z = NpzReader::new(Cursor::new(npz)).map_err(|e| bad(format!("tensors.npz: {e}")))?;
    let hidden: ndarray::ArrayD<f32> = z
        .by_name("hidden_states.npy")
        .map_err(|e| bad(format!("tensors.npz has no readable hidden_states: {e}")))?;
    let names = session_names(&config, hidden.shape()[0]);
    let shape = hidden.shape().to_vec();
    if shape.len() != 4 || shape[1] != 1 {
        return Err(bad(format!(
            "hidden_states has shape {shape:?}, not [rows, 1, tokens, d]"
        )));
    }
    let (rows, t, d) = (shape[0], shape[2], shape[3]);
    let flat: Vec<f32> = hidden.iter().copied().collect();
    let all = Tensor::from_vec(flat, (rows, t, d), &Device::Cpu).map_err(ApiError::internal)?;
    let states = (0..rows)
        .map(|i| all.get(i))
        .collect::<candle_core::Result<Vec<_>>>()
        .map_err(ApiError::internal)?;
    Ok(Saved {
        id: id.to_owned(),
        config,
        names,
        states,
    })
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

/// The model a session was made with: the one in service when it is that
/// model, else loaded for this comparison.
fn model_of(st: &AppState, s: &Saved) -> ApiResult<Arc<LoadedModel>> {
    let name = s.config["model_name"].as_str().ok_or_else(|| {
        ApiError::bad_request(format!("session {:?} does not name its model", s.id))
    })?;
    let backend = s.config["backend"].as_str().unwrap_or("custom");
    let kind = BackendKind::parse(backend).unwrap_or_default();
    if let Some((m, b)) = st.active() {
        if m.name == name && BackendKind::parse(&b) == Some(kind) {
            return Ok(m);
        }
    }
    let opts = LoadOptions {
        backend: kind,
        dtype: st.cfg.compute_dtype,
        ..Default::default()
    };
    LoadedModel::load_with(name, opts, &mut |_| {})
        .map(Arc::new)
        .map_err(|e| {
            ApiError::bad_request(format!(
                "session {:?} was made with {name:?}, which cannot be loaded here: {e}",
                s.id
            ))
        })
}

fn slices(rows: &[Vec<lens::Top>]) -> Vec<&[lens::Top]> {
    rows.iter().map(Vec::as_slice).collect()
}

fn ids(s: &Saved) -> Option<Vec<u64>> {
    s.config["input_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
}

#[utoipa::path(post, path = "/diff_sessions", request_body = DiffSessionsRequest,
    responses((status = 200, description = "{a, b, input_tokens, layer_names, a_logit_lens, b_logit_lens, diff[row][position]}"),
        (status = 400, description = "The sessions cannot be compared (why)"), (status = 404, description = "Unknown session")))]
pub async fn diff_sessions(
    State(st): State<AppState>,
    AppJson(req): AppJson<DiffSessionsRequest>,
) -> ApiResult<Response> {
    let body = tokio::task::spawn_blocking(move || -> ApiResult<Vec<u8>> {
        let a = load(&st, &req.a)?;
        let b = load(&st, &req.b)?;
        match (ids(&a), ids(&b)) {
            (Some(x), Some(y)) if x != y => {
                let at = x.iter().zip(&y).position(|(p, q)| p != q).unwrap_or(x.len().min(y.len()));
                return Err(ApiError::bad_request(format!(
                    "the sessions ran different token ids ({} vs {} tokens, first difference at position {at}); compare runs of the same text with the same tokenizer",
                    x.len(),
                    y.len()
                )));
            }
            (None, _) | (_, None) => {
                return Err(ApiError::bad_request(
                    "a session lacks input_ids (saved by another tool?), so its tokens cannot be checked",
                ))
            }
            _ => {}
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
        let (ma, mb) = (model_of(&st, &a)?, model_of(&st, &b)?);
        if ma.info().hidden_size != a.states[0].dim(1).unwrap_or(0)
            || mb.info().hidden_size != b.states[0].dim(1).unwrap_or(0)
        {
            return Err(ApiError::bad_request(
                "a session's states do not fit its model's width (was the model changed since?)",
            ));
        }
        let (ta, tb, diff) = lens::diff_states(
            ma.model.lens() as &dyn LensModel,
            &a.states,
            mb.model.lens(),
            &b.states,
        )?;
        let side = |s: &Saved| {
            json!({
                "session_id": s.id,
                "model_name": s.config["model_name"],
                "lens_type": s.config["lens_type"],
            })
        };
        let body = json!({
            "a": side(&a),
            "b": side(&b),
            "input_tokens": a.config["input_tokens"],
            "layer_names": a.names,
            "a_logit_lens": lens::rows_from_tops(&ma.tokenizer, &a.names, &slices(&ta))?,
            "b_logit_lens": lens::rows_from_tops(&mb.tokenizer, &b.names, &slices(&tb))?,
            "diff": diff,
        });
        serde_json::to_vec(&body).map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
