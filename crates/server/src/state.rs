//! Shared server state: the model in service, its load lifecycle (with
//! progress broadcast to /events), and the last run that /save_state saves.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use logitlens_engine::{ComputeDtype, LoadEvent, LoadedModel, RunOutput};

use crate::sessions::Sessions;

/// How many recent runs /save_state and /runs/{id}/attention can still
/// reach by `run_id`...
pub const KEPT_RUNS: usize = 16;
/// ...within this much memory (the newest run is always kept).
pub const KEPT_RUN_BYTES: usize = 1 << 30;

/// What the operator configured.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// saved_states/ and attention_visualizations/ live here.
    pub data_dir: PathBuf,
    /// The built SPA (frontend/dist), served at `/` when present.
    pub frontend_dir: Option<PathBuf>,
    pub max_prompt_tokens: usize,
    pub max_body_bytes: usize,
    /// The forward pass's precision for every model this server loads.
    pub compute_dtype: ComputeDtype,
    /// Let re-runs take over layers of recent runs (off: every run is cold,
    /// for measuring).
    pub reuse_runs: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("."),
            frontend_dir: None,
            max_prompt_tokens: 2048,
            max_body_bytes: 32 << 20,
            compute_dtype: ComputeDtype::Auto,
            reuse_runs: true,
        }
    }
}

/// A model in service, with the backend name it was loaded under.
pub struct Active {
    pub model: Arc<LoadedModel>,
    pub backend: String,
}

/// The load in progress, as /model_status and /events report it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LoadingStatus {
    pub model_name: String,
    pub backend: String,
    /// resolving | downloading | loading_tensors | ready
    pub stage: String,
    pub file: Option<String>,
    pub bytes: Option<u64>,
    pub total_bytes: Option<u64>,
    pub tensors_done: Option<usize>,
    pub tensors_total: Option<usize>,
    /// 0..1 when known.
    pub progress: Option<f64>,
}

impl LoadingStatus {
    pub fn new(model_name: &str, backend: &str) -> Self {
        LoadingStatus {
            model_name: model_name.into(),
            backend: backend.into(),
            stage: "resolving".into(),
            file: None,
            bytes: None,
            total_bytes: None,
            tensors_done: None,
            tensors_total: None,
            progress: None,
        }
    }

    pub fn apply(&mut self, e: &LoadEvent) {
        match e {
            LoadEvent::Resolving => self.stage = "resolving".into(),
            LoadEvent::Downloading {
                file,
                bytes,
                total_bytes,
            } => {
                self.stage = "downloading".into();
                self.file = Some(file.clone());
                self.bytes = Some(*bytes);
                self.total_bytes = Some(*total_bytes);
                self.progress = (*total_bytes > 0).then(|| *bytes as f64 / *total_bytes as f64);
            }
            LoadEvent::LoadingTensors { done, total } => {
                self.stage = "loading_tensors".into();
                self.tensors_done = Some(*done);
                self.tensors_total = Some(*total);
                self.progress = (*total > 0).then(|| *done as f64 / *total as f64);
            }
            LoadEvent::Ready => {
                self.stage = "ready".into();
                self.progress = Some(1.0);
            }
        }
    }
}

/// The last successful run (or loaded session): what /save_state writes.
pub struct LastRun {
    pub config: Value,
    pub tensors: Tensors,
    /// The model that produced it, to hash its weights when saved.
    pub model: Option<Arc<LoadedModel>>,
}

impl LastRun {
    /// Memory this entry keeps alive.
    pub fn bytes(&self) -> usize {
        match &self.tensors {
            Tensors::Run { run, .. } => run.bytes(),
            Tensors::File(b) => b.len(),
            Tensors::None => 0,
        }
    }
}

pub enum Tensors {
    /// Arrays of a run, serialised when saved.
    Run {
        run: Arc<RunOutput>,
        with_attention: bool,
    },
    /// The tensors.npz of a loaded session, re-saved as is.
    File(Arc<Vec<u8>>),
    None,
}

pub struct Inner {
    pub cfg: ServerConfig,
    pub sessions: Sessions,
    pub active: RwLock<Option<Active>>,
    /// The backend asked for when nothing is loaded yet.
    pub default_backend: String,
    pub loading: Mutex<Option<LoadingStatus>>,
    pub last_error: Mutex<Option<String>>,
    /// Serialises loads; inference never waits on it.
    pub load_lock: tokio::sync::Mutex<()>,
    pub last_run: Mutex<Option<Arc<LastRun>>>,
    /// Recent runs by id, so a client saves the run it shows rather than
    /// whatever ran last on the server (the original's global state).
    pub runs: Mutex<std::collections::VecDeque<(u64, Arc<LastRun>)>>,
    pub next_run_id: std::sync::atomic::AtomicU64,
    pub events: broadcast::Sender<Value>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(cfg: ServerConfig) -> std::io::Result<Self> {
        let sessions = Sessions::new(&cfg.data_dir)?;
        std::fs::create_dir_all(cfg.data_dir.join(crate::viz::VIZ_DIR))?;
        let (events, _) = broadcast::channel(256);
        Ok(AppState(Arc::new(Inner {
            cfg,
            sessions,
            active: RwLock::new(None),
            default_backend: "custom".into(),
            loading: Mutex::new(None),
            last_error: Mutex::new(None),
            load_lock: tokio::sync::Mutex::new(()),
            last_run: Mutex::new(None),
            runs: Mutex::new(std::collections::VecDeque::new()),
            next_run_id: std::sync::atomic::AtomicU64::new(1),
            events,
        })))
    }

    /// The model in service and its backend, cloned under a short lock.
    pub fn active(&self) -> Option<(Arc<LoadedModel>, String)> {
        self.active
            .read()
            .expect("state lock")
            .as_ref()
            .map(|a| (a.model.clone(), a.backend.clone()))
    }

    pub fn is_loading(&self) -> bool {
        self.loading.lock().expect("state lock").is_some()
    }

    /// The /model_status body: the original's fields plus the lifecycle.
    pub fn status(&self) -> Value {
        let loading = self.loading.lock().expect("state lock").clone();
        let last_error = self.last_error.lock().expect("state lock").clone();
        let mut v = match self.active() {
            Some((m, backend)) => crate::routes::model_info(&m, &backend),
            None => serde_json::json!({"loaded": false, "backend": self.default_backend}),
        };
        let o = v.as_object_mut().expect("object");
        o.insert(
            "status".into(),
            Value::from(if loading.is_some() {
                "loading"
            } else if o["loaded"] == true {
                "ready"
            } else {
                "idle"
            }),
        );
        o.insert(
            "loading".into(),
            serde_json::to_value(&loading).expect("serialisable"),
        );
        o.insert(
            "last_error".into(),
            serde_json::to_value(&last_error).expect("serialisable"),
        );
        v
    }

    /// Make `run` the last run and keep it under a new id.
    pub fn remember_run(&self, run: Arc<LastRun>) -> u64 {
        let id = self
            .next_run_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut runs = self.runs.lock().expect("state lock");
        runs.push_back((id, run.clone()));
        let mut bytes: usize = runs.iter().map(|(_, r)| r.bytes()).sum();
        while runs.len() > KEPT_RUNS || (runs.len() > 1 && bytes > KEPT_RUN_BYTES) {
            if let Some((_, r)) = runs.pop_front() {
                bytes -= r.bytes();
            }
        }
        *self.last_run.lock().expect("state lock") = Some(run);
        id
    }

    pub fn run(&self, id: u64) -> Option<Arc<LastRun>> {
        self.runs
            .lock()
            .expect("state lock")
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, r)| r.clone())
    }

    pub fn broadcast_status(&self) {
        // No subscribers is fine.
        let _ = self.events.send(self.status());
    }

    pub fn set_loading(&self, s: Option<LoadingStatus>) {
        *self.loading.lock().expect("state lock") = s;
        self.broadcast_status();
    }
}
