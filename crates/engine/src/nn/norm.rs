//! Normalisation over the last dimension: RMSNorm (Llama), Gemma's
//! `(1 + w)` RMSNorm, and LayerNorm with bias (GPT-2, NeoX, Phi).

use candle_core::{DType, Tensor, D};

use crate::error::Result;
use crate::nn::record::{layer_norm_backward, record, rms_norm_backward, Mode};
use crate::nn::weights::Weights;

/// How a hidden state is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// `w * x / rms(x)`.
    Rms,
    /// Gemma: `(1 + w) * x / rms(x)`.
    RmsOnePlus,
    /// `w * (x - mean) / std(x) + b`.
    Layer,
}

/// A norm with its weights.
pub(crate) struct Norm {
    weight: Tensor,
    /// LayerNorm's bias; `None` for the RMS kinds.
    bias: Option<Tensor>,
    eps: f64,
}

impl Norm {
    /// `{name}.weight` (+ `.bias` for LayerNorm) of `dim` elements.
    pub(crate) fn load(vb: &Weights, kind: NormKind, dim: usize, eps: f64) -> Result<Self> {
        let weight = vb.get(dim, "weight")?;
        let (weight, bias) = match kind {
            // Gemma stores w and scales by 1 + w; adding 1 once here is the
            // same f32/f64 sum HF computes on every call.
            NormKind::RmsOnePlus => ((weight + 1.0)?, None),
            NormKind::Rms => (weight, None),
            NormKind::Layer => (weight, Some(vb.get(dim, "bias")?)),
        };
        Ok(Norm { weight, bias, eps })
    }

    pub(crate) fn bytes(&self) -> usize {
        let t = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
        t(&self.weight) + self.bias.as_ref().map_or(0, t)
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.bias {
            Some(b) => layer_norm(x, &self.weight, b, self.eps),
            None => rms_norm(x, &self.weight, self.eps),
        }
    }

    /// [`forward`](Self::forward), recorded for autograd when asked: the
    /// plain value (the fused kernel in f32) with its input gradient
    /// written by hand; the frozen weight and bias get none.
    pub(crate) fn forward_in(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if mode == Mode::Plain {
            return self.forward(x);
        }
        let y = self.forward(&x.detach())?;
        let (w, eps) = (self.weight.clone(), self.eps);
        if self.bias.is_some() {
            record(x, y, "layer_norm", move |x, _, g| {
                layer_norm_backward(x, &w.to_dtype(x.dtype())?, eps, g)
            })
        } else {
            record(x, y, "rms_norm", move |x, _, g| {
                rms_norm_backward(x, &w.to_dtype(x.dtype())?, eps, g)
            })
        }
    }

    /// [`forward`](Self::forward) written out in tensor ops in every dtype,
    /// so gradients flow through it (candle's fused f32 kernels have none).
    pub(crate) fn forward_differentiable(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.weight.to_dtype(x.dtype())?;
        match &self.bias {
            Some(b) => layer_norm_ops(x, &w, &b.to_dtype(x.dtype())?, self.eps),
            None => rms_norm_ops(x, &w, self.eps),
        }
    }
}

fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    if x.dtype() == DType::F32 {
        return Ok(candle_nn::ops::rms_norm(&x.contiguous()?, w, eps as f32)?);
    }
    // candle's fused kernel has no f64 version.
    rms_norm_ops(x, w, eps)
}

fn rms_norm_ops(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let var = x.sqr()?.mean_keepdim(D::Minus1)?;
    Ok(x.broadcast_mul(&(var + eps)?.sqrt()?.recip()?)?
        .broadcast_mul(w)?)
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
    layer_norm_ops(x, w, b, eps)
}

fn layer_norm_ops(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    let xc = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    Ok(xc
        .broadcast_mul(&(var + eps)?.sqrt()?.recip()?)?
        .broadcast_mul(w)?
        .broadcast_add(b)?)
}

/// A norm made linear by freezing its scale at one state (direct logit
/// attribution): `apply` maps each part of that state to its share of the
/// normalised output, so the shares of parts summing to the state sum to
/// the norm's output minus its bias.
pub(crate) struct FrozenNorm {
    /// `w / rms(x)` or `w / std(x)`, `[D]` f64.
    mul: Tensor,
    /// LayerNorm: each part is centred first.
    centre: bool,
}

impl Norm {
    /// Freeze the scale at `x: [D]`.
    pub(crate) fn frozen_at(&self, x: &Tensor) -> Result<FrozenNorm> {
        let x = x.to_dtype(DType::F64)?;
        let centre = self.bias.is_some();
        let xc = if centre {
            x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?
        } else {
            x
        };
        let scale = (xc.sqr()?.mean_keepdim(D::Minus1)? + self.eps)?
            .sqrt()?
            .recip()?;
        let mul = self.weight.to_dtype(DType::F64)?.broadcast_mul(&scale)?;
        Ok(FrozenNorm { mul, centre })
    }

    /// The bias added after normalising (LayerNorm), f64.
    pub(crate) fn bias_f64(&self) -> Result<Option<Tensor>> {
        Ok(self
            .bias
            .as_ref()
            .map(|b| b.to_dtype(DType::F64))
            .transpose()?)
    }
}

impl FrozenNorm {
    /// Each row of `parts: [K, D]` through the frozen norm, f64.
    pub(crate) fn apply(&self, parts: &Tensor) -> Result<Tensor> {
        let p = parts.to_dtype(DType::F64)?;
        let p = if self.centre {
            p.broadcast_sub(&p.mean_keepdim(D::Minus1)?)?
        } else {
            p
        };
        Ok(p.broadcast_mul(&self.mul)?)
    }
}
