//! Runs of several sequences of one length at once, and runs recorded for
//! candle's autograd: the one block loop ([`Transformer::run_blocks`]) over
//! a batch axis, its states `[B, T, D]`.
//!
//! A recorded run computes the plain run's values to the bit; the ops
//! candle cannot differentiate (fused norms, softmax, RoPE, products by a
//! matrix kept as stored) are entered into the graph with hand-written
//! backwards (`nn/record.rs`). candle keeps gradients only for variables,
//! so each state to differentiate against gets a zero variable added: its
//! gradient is the state's.

use candle_core::{Tensor, Var};

use crate::capture::Capture;
use crate::error::Result;
use crate::hooks::{InterventionPlan, Patch};

use super::{ForwardOptions, Pass, Transformer};

/// A run recorded for candle's autograd
/// ([`Transformer::forward_differentiable`]).
pub struct DifferentiableRun {
    /// The run's states `[B, T, D]` (patterns `[B, H, T, T]` when kept),
    /// in the graph.
    pub capture: Capture,
    /// For each residual state asked for (its index into `capture.resid`),
    /// the zero variable added to it: `backward()` of anything computed
    /// from later states gives this variable the state's gradient,
    /// `[B, T, D]`.
    pub wrt: Vec<(usize, Var)>,
}

impl Transformer {
    /// Run `batch`, sequences of one length, at once, without
    /// interventions. The capture's states are `[B, T, D]` (even for one
    /// sequence), its patterns `[B, H, T, T]`.
    pub fn forward_batch(&self, batch: &[&[u32]], opts: &ForwardOptions) -> Result<Capture> {
        Ok(self.run_batch(batch, &[], opts)?.capture)
    }

    /// [`forward_batch`](Self::forward_batch) recorded for candle's autograd
    /// from the residual states `wrt` (indices into `Capture::resid`: 0 the
    /// embeddings, `l + 1` block `l`'s output) on: the same values, and the
    /// gradient of anything computed from them with respect to each of
    /// those states. The weights are frozen (they get no gradient).
    pub fn forward_differentiable(
        &self,
        batch: &[&[u32]],
        wrt: &[usize],
        opts: &ForwardOptions,
    ) -> Result<DifferentiableRun> {
        if wrt.is_empty() {
            return Err(crate::invalid!(
                "a differentiated run needs a residual state to differentiate against"
            ));
        }
        self.run_batch(batch, wrt, opts)
    }

    /// `b` runs of one sequence `ids` from layer `r` on, all at once: run
    /// `i` enters layer `r` with rows `i·T..(i+1)·T` of `start` (`[B*T,
    /// D]`), and each patch replaces a row of that stacked stream (run `i`'s
    /// position `p` is row `i·T + p`) at its hook. What one run per item
    /// through [`forward_patched`](Self::forward_patched) computes, with the
    /// weights read once for all of them. Returns the last block's output,
    /// `[B*T, D]`; no attention is kept.
    pub fn forward_from(
        &self,
        ids: &[u32],
        b: usize,
        (r, start): (usize, Tensor),
        patches: &[Patch],
        opts: &ForwardOptions,
    ) -> Result<Tensor> {
        if b == 0 {
            return Err(crate::invalid!("no runs to make"));
        }
        let ids = ids.repeat(b);
        let plan = InterventionPlan::default();
        let pass = Pass {
            b,
            patches,
            start: Some((r, start)),
            ..Pass::one(&ids, &plan)
        };
        let opts = ForwardOptions {
            keep_patterns: false,
            watch: opts.watch,
        };
        let (mut cap, _) = self.run_blocks(pass, None, &opts)?;
        Ok(cap.resid.pop().expect("the last block's output"))
    }

    fn run_batch(
        &self,
        batch: &[&[u32]],
        wrt: &[usize],
        opts: &ForwardOptions,
    ) -> Result<DifferentiableRun> {
        let b = batch.len();
        let Some(t) = batch.first().map(|s| s.len()) else {
            return Err(crate::invalid!("no sequences to run"));
        };
        if let Some(s) = batch.iter().find(|s| s.len() != t) {
            return Err(crate::invalid!(
                "a batch's sequences must be of one length: {t} and {} tokens",
                s.len()
            ));
        }
        let ids = batch.concat();
        let plan = InterventionPlan::default();
        let pass = Pass {
            b,
            wrt,
            ..Pass::one(&ids, &plan)
        };
        let (cap, vars) = self.run_blocks(pass, None, opts)?;
        let d = self.cfg.d_model;
        let states = |xs: Vec<Tensor>| -> Result<Vec<Tensor>> {
            xs.into_iter().map(|x| Ok(x.reshape((b, t, d))?)).collect()
        };
        let patterns = cap
            .patterns
            .into_iter()
            .map(|p| {
                let (bh, q, s) = p.dims3()?;
                Ok(p.reshape((b, bh / b, q, s))?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DifferentiableRun {
            capture: Capture {
                resid: states(cap.resid)?,
                post_attn: states(cap.post_attn)?,
                attn_out: states(cap.attn_out)?,
                mlp_out: states(cap.mlp_out)?,
                patterns,
                receipts: cap.receipts,
            },
            wrt: vars,
        })
    }
}
