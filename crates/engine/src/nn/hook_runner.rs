//! Applies a plan's operations to the streams of a forward pass as it
//! runs, and writes a receipt for each.

use candle_core::Tensor;

use crate::capture::Receipt;
use crate::error::Result;
use crate::hooks::{HookPoint, InterventionPlan, Patch, StreamOpKind};
use crate::nn::attend::l2;

/// A caller's own code at hook points (the Python module's
/// `run_with_hooks`): it sees the activation at each hook it wants, after
/// the plan's operations and patches there, and may return a replacement
/// of the same shape.
pub trait Rewrite: Sync {
    /// Whether it acts at `at`.
    fn wants(&self, at: HookPoint) -> bool;
    /// The activation at `at`, `[rows, D]`, its rows the sequence's
    /// `positions`; `None` keeps it as it is.
    fn rewrite(
        &self,
        at: HookPoint,
        x: &Tensor,
        positions: std::ops::Range<usize>,
    ) -> Result<Option<Tensor>>;
    /// Layer `layer`'s attention scores, `[H, T, S]`: before the softmax,
    /// scaled (and soft-capped), the masked ones -inf. Seen, not changed.
    fn scores(&self, _layer: usize, _scores: &Tensor) -> Result<()> {
        Ok(())
    }
}

pub(crate) struct HookRunner<'a> {
    plan: &'a InterventionPlan,
    /// Activations to replace after the plan's operations at their hooks
    /// (rows of the stream: a batch's item `i` at position `p` is row
    /// `i·T + p`).
    patches: &'a [Patch],
    pub(crate) receipts: Vec<Receipt>,
    /// The layer being computed (0 before layer 0).
    pub(crate) step: usize,
    /// Set when this run computes only the positions `offset..` after a
    /// cache of earlier ones: the plan's positions are absolute, and those
    /// outside the run belong to the runs that compute them.
    cached: Option<usize>,
    /// The caller's code at hook points, after everything else there.
    pub(crate) rewrite: Option<&'a dyn Rewrite>,
    /// A batch whose items have plans of their own (`plan` is then empty).
    items: Option<Items<'a>>,
}

/// The items of a batch, each under its own plan: item `i` is rows
/// `i·t..i·t + lens[i]` of the stream (the rest of its `t` rows padding,
/// which its plan never touches).
struct Items<'a> {
    plans: &'a [&'a InterventionPlan],
    lens: &'a [usize],
    t: usize,
    /// Each item's receipts, as a run of it alone writes them.
    receipts: Vec<Vec<Receipt>>,
}

impl<'a> HookRunner<'a> {
    pub(crate) fn new(plan: &'a InterventionPlan) -> Self {
        HookRunner {
            plan,
            patches: &[],
            receipts: Vec::new(),
            step: 0,
            cached: None,
            rewrite: None,
            items: None,
        }
    }

    /// For a batch of `plans.len()` items of `t` rows each, item `i` under
    /// `plans[i]` on its first `lens[i]` rows.
    pub(crate) fn items(
        plans: &'a [&'a InterventionPlan],
        lens: &'a [usize],
        t: usize,
        patches: &'a [Patch],
    ) -> Self {
        HookRunner {
            items: Some(Items {
                plans,
                lens,
                t,
                receipts: vec![Vec::new(); plans.len()],
            }),
            ..Self::patching(&EMPTY, patches)
        }
    }

    /// Each item's receipts (a batch made by [`items`](Self::items)).
    pub(crate) fn item_receipts(&mut self) -> Vec<Vec<Receipt>> {
        self.items
            .as_mut()
            .map(|i| std::mem::take(&mut i.receipts))
            .unwrap_or_default()
    }

    /// For a run of the positions after the first `offset`, which a cache
    /// holds.
    pub(crate) fn continuing(plan: &'a InterventionPlan, offset: usize) -> Self {
        HookRunner {
            cached: Some(offset),
            ..Self::new(plan)
        }
    }

    /// A run whose activations at the patches' hooks are replaced.
    pub(crate) fn patching(plan: &'a InterventionPlan, patches: &'a [Patch]) -> Self {
        HookRunner {
            patches,
            ..Self::new(plan)
        }
    }

    /// The operations at `at`, in request order, on `x: [T, D]`, then the
    /// patches at `at`.
    pub(crate) fn apply(&mut self, mut x: Tensor, at: HookPoint) -> Result<Tensor> {
        let (offset, step) = (self.cached.unwrap_or(0), self.step);
        let cached = self.cached.is_some();
        x = match &mut self.items {
            Some(items) => items.apply(x, at, step)?,
            None => apply_plan(self.plan, x, at, (offset, cached, step), &mut self.receipts)?,
        };
        let rows: Vec<(usize, &Tensor)> = self
            .patches
            .iter()
            .filter(|p| p.at == at)
            .map(|p| (p.position, &p.row))
            .collect();
        if !rows.is_empty() {
            x = with_rows(&x, rows)?;
        }
        match self.rewrite.filter(|r| r.wants(at)) {
            Some(r) => self.rewritten(r, x, at),
            None => Ok(x),
        }
    }

    /// `x` as the caller's code at `at` leaves it, checked.
    fn rewritten(&self, r: &dyn Rewrite, x: Tensor, at: HookPoint) -> Result<Tensor> {
        let offset = self.cached.unwrap_or(0);
        let rows = offset..offset + x.dim(0)?;
        match r.rewrite(at, &x, rows)? {
            None => Ok(x),
            Some(y) if y.dims() == x.dims() => Ok(y.to_dtype(x.dtype())?),
            Some(y) => Err(crate::invalid!(
                "the hook at {at} returned an array of shape {:?} for an activation of shape {:?}",
                y.dims(),
                x.dims()
            )),
        }
    }

    /// Receipts of the blocking at `layer` in a run of `t` positions:
    /// `delta` is the norm of the pattern change that all of the layer's
    /// blocking made.
    pub(crate) fn blocked(&mut self, layer: usize, n_heads: usize, t: usize, delta: Option<f64>) {
        let offset = self.cached.unwrap_or(0);
        for b in self
            .plan
            .blocks
            .iter()
            .filter(|b| b.layers.contains(&layer))
        {
            let pairs: Vec<&(usize, usize)> = b
                .pairs
                .iter()
                .filter(|(q, _)| self.cached.is_none() || (offset..offset + t).contains(q))
                .collect();
            if self.cached.is_some() && pairs.is_empty() {
                continue;
            }
            let mut positions: Vec<usize> = pairs.iter().map(|&&(q, _)| q).collect();
            positions.sort_unstable();
            positions.dedup();
            self.receipts.push(Receipt {
                key: b.key.clone(),
                hook: HookPoint::AttnScores(layer).to_string(),
                layer: Some(layer),
                positions,
                elements: pairs.len() * n_heads,
                delta_norm: delta,
                step: self.step,
            });
        }
    }
}

/// The plan every item of a batch of none shares.
static EMPTY: std::sync::LazyLock<InterventionPlan> =
    std::sync::LazyLock::new(InterventionPlan::default);

impl Items<'_> {
    /// Each item's operations at `at` on its own rows of `x: [B·t, D]`.
    fn apply(&mut self, x: Tensor, at: HookPoint, step: usize) -> Result<Tensor> {
        if self.plans.iter().all(|p| p.ops_at(at).is_empty()) {
            return Ok(x);
        }
        let t = self.t;
        let mut parts = Vec::with_capacity(2 * self.plans.len());
        for (i, (plan, &len)) in self.plans.iter().zip(self.lens).enumerate() {
            let own = x.narrow(0, i * t, len)?;
            let receipts = &mut self.receipts[i];
            parts.push(apply_plan(plan, own, at, (0, false, step), receipts)?);
            if len < t {
                parts.push(x.narrow(0, i * t + len, t - len)?);
            }
        }
        Ok(Tensor::cat(&parts, 0)?)
    }
}

/// `plan`'s operations at `at`, in request order, on `x: [T, D]`, a receipt
/// for each; `(offset, cached, step)`: the first position `x` holds, whether
/// the run continues a cache (operations at other positions are other
/// runs'), and the layer being computed.
fn apply_plan(
    plan: &InterventionPlan,
    mut x: Tensor,
    at: HookPoint,
    (offset, cached, step): (usize, bool, usize),
    receipts: &mut Vec<Receipt>,
) -> Result<Tensor> {
    for op in plan.ops_at(at) {
        let row = match (op.position, cached) {
            (Some(p), true) if !(offset..offset + x.dim(0)?).contains(&p) => continue,
            (p, _) => p.map(|p| p - offset),
        };
        let before = x;
        x = apply_op(&before, &op.kind, row)?;
        let (t, d) = x.dims2()?;
        let positions: Vec<usize> = match op.position {
            Some(p) => vec![p],
            None => (offset..offset + t).collect(),
        };
        let delta = l2((&x - &before)?)?;
        if !delta.is_finite() {
            return Err(crate::invalid!(
                "intervention {:?} at {at}: the result is not finite (it overflows the \
                 forward pass's floats); use a smaller factor or vector",
                op.key
            ));
        }
        receipts.push(Receipt {
            key: op.key.clone(),
            hook: at.to_string(),
            layer: at.layer(),
            elements: positions.len() * d,
            positions,
            delta_norm: Some(delta),
            step,
        });
    }
    Ok(x)
}

/// `kind` on every row of `x`, or on row `row` alone.
fn apply_op(x: &Tensor, kind: &StreamOpKind, row: Option<usize>) -> Result<Tensor> {
    let d = x.dim(1)?;
    let dev = x.device();
    let add = |v: &[f32]| -> Result<Tensor> {
        Ok(Tensor::from_slice(v, (1, d), dev)?.to_dtype(x.dtype())?)
    };
    Ok(match (kind, row) {
        (StreamOpKind::Zero, None) => x.zeros_like()?,
        (StreamOpKind::Scale(s), None) => x.affine(*s as f64, 0.0)?,
        (StreamOpKind::Add(v), None) => x.broadcast_add(&add(v)?)?,
        (StreamOpKind::Jlens(op), None) => op.apply(x)?,
        (StreamOpKind::Sae(op), None) => op.apply(x)?,
        (kind, Some(p)) => {
            // Rebuild the one row rather than scale by a mask: other rows stay
            // bit-identical and NaN/inf elsewhere can't leak through a 0 factor.
            let row = x.narrow(0, p, 1)?;
            let row = match kind {
                StreamOpKind::Zero => row.zeros_like()?,
                StreamOpKind::Scale(s) => row.affine(*s as f64, 0.0)?,
                StreamOpKind::Add(v) => (row + add(v)?)?,
                StreamOpKind::Jlens(op) => op.apply(&row)?,
                StreamOpKind::Sae(op) => op.apply(&row)?,
            };
            with_row(x, p, &row)?
        }
    })
}

/// `x: [T, D]` with each row `p` of `rows` replaced by its `[1, D]`, the
/// other rows bit-identical; one copy of `x` however many rows.
pub(crate) fn with_rows(x: &Tensor, mut rows: Vec<(usize, &Tensor)>) -> Result<Tensor> {
    rows.sort_by_key(|(p, _)| *p);
    let t = x.dim(0)?;
    let mut parts = Vec::with_capacity(2 * rows.len() + 1);
    let mut next = 0;
    for (p, row) in rows {
        if p < next || p >= t {
            return Err(crate::invalid!(
                "row {p} is replaced twice or is outside the stream's {t} rows"
            ));
        }
        if p > next {
            parts.push(x.narrow(0, next, p - next)?);
        }
        parts.push(row.to_dtype(x.dtype())?);
        next = p + 1;
    }
    if next < t {
        parts.push(x.narrow(0, next, t - next)?);
    }
    Ok(Tensor::cat(&parts, 0)?)
}

/// `x: [T, D]` with row `p` replaced by `row: [1, D]`, the other rows
/// bit-identical.
pub(crate) fn with_row(x: &Tensor, p: usize, row: &Tensor) -> Result<Tensor> {
    with_rows(x, vec![(p, row)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn position_ops_touch_only_their_row() {
        let x = Tensor::arange(0f32, 12.0, &Device::Cpu)
            .unwrap()
            .reshape((3, 4))
            .unwrap();
        let run = |kind, row| apply_op(&x, &kind, row).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(
            run(StreamOpKind::Scale(2.0), Some(1)),
            vec![
                vec![0., 1., 2., 3.],
                vec![8., 10., 12., 14.],
                vec![8., 9., 10., 11.]
            ]
        );
        let y = run(StreamOpKind::Add(vec![1.0; 4]), Some(2));
        assert_eq!(
            (y[2].clone(), y[0].clone()),
            (vec![9., 10., 11., 12.], vec![0., 1., 2., 3.])
        );
        let y = run(StreamOpKind::Zero, Some(0));
        assert_eq!(
            (y[0].clone(), y[1].clone()),
            (vec![0.; 4], vec![4., 5., 6., 7.])
        );
    }
}
