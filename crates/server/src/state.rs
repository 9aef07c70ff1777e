//! Shared server state: what the operator configured, the model in service,
//! the load in progress, and the recent runs `/save_state` and
//! `/runs/{id}/attention` can reach.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::broadcast;

use logitlens_engine::{ComputeDtype, Limits, LoadedModel, RunState, WeightsMode};

use crate::error::ApiError;
use crate::sessions::{SessionConfig, Sessions};
use logitlens_engine::ops::eval::EvalReport;
use logitlens_engine::ops::eval_sae::SaeEvalReport;
use logitlens_engine::ops::fit_jlens::JacobianSums;

use crate::status::{Backend, LoadingStatus, ModelStatus, RunProgress};

/// Recent runs /save_state and /runs/{id}/attention can still reach by
/// `run_id` are kept within [`ServerConfig::kept_run_bytes`] (the newest
/// always); this many at most, however small.
pub const MAX_KEPT_RUNS: usize = 4096;

/// A quarter of this machine's memory: what one request may use unless the
/// operator says otherwise (`--max-request-mib`). With one run at a time
/// and the newest run kept, requests hold at most about half of it.
pub fn default_request_budget() -> u64 {
    logitlens_engine::load::memory::total().unwrap_or(16 << 30) / 4
}

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
    /// How loads hold weights unless /load_model says otherwise.
    pub weights: WeightsMode,
    /// Bytes a load may take at its peak (`None`: the memory available).
    pub memory_budget: Option<u64>,
    /// A tuned lens to attach to the model loaded at start.
    pub tuned_lens: Option<PathBuf>,
    /// A Jacobian lens (`.pt` or `.safetensors`) to attach to the model
    /// loaded at start.
    pub jacobian_lens: Option<PathBuf>,
    /// SAEs attached to the model loaded at start.
    pub saes: Vec<logitlens_engine::api::SaeSource>,
    /// Let re-runs take over layers of recent runs (off: every run is cold,
    /// for measuring).
    pub reuse_runs: bool,
    /// What one request may use at its peak, estimated before it runs.
    pub max_request_bytes: u64,
    /// Memory the kept runs may hold (the newest run is always kept).
    pub kept_run_bytes: usize,
    /// Runs computed at once; more wait in a queue...
    pub max_running: usize,
    /// ...of at most this many, holding at most `max_waiting_bytes` of
    /// request bodies; a request beyond either gets 503 + Retry-After.
    pub max_queued: usize,
    pub max_waiting_bytes: usize,
    /// Host names served besides localhost, 127.0.0.1 and [::1].
    pub allowed_hosts: Vec<String>,
    /// How long a client may take to send its request headers.
    pub header_read_timeout: std::time::Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("."),
            frontend_dir: None,
            max_prompt_tokens: 2048,
            max_body_bytes: 32 << 20,
            compute_dtype: ComputeDtype::Auto,
            weights: WeightsMode::Auto,
            memory_budget: None,
            tuned_lens: None,
            jacobian_lens: None,
            saes: Vec::new(),
            reuse_runs: true,
            max_request_bytes: default_request_budget(),
            kept_run_bytes: 1 << 30,
            max_running: 1,
            max_queued: 1024,
            max_waiting_bytes: 256 << 20,
            allowed_hosts: Vec::new(),
            header_read_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// Who may start a run: at most `max_running` at once; more wait their
/// turn, as many as `max_queued` holding at most `max_waiting_bytes` of
/// request bodies (waiting costs little else: a request is checked before
/// it waits, and holds only its checked spec).
pub struct RunGate {
    running: Arc<tokio::sync::Semaphore>,
    waiting: Mutex<Waiting>,
    max_queued: usize,
    max_waiting_bytes: usize,
    /// The last run's duration, for Retry-After.
    last_secs: Mutex<f64>,
}

#[derive(Default)]
struct Waiting {
    count: usize,
    bytes: usize,
}

/// The queue was full: how long to wait before trying again.
pub struct Busy {
    pub retry_after_secs: u64,
    pub queued: usize,
    pub waiting_bytes: usize,
}

impl RunGate {
    fn new(max_running: usize, max_queued: usize, max_waiting_bytes: usize) -> Self {
        RunGate {
            running: Arc::new(tokio::sync::Semaphore::new(max_running.max(1))),
            waiting: Mutex::default(),
            max_queued,
            max_waiting_bytes,
            last_secs: Mutex::new(1.0),
        }
    }

    /// A permit to run, after waiting in the queue if need be; `bytes` is
    /// what the request holds while it waits. The permit is owned so the
    /// run holds it to its end, even when the request that started it is
    /// gone. A waiting request whose future is dropped (its client left)
    /// leaves the queue at once.
    pub async fn enter(&self, bytes: usize) -> Result<tokio::sync::OwnedSemaphorePermit, Busy> {
        if let Ok(p) = self.running.clone().try_acquire_owned() {
            return Ok(p);
        }
        {
            let mut w = self.waiting.lock().expect("gate lock");
            if w.count >= self.max_queued || w.bytes + bytes > self.max_waiting_bytes {
                let last = *self.last_secs.lock().expect("gate lock");
                return Err(Busy {
                    retry_after_secs: ((w.count + 1) as f64 * last).ceil().max(1.0) as u64,
                    queued: w.count,
                    waiting_bytes: w.bytes,
                });
            }
            w.count += 1;
            w.bytes += bytes;
        }
        struct Leave<'a>(&'a Mutex<Waiting>, usize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                let mut w = self.0.lock().expect("gate lock");
                w.count -= 1;
                w.bytes -= self.1;
            }
        }
        let _leave = Leave(&self.waiting, bytes);
        Ok(self
            .running
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed"))
    }

    /// Whether every run slot is taken.
    pub fn running(&self) -> bool {
        self.running.available_permits() == 0
    }

    /// Requests waiting for their turn.
    pub fn queued(&self) -> usize {
        self.waiting.lock().expect("gate lock").count
    }

    pub fn record(&self, secs: f64) {
        *self.last_secs.lock().expect("gate lock") = secs;
    }
}

/// A model in service, with the backend name it was loaded under (echoed
/// back as given: scripts compare it with what they sent).
pub struct Active {
    pub model: Arc<LoadedModel>,
    pub backend: Backend,
}

/// The last evaluation of a kind (a lens's /eval_lens, an SAE's
/// /eval_sae) and the model it was made with.
pub struct Kept<R> {
    pub model: std::sync::Weak<LoadedModel>,
    pub report: Arc<R>,
}

impl<R: Clone> Kept<R> {
    /// The report, when it was made with `active` (the model in service).
    pub fn of(kept: &Option<Kept<R>>, active: Option<Arc<LoadedModel>>) -> Option<R> {
        match (kept.as_ref(), active) {
            (Some(k), Some(m)) if k.model.upgrade().is_some_and(|km| Arc::ptr_eq(&km, &m)) => {
                Some(k.report.as_ref().clone())
            }
            _ => None,
        }
    }
}

pub type KeptEval = Kept<EvalReport>;

/// The sums of a stopped Jacobian-lens fit, for the model it was made with:
/// what a fit with `resume` continues (GET /fit_jlens describes it).
pub struct KeptFit {
    pub model: std::sync::Weak<LoadedModel>,
    pub sums: JacobianSums,
    /// Prompts the fit was to consider in all.
    pub total: usize,
}

/// The last successful run (or loaded session): what /save_state writes.
pub struct LastRun {
    pub config: SessionConfig,
    pub tensors: Tensors,
    /// The model that produced it, to hash its weights when saved.
    pub model: Option<Arc<LoadedModel>>,
}

impl LastRun {
    /// A run of this server, kept with its config (for /save_state) and
    /// its state (for re-runs, saves and its attention on demand).
    pub fn of_run(
        model: Arc<LoadedModel>,
        config: SessionConfig,
        state: Arc<RunState>,
        with_attention: bool,
    ) -> Self {
        LastRun {
            config,
            tensors: Tensors::Run {
                run: state,
                with_attention,
            },
            model: Some(model),
        }
    }

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
    /// The last lens evaluation, for the model it was made with.
    pub last_eval: Mutex<Option<KeptEval>>,
    /// The last SAE evaluation (/eval_sae).
    pub last_sae_eval: Mutex<Option<Kept<SaeEvalReport>>>,
    /// The last Jacobian-lens fit's sums while it is unfinished.
    pub kept_fit: Mutex<Option<KeptFit>>,
    /// Recent runs by id, so a client saves the run it shows rather than
    /// whatever ran last on the server (the original's global state).
    runs: Mutex<VecDeque<(u64, Arc<LastRun>)>>,
    next_run_id: AtomicU64,
    /// /events messages: the model status at every change, run progress.
    pub events: broadcast::Sender<ServerEvent>,
    pub gate: RunGate,
}

/// A message of the /events stream.
#[derive(Debug, Clone)]
pub enum ServerEvent {
    Status(ModelStatus),
    Run(RunProgress),
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
        let gate = RunGate::new(cfg.max_running, cfg.max_queued, cfg.max_waiting_bytes);
        Ok(AppState(Arc::new(Inner {
            cfg,
            sessions,
            active: RwLock::new(None),
            loading: Mutex::new(None),
            last_error: Mutex::new(None),
            load_lock: tokio::sync::Mutex::new(()),
            last_run: Mutex::new(None),
            last_eval: Mutex::new(None),
            last_sae_eval: Mutex::new(None),
            kept_fit: Mutex::new(None),
            runs: Mutex::new(VecDeque::new()),
            next_run_id: AtomicU64::new(1),
            events,
            gate,
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

    /// The model in service for a request that runs it: 409 while a load
    /// is under way, 400 without a model.
    pub fn serving(&self) -> Result<(Arc<LoadedModel>, Backend), ApiError> {
        if self.is_loading() {
            return Err(ApiError::conflict("model is loading"));
        }
        self.active()
            .ok_or_else(|| ApiError::bad_request("Model not loaded"))
    }

    /// The kept runs a new run may take layers over from (none with
    /// `--no-reuse`).
    pub fn earlier_runs(&self) -> Vec<Arc<RunState>> {
        if self.cfg.reuse_runs {
            self.kept_runs()
        } else {
            Vec::new()
        }
    }

    /// What one request may take on this server.
    pub fn limits(&self) -> Limits {
        Limits::server(self.cfg.max_prompt_tokens, self.cfg.max_request_bytes)
    }

    /// Make `run` the last run and keep it under a new id.
    pub fn remember_run(&self, run: Arc<LastRun>) -> u64 {
        let id = self.next_run_id.fetch_add(1, Ordering::Relaxed);
        let mut runs = self.runs.lock().expect("state lock");
        runs.push_back((id, run.clone()));
        let mut bytes: usize = runs.iter().map(|(_, r)| r.bytes()).sum();
        let budget = self.cfg.kept_run_bytes;
        while runs.len() > MAX_KEPT_RUNS || (runs.len() > 1 && bytes > budget) {
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
