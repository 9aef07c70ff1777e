//! Running the forward pass so candle's autograd can differentiate it.
//!
//! Several of the forward pass's ops have no backward in candle: the fused
//! norms, `softmax_last_dim`, `rope` (custom ops without one), and the
//! product by a matrix kept as stored, which fills its output in place.
//! In a recorded run each such op computes its value exactly as the plain
//! run does, on its input detached, and [`record`] enters that value into
//! the input's graph as a custom op whose backward is written here by hand:
//! the values are the plain run's to the bit, and only the gradient with
//! respect to the activations is computed (the weights are frozen; a tracked
//! matmul would also compute theirs, doubling the backward's work).

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor, D};

use crate::error::Result;

/// How a forward pass computes its ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Mode {
    /// As always: candle's fused kernels, nothing recorded.
    #[default]
    Plain,
    /// The same values, recorded for candle's autograd.
    Recorded,
}

/// The gradient of an op's input from the gradient of its output: called
/// with the input and the output (both detached) and the output's gradient.
type Backward = Box<dyn Fn(&Tensor, &Tensor, &Tensor) -> candle_core::Result<Tensor> + Send + Sync>;

/// A value computed outside the graph, entered into it as a node of its
/// input with a hand-written backward.
struct Recorded {
    name: &'static str,
    /// Taken when the op runs, so the graph holds only its copy.
    value: Mutex<Option<Tensor>>,
    bwd: Backward,
}

/// `value`, computed from `x` without recording (as the plain run computes
/// it), as a node of `x`'s graph whose input gradient is `bwd(x, y, grad)`
/// (`y` the value).
/// When `x` is not tracked there is nothing to record and `value` is
/// returned as it is.
pub(crate) fn record(
    x: &Tensor,
    value: Tensor,
    name: &'static str,
    bwd: impl Fn(&Tensor, &Tensor, &Tensor) -> candle_core::Result<Tensor> + Send + Sync + 'static,
) -> Result<Tensor> {
    if !x.track_op() {
        return Ok(value);
    }
    Ok(x.apply_op1(Recorded {
        name,
        value: Mutex::new(Some(value)),
        bwd: Box::new(bwd),
    })?)
}

impl CustomOp1 for Recorded {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let value = self
            .value
            .lock()
            .map_err(|_| candle_core::Error::Msg("a recorded op's value lock was poisoned".into()))?
            .take()
            .ok_or_else(|| candle_core::Error::Msg(format!("{}: recorded twice", self.name)))?;
        let flat = value.flatten_all()?;
        let storage = match value.dtype() {
            DType::F32 => CpuStorage::F32(flat.to_vec1()?),
            DType::F64 => CpuStorage::F64(flat.to_vec1()?),
            DType::BF16 => CpuStorage::BF16(flat.to_vec1()?),
            DType::F16 => CpuStorage::F16(flat.to_vec1()?),
            other => candle_core::bail!("{}: cannot record a {other:?} value", self.name),
        };
        Ok((storage, value.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some((self.bwd)(&arg.detach(), &res.detach(), grad)?))
    }
}

/// The input gradient of softmax over the last dimension, from its output
/// `y`: `y · (g − Σ g·y)`.
pub(crate) fn softmax_backward(y: &Tensor, g: &Tensor) -> candle_core::Result<Tensor> {
    let dot = (g * y)?.sum_keepdim(D::Minus1)?;
    y * g.broadcast_sub(&dot)?
}

/// The input gradient of `w · x / sqrt(mean(x²) + eps)` over the last
/// dimension: `r·(g·w) − x·r³·mean(g·w·x)`, `r = 1 / sqrt(mean(x²) + eps)`.
pub(crate) fn rms_norm_backward(
    x: &Tensor,
    w: &Tensor,
    eps: f64,
    g: &Tensor,
) -> candle_core::Result<Tensor> {
    let r = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
    let gw = g.broadcast_mul(w)?;
    let dot = (&gw * x)?.mean_keepdim(D::Minus1)?;
    let r3 = (r.sqr()? * &r)?;
    gw.broadcast_mul(&r)? - x.broadcast_mul(&(dot * r3)?)?
}

/// The input gradient of LayerNorm (`w · (x − mean) / std + b`, biased
/// variance) over the last dimension: `r·(g·w − mean(g·w) − x̂·mean(g·w·x̂))`,
/// `x̂ = (x − mean)·r`.
pub(crate) fn layer_norm_backward(
    x: &Tensor,
    w: &Tensor,
    eps: f64,
    g: &Tensor,
) -> candle_core::Result<Tensor> {
    let xc = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let r = (xc.sqr()?.mean_keepdim(D::Minus1)? + eps)?
        .sqrt()?
        .recip()?;
    let xhat = xc.broadcast_mul(&r)?;
    let gw = g.broadcast_mul(w)?;
    let mean_gw = gw.mean_keepdim(D::Minus1)?;
    let dot = (&gw * &xhat)?.mean_keepdim(D::Minus1)?;
    gw.broadcast_sub(&mean_gw)?
        .sub(&xhat.broadcast_mul(&dot)?)?
        .broadcast_mul(&r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn noise(shape: (usize, usize), seed: usize) -> Tensor {
        let (r, c) = shape;
        let v: Vec<f64> = (0..r * c)
            .map(|i| (((i + seed) * 2654435761usize % 1000) as f64 / 500.0) - 1.0)
            .collect();
        Tensor::from_vec(v, (r, c), &Device::Cpu).unwrap()
    }

    /// The recorded op's gradient of `Σ f(x)·c` against central differences.
    fn check_grad(f: &dyn Fn(&Tensor) -> Result<Tensor>, x: &Tensor, c: &Tensor) {
        let v = Var::from_tensor(x).unwrap();
        let y = f(v.as_tensor()).unwrap();
        let grads = (y * c).unwrap().sum_all().unwrap().backward().unwrap();
        let g = grads.get(v.as_tensor()).unwrap().to_vec2::<f64>().unwrap();
        let loss = |x: &Tensor| -> f64 {
            (f(x).unwrap() * c)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar()
                .unwrap()
        };
        let xs = x.to_vec2::<f64>().unwrap();
        let h = 1e-6;
        for (i, row) in xs.iter().enumerate() {
            for j in 0..row.len() {
                let mut plus = xs.clone();
                plus[i][j] += h;
                let mut minus = xs.clone();
                minus[i][j] -= h;
                let shape = x.shape().clone();
                let t = |m: Vec<Vec<f64>>| {
                    Tensor::from_vec(m.concat(), shape.clone(), &Device::Cpu).unwrap()
                };
                let fd = (loss(&t(plus)) - loss(&t(minus))) / (2.0 * h);
                assert!(
                    (fd - g[i][j]).abs() < 1e-6,
                    "({i},{j}): {fd} vs {}",
                    g[i][j]
                );
            }
        }
    }

    #[test]
    fn hand_written_backwards_match_finite_differences() {
        let x = noise((3, 5), 1);
        let c = noise((3, 5), 7);
        let w = noise((1, 5), 3).squeeze(0).unwrap();
        let b = noise((1, 5), 5).squeeze(0).unwrap();
        let eps = 1e-5;
        let sm = |x: &Tensor| -> Result<Tensor> {
            let y = candle_nn::ops::softmax_last_dim(&x.detach())?;
            record(x, y, "softmax", |_, y, g| softmax_backward(y, g))
        };
        check_grad(&sm, &x, &c);
        let (w2, w3) = (w.clone(), w.clone());
        let rms = move |x: &Tensor| -> Result<Tensor> {
            let var = x.detach().sqr()?.mean_keepdim(D::Minus1)?;
            let y = x
                .detach()
                .broadcast_mul(&(var + eps)?.sqrt()?.recip()?)?
                .broadcast_mul(&w2)?;
            let w = w2.clone();
            record(x, y, "rms", move |x, _, g| rms_norm_backward(x, &w, eps, g))
        };
        check_grad(&rms, &x, &c);
        let ln = move |x: &Tensor| -> Result<Tensor> {
            let xd = x.detach();
            let xc = xd.broadcast_sub(&xd.mean_keepdim(D::Minus1)?)?;
            let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
            let y = xc
                .broadcast_mul(&(var + eps)?.sqrt()?.recip()?)?
                .broadcast_mul(&w3)?
                .broadcast_add(&b)?;
            let w = w3.clone();
            record(x, y, "ln", move |x, _, g| {
                layer_norm_backward(x, &w, eps, g)
            })
        };
        check_grad(&ln, &x, &c);
    }
}
