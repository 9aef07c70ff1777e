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

use super::{ForwardOptions, Pass, Step, Transformer};
use crate::nn::{HookRunner, Mode};
use crate::watch::{check, Stage};

/// Runs that join a batch at one layer ([`Transformer::forward_joining`]).
pub struct Join {
    /// The layer they enter (`n`: after the last; they only pass through).
    pub layer: usize,
    /// How many runs.
    pub runs: usize,
    /// Their streams entering `layer`, back to back, `[runs*T, D]`.
    pub start: Tensor,
    /// Rows of `start`'s runs replaced at their hooks as the runs go.
    pub patches: Vec<Patch>,
}

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

    /// Runs of one sequence `ids` (`T` tokens) that join at different
    /// layers, all in one batch that grows as it goes: at layer `l`, the
    /// runs of each [`Join`] at `l` enter with their streams, appended to
    /// the batch after those already in it, so every layer's weights are
    /// read once for all the runs that pass through it. A patch replaces a
    /// row of its join's stream (run `i` of it, position `p`: row `i·T + p`)
    /// at its hook. What each run made alone through
    /// [`forward_patched`](Self::forward_patched) computes. Returns the last
    /// block's output of every run, `[R*T, D]`, in join order (joins
    /// sorted by layer, stably); no attention is kept. `watch` hears
    /// `Stage::Forward` per layer and may stop the runs between layers.
    pub fn forward_joining(
        &self,
        ids: &[u32],
        joins: Vec<Join>,
        opts: &ForwardOptions,
    ) -> Result<Tensor> {
        let (n, t) = (self.blocks.len(), ids.len());
        let d = self.cfg.d_model;
        let mut joins = joins;
        joins.sort_by_key(|j| j.layer);
        let mut patches = Vec::new();
        let mut rows = 0;
        for j in &joins {
            if j.layer > n || j.start.dims2()? != (j.runs * t, d) || j.runs == 0 {
                return Err(crate::invalid!(
                    "a join at layer {} takes the stream of its runs entering it, [{}, {d}]",
                    j.layer,
                    j.runs * t
                ));
            }
            for p in &j.patches {
                if p.position >= j.runs * t {
                    return Err(crate::invalid!(
                        "a patch at row {} is outside its join's {} rows",
                        p.position,
                        j.runs * t
                    ));
                }
                patches.push(Patch {
                    position: rows + p.position,
                    ..p.clone()
                });
            }
            rows += j.runs * t;
        }
        let plan = InterventionPlan::default();
        let (cos, sin) = crate::nn::rope::tables(&self.inv_freq, &self.device, self.dtype, 0, t)?;
        let mut hk = HookRunner::patching(&plan, &patches);
        let mut joins = joins.into_iter().peekable();
        let mut x: Option<Tensor> = None;
        let mut join_at = |l: usize, x: &mut Option<Tensor>| -> Result<()> {
            while let Some(j) = joins.next_if(|j| j.layer == l) {
                *x = Some(match x.take() {
                    None => j.start,
                    Some(x) => Tensor::cat(&[&x, &j.start], 0)?,
                });
            }
            Ok(())
        };
        for (l, block) in self.blocks.iter().enumerate() {
            join_at(l, &mut x)?;
            let Some(stream) = x.take() else { continue };
            check(opts.watch)?;
            opts.watch.progress(Stage::Forward, l, n);
            hk.step = l;
            let step = Step {
                l,
                b: stream.dim(0)? / t,
                t,
                offset: 0,
                plan: &plan,
                rope: (&cos, &sin),
                mode: Mode::Plain,
            };
            x = Some(self.block_step(block, &stream, &step, &mut hk, None)?.resid);
        }
        join_at(n, &mut x)?;
        opts.watch.progress(Stage::Forward, n, n);
        x.ok_or_else(|| crate::invalid!("no runs to make"))
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
