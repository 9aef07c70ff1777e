//! The lens: every chosen residual state read through the model's own head
//! (the logit lens), or translated first (the tuned lens attached to the
//! model) or transported (the Jacobian lens attached to it), softmax over
//! the whole vocabulary, top 5 per position; and what a request asks
//! beyond it (tracked tokens, entropy, the diff against a baseline run).
//! `project.rs` computes a run's lens in named steps; `tuned/` reads,
//! writes and applies tuned lenses, `jacobian/` Jacobian lenses.

pub mod jacobian;
pub mod project;
pub mod topk;
pub mod tuned;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::capture::State;

pub use jacobian::JacobianLens;
pub use project::{compute, diff_states, rows_from_tops, CellExtras, Extras, Projection, Reuse};
pub use topk::{top_k_softmax, Top, TOP_K};
pub use tuned::{TunedLens, TunedLensConfig};

/// Which lens draws the rows: the logit lens, or the tuned or Jacobian
/// lens attached to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Lens {
    #[default]
    Logit,
    Tuned,
    /// Block outputs transported by the attached Jacobian lens's matrices.
    Jacobian,
}

impl Lens {
    pub fn as_str(self) -> &'static str {
        match self {
            Lens::Logit => "logit",
            Lens::Tuned => "tuned",
            Lens::Jacobian => "jacobian",
        }
    }
}

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

/// Something per state of a run, found by state (a run projects each state
/// once, whatever rows show it).
pub type StateMap<T> = BTreeMap<State, T>;

/// The top 5 of every position of one projected state.
pub type StateTops = std::sync::Arc<Vec<Top>>;

/// The entropy (nats) of every position of one projected state.
pub type StateEntropies = std::sync::Arc<Vec<f64>>;

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
