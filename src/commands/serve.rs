//! `logitlens serve`: the web app and the REST API.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use logitlens_engine::default_model;
use logitlens_server::{AppState, ServerConfig};

use crate::model_args::{Backend, HeldArgs, LensArgs, SaeArgs};

#[derive(clap::Args)]
pub struct Args {
    /// Model to load at start (default: the SmolLM2 GGUF, fetched if missing).
    #[arg(long)]
    model: Option<String>,
    #[arg(long, value_enum, default_value = "custom")]
    backend: Backend,
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Where saved_states/ and attention_visualizations/ live.
    #[arg(long, default_value = ".")]
    data_dir: PathBuf,
    /// The built web app (default: frontend/dist next to the binary's workspace, or ./frontend/dist).
    #[arg(long)]
    frontend_dir: Option<PathBuf>,
    /// Longest prompt accepted, in tokens.
    #[arg(long, default_value_t = 2048)]
    max_tokens: usize,
    /// Largest request body accepted, in MiB.
    #[arg(long, default_value_t = 32)]
    max_body_mib: usize,
    #[command(flatten)]
    held: HeldArgs,
    /// Run every request cold (no reuse of a recent run's layers), e.g. to measure.
    #[arg(long)]
    no_reuse: bool,
    /// Memory one request may use at its peak, in MiB, estimated before it runs
    /// (default: a quarter of this machine's memory).
    #[arg(long)]
    max_request_mib: Option<u64>,
    /// Memory recent runs are kept in for /save_state and /runs/{id}/attention, in MiB.
    #[arg(long, default_value_t = 1024)]
    kept_runs_mib: usize,
    /// Requests that may wait for a run at once; more get 503 with Retry-After.
    #[arg(long, default_value_t = 1024)]
    max_queued: usize,
    /// Request bodies the waiting requests may hold in all, in MiB; a request beyond it
    /// gets 503 with Retry-After.
    #[arg(long, default_value_t = 256)]
    max_waiting_mib: usize,
    /// A host name or address to serve besides localhost, 127.0.0.1 and [::1]
    /// (repeatable; needed when binding to another address).
    #[arg(long = "allow-host")]
    allow_hosts: Vec<String>,
    /// Lenses to attach to the model loaded at start.
    #[command(flatten)]
    lenses: LensArgs,
    /// Sparse autoencoders to attach to the model loaded at start.
    #[command(flatten)]
    saes: SaeArgs,
}

impl Args {
    fn config(self) -> Result<ServerConfig> {
        let defaults = ServerConfig::default();
        Ok(ServerConfig {
            saes: self.saes.sources()?,
            data_dir: self.data_dir,
            frontend_dir: self.frontend_dir.or_else(default_frontend_dir),
            max_prompt_tokens: self.max_tokens,
            max_body_bytes: self.max_body_mib << 20,
            compute_dtype: self.held.dtype,
            weights: self.held.weights,
            memory_budget: self.held.memory_budget(),
            reuse_runs: !self.no_reuse,
            max_request_bytes: self
                .max_request_mib
                .map_or(defaults.max_request_bytes, |m| m << 20),
            kept_run_bytes: self.kept_runs_mib << 20,
            max_queued: self.max_queued,
            max_waiting_bytes: self.max_waiting_mib << 20,
            allowed_hosts: self.allow_hosts,
            tuned_lens: self.lenses.tuned_lens,
            jacobian_lens: self.lenses.jacobian_lens,
            ..defaults
        })
    }
}

pub fn run(args: Args) -> Result<()> {
    init_tracing();
    let addr = (args.host, args.port).into();
    let backend = args.backend.kind().into();
    let model = Some(
        args.model
            .clone()
            .unwrap_or_else(|| default_model::FILE_NAME.to_string()),
    );
    let state = AppState::new(args.config()?).context("creating the data folders")?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(logitlens_server::serve(addr, state, model, backend))?;
    Ok(())
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

/// frontend/dist of this checkout (when run with cargo) or of the working folder.
fn default_frontend_dir() -> Option<PathBuf> {
    let candidates = [
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("frontend")
            .join("dist"),
        PathBuf::from("frontend").join("dist"),
    ];
    let first = candidates[0].clone();
    // Checked again per request, so a build made while serving is picked up.
    Some(
        candidates
            .into_iter()
            .find(|p| p.join("index.html").is_file())
            .unwrap_or(first),
    )
}
