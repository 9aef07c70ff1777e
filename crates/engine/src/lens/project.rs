//! A run's lens in four named steps: **plan** (the distinct states its rows
//! show, and which earlier results it takes over), **project** (a chunk of
//! states through the head: one product), **cell stats** (per cell: the top
//! 5, tracked tokens, entropy, the diff against the baseline) and
//! **assemble** (rows in the answer's order). Results are kept by state, so
//! a state two rows show (`combined`'s last block output is also "Final
//! Output") is projected once. Also: the lens of two runs saved apart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::Tensor;
use rayon::prelude::*;

use crate::capture::{Capture, State};
use crate::error::{EngineError, Result};
use crate::model::Transformer;
use crate::tokenizer::TokenizerBundle;
use crate::watch::{check, Stage, Watch};

use super::topk::{self, Top};
use super::{
    rows, DiffCell, JacobianLens, LensRow, LensType, Prediction, StateEntropies, StateMap,
    StateTops, TunedLens,
};

/// Bound on the logits materialised at once (states x positions x vocab f32).
pub(crate) const MAX_CHUNK_BYTES: usize = 256 << 20;

/// The lens of one run.
pub struct Projection {
    pub rows: Vec<LensRow>,
    /// `[T, V]` the model's own logits (the last row's projection).
    pub logits: Tensor,
    /// Top 5 per position of every state the rows show, for re-runs.
    pub tops: StateMap<StateTops>,
    /// Entropies per position, when asked for, for re-runs.
    pub entropies: StateMap<StateEntropies>,
    /// The baseline's rows, when compared with one.
    pub baseline_rows: Option<Vec<LensRow>>,
    /// `[row][position]` tracked tokens, entropy and diff, when asked for.
    pub extras: Option<Vec<Vec<CellExtras>>>,
    /// Time in the projection (norm + unembedding) and in top-k + decoding.
    pub projection: Duration,
    pub topk_decode: Duration,
}

/// Lens results a re-run takes over instead of projecting again: states
/// whose tensors are bit-identical to an earlier run's.
#[derive(Default, Clone)]
pub struct Reuse {
    pub tops: StateMap<StateTops>,
    /// Per-cell entropies of states, where the earlier run computed them.
    pub entropies: StateMap<StateEntropies>,
    /// The final logits, when the final state itself is unchanged.
    pub logits: Option<Tensor>,
}

/// What a request asks of the lens beyond the top 5.
#[derive(Default, Clone, Copy)]
pub struct Extras<'a> {
    /// Token ids whose probability and rank every cell reports.
    pub track: &'a [u32],
    pub entropy: bool,
    /// The run without interventions, and the first layer this run differs
    /// from it at (states before it are the same tensors).
    pub baseline: Option<(&'a Capture, usize)>,
    /// Told the progress after each chunk of states, and asked whether to stop.
    pub watch: Option<&'a dyn Watch>,
    /// Translate block outputs through this tuned lens before the head.
    pub tuned: Option<&'a TunedLens>,
    /// Transport the block outputs this Jacobian lens covers before the
    /// head (the embeddings and the final output are read as they are).
    pub jacobian: Option<&'a JacobianLens>,
}

impl Extras<'_> {
    fn any(&self) -> bool {
        !self.track.is_empty() || self.entropy || self.baseline.is_some()
    }

    /// Whether earlier results may stand in for a projection: they carry
    /// top 5s and entropies of the logit lens only, so tracked tokens,
    /// baselines and a tuned or Jacobian lens are computed afresh.
    fn takes_over(&self) -> bool {
        self.track.is_empty()
            && self.baseline.is_none()
            && self.tuned.is_none()
            && self.jacobian.is_none()
    }

    /// The baseline's own states among `group`: those it does not share.
    fn baseline_states(&self, group: &[State]) -> Vec<State> {
        match self.baseline {
            Some((_, r)) => group
                .iter()
                .copied()
                .filter(|s| !s.computed_before(r))
                .collect(),
            None => Vec::new(),
        }
    }
}

/// Per-cell results beyond the top 5, when asked for.
#[derive(Debug, Clone, Default)]
pub struct CellExtras {
    /// (prob, rank) per tracked id.
    pub tracked: Vec<(f64, u32)>,
    pub entropy: Option<f64>,
    pub diff: Option<DiffCell>,
}

/// Compute the lens rows for `lens` from a capture, projecting only the
/// states `reuse` does not already have, plus what `extras` asks for.
pub fn compute(
    model: &Transformer,
    tok: &TokenizerBundle,
    cap: &Capture,
    lens: LensType,
    reuse: &Reuse,
    extras: &Extras,
) -> Result<Projection> {
    let n = model.n_layers();
    let (t, v) = (cap.resid[0].dim(0)?, model.vocab_size());
    for &id in extras.track {
        if id as usize >= v {
            return Err(EngineError::InvalidRequest(format!(
                "track_tokens: id {id} is outside this model's vocabulary of {v}"
            )));
        }
    }
    let (plan, mut results) = Plan::new(lens, n, reuse, extras);
    let chunk = plan.states_per_chunk(t, v, extras);
    let mut final_logits = if plan.todo.contains(&plan.final_state) {
        None
    } else {
        reuse.logits.clone()
    };
    let (mut projection, mut topk_decode) = (Duration::ZERO, Duration::ZERO);
    for (done, group) in plan.todo.chunks(chunk).enumerate() {
        if let Some(w) = extras.watch {
            check(w)?;
            w.progress(Stage::Lens, done * chunk, plan.todo.len());
        }
        let base_states = extras.baseline_states(group);
        let inputs = inputs(cap, group, &base_states, extras)?;
        let started = Instant::now();
        let logits = project(model, &inputs)?;
        projection += started.elapsed();
        let started = Instant::now();
        let stats = cell_stats(&logits, group, &base_states, (t, v), extras)?;
        stats.check_finite(&plan, group, &base_states, t)?;
        if let Some(gi) = group.iter().position(|s| *s == plan.final_state) {
            final_logits = Some(own_rows(&logits, gi * t, t, v)?);
        }
        results.add(group, &base_states, stats, t, extras);
        topk_decode += started.elapsed();
    }
    let final_logits = match final_logits {
        Some(l) => l,
        None => model.unembed(cap.state(plan.final_state))?,
    };
    let started = Instant::now();
    let assembled = assemble(tok, &plan, &results, extras)?;
    topk_decode += started.elapsed();
    Ok(Projection {
        rows: assembled.rows,
        logits: final_logits,
        tops: results.tops,
        entropies: results.entropies,
        baseline_rows: assembled.baseline_rows,
        extras: assembled.extras,
        projection,
        topk_decode,
    })
}

/// Step 1: the rows, and the distinct states still to project.
struct Plan {
    /// Name and state of every row, in the answer's order.
    rows: Vec<(String, State)>,
    /// States to project, in row order.
    todo: Vec<State>,
    final_state: State,
}

/// What the steps have computed, by state.
#[derive(Default)]
struct Results {
    tops: StateMap<StateTops>,
    entropies: StateMap<StateEntropies>,
    /// The baseline's tops of the states it does not share.
    base_tops: StateMap<StateTops>,
    extras: StateMap<Vec<CellExtras>>,
}

impl Plan {
    /// The rows of `lens`, with every state `reuse` already has taken over
    /// into the results (the final state only with its logits).
    fn new(lens: LensType, n: usize, reuse: &Reuse, extras: &Extras) -> (Self, Results) {
        let rows = rows(lens, n);
        let final_state = State::Resid(n);
        let mut results = Results::default();
        let mut todo: Vec<State> = Vec::new();
        let mut seen: Vec<State> = Vec::new();
        for &(_, s) in &rows {
            if seen.contains(&s) {
                continue;
            }
            seen.push(s);
            let known = reuse.tops.get(&s).filter(|_| extras.takes_over());
            let entropy = reuse.entropies.get(&s);
            match known {
                Some(tops)
                    if (s != final_state || reuse.logits.is_some())
                        && (entropy.is_some() || !extras.entropy) =>
                {
                    results.tops.insert(s, tops.clone());
                    if let Some(e) = entropy.filter(|_| extras.entropy) {
                        results.entropies.insert(s, e.clone());
                        let cells = e
                            .iter()
                            .map(|&h| CellExtras {
                                entropy: Some(h),
                                ..Default::default()
                            })
                            .collect();
                        results.extras.insert(s, cells);
                    }
                }
                _ => todo.push(s),
            }
        }
        let plan = Plan {
            rows,
            todo,
            final_state,
        };
        (plan, results)
    }

    /// States projected at once: as many as fit [`MAX_CHUNK_BYTES`] of
    /// logits (and their baseline's), at least one.
    fn states_per_chunk(&self, t: usize, v: usize, extras: &Extras) -> usize {
        let per_state = t * v * 4 * if extras.baseline.is_some() { 2 } else { 1 };
        (MAX_CHUNK_BYTES / per_state.max(1)).max(1)
    }

    /// A row's name, for messages.
    fn name_of(&self, s: State) -> &str {
        self.rows
            .iter()
            .find(|(_, k)| *k == s)
            .map_or("a lens row", |(n, _)| n.as_str())
    }
}

/// The states of a chunk as the head reads them: the run's, then the
/// baseline's own, each through the tuned lens when one reads block
/// outputs, or transported by the Jacobian lens where it has a matrix.
fn inputs(
    cap: &Capture,
    group: &[State],
    base_states: &[State],
    extras: &Extras,
) -> Result<Vec<Tensor>> {
    let mut xs: Vec<(&Capture, State)> = group.iter().map(|s| (cap, *s)).collect();
    if let Some((base, _)) = extras.baseline {
        xs.extend(base_states.iter().map(|s| (base, *s)));
    }
    xs.into_iter()
        .map(|(c, s)| match (extras.tuned, extras.jacobian, s) {
            (Some(lens), _, State::Resid(i)) => lens.translate(i, c.state(s)),
            (_, Some(lens), s) => match lens.layer_of(s) {
                Some(l) => lens.transport(l, c.state(s)),
                None => Ok(c.state(s).clone()),
            },
            _ => Ok(c.state(s).clone()),
        })
        .collect()
}

/// Step 2: one projection for the whole chunk, `[(S*T), D] x [D, V]`:
/// contiguous f32 logits, the chunk's states in order.
fn project(model: &Transformer, inputs: &[Tensor]) -> Result<Tensor> {
    let x = Tensor::cat(inputs, 0)?;
    Ok(model.unembed(&x)?.contiguous()?)
}

/// What step 3 gives for a chunk, per cell in order.
struct ChunkStats {
    /// The run's states' top 5s, and their extras (empty when none asked).
    tops: Vec<Top>,
    more: Vec<CellExtras>,
    /// The baseline's own states' cells.
    base: Vec<topk::Cell>,
}

/// Step 3: every cell of a chunk's logits summarised, the baseline's cells
/// first (each diff reads them).
fn cell_stats(
    logits: &Tensor,
    group: &[State],
    base_states: &[State],
    (t, v): (usize, usize),
    extras: &Extras,
) -> Result<ChunkStats> {
    let base: Vec<topk::Cell> = crate::nn::with_f32_slice(logits, |flat| {
        (0..base_states.len() * t)
            .into_par_iter()
            .map(|i| topk::cell(&flat[(group.len() * t + i) * v..][..v]))
            .collect()
    })?;
    let (tops, more): (Vec<Top>, Vec<CellExtras>) = crate::nn::with_f32_slice(logits, |flat| {
        let row = |i: usize| &flat[i * v..(i + 1) * v];
        (0..group.len() * t)
            .into_par_iter()
            .map(|i| {
                let here = row(i);
                let (c, entropy) = if extras.entropy {
                    let (c, h) = topk::cell_and_entropy(here);
                    (c, Some(h))
                } else {
                    (topk::cell(here), None)
                };
                if !extras.any() {
                    return (c.top, CellExtras::default());
                }
                let tracked = extras
                    .track
                    .iter()
                    .map(|&id| (c.prob_of(here[id as usize]), topk::rank_of(here, id)))
                    .collect();
                let diff = extras.baseline.map(|(_, r)| {
                    let s = group[i / t];
                    match base_states.iter().position(|b| *b == s) {
                        None if s.computed_before(r) => DiffCell::same(&c.top),
                        None => unreachable!("unshared states have a baseline row"),
                        Some(k) => {
                            let b = k * t + i % t;
                            let base_row = row(group.len() * t + b);
                            DiffCell::between(base_row, &base[b], here, &c)
                        }
                    }
                });
                (
                    c.top,
                    CellExtras {
                        tracked,
                        entropy,
                        diff,
                    },
                )
            })
            .unzip()
    })?;
    Ok(ChunkStats { tops, more, base })
}

impl ChunkStats {
    /// A cell without a distribution (logits that overflowed) is refused,
    /// naming its row and position.
    fn check_finite(
        &self,
        plan: &Plan,
        group: &[State],
        base_states: &[State],
        t: usize,
    ) -> Result<()> {
        if let Some(i) = self.tops.iter().position(|top| !finite(top)) {
            return Err(not_finite(plan.name_of(group[i / t]), i % t));
        }
        if let Some(i) = self.base.iter().position(|c| !finite(&c.top)) {
            return Err(not_finite(plan.name_of(base_states[i / t]), i % t));
        }
        Ok(())
    }
}

impl Results {
    /// A chunk's cells, kept by state.
    fn add(
        &mut self,
        group: &[State],
        base_states: &[State],
        stats: ChunkStats,
        t: usize,
        extras: &Extras,
    ) {
        for (k, s) in base_states.iter().enumerate() {
            let cells = stats.base[k * t..(k + 1) * t].iter().map(|c| c.top);
            self.base_tops.insert(*s, Arc::new(cells.collect()));
        }
        for (gi, s) in group.iter().enumerate() {
            let cells = gi * t..(gi + 1) * t;
            self.tops
                .insert(*s, Arc::new(stats.tops[cells.clone()].to_vec()));
            if extras.any() {
                let more = stats.more[cells].to_vec();
                if extras.entropy {
                    let e = more.iter().map(|c| c.entropy.unwrap_or(0.0)).collect();
                    self.entropies.insert(*s, Arc::new(e));
                }
                self.extras.insert(*s, more);
            }
        }
    }
}

/// `[T, V]` rows `from..from + t` of a chunk's logits in their own storage,
/// so the whole chunk's logits do not live on with the run (`narrow` and
/// `copy` would keep them).
fn own_rows(logits: &Tensor, from: usize, t: usize, v: usize) -> Result<Tensor> {
    crate::nn::with_f32_slice(logits, |flat| {
        Tensor::from_slice(&flat[from * v..(from + t) * v], (t, v), logits.device())
    })?
    .map_err(Into::into)
}

/// What step 4 gives: the answer's rows.
struct Assembled {
    rows: Vec<LensRow>,
    baseline_rows: Option<Vec<LensRow>>,
    extras: Option<Vec<Vec<CellExtras>>>,
}

/// Step 4: the rows in the answer's order, from the results by state (the
/// baseline's rows share the run's states computed before it differs).
fn assemble(
    tok: &TokenizerBundle,
    plan: &Plan,
    results: &Results,
    extras: &Extras,
) -> Result<Assembled> {
    let names: Vec<String> = plan.rows.iter().map(|(n, _)| n.clone()).collect();
    let to_rows = |get: &dyn Fn(State) -> StateTops| -> Result<Vec<LensRow>> {
        let per_row: Vec<StateTops> = plan.rows.iter().map(|(_, s)| get(*s)).collect();
        let per_row: Vec<&[Top]> = per_row.iter().map(|t| t.as_slice()).collect();
        rows_from_tops(tok, &names, &per_row)
    };
    let projected = |s: State| results.tops[&s].clone();
    let rows = to_rows(&projected)?;
    let baseline_rows = match extras.baseline {
        Some((_, r)) => Some(to_rows(&|s| {
            if s.computed_before(r) {
                projected(s)
            } else {
                results.base_tops[&s].clone()
            }
        })?),
        None => None,
    };
    let cell_extras = extras.any().then(|| {
        plan.rows
            .iter()
            .map(|(_, s)| results.extras[s].clone())
            .collect()
    });
    Ok(Assembled {
        rows,
        baseline_rows,
        extras: cell_extras,
    })
}

/// Whether a cell's distribution exists: logits that overflowed to
/// infinity or NaN leave no top token (id `u32::MAX`) or NaN probabilities.
fn finite(top: &Top) -> bool {
    top[0].0 != u32::MAX && top.iter().all(|(_, p)| p.is_finite())
}

fn not_finite(name: &str, position: usize) -> EngineError {
    EngineError::InvalidRequest(format!(
        "{name} at position {position} is not finite: the residual stream overflowed 32-bit \
         floats (infinite or NaN logits), so it has no distribution to show; use smaller \
         intervention values"
    ))
}

/// The lens of two runs saved apart (two sessions, maybe two checkpoints):
/// each row's states `[T, D]` through its own model's head, then the diff of
/// every cell with `a` as the baseline. Returns (a's tops, b's tops, diff)
/// as `[row][position]`.
#[allow(clippy::type_complexity)]
pub fn diff_states(
    a: &Transformer,
    a_states: &[Tensor],
    b: &Transformer,
    b_states: &[Tensor],
) -> Result<(Vec<Vec<Top>>, Vec<Vec<Top>>, Vec<Vec<DiffCell>>)> {
    if a.vocab_size() != b.vocab_size() {
        return Err(EngineError::InvalidRequest(format!(
            "the vocabularies differ ({} vs {} tokens): the same id means different tokens",
            a.vocab_size(),
            b.vocab_size()
        )));
    }
    let v = a.vocab_size();
    let (mut ta, mut tb, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    for (sa, sb) in a_states.iter().zip(b_states) {
        let la = a.unembed(&sa.to_dtype(a.dtype())?)?.contiguous()?;
        let lb = b.unembed(&sb.to_dtype(b.dtype())?)?.contiguous()?;
        let cells: Vec<(Top, Top, DiffCell)> = crate::nn::with_f32_slice(&la, |fa| {
            crate::nn::with_f32_slice(&lb, |fb| {
                (0..fa.len() / v)
                    .into_par_iter()
                    .map(|p| {
                        let (ra, rb) = (&fa[p * v..(p + 1) * v], &fb[p * v..(p + 1) * v]);
                        let (ca, cb) = (topk::cell(ra), topk::cell(rb));
                        (ca.top, cb.top, DiffCell::between(ra, &ca, rb, &cb))
                    })
                    .collect()
            })
        })??;
        ta.push(cells.iter().map(|c| c.0).collect());
        tb.push(cells.iter().map(|c| c.1).collect());
        diff.push(cells.iter().map(|c| c.2).collect());
    }
    Ok((ta, tb, diff))
}

/// Lens rows from `[row][position]` tops and row names.
pub fn rows_from_tops(
    tok: &TokenizerBundle,
    names: &[String],
    tops: &[&[Top]],
) -> Result<Vec<LensRow>> {
    names
        .iter()
        .zip(tops)
        .enumerate()
        .map(|(i, (name, row))| {
            Ok(LensRow {
                layer_index: i,
                layer_name: name.clone(),
                predictions: row
                    .iter()
                    .map(|top| {
                        top.iter()
                            .map(|&(id, p)| {
                                Ok(Prediction {
                                    token: tok.decode_one(id)?,
                                    prob: p as f64,
                                    id,
                                })
                            })
                            .collect::<Result<Vec<_>>>()
                    })
                    .collect::<Result<Vec<_>>>()?,
            })
        })
        .collect()
}
