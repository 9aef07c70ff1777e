//! Sparse autoencoders as SAELens 6.54 defines them: which features are
//! active in a hook's activation, what the SAE reconstructs from them, and
//! the edits made through them (splice, ablate, clamp, steer).
//!
//! For `x` the hook's activation at one position (a row):
//! `x_in = norm_in(x − mean(x)·[centred]) − b_dec·[apply_b_dec_to_input]`,
//! `pre = enc_scale·(x_in · W_enc) + b_enc`, then per architecture
//! (standard: `relu(pre)`; jumprelu: `pre` where `pre > threshold`
//! strictly and `pre > 0`; topk: the k largest of `pre·‖W_dec[f]‖` with
//! rescaling, else of `pre`, relu'd). Decoding:
//! `x̂ = norm_out(b_dec + dec_scale·Σ_f a_f·W_dec[f] / (‖W_dec[f]‖ with
//! rescaling)) + mean(x)·[centred]`. Sums run in f32 over the weights as
//! stored (f32, f16 or bf16): the pre-activations through one product,
//! everything after it in one pass over each row, the decoding over the
//! active rows only.

mod config;
mod files;
mod source;

use std::collections::BinaryHeap;
use std::path::Path;
use std::str::FromStr;

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

pub use config::{Architecture, Normalize, SaeOptions, SaeSettings, CENTERED_REPOS};
pub use files::SaeTensors;
pub use source::{locate, Located};

use crate::error::{EngineError, Result};
use crate::hooks::{HookPoint, SaeCodec, SaeEdit};
use crate::nn::weights::Matrix;

/// Pre-activations computed at once, at most: rows are encoded in chunks
/// of this many bytes of `[rows, d_sae]` f32.
pub const MAX_PRE_BYTES: usize = 64 << 20;

/// One position's features.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseRow {
    /// Active features, by activation (descending; ties by id).
    pub ids: Vec<u32>,
    pub acts: Vec<f32>,
    /// ‖x − x̂‖ at this position.
    pub recon_error: f32,
}

impl SparseRow {
    /// Feature `f`'s activation here (0 when it is not active).
    pub fn act(&self, f: u32) -> f32 {
        act_of(&self.ids, &self.acts, f as usize)
    }
}

/// An SAE ready to read and edit a hook's activations.
pub struct Sae {
    pub name: String,
    /// Where it was read from (a folder, or `repo:folder` from the Hub).
    pub source: String,
    pub hook: HookPoint,
    pub settings: SaeSettings,
    enc: Encoder,
    /// `W_dec` `[d_sae, d_in]`, as stored, contiguous.
    w_dec: Tensor,
    b_enc: Vec<f32>,
    b_dec: Vec<f32>,
    /// ‖W_dec[f]‖.
    dec_norm: Vec<f32>,
    /// What a standard or JumpReLU feature's value must exceed to be
    /// active: 0, or max(θ, 0).
    act_floor: Vec<f32>,
}

impl std::fmt::Debug for Sae {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sae")
            .field("name", &self.name)
            .field("hook", &self.hook.to_string())
            .field("architecture", &self.settings.architecture)
            .field("d_sae", &self.settings.d_sae)
            .finish()
    }
}

impl Sae {
    /// Reads the SAE in `dir` (a SAELens or a Gemma Scope folder), named
    /// by `opts.name` or the folder's name. A `dir` that does not exist
    /// here may name a folder in a Hub repo, `org/name[@revision]:folder`,
    /// read from the local Hub cache as a model's files are.
    pub fn read(dir: &Path, opts: &SaeOptions) -> Result<Sae> {
        let at = source::locate(dir)?;
        let mut opts = opts.clone();
        opts.center_writing_weights = opts.center_writing_weights.or(at.center_writing_weights());
        let (settings, tensors) = files::read(&at.dir, &opts)?;
        let name = opts.name.clone().unwrap_or_else(|| {
            at.dir
                .file_name()
                .map_or_else(|| "sae".into(), |n| n.to_string_lossy().into_owned())
        });
        Sae::from_parts(name, at.source, settings, tensors)
    }

    /// An SAE of these settings and tensors (checked against each other).
    pub fn from_parts(
        name: String,
        source: String,
        settings: SaeSettings,
        t: SaeTensors,
    ) -> Result<Sae> {
        let hook = HookPoint::from_str(&settings.hook)
            .map_err(|e| EngineError::InvalidRequest(format!("SAE {name}: its hook {e}")))?;
        if matches!(hook, HookPoint::AttnScores(_)) {
            return Err(EngineError::InvalidRequest(format!(
                "SAE {name}: {hook} holds attention scores, not an activation an SAE reads"
            )));
        }
        let w_dec = t.w_dec.contiguous()?;
        let dec_norm = row_norms(&w_dec)?;
        if let Architecture::TopK { rescale: true, .. } = settings.architecture {
            if let Some(f) = dec_norm.iter().position(|&n| n == 0.0 || !n.is_finite()) {
                return Err(EngineError::InvalidRequest(format!(
                    "SAE {name}: feature {f}'s decoder row has norm {}, and this SAE divides by it",
                    dec_norm[f]
                )));
            }
        }
        let enc = if t.w_enc.dtype() == DType::F32 {
            Encoder::F32(t.w_enc.contiguous()?)
        } else {
            Encoder::Held(Matrix::Dense(t.w_enc.t()?.contiguous()?))
        };
        let act_floor = match &t.threshold {
            Some(th) if matches!(settings.architecture, Architecture::JumpRelu) => {
                th.iter().map(|t| t.max(0.0)).collect()
            }
            _ => vec![0.0; t.b_enc.len()],
        };
        Ok(Sae {
            name,
            source,
            hook,
            settings,
            enc,
            act_floor,
            w_dec,
            b_enc: t.b_enc,
            b_dec: t.b_dec,
            dec_norm,
        })
    }

    pub fn d_in(&self) -> usize {
        self.settings.d_in
    }

    pub fn d_sae(&self) -> usize {
        self.settings.d_sae
    }

    /// The weights' dtype as stored.
    pub fn dtype(&self) -> DType {
        self.w_dec.dtype()
    }

    /// Bytes it holds.
    pub fn bytes(&self) -> u64 {
        let (d, f) = (self.d_in() as u64, self.d_sae() as u64);
        let w = self.w_dec.dtype().size_in_bytes() as u64;
        2 * d * f * w + 4 * (3 * f + d)
    }

    /// ‖W_dec[f]‖ of each feature.
    pub fn decoder_norms(&self) -> &[f32] {
        &self.dec_norm
    }

    /// The direction feature `f` writes, as decoding adds it per unit of
    /// its reported activation... before `norm_out`: `dec_scale·W_dec[f]`,
    /// divided by ‖W_dec[f]‖ for a rescaling topk SAE.
    fn write_row(&self, f: usize) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; self.d_in()];
        let s = self.settings.dec_scale / self.rescale_norm(f);
        add_rows(&self.w_dec, &[(f, s)], &mut out)?;
        Ok(out)
    }

    /// The decoder row of `f` as SAELens holds it (`dec_scale·W_dec[f]`,
    /// over the scaling factor when one was given): what steering adds
    /// per unit, and what the vocabulary reads of the feature.
    pub fn decoder_row(&self, f: usize) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; self.d_in()];
        let s = self.settings.dec_scale / self.scale_factor();
        add_rows(&self.w_dec, &[(f, s)], &mut out)?;
        Ok(out)
    }

    fn scale_factor(&self) -> f32 {
        match self.settings.normalize {
            Normalize::Scale(s) => s,
            _ => 1.0,
        }
    }

    fn rescale_norm(&self, f: usize) -> f32 {
        match self.settings.architecture {
            Architecture::TopK { rescale: true, .. } => self.dec_norm[f],
            _ => 1.0,
        }
    }

    /// The features of every row of `x: [T, d_in]` (any float dtype).
    pub fn encode(&self, x: &Tensor) -> Result<Vec<SparseRow>> {
        let rows = self.rows(x)?;
        let normed: Vec<Normed> = rows.iter().map(|r| self.norm_in(r)).collect();
        let features = self.features(&normed)?;
        features
            .into_par_iter()
            .zip(normed.par_iter().zip(rows.par_iter()))
            .map(|((ids, acts), (n, x))| {
                let x_hat = self.decode_row(&ids, &acts, n)?;
                let err = x
                    .iter()
                    .zip(&x_hat)
                    .map(|(a, b)| ((a - b) as f64).powi(2))
                    .sum::<f64>()
                    .sqrt() as f32;
                Ok(SparseRow {
                    ids,
                    acts,
                    recon_error: err,
                })
            })
            .collect()
    }

    /// `x`'s rows in f32, checked against d_in.
    fn rows(&self, x: &Tensor) -> Result<Vec<Vec<f32>>> {
        let (_, d) = x.dims2()?;
        if d != self.d_in() {
            return Err(EngineError::InvalidRequest(format!(
                "SAE {}: its input is {} wide, this activation {d}",
                self.name,
                self.d_in()
            )));
        }
        Ok(x.to_dtype(DType::F32)?.to_vec2()?)
    }

    /// A row as the encoder takes it, with what `norm_out` needs to undo.
    fn norm_in(&self, x: &[f32]) -> Normed {
        let d = x.len() as f64;
        let mean = if self.settings.center_input {
            (x.iter().map(|&v| v as f64).sum::<f64>() / d) as f32
        } else {
            0.0
        };
        let mut v: Vec<f32> = x.iter().map(|&a| a - mean).collect();
        let (gain, shift) = match self.settings.normalize {
            Normalize::None => (1.0, 0.0),
            Normalize::Scale(s) => (1.0 / s, 0.0),
            Normalize::ConstantNorm => {
                let norm = v.iter().map(|&a| (a as f64).powi(2)).sum::<f64>().sqrt();
                let c = (d.sqrt() / norm) as f32;
                (1.0 / c, 0.0)
            }
            Normalize::LayerNorm => {
                let mu = v.iter().map(|&a| a as f64).sum::<f64>() / d;
                // torch's std: the unbiased estimate.
                let var =
                    v.iter().map(|&a| (a as f64 - mu).powi(2)).sum::<f64>() / (d - 1.0).max(1.0);
                let sd = var.sqrt() as f32;
                for a in &mut v {
                    *a -= mu as f32;
                }
                // In: divided by σ + eps; out: times σ (SAELens's pair).
                for a in &mut v {
                    *a /= sd + 1e-5;
                }
                (sd, mu as f32)
            }
        };
        if let Normalize::Scale(_) | Normalize::ConstantNorm = self.settings.normalize {
            for a in &mut v {
                *a /= gain;
            }
        }
        if self.settings.apply_b_dec_to_input {
            for (a, b) in v.iter_mut().zip(&self.b_dec) {
                *a -= b;
            }
        }
        Normed {
            input: v,
            gain,
            shift,
            mean,
        }
    }

    /// The active features of each normed row: `[chunk, d_sae]`
    /// pre-activations at a time through the encoder, then one pass per row.
    fn features(&self, normed: &[Normed]) -> Result<Vec<(Vec<u32>, Vec<f32>)>> {
        let (d, f) = (self.d_in(), self.d_sae());
        let chunk = (MAX_PRE_BYTES / (4 * f)).max(1);
        let mut out = Vec::with_capacity(normed.len());
        for part in normed.chunks(chunk) {
            let flat: Vec<f32> = part.iter().flat_map(|n| n.input.iter().copied()).collect();
            let x = Tensor::from_vec(flat, (part.len(), d), &Device::Cpu)?;
            let pre = match &self.enc {
                Encoder::F32(w) => x.matmul(w)?,
                Encoder::Held(m) => m.matmul_t(&x)?,
            }
            .contiguous()?;
            let rows = crate::nn::with_f32_slice(&pre, |pre| {
                pre.par_chunks(f)
                    .map(|p| self.activate(p))
                    .collect::<Vec<_>>()
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// One row's features from its pre-activations (before `b_enc`): one
    /// tight pass over the row (zipped slices, no bounds checks, a branch
    /// nearly always not taken), which costs about what reading it does.
    fn activate(&self, pre: &[f32]) -> (Vec<u32>, Vec<f32>) {
        let s = self.settings.enc_scale;
        let values = pre.iter().zip(&self.b_enc).map(|(&p, &b)| s * p + b);
        let mut active: Vec<(u32, f32)> = Vec::new();
        match self.settings.architecture {
            // relu(pre)·[pre > θ]: above max(θ, 0), so a negative θ still
            // gives no negative activation.
            Architecture::Standard | Architecture::JumpRelu => {
                above(pre, &self.b_enc, s, &self.act_floor, &mut active);
            }
            Architecture::TopK { k, rescale } => {
                // The weakest of the best k so far on top, and its value
                // at hand: nearly every feature is turned away by one
                // comparison with it. Features come in id order, so one
                // equal to the weakest ranks below it (ties go to the
                // lower id) and is turned away too.
                let k = k.min(pre.len());
                let mut best = BinaryHeap::with_capacity(k + 1);
                let mut floor = f32::NEG_INFINITY;
                for (f, (v, &norm)) in values.zip(&self.dec_norm).enumerate() {
                    if k == 0 {
                        break;
                    }
                    let r = if rescale { v * norm } else { v };
                    if best.len() == k && r.partial_cmp(&floor) != Some(std::cmp::Ordering::Greater)
                    {
                        continue;
                    }
                    if best.len() == k {
                        best.pop();
                    }
                    best.push(Ranked(f as u32, r));
                    if best.len() == k {
                        floor = best.peek().map_or(f32::NEG_INFINITY, |w| w.1);
                    }
                }
                active = best
                    .into_iter()
                    .map(|r| (r.0, r.1))
                    .filter(|(_, v)| *v > 0.0)
                    .collect();
            }
        }
        active.sort_unstable_by(by_act);
        active.into_iter().unzip()
    }

    /// `x̂` of one row from its features and what `norm_in` did to it.
    fn decode_row(&self, ids: &[u32], acts: &[f32], n: &Normed) -> Result<Vec<f32>> {
        let mut out = self.b_dec.clone();
        let scaled: Vec<(usize, f32)> = ids
            .iter()
            .zip(acts)
            .map(|(&f, &a)| {
                let f = f as usize;
                (f, a * self.settings.dec_scale / self.rescale_norm(f))
            })
            .collect();
        add_rows(&self.w_dec, &scaled, &mut out)?;
        for v in &mut out {
            *v = *v * n.gain + n.shift + n.mean;
        }
        Ok(out)
    }

    /// The activation of feature `f` at each row of `x`.
    pub fn feature_acts(&self, x: &Tensor, f: usize) -> Result<Vec<f32>> {
        self.check_feature(f)?;
        Ok(self
            .encode(x)?
            .iter()
            .map(|r| act_of(&r.ids, &r.acts, f))
            .collect())
    }

    /// `f` is one of its features, else an error naming its range.
    pub fn check_feature(&self, f: usize) -> Result<()> {
        if f >= self.d_sae() {
            return Err(EngineError::InvalidRequest(format!(
                "feature {f} is out of range: SAE {} has {} features (0..{})",
                self.name,
                self.d_sae(),
                self.d_sae() - 1
            )));
        }
        Ok(())
    }

    /// `edit` on every row of `x: [T, d_in]`, in `x`'s dtype.
    pub fn edit(&self, edit: &SaeEdit, x: &Tensor) -> Result<Tensor> {
        let rows = self.rows(x)?;
        let out: Vec<Vec<f32>> = match *edit {
            SaeEdit::Splice => {
                let normed: Vec<Normed> = rows.iter().map(|r| self.norm_in(r)).collect();
                let features = self.features(&normed)?;
                features
                    .iter()
                    .zip(&normed)
                    .map(|((ids, acts), n)| self.decode_row(ids, acts, n))
                    .collect::<Result<_>>()?
            }
            SaeEdit::Steer { feature, value } => {
                let f = feature as usize;
                self.check_feature(f)?;
                let w = self.decoder_row(f)?;
                rows.into_iter()
                    .map(|r| r.iter().zip(&w).map(|(a, b)| a + value * b).collect())
                    .collect()
            }
            SaeEdit::Ablate { feature } => self.set_feature(rows, feature as usize, |_| 0.0)?,
            SaeEdit::Clamp { feature, value } => {
                self.set_feature(rows, feature as usize, |_| value)?
            }
        };
        let (t, d) = x.dims2()?;
        let flat: Vec<f32> = out.into_iter().flatten().collect();
        Ok(Tensor::from_vec(flat, (t, d), x.device())?.to_dtype(x.dtype())?)
    }

    /// Each row with feature `f`'s share of the reconstruction changed from
    /// its activation `a` to `to(a)`: `x + norm_out'(decode(f') − decode(f))`,
    /// the reconstruction error kept.
    fn set_feature(
        &self,
        rows: Vec<Vec<f32>>,
        f: usize,
        to: impl Fn(f32) -> f32,
    ) -> Result<Vec<Vec<f32>>> {
        self.check_feature(f)?;
        let normed: Vec<Normed> = rows.iter().map(|r| self.norm_in(r)).collect();
        let features = self.features(&normed)?;
        let w = self.write_row(f)?;
        Ok(rows
            .into_iter()
            .zip(features.iter().zip(&normed))
            .map(|(row, ((ids, acts), n))| {
                let a = act_of(ids, acts, f);
                // norm_out is affine per row: the change scales by its gain.
                let c = (to(a) - a) * n.gain;
                row.iter().zip(&w).map(|(x, w)| x + c * w).collect()
            })
            .collect())
    }
}

impl SaeCodec for Sae {
    fn name(&self) -> &str {
        &self.name
    }
    fn hook(&self) -> HookPoint {
        self.hook
    }
    fn d_sae(&self) -> usize {
        self.settings.d_sae
    }
    fn apply(&self, edit: &SaeEdit, x: &Tensor) -> Result<Tensor> {
        self.edit(edit, x)
    }
}

/// A row as the encoder takes it, and `norm_out`: `x̂·gain + shift + mean`.
struct Normed {
    input: Vec<f32>,
    gain: f32,
    shift: f32,
    mean: f32,
}

/// Feature `f`'s activation in a row's active features (0 when inactive).
fn act_of(ids: &[u32], acts: &[f32], f: usize) -> f32 {
    ids.iter()
        .position(|&id| id as usize == f)
        .map_or(0.0, |i| acts[i])
}

/// Push `(f, v)` for each `v = s·pre[f] + b[f]` above `floor[f]`, in id
/// order. A block of 16 at a time is computed and compared at once (the
/// compiler vectorizes it), and almost every block, with none above its
/// floor, costs nothing more: at an L0 of tens among thousands of
/// features this is about the cost of reading the row.
fn above(pre: &[f32], b: &[f32], s: f32, floor: &[f32], out: &mut Vec<(u32, f32)>) {
    const W: usize = 16;
    let n = pre.len();
    let whole = n - n % W;
    for start in (0..whole).step_by(W) {
        let (p, bb, fl) = (
            &pre[start..start + W],
            &b[start..start + W],
            &floor[start..start + W],
        );
        let mut v = [0f32; W];
        let mut any = false;
        for i in 0..W {
            v[i] = s * p[i] + bb[i];
            any |= v[i] > fl[i];
        }
        if any {
            for i in 0..W {
                if v[i] > fl[i] {
                    out.push(((start + i) as u32, v[i]));
                }
            }
        }
    }
    for f in whole..n {
        let v = s * pre[f] + b[f];
        if v > floor[f] {
            out.push((f as u32, v));
        }
    }
}

/// Activation descending, then id ascending.
fn by_act(a: &(u32, f32), b: &(u32, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// A feature and its value, ordered as [`by_act`] ranks them: the greater
/// is the weaker, so a max-heap's top is the weakest it holds.
#[derive(Clone, Copy)]
struct Ranked(u32, f32);

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        by_act(&(self.0, self.1), &(other.0, other.1))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Ranked {}

/// The encoder as its product reads it fastest: f32 weights as stored,
/// `W_enc [d_in, d_sae]`, so the product is exactly `x · W_enc`; other
/// dtypes as `W_encᵀ [d_sae, d_in]`, widened a slice of rows at a time.
enum Encoder {
    F32(Tensor),
    Held(Matrix),
}

/// `out += Σ s·w[f]` over `(f, s)`, reading the rows of `w` as stored.
fn add_rows(w: &Tensor, rows: &[(usize, f32)], out: &mut [f32]) -> Result<()> {
    let d = out.len();
    let (storage, layout) = w.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        return Err(EngineError::Model("SAEs run on CPU tensors only".into()));
    };
    let (start, _) = layout
        .contiguous_offsets()
        .ok_or_else(|| EngineError::Model("an SAE's decoder is not contiguous".into()))?;
    macro_rules! add {
        ($t:ty, $to:expr) => {{
            let data = cpu.as_slice::<$t>()?;
            for &(f, s) in rows {
                let row = &data[start + f * d..start + (f + 1) * d];
                for (o, &v) in out.iter_mut().zip(row) {
                    *o += s * $to(v);
                }
            }
        }};
    }
    match w.dtype() {
        DType::F32 => add!(f32, |v: f32| v),
        DType::F64 => add!(f64, |v: f64| v as f32),
        DType::F16 => add!(half::f16, |v: half::f16| v.to_f32()),
        DType::BF16 => add!(half::bf16, |v: half::bf16| v.to_f32()),
        other => {
            return Err(EngineError::Model(format!(
                "SAE weights in {other:?} are not supported"
            )))
        }
    }
    Ok(())
}

/// ‖w[f]‖ of each row of `w: [n, d]`, summed in f64.
fn row_norms(w: &Tensor) -> Result<Vec<f32>> {
    let (n, d) = w.dims2()?;
    (0..n)
        .map(|f| {
            let mut row = vec![0.0f32; d];
            add_rows(w, &[(f, 1.0)], &mut row)?;
            Ok(row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt() as f32)
        })
        .collect()
}
