//! Linear projections as checkpoints store them, kept transposed for speed,
//! and the splitting of fused projections.
//!
//! Layouts follow transformers' `modeling_phi3.py` (fused `qkv_proj`,
//! `gate_up_proj`: row blocks), `modeling_gpt_neox.py` (per-head interleaved
//! `query_key_value`) and `modeling_gpt2.py` (`Conv1D`, weights `[in, out]`).
//! Fused weights are split once at load, so the forward pass sees plain
//! `[out, in]` linears for every family.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use crate::error::Result;

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

    /// `{name}.weight` `[out, in]` (+ `{name}.bias` `[out]`) from `vb`.
    pub(crate) fn load(vb: &VarBuilder, out_dim: usize, in_dim: usize, bias: bool) -> Result<Self> {
        let w = vb.get((out_dim, in_dim), "weight")?;
        let b = bias.then(|| vb.get(out_dim, "bias")).transpose()?;
        Linear::new(w, b)
    }

    /// GPT-2's `Conv1D`: weight stored `[in, out]`, always with a bias.
    pub(crate) fn load_conv1d(vb: &VarBuilder, out_dim: usize, in_dim: usize) -> Result<Self> {
        let w = vb.get((in_dim, out_dim), "weight")?.t()?;
        Linear::new(w, Some(vb.get(out_dim, "bias")?))
    }

    /// The `[out, in]` weight (a transposed view).
    fn weight(&self) -> Result<Tensor> {
        Ok(self.wt.t()?)
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

    /// Split a fused projection into row blocks of the given sizes.
    pub(crate) fn split_rows<const N: usize>(&self, sizes: [usize; N]) -> Result<[Linear; N]> {
        let w = self.weight()?;
        let mut at = 0;
        let mut out = Vec::with_capacity(N);
        for n in sizes {
            let b = self
                .bias
                .as_ref()
                .map(|b| b.narrow(0, at, n)?.contiguous())
                .transpose()?;
            out.push(Linear::new(w.narrow(0, at, n)?.contiguous()?, b)?);
            at += n;
        }
        Ok(out
            .try_into()
            .unwrap_or_else(|_| unreachable!("one block per size")))
    }

    /// GPT-NeoX's `query_key_value`: rows grouped `[head][q, k, v][head_dim]`.
    pub(crate) fn split_per_head_qkv(&self, n_heads: usize, hd: usize) -> Result<[Linear; 3]> {
        let w = self.weight()?;
        let d_in = w.dim(1)?;
        let part = |j: usize| -> Result<Linear> {
            let wj = w
                .reshape((n_heads, 3, hd, d_in))?
                .narrow(1, j, 1)?
                .reshape((n_heads * hd, d_in))?
                .contiguous()?;
            let bj = self
                .bias
                .as_ref()
                .map(|b| -> Result<Tensor> {
                    Ok(b.reshape((n_heads, 3, hd))?
                        .narrow(1, j, 1)?
                        .reshape(n_heads * hd)?
                        .contiguous()?)
                })
                .transpose()?;
            Linear::new(wj, bj)
        };
        Ok([part(0)?, part(1)?, part(2)?])
    }
}
