//! The logit lens: every chosen residual state through the final norm and
//! the unembedding, softmax over the whole vocabulary, top 5 per position.

use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::Tensor;

use crate::api::{LensRow, LensType, Prediction};
use crate::error::{EngineError, Result};
use crate::model::Capture;
use crate::tokenizer::TokenizerBundle;

pub use crate::topk::{top_k_softmax, Top, TOP_K};

/// Bound on the logits materialised at once (rows x positions x vocab f32).
const MAX_CHUNK_BYTES: usize = 256 << 20;

/// What the lens needs from a model.
pub trait LensModel {
    fn n_layers(&self) -> usize;
    fn vocab_size(&self) -> usize;
    /// The model's own head on `[N, D]` residual states: final norm, then
    /// the unembedding (with bias or logit soft-cap where the model has
    /// them). Returns f32 logits `[N, V]`.
    fn unembed(&self, x: &Tensor) -> Result<Tensor>;
}

/// Which captured state a lens row shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// `Capture::resid[i]`: 0 = embeddings, i = output of block i-1.
    Resid(usize),
    /// `Capture::post_attn[i]`.
    PostAttn(usize),
}

/// The rows of the original custom backend, with their names (UPSTREAM.md §3.1).
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

impl Capture {
    pub fn state(&self, s: State) -> &Tensor {
        match s {
            State::Resid(i) => &self.resid[i],
            State::PostAttn(i) => &self.post_attn[i],
        }
    }
}

/// The top 5 of every position of one projected state.
pub type StateTops = std::sync::Arc<Vec<Top>>;

/// The lens of one run.
pub struct Lens {
    pub rows: Vec<LensRow>,
    /// `[T, V]` the model's own logits (the last row's projection).
    pub logits: Tensor,
    /// Top 5 per position of every state the rows show, for re-runs.
    pub tops: Vec<(State, StateTops)>,
    /// Time in the projection (norm + unembedding) and in top-k + decoding.
    pub projection: std::time::Duration,
    pub topk_decode: std::time::Duration,
}

/// Lens results a re-run takes over instead of projecting again: states
/// whose tensors are bit-identical to an earlier run's.
#[derive(Default)]
pub struct Reuse {
    pub tops: Vec<(State, StateTops)>,
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

/// Compute the lens rows for `lens` from a capture, projecting only the
/// states `reuse` does not already have.
pub fn compute(
    model: &dyn LensModel,
    tok: &TokenizerBundle,
    cap: &Capture,
    lens: LensType,
    reuse: &Reuse,
) -> Result<Lens> {
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
    let mut todo: Vec<State> = Vec::new();
    for s in &states {
        let known = reuse.tops.iter().find(|(k, _)| k == s);
        match known {
            Some((_, t)) if *s != final_state || reuse.logits.is_some() => {
                tops.push((*s, t.clone()))
            }
            _ => todo.push(*s),
        }
    }
    let t = cap.resid[0].dim(0)?;
    let v = model.vocab_size();
    let per_state = t * v * 4;
    let chunk = (MAX_CHUNK_BYTES / per_state.max(1)).max(1);
    let mut final_logits = if todo.contains(&final_state) {
        None
    } else {
        reuse.logits.clone()
    };
    let (mut projection, mut topk_decode) = (Duration::ZERO, Duration::ZERO);
    for group in todo.chunks(chunk) {
        let xs: Vec<&Tensor> = group.iter().map(|s| cap.state(*s)).collect();
        // One projection for the whole group: [(S*T), D] x [D, V].
        let started = Instant::now();
        let x = Tensor::cat(&xs, 0)?;
        let logits = model.unembed(&x)?.contiguous()?;
        projection += started.elapsed();
        let started = Instant::now();
        let cells: Vec<Top> = with_f32_slice(&logits, |flat| {
            flat.par_chunks(v).map(top_k_softmax).collect()
        })?;
        for (gi, s) in group.iter().enumerate() {
            tops.push((*s, Arc::new(cells[gi * t..(gi + 1) * t].to_vec())));
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
    let mut out = Vec::with_capacity(specs.len());
    for (i, (name, s)) in specs.into_iter().enumerate() {
        let cells = &tops
            .iter()
            .find(|(k, _)| *k == s)
            .expect("state projected")
            .1;
        let predictions = cells
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
            .collect::<Result<Vec<_>>>()?;
        out.push(LensRow {
            layer_index: i,
            layer_name: name,
            predictions,
        });
    }
    topk_decode += started.elapsed();
    Ok(Lens {
        rows: out,
        logits: final_logits,
        tops,
        projection,
        topk_decode,
    })
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
