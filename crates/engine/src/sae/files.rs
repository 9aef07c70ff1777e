//! An SAE's files as they are published: a SAELens folder (`cfg.json` +
//! `sae_weights.safetensors`, and `activation_scaler.json` when a scaling
//! factor was kept apart) or a Gemma Scope folder (`params.npz`). The
//! matrices keep the dtype they are stored in.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::config::{gemma_scope_settings, saelens_settings, SaeOptions, SaeSettings};
use crate::error::{EngineError, Result};

/// An SAE's tensors: `w_enc [d_in, d_sae]`, `w_dec [d_sae, d_in]` as
/// stored; the vectors in f32.
pub struct SaeTensors {
    pub w_enc: Tensor,
    pub w_dec: Tensor,
    pub b_enc: Vec<f32>,
    pub b_dec: Vec<f32>,
    pub threshold: Option<Vec<f32>>,
}

fn bad(what: impl Into<String>) -> EngineError {
    EngineError::InvalidRequest(what.into())
}

/// Reads the SAE in `dir` (SAELens or Gemma Scope).
pub fn read(dir: &Path, opts: &SaeOptions) -> Result<(SaeSettings, SaeTensors)> {
    if !dir.is_dir() {
        return Err(EngineError::NotFound(format!(
            "{}: no such folder (an SAE is a folder with cfg.json and sae_weights.safetensors, \
             or with params.npz)",
            dir.display()
        )));
    }
    let cfg = dir.join("cfg.json");
    if cfg.is_file() {
        return read_saelens(dir, &cfg, opts);
    }
    let npz = dir.join("params.npz");
    if npz.is_file() {
        return read_gemma_scope(dir, &npz, opts);
    }
    Err(EngineError::NotFound(format!(
        "{}: neither cfg.json (SAELens) nor params.npz (Gemma Scope) is in this folder",
        dir.display()
    )))
}

fn read_saelens(dir: &Path, cfg: &Path, opts: &SaeOptions) -> Result<(SaeSettings, SaeTensors)> {
    let text = std::fs::read_to_string(cfg)?;
    let cfg: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(format!("{}: not JSON: {e}", dir.join("cfg.json").display())))?;
    let scaler = match std::fs::read_to_string(dir.join("activation_scaler.json")) {
        Ok(t) => serde_json::from_str::<serde_json::Value>(&t)
            .ok()
            .and_then(|v| v.get("scaling_factor").and_then(serde_json::Value::as_f64)),
        Err(_) => None,
    };
    let settings = saelens_settings(&cfg, opts, scaler)?;
    let weights = dir.join("sae_weights.safetensors");
    if !weights.is_file() {
        return Err(EngineError::NotFound(format!(
            "{}: cfg.json is there but sae_weights.safetensors is not",
            dir.display()
        )));
    }
    let mut t = candle_core::safetensors::load(&weights, &Device::Cpu)
        .map_err(|e| bad(format!("{}: {e}", weights.display())))?;
    if let Some(s) = t.remove("scaling_factor") {
        let s = f32s(&s)?;
        if s.iter().any(|&x| x != 1.0) {
            return Err(bad(
                "this SAE has a finetuning scaling_factor other than 1, which SAELens applies \
                 only with finetuning settings; it is not supported",
            ));
        }
    }
    // Older JumpReLU files keep the threshold's logarithm.
    let threshold = match (t.remove("threshold"), t.remove("log_threshold")) {
        (Some(th), _) => Some(f32s(&th)?),
        (None, Some(log)) => Some(f32s(&log)?.into_iter().map(f32::exp).collect()),
        (None, None) => None,
    };
    tensors(t, threshold, &settings).map(|t| (settings, t))
}

fn read_gemma_scope(
    dir: &Path,
    npz: &Path,
    opts: &SaeOptions,
) -> Result<(SaeSettings, SaeTensors)> {
    let t: HashMap<String, Tensor> = Tensor::read_npz(npz)
        .map_err(|e| bad(format!("{}: {e}", npz.display())))?
        .into_iter()
        .map(|(k, v)| match k.strip_prefix("w_") {
            Some(rest) => (format!("W_{rest}"), v),
            None => (k, v),
        })
        .collect();
    let shape = |k: &str| {
        t.get(k)
            .map(|w| w.dims().to_vec())
            .ok_or_else(|| bad(format!("{}: no {k}", npz.display())))
    };
    let enc = shape("W_enc")?;
    let [d_in, d_sae] = enc[..] else {
        return Err(bad(format!("{}: W_enc is not a matrix", npz.display())));
    };
    let settings = gemma_scope_settings(dir, d_in, d_sae, opts)?;
    let mut t = t;
    let threshold = t.remove("threshold").map(|th| f32s(&th)).transpose()?;
    if threshold.is_none() {
        return Err(bad(format!(
            "{}: a JumpReLU SAE needs threshold",
            npz.display()
        )));
    }
    tensors(t, threshold, &settings).map(|t| (settings, t))
}

/// Every element of a vector, in f32.
fn f32s(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?)
}

/// The tensors named as SAELens names them, checked against `s`'s sizes.
fn tensors(
    mut t: HashMap<String, Tensor>,
    threshold: Option<Vec<f32>>,
    s: &SaeSettings,
) -> Result<SaeTensors> {
    let mut take = |name: &str, dims: &[usize]| -> Result<Tensor> {
        let w = t
            .remove(name)
            .ok_or_else(|| bad(format!("the SAE's weights have no {name}")))?;
        if w.dims() != dims {
            return Err(bad(format!(
                "{name} is {:?}, but d_in {} and d_sae {} make it {dims:?}",
                w.dims(),
                s.d_in,
                s.d_sae
            )));
        }
        Ok(w)
    };
    let (d, f) = (s.d_in, s.d_sae);
    let w_enc = take("W_enc", &[d, f])?;
    let w_dec = take("W_dec", &[f, d])?;
    let b_enc = f32s(&take("b_enc", &[f])?)?;
    let b_dec = f32s(&take("b_dec", &[d])?)?;
    for w in [&w_enc, &w_dec] {
        if !matches!(
            w.dtype(),
            DType::F32 | DType::F16 | DType::BF16 | DType::F64
        ) {
            return Err(bad(format!(
                "SAE weights in {:?} are not supported",
                w.dtype()
            )));
        }
    }
    let threshold = match (s.architecture, threshold) {
        (super::Architecture::JumpRelu, Some(th)) if th.len() == f => Some(th),
        (super::Architecture::JumpRelu, Some(th)) => {
            return Err(bad(format!(
                "threshold has {} values for {f} features",
                th.len()
            )))
        }
        (super::Architecture::JumpRelu, None) => {
            return Err(bad("a JumpReLU SAE needs threshold (or log_threshold)"))
        }
        (_, _) => None,
    };
    Ok(SaeTensors {
        w_enc,
        w_dec,
        b_enc,
        b_dec,
        threshold,
    })
}
