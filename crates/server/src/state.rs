//! Shared server state: what the operator configured, the model in service,
//! the load in progress, and the recent runs `/save_state` and
//! `/runs/{id}/attention` can reach.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;
use tokio::sync::broadcast;

use logitlens_engine::{ComputeDtype, LoadedModel, RunState};

use crate::sessions::Sessions;
use crate::status::{Backend, LoadingStatus, ModelStatus};

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

/// A model in service, with the backend name it was loaded under (echoed
/// back as given: scripts compare it with what they sent).
pub struct Active {
    pub model: Arc<LoadedModel>,
    pub backend: Backend,
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

    /// The run behind it, when it is a run of this server.
    pub fn run(&self) -> Option<&Arc<RunState>> {
        match &self.tensors {
            Tensors::Run { run, .. } => Some(run),
            _ => None,
        }
    }
}

pub enum Tensors {
    /// Arrays of a run, serialised when saved.
    Run {
        run: Arc<RunState>,
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
    pub loading: Mutex<Option<LoadingStatus>>,
    pub last_error: Mutex<Option<String>>,
    /// Serialises loads; inference never waits on it.
    pub load_lock: tokio::sync::Mutex<()>,
    pub last_run: Mutex<Option<Arc<LastRun>>>,
    /// Recent runs by id, so a client saves the run it shows rather than
    /// whatever ran last on the server (the original's global state).
    runs: Mutex<VecDeque<(u64, Arc<LastRun>)>>,
    next_run_id: AtomicU64,
    /// /model_status bodies for /events, sent at every change.
    pub events: broadcast::Sender<ModelStatus>,
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
        std::fs::create_dir_all(cfg.data_dir.join(crate::exports::VIZ_DIR))?;
        let (events, _) = broadcast::channel(256);
        Ok(AppState(Arc::new(Inner {
            cfg,
            sessions,
            active: RwLock::new(None),
            loading: Mutex::new(None),
            last_error: Mutex::new(None),
            load_lock: tokio::sync::Mutex::new(()),
            last_run: Mutex::new(None),
            runs: Mutex::new(VecDeque::new()),
            next_run_id: AtomicU64::new(1),
            events,
        })))
    }

    /// The model in service and its backend, cloned under a short lock.
    pub fn active(&self) -> Option<(Arc<LoadedModel>, Backend)> {
        self.active
            .read()
            .expect("state lock")
            .as_ref()
            .map(|a| (a.model.clone(), a.backend))
    }

    pub fn is_loading(&self) -> bool {
        self.loading.lock().expect("state lock").is_some()
    }

    /// Make `run` the last run and keep it under a new id.
    pub fn remember_run(&self, run: Arc<LastRun>) -> u64 {
        let id = self.next_run_id.fetch_add(1, Ordering::Relaxed);
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

    /// A kept run by id.
    pub fn run(&self, id: u64) -> Option<Arc<LastRun>> {
        self.runs
            .lock()
            .expect("state lock")
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, r)| r.clone())
    }

    /// The kept runs, newest first (the engine takes over only those of the
    /// same model and input).
    pub fn kept_runs(&self) -> Vec<Arc<RunState>> {
        self.runs
            .lock()
            .expect("state lock")
            .iter()
            .rev()
            .filter_map(|(_, r)| r.run().cloned())
            .collect()
    }
}
