//! The logit lens: every chosen residual state through the model's own
//! final norm and unembedding, softmax over the whole vocabulary, top 5 per
//! position; and what a request asks beyond it (tracked tokens, entropy,
//! the diff against a baseline run).

pub mod eval;
pub mod topk;
pub mod train;

use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::model::Transformer;
use crate::tokenizer::TokenizerBundle;
use crate::types::{check, Capture, Stage, State, Watch};

pub use crate::nn::TunedLens;
pub use topk::{top_k_softmax, Top, TOP_K};

/// Which lens draws the rows: the logit lens, or the tuned lens attached
/// to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Lens {
    #[default]
    Logit,
    Tuned,
}

/// Bound on the logits materialised at once (rows x positions x vocab f32).
pub(crate) const MAX_CHUNK_BYTES: usize = 256 << 20;

/// Which states the lens rows show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LensType {
    /// The embeddings, every block's output, the final output.
    #[default]
    BlockOutput,
    /// The embeddings, the residual stream after every attention add, the final output.
    PostAttention,
    /// Both, interleaved.
    Combined,
}

impl LensType {
    pub const NAMES: &'static str = "block_output, post_attention, combined";

    pub fn as_str(self) -> &'static str {
        match self {
            LensType::BlockOutput => "block_output",
            LensType::PostAttention => "post_attention",
            LensType::Combined => "combined",
        }
    }
}

impl std::str::FromStr for LensType {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "block_output" => Ok(LensType::BlockOutput),
            "post_attention" => Ok(LensType::PostAttention),
            "combined" => Ok(LensType::Combined),
            _ => Err(format!("unknown lens_type {s:?} (known: {})", Self::NAMES)),
        }
    }
}

/// One of the top 5 of a cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Prediction {
    /// The token as `decode([id])` gives it.
    pub token: String,
    pub prob: f64,
    pub id: u32,
}

/// One lens row: a captured state's top 5 at every position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LensRow {
    /// Its place in the list of rows.
    pub layer_index: usize,
    pub layer_name: String,
    /// `[position][rank]`, 5 per position, most probable first.
    pub predictions: Vec<Vec<Prediction>>,
}

/// One tracked token in one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrackedCell {
    pub id: u32,
    pub token: String,
    pub prob: f64,
    /// 0 = the top token.
    pub rank: u32,
}

/// The rows of a lens type for an `n_layers` model, with the names the
/// original tool gave them.
pub fn rows(lens: LensType, n_layers: usize) -> Vec<(String, State)> {
    let n = n_layers;
    let mut out = vec![("Embeddings".to_string(), State::Resid(0))];
    match lens {
        LensType::BlockOutput => {
            out.extend(
                (0..n.saturating_sub(1)).map(|i| (format!("Layer {i}"), State::Resid(i + 1))),
            );
        }
        LensType::PostAttention => {
            out.extend((0..n).map(|i| (format!("L{i} Post-Attn"), State::PostAttn(i))));
        }
        LensType::Combined => {
            for i in 0..n {
                out.push((format!("L{i} Post-Attn"), State::PostAttn(i)));
                out.push((format!("L{i} Block Out"), State::Resid(i + 1)));
            }
        }
    }
    out.push(("Final Output".to_string(), State::Resid(n)));
    out
}

/// The top 5 of every position of one projected state.
pub type StateTops = std::sync::Arc<Vec<Top>>;

/// The entropy (nats) of every position of one projected state.
pub type StateEntropies = std::sync::Arc<Vec<f64>>;

/// The lens of one run.
pub struct Projection {
    pub rows: Vec<LensRow>,
    /// `[T, V]` the model's own logits (the last row's projection).
    pub logits: Tensor,
    /// Top 5 per position of every state the rows show, for re-runs.
    pub tops: Vec<(State, StateTops)>,
    /// Entropies per position, when asked for, for re-runs.
    pub entropies: Vec<(State, StateEntropies)>,
    /// The baseline's rows, when compared with one.
    pub baseline_rows: Option<Vec<LensRow>>,
    /// `[row][position]` tracked tokens, entropy and diff, when asked for.
    pub extras: Option<Vec<Vec<CellExtras>>>,
    /// Time in the projection (norm + unembedding) and in top-k + decoding.
    pub projection: std::time::Duration,
    pub topk_decode: std::time::Duration,
}

/// Lens results a re-run takes over instead of projecting again: states
/// whose tensors are bit-identical to an earlier run's.
#[derive(Default)]
pub struct Reuse {
    pub tops: Vec<(State, StateTops)>,
    /// Per-cell entropies of states, where the earlier run computed them.
    pub entropies: Vec<(State, StateEntropies)>,
    /// The final logits, when the final state itself is unchanged.
    pub logits: Option<Tensor>,
}

/// Run `f` on the f32 elements of a contiguous CPU tensor without copying
/// them out (a `to_vec1` of the lens logits costs a third of the projection).
fn with_f32_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        return Err(EngineError::Model(
            "the lens runs on CPU tensors only".into(),
        ));
    };
    let data = cpu.as_slice::<f32>()?;
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| EngineError::Model("lens logits are not contiguous".into()))?;
    Ok(f(&data[start..end]))
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
}

impl Extras<'_> {
    fn any(&self) -> bool {
        !self.track.is_empty() || self.entropy || self.baseline.is_some()
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

/// How a cell changed from its baseline.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiffCell {
    /// The baseline's top-1 token and its probability there.
    pub baseline_id: u32,
    pub baseline_prob: f64,
    /// That token's probability here.
    pub prob: f64,
    /// The top-1 token here.
    pub top_id: u32,
    /// `prob - baseline_prob`.
    pub delta_prob: f64,
    /// The baseline top-1's rank here (0 = still top).
    pub rank: u32,
    /// KL(baseline || here), nats.
    pub kl: f64,
}

impl DiffCell {
    /// A cell whose distribution did not change.
    pub fn same(top: &Top) -> Self {
        DiffCell {
            baseline_id: top[0].0,
            baseline_prob: f64::from(top[0].1),
            prob: f64::from(top[0].1),
            top_id: top[0].0,
            delta_prob: 0.0,
            rank: 0,
            kl: 0.0,
        }
    }

    /// Compare logit rows `base` and `here` (same vocabulary).
    pub fn between(base: &[f32], cb: &topk::Cell, here: &[f32], ch: &topk::Cell) -> Self {
        let id = cb.top[0].0;
        let baseline_prob = f64::from(cb.top[0].1);
        let prob = ch.prob_of(here[id as usize]);
        DiffCell {
            baseline_id: id,
            baseline_prob,
            prob,
            top_id: ch.top[0].0,
            delta_prob: prob - baseline_prob,
            rank: topk::rank_of(here, id),
            kl: topk::kl(base, cb, here, ch),
        }
    }
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
    use rayon::prelude::*;
    let n = model.n_layers();
    let specs = rows(lens, n);
    let final_state = State::Resid(n);
    // Distinct states only: `combined` repeats the last block output as
    // "Final Output", which is the model's logits and is projected once.
    let mut states: Vec<State> = Vec::new();
    for (_, s) in &specs {
        if !states.contains(s) {
            states.push(*s);
        }
    }
    let mut tops: Vec<(State, StateTops)> = Vec::with_capacity(states.len());
    let mut base_tops: Vec<(State, StateTops)> = Vec::new();
    let mut cell_extras: Vec<(State, Vec<CellExtras>)> = Vec::new();
    let mut todo: Vec<State> = Vec::new();
    let mut entropies: Vec<(State, StateEntropies)> = Vec::new();
    // Earlier results carry top 5s and entropies only: tracked tokens and
    // baselines are computed afresh for every state.
    // Nor are a tuned lens's (the kept results are the logit lens's).
    let reusable = extras.track.is_empty() && extras.baseline.is_none() && extras.tuned.is_none();
    for s in &states {
        let known = reuse.tops.iter().find(|(k, _)| k == s).filter(|_| reusable);
        let entropy = reuse.entropies.iter().find(|(k, _)| k == s);
        match (known, entropy) {
            (Some((_, t)), e)
                if (*s != final_state || reuse.logits.is_some())
                    && (e.is_some() || !extras.entropy) =>
            {
                tops.push((*s, t.clone()));
                if let Some((_, e)) = e.filter(|_| extras.entropy) {
                    entropies.push((*s, e.clone()));
                    let cells = e
                        .iter()
                        .map(|&h| CellExtras {
                            entropy: Some(h),
                            ..Default::default()
                        })
                        .collect();
                    cell_extras.push((*s, cells));
                }
            }
            _ => todo.push(*s),
        }
    }
    let t = cap.resid[0].dim(0)?;
    let v = model.vocab_size();
    for &id in extras.track {
        if id as usize >= v {
            return Err(EngineError::InvalidRequest(format!(
                "track_tokens: id {id} is outside this model's vocabulary of {v}"
            )));
        }
    }
    let per_state = t * v * 4 * if extras.baseline.is_some() { 2 } else { 1 };
    let chunk = (MAX_CHUNK_BYTES / per_state.max(1)).max(1);
    let mut final_logits = if todo.contains(&final_state) {
        None
    } else {
        reuse.logits.clone()
    };
    let (mut projection, mut topk_decode) = (Duration::ZERO, Duration::ZERO);
    for (done, group) in todo.chunks(chunk).enumerate() {
        if let Some(w) = extras.watch {
            check(w)?;
            w.progress(Stage::Lens, done * chunk, todo.len());
        }
        // The baseline's own states, for the states it does not share.
        let base_states: Vec<State> = match extras.baseline {
            Some((_, r)) => group
                .iter()
                .copied()
                .filter(|s| !s.computed_before(r))
                .collect(),
            None => Vec::new(),
        };
        let mut xs: Vec<(&Capture, State)> = group.iter().map(|s| (cap, *s)).collect();
        if let Some((base, _)) = extras.baseline {
            xs.extend(base_states.iter().map(|s| (base, *s)));
        }
        let xs = xs
            .into_iter()
            .map(|(c, s)| match (extras.tuned, s) {
                (Some(lens), State::Resid(i)) => lens.translate(i, c.state(s)),
                _ => Ok(c.state(s).clone()),
            })
            .collect::<Result<Vec<Tensor>>>()?;
        // One projection for the whole group: [(S*T), D] x [D, V].
        let started = Instant::now();
        let x = Tensor::cat(&xs, 0)?;
        let logits = model.unembed(&x)?.contiguous()?;
        projection += started.elapsed();
        let started = Instant::now();
        // The baseline's cells first: the diff of each cell reads them.
        let base_cells: Vec<topk::Cell> = with_f32_slice(&logits, |flat| {
            (0..base_states.len() * t)
                .into_par_iter()
                .map(|i| topk::cell(&flat[(group.len() * t + i) * v..][..v]))
                .collect()
        })?;
        let (cells, more): (Vec<Top>, Vec<CellExtras>) = with_f32_slice(&logits, |flat| {
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
                                let base = row(group.len() * t + b);
                                DiffCell::between(base, &base_cells[b], here, &c)
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
        if let Some(i) = cells.iter().position(|t| !finite(t)) {
            return Err(not_finite(&specs, group[i / t], i % t));
        }
        if let Some(i) = base_cells.iter().position(|c| !finite(&c.top)) {
            return Err(not_finite(&specs, base_states[i / t], i % t));
        }
        for (k, s) in base_states.iter().enumerate() {
            let cells = base_cells[k * t..(k + 1) * t]
                .iter()
                .map(|c| c.top)
                .collect();
            base_tops.push((*s, Arc::new(cells)));
        }
        for (gi, s) in group.iter().enumerate() {
            tops.push((*s, Arc::new(cells[gi * t..(gi + 1) * t].to_vec())));
            if extras.any() {
                let cells = more[gi * t..(gi + 1) * t].to_vec();
                if extras.entropy {
                    let e = cells.iter().map(|c| c.entropy.unwrap_or(0.0)).collect();
                    entropies.push((*s, Arc::new(e)));
                }
                cell_extras.push((*s, cells));
            }
            if *s == final_state {
                // Its own storage, so the whole chunk's logits do not live
                // on with the run (`narrow` and `copy` would keep them).
                let rows = with_f32_slice(&logits, |flat| {
                    Tensor::from_slice(&flat[gi * t * v..(gi + 1) * t * v], (t, v), x.device())
                })??;
                final_logits = Some(rows);
            }
        }
        topk_decode += started.elapsed();
    }
    let final_logits = match final_logits {
        Some(l) => l,
        None => model.unembed(cap.state(final_state))?,
    };
    let started = Instant::now();
    let find = |list: &[(State, StateTops)], s: State| {
        list.iter().find(|(k, _)| *k == s).map(|(_, t)| t.clone())
    };
    let names: Vec<String> = specs.iter().map(|(n, _)| n.clone()).collect();
    let to_rows = |get: &dyn Fn(State) -> StateTops| -> Result<Vec<LensRow>> {
        let per_row: Vec<StateTops> = specs.iter().map(|(_, s)| get(*s)).collect();
        let per_row: Vec<&[Top]> = per_row.iter().map(|t| t.as_slice()).collect();
        rows_from_tops(tok, &names, &per_row)
    };
    let out = to_rows(&|s| find(&tops, s).expect("state projected"))?;
    let baseline_rows = match extras.baseline {
        Some((_, r)) => Some(to_rows(&|s| {
            if s.computed_before(r) {
                find(&tops, s).expect("state projected")
            } else {
                find(&base_tops, s).expect("baseline state projected")
            }
        })?),
        None => None,
    };
    let extras_rows = extras.any().then(|| {
        specs
            .iter()
            .map(|(_, s)| {
                cell_extras
                    .iter()
                    .find(|(k, _)| k == s)
                    .map(|(_, e)| e.clone())
                    .expect("extras computed")
            })
            .collect()
    });
    topk_decode += started.elapsed();
    Ok(Projection {
        rows: out,
        logits: final_logits,
        tops,
        entropies,
        baseline_rows,
        extras: extras_rows,
        projection,
        topk_decode,
    })
}

/// Whether a cell's distribution exists: logits that overflowed to
/// infinity or NaN leave no top token (id `u32::MAX`) or NaN probabilities.
fn finite(top: &Top) -> bool {
    top[0].0 != u32::MAX && top.iter().all(|(_, p)| p.is_finite())
}

fn not_finite(specs: &[(String, State)], s: State, position: usize) -> EngineError {
    let name = specs
        .iter()
        .find(|(_, k)| *k == s)
        .map_or("a lens row", |(n, _)| n.as_str());
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
    use rayon::prelude::*;
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
        let cells: Vec<(Top, Top, DiffCell)> = with_f32_slice(&la, |fa| {
            with_f32_slice(&lb, |fb| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_names_match_the_original() {
        let names = |l| rows(l, 3).into_iter().map(|r| r.0).collect::<Vec<_>>();
        assert_eq!(
            names(LensType::BlockOutput),
            ["Embeddings", "Layer 0", "Layer 1", "Final Output"]
        );
        assert_eq!(
            names(LensType::PostAttention),
            [
                "Embeddings",
                "L0 Post-Attn",
                "L1 Post-Attn",
                "L2 Post-Attn",
                "Final Output"
            ]
        );
        assert_eq!(
            names(LensType::Combined),
            [
                "Embeddings",
                "L0 Post-Attn",
                "L0 Block Out",
                "L1 Post-Attn",
                "L1 Block Out",
                "L2 Post-Attn",
                "L2 Block Out",
                "Final Output"
            ]
        );
    }
}
