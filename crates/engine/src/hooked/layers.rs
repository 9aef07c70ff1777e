//! The pieces of a hooked block, loaded from Hugging Face state-dict names:
//! norms, attention projections (separate or fused), MLPs.
//!
//! Tensor layouts follow transformers' `modeling_phi3.py` (fused `qkv_proj`,
//! `gate_up_proj`), `modeling_gpt_neox.py` (per-head interleaved
//! `query_key_value`) and `modeling_gpt2.py` (`Conv1D`, weights `[in, out]`).
//! Fused weights are split once here, so the forward pass sees plain
//! `[out, in]` linears for every family.

use candle_core::{DType, Tensor, D};
use candle_nn::VarBuilder;

use crate::ops::Linear;

use super::config::{Activation, NormKind};
use crate::error::Result;

/// A norm with its weights, applied over the last dim.
pub(crate) struct Norm {
    kind: NormKind,
    weight: Tensor,
    bias: Option<Tensor>,
    eps: f64,
}

impl Norm {
    pub(crate) fn load(vb: &VarBuilder, kind: NormKind, dim: usize, eps: f64) -> Result<Self> {
        let weight = vb.get(dim, "weight")?;
        let (weight, bias) = match kind {
            // Gemma stores w and scales by 1 + w; adding 1 once here is the
            // same f32/f64 sum HF computes on every call.
            NormKind::RmsOnePlus => ((weight + 1.0)?, None),
            NormKind::Rms => (weight, None),
            NormKind::Layer => (weight, Some(vb.get(dim, "bias")?)),
        };
        Ok(Norm {
            kind,
            weight,
            bias,
            eps,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match (&self.kind, &self.bias) {
            (NormKind::Layer, Some(b)) => layer_norm(x, &self.weight, b, self.eps),
            _ => crate::ops::rms_norm(x, &self.weight, self.eps),
        }
    }
}

/// LayerNorm with bias; biased variance as torch.
fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    if x.dtype() == DType::F32 {
        return Ok(candle_nn::ops::layer_norm(
            &x.contiguous()?,
            w,
            b,
            eps as f32,
        )?);
    }
    // candle's fused kernel has no f64 version.
    let xc = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    Ok(xc
        .broadcast_mul(&(var + eps)?.sqrt()?.recip()?)?
        .broadcast_mul(w)?
        .broadcast_add(b)?)
}

pub(crate) fn activation(act: Activation, x: &Tensor) -> Result<Tensor> {
    Ok(match act {
        Activation::Silu => candle_nn::ops::silu(x)?,
        Activation::GeluTanh => x.gelu()?,
        Activation::GeluErf => x.gelu_erf()?,
        Activation::Relu => x.relu()?,
    })
}

/// `[out, in]` weight (+ bias) from `{name}.weight` / `{name}.bias`.
pub(crate) fn linear(vb: &VarBuilder, out_dim: usize, in_dim: usize, bias: bool) -> Result<Linear> {
    let w = vb.get((out_dim, in_dim), "weight")?;
    let b = bias.then(|| vb.get(out_dim, "bias")).transpose()?;
    Linear::new(w, b)
}

/// GPT-2's `Conv1D`: weight stored `[in, out]`, always with bias.
pub(crate) fn conv1d(vb: &VarBuilder, out_dim: usize, in_dim: usize) -> Result<Linear> {
    let w = vb.get((in_dim, out_dim), "weight")?.t()?;
    Linear::new(w, Some(vb.get(out_dim, "bias")?))
}

/// Split a fused projection into row blocks of the given sizes.
pub(crate) fn split_rows(fused: &Linear, sizes: &[usize]) -> Result<Vec<Linear>> {
    let mut out = Vec::with_capacity(sizes.len());
    let mut at = 0;
    for &n in sizes {
        let w = fused.weight().narrow(0, at, n)?.contiguous()?;
        let b = fused
            .bias()
            .map(|b| b.narrow(0, at, n)?.contiguous())
            .transpose()?;
        out.push(Linear::new(w, b)?);
        at += n;
    }
    Ok(out)
}

/// GPT-NeoX's `query_key_value`: rows grouped `[head][q, k, v][head_dim]`.
pub(crate) fn split_per_head_qkv(fused: &Linear, n_heads: usize, hd: usize) -> Result<[Linear; 3]> {
    let d_in = fused.weight().dim(1)?;
    let part = |j: usize| -> Result<Linear> {
        let w = fused
            .weight()
            .reshape((n_heads, 3, hd, d_in))?
            .narrow(1, j, 1)?
            .reshape((n_heads * hd, d_in))?
            .contiguous()?;
        let b = fused
            .bias()
            .map(|b| -> Result<Tensor> {
                Ok(b.reshape((n_heads, 3, hd))?
                    .narrow(1, j, 1)?
                    .reshape(n_heads * hd)?
                    .contiguous()?)
            })
            .transpose()?;
        Linear::new(w, b)
    };
    Ok([part(0)?, part(1)?, part(2)?])
}

pub(crate) struct Attention {
    pub(crate) q: Linear,
    pub(crate) k: Linear,
    pub(crate) v: Linear,
    pub(crate) o: Linear,
    /// Per-head norms on q and k, before RoPE (Qwen3, Phi `qk_layernorm`).
    pub(crate) q_norm: Option<Norm>,
    pub(crate) k_norm: Option<Norm>,
}

pub(crate) enum Mlp {
    /// `down(act(gate(x)) * up(x))`.
    Gated {
        gate: Linear,
        up: Linear,
        down: Linear,
    },
    /// `fc_out(act(fc_in(x)))`.
    Plain { fc_in: Linear, fc_out: Linear },
}

impl Mlp {
    pub(crate) fn forward(&self, act: Activation, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Mlp::Gated { gate, up, down } => {
                down.forward(&(activation(act, &gate.forward(x)?)? * up.forward(x)?)?)?
            }
            Mlp::Plain { fc_in, fc_out } => {
                fc_out.forward(&activation(act, &fc_in.forward(x)?)?)?
            }
        })
    }
}
