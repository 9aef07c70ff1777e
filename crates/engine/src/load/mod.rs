//! Loading a model from wherever it is: a Hugging Face folder, a `.gguf`
//! file, or a Hub repo id (through the local Hub cache), into a
//! [`LoadedModel`]: the transformer under a backend profile, its tokenizer,
//! and where it came from.

pub mod default_model;
pub mod gguf;
pub mod memory;
mod safetensors;
pub mod source;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::hooks::HookPoint;
use crate::lens::jacobian::{self, JacobianLens};
use crate::lens::tuned::{self, TunedLens};
use crate::model::{BackendKind, Config, Fields, ModelInfo, Transformer};
use crate::nn::{Form, Stored, Weights};
use crate::precision::{ComputeDtype, WeightsMode};
use crate::sae::Sae;
use crate::tokenizer::TokenizerBundle;
use source::{HubFiles, ModelSource};

/// How to load a model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    pub backend: BackendKind,
    pub dtype: ComputeDtype,
    /// Widen the weights, keep them as stored, or choose by size.
    pub weights: WeightsMode,
    /// Bytes the load may take at its peak; `None`: the memory available
    /// when it starts.
    pub memory_budget: Option<u64>,
    /// Round every weight through float16 first, as the original tool's
    /// loader did (`torch_dtype=float16`). Only for reproducing its numbers.
    pub emulate_f16_load: bool,
}

/// What a checkpoint holds, from its headers, before any weight is read.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sizes {
    /// Bytes of every tensor as stored, and of the largest one.
    pub stored: u64,
    pub largest_stored: u64,
    /// Numbers stored, in all and in the largest tensor.
    pub elems: u64,
    pub largest_elems: u64,
}

impl Sizes {
    pub(crate) fn add(&mut self, bytes: u64, elems: u64) {
        self.stored += bytes;
        self.elems += elems;
        if bytes > self.largest_stored {
            self.largest_stored = bytes;
        }
        self.largest_elems = self.largest_elems.max(elems);
    }
}

/// Memory the runtime, tokenizer and first buffers take beside the weights.
const LOAD_OVERHEAD: u64 = 128 << 20;

/// Whether `auto` widens a checkpoint of `elems` numbers to `wide_bytes`
/// each, given the memory `available`.
pub fn auto_widens(elems: u64, wide_bytes: u64, available: u64) -> bool {
    (elems * wide_bytes) as f64 <= WeightsMode::AUTO_WIDEN_SHARE * available as f64
}

/// The form a model's weights will take, and the memory that needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadPlan {
    pub form: Form,
    /// Bytes of weights once loaded.
    pub resident: u64,
    /// Bytes at the load's peak (a tensor in flight, runtime overhead).
    pub peak: u64,
    /// Bytes the load may take.
    pub budget: u64,
}

impl LoadPlan {
    /// Decide the form (`opts.weights`) and refuse, with both numbers, a
    /// load whose peak exceeds the budget.
    pub(crate) fn new(cfg: &Config, sizes: Sizes, opts: &LoadOptions) -> Result<Self> {
        let budget = opts
            .memory_budget
            .or_else(memory::available)
            .unwrap_or(u64::MAX);
        let wide_dtype = cfg.resolve_dtype(opts.dtype);
        let wide = |d: DType| {
            // A widened f64 model keeps an f32 copy of its head for the lens.
            let head = if d == DType::F64 {
                (cfg.vocab_size * cfg.d_model * 4) as u64
            } else {
                0
            };
            sizes.elems * d.size_in_bytes() as u64 + head
        };
        let form = match opts.weights {
            WeightsMode::F32 => Form::Widened(wide_dtype),
            WeightsMode::Stored => {
                if opts.dtype == ComputeDtype::F64 {
                    return Err(crate::invalid!(
                        "weights kept as stored compute in f32; ask for f64 with widened weights (weights: f32)"
                    ));
                }
                Form::Stored
            }
            WeightsMode::Auto => {
                if auto_widens(
                    wide(wide_dtype) / wide_dtype.size_in_bytes() as u64,
                    wide_dtype.size_in_bytes() as u64,
                    budget,
                ) {
                    Form::Widened(wide_dtype)
                } else {
                    Form::Stored
                }
            }
        };
        if opts.emulate_f16_load && form == Form::Stored {
            return Err(crate::invalid!(
                "rounding through float16 (the original's loader) needs widened weights"
            ));
        }
        let (resident, in_flight) = match form {
            Form::Widened(d) => (wide(d), sizes.largest_elems * d.size_in_bytes() as u64),
            // Copied out of its file once; only vectors are widened.
            Form::Stored => (sizes.stored, sizes.largest_stored),
        };
        let peak = resident + in_flight + LOAD_OVERHEAD;
        if peak > budget {
            let how = match form {
                Form::Widened(d) => format!("widened to {d:?}"),
                Form::Stored => "kept as stored".to_owned(),
            };
            return Err(EngineError::TooLarge(format!(
                "this model needs about {} of memory to load ({} of weights, {how}) but {} is available; \
                 free memory, keep the weights as stored (weights: stored), or pick a smaller or more \
                 quantized checkpoint",
                memory::gib(peak),
                memory::gib(resident),
                memory::gib(budget)
            )));
        }
        Ok(LoadPlan {
            form,
            resident,
            peak,
            budget,
        })
    }
}

/// How a loaded model's weights are held, for status displays.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WeightsInfo {
    /// "f32" or "f64" (widened), or "stored".
    pub form: String,
    /// How the big matrices are held: "F32", "BF16", "Q4K, Q6K"...
    pub kinds: String,
    /// Bytes the weights take in memory.
    pub resident_bytes: u64,
}

/// Progress of a model load, for status displays.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum LoadEvent {
    Resolving,
    Downloading {
        file: String,
        bytes: u64,
        total_bytes: u64,
    },
    LoadingTensors {
        done: usize,
        total: usize,
    },
    Ready,
}

/// Where a loaded model's weights came from, recorded in saved sessions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceInfo {
    /// "dir", "gguf" or "hub".
    pub kind: &'static str,
    /// The folder, file, or repo id.
    pub location: String,
    /// Hub revision asked for and the snapshot commit it resolved to.
    pub revision: Option<String>,
    pub commit: Option<String>,
    /// How the weights were stored ("F32", "BF16", "Q4_1, F32"...).
    pub stored_dtype: String,
    /// The weight files, hashed on demand for saved sessions.
    #[serde(skip)]
    pub files: Vec<PathBuf>,
}

impl SourceInfo {
    fn new(kind: &'static str, location: String) -> Self {
        SourceInfo {
            kind,
            location,
            revision: None,
            commit: None,
            stored_dtype: String::new(),
            files: Vec::new(),
        }
    }
}

pub struct LoadedModel {
    /// The name it was loaded by (`model_name` in the API).
    pub name: String,
    /// Unique per load in this process: runs remember which model made them.
    pub id: u64,
    pub backend: BackendKind,
    weights_sha256: std::sync::OnceLock<String>,
    pub source: SourceInfo,
    pub model: Transformer,
    pub tokenizer: TokenizerBundle,
    /// The ids generation stops at (see [`eos_ids`](Self::eos_ids)).
    eos_ids: Vec<u32>,
    /// The tuned lens attached to it, if any (`lens: tuned` runs use it).
    /// Behind a lock so a model in service (shared) can take one.
    tuned_lens: std::sync::RwLock<Option<std::sync::Arc<TunedLens>>>,
    /// The Jacobian lens attached to it, if any (`lens: jacobian` runs
    /// and the `jlens_*` interventions use it).
    jacobian_lens: std::sync::RwLock<Option<std::sync::Arc<JacobianLens>>>,
    /// The sparse autoencoders attached to it, in the order attached
    /// (`sae` readouts and the `sae_*` interventions use them).
    saes: std::sync::RwLock<Vec<std::sync::Arc<Sae>>>,
}

fn next_model_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn round_f16(t: Tensor) -> Result<Tensor> {
    let dt = t.dtype();
    Ok(t.to_dtype(DType::F16)?.to_dtype(dt)?)
}

/// A transformer from safetensors files (one checkpoint, maybe sharded),
/// memory-mapped, on the CPU, its weights in `form`.
pub fn transformer_from_safetensors<P: AsRef<Path>>(
    cfg: Config,
    files: &[P],
    form: Form,
) -> Result<Transformer> {
    let files: Vec<PathBuf> = files.iter().map(|p| p.as_ref().to_path_buf()).collect();
    let src = safetensors::Checkpoint::open(&files)?.into_source();
    Transformer::load(cfg, Weights::new(src, form, &Device::Cpu))
}

/// A model as read from its files, before it becomes a [`LoadedModel`].
struct Parts {
    model: Transformer,
    tokenizer: TokenizerBundle,
    eos_ids: Vec<u32>,
}

/// `eos_token_id` of a config.json or generation_config.json (an id or a
/// list of ids); `None` when the file names none.
fn eos_from_json(text: &str, file: &str) -> Result<Option<Vec<u32>>> {
    let bad = |e: String| EngineError::Model(format!("{file}: {e}"));
    let obj: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let id = |v: &serde_json::Value| {
        v.as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| bad(format!("eos_token_id {v} is not a token id")))
    };
    match obj.get("eos_token_id") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Array(ids)) => Ok(Some(ids.iter().map(id).collect::<Result<_>>()?)),
        Some(v) => Ok(Some(vec![id(v)?])),
    }
}

fn read_to_string(p: &Path) -> Result<String> {
    std::fs::read_to_string(p)
        .map_err(|e| EngineError::Model(format!("cannot read {}: {e}", p.display())))
}

/// Config, weights and tokenizer from a folder laid out as on the Hub;
/// `get(file)` finds each file (a local folder or the Hub cache).
fn load_hf_layout(
    dir: &Path,
    get: &mut dyn FnMut(&str) -> Result<Option<PathBuf>>,
    source: &mut SourceInfo,
    opts: LoadOptions,
    progress: &mut dyn FnMut(LoadEvent),
) -> Result<Parts> {
    let config_path = get("config.json")?
        .ok_or_else(|| EngineError::NotFound(format!("{} has no config.json", dir.display())))?;
    let config_text = read_to_string(&config_path)?;
    // The architecture is checked before any weights are read.
    let cfg = opts.backend.config_from_hf_json(&config_text)?;
    // transformers' generate stops at the generation config's eos ids, which
    // it takes from config.json when the checkpoint has no generation config.
    // Only generation needs them: ids that cannot be read are warned about,
    // not a reason to refuse the model.
    let readable = |eos: Result<Option<Vec<u32>>>| {
        eos.unwrap_or_else(|e| {
            tracing::warn!("{e}; generation does not stop at it");
            None
        })
    };
    let generation_eos = match get("generation_config.json")? {
        Some(p) => {
            readable(read_to_string(&p).and_then(|t| eos_from_json(&t, "generation_config.json")))
        }
        None => None,
    };
    let eos_ids = generation_eos
        .or_else(|| readable(eos_from_json(&config_text, "config.json")))
        .unwrap_or_default();
    let tok_path = get("tokenizer.json")?
        .ok_or_else(|| EngineError::NotFound(format!("{} has no tokenizer.json", dir.display())))?;
    let tok_cfg = get("tokenizer_config.json")?
        .map(|p| read_to_string(&p))
        .transpose()?;
    let jinja = get("chat_template.jinja")?
        .map(|p| read_to_string(&p))
        .transpose()?;
    let files = safetensors::checkpoint_files(dir, get)?;
    let checkpoint = safetensors::Checkpoint::open(&files)?;
    source.stored_dtype = checkpoint.stored_dtypes();
    source.files = files.clone();
    let plan = LoadPlan::new(&cfg, checkpoint.sizes(), &opts)?;
    let tokenizer =
        TokenizerBundle::from_hf_files(&std::fs::read(&tok_path)?, tok_cfg.as_deref(), jinja)?;
    progress(LoadEvent::LoadingTensors { done: 0, total: 1 });
    let src = if opts.emulate_f16_load {
        let mut all = HashMap::new();
        for f in &files {
            for (k, t) in candle_core::safetensors::load(f, &Device::Cpu)? {
                all.insert(k, Stored::Tensor(round_f16(t)?));
            }
        }
        safetensors::TakeTensors::source(all)
    } else {
        checkpoint.into_source()
    };
    let model = Transformer::load(cfg, Weights::new(src, plan.form, &Device::Cpu))?;
    progress(LoadEvent::LoadingTensors { done: 1, total: 1 });
    Ok(Parts {
        model,
        tokenizer,
        eos_ids,
    })
}

/// A GGUF file: its metadata resolves through the family descriptor as a
/// config.json would, then the tensors are read.
fn load_gguf(
    path: &Path,
    source: &mut SourceInfo,
    opts: LoadOptions,
    progress: &mut dyn FnMut(LoadEvent),
) -> Result<Parts> {
    let file = gguf::GgufFile::open(path)?;
    let family = opts.backend.check_family(file.family()?)?;
    let mut cfg = opts
        .backend
        .resolve(family, &Fields(&file.config_fields(family)?))?;
    let plan = LoadPlan::new(&cfg, file.sizes(), &opts)?;
    let tokenizer = TokenizerBundle::from_gguf(&file.content)?;
    let eos_ids = file.eos_id()?.into_iter().collect();
    let keep_blocks = plan.form == Form::Stored;
    let read = file.read_tensors(&cfg, keep_blocks, &mut |done, total| {
        progress(LoadEvent::LoadingTensors { done, total })
    })?;
    let (mut tensors, dtypes) = (read.tensors, read.dtypes);
    // llama.cpp's rope_freqs divide the frequencies (Llama 3.x).
    cfg.rope_freq_factors = read.rope_freq_factors;
    cfg.validate()?;
    if opts.emulate_f16_load {
        tensors = tensors
            .into_iter()
            .map(|(k, t)| {
                let t = match t {
                    Stored::Blocks(q) => q.dequantize(&Device::Cpu)?,
                    Stored::Tensor(t) => t,
                };
                Ok((k, Stored::Tensor(round_f16(t)?)))
            })
            .collect::<Result<_>>()?;
    }
    source.stored_dtype = dtypes;
    source.files = vec![path.to_path_buf()];
    let src = safetensors::TakeTensors::source(tensors);
    let model = Transformer::load(cfg, Weights::new(src, plan.form, &Device::Cpu))?;
    Ok(Parts {
        model,
        tokenizer,
        eos_ids,
    })
}

impl LoadedModel {
    /// Load `spec`: a Hugging Face folder, a `.gguf` file or a Hub repo id.
    pub fn load(spec: &str, progress: &mut dyn FnMut(LoadEvent)) -> Result<Self> {
        Self::load_with(spec, LoadOptions::default(), progress)
    }

    /// [`load`](Self::load) with explicit options.
    pub fn load_with(
        spec: &str,
        opts: LoadOptions,
        progress: &mut dyn FnMut(LoadEvent),
    ) -> Result<Self> {
        progress(LoadEvent::Resolving);
        if spec == default_model::FILE_NAME {
            // The default model is fetched on first use.
            default_model::ensure_default_model(&mut |msg| {
                tracing::info!("{msg}");
                progress(LoadEvent::Downloading {
                    file: msg.to_owned(),
                    bytes: 0,
                    total_bytes: 0,
                })
            })?;
        }
        let progress = RefCell::new(progress);
        let mut report = |e: LoadEvent| (progress.borrow_mut())(e);
        let (source, parts) = match ModelSource::parse(spec)? {
            ModelSource::Gguf(p) => {
                let mut source = SourceInfo::new("gguf", p.display().to_string());
                let parts = load_gguf(&p, &mut source, opts, &mut report)?;
                (source, parts)
            }
            ModelSource::Dir(dir) => {
                let mut source = SourceInfo::new("dir", dir.display().to_string());
                let mut get = |f: &str| -> Result<Option<PathBuf>> {
                    let p = dir.join(f);
                    Ok(p.is_file().then_some(p))
                };
                let parts = load_hf_layout(&dir, &mut get, &mut source, opts, &mut report)?;
                (source, parts)
            }
            ModelSource::Hub { repo, revision } => {
                let mut hub = HubFiles::new(&repo, revision.as_deref());
                let mut source = SourceInfo::new("hub", repo.clone());
                source.revision = Some(revision.clone().unwrap_or_else(|| "main".into()));
                let mut dl = |file: &str, bytes: u64, total: u64| {
                    (progress.borrow_mut())(LoadEvent::Downloading {
                        file: file.to_owned(),
                        bytes,
                        total_bytes: total,
                    })
                };
                // Weights, config and tokenizer fail loudly; the rest may
                // legitimately be absent from a repo.
                let mut get = |f: &str| -> Result<Option<PathBuf>> {
                    if matches!(f, "config.json" | "tokenizer.json") || f.ends_with(".safetensors")
                    {
                        hub.get(f, &mut dl).map(Some)
                    } else {
                        hub.get_optional(f, &mut dl)
                    }
                };
                let parts =
                    load_hf_layout(Path::new(&repo), &mut get, &mut source, opts, &mut |e| {
                        (progress.borrow_mut())(e)
                    })?;
                source.commit = HubFiles::new(&repo, revision.as_deref()).commit;
                (source, parts)
            }
        };
        (progress.borrow_mut())(LoadEvent::Ready);
        Ok(LoadedModel {
            name: spec.to_owned(),
            id: next_model_id(),
            backend: opts.backend,
            weights_sha256: Default::default(),
            source,
            model: parts.model,
            tokenizer: parts.tokenizer,
            eos_ids: parts.eos_ids,
            tuned_lens: Default::default(),
            jacobian_lens: Default::default(),
            saes: Default::default(),
        })
    }

    /// A request's text as the model reads it (wrapped in the chat template
    /// when asked).
    pub fn tokenize(&self, text: &str, apply_chat_template: bool) -> Result<Vec<u32>> {
        self.tokenizer.encode_prompt(text, apply_chat_template)
    }

    /// The resolved configuration.
    pub fn config(&self) -> &Config {
        self.model.config()
    }

    pub fn info(&self) -> ModelInfo {
        self.backend.info(self.model.config())
    }

    /// The ids generation stops at: a folder's `generation_config.json`
    /// `eos_token_id` when it names one, else its `config.json`'s (an id or
    /// a list, as transformers' generate reads them); a GGUF file's
    /// `tokenizer.ggml.eos_token_id`. These may differ from the
    /// tokenizer's own `eos_token` (a chat model's end of turn). Empty when
    /// the model names none.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// Read the tuned lens in `dir` and attach it (replacing any other);
    /// a lens that does not fit this model is an error naming both sizes.
    /// A lens recording another unembedding (a model of the same shape) is
    /// attached with a warning, as the tuned-lens package does.
    pub fn attach_tuned_lens(&self, dir: &Path) -> Result<std::sync::Arc<TunedLens>> {
        let cfg = self.config();
        let mut lens = TunedLens::load(dir, cfg.d_model, cfg.n_layers)?;
        if let Some(recorded) = lens.config.unembed_hash.clone() {
            let ours = tuned::unembed_hash(&self.model)?;
            if recorded != ours {
                let warning = format!(
                    "the lens in {} records unembed_hash {recorded} but this model's unembedding \
                     hashes to {ours}: the lens may have been trained for another model",
                    dir.display()
                );
                tracing::warn!("{warning}");
                lens.warning = Some(warning);
            }
        }
        let lens = std::sync::Arc::new(lens);
        *self.tuned_lens.write().expect("lens lock") = Some(lens.clone());
        Ok(lens)
    }

    /// The tuned lens attached now, if any.
    pub fn tuned_lens(&self) -> Option<std::sync::Arc<TunedLens>> {
        self.tuned_lens.read().expect("lens lock").clone()
    }

    /// Read the Jacobian lens in `path` (`.pt` or `.safetensors`) and
    /// attach it (replacing any other); a lens that does not fit this model
    /// is an error naming both sizes. A lens whose metadata names another
    /// model (or revision) is attached with a warning, as a tuned lens
    /// recording another unembedding is.
    pub fn attach_jacobian_lens(&self, path: &Path) -> Result<std::sync::Arc<JacobianLens>> {
        let cfg = self.config();
        let mut lens = JacobianLens::load(path)?;
        lens.check_fits(cfg.d_model, cfg.n_layers)?;
        let mut warnings = Vec::new();
        if let Some(name) = lens
            .model_name()
            .filter(|n| !jacobian::names_model(n, &self.name))
        {
            warnings.push(format!(
                "the lens in {} was fitted for model {name:?} but this model was loaded as {:?}: \
                 it may belong to another model",
                path.display(),
                self.name
            ));
        }
        let revision = lens.metadata.get("model_revision").and_then(|r| r.as_str());
        if let (Some(theirs), Some(ours)) = (revision, self.source.commit.as_deref()) {
            if theirs != ours {
                warnings.push(format!(
                    "the lens in {} was fitted for revision {theirs} but this model is at {ours}",
                    path.display()
                ));
            }
        }
        if !warnings.is_empty() {
            let warning = warnings.join("; ");
            tracing::warn!("{warning}");
            lens.warning = Some(warning);
        }
        let lens = std::sync::Arc::new(lens);
        *self.jacobian_lens.write().expect("lens lock") = Some(lens.clone());
        Ok(lens)
    }

    /// The Jacobian lens attached now, if any.
    pub fn jacobian_lens(&self) -> Option<std::sync::Arc<JacobianLens>> {
        self.jacobian_lens.read().expect("lens lock").clone()
    }

    /// Attach `saes`, each checked against this model first (its hook
    /// exists, its width is the hook's): all of them or, when one does
    /// not fit, none. One named as an attached one replaces it.
    pub fn attach_saes(&self, mut saes: Vec<Sae>) -> Result<Vec<std::sync::Arc<Sae>>> {
        let mut names = std::collections::HashSet::new();
        for sae in &saes {
            if !names.insert(sae.name.as_str()) {
                return Err(EngineError::InvalidRequest(format!(
                    "two SAEs are named {:?}; give one another name",
                    sae.name
                )));
            }
            self.check_sae(sae)?;
        }
        // TransformerLens centres writing weights only under LayerNorm (it
        // skips them, with a warning, on RMSNorm models), so an SAE trained
        // with the flag on such a model saw the activations uncentred.
        if self.config().norm != crate::nn::NormKind::Layer {
            for sae in saes.iter_mut().filter(|s| s.settings.center_input) {
                sae.settings.center_input = false;
                sae.settings.notes.push(
                    "center_writing_weights is ignored: this model normalises with RMSNorm, and \
                     TransformerLens centres writing weights only under LayerNorm, so the SAE \
                     was trained on uncentred activations"
                        .into(),
                );
            }
        }
        let mut attached = self.saes.write().expect("sae lock");
        let new: Vec<std::sync::Arc<Sae>> = saes.into_iter().map(std::sync::Arc::new).collect();
        for sae in &new {
            for note in &sae.settings.notes {
                tracing::warn!("SAE {}: {note}", sae.name);
            }
            match attached.iter_mut().find(|a| a.name == sae.name) {
                Some(slot) => *slot = sae.clone(),
                None => attached.push(sae.clone()),
            }
        }
        Ok(new)
    }

    /// Take the SAEs named off, all of them or, when one is not attached
    /// (the attached ones named), none.
    pub fn detach_saes(&self, names: &[String]) -> Result<()> {
        let mut attached = self.saes.write().expect("sae lock");
        if let Some(n) = names
            .iter()
            .find(|n| !attached.iter().any(|a| &a.name == *n))
        {
            return Err(EngineError::InvalidRequest(format!(
                "no SAE named {n:?} to take off ({}); nothing was taken off",
                saes_said(&attached)
            )));
        }
        attached.retain(|a| !names.contains(&a.name));
        Ok(())
    }

    /// Whether `sae` can read this model: its hook exists here and is
    /// `d_in` wide.
    fn check_sae(&self, sae: &Sae) -> Result<()> {
        let cfg = self.config();
        if let Some(l) = sae.hook.layer().filter(|&l| l >= cfg.n_layers) {
            return Err(EngineError::InvalidRequest(format!(
                "SAE {}: it reads {}, but this model has {} layers (0..{}), no layer {l}",
                sae.name,
                sae.hook,
                cfg.n_layers,
                cfg.n_layers - 1
            )));
        }
        if sae.hook == HookPoint::PosEmbed && !cfg.has_pos_embed() {
            return Err(EngineError::InvalidRequest(format!(
                "SAE {}: it reads hook_pos_embed, but this model has no learned position \
                 embeddings (its positions are rotary)",
                sae.name
            )));
        }
        if sae.d_in() != cfg.d_model {
            return Err(EngineError::InvalidRequest(format!(
                "SAE {}: its input is {} wide (d_in), but {} of this model is {} wide",
                sae.name,
                sae.d_in(),
                sae.hook,
                cfg.d_model
            )));
        }
        Ok(())
    }

    /// The SAEs attached now, in the order attached.
    pub fn saes(&self) -> Vec<std::sync::Arc<Sae>> {
        self.saes.read().expect("sae lock").clone()
    }

    /// The attached SAE named `name`.
    pub fn sae(&self, name: &str) -> Option<std::sync::Arc<Sae>> {
        self.saes
            .read()
            .expect("sae lock")
            .iter()
            .find(|s| s.name == name)
            .cloned()
    }

    /// The attached SAE named `name`, else an error in words that lists
    /// the attached ones (what every request naming an SAE says).
    pub fn attached_sae(&self, name: &str) -> Result<std::sync::Arc<Sae>> {
        self.sae(name).ok_or_else(|| {
            EngineError::InvalidRequest(format!(
                "sae: no SAE named {name:?} ({})",
                saes_said(&self.saes.read().expect("sae lock"))
            ))
        })
    }

    /// How the weights are held and what they take.
    pub fn weights_info(&self) -> WeightsInfo {
        WeightsInfo {
            form: match self.model.form() {
                Form::Widened(d) => format!("{d:?}").to_lowercase(),
                Form::Stored => "stored".to_owned(),
            },
            kinds: self.model.weight_kinds(),
            resident_bytes: self.model.weight_bytes() as u64,
        }
    }

    /// SHA-256 over the weight files, in order (computed once).
    pub fn weights_sha256(&self) -> Result<String> {
        if let Some(h) = self.weights_sha256.get() {
            return Ok(h.clone());
        }
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for f in &self.source.files {
            let mut file = std::fs::File::open(f)?;
            std::io::copy(&mut file, &mut hasher)?;
        }
        let hex: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(self.weights_sha256.get_or_init(|| hex).clone())
    }
}

/// "attached: a, b", or "none is attached", for messages naming an SAE.
fn saes_said(saes: &[std::sync::Arc<Sae>]) -> String {
    if saes.is_empty() {
        return "none is attached".into();
    }
    let names: Vec<&str> = saes.iter().map(|s| s.name.as_str()).collect();
    format!("attached: {}", names.join(", "))
}
