//! Building blocks shared by the custom and hooked models: hooks applied to
//! a stream, the attention mask with blocking, the explicit attention core.

use candle_core::{DType, Device, Tensor};

use crate::api::Receipt;
use crate::error::Result;
use crate::hooks::{HookPoint, InterventionPlan, StreamOp, StreamOpKind};

/// A linear layer whose weight is kept transposed (`[in, out]`, contiguous).
/// candle's `Linear` multiplies by `w.t()`, which gemm repacks on every call:
/// at a few dozen tokens that costs more than the product itself (measured
/// 1.3-3x slower on SmolLM2's shapes).
pub(crate) struct Linear {
    wt: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// From an `[out, in]` weight as checkpoints store it.
    pub(crate) fn new(w: Tensor, bias: Option<Tensor>) -> Result<Self> {
        Ok(Linear {
            wt: w.t()?.contiguous()?,
            bias,
        })
    }

    /// The `[out, in]` weight (a transposed view).
    pub(crate) fn weight(&self) -> Tensor {
        self.wt.t().expect("a 2-D weight transposes")
    }

    pub(crate) fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// `x · wᵀ + b` for `x` of shape `[.., in]`.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = if x.rank() == 2 {
            x.matmul(&self.wt)?
        } else {
            x.broadcast_matmul(&self.wt)?
        };
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// Query head `h` reads KV head `h / n_rep` (transformers' `repeat_kv`).
pub(crate) fn repeat_kv(x: Tensor, n_rep: usize) -> Result<Tensor> {
    if n_rep == 1 {
        return Ok(x);
    }
    let (nkv, t, hd) = x.dims3()?;
    Ok(x.unsqueeze(1)?
        .expand((nkv, n_rep, t, hd))?
        .reshape((nkv * n_rep, t, hd))?)
}

pub(crate) fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    if x.dtype() == DType::F32 {
        return Ok(candle_nn::ops::rms_norm(&x.contiguous()?, w, eps as f32)?);
    }
    // candle's fused kernel has no f64 version.
    let var = x.sqr()?.mean_keepdim(candle_core::D::Minus1)?;
    Ok(x.broadcast_mul(&(var + eps)?.sqrt()?.recip()?)?
        .broadcast_mul(w)?)
}

/// The additive pre-softmax mask of one layer: causal plus blocked pairs.
///
/// A query row whose every key is blocked has no distribution to normalise.
/// We define its attention output as zero (its pattern row is all zeros),
/// the way TransformerLens zeroes NaN patterns, instead of propagating NaN.
pub(crate) struct AttnMask {
    /// `[T, T]`: 0 or -inf.
    pub(crate) additive: Tensor,
    /// `[T, 1]` of 1/0 when some row is fully blocked.
    pub(crate) keep_rows: Option<Tensor>,
    /// The causal mask alone, when something is blocked: the pattern it
    /// gives is what blocking changed (for receipts).
    pub(crate) causal: Option<Tensor>,
}

impl AttnMask {
    pub(crate) fn build(
        t: usize,
        blocked: impl Iterator<Item = (usize, usize)>,
        dev: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let mut m = vec![0f32; t * t];
        for q in 0..t {
            for k in q + 1..t {
                m[q * t + k] = f32::NEG_INFINITY;
            }
        }
        let causal = m.clone();
        let mut any_blocked = false;
        for (q, k) in blocked {
            m[q * t + k] = f32::NEG_INFINITY;
            any_blocked = true;
        }
        let mut keep = vec![1f32; t];
        let mut any_dead = false;
        for q in 0..t {
            let row = &mut m[q * t..(q + 1) * t];
            if row.iter().all(|v| v.is_infinite()) {
                // A finite row keeps softmax free of NaN; `keep` zeroes it after.
                row.iter_mut().for_each(|v| *v = 0.0);
                keep[q] = 0.0;
                any_dead = true;
            }
        }
        Ok(AttnMask {
            additive: Tensor::from_vec(m, (t, t), dev)?.to_dtype(dtype)?,
            keep_rows: if any_dead {
                Some(Tensor::from_vec(keep, (t, 1), dev)?.to_dtype(dtype)?)
            } else {
                None
            },
            causal: if any_blocked {
                Some(Tensor::from_vec(causal, (t, t), dev)?.to_dtype(dtype)?)
            } else {
                None
            },
        })
    }
}

/// Apply one hook's operations in order to a `[T, D]` stream.
/// Applies a plan's stream operations and writes their receipts.
pub(crate) struct Hooks<'a> {
    plan: &'a InterventionPlan,
    pub(crate) receipts: Vec<Receipt>,
    /// The layer being computed (0 before layer 0).
    pub(crate) step: usize,
}

impl<'a> Hooks<'a> {
    pub(crate) fn new(plan: &'a InterventionPlan) -> Self {
        Hooks {
            plan,
            receipts: Vec::new(),
            step: 0,
        }
    }

    /// The operations at `at`, in request order, on `x: [T, D]`.
    pub(crate) fn apply(&mut self, mut x: Tensor, at: HookPoint) -> Result<Tensor> {
        for op in self.plan.ops_at(at) {
            let before = x;
            x = apply_op(&before, op)?;
            let (t, d) = x.dims2()?;
            let positions: Vec<usize> = match op.position {
                Some(p) => vec![p],
                None => (0..t).collect(),
            };
            let delta = (&x - &before)?
                .to_dtype(DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?
                .sqrt();
            self.receipts.push(Receipt {
                key: op.key.clone(),
                hook: at.to_string(),
                layer: at.layer(),
                elements: positions.len() * d,
                positions,
                delta_norm: Some(delta),
                step: self.step,
            });
        }
        Ok(x)
    }

    /// Receipts of the blocking at `layer`: `delta` is the norm of the
    /// pattern change that all of the layer's blocking made.
    pub(crate) fn blocked(&mut self, layer: usize, n_heads: usize, delta: Option<f64>) {
        for b in self
            .plan
            .blocks
            .iter()
            .filter(|b| b.layers.contains(&layer))
        {
            let mut positions: Vec<usize> = b.pairs.iter().map(|&(q, _)| q).collect();
            positions.sort_unstable();
            positions.dedup();
            self.receipts.push(Receipt {
                key: b.key.clone(),
                hook: format!("blocks.{layer}.attn.hook_attn_scores"),
                layer: Some(layer),
                positions,
                elements: b.pairs.len() * n_heads,
                delta_norm: delta,
                step: self.step,
            });
        }
    }
}

fn apply_op(x: &Tensor, op: &StreamOp) -> Result<Tensor> {
    let (t, d) = x.dims2()?;
    let dev = x.device();
    Ok(match (&op.kind, op.position) {
        (StreamOpKind::Zero, None) => x.zeros_like()?,
        (StreamOpKind::Scale(s), None) => x.affine(*s as f64, 0.0)?,
        (StreamOpKind::Add(v), None) => {
            x.broadcast_add(&Tensor::from_slice(v, (1, d), dev)?.to_dtype(x.dtype())?)?
        }
        (kind, Some(p)) => {
            // Rebuild the one row rather than scale by a mask: other rows stay
            // bit-identical and NaN/inf elsewhere can't leak through a 0 factor.
            let row = x.narrow(0, p, 1)?;
            let row = match kind {
                StreamOpKind::Zero => row.zeros_like()?,
                StreamOpKind::Scale(s) => row.affine(*s as f64, 0.0)?,
                StreamOpKind::Add(v) => {
                    (row + Tensor::from_slice(v, (1, d), dev)?.to_dtype(x.dtype())?)?
                }
            };
            let mut parts = Vec::with_capacity(3);
            if p > 0 {
                parts.push(x.narrow(0, 0, p)?);
            }
            parts.push(row);
            if p + 1 < t {
                parts.push(x.narrow(0, p + 1, t - p - 1)?);
            }
            Tensor::cat(&parts, 0)?
        }
    })
}

/// `cos`, `sin` as `[T, len(inv_freq)]` for positions 0..T, in `dtype`.
/// The angles are f32 products and cos/sin f32, as in HF (whose angles are
/// an f32 matmul), then cast like HF's tables.
pub(crate) fn rope_tables(
    inv_freq: &[f32],
    dev: &Device,
    dtype: DType,
    t: usize,
) -> Result<(Tensor, Tensor)> {
    let half = inv_freq.len();
    let mut cos = Vec::with_capacity(t * half);
    let mut sin = Vec::with_capacity(t * half);
    for p in 0..t {
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

/// Scaled dot-product attention written out so scores and pattern exist.
///
/// # Shapes
/// `q`: `[H, T, hd]`, `k`, `v`: `[H, T, hd]` (KV heads already repeated).
/// Returns the output `[T, H*hd]` and the pattern `[H, T, T]`.
pub(crate) fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    softcap: Option<f64>,
    mask: &AttnMask,
) -> Result<Attended> {
    let (h, t, hd) = q.dims3()?;
    let mut raw = (q.matmul(&k.t()?)? * scale)?;
    if let Some(cap) = softcap {
        // Gemma 2: cap * tanh(scores / cap), before the mask.
        raw = ((raw / cap)?.tanh()? * cap)?;
    }
    let scores = raw.broadcast_add(&mask.additive)?;
    let mut pattern = candle_nn::ops::softmax_last_dim(&scores)?;
    if let Some(keep) = &mask.keep_rows {
        pattern = pattern.broadcast_mul(keep)?;
    }
    let blocked_delta = match &mask.causal {
        Some(causal) => {
            let unblocked = candle_nn::ops::softmax_last_dim(&raw.broadcast_add(causal)?)?;
            Some(
                (&pattern - &unblocked)?
                    .to_dtype(DType::F64)?
                    .sqr()?
                    .sum_all()?
                    .to_scalar::<f64>()?
                    .sqrt(),
            )
        }
        None => None,
    };
    let out = pattern
        .matmul(&v.contiguous()?)?
        .transpose(0, 1)?
        .reshape((t, h * hd))?;
    Ok(Attended {
        out,
        pattern,
        blocked_delta,
    })
}

/// What [`attend`] gives back.
pub(crate) struct Attended {
    /// `[T, H*hd]` before the output projection.
    pub(crate) out: Tensor,
    /// `[H, T, T]` post-softmax.
    pub(crate) pattern: Tensor,
    /// L2 norm of the pattern change blocking made, when something is blocked.
    pub(crate) blocked_delta: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fully_blocked_row_is_zero_not_nan() {
        let dev = Device::Cpu;
        let m =
            AttnMask::build(3, [(0usize, 0usize), (2, 0)].into_iter(), &dev, DType::F32).unwrap();
        let keep = m
            .keep_rows
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(keep, vec![0.0, 1.0, 1.0]);
        let add = m.additive.to_vec2::<f32>().unwrap();
        assert!(add[0].iter().all(|v| v.is_finite()));
        assert_eq!(add[2][0], f32::NEG_INFINITY);
        assert_eq!(add[2][1], 0.0);
    }

    #[test]
    fn position_ops_touch_only_their_row() {
        let dev = Device::Cpu;
        let x = Tensor::arange(0f32, 12.0, &dev)
            .unwrap()
            .reshape((3, 4))
            .unwrap();
        let op = |kind, position| StreamOp {
            kind,
            position,
            key: "k".into(),
        };
        let y = apply_op(&x, &op(StreamOpKind::Scale(2.0), Some(1)))
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(
            y,
            vec![
                vec![0., 1., 2., 3.],
                vec![8., 10., 12., 14.],
                vec![8., 9., 10., 11.]
            ]
        );
        let y = apply_op(&x, &op(StreamOpKind::Add(vec![1.0; 4]), Some(2)))
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(y[2], vec![9., 10., 11., 12.]);
        assert_eq!(y[0], vec![0., 1., 2., 3.]);
        let y = apply_op(&x, &op(StreamOpKind::Zero, Some(0)))
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(y[0], vec![0.; 4]);
        assert_eq!(y[1], vec![4., 5., 6., 7.]);
    }
}
