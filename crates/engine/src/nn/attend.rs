//! Attention written out (scores, mask, softmax, weighted sum) so the
//! pattern exists and blocking masks apply: the mask with blocked pairs and
//! the scaled dot-product core.

use candle_core::{DType, Device, Tensor};

use crate::error::Result;
use crate::nn::record::{record, softmax_backward, Mode};

/// The additive pre-softmax mask of one layer: causal plus blocked pairs,
/// for `T` queries at positions `offset..offset+T` over keys `0..offset+T`
/// (a run continuing from a cache of `offset` positions; `offset` 0 is a
/// whole input).
///
/// A query row whose every key is blocked has no distribution to normalise.
/// We define its attention output as zero (its pattern row is all zeros),
/// the way TransformerLens zeroes NaN patterns, instead of propagating NaN.
pub(crate) struct AttnMask {
    /// `[T, offset+T]`: 0 or -inf.
    additive: Tensor,
    /// `[T, 1]` of 1/0 when some row is fully blocked.
    keep_rows: Option<Tensor>,
    /// The causal mask alone, when something is blocked: the pattern it
    /// gives is what blocking changed (for receipts).
    causal: Option<Tensor>,
}

impl AttnMask {
    /// `blocked` holds (query, key) pairs in absolute positions; those whose
    /// query is not among this run's are someone else's (an earlier or a
    /// later run over the same cache) and are left out.
    pub(crate) fn build(
        offset: usize,
        t: usize,
        blocked: impl Iterator<Item = (usize, usize)>,
        dev: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let total = offset + t;
        let mut m = vec![0f32; t * total];
        for q in 0..t {
            for k in offset + q + 1..total {
                m[q * total + k] = f32::NEG_INFINITY;
            }
        }
        let causal = m.clone();
        let mut any_blocked = false;
        for (q, k) in blocked.filter(|&(q, _)| (offset..total).contains(&q)) {
            m[(q - offset) * total + k] = f32::NEG_INFINITY;
            any_blocked = true;
        }
        let mut keep = vec![1f32; t];
        let mut any_dead = false;
        for q in 0..t {
            let row = &mut m[q * total..(q + 1) * total];
            if row.iter().all(|v| v.is_infinite()) {
                // A finite row keeps softmax free of NaN; `keep` zeroes it after.
                row.iter_mut().for_each(|v| *v = 0.0);
                keep[q] = 0.0;
                any_dead = true;
            }
        }
        Ok(AttnMask {
            additive: Tensor::from_vec(m, (t, total), dev)?.to_dtype(dtype)?,
            keep_rows: if any_dead {
                Some(Tensor::from_vec(keep, (t, 1), dev)?.to_dtype(dtype)?)
            } else {
                None
            },
            causal: if any_blocked {
                Some(Tensor::from_vec(causal, (t, total), dev)?.to_dtype(dtype)?)
            } else {
                None
            },
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

/// What [`attend`] gives back.
pub(crate) struct Attended {
    /// `[B*T, H*hd]` before the output projection.
    pub(crate) out: Tensor,
    /// `[B*H, T, S]` post-softmax.
    pub(crate) pattern: Tensor,
    /// `[B*H, T, S]` before the softmax: scaled (and soft-capped), the
    /// masked ones -inf (TransformerLens's `hook_attn_scores`).
    pub(crate) scores: Tensor,
    /// L2 norm of the pattern change blocking made, when something is blocked.
    pub(crate) blocked_delta: Option<f64>,
}

/// Scaled dot-product attention over `b` sequences, recorded for autograd
/// when asked. `scores` is the scale and Gemma 2's soft-cap.
///
/// # Shapes
/// `q`: `[B*H, T, hd]`; `k`, `v`: `[B*H, S, hd]` (KV heads already
/// repeated; `S` = `T` plus the positions of a cache before them).
/// Returns the output `[B*T, H*hd]` and the pattern `[B*H, T, S]`.
pub(crate) fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    b: usize,
    (scale, softcap): (f64, Option<f64>),
    mask: &AttnMask,
    mode: Mode,
) -> Result<Attended> {
    let (bh, t, hd) = q.dims3()?;
    let h = bh / b.max(1);
    let mut raw = (q.matmul(&k.t()?)? * scale)?;
    if let Some(cap) = softcap {
        // Gemma 2: cap * tanh(scores / cap), before the mask.
        raw = ((raw / cap)?.tanh()? * cap)?;
    }
    let scores = raw.broadcast_add(&mask.additive)?;
    let mut pattern = candle_nn::ops::softmax_last_dim(&scores.detach())?;
    if mode == Mode::Recorded {
        pattern = record(&scores, pattern, "softmax", |_, y, g| {
            softmax_backward(y, g)
        })?;
    }
    if let Some(keep) = &mask.keep_rows {
        pattern = pattern.broadcast_mul(keep)?;
    }
    let blocked_delta = match &mask.causal {
        Some(causal) => {
            let unblocked = candle_nn::ops::softmax_last_dim(&raw.detach().broadcast_add(causal)?)?;
            Some(l2((pattern.detach() - &unblocked)?)?)
        }
        None => None,
    };
    let out = pattern
        .matmul(&v.contiguous()?)?
        .reshape((b, h, t, hd))?
        .transpose(1, 2)?
        .reshape((b * t, h * hd))?;
    Ok(Attended {
        out,
        pattern,
        scores,
        blocked_delta,
    })
}

/// The L2 norm of all elements, summed in f64.
pub(crate) fn l2(x: Tensor) -> Result<f64> {
    Ok(x.to_dtype(DType::F64)?
        .sqr()?
        .sum_all()?
        .to_scalar::<f64>()?
        .sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fully_blocked_row_is_zero_not_nan() {
        let dev = Device::Cpu;
        let m = AttnMask::build(
            0,
            3,
            [(0usize, 0usize), (2, 0)].into_iter(),
            &dev,
            DType::F32,
        )
        .unwrap();
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
    fn a_run_after_a_cache_sees_every_earlier_key() {
        let dev = Device::Cpu;
        // Queries 2 and 3 over keys 0..4; (3, 1) blocked; (1, 0) is an
        // earlier run's query and left out.
        let m = AttnMask::build(
            2,
            2,
            [(3usize, 1usize), (1, 0)].into_iter(),
            &dev,
            DType::F32,
        )
        .unwrap();
        let ninf = f32::NEG_INFINITY;
        assert_eq!(
            m.additive.to_vec2::<f32>().unwrap(),
            vec![vec![0.0, 0.0, 0.0, ninf], vec![0.0, ninf, 0.0, 0.0]]
        );
        assert_eq!(
            m.causal.unwrap().to_vec2::<f32>().unwrap(),
            vec![vec![0.0, 0.0, 0.0, ninf], vec![0.0; 4]]
        );
        assert!(m.keep_rows.is_none());
    }
}
