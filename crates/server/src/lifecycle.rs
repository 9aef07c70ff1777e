//! Loading models and reporting on them: the one place a model is loaded
//! (serialised by the load lock, its progress broadcast to /events), and
//! the /model_status body.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logitlens_engine::{LoadOptions, LoadedModel, WeightsMode};

use crate::error::{ApiError, ApiResult};
use crate::state::{Active, AppState, ServerEvent};
use crate::status::{
    Backend, LoadingStatus, ModelDescription, ModelStatus, ServiceState, ServiceStatus,
    ServingStatus,
};

/// The /model_status body: the original's fields plus the lifecycle.
pub fn status(st: &AppState) -> ModelStatus {
    let loading = st.loading.lock().expect("state lock").clone();
    let last_error = st.last_error.lock().expect("state lock").clone();
    let active = st.active();
    let service = ServiceStatus {
        loaded: active.is_some(),
        backend: active.as_ref().map_or(Backend::Custom, |(_, b)| *b),
        status: match (&loading, &active) {
            (Some(_), _) => ServiceState::Loading,
            (None, Some(_)) => ServiceState::Ready,
            (None, None) => ServiceState::Idle,
        },
        loading,
        last_error,
    };
    match active {
        Some((m, _)) => ModelStatus::Serving(Box::new(ServingStatus {
            model: ModelDescription::of(&m),
            service,
        })),
        None => ModelStatus::Idle(service),
    }
}

pub fn broadcast_status(st: &AppState) {
    // No subscribers is fine.
    let _ = st.events.send(ServerEvent::Status(status(st)));
}

/// Report a load starting (`Some`) or ending (`None`).
pub fn set_loading(st: &AppState, s: Option<LoadingStatus>) {
    *st.loading.lock().expect("state lock") = s;
    broadcast_status(st);
}

/// The model in service, when it is `name` under `backend`.
pub fn in_service(
    st: &AppState,
    name: &str,
    backend: Backend,
    weights: WeightsMode,
) -> Option<Arc<LoadedModel>> {
    st.active()
        .filter(|(m, b)| m.name == name && b.kind() == backend.kind() && weights_match(m, weights))
        .map(|(m, _)| m)
}

/// Whether a loaded model's weights are held as `weights` asks (`auto`
/// takes either form).
pub fn weights_match(m: &LoadedModel, weights: WeightsMode) -> bool {
    let stored = m.model.form() == logitlens_engine::nn::Form::Stored;
    match weights {
        WeightsMode::Auto => true,
        WeightsMode::Stored => stored,
        WeightsMode::F32 => !stored,
    }
}

/// What a load does with the model once it is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Put it in service (the previous model stays if the load fails).
    Serve,
    /// Hand it to the caller only (a session diff's second checkpoint).
    Return,
}

/// Load `name` off the runtime, under the load lock, reporting progress to
/// /model_status and /events.
pub async fn load(
    st: &AppState,
    name: String,
    backend: Backend,
    then: Then,
) -> ApiResult<Arc<LoadedModel>> {
    load_as(st, name, backend, st.cfg.weights, then).await
}

/// [`load`] with its weights held as `weights` asks.
pub async fn load_as(
    st: &AppState,
    name: String,
    backend: Backend,
    weights: WeightsMode,
    then: Then,
) -> ApiResult<Arc<LoadedModel>> {
    let _guard = st.load_lock.lock().await;
    if let Some(m) = in_service(st, &name, backend, weights) {
        return Ok(m);
    }
    set_loading(st, Some(LoadingStatus::new(&name, backend)));
    let st2 = st.clone();
    let name2 = name.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut last_sent = Instant::now() - Duration::from_secs(1);
        let mut last_stage = None;
        let opts = LoadOptions {
            backend: backend.kind(),
            dtype: st2.cfg.compute_dtype,
            weights,
            memory_budget: st2.cfg.memory_budget,
            ..Default::default()
        };
        LoadedModel::load_with(&name2, opts, &mut |e| {
            let stage = {
                let mut l = st2.loading.lock().expect("state lock");
                let Some(s) = l.as_mut() else { return };
                s.apply(&e);
                s.stage
            };
            // Throttled, but every stage change is sent.
            if Some(stage) != last_stage || last_sent.elapsed() > Duration::from_millis(100) {
                last_stage = Some(stage);
                last_sent = Instant::now();
                broadcast_status(&st2);
            }
        })
    })
    .await
    .map_err(ApiError::internal)?;
    match result {
        Ok(m) => {
            let m = Arc::new(m);
            if then == Then::Serve {
                *st.active.write().expect("state lock") = Some(Active {
                    model: m.clone(),
                    backend,
                });
                *st.last_error.lock().expect("state lock") = None;
                tracing::info!("model {name} loaded");
            }
            set_loading(st, None);
            Ok(m)
        }
        Err(e) => {
            let err = ApiError::from(e);
            let msg = format!("failed to load {name}: {}", err.detail);
            tracing::warn!("{msg}");
            if then == Then::Serve {
                *st.last_error.lock().expect("state lock") = Some(msg.clone());
            }
            set_loading(st, None);
            Err(ApiError::new(err.status, msg))
        }
    }
}

/// Attach the lens at `path` to `model` (off the runtime), and tell
/// /events: a folder is a tuned lens (tuned-lens's layout), a file a
/// Jacobian lens (`.pt` or `.safetensors`). The one way a lens is attached,
/// by /load_lens or at start.
/// Read `saes` and attach them to `model`, all or none (`/load_sae` and
/// `serve --sae` alike).
pub async fn attach_saes(
    st: &AppState,
    model: Arc<LoadedModel>,
    saes: Vec<logitlens_engine::api::SaeSource>,
) -> ApiResult<()> {
    let names = tokio::task::spawn_blocking(move || -> logitlens_engine::Result<Vec<String>> {
        let read = saes
            .iter()
            .map(|s| {
                let (dir, opts) = s.options();
                logitlens_engine::sae::Sae::read(&dir, &opts)
            })
            .collect::<logitlens_engine::Result<Vec<_>>>()?;
        Ok(model
            .attach_saes(read)?
            .iter()
            .map(|s| s.name.clone())
            .collect())
    })
    .await
    .map_err(ApiError::internal)??;
    tracing::info!("SAEs attached: {}", names.join(", "));
    broadcast_status(st);
    Ok(())
}

pub async fn attach_lens(
    st: &AppState,
    model: Arc<LoadedModel>,
    path: std::path::PathBuf,
) -> ApiResult<()> {
    let shown = path.display().to_string();
    let kind = tokio::task::spawn_blocking(move || -> logitlens_engine::Result<&str> {
        if path.is_dir() {
            model.attach_tuned_lens(&path).map(|_| "tuned")
        } else {
            model.attach_jacobian_lens(&path).map(|_| "Jacobian")
        }
    })
    .await
    .map_err(ApiError::internal)??;
    tracing::info!("{kind} lens {shown} attached");
    broadcast_status(st);
    Ok(())
}
