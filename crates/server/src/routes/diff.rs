//! The diff resource: two saved sessions compared, each row's saved states
//! projected through its own model's head. Two sessions of one prompt on
//! two checkpoints give the diff between the checkpoints.

use std::io::BufReader;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use logitlens_engine::lens::{self, DiffCell, LensRow};
use logitlens_engine::{Cost, LoadedModel};

use crate::error::{ApiError, ApiResult, AppJson};
use crate::lifecycle::{self, Then};
use crate::npz::read::{Npz, ReadError};
use crate::sessions::SessionConfig;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(diff_sessions))
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
    config: SessionConfig,
    names: Vec<String>,
    /// The token ids the run saw (`input_ids`).
    ids: Vec<u32>,
    /// One `[T, D]` state per lens row.
    states: Vec<Tensor>,
    /// The tokens `T` and hidden size `D` of the states.
    tokens: usize,
    width: usize,
}

impl Saved {
    /// A session's config and its states, every file checked: the files
    /// regular and bounded (`Sessions::open_file`), the npz read by
    /// `npz::read` against the config's `input_ids` (shapes, sizes, finite
    /// values), the config's lens rows as many as the states' rows.
    fn load(st: &AppState, id: &str) -> ApiResult<Self> {
        let config = st.sessions.config(id)?;
        let bad = |what: String| ApiError::bad_request(format!("session {id:?}: {what}"));
        let file = st
            .sessions
            .tensors(id)?
            .ok_or_else(|| bad("it has no tensors.npz, so there is nothing to compare".into()))?;
        let ids = config.input_ids.clone().ok_or_else(|| {
            bad("config.json: it has no input_ids (saved by another tool?), so its states cannot be \
                 checked against its tokens"
                .into())
        })?;
        // The lens projects every saved position through the head ([tokens,
        // vocabulary] per row): a session longer than any prompt this server
        // runs could make that arbitrarily large, so it is refused the same way.
        st.limits().admit(&Cost {
            tokens: ids.len(),
            tokens_said: format!(
                "session {id:?}: config.json's input_ids has {} tokens",
                ids.len()
            ),
            ..Cost::default()
        })?;
        let npz_error = |e: ReadError| match e {
            ReadError::Invalid(m) => bad(format!("tensors.npz: {m}")),
            ReadError::Io(e) => ApiError::internal(format!("session {id:?}: tensors.npz: {e}")),
        };
        let states = Npz::open(BufReader::new(file.file), file.len)
            .and_then(|mut z| z.session_states(ids.len()))
            .map_err(npz_error)?;
        let (rows, t, d) = (states.rows, states.tokens, states.width);
        let names = session_names(&config, states.names, rows).map_err(bad)?;
        let all = Tensor::from_vec(states.data, (rows, t, d), &Device::Cpu)
            .map_err(ApiError::internal)?;
        let states = (0..rows)
            .map(|i| all.get(i))
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(ApiError::internal)?;
        Ok(Saved {
            id: id.to_owned(),
            names,
            config,
            ids,
            states,
            tokens: t,
            width: d,
        })
    }

    fn side(&self) -> DiffSide {
        DiffSide {
            session_id: self.id.clone(),
            model_name: self.config.model_name.clone(),
            lens_type: Some(self.config.lens_type.as_str().to_owned()),
        }
    }
}

/// Row names: from the saved lens results (what the client saw), else the
/// npz's own layer_names, else generic ones. Saved results must have a row
/// per saved state.
fn session_names(
    config: &SessionConfig,
    from_npz: Option<Vec<String>>,
    rows: usize,
) -> Result<Vec<String>, String> {
    match config.row_names() {
        Some(n) if n.len() != rows => Err(format!(
            "config.json's results have {} lens rows, but tensors.npz's hidden_states has {rows}",
            n.len()
        )),
        Some(n) => Ok(n),
        None => Ok(from_npz.unwrap_or_else(|| (0..rows).map(|i| format!("Row {i}")).collect())),
    }
}

/// Why two sessions cannot be compared, if they cannot. Each session's
/// states were checked against its own input_ids when it was read.
fn comparable(a: &Saved, b: &Saved) -> ApiResult<()> {
    if a.ids != b.ids {
        let (x, y) = (&a.ids, &b.ids);
        let at = x
            .iter()
            .zip(y)
            .position(|(p, q)| p != q)
            .unwrap_or(x.len().min(y.len()));
        return Err(ApiError::bad_request(format!(
            "the sessions ran different token ids: session {:?} has {} tokens and session {:?} {} in their config.json's input_ids, \
             the first difference at position {at}; compare runs of the same text with the same tokenizer",
            a.id,
            x.len(),
            b.id,
            y.len()
        )));
    }
    if a.tokens != b.tokens {
        // Unreachable while each matches its own input_ids; kept as a guard.
        return Err(ApiError::bad_request(format!(
            "session {:?} saved states of {} tokens and session {:?} of {}; compare runs of the same text",
            a.id, a.tokens, b.id, b.tokens
        )));
    }
    if a.names != b.names {
        return Err(ApiError::bad_request(format!(
            "the lens rows differ ({} rows of {} in session {:?} vs {} rows of {} in session {:?}); \
             save both with the same lens type and the same number of layers",
            a.names.len(),
            a.config.lens_type.as_str(),
            a.id,
            b.names.len(),
            b.config.lens_type.as_str(),
            b.id
        )));
    }
    Ok(())
}

/// The model a session was made with: the one in service when it is that
/// model, else loaded for this comparison through the server's one loading
/// path (the load lock, progress on /events), without taking it into service.
async fn model_of(st: &AppState, s: &Saved) -> ApiResult<Arc<LoadedModel>> {
    let name = s.config.model_name.clone().ok_or_else(|| {
        ApiError::bad_request(format!("session {:?} does not name its model", s.id))
    })?;
    let backend = s.config.backend;
    if let Some(m) = lifecycle::in_service(st, &name, backend, st.cfg.weights) {
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
        let input_tokens = a.config.input_tokens.clone();
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
