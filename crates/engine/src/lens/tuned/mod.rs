//! Tuned lenses (Belrose et al. 2023) in the tuned-lens package's format:
//! a folder with `config.json` and `params.pt` (a torch state dict) or
//! `params.safetensors`. Translator `i` is an affine map applied to lens
//! row `i` (row 0 the embeddings, row `s` the residual after block `s-1`)
//! as a residual: `h' = h + W_i h + b_i`; then the model's own final norm
//! and unembedding, as the logit lens. The last row (the model's output)
//! is left alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use serde::Deserialize;

use crate::error::{EngineError, Result};
use crate::model::Transformer;

mod hash;

pub use hash::{unembed_hash_of_matrix, unembed_hash_of_rows};

/// `config.json` of a tuned lens, as the package writes it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct TunedLensConfig {
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    pub d_model: usize,
    pub num_hidden_layers: usize,
    #[serde(default = "yes")]
    pub bias: bool,
    #[serde(default)]
    pub unembed_hash: Option<String>,
    #[serde(default)]
    pub lens_type: Option<String>,
}

fn yes() -> bool {
    true
}

/// A loaded tuned lens: one translator per lens row but the last.
#[derive(Debug, Clone)]
pub struct TunedLens {
    pub config: TunedLensConfig,
    pub dir: PathBuf,
    /// Why the lens may not be for this model (set when it is attached).
    pub warning: Option<String>,
    /// `(W [d, d] as stored, transposed for `h Wᵀ`; b [d])`, in f32.
    translators: Vec<(Tensor, Option<Tensor>)>,
}

impl TunedLens {
    /// Read the lens in `dir` and check it fits a model of width `d_model`
    /// with `n_layers` blocks; every error names the file or both sizes.
    pub fn load(dir: &Path, d_model: usize, n_layers: usize) -> Result<Self> {
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f)).map_err(|e| {
                EngineError::InvalidRequest(format!(
                    "tuned lens: cannot read {}: {e}",
                    dir.join(f).display()
                ))
            })
        };
        let config: TunedLensConfig = serde_json::from_str(&read("config.json")?).map_err(|e| {
            EngineError::InvalidRequest(format!("tuned lens: {}/config.json: {e}", dir.display()))
        })?;
        if let Some(t) = config
            .lens_type
            .as_deref()
            .filter(|t| *t != "linear_tuned_lens")
        {
            return Err(crate::invalid!(
                "tuned lens: lens_type {t:?} is not read; only linear_tuned_lens"
            ));
        }
        if config.d_model != d_model {
            return Err(crate::invalid!(
                "tuned lens: its d_model is {} but the model's is {}",
                config.d_model,
                d_model
            ));
        }
        if config.num_hidden_layers != n_layers {
            return Err(crate::invalid!(
                "tuned lens: it has {} layers but the model has {}",
                config.num_hidden_layers,
                n_layers
            ));
        }
        let tensors: HashMap<String, Tensor> = if dir.join("params.safetensors").is_file() {
            candle_core::safetensors::load(
                dir.join("params.safetensors"),
                &candle_core::Device::Cpu,
            )?
        } else if dir.join("params.pt").is_file() {
            candle_core::pickle::read_all(dir.join("params.pt"))?
                .into_iter()
                .collect()
        } else {
            return Err(crate::invalid!(
                "tuned lens: {} has neither params.safetensors nor params.pt",
                dir.display()
            ));
        };
        // The package's TunedLens.save writes `{i}.weight`; other writers
        // keep the module's prefix, `layer_translators.{i}.weight`.
        let get = |i: usize, part: &str| {
            tensors
                .get(&format!("{i}.{part}"))
                .or_else(|| tensors.get(&format!("layer_translators.{i}.{part}")))
        };
        let d = d_model;
        let mut translators = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let w = get(i, "weight").ok_or_else(|| {
                crate::invalid!("tuned lens: translator {i} has no weight ({i}.weight)")
            })?;
            if w.dims() != [d, d] {
                return Err(crate::invalid!(
                    "tuned lens: translator {i}'s weight is {:?} but the model's d_model is {d}",
                    w.dims()
                ));
            }
            let b = match get(i, "bias") {
                Some(b) if b.dims() == [d] => Some(b.to_dtype(DType::F32)?),
                Some(b) => {
                    return Err(crate::invalid!(
                        "tuned lens: translator {i}'s bias is {:?} but the model's d_model is {d}",
                        b.dims()
                    ))
                }
                None if config.bias => {
                    return Err(crate::invalid!("tuned lens: translator {i} has no bias"))
                }
                None => None,
            };
            translators.push((w.to_dtype(DType::F32)?.t()?.contiguous()?, b));
        }
        let extra = (n_layers..)
            .take_while(|&i| get(i, "weight").is_some())
            .count();
        if extra > 0 {
            return Err(crate::invalid!(
                "tuned lens: it has {} translators but the model has {} layers",
                n_layers + extra,
                n_layers
            ));
        }
        Ok(TunedLens {
            config,
            dir: dir.to_path_buf(),
            warning: None,
            translators,
        })
    }

    /// A lens from its translators: `(W [d, d], b [d])` per row, `W` as
    /// the package stores it (`h' = h + W h + b`).
    pub fn from_translators(config: TunedLensConfig, ws: Vec<(Tensor, Tensor)>) -> Result<Self> {
        let translators = ws
            .into_iter()
            .map(|(w, b)| -> Result<_> {
                Ok((
                    w.to_dtype(DType::F32)?.t()?.contiguous()?,
                    Some(b.to_dtype(DType::F32)?),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TunedLens {
            config,
            dir: PathBuf::new(),
            warning: None,
            translators,
        })
    }

    /// Write `config.json` and `params.safetensors` (keys `{i}.weight`,
    /// `{i}.bias`, as the package's own save spells them) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let config = serde_json::to_string_pretty(&self.config)
            .map_err(|e| EngineError::Model(format!("tuned lens config: {e}")))?;
        std::fs::write(dir.join("config.json"), config)?;
        let mut tensors = HashMap::new();
        for (i, (wt, b)) in self.translators.iter().enumerate() {
            tensors.insert(format!("{i}.weight"), wt.t()?.contiguous()?);
            if let Some(b) = b {
                tensors.insert(format!("{i}.bias"), b.clone());
            }
        }
        candle_core::safetensors::save(&tensors, dir.join("params.safetensors"))?;
        Ok(())
    }

    /// How many rows it translates (the model's layer count).
    pub fn len(&self) -> usize {
        self.translators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.translators.is_empty()
    }

    /// Row `row`'s states `[T, D]` translated: `h + h Wᵀ + b`, in `h`'s
    /// dtype. Rows past the last translator are returned as they are.
    pub fn translate(&self, row: usize, h: &Tensor) -> Result<Tensor> {
        let Some((wt, b)) = self.translators.get(row) else {
            return Ok(h.clone());
        };
        let dt = h.dtype();
        let mut y = h.matmul(&wt.to_dtype(dt)?)?;
        if let Some(b) = b {
            y = y.broadcast_add(&b.to_dtype(dt)?)?;
        }
        Ok((h + y)?)
    }
}

/// The tuned-lens package's hash of `model`'s unembedding, which a lens's
/// config.json records to name the model it was trained for. Reads only
/// the rows the hash prints (six of a real vocabulary).
pub fn unembed_hash(model: &Transformer) -> Result<String> {
    let cfg = model.config();
    unembed_hash_of_rows(cfg.vocab_size, cfg.d_model, |rows| {
        let ids: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        Ok(model
            .unembedding_rows(&ids)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    })
}
