//! Rotary position embeddings: the inverse frequencies (with Llama 3's
//! "NTK-by-parts" scaling and GGUF's per-frequency factors), the cos/sin
//! tables for a run of positions, and the half-split (`rotate_half`)
//! rotation of the leading `rotary_dim` dims of each head.

use candle_core::{DType, Device, Tensor, D};

use crate::error::Result;
use crate::nn::record::{record, Mode};

/// Llama 3 "NTK-by-parts" RoPE scaling (`rope_scaling.rope_type == "llama3"`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Llama3RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: f64,
}

/// RoPE inverse frequencies over `dim` rotated dimensions, llama3 scaling
/// applied when given. Computed as HF does (f32 powers), so positions agree
/// to the last bits.
pub fn inv_freq(dim: usize, theta: f64, scaling: Option<&Llama3RopeScaling>) -> Vec<f32> {
    let base = theta as f32;
    let mut inv: Vec<f32> = (0..dim / 2)
        .map(|j| 1.0f32 / base.powf((2 * j) as f32 / dim as f32))
        .collect();
    if let Some(s) = scaling {
        let old = s.original_max_position_embeddings as f32;
        let low_wavelen = old / s.low_freq_factor as f32;
        let high_wavelen = old / s.high_freq_factor as f32;
        let factor = s.factor as f32;
        for f in inv.iter_mut() {
            let wavelen = 2.0 * std::f32::consts::PI / *f;
            let scaled = if wavelen > low_wavelen {
                *f / factor
            } else {
                *f
            };
            // Finite wavelengths only, so this is HF's `~(w < high) & ~(w > low)`.
            let is_medium = wavelen >= high_wavelen && wavelen <= low_wavelen;
            *f = if is_medium {
                let smooth = (old / wavelen - s.low_freq_factor as f32)
                    / (s.high_freq_factor as f32 - s.low_freq_factor as f32);
                (1.0 - smooth) * scaled / factor + smooth * scaled
            } else {
                scaled
            };
        }
    }
    inv
}

/// `cos`, `sin` as `[T, len(inv_freq)]` for positions `start..start+T`, in
/// `dtype`. The angles are f32 products and cos/sin f32, as in HF (whose
/// angles are an f32 matmul), then cast like HF's tables: a position's row
/// is the same whatever `start` is, so a cached run rotates as a full one.
pub(crate) fn tables(
    inv_freq: &[f32],
    dev: &Device,
    dtype: DType,
    start: usize,
    t: usize,
) -> Result<(Tensor, Tensor)> {
    let half = inv_freq.len();
    let mut cos = Vec::with_capacity(t * half);
    let mut sin = Vec::with_capacity(t * half);
    for p in start..start + t {
        for &f in inv_freq {
            let ang = p as f32 * f;
            cos.push(ang.cos());
            sin.push(ang.sin());
        }
    }
    Ok((
        Tensor::from_vec(cos, (t, half), dev)?.to_dtype(dtype)?,
        Tensor::from_vec(sin, (t, half), dev)?.to_dtype(dtype)?,
    ))
}

/// Half-split (rotate_half) RoPE on the first `rotary_dim` dims of each
/// head of `x: [B, H, T, hd]`; the rest pass through (partial rotary).
/// Without rotary dims, `x` is returned contiguous. Recorded for autograd
/// when asked: a rotation's input gradient is the rotation back (`sin`
/// negated), by the same kernel.
pub(crate) fn rotate(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    rotary_dim: usize,
    mode: Mode,
) -> Result<Tensor> {
    let hd = x.dim(D::Minus1)?;
    if rotary_dim == 0 {
        return Ok(x.contiguous()?);
    }
    let rope = |x: &Tensor| -> Result<Tensor> {
        let y = candle_nn::rotary_emb::rope(&x.detach().contiguous()?, cos, sin)?;
        if mode == Mode::Plain {
            return Ok(y);
        }
        let (cos, sin) = (cos.clone(), sin.clone());
        record(x, y, "rope", move |_, _, g| {
            candle_nn::rotary_emb::rope(&g.contiguous()?, &cos, &sin.neg()?)
        })
    };
    Ok(if rotary_dim == hd {
        rope(x)?
    } else {
        let rot = rope(&x.narrow(D::Minus1, 0, rotary_dim)?)?;
        Tensor::cat(
            &[&rot, &x.narrow(D::Minus1, rotary_dim, hd - rotary_dim)?],
            D::Minus1,
        )?
    })
}
