//! The logit lens: every chosen residual state through the final norm and
//! the unembedding, softmax over the whole vocabulary, top 5 per position.

use candle_core::Tensor;

use crate::api::{LensRow, LensType, Prediction};
use crate::error::Result;
use crate::model::Capture;
use crate::tokenizer::TokenizerBundle;

pub const TOP_K: usize = 5;

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

/// The lens of one run.
pub struct Lens {
    pub rows: Vec<LensRow>,
    /// `[T, V]` the model's own logits (the last row's projection).
    pub logits: Tensor,
    /// Time in the projection (norm + unembedding) and in top-k + decoding.
    pub projection: std::time::Duration,
    pub topk_decode: std::time::Duration,
}

/// Top 5 of one distribution, without sorting the vocabulary.
/// Returns (id, prob) most probable first; ties go to the lower id.
pub fn top_k_softmax(logits: &[f32]) -> [(u32, f32); TOP_K] {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // f64 accumulation: an f32 running sum over ~50k terms drifts by 1e-4.
    let sum: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
    let mut best: [(u32, f32); TOP_K] = [(u32::MAX, f32::NEG_INFINITY); TOP_K];
    for (i, &l) in logits.iter().enumerate() {
        if l > best[TOP_K - 1].1 {
            let mut j = TOP_K - 1;
            while j > 0 && l > best[j - 1].1 {
                best[j] = best[j - 1];
                j -= 1;
            }
            best[j] = (i as u32, l);
        }
    }
    best.map(|(id, l)| (id, (f64::from((l - max).exp()) / sum) as f32))
}

/// Compute the lens rows for `lens` from a capture.
pub fn compute(
    model: &dyn LensModel,
    tok: &TokenizerBundle,
    cap: &Capture,
    lens: LensType,
) -> Result<Lens> {
    let n = model.n_layers();
    let specs = rows(lens, n);
    // Distinct states only: `combined` repeats the last block output as
    // "Final Output", which is the model's logits and is projected once.
    let mut states: Vec<State> = Vec::new();
    for (_, s) in &specs {
        if !states.contains(s) {
            states.push(*s);
        }
    }
    let t = cap.resid[0].dim(0)?;
    let v = model.vocab_size();
    let per_state = t * v * 4;
    let chunk = (MAX_CHUNK_BYTES / per_state.max(1)).max(1);
    let mut tops: Vec<Vec<[(u32, f32); TOP_K]>> = Vec::with_capacity(states.len());
    let mut final_logits = None;
    let final_state = State::Resid(n);
    let (mut projection, mut topk_decode) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    for group in states.chunks(chunk) {
        let xs: Vec<&Tensor> = group.iter().map(|s| cap.state(*s)).collect();
        // One projection for the whole group: [(S*T), D] x [D, V].
        let started = std::time::Instant::now();
        let x = Tensor::cat(&xs, 0)?;
        let logits = model.unembed(&x)?;
        let flat = logits.flatten_all()?.to_vec1::<f32>()?;
        projection += started.elapsed();
        let started = std::time::Instant::now();
        for (gi, s) in group.iter().enumerate() {
            let rows: Vec<_> = (0..t)
                .map(|p| {
                    let off = (gi * t + p) * v;
                    top_k_softmax(&flat[off..off + v])
                })
                .collect();
            tops.push(rows);
            if *s == final_state {
                final_logits = Some(logits.narrow(0, gi * t, t)?);
            }
        }
        topk_decode += started.elapsed();
    }
    let final_logits = match final_logits {
        Some(l) => l,
        None => model.unembed(cap.state(final_state))?,
    };
    let started = std::time::Instant::now();
    let mut out = Vec::with_capacity(specs.len());
    for (i, (name, s)) in specs.into_iter().enumerate() {
        let k = states.iter().position(|x| *x == s).expect("state listed");
        let predictions = tops[k]
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

    #[test]
    fn top_k_is_sorted_and_normalised() {
        let logits = [0.0f32, 3.0, 1.0, 3.0, -2.0, 2.0, 0.5];
        let top = top_k_softmax(&logits);
        assert_eq!(top.map(|t| t.0), [1, 3, 5, 2, 6]);
        let z: f32 = logits.iter().map(|l| l.exp()).sum();
        assert!((top[0].1 - 3f32.exp() / z).abs() < 1e-7);
        assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
    }
}
