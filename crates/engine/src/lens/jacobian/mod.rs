//! The Jacobian lens (Gurnee et al. 2026, "Verbalizable Representations
//! Form a Global Workspace in Language Models"; TransformerLens 4.3's
//! `JacobianLens`): one matrix `J_ℓ [d, d]` per source layer ℓ, the mean
//! Jacobian of the final block's output with respect to block ℓ's output
//! over a corpus. It reads block ℓ's output `h` through the model's own
//! head after transporting it: `lens(h) = head(J_ℓ h)` (final norm,
//! unembedding, soft-cap); `J = I` is the logit lens. Source layers are
//! block outputs `0..L-2` (lens rows `Layer ℓ`, [`State::Resid`]`(ℓ+1)`);
//! the last block's output is the model's own, read as it is.
//!
//! Its lens vectors `v_t = J_ℓᵀ W_U[:, t]` (row `t` of `W_U J_ℓ`) are the
//! directions the interventions `jlens_steer`, `jlens_ablate` and
//! `jlens_swap` act along (`hooks`).
//!
//! Files: `.pt` as TransformerLens and the reference implementation write
//! them, read by our own pickle reader (`pickle.rs`, `pt.rs`, `payload.rs`)
//! and written so `torch.load(weights_only=True)` reads them; and our own
//! `.safetensors` (`files.rs`).

mod files;
mod payload;
mod pickle;
mod pt;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use serde_json::{Map, Value as Json};

use crate::capture::State;
use crate::error::Result;

/// A Jacobian lens: its matrices, counts and provenance.
#[derive(Debug, Clone)]
pub struct JacobianLens {
    /// `J_ℓ [d, d]` in f32, by source layer.
    matrices: BTreeMap<usize, Tensor>,
    /// The layers it has a matrix for, ascending.
    pub source_layers: Vec<usize>,
    pub d_model: usize,
    /// Prompts averaged into the fit (0 when the file does not say).
    pub n_prompts: u64,
    /// Provenance as TransformerLens records it (`model_name`, `corpus`,
    /// the fit's settings...), in the file's order; empty for the
    /// reference implementation's bare artifacts.
    pub metadata: Map<String, Json>,
    /// The file it was read from (empty for a lens made in memory).
    pub path: PathBuf,
    /// Why the lens may not be for this model (set when it is attached).
    pub warning: Option<String>,
}

impl JacobianLens {
    /// A lens of `matrices` (`[d_model, d_model]` each, by source layer).
    pub fn new(
        matrices: BTreeMap<usize, Tensor>,
        n_prompts: u64,
        d_model: usize,
        metadata: Map<String, Json>,
    ) -> Result<Self> {
        if matrices.is_empty() {
            return Err(crate::invalid!(
                "a Jacobian lens needs at least one layer's matrix"
            ));
        }
        let mut out = BTreeMap::new();
        for (layer, m) in matrices {
            if m.dims() != [d_model, d_model] {
                return Err(crate::invalid!(
                    "the matrix of layer {layer} is {:?} but the lens's d_model is {d_model}",
                    m.dims()
                ));
            }
            out.insert(layer, m.to_dtype(DType::F32)?.contiguous()?);
        }
        Ok(JacobianLens {
            source_layers: out.keys().copied().collect(),
            matrices: out,
            d_model,
            n_prompts,
            metadata,
            path: PathBuf::new(),
            warning: None,
        })
    }

    /// Read a lens file: a `.pt` as TransformerLens or the reference
    /// implementation writes it (artifact or fit checkpoint), or our own
    /// `.safetensors`; told apart by their first bytes.
    pub fn load(path: &Path) -> Result<Self> {
        let mut head = [0u8; 4];
        let n = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .map_err(|e| crate::invalid!("cannot read {}: {e}", path.display()))?;
        if n == 4 && head == *b"PK\x03\x04" {
            let (value, mut archive) = pt::open(path)?;
            return payload::lens(path, &value, &mut archive);
        }
        files::load_safetensors(path).map_err(|e| {
            crate::invalid!(
                "{} is neither a torch .pt archive nor a Jacobian lens's .safetensors ({e})",
                path.display()
            )
        })
    }

    /// Write the lens; `.pt` (float16 matrices, readable by
    /// TransformerLens's `JacobianLens.load`) or `.safetensors` (float32)
    /// by the name's extension.
    pub fn save(&self, path: &Path) -> Result<()> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("pt" | "pth") => files::save_pt(self, path),
            Some("safetensors") => files::save_safetensors(self, path),
            _ => Err(crate::invalid!(
                "{}: a Jacobian lens is saved as .pt or .safetensors",
                path.display()
            )),
        }
    }

    /// Lenses fitted on disjoint prompt slices as one: each layer's mean
    /// weighted by its prompt count. As TransformerLens's `merge`, refused
    /// unless every lens has prompts, the same layers and width, and the
    /// same provenance apart from `n_prompts`.
    pub fn merge(lenses: &[&JacobianLens]) -> Result<Self> {
        let Some(first) = lenses.first() else {
            return Err(crate::invalid!("cannot merge an empty list of lenses"));
        };
        let empty: Vec<usize> = (0..lenses.len())
            .filter(|&i| lenses[i].n_prompts == 0)
            .collect();
        if !empty.is_empty() {
            return Err(crate::invalid!(
                "every lens merged must have a positive n_prompts; lenses {empty:?} have none"
            ));
        }
        // Shards of one fit differ only in their shard and their counts.
        let provenance = |l: &JacobianLens| {
            let mut m = l.metadata.clone();
            m.remove("n_prompts");
            m.remove("shard");
            m
        };
        let shards = merged_shards(lenses)?;
        for (i, other) in lenses.iter().enumerate().skip(1) {
            if other.source_layers != first.source_layers || other.d_model != first.d_model {
                return Err(crate::invalid!(
                    "all lenses merged must share source_layers and d_model: lens 0 has layers \
                     {:?} and d_model {}, lens {i} has {:?} and {}",
                    first.source_layers,
                    first.d_model,
                    other.source_layers,
                    other.d_model
                ));
            }
            if provenance(other) != provenance(first) {
                return Err(crate::invalid!(
                    "all lenses merged must share the same provenance metadata apart from \
                     n_prompts; lens {i}'s differs from lens 0's"
                ));
            }
        }
        let total: u64 = lenses.iter().map(|l| l.n_prompts).sum();
        let mut merged = BTreeMap::new();
        for &layer in &first.source_layers {
            let mut sum = (&first.matrices[&layer] * first.n_prompts as f64)?;
            for l in &lenses[1..] {
                sum = (sum + (&l.matrices[&layer] * l.n_prompts as f64)?)?;
            }
            merged.insert(layer, (sum / total as f64)?);
        }
        let mut metadata = first.metadata.clone();
        if !metadata.is_empty() {
            metadata.insert("n_prompts".into(), total.into());
        }
        match shards {
            Some(s) => metadata.insert("shard".into(), s.into()),
            None => metadata.remove("shard"),
        };
        JacobianLens::new(merged, total, first.d_model, metadata)
    }

    /// Whether it fits a model of width `d_model` with `n_layers` blocks:
    /// the same width, source layers below the last block, and (when its
    /// metadata records one) the last block as its target. Errors name both
    /// sides.
    pub fn check_fits(&self, d_model: usize, n_layers: usize) -> Result<()> {
        if self.d_model != d_model {
            return Err(crate::invalid!(
                "Jacobian lens: it was fitted for d_model {} but the model's d_model is {d_model}",
                self.d_model
            ));
        }
        let last = n_layers.saturating_sub(1);
        let outside: Vec<usize> = self
            .source_layers
            .iter()
            .copied()
            .filter(|&l| l >= last)
            .collect();
        if !outside.is_empty() {
            return Err(crate::invalid!(
                "Jacobian lens: it has matrices for layers {outside:?} but this model has {n_layers} \
                 layers, whose source layers are 0..{} (the last block's output is the model's own)",
                last.saturating_sub(1)
            ));
        }
        match self.metadata.get("target_layer") {
            Some(t) if t.as_u64() != Some(last as u64) => Err(crate::invalid!(
                "Jacobian lens: it targets layer {t} but this model's last block is {last}; only \
                 lenses onto the last block's output are read"
            )),
            _ => Ok(()),
        }
    }

    /// The model its metadata says it was fitted for.
    pub fn model_name(&self) -> Option<&str> {
        self.metadata.get("model_name").and_then(Json::as_str)
    }

    pub fn covers(&self, layer: usize) -> bool {
        self.matrices.contains_key(&layer)
    }

    /// `J_ℓ [d, d]` (f32), if the lens has one for `layer`.
    pub fn matrix(&self, layer: usize) -> Option<&Tensor> {
        self.matrices.get(&layer)
    }

    /// The source layer whose matrix reads `state`: block ℓ's output
    /// (`Resid(ℓ + 1)`) for a layer the lens covers.
    pub fn layer_of(&self, state: State) -> Option<usize> {
        match state {
            State::Resid(i) if i > 0 && self.covers(i - 1) => Some(i - 1),
            _ => None,
        }
    }

    /// Block `layer`'s outputs `[T, D]` transported, `h J_ℓᵀ`, in f32 as
    /// TransformerLens computes it (in f64 for a model computing in f64,
    /// so `J = I` gives its states back exactly), returned in `h`'s dtype;
    /// `h` as it is when the lens has no matrix for `layer`.
    pub fn transport(&self, layer: usize, h: &Tensor) -> Result<Tensor> {
        let Some(j) = self.matrices.get(&layer) else {
            return Ok(h.clone());
        };
        let dt = at_least_f32(h.dtype());
        let y = h.to_dtype(dt)?.matmul(&j.to_dtype(dt)?.t()?)?;
        Ok(y.to_dtype(h.dtype())?)
    }

    /// The lens vectors at `layer` of the tokens whose unembedding rows
    /// are `u [n, D]`: `v_t = J_ℓᵀ W_U[:, t]`, as rows `u J_ℓ` (f32).
    pub fn lens_vectors(&self, layer: usize, u: &Tensor) -> Result<Tensor> {
        let j = self.matrices.get(&layer).ok_or_else(|| {
            crate::invalid!(
                "the Jacobian lens has no matrix for layer {layer}; it covers {:?}",
                self.source_layers
            )
        })?;
        Ok(u.to_dtype(DType::F32)?.matmul(j)?)
    }

    /// The names of the `rows` it transports (the others are read as the
    /// logit lens reads them).
    pub fn transported_rows(&self, rows: &[(String, State)]) -> Vec<String> {
        rows.iter()
            .filter(|(_, s)| self.layer_of(*s).is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// The dtype the lens computes in for states of `dt`: f32, or f64 for f64
/// states.
pub fn at_least_f32(dt: DType) -> DType {
    if dt == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// Whether a `model_name` a lens records names the model loaded as
/// `loaded`: equal, or one a trailing part of the other's path (a lens
/// fitted on `tiny/llama` for a model loaded from `/data/tiny/llama`, or
/// on `gpt2` for `openai-community/gpt2`).
pub fn names_model(recorded: &str, loaded: &str) -> bool {
    let parts = |s: &str| -> Vec<String> {
        s.trim_end_matches(['/', '\\'])
            .split(['/', '\\'])
            .filter(|p| !p.is_empty() && *p != ".")
            .map(str::to_lowercase)
            .collect()
    };
    let (a, b) = (parts(recorded), parts(loaded));
    let n = a.len().min(b.len());
    n > 0 && a[a.len() - n..] == b[b.len() - n..]
}

/// The shards `lenses` hold (their metadata's `shard`, `i/n`), refusing a
/// shard given twice (its prompts would count twice): `None` when none is a
/// shard or they are every shard of their fit, else the shards merged.
fn merged_shards(lenses: &[&JacobianLens]) -> Result<Option<String>> {
    let named: Vec<&str> = lenses
        .iter()
        .filter_map(|l| l.metadata.get("shard").and_then(Json::as_str))
        .collect();
    if named.is_empty() {
        return Ok(None);
    }
    let mut parts: Vec<(usize, usize)> = Vec::new();
    for s in &named {
        let part = s
            .split_once('/')
            .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)))
            .ok_or_else(|| crate::invalid!("a lens's shard {s:?} is not of the form i/n"))?;
        if parts.contains(&part) {
            return Err(crate::invalid!(
                "shard {s} is given twice: its prompts would count twice"
            ));
        }
        parts.push(part);
    }
    parts.sort_unstable();
    let n = parts[0].1;
    let complete = named.len() == lenses.len()
        && parts.iter().all(|&(_, m)| m == n)
        && parts.iter().map(|&(i, _)| i).eq(0..n);
    Ok((!complete).then(|| {
        parts
            .iter()
            .map(|(i, n)| format!("{i}/{n}"))
            .collect::<Vec<_>>()
            .join(",")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn lens(values: &[f32], n: u64) -> JacobianLens {
        let m = Tensor::from_slice(values, (2, 2), &Device::Cpu).unwrap();
        JacobianLens::new(BTreeMap::from([(0, m)]), n, 2, Map::new()).unwrap()
    }

    #[test]
    fn a_merge_weights_each_lens_by_its_prompts() {
        let (a, b) = (lens(&[1., 2., 3., 4.], 1), lens(&[4., 5., 6., 7.], 2));
        let m = JacobianLens::merge(&[&a, &b]).unwrap();
        let got = m
            .matrix(0)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(got, vec![3., 4., 5., 6.]);
        assert_eq!(m.n_prompts, 3);
        let mut c = lens(&[0.; 4], 1);
        c.metadata.insert("corpus".into(), "other".into());
        let e = JacobianLens::merge(&[&a, &c]).unwrap_err().to_string();
        assert!(e.contains("provenance"), "{e}");
        let e = JacobianLens::merge(&[&a, &lens(&[0.; 4], 0)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("[1]"), "{e}");
    }

    #[test]
    fn a_recorded_model_name_may_be_the_tail_of_a_path() {
        assert!(names_model(
            "tiny/llama",
            "/work/tests/fixtures/tiny/llama/"
        ));
        assert!(names_model("gpt2", "openai-community/gpt2"));
        assert!(names_model("openai-community/gpt2", "gpt2"));
        assert!(!names_model(
            "tiny/llama",
            "/work/tests/fixtures/tiny/qwen3"
        ));
        assert!(!names_model("", "gpt2"));
    }
}
