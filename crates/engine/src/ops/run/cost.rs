//! What a run will hold in memory at its peak, estimated from its spec
//! before it runs, so a request that would not fit is refused with the
//! numbers instead of taking the machine down.

use crate::lens;
use crate::load::LoadedModel;
use crate::model::Config;
use crate::ops::Cost;

use super::RunSpec;

/// Bytes of one lens cell's top 5 as the answer holds them (five token
/// strings and numbers), and of one cell of the extras.
const CELL_BYTES: u64 = 320;
const EXTRA_CELL_BYTES: u64 = 160;

/// Bytes as MiB, for messages.
pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1 << 20) as f64)
}

/// The bytes of the floats `model` computes in.
pub(crate) fn float_bytes(model: &LoadedModel) -> u64 {
    model.model.dtype().size_in_bytes() as u64
}

impl RunSpec {
    /// The memory this run will need: the captured states of the run and
    /// of its baseline, the attention patterns kept for the answer, the
    /// largest layer's working tensors, a chunk of lens logits and the
    /// final logits, one layer's attention as it is written, the answer.
    pub(crate) fn estimate(&self, model: &LoadedModel) -> Cost {
        let cfg = model.config();
        let (b, t) = (float_bytes(model), self.ids.len() as u64);
        let (n, d, h) = (cfg.n_layers as u64, cfg.d_model as u64, cfg.n_heads as u64);
        let v = cfg.vocab_size as u64;
        let passes = 1 + u64::from(self.compare);
        let patterns = match self.attention {
            Some(_) => n * h * t * t * b,
            None => 0,
        };
        let rows = lens::rows(self.lens_type, cfg.n_layers).len() as u64;
        // As the lens projects its states: as many as fit the chunk bound.
        let per_state = t * v * 4 * passes;
        let states_in_chunk =
            (lens::project::MAX_CHUNK_BYTES as u64 / per_state.max(1)).clamp(1, rows);
        let lens = states_in_chunk * (per_state + t * d * 4) + t * v * 4;
        let attention = match &self.attention {
            None => 0,
            // One layer's patterns as f32, and their f16 bytes when packed.
            Some(spec) => {
                h * t * t * (4 + 2 * u64::from(spec.format == crate::attention::Format::F16))
            }
        };
        let extras = self.track.len() as u64
            + u64::from(self.entropy)
            + 2 * u64::from(self.compare)
            + u64::from(self.analysis);
        let answer = rows * t * (CELL_BYTES * passes + EXTRA_CELL_BYTES * extras);
        let mut fixes = Vec::new();
        if self.attention.is_some() {
            fixes.push(format!(
                "leave out return_attention (this prompt's attention, every layer and head, is {} on its own)",
                mib(passes * patterns)
            ));
        }
        if self.compare {
            fixes.push("leave out compare (it runs the text twice)".into());
        }
        let (sae_bytes, sae_answer) = self.sae_bytes(t);
        if sae_answer > 0 {
            fixes.push(format!(
                "a smaller sae_top_k (the SAE features listed are {} of the answer)",
                mib(sae_answer)
            ));
        }
        fixes.push(format!("a shorter text than its {t} tokens"));
        Cost {
            memory: vec![
                ("captured states", passes * capture_bytes(cfg, t, b)),
                ("attention patterns", passes * patterns),
                ("one layer's work", layer_bytes(cfg, t, b)),
                ("lens logits", lens),
                ("attention output", attention),
                ("answer", answer),
                ("SAE features", sae_bytes),
            ],
            tokens: self.ids.len(),
            tokens_said: format!("the prompt is {t} tokens long"),
            counts: Vec::new(),
            fixes,
        }
    }
}

impl RunSpec {
    /// What reading and applying SAEs at `t` positions holds: the largest
    /// SAE's pre-activations as they are encoded (in chunks of at most
    /// `MAX_PRE_BYTES`), and the features the answer lists (`sae_top_k`
    /// of each position, or every active one, up to `k` of a top-k SAE and
    /// `d_sae` of another, with `sae_top_k: 0`). Returns (all of it, the
    /// answer's part).
    fn sae_bytes(&self, t: u64) -> (u64, u64) {
        let from_ops = self
            .plan
            .stream
            .values()
            .flatten()
            .filter_map(|op| match &op.kind {
                crate::hooks::StreamOpKind::Sae(op) => Some(op.sae.d_sae()),
                _ => None,
            });
        let read = self.sae.iter().flat_map(|r| r.saes.iter());
        let widest = from_ops
            .chain(read.clone().map(|s| s.d_sae()))
            .max()
            .unwrap_or(0) as u64;
        let pre = (t * widest * 4).min(crate::sae::MAX_PRE_BYTES as u64);
        let answer: u64 = self.sae.as_ref().map_or(0, |r| {
            read.map(|s| {
                let listed = match (r.top_k, s.settings.architecture) {
                    (0, crate::sae::Architecture::TopK { k, .. }) => k,
                    (0, _) => s.d_sae(),
                    (k, _) => k.min(s.d_sae()),
                };
                t * listed as u64 * FEATURE_BYTES
            })
            .sum()
        });
        (pre + answer, answer)
    }
}

/// Bytes of one listed SAE feature as the answer holds it (`{"id", "act"}`).
const FEATURE_BYTES: u64 = 32;

/// What one sequence of `t` ids adds to a batch of runs: its captured
/// states and one layer's work.
pub(crate) fn sequence_bytes(model: &LoadedModel, t: usize) -> u64 {
    let (cfg, b) = (model.config(), float_bytes(model));
    capture_bytes(cfg, t as u64, b) + layer_bytes(cfg, t as u64, b)
}

/// A capture of `t` positions: resid (n+1), post-attention, attention and
/// MLP outputs (n each), in `b`-byte floats.
pub(crate) fn capture_bytes(cfg: &Config, t: u64, b: u64) -> u64 {
    (4 * cfg.n_layers as u64 + 1) * t * cfg.d_model as u64 * b
}

/// One layer's working tensors at `t` positions: q, k, v (KV heads
/// repeated) and their rotated copies; raw scores, masked scores, the
/// pattern, and with blocking the unblocked pattern and the difference; the
/// mask; gate, up, activation and product.
pub(crate) fn layer_bytes(cfg: &Config, t: u64, b: u64) -> u64 {
    let (h, hd, f) = (cfg.n_heads as u64, cfg.head_dim as u64, cfg.d_mlp as u64);
    6 * t * h * hd * b + 5 * h * t * t * b + t * t * (4 + b) + 4 * t * f * b
}
