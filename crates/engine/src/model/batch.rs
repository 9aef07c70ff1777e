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

use super::{ForwardOptions, KvCache, Pass, Step, Transformer};
use crate::hooks::HookPoint;
use crate::nn::{attend, repeat_kv, AttnMask, HookRunner, Mode};
use crate::watch::{check, Stage};

/// Runs that join a batch at one layer ([`Transformer::forward_joining`]).
pub struct Join {
    /// The layer they enter (`n`: after the last; they only pass through).
    pub layer: usize,
    /// How many runs.
    pub runs: usize,
    /// The first position the runs carry: those before it are the base
    /// run's (a patch at `from` changes no earlier position).
    pub from: usize,
    /// Their streams entering `layer`, back to back, `[runs*(T-from), D]`.
    pub start: Tensor,
    /// Rows of `start`'s runs replaced at hooks of `layer` as the runs go.
    pub patches: Vec<Patch>,
}

/// The runs of a ragged batch, grouped by the first position they carry.
pub(super) struct Ragged<'a> {
    segs: Vec<Seg>,
    /// The base run's keys and values, for the positions before a group's.
    prefix: Option<&'a KvCache>,
    /// The last block: only each run's last position goes on past the
    /// attention (the others' keys and values are all it needs of them).
    last_only: bool,
}

impl Ragged<'_> {
    /// With `last_only`, the rows that go on past the attention: each
    /// run's last, in batch order.
    pub(super) fn kept(&self, t: usize) -> Option<Vec<u32>> {
        self.last_only.then(|| {
            self.segs
                .iter()
                .flat_map(|s| (1..=s.runs).map(move |i| (s.row + i * (t - s.from) - 1) as u32))
                .collect()
        })
    }
}

/// The runs of a growing batch that carry positions `from..T`: their rows
/// so far (pieces, in the order the runs joined).
struct Group {
    from: usize,
    rows: Vec<Tensor>,
    runs: usize,
}

impl Group {
    /// Rows its runs take in a `t`-token batch.
    fn rows_in(&self, t: usize) -> usize {
        self.runs * (t - self.from)
    }
}

/// The first row of each group in the batch, the groups back to back.
fn first_rows(groups: &[Group], t: usize) -> Vec<usize> {
    groups
        .iter()
        .scan(0, |row, g| {
            let first = *row;
            *row += g.rows_in(t);
            Some(first)
        })
        .collect()
}

/// `runs` runs of positions `from..T`, from row `row` of the batch on.
struct Seg {
    row: usize,
    runs: usize,
    from: usize,
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
        Ok(self.run_batch(batch, &[], None, None, opts)?.capture)
    }

    /// Run `batch`, sequences padded to one length, each item `i` under
    /// its own plan `plans[i]` on its first `lens[i]` positions (the rest
    /// padding: causal attention keeps them out of its positions). Each
    /// item's capture, cut to its length, with its receipts and (when kept)
    /// its patterns `[H, T, T]`: what a run of it alone computes. Plans act
    /// on the stream only (no attention blocking, no `hook_pos_embed`).
    ///
    /// With `resume = Some((r, earlier))`, layers before `r` are taken from
    /// `earlier`, a capture of each item's ids (of the batch's length, no
    /// padding) whose plan agrees with the item's before layer `r`, as
    /// [`forward_with`](Self::forward_with) resumes one run.
    pub fn forward_batch_planned(
        &self,
        batch: &[&[u32]],
        plans: &[&InterventionPlan],
        lens: &[usize],
        resume: Option<(usize, &[&Capture])>,
        opts: &ForwardOptions,
    ) -> Result<Vec<Capture>> {
        let stacked = match resume {
            Some((r, earlier)) => Some((r, stack_prefix(earlier, r, batch, opts)?)),
            None => None,
        };
        let from = stacked.as_ref().map(|(r, c)| (*r, c));
        let run = self.run_batch(batch, &[], Some((plans, lens)), from, opts)?;
        let mut receipts = run.item_receipts.into_iter();
        lens.iter()
            .enumerate()
            .map(|(i, &len)| {
                let mut cap = run.capture.item(i, len)?;
                cap.receipts = match resume {
                    Some((r, earlier)) => earlier[i].prefix(r).receipts,
                    None => Vec::new(),
                };
                cap.receipts.extend(receipts.next().unwrap_or_default());
                Ok(cap)
            })
            .collect()
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
        let run = self.run_batch(batch, wrt, None, None, opts)?;
        Ok(DifferentiableRun {
            capture: run.capture,
            wrt: run.wrt,
        })
    }

    /// Runs of one sequence `ids` (`T` tokens) that join at different
    /// layers, all in one batch that grows as it goes: at layer `l`, the
    /// runs of each [`Join`] at `l` enter with their streams, so every
    /// layer's weights are read once for all the runs that pass through it.
    /// A run carries only the positions from its join's `from` on: those
    /// before it are the base run's, whose keys and values `prefix` holds
    /// (a [`KvCache`] of the base run of `ids`, made by
    /// [`forward_cached`](Self::forward_cached); needed when some `from` is
    /// not 0). A patch replaces a row of its join's stream (run `i` of it,
    /// position `p`: row `i·(T − from) + p − from`) at a hook of the join's
    /// layer. What each run made alone through
    /// [`forward_patched`](Self::forward_patched) computes at its positions.
    /// Returns the last position's output of every run, `[R, D]`, in join
    /// order (joins sorted by layer, stably); no attention is kept. `watch`
    /// hears `Stage::Forward` per layer and may stop the runs between
    /// layers.
    pub fn forward_joining(
        &self,
        ids: &[u32],
        joins: Vec<Join>,
        prefix: Option<&KvCache>,
        opts: &ForwardOptions,
    ) -> Result<Tensor> {
        let (n, t) = (self.blocks.len(), ids.len());
        let mut joins = joins;
        joins.sort_by_key(|j| j.layer);
        self.check_joins(t, &joins, prefix)?;
        let plan = InterventionPlan::default();
        let (cos, sin) = crate::nn::rope::tables(&self.inv_freq, &self.device, self.dtype, 0, t)?;
        // The batch, grouped by `from`. `order[k]` is the group and index
        // in it of the k-th run in join order.
        let mut groups: Vec<Group> = Vec::new();
        let mut order: Vec<(usize, usize)> = Vec::new();
        let mut joins = joins.into_iter().peekable();
        let mut x: Option<Tensor> = None;
        for l in 0..=n {
            let mut entering = Vec::new();
            while let Some(j) = joins.next_if(|j| j.layer == l) {
                entering.push(j);
            }
            let mut patches = Vec::new();
            if !entering.is_empty() {
                x = Some(regroup(&mut groups, &mut order, entering, t, &mut patches)?);
            }
            let Some(block) = self.blocks.get(l) else {
                break;
            };
            let Some(stream) = x.take() else {
                continue;
            };
            check(opts.watch)?;
            opts.watch.progress(Stage::Forward, l, n);
            let segs = groups
                .iter()
                .zip(first_rows(&groups, t))
                .map(|(g, row)| Seg {
                    row,
                    runs: g.runs,
                    from: g.from,
                })
                .collect();
            // Only the runs' last positions are answered: in the last block
            // no other row reaches one past the attention (the MLP and the
            // hooks after the attention act row by row).
            let ragged = Ragged {
                segs,
                prefix,
                last_only: l + 1 == n,
            };
            let kept = ragged.kept(t);
            if let Some(kept) = &kept {
                patches = patches
                    .into_iter()
                    .filter_map(|p| {
                        let i = kept.iter().position(|&r| r as usize == p.position)?;
                        Some(Patch { position: i, ..p })
                    })
                    .collect();
            }
            let mut hk = HookRunner::patching(&plan, &patches);
            hk.step = l;
            let step = Step {
                l,
                b: 0,
                t,
                offset: 0,
                plan: &plan,
                rope: (&cos, &sin),
                mode: Mode::Plain,
                ragged: Some(&ragged),
            };
            let mut out = self.block_step(block, &stream, &step, &mut hk, None)?.resid;
            if let Some(kept) = kept {
                // Back in the batch's rows; the others keep the values they
                // entered with, which nothing after the last block reads.
                out = scatter_rows(&stream, &kept, &out)?;
            }
            // Each group's rows, to append the runs that join next.
            for (row, g) in first_rows(&groups, t).into_iter().zip(groups.iter_mut()) {
                g.rows = vec![out.narrow(0, row, g.rows_in(t))?];
            }
            x = Some(out);
        }
        opts.watch.progress(Stage::Forward, n, n);
        let x = x.ok_or_else(|| crate::invalid!("no runs to make"))?;
        // Each run's last row, in join order.
        let starts = first_rows(&groups, t);
        let last: Vec<u32> = order
            .iter()
            .map(|&(g, i)| (starts[g] + (i + 1) * (t - groups[g].from) - 1) as u32)
            .collect();
        Ok(x.index_select(&Tensor::new(last, &self.device)?, 0)?)
    }

    /// Refuses joins [`forward_joining`](Self::forward_joining) cannot run.
    fn check_joins(&self, t: usize, joins: &[Join], prefix: Option<&KvCache>) -> Result<()> {
        let (n, d) = (self.blocks.len(), self.cfg.d_model);
        for j in joins {
            if j.from >= t {
                return Err(crate::invalid!(
                    "a join's runs start at position {} of a {t}-token sequence",
                    j.from
                ));
            }
            let rows = j.runs * (t - j.from);
            if j.layer > n || j.start.dims2()? != (rows, d) || j.runs == 0 {
                return Err(crate::invalid!(
                    "a join at layer {} takes the stream of its runs entering it, [{rows}, {d}]",
                    j.layer,
                ));
            }
            if j.from > 0 {
                match prefix {
                    Some(c) if c.len() >= j.from => c.check_fits(self)?,
                    _ => {
                        return Err(crate::invalid!(
                            "runs from position {} need the keys and values of the positions                              before it",
                            j.from
                        ))
                    }
                }
            }
            for p in &j.patches {
                if p.position >= rows {
                    return Err(crate::invalid!(
                        "a patch at row {} is outside its join's {rows} rows",
                        p.position,
                    ));
                }
                if !within_block(p.at, j.layer) {
                    return Err(crate::invalid!(
                        "a patch at {} is not in layer {}, which its runs join at",
                        p.at,
                        j.layer
                    ));
                }
            }
        }
        Ok(())
    }

    /// A ragged batch's attention up to the heads' mix, `[rows, H*hd]`:
    /// each group of runs from one position over the prefix's keys and
    /// values and their own.
    pub(super) fn attention_ragged(
        &self,
        attn: &super::Attention,
        h: &Tensor,
        s: &Step,
        ragged: &Ragged,
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (nkv, hd, mode) = (cfg.n_kv_heads, cfg.head_dim, s.mode);
        let n_rep = cfg.n_heads / nkv;
        let (q_all, k_all, v_all) = (
            attn.q.forward_in(h, mode)?,
            attn.k.forward_in(h, mode)?,
            attn.v.forward_in(h, mode)?,
        );
        let mut outs = Vec::with_capacity(ragged.segs.len());
        for seg in &ragged.segs {
            let (b, tq) = (seg.runs, s.t - seg.from);
            let rows = |x: &Tensor| x.narrow(0, seg.row, b * tq);
            let rope = (
                &s.rope.0.narrow(0, seg.from, tq)?,
                &s.rope.1.narrow(0, seg.from, tq)?,
            );
            let projected = (rows(&q_all)?, rows(&k_all)?, rows(&v_all)?);
            let (q, k, v) = self.heads(attn, projected, (b, tq), rope, mode)?;
            let (k, v) = match (seg.from, ragged.prefix) {
                (0, _) | (_, None) => (k, v),
                (from, Some(cache)) => {
                    let (pk, pv) = cache.prefix(s.l, from)?;
                    let shared = |p: Tensor| -> Result<Tensor> {
                        Ok(p.unsqueeze(0)?.expand((b, nkv, from, hd))?.reshape((
                            b * nkv,
                            from,
                            hd,
                        ))?)
                    };
                    (
                        Tensor::cat(&[&shared(pk)?, &k], 1)?,
                        Tensor::cat(&[&shared(pv)?, &v], 1)?,
                    )
                }
            };
            let (k, v) = (repeat_kv(k, n_rep)?, repeat_kv(v, n_rep)?);
            let mask = AttnMask::build(seg.from, tq, std::iter::empty(), &self.device, self.dtype)?;
            outs.push(attend(&q, &k, &v, b, self.scores_at(s.l), &mask, mode)?.out);
        }
        Ok(Tensor::cat(&outs, 0)?)
    }

    fn run_batch(
        &self,
        batch: &[&[u32]],
        wrt: &[usize],
        items: Option<(&[&InterventionPlan], &[usize])>,
        resume: Option<(usize, &Capture)>,
        opts: &ForwardOptions,
    ) -> Result<BatchRan> {
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
            items,
            resume,
            ..Pass::one(&ids, &plan)
        };
        let super::Ran {
            capture: cap,
            vars,
            item_receipts,
        } = self.run_blocks(pass, None, opts)?;
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
        Ok(BatchRan {
            capture: Capture {
                resid: states(cap.resid)?,
                post_attn: states(cap.post_attn)?,
                attn_out: states(cap.attn_out)?,
                mlp_out: states(cap.mlp_out)?,
                patterns,
                receipts: cap.receipts,
            },
            wrt: vars,
            item_receipts,
        })
    }
}

/// A batch's run: its states `[B, T, D]`, and what differentiated runs and
/// per-item plans add.
struct BatchRan {
    capture: Capture,
    wrt: Vec<(usize, Var)>,
    item_receipts: Vec<Vec<crate::capture::Receipt>>,
}

/// The batch after `entering` join it: each group (runs from one
/// position) its rows so far, then the entering runs from that position,
/// in join order. Records each entering run's place in `order` and moves
/// the joins' patches to the rows they land on.
fn regroup(
    groups: &mut Vec<Group>,
    order: &mut Vec<(usize, usize)>,
    entering: Vec<Join>,
    t: usize,
    patches: &mut Vec<Patch>,
) -> Result<Tensor> {
    // Where each entering join's runs go: (group, index of its first run).
    let mut placed = Vec::with_capacity(entering.len());
    for j in &entering {
        let g = match groups.iter().position(|g| g.from == j.from) {
            Some(g) => g,
            None => {
                let g = groups.partition_point(|g| g.from < j.from);
                groups.insert(
                    g,
                    Group {
                        from: j.from,
                        rows: Vec::new(),
                        runs: 0,
                    },
                );
                for o in order.iter_mut().filter(|o| o.0 >= g) {
                    o.0 += 1;
                }
                for p in placed.iter_mut().filter(|p: &&mut (usize, usize)| p.0 >= g) {
                    p.0 += 1;
                }
                g
            }
        };
        let first = groups[g].runs;
        groups[g].runs += j.runs;
        order.extend((0..j.runs).map(|i| (g, first + i)));
        placed.push((g, first));
    }
    let group_row = first_rows(groups, t);
    for (j, &(g, first)) in entering.into_iter().zip(&placed) {
        let base = group_row[g] + first * (t - j.from);
        patches.extend(j.patches.into_iter().map(|p| Patch {
            position: base + p.position,
            ..p
        }));
        groups[g].rows.push(j.start);
    }
    let pieces: Vec<&Tensor> = groups.iter().flat_map(|g| &g.rows).collect();
    Ok(Tensor::cat(&pieces, 0)?)
}

/// `x` with its rows `at` replaced by `rows`' (in order).
fn scatter_rows(x: &Tensor, at: &[u32], rows: &Tensor) -> Result<Tensor> {
    let out = x.copy()?;
    for (i, &r) in at.iter().enumerate() {
        out.slice_set(&rows.narrow(0, i, 1)?, 0, r as usize)?;
    }
    Ok(out)
}

/// Whether block `l` applies the hook `at` (the hooks that follow the
/// block's input, up to the next block's `resid_pre`).
fn within_block(at: HookPoint, l: usize) -> bool {
    match at {
        HookPoint::AttnOut(i)
        | HookPoint::ResidMid(i)
        | HookPoint::MlpOut(i)
        | HookPoint::ResidPost(i)
        | HookPoint::AttnScores(i) => i == l,
        HookPoint::ResidPre(i) => i == l + 1,
        HookPoint::Embed | HookPoint::PosEmbed => false,
    }
}

/// The states before layer `r` of each item's `earlier` capture, stacked as
/// one batch's (`[B·T, D]`, the items back to back), to resume a batch at
/// layer `r`.
fn stack_prefix(
    earlier: &[&Capture],
    r: usize,
    batch: &[&[u32]],
    opts: &ForwardOptions,
) -> Result<Capture> {
    let t = batch.first().map_or(0, |s| s.len());
    if earlier.len() != batch.len()
        || earlier
            .iter()
            .any(|c| c.resid.len() <= r || c.resid[r].dim(0).ok() != Some(t))
    {
        return Err(crate::invalid!(
            "a batch resumes at layer {r} from a capture of each of its {} items, each of its \
             {t} positions through that layer",
            batch.len()
        ));
    }
    if opts.keep_patterns {
        return Err(crate::invalid!(
            "a resumed batch keeps no attention patterns (not implemented)"
        ));
    }
    let cat = |pick: &dyn Fn(&Capture) -> &[Tensor], n: usize| -> Result<Vec<Tensor>> {
        (0..n)
            .map(|l| {
                let parts: Vec<&Tensor> = earlier.iter().map(|c| &pick(c)[l]).collect();
                Ok(Tensor::cat(&parts, 0)?)
            })
            .collect()
    };
    let mut c = Capture::with_layers(r);
    c.resid = cat(&|c| &c.resid, r + 1)?;
    c.post_attn = cat(&|c| &c.post_attn, r)?;
    c.attn_out = cat(&|c| &c.attn_out, r)?;
    c.mlp_out = cat(&|c| &c.mlp_out, r)?;
    Ok(c)
}
