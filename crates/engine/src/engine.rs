//! Loading a model from any source, and running one `/inference` request.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::api::TrackedCell;
use crate::api::{InferenceRequest, InferenceResponse, LensType};
use crate::attention;
use crate::backend::{BackendKind, Model};
use crate::config::ModelConfig;
use crate::error::{EngineError, Result};
use crate::hooked::{HookedConfig, HookedTransformer};
use crate::hooks::{self, InterventionPlan};
use crate::lens::LensModel as _;
use crate::lens::{self, State};
use crate::model::{Capture, ComputeDtype, Transformer};

/// A parsed config.json for the backend asked for.
enum Config {
    Custom(ModelConfig),
    Hooked(HookedConfig),
}
use crate::source::{HubFiles, ModelSource};
use crate::tokenizer::TokenizerBundle;
use crate::{gguf, gguf_tokenizer};

/// How to load a model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    pub backend: BackendKind,
    pub dtype: ComputeDtype,
    /// Round every weight through float16 first, as the original tool's
    /// loader did (`torch_dtype=float16`). Only for reproducing its numbers.
    pub emulate_f16_load: bool,
}

fn round_f16(t: Tensor) -> Result<Tensor> {
    let dt = t.dtype();
    Ok(t.to_dtype(candle_core::DType::F16)?.to_dtype(dt)?)
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

pub struct LoadedModel {
    /// The name it was loaded by (`model_name` in the API).
    pub name: String,
    /// Unique per load in this process: runs remember which model made them.
    pub id: u64,
    weights_sha256: std::sync::OnceLock<String>,
    pub source: SourceInfo,
    pub model: Model,
    pub tokenizer: TokenizerBundle,
}

/// Most tokens one request may track.
pub const MAX_TRACKED: usize = 16;

fn next_model_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Where the time of one run went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    pub forward: std::time::Duration,
    pub lens_projection: std::time::Duration,
    pub topk_decode: std::time::Duration,
    /// Attention patterns copied out for the response.
    pub attention: std::time::Duration,
    /// Layers taken over from an earlier run instead of recomputed.
    pub reused_layers: usize,
}

/// One run: the response body and the tensors behind it.
pub struct RunOutput {
    pub timings: Timings,
    pub response: InferenceResponse,
    pub ids: Vec<u32>,
    pub lens_type: LensType,
    pub capture: Capture,
    /// Lens rows as (name, state), in response order.
    pub rows: Vec<(String, State)>,
    /// `[T, V]` final logits.
    pub logits: Tensor,
    pub plan: InterventionPlan,
    /// Top 5 per position of every projected state, for later re-runs.
    pub lens_tops: Vec<(State, lens::StateTops)>,
    /// Their entropies, when the run asked for them.
    pub lens_entropies: Vec<(State, lens::StateEntropies)>,
    /// [`LoadedModel::id`] of the model that ran it.
    pub model_id: u64,
}

impl RunOutput {
    /// Memory held by the run's tensors, for bounding caches of runs.
    pub fn bytes(&self) -> usize {
        let c = &self.capture;
        c.resid
            .iter()
            .chain(&c.post_attn)
            .chain(&c.attn_out)
            .chain(&c.mlp_out)
            .chain(&c.patterns)
            .chain(std::iter::once(&self.logits))
            .map(|t| t.elem_count() * t.dtype().size_in_bytes())
            .sum()
    }
}

fn read_to_string(p: &Path) -> Result<String> {
    std::fs::read_to_string(p)
        .map_err(|e| EngineError::Model(format!("cannot read {}: {e}", p.display())))
}

/// The safetensors files of a folder (single or sharded by an index).
fn safetensors_files(
    dir: &Path,
    get: &mut dyn FnMut(&str) -> Result<Option<PathBuf>>,
) -> Result<Vec<PathBuf>> {
    if let Some(index) = get("model.safetensors.index.json")? {
        let v: serde_json::Value = serde_json::from_str(&read_to_string(&index)?)
            .map_err(|e| EngineError::Model(format!("model.safetensors.index.json: {e}")))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| {
                EngineError::Model("model.safetensors.index.json has no weight_map".into())
            })?;
        let mut shards: Vec<String> = map
            .values()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect();
        shards.sort();
        shards.dedup();
        let mut out = Vec::new();
        for s in shards {
            if s.contains('/') || s.contains("..") {
                return Err(EngineError::Model(format!(
                    "shard name {s:?} is not a plain file name"
                )));
            }
            out.push(get(&s)?.ok_or_else(|| EngineError::Model(format!("shard {s} is missing")))?);
        }
        return Ok(out);
    }
    match get("model.safetensors")? {
        Some(p) => Ok(vec![p]),
        None => Err(EngineError::NotFound(format!(
            "{} has neither model.safetensors nor model.safetensors.index.json",
            dir.display()
        ))),
    }
}

/// Load config, weights and tokenizer from a folder laid out as on the Hub;
/// `get(file)` finds each file (a local folder or the Hub cache).
fn load_hf_layout(
    name: &str,
    dir: &Path,
    get: &mut dyn FnMut(&str) -> Result<Option<PathBuf>>,
    mut source: SourceInfo,
    opts: LoadOptions,
    progress: &mut dyn FnMut(LoadEvent),
) -> Result<LoadedModel> {
    let config_path = get("config.json")?
        .ok_or_else(|| EngineError::NotFound(format!("{} has no config.json", dir.display())))?;
    let config_text = read_to_string(&config_path)?;
    // The architecture is checked before any weights are read.
    let cfg = match opts.backend {
        BackendKind::Custom => Config::Custom(ModelConfig::from_hf_json(&config_text)?),
        BackendKind::Hooked => Config::Hooked(HookedConfig::from_hf_json(&config_text)?),
    };
    let tok_path = get("tokenizer.json")?
        .ok_or_else(|| EngineError::NotFound(format!("{} has no tokenizer.json", dir.display())))?;
    let tok_cfg = get("tokenizer_config.json")?
        .map(|p| read_to_string(&p))
        .transpose()?;
    let jinja = get("chat_template.jinja")?
        .map(|p| read_to_string(&p))
        .transpose()?;
    let files = safetensors_files(dir, get)?;
    source.stored_dtype = crate::weights::stored_dtypes(&files)?;
    source.files = files.clone();
    let tokenizer =
        TokenizerBundle::from_hf_files(&std::fs::read(&tok_path)?, tok_cfg.as_deref(), jinja)?;
    progress(LoadEvent::LoadingTensors { done: 0, total: 1 });
    let dtype = match &cfg {
        Config::Custom(c) => opts.dtype.resolve(c),
        Config::Hooked(c) => c.resolve_dtype(opts.dtype),
    };
    let vb = if opts.emulate_f16_load {
        let mut all = std::collections::HashMap::new();
        for f in &files {
            for (k, t) in candle_core::safetensors::load(f, &Device::Cpu)? {
                all.insert(k, round_f16(t)?);
            }
        }
        crate::weights::from_tensors(all, dtype, &Device::Cpu)
    } else {
        crate::weights::from_mmaped_safetensors(&files, dtype, &Device::Cpu)?
    };
    let model = match cfg {
        Config::Custom(c) => Model::Custom(Transformer::load(c, vb)?),
        Config::Hooked(c) => Model::Hooked(HookedTransformer::load(c, vb)?),
    };
    progress(LoadEvent::LoadingTensors { done: 1, total: 1 });
    Ok(LoadedModel {
        name: name.to_owned(),
        weights_sha256: Default::default(),
        id: next_model_id(),
        source,
        model,
        tokenizer,
    })
}

fn load_gguf(
    name: &str,
    path: &Path,
    opts: LoadOptions,
    progress: &mut dyn FnMut(LoadEvent),
) -> Result<LoadedModel> {
    let mut ck = gguf::load(path, &mut |done, total| {
        progress(LoadEvent::LoadingTensors { done, total })
    })?;
    if opts.emulate_f16_load {
        ck.tensors = ck
            .tensors
            .into_iter()
            .map(|(k, t)| Ok((k, round_f16(t)?)))
            .collect::<Result<_>>()?;
    }
    let tok = gguf_tokenizer::tokenizer_from_gguf(&ck.content).map_err(EngineError::Tokenizer)?;
    let md = &ck.content.metadata;
    let token_at = |key: &str| -> String {
        md.get(key)
            .and_then(|v| v.to_u32().ok())
            .and_then(|id| tok.id_to_token(id))
            .unwrap_or_default()
    };
    let (bos, eos) = (
        token_at("tokenizer.ggml.bos_token_id"),
        token_at("tokenizer.ggml.eos_token_id"),
    );
    let template = md
        .get("tokenizer.chat_template")
        .and_then(|v| v.to_string().ok())
        .cloned();
    let tokenizer = TokenizerBundle::new(tok, template, bos, eos, false)?;
    // llama.cpp's rope_freqs divide the frequencies (Llama 3.x).
    let scaled = |inv: Vec<f32>| -> Vec<f32> {
        match &ck.rope_freq_factors {
            Some(factors) => inv.iter().zip(factors).map(|(f, d)| f / d).collect(),
            None => inv,
        }
    };
    let model = match opts.backend {
        BackendKind::Custom => {
            let vb = crate::weights::from_tensors(
                ck.tensors,
                opts.dtype.resolve(&ck.config),
                &Device::Cpu,
            );
            let mut m = Transformer::load(ck.config, vb)?;
            if ck.rope_freq_factors.is_some() {
                m.set_inv_freq(scaled(m.cfg.inv_freq()));
            }
            Model::Custom(m)
        }
        BackendKind::Hooked => {
            let hc = crate::backend::hooked_config_from(&ck.config)?;
            let vb = crate::weights::from_tensors(
                ck.tensors,
                hc.resolve_dtype(opts.dtype),
                &Device::Cpu,
            );
            let mut m = HookedTransformer::load(hc, vb)?;
            if ck.rope_freq_factors.is_some() {
                m.set_inv_freq(scaled(m.config().inv_freq()))?;
            }
            Model::Hooked(m)
        }
    };
    let source = SourceInfo {
        kind: "gguf",
        location: path.display().to_string(),
        revision: None,
        commit: None,
        stored_dtype: ck.dtypes,
        files: vec![path.to_path_buf()],
    };
    Ok(LoadedModel {
        name: name.to_owned(),
        weights_sha256: Default::default(),
        id: next_model_id(),
        source,
        model,
        tokenizer,
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
        if spec == crate::default_model::FILE_NAME {
            // The default model is fetched on first use.
            crate::default_model::ensure_default_model(&mut |msg| {
                tracing::info!("{msg}");
                progress(LoadEvent::Downloading {
                    file: msg.to_owned(),
                    bytes: 0,
                    total_bytes: 0,
                })
            })?;
        }
        let m = match ModelSource::parse(spec)? {
            ModelSource::Gguf(p) => load_gguf(spec, &p, opts, progress)?,
            ModelSource::Dir(dir) => {
                let source = SourceInfo {
                    kind: "dir",
                    location: dir.display().to_string(),
                    revision: None,
                    commit: None,
                    stored_dtype: String::new(),
                    files: Vec::new(),
                };
                let mut get = |f: &str| -> Result<Option<PathBuf>> {
                    let p = dir.join(f);
                    Ok(p.is_file().then_some(p))
                };
                load_hf_layout(spec, &dir, &mut get, source, opts, progress)?
            }
            ModelSource::Hub { repo, revision } => {
                let mut hub = HubFiles::new(&repo, revision.as_deref());
                let dir = PathBuf::from(&repo);
                let progress = RefCell::new(progress);
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
                let source = SourceInfo {
                    kind: "hub",
                    location: repo.clone(),
                    revision: Some(revision.clone().unwrap_or_else(|| "main".into())),
                    commit: None,
                    stored_dtype: String::new(),
                    files: Vec::new(),
                };
                let mut m = load_hf_layout(spec, &dir, &mut get, source, opts, &mut |e| {
                    (progress.borrow_mut())(e)
                })?;
                m.source.commit = HubFiles::new(&repo, revision.as_deref()).commit;
                let progress = progress.into_inner();
                progress(LoadEvent::Ready);
                return Ok(m);
            }
        };
        progress(LoadEvent::Ready);
        Ok(m)
    }

    /// The custom backend's resolved config (None under the hooked backend).
    pub fn config(&self) -> Option<&ModelConfig> {
        self.model.custom_config()
    }

    pub fn info(&self) -> crate::backend::ModelInfo {
        self.model.info()
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

    /// Tokenize a request's text as the original did.
    pub fn tokenize(&self, req: &InferenceRequest) -> Result<Vec<u32>> {
        let ids = self
            .tokenizer
            .encode_prompt(&req.text, req.apply_chat_template)?;
        if ids.is_empty() {
            return Err(EngineError::InvalidRequest(
                "the text encodes to no tokens (it is empty and this tokenizer adds no BOS); nothing to run".into(),
            ));
        }
        Ok(ids)
    }

    /// The ids of a request's `track_tokens`: ids as given, strings that are
    /// exactly one token.
    pub fn track_ids(&self, req: &InferenceRequest) -> Result<Vec<u32>> {
        let Some(list) = &req.track_tokens else {
            return Ok(Vec::new());
        };
        let bad = |m: String| Err(EngineError::InvalidRequest(format!("track_tokens: {m}")));
        if list.is_empty() {
            return bad("the list is empty; leave it out, or list tokens or ids".into());
        }
        if list.len() > MAX_TRACKED {
            return bad(format!("{} entries; at most {MAX_TRACKED}", list.len()));
        }
        let vocab = self.model.vocab_size();
        let mut out = Vec::with_capacity(list.len());
        for v in list {
            let id = match v {
                serde_json::Value::Number(n) => match n.as_u64() {
                    Some(id) if (id as usize) < vocab => id as u32,
                    _ => {
                        return bad(format!(
                            "{n} is not a token id of this model (ids 0..{})",
                            vocab - 1
                        ))
                    }
                },
                serde_json::Value::String(s) => {
                    let ids = self.tokenizer.encode(s, false)?;
                    match ids.as_slice() {
                        [id] => *id,
                        _ => {
                            let pieces = ids
                                .iter()
                                .map(|&i| self.tokenizer.decode_one(i))
                                .collect::<Result<Vec<_>>>()?;
                            return bad(format!(
                                "{s:?} is {} tokens for this tokenizer ({pieces:?}, ids {ids:?}); track a single token, e.g. one of those pieces or its id (a leading space is part of a token: \" Paris\" and \"Paris\" differ)",
                                ids.len()
                            ));
                        }
                    }
                }
                other => return bad(format!("{other} is neither a token string nor an id")),
            };
            out.push(id);
        }
        Ok(out)
    }

    /// The attention a request asks for (None without `return_attention`).
    pub fn attention_spec(&self, req: &InferenceRequest) -> Result<Option<attention::Spec>> {
        let asked = req.attention_format.is_some()
            || req.attention_layers.is_some()
            || req.attention_reduce.is_some();
        if !req.return_attention {
            if asked {
                return Err(EngineError::InvalidRequest(
                    "attention_format, attention_layers and attention_reduce need return_attention: true".into(),
                ));
            }
            return Ok(None);
        }
        attention::Spec::new(
            req.attention_format.as_deref(),
            req.attention_layers.as_deref(),
            req.attention_reduce.as_deref(),
            self.model.n_layers(),
        )
        .map(Some)
    }

    /// Run one `/inference` request: the JSON body plus captured tensors.
    pub fn run(&self, req: &InferenceRequest) -> Result<RunOutput> {
        let lens_type = LensType::parse(&req.lens_type).ok_or_else(|| {
            EngineError::InvalidRequest(format!(
                "unknown lens_type {:?} (known: {})",
                req.lens_type,
                LensType::NAMES
            ))
        })?;
        let ids = self.tokenize(req)?;
        self.run_ids(req, lens_type, ids)
    }

    /// [`run`](Self::run) on already tokenized ids.
    pub fn run_ids(
        &self,
        req: &InferenceRequest,
        lens_type: LensType,
        ids: Vec<u32>,
    ) -> Result<RunOutput> {
        self.run_ids_reusing(req, lens_type, ids, &[])
    }

    /// [`run_ids`](Self::run_ids), taking over from the `earlier` run (of
    /// this model, on the same ids) whose interventions agree longest with
    /// this request's: the states before the first layer they differ at
    /// and the lens rows of those states are reused, not recomputed. The
    /// result is identical to a cold run (tests/reuse.rs).
    pub fn run_ids_reusing(
        &self,
        req: &InferenceRequest,
        lens_type: LensType,
        ids: Vec<u32>,
        earlier: &[&RunOutput],
    ) -> Result<RunOutput> {
        let vocab = self.model.vocab_size();
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= vocab) {
            return Err(EngineError::InvalidRequest(format!(
                "token id {bad} is outside this model's vocabulary of {vocab}"
            )));
        }
        let plan = hooks::plan(
            &req.interventions,
            self.model.n_layers(),
            self.model.d_model(),
            ids.len(),
        )?;
        let attention_spec = self.attention_spec(req)?;
        let track = self.track_ids(req)?;
        let n = self.model.n_layers();
        let usable = |e: &&&RunOutput| e.model_id == self.id && e.ids == ids;
        let best_for = |plan: &InterventionPlan| {
            earlier
                .iter()
                .filter(usable)
                .map(|e| (e.plan.first_difference(plan, n), *e))
                .filter(|(r, _)| *r > 0)
                .max_by_key(|(r, _)| *r)
        };
        let started = std::time::Instant::now();
        // With `compare`, the same ids without interventions: itself taken
        // over from an earlier run where possible, and the intervened run
        // then takes over the baseline's layers before the first operation.
        let empty = InterventionPlan::default();
        let baseline = if req.compare {
            let b = best_for(&empty);
            Some(
                self.model
                    .forward(&ids, &empty, b.map(|(r, e)| (r, &e.capture)))?,
            )
        } else {
            None
        };
        let first_op = empty.first_difference(&plan, n);
        let best = best_for(&plan);
        let from_baseline = baseline
            .as_ref()
            .filter(|_| first_op > best.map_or(0, |(r, _)| r));
        let resume = match (from_baseline, best) {
            (Some(b), _) => Some((first_op, b)),
            (None, Some((r, e))) => Some((r, &e.capture)),
            (None, None) => None,
        };
        let capture = self.model.forward(&ids, &plan, resume)?;
        let forward = started.elapsed();
        let reuse = match best.filter(|_| from_baseline.is_none()) {
            None => lens::Reuse::default(),
            Some((r, e)) => {
                // States before layer r are bit-identical to the earlier run's.
                let before = |s: &State| lens::computed_before(*s, r);
                lens::Reuse {
                    tops: e
                        .lens_tops
                        .iter()
                        .filter(|(s, _)| before(s))
                        .cloned()
                        .collect(),
                    entropies: e
                        .lens_entropies
                        .iter()
                        .filter(|(s, _)| before(s))
                        .cloned()
                        .collect(),
                    logits: (r == n).then(|| e.logits.clone()),
                }
            }
        };
        let extras = lens::Extras {
            track: &track,
            entropy: req.entropy,
            baseline: baseline.as_ref().map(|b| (b, first_op)),
        };
        let lens = lens::compute(
            self.model.lens(),
            &self.tokenizer,
            &capture,
            lens_type,
            &reuse,
            &extras,
        )?;
        let rows = lens::rows(lens_type, n);
        let analysis = if req.analysis {
            let states: Vec<State> = rows.iter().map(|(_, s)| *s).collect();
            Some(crate::analysis::analyse(&capture, &states)?)
        } else {
            None
        };
        let (diff, tracked, entropy) = match &lens.extras {
            None => (None, None, None),
            Some(cells) => {
                let tokens = track
                    .iter()
                    .map(|&id| self.tokenizer.decode_one(id))
                    .collect::<Result<Vec<_>>>()?;
                fn per_cell<T>(
                    cells: &[Vec<lens::CellExtras>],
                    f: impl Fn(&lens::CellExtras) -> T,
                ) -> Vec<Vec<T>> {
                    cells
                        .iter()
                        .map(|row| row.iter().map(&f).collect())
                        .collect()
                }
                (
                    req.compare
                        .then(|| per_cell(cells, |c| c.diff.expect("diff computed"))),
                    (!track.is_empty()).then(|| {
                        cells
                            .iter()
                            .map(|row| {
                                row.iter()
                                    .map(|c| {
                                        c.tracked
                                            .iter()
                                            .zip(&track)
                                            .zip(&tokens)
                                            .map(|((&(prob, rank), &id), token)| TrackedCell {
                                                id,
                                                token: token.clone(),
                                                prob,
                                                rank,
                                            })
                                            .collect()
                                    })
                                    .collect()
                            })
                            .collect()
                    }),
                    req.entropy
                        .then(|| per_cell(cells, |c| c.entropy.expect("entropy computed"))),
                )
            }
        };
        let started = std::time::Instant::now();
        let input_tokens = ids
            .iter()
            .map(|&i| self.tokenizer.decode_one(i))
            .collect::<Result<Vec<_>>>()?;
        let (attention, attention_f16) = match &attention_spec {
            None => (None, None),
            Some(spec) if spec.format == attention::Format::F16 => {
                (None, Some(attention::to_packed(&capture.patterns, spec)?))
            }
            Some(spec) => (Some(attention::to_json(&capture.patterns, spec)?), None),
        };
        let timings = Timings {
            forward,
            lens_projection: lens.projection,
            topk_decode: lens.topk_decode,
            attention: started.elapsed(),
            reused_layers: resume.map_or(0, |(r, _)| r),
        };
        let response = InferenceResponse {
            text: req.text.clone(),
            input_tokens,
            logit_lens: lens.rows,
            attention,
            attention_f16,
            baseline_logit_lens: lens.baseline_rows,
            diff,
            tracked,
            entropy,
            analysis,
            receipts: capture.receipts.clone(),
        };
        Ok(RunOutput {
            timings,
            response,
            ids,
            lens_type,
            rows,
            capture,
            logits: lens.logits,
            plan,
            lens_tops: lens.tops,
            lens_entropies: lens.entropies,
            model_id: self.id,
        })
    }
}
