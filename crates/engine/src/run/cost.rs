//! What a run will hold in memory at its peak, estimated from its spec
//! before it runs, so a request that would not fit is refused with the
//! numbers instead of taking the machine down.

use crate::lens;
use crate::model::Config;

use super::RunSpec;

/// Bytes of one lens cell's top 5 as the answer holds them (five token
/// strings and numbers), and of one cell of the extras.
const CELL_BYTES: u64 = 320;
const EXTRA_CELL_BYTES: u64 = 160;

/// A run's peak memory by part, in bytes (the model's weights not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// The captured states of the run and of its baseline (`compare`).
    pub capture: u64,
    /// The attention patterns kept for the answer (every layer and head).
    pub patterns: u64,
    /// The largest layer's working tensors (scores, softmax, MLP).
    pub layer: u64,
    /// One chunk of lens logits and the final logits.
    pub lens: u64,
    /// The attention while it is written out: one layer's numbers.
    pub attention: u64,
    /// The answer besides attention (lens rows, baseline, extras).
    pub answer: u64,
}

impl Cost {
    pub fn total(&self) -> u64 {
        self.capture + self.patterns + self.layer + self.lens + self.attention + self.answer
    }

    /// "capture 4.2 GiB, layer 700 MiB, ..." for messages.
    pub fn describe(&self) -> String {
        format!(
            "captured states {}, attention patterns {}, one layer's work {}, lens logits {}, attention output {}, answer {}",
            mib(self.capture),
            mib(self.patterns),
            mib(self.layer),
            mib(self.lens),
            mib(self.attention),
            mib(self.answer)
        )
    }
}

/// Bytes as MiB, for messages.
pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1 << 20) as f64)
}

impl RunSpec {
    /// The memory this run will need with `cfg`'s model computing in
    /// `dtype_bytes`-byte floats. An estimate from the shapes, erring high.
    pub fn cost(&self, cfg: &Config, dtype_bytes: usize) -> Cost {
        let (b, t) = (dtype_bytes as u64, self.ids.len() as u64);
        let (n, d, h) = (cfg.n_layers as u64, cfg.d_model as u64, cfg.n_heads as u64);
        let v = cfg.vocab_size as u64;
        let passes = 1 + u64::from(self.compare);
        let states = capture_bytes(cfg, t, b);
        let patterns = if self.attention.is_some() {
            n * h * t * t * b
        } else {
            0
        };
        let layer = layer_bytes(cfg, t, b);
        let rows = lens::rows(self.lens_type, cfg.n_layers).len() as u64;
        // As lens::compute chunks its states: as many as fit the chunk bound.
        let per_state = t * v * 4 * passes;
        let states_in_chunk = (lens::MAX_CHUNK_BYTES as u64 / per_state.max(1)).clamp(1, rows);
        let lens = states_in_chunk * (per_state + t * d * 4) + t * v * 4;
        let attention = match &self.attention {
            None => 0,
            // One layer's patterns as f32, and their f16 bytes when packed.
            Some(spec) => {
                h * t * t * (4 + 2 * u64::from(spec.format == crate::attention::Format::F16))
            }
        };
        let extras = u64::from(!self.track.is_empty()) * self.track.len() as u64
            + u64::from(self.entropy)
            + 2 * u64::from(self.compare)
            + u64::from(self.analysis);
        let answer = rows * t * (CELL_BYTES * passes + EXTRA_CELL_BYTES * extras);
        Cost {
            capture: passes * states,
            patterns: passes * patterns,
            layer,
            lens,
            attention,
            answer,
        }
    }
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
