//! Interventions read from the Jacobian lens, on block outputs at the
//! layers it covers (TransformerLens 4.3's `steering_hooks`,
//! `ablation_hooks`, `swap_hooks`), with `v_t = J_ℓᵀ W_U[:, t]` the lens
//! vector of token `t` at layer ℓ:
//!
//! - `jlens_steer` (`token`, `alpha`): `h ← h + α·median‖h‖·v̂_t`, the
//!   median (the lower one, as torch's) over the positions it acts on: all
//!   of a run's, one with `token_index`, a generation pass's new ones.
//! - `jlens_ablate` (`tokens`): `h ← h − QQᵀh`, `Q` an orthonormal basis of
//!   the span of the tokens' unit lens vectors.
//! - `jlens_swap` (`source`, `target`, `alpha`): with `V = [v_s, v_t]` and
//!   `c = V⁺h`, `h ← h + α·V(σ(c) − c)`, σ exchanging the two coordinates.
//!
//! The vectors come from a [`LensVectors`] the operations layer provides
//! (it has the model and the attached lens); each layer has its own, so an
//! operation on several layers is built per layer.

use std::sync::Arc;

use candle_core::{DType, Tensor};
use serde_json::Value;

use crate::error::Result;
use crate::invalid;

use super::InterventionConfig;

/// What the J-lens operations need of the model and its Jacobian lens.
pub trait LensVectors {
    /// The id a request names: an id of the vocabulary, or a string that
    /// is exactly one token; `what` names the field in errors.
    fn token_id(&self, token: &Value, what: &str) -> Result<u32>;
    /// The layers the lens has a matrix for, ascending.
    fn layers(&self) -> Vec<usize>;
    /// The lens vectors of `tokens` at `layer` (one the lens covers):
    /// `[n][d_model]`.
    fn vectors(&self, layer: usize, tokens: &[u32]) -> Result<Vec<Vec<f32>>>;
}

/// One J-lens operation at one layer, its vectors resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum JlensOp {
    /// `h + alpha·median‖h‖·unit`.
    Steer { unit: Arc<Vec<f32>>, alpha: f32 },
    /// `h − Q Qᵀ h`, `basis` = Q `[d, rank]` row-major.
    Ablate { basis: Arc<Vec<f32>>, rank: usize },
    /// `h + alpha·V(σ(V⁺h) − V⁺h)`, `basis` = V `[d, 2]`, `pinv` = V⁺ `[2, d]`.
    Swap {
        basis: Arc<Vec<f32>>,
        pinv: Arc<Vec<f32>>,
        alpha: f32,
    },
}

/// The operation types read from the lens.
pub(super) const KINDS: [&str; 3] = ["jlens_steer", "jlens_ablate", "jlens_swap"];

/// Most tokens one ablation names.
pub const MAX_ABLATED: usize = 256;

/// `cfg` (one of [`KINDS`]) at each of `layers` (block outputs; with
/// `all_layers`, every layer the lens covers instead).
pub(super) fn ops(
    cfg: &InterventionConfig,
    key: &str,
    layers: &[usize],
    all_layers: bool,
    lens: Option<&dyn LensVectors>,
) -> Result<Vec<(usize, JlensOp)>> {
    let kind = cfg.kind.as_str();
    let Some(lens) = lens else {
        return Err(invalid!(
            "intervention {key:?}: {kind} reads its directions from a Jacobian lens, but none is \
             attached to this model; attach one first"
        ));
    };
    let covered = lens.layers();
    let layers: Vec<usize> = if all_layers {
        covered.clone()
    } else {
        layers.to_vec()
    };
    if let Some(l) = layers.iter().find(|l| !covered.contains(l)) {
        return Err(invalid!(
            "intervention {key:?}: the Jacobian lens has no matrix for block {l}'s output; it \
             covers layers {covered:?} (the last block's output is the model's own, not transported)"
        ));
    }
    let alpha = || -> Result<f32> {
        let a = cfg.alpha.ok_or_else(|| {
            invalid!("intervention {key:?}: {kind} needs a numeric `alpha` (its strength, e.g. 2)")
        })?;
        super::finite(a, "alpha", key)
    };
    let token = |v: &Option<Value>, field: &str| -> Result<u32> {
        let v = v.as_ref().ok_or_else(|| {
            invalid!("intervention {key:?}: {kind} needs `{field}`: a token (a string that is exactly one token, or an id)")
        })?;
        lens.token_id(v, &format!("intervention {key:?}: {field}"))
    };
    let build: Box<dyn Fn(usize) -> Result<JlensOp> + '_> = match kind {
        "jlens_steer" => {
            let (id, alpha) = (token(&cfg.token, "token")?, alpha()?);
            Box::new(move |l| steer(lens, key, l, id, alpha))
        }
        "jlens_ablate" => {
            let ids = ablated(cfg, key, lens)?;
            Box::new(move |l| ablate(lens, key, l, &ids))
        }
        "jlens_swap" => {
            let (s, t) = (token(&cfg.source, "source")?, token(&cfg.target, "target")?);
            if s == t {
                return Err(invalid!(
                    "intervention {key:?}: source and target are the same token ({s}); a swap of \
                     a coordinate with itself changes nothing"
                ));
            }
            let alpha = alpha()?;
            Box::new(move |l| swap(lens, key, l, [s, t], alpha))
        }
        other => unreachable!("{other} is not a J-lens kind"),
    };
    layers.into_iter().map(|l| Ok((l, build(l)?))).collect()
}

/// The ids of an ablation's `tokens`.
fn ablated(cfg: &InterventionConfig, key: &str, lens: &dyn LensVectors) -> Result<Vec<u32>> {
    let list = cfg
        .tokens
        .as_ref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            invalid!(
            "intervention {key:?}: jlens_ablate needs a non-empty `tokens` list (strings that are \
             exactly one token, or ids)"
        )
        })?;
    if list.len() > MAX_ABLATED {
        return Err(invalid!(
            "intervention {key:?}: jlens_ablate names {} tokens; at most {MAX_ABLATED}",
            list.len()
        ));
    }
    list.iter()
        .map(|v| lens.token_id(v, &format!("intervention {key:?}: tokens")))
        .collect()
}

/// The vectors of `ids` at `l` in f64, each refused when zero or not finite.
fn vectors(lens: &dyn LensVectors, key: &str, l: usize, ids: &[u32]) -> Result<Vec<Vec<f64>>> {
    let vs = lens.vectors(l, ids)?;
    for (v, id) in vs.iter().zip(ids) {
        let n = norm(v);
        if !n.is_finite() || n <= f64::from(f32::EPSILON) {
            return Err(invalid!(
                "intervention {key:?}: the lens vector of token {id} at layer {l} is zero or not \
                 finite; it has no direction"
            ));
        }
    }
    Ok(vs
        .into_iter()
        .map(|v| v.into_iter().map(f64::from).collect())
        .collect())
}

fn norm<T: Copy + Into<f64>>(v: &[T]) -> f64 {
    v.iter().map(|&x| x.into() * x.into()).sum::<f64>().sqrt()
}

fn unit(v: &[f64]) -> Vec<f64> {
    let n = norm(v);
    v.iter().map(|x| x / n).collect()
}

fn steer(lens: &dyn LensVectors, key: &str, l: usize, id: u32, alpha: f32) -> Result<JlensOp> {
    let v = vectors(lens, key, l, &[id])?;
    let unit = unit(&v[0]).into_iter().map(|x| x as f32).collect();
    Ok(JlensOp::Steer {
        unit: Arc::new(unit),
        alpha,
    })
}

fn ablate(lens: &dyn LensVectors, key: &str, l: usize, ids: &[u32]) -> Result<JlensOp> {
    let units: Vec<Vec<f64>> = vectors(lens, key, l, ids)?
        .iter()
        .map(|v| unit(v))
        .collect();
    let d = units[0].len();
    let (values, w) = gram_eigen(&units);
    let kept = rank(&values, d.max(units.len()));
    let mut basis = vec![0f32; d * kept];
    for (i, &lambda) in values.iter().take(kept).enumerate() {
        let sigma = lambda.sqrt();
        for r in 0..d {
            let x: f64 = units.iter().zip(&w).map(|(u, wj)| u[r] * wj[i]).sum();
            basis[r * kept + i] = (x / sigma) as f32;
        }
    }
    Ok(JlensOp::Ablate {
        basis: Arc::new(basis),
        rank: kept,
    })
}

fn swap(lens: &dyn LensVectors, key: &str, l: usize, ids: [u32; 2], alpha: f32) -> Result<JlensOp> {
    let vs = vectors(lens, key, l, &ids)?;
    let d = vs[0].len();
    let (values, w) = gram_eigen(&vs);
    // V⁺ = Σ_i w_i (V w_i)ᵀ / λ_i over the singular values kept, as
    // torch.linalg.pinv keeps them.
    let mut pinv = vec![0f64; 2 * d];
    for (i, &lambda) in values.iter().take(rank(&values, d)).enumerate() {
        for r in 0..d {
            let vw: f64 = vs.iter().zip(&w).map(|(v, wj)| v[r] * wj[i]).sum();
            for (k, wk) in w.iter().enumerate() {
                pinv[k * d + r] += wk[i] * vw / lambda;
            }
        }
    }
    let basis = (0..d).flat_map(|r| [vs[0][r] as f32, vs[1][r] as f32]);
    Ok(JlensOp::Swap {
        basis: Arc::new(basis.collect()),
        pinv: Arc::new(pinv.into_iter().map(|x| x as f32).collect()),
        alpha,
    })
}

/// How many of the descending eigenvalues `values` of a Gram matrix have
/// singular values above torch's default relative tolerance (`max(m, n)`
/// float32 epsilons of the largest): the numerical rank.
fn rank(values: &[f64], max_dim: usize) -> usize {
    let top = values.first().copied().unwrap_or(0.0).max(0.0).sqrt();
    let tol = top * max_dim as f64 * f64::from(f32::EPSILON);
    values
        .iter()
        .take_while(|&&v| v.max(0.0).sqrt() > tol)
        .count()
}

/// The eigenvalues (descending) and eigenvectors (`w[j][i]`: component
/// `j` of vector `i`) of the Gram matrix of `rows`, by cyclic Jacobi.
fn gram_eigen(rows: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let k = rows.len();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut a: Vec<Vec<f64>> = (0..k)
        .map(|i| (0..k).map(|j| dot(&rows[i], &rows[j])).collect())
        .collect();
    let mut w: Vec<Vec<f64>> = (0..k)
        .map(|i| (0..k).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    for _sweep in 0..64 {
        let off: f64 = (0..k)
            .flat_map(|i| (0..k).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off <= 1e-30 * (0..k).map(|i| a[i][i] * a[i][i]).sum::<f64>().max(1e-300) {
            break;
        }
        for p in 0..k {
            for q in p + 1..k {
                if a[p][q] == 0.0 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let sign = if theta >= 0.0 { 1.0 } else { -1.0 };
                let t = sign / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (arp, arq) = (row[p], row[q]);
                    row[p] = c * arp - s * arq;
                    row[q] = s * arp + c * arq;
                }
                let (low, high) = a.split_at_mut(q);
                for (x, y) in low[p].iter_mut().zip(high[0].iter_mut()) {
                    let (apr, aqr) = (*x, *y);
                    *x = c * apr - s * aqr;
                    *y = s * apr + c * aqr;
                }
                for row in w.iter_mut() {
                    let (wp, wq) = (row[p], row[q]);
                    row[p] = c * wp - s * wq;
                    row[q] = s * wp + c * wq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&i, &j| a[j][j].total_cmp(&a[i][i]));
    let values = order.iter().map(|&i| a[i][i]).collect();
    let w = w
        .iter()
        .map(|row| order.iter().map(|&i| row[i]).collect())
        .collect();
    (values, w)
}

impl JlensOp {
    /// The operation on the rows `x: [T, D]` it acts on, computed in f32
    /// as TransformerLens computes it (in f64 for a model computing in
    /// f64), returned in `x`'s dtype.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let (dev, d) = (x.device(), x.dim(1)?);
        let dt = if x.dtype() == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        let h = x.to_dtype(dt)?;
        let constant = |v: &[f32], shape: (usize, usize)| -> Result<Tensor> {
            Ok(Tensor::from_slice(v, shape, dev)?.to_dtype(dt)?)
        };
        let y = match self {
            JlensOp::Steer { unit, alpha } => {
                let mut norms = h
                    .sqr()?
                    .sum(1)?
                    .sqrt()?
                    .to_dtype(DType::F64)?
                    .to_vec1::<f64>()?;
                norms.sort_by(f64::total_cmp);
                let median = norms[(norms.len() - 1) / 2];
                let step = (constant(unit, (1, d))? * (f64::from(*alpha) * median))?;
                h.broadcast_add(&step)?
            }
            JlensOp::Ablate { basis, rank } => {
                let q = constant(basis, (d, *rank))?;
                (&h - h.matmul(&q)?.matmul(&q.t()?)?)?
            }
            JlensOp::Swap { basis, pinv, alpha } => {
                let v = constant(basis, (d, 2))?;
                let p = constant(pinv, (2, d))?;
                let c = h.matmul(&p.t()?)?;
                let swapped = Tensor::cat(&[c.narrow(1, 1, 1)?, c.narrow(1, 0, 1)?], 1)?;
                let delta = ((swapped - c)?.matmul(&v.t()?)? * f64::from(*alpha))?;
                (&h + delta)?
            }
        };
        Ok(y.to_dtype(x.dtype())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gram_eigenvectors_diagonalise_it() {
        let rows = vec![
            vec![1.0, 2.0, 0.0],
            vec![0.5, -1.0, 3.0],
            vec![1.5, 1.0, 3.0],
        ];
        let (values, w) = gram_eigen(&rows);
        assert!(values[0] >= values[1] && values[1] >= values[2]);
        // The third row is the sum of the first two: rank 2.
        assert_eq!(rank(&values, 3), 2);
        let g = |i: usize, j: usize| {
            rows[i]
                .iter()
                .zip(&rows[j])
                .map(|(a, b)| a * b)
                .sum::<f64>()
        };
        for (i, &lambda) in values.iter().enumerate() {
            for r in 0..3 {
                let gw: f64 = (0..3).map(|j| g(r, j) * w[j][i]).sum();
                assert!(
                    (gw - lambda * w[r][i]).abs() < 1e-9,
                    "{gw} vs {}",
                    lambda * w[r][i]
                );
            }
        }
    }

    struct Fixed(Vec<Vec<f32>>);

    impl LensVectors for Fixed {
        fn token_id(&self, token: &Value, _: &str) -> Result<u32> {
            Ok(token.as_u64().unwrap() as u32)
        }
        fn layers(&self) -> Vec<usize> {
            vec![0]
        }
        fn vectors(&self, _: usize, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
            Ok(tokens.iter().map(|&t| self.0[t as usize].clone()).collect())
        }
    }

    fn cfg(kind: &str) -> InterventionConfig {
        InterventionConfig {
            kind: kind.into(),
            alpha: Some(1.0),
            ..Default::default()
        }
    }

    #[test]
    fn ablation_removes_the_span_and_a_swap_exchanges_coordinates() {
        let lens = Fixed(vec![vec![1., 0., 0.], vec![1., 1., 0.], vec![2., 0., 0.]]);
        let x = Tensor::new(&[[3f32, 4., 5.], [1., -2., 0.5]], &candle_core::Device::Cpu).unwrap();
        let ablate = InterventionConfig {
            tokens: Some(vec![0.into(), 1.into(), 2.into()]),
            ..cfg("jlens_ablate")
        };
        let (_, op) = &ops(&ablate, "k", &[0], false, Some(&lens)).unwrap()[0];
        assert!(matches!(op, JlensOp::Ablate { rank: 2, .. }));
        let y = op.apply(&x).unwrap().to_vec2::<f32>().unwrap();
        assert!(
            y[0][0].abs() < 1e-6 && y[0][1].abs() < 1e-6 && y[0][2] == 5.0,
            "{y:?}"
        );
        let swap = InterventionConfig {
            source: Some(0.into()),
            target: Some(1.into()),
            ..cfg("jlens_swap")
        };
        let (_, op) = &ops(&swap, "k", &[0], false, Some(&lens)).unwrap()[0];
        // x = 3·e0 + 4·e1 + 5·e2 = -1·v0 + 4·v1 + 5·e2 → 4·v0 − 1·v1 + 5·e2.
        let y = op.apply(&x).unwrap().to_vec2::<f32>().unwrap();
        let want = [3f32, -1., 5.];
        assert!(
            y[0].iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-5),
            "{y:?}"
        );
        let same = InterventionConfig {
            target: Some(0.into()),
            ..swap
        };
        let e = ops(&same, "k", &[0], false, Some(&lens))
            .unwrap_err()
            .to_string();
        assert!(e.contains("same token"), "{e}");
    }

    #[test]
    fn steering_scales_by_the_lower_median_norm() {
        let lens = Fixed(vec![vec![0., 2., 0.]]);
        let steer = InterventionConfig {
            token: Some(0.into()),
            alpha: Some(0.5),
            ..cfg("jlens_steer")
        };
        let (_, op) = &ops(&steer, "k", &[0], false, Some(&lens)).unwrap()[0];
        let x = Tensor::new(&[[3f32, 0., 0.], [0., 0., 1.]], &candle_core::Device::Cpu).unwrap();
        // Norms 3 and 1: torch's median of two is the lower, 1.
        let y = op.apply(&x).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(y, vec![vec![3., 0.5, 0.], vec![0., 0.5, 1.]]);
        let e = ops(&steer, "k", &[1], false, Some(&lens))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no matrix for block 1") && e.contains("[0]"),
            "{e}"
        );
        let e = ops(&steer, "k", &[0], false, None).unwrap_err().to_string();
        assert!(e.contains("none is attached"), "{e}");
    }
}
