//! Linear projections as checkpoints store them, laid out for speed (the f32
//! kernel's panels, or transposed for gemm), and the splitting of fused
//! projections.
//!
//! Layouts follow transformers' `modeling_phi3.py` (fused `qkv_proj`,
//! `gate_up_proj`: row blocks), `modeling_gpt_neox.py` (per-head interleaved
//! `query_key_value`) and `modeling_gpt2.py` (`Conv1D`, weights `[in, out]`).
//! Fused weights are split once at load, so the forward pass sees plain
//! `[out, in]` linears for every family.

use candle_core::{DType, Tensor};

use std::sync::Arc;

use crate::error::Result;
use crate::nn::panels::{Order, Panels};
use crate::nn::record::{record, Mode};
use crate::nn::weights::{Matrix, Weights};
use crate::nn::with_f32_slice;

/// Have gemm pack a weight matrix into its kernel's order from a product of
/// more than 6 tokens on. By default it reads the weight in place,
/// unpacked, up to 16 × 6 tokens a thread (96). That is strided reads of a
/// matrix the forward uses once and that is not in cache. Measured on 30
/// SmolLM2 MLP matrices in turn, packing took the product from 30 to 53
/// GFLOP/s at 17 tokens and from 54 to 97 at 54 (docs/PERFORMANCE.md).
/// Packing copies, it does not reorder the sums: the results are the same
/// bits. One token (a generation step) is still read in place. gemm's
/// setting is for the whole process; set once, at the first model load.
pub(crate) fn tune_gemm() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gemm::set_lhs_packing_threshold_multi_thread(1);
        gemm::set_lhs_packing_threshold_single_thread(1);
    });
}

/// Fix candle's thread count for this process. candle asks for it on every
/// product, and on Linux each ask reads /proc/cpuinfo: in a patching sweep,
/// thousands of small attention products, about 3% of the time went to it
/// (docs/PERFORMANCE.md). The answer cannot change while the process runs,
/// so it is computed once and handed to the variable candle reads first.
/// Call it at the start of `main`, before any thread exists: setting an
/// environment variable while another thread reads one is not sound.
pub fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = candle_core::utils::get_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
}

/// A linear layer. A widened f32 weight is laid out once in the panels of
/// this CPU's product kernel ([`Panels`]); an f64 one, or any on a CPU
/// without that kernel, is kept transposed (`[in, out]`, contiguous):
/// candle's `Linear` multiplies by `w.t()`, which gemm repacks on every call,
/// and at a few dozen tokens that costs more than the product itself
/// (measured 1.3-3x slower on SmolLM2's shapes). A weight kept as stored
/// (bf16, f16, GGUF blocks) stays `[out, in]` and is widened a slice at a
/// time by [`Matrix::matmul_t`].
pub(crate) struct Linear {
    w: LinearWeight,
    bias: Option<Tensor>,
}

#[derive(Clone)]
enum LinearWeight {
    /// `[in, out]` f32 in the kernel's panels.
    Panels(Arc<Panels>),
    /// `[in, out]` in the compute dtype.
    Transposed(Tensor),
    /// `[out, in]` as stored.
    Stored(Matrix),
}

impl LinearWeight {
    /// `x · wᵀ`.
    fn product(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            LinearWeight::Panels(p) => {
                let x = x.contiguous()?;
                let mut dims = x.dims().to_vec();
                let t = x.elem_count() / p.k();
                let y = with_f32_slice(&x, |xs| p.matmul(xs, t))?;
                if let Some(last) = dims.last_mut() {
                    *last = p.n();
                }
                Tensor::from_vec(y, dims, x.device())?
            }
            LinearWeight::Transposed(wt) if x.rank() == 2 => x.matmul(wt)?,
            LinearWeight::Transposed(wt) => x.broadcast_matmul(wt)?,
            LinearWeight::Stored(m) => m.matmul_t(x)?,
        })
    }

    /// The `[in, out]` weight of a kernel's panels, as a tensor.
    fn unpacked(p: &Panels) -> Result<Tensor> {
        Ok(Tensor::from_vec(
            p.dense(),
            (p.k(), p.n()),
            &candle_core::Device::Cpu,
        )?)
    }

    /// `g · w`: the input gradient of [`product`](Self::product).
    fn input_grad(&self, g: &Tensor) -> Result<Tensor> {
        Ok(match self {
            // Laid out again for gemm per call: only gradients (attribution,
            // J-lens fits) come here, and they would otherwise keep a second
            // copy of every weight.
            LinearWeight::Panels(p) => {
                LinearWeight::Transposed(Self::unpacked(p)?).input_grad(g)?
            }
            LinearWeight::Transposed(wt) if g.rank() == 2 => g.matmul(&wt.t()?)?,
            LinearWeight::Transposed(wt) => g.broadcast_matmul(&wt.t()?)?,
            LinearWeight::Stored(m) => m.left_matmul(g)?,
        })
    }
}

impl Linear {
    /// From an `[out, in]` matrix as checkpoints store it.
    pub(crate) fn new(w: Matrix, bias: Option<Tensor>) -> Result<Self> {
        let w = match w {
            Matrix::Dense(t) if matches!(t.dtype(), DType::F32 | DType::F64) => {
                // Laid out from the weight as stored: no transposed copy on
                // the way (each was a transient matrix more at load).
                let (n, k) = t.dims2()?;
                let panels = match (t.dtype(), t.device()) {
                    (DType::F32, candle_core::Device::Cpu) => {
                        with_f32_slice(&t.contiguous()?, |w| Panels::pack(w, k, n, Order::OutIn))?
                    }
                    _ => None,
                };
                match panels {
                    Some(p) => LinearWeight::Panels(Arc::new(p)),
                    None => LinearWeight::Transposed(t.t()?.contiguous()?),
                }
            }
            stored => LinearWeight::Stored(stored),
        };
        Ok(Linear { w, bias })
    }

    /// `{name}.weight` `[out, in]` (+ `{name}.bias` `[out]`) from `w`.
    pub(crate) fn load(w: &Weights, out_dim: usize, in_dim: usize, bias: bool) -> Result<Self> {
        let m = w.matrix((out_dim, in_dim), "weight")?;
        let b = bias.then(|| w.get(out_dim, "bias")).transpose()?;
        Linear::new(m, b)
    }

    /// GPT-2's `Conv1D`: weight stored `[in, out]`, always with a bias.
    pub(crate) fn load_conv1d(w: &Weights, out_dim: usize, in_dim: usize) -> Result<Self> {
        let m = w.matrix_transposed((out_dim, in_dim), "weight")?;
        Linear::new(m, Some(w.get(out_dim, "bias")?))
    }

    /// The `[out, in]` weight (a transposed view when widened).
    fn weight(&self) -> Result<Matrix> {
        Ok(match &self.w {
            LinearWeight::Panels(p) => Matrix::Dense(LinearWeight::unpacked(p)?.t()?),
            LinearWeight::Transposed(wt) => Matrix::Dense(wt.t()?),
            LinearWeight::Stored(m) => m.clone(),
        })
    }

    /// How its weight is held: "F32", "BF16", "Q4K"...
    pub(crate) fn kind(&self) -> String {
        match &self.w {
            LinearWeight::Panels(_) => "F32".into(),
            LinearWeight::Transposed(t) => format!("{:?}", t.dtype()).to_uppercase(),
            LinearWeight::Stored(m) => m.kind(),
        }
    }

    /// Bytes its weight and bias take.
    pub(crate) fn bytes(&self) -> usize {
        let w = match &self.w {
            LinearWeight::Panels(p) => p.bytes(),
            LinearWeight::Transposed(t) => t.elem_count() * t.dtype().size_in_bytes(),
            LinearWeight::Stored(m) => m.bytes(),
        };
        w + self
            .bias
            .as_ref()
            .map_or(0, |b| b.elem_count() * b.dtype().size_in_bytes())
    }

    /// `x · wᵀ + b` for `x` of shape `[.., in]`.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_in(x, Mode::Plain)
    }

    /// [`forward`](Self::forward), recorded for autograd when asked: the
    /// product is the plain one, entered into the graph with its input
    /// gradient `g · w` (through the matrix as stored, a slice at a time);
    /// the frozen weight gets none.
    pub(crate) fn forward_in(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let y = match mode {
            Mode::Plain => self.w.product(x)?,
            Mode::Recorded => {
                let y = self.w.product(&x.detach())?;
                let w = self.w.clone();
                record(x, y, "linear", move |_, _, g| {
                    w.input_grad(g).map_err(candle_core::Error::wrap)
                })?
            }
        };
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }

    /// The bias added after the product, if any.
    pub(crate) fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
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
            out.push(Linear::new(w.narrow_rows(at, n)?, b)?);
            at += n;
        }
        Ok(out
            .try_into()
            .unwrap_or_else(|_| unreachable!("one block per size")))
    }

    /// GPT-NeoX's `query_key_value`: rows grouped `[head][q, k, v][head_dim]`.
    pub(crate) fn split_per_head_qkv(&self, n_heads: usize, hd: usize) -> Result<[Linear; 3]> {
        let w = self.weight()?;
        let part = |j: usize| -> Result<Linear> {
            let rows: Vec<usize> = (0..n_heads)
                .flat_map(|h| (0..hd).map(move |i| (h * 3 + j) * hd + i))
                .collect();
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
            Linear::new(w.select_rows(&rows)?, bj)
        };
        Ok([part(0)?, part(1)?, part(2)?])
    }
}
