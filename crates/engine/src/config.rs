//! Model configuration, resolved from a Hugging Face `config.json` or from
//! GGUF metadata into one struct with no optional fields left to guess.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{EngineError, Result};

/// The architectures the custom backend runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Llama,
    Qwen3,
}

impl Arch {
    pub const SUPPORTED: &'static str =
        "llama (LlamaForCausalLM, incl. llama3 rope scaling) and qwen3 (Qwen3ForCausalLM)";

    /// The class name the original tool reported in `/load_model`.
    pub fn model_class(self) -> &'static str {
        match self {
            Arch::Llama => "LlamaModel",
            Arch::Qwen3 => "Qwen3Model",
        }
    }
}

/// Llama 3 "NTK-by-parts" RoPE scaling (`rope_scaling.rope_type == "llama3"`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Llama3RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: f64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3RopeScaling>,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    pub attention_bias: bool,
    pub mlp_bias: bool,
}

#[derive(Deserialize)]
struct HfConfig {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    rope_theta: Option<f64>,
    rope_scaling: Option<Value>,
    /// transformers >= 5 spelling: `rope_parameters: {rope_type, rope_theta, ...}`.
    rope_parameters: Option<Value>,
    #[serde(default = "default_max_pos")]
    max_position_embeddings: usize,
    tie_word_embeddings: Option<bool>,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    hidden_act: Option<String>,
    #[serde(default)]
    use_sliding_window: bool,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_max_pos() -> usize {
    2048
}

/// Decide the architecture from `model_type` and `architectures`, never from
/// the model's name (the original guessed from the name).
fn arch_of(model_type: Option<&str>, architectures: &[String]) -> Result<Arch> {
    let by_type = match model_type {
        Some("llama") => Some(Arch::Llama),
        Some("qwen3") => Some(Arch::Qwen3),
        _ => None,
    };
    let by_class = architectures.iter().find_map(|a| match a.as_str() {
        "LlamaForCausalLM" => Some(Arch::Llama),
        "Qwen3ForCausalLM" => Some(Arch::Qwen3),
        _ => None,
    });
    by_type.or(by_class).ok_or_else(|| {
        EngineError::Unsupported(format!(
            "unsupported architecture (model_type {:?}, architectures {:?}); the custom backend supports {}",
            model_type.unwrap_or("<missing>"),
            architectures,
            Arch::SUPPORTED
        ))
    })
}

pub(crate) fn parse_rope_scaling(v: &Value) -> Result<Option<Llama3RopeScaling>> {
    let obj = match v.as_object() {
        Some(o) => o,
        None => return Ok(None),
    };
    let kind = obj
        .get("rope_type")
        .or_else(|| obj.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let num = |k: &str| -> Result<f64> {
        obj.get(k).and_then(Value::as_f64).ok_or_else(|| {
            EngineError::Model(format!("rope_scaling of type {kind} lacks a numeric `{k}`"))
        })
    };
    match kind {
        "default" => Ok(None),
        "llama3" => Ok(Some(Llama3RopeScaling {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")?,
        })),
        other => Err(EngineError::Unsupported(format!(
            "rope_scaling type {other:?} is not supported (supported: default, llama3)"
        ))),
    }
}

impl ModelConfig {
    /// Resolve a Hugging Face `config.json`.
    pub fn from_hf_json(text: &str) -> Result<Self> {
        let raw: Value = serde_json::from_str(text)
            .map_err(|e| EngineError::Model(format!("config.json is not valid JSON: {e}")))?;
        let model_type = raw
            .get("model_type")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let archs: Vec<String> = raw
            .get("architectures")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        // Check the architecture before the fields, so an unsupported model
        // gets the "supported are..." message rather than a missing-field one.
        let arch = arch_of(model_type.as_deref(), &archs)?;
        let c: HfConfig = serde_json::from_value(raw)
            .map_err(|e| EngineError::Model(format!("config.json: {e}")))?;
        if let Some(act) = &c.hidden_act {
            if act != "silu" && act != "swish" {
                return Err(EngineError::Unsupported(format!(
                    "hidden_act {act:?} is not supported by the custom backend (only silu)"
                )));
            }
        }
        if c.use_sliding_window {
            return Err(EngineError::Unsupported(
                "sliding-window attention (use_sliding_window=true) is not supported".into(),
            ));
        }
        let params = c.rope_parameters.as_ref();
        let rope_theta = c
            .rope_theta
            .or_else(|| {
                params
                    .and_then(|p| p.get("rope_theta"))
                    .and_then(Value::as_f64)
            })
            .unwrap_or(10000.0);
        let rope_scaling = match (&c.rope_scaling, params) {
            (Some(v), _) => parse_rope_scaling(v)?,
            (None, Some(p)) => parse_rope_scaling(p)?,
            (None, None) => None,
        };
        if c.num_attention_heads == 0 {
            return Err(EngineError::Model("num_attention_heads is 0".into()));
        }
        let head_dim = match c.head_dim {
            Some(h) => h,
            None => {
                if c.hidden_size % c.num_attention_heads != 0 {
                    return Err(EngineError::Model(format!(
                        "hidden_size {} is not divisible by num_attention_heads {} and no head_dim is given",
                        c.hidden_size, c.num_attention_heads
                    )));
                }
                c.hidden_size / c.num_attention_heads
            }
        };
        let cfg = ModelConfig {
            arch,
            vocab_size: c.vocab_size,
            hidden_size: c.hidden_size,
            intermediate_size: c.intermediate_size,
            num_hidden_layers: c.num_hidden_layers,
            num_attention_heads: c.num_attention_heads,
            num_key_value_heads: c.num_key_value_heads.unwrap_or(c.num_attention_heads),
            head_dim,
            rms_norm_eps: c.rms_norm_eps,
            rope_theta,
            rope_scaling,
            max_position_embeddings: c.max_position_embeddings,
            // HF's default for both classes is false for Llama and true for
            // small Qwen3; the config always spells it in published checkpoints.
            tie_word_embeddings: c.tie_word_embeddings.unwrap_or(arch == Arch::Qwen3),
            attention_bias: c.attention_bias,
            mlp_bias: c.mlp_bias,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        if self.num_key_value_heads == 0 || self.num_attention_heads % self.num_key_value_heads != 0
        {
            return Err(EngineError::Model(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads, self.num_key_value_heads
            )));
        }
        if self.head_dim % 2 != 0 {
            return Err(EngineError::Model(format!(
                "head_dim {} is odd",
                self.head_dim
            )));
        }
        Ok(())
    }

    /// A one-line description in the spirit of the original's dataclass repr.
    pub fn repr(&self) -> String {
        let name = match self.arch {
            Arch::Llama => "LlamaConfig",
            Arch::Qwen3 => "Qwen3Config",
        };
        format!(
            "{name}(vocab_size={}, hidden_size={}, intermediate_size={}, num_hidden_layers={}, num_attention_heads={}, num_key_value_heads={}, head_dim={}, hidden_act='silu', max_position_embeddings={}, rms_norm_eps={:e}, rope_theta={:?}, rope_scaling={}, tie_word_embeddings={}, attention_bias={})",
            self.vocab_size,
            self.hidden_size,
            self.intermediate_size,
            self.num_hidden_layers,
            self.num_attention_heads,
            self.num_key_value_heads,
            self.head_dim,
            self.max_position_embeddings,
            self.rms_norm_eps,
            self.rope_theta,
            match &self.rope_scaling {
                Some(s) => format!(
                    "llama3(factor={}, low_freq_factor={}, high_freq_factor={}, original_max_position_embeddings={})",
                    s.factor, s.low_freq_factor, s.high_freq_factor, s.original_max_position_embeddings
                ),
                None => "None".into(),
            },
            if self.tie_word_embeddings { "True" } else { "False" },
            if self.attention_bias { "True" } else { "False" },
        )
    }

    /// Parameters of the decoder (embeddings counted once when tied).
    pub fn param_count(&self) -> usize {
        let (d, i, hd) = (self.hidden_size, self.intermediate_size, self.head_dim);
        let attn = d * hd * (2 * self.num_attention_heads + 2 * self.num_key_value_heads);
        let layer = attn + 3 * d * i + 2 * d;
        let embed = self.vocab_size * d * if self.tie_word_embeddings { 1 } else { 2 };
        embed + self.num_hidden_layers * layer + d
    }

    /// RoPE inverse frequencies, with llama3 scaling applied when configured.
    pub fn inv_freq(&self) -> Vec<f32> {
        rope_inv_freq(self.head_dim, self.rope_theta, self.rope_scaling.as_ref())
    }
}

/// RoPE inverse frequencies over `dim` rotated dimensions, llama3 scaling
/// applied when given. Computed as HF does (f32 powers), so positions agree
/// to the last bits.
pub fn rope_inv_freq(dim: usize, theta: f64, scaling: Option<&Llama3RopeScaling>) -> Vec<f32> {
    let base = theta as f32;
    let mut inv: Vec<f32> = (0..dim / 2)
        .map(|j| 1.0f32 / base.powf((2 * j) as f32 / dim as f32))
        .collect();
    if let Some(s) = scaling {
        let old = s.original_max_position_embeddings as f32;
        let low_wavelen = old / s.low_freq_factor as f32;
        let high_wavelen = old / s.high_freq_factor as f32;
        let factor = s.factor as f32;
        for f in inv.iter_mut() {
            let wavelen = 2.0 * std::f32::consts::PI / *f;
            let scaled = if wavelen > low_wavelen {
                *f / factor
            } else {
                *f
            };
            // Finite wavelengths only, so this is HF's `~(w < high) & ~(w > low)`.
            let is_medium = wavelen >= high_wavelen && wavelen <= low_wavelen;
            *f = if is_medium {
                let smooth = (old / wavelen - s.low_freq_factor as f32)
                    / (s.high_freq_factor as f32 - s.low_freq_factor as f32);
                (1.0 - smooth) * scaled / factor + smooth * scaled
            } else {
                scaled
            };
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> String {
        format!(
            r#"{{"vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":2,
            "num_attention_heads":2,"num_key_value_heads":1{extra}}}"#
        )
    }

    #[test]
    fn dispatches_on_model_type_not_name() {
        let c = ModelConfig::from_hf_json(&cfg(r#","model_type":"qwen3","head_dim":6"#)).unwrap();
        assert_eq!(c.arch, Arch::Qwen3);
        assert_eq!(c.head_dim, 6);
        let c =
            ModelConfig::from_hf_json(&cfg(r#","architectures":["LlamaForCausalLM"]"#)).unwrap();
        assert_eq!(c.arch, Arch::Llama);
        assert_eq!(c.head_dim, 4);
    }

    #[test]
    fn unsupported_architecture_lists_supported_ones() {
        let e = ModelConfig::from_hf_json(&cfg(r#","model_type":"gpt2""#)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("gpt2") && msg.contains("llama") && msg.contains("qwen3"),
            "{msg}"
        );
        assert!(matches!(e, EngineError::Unsupported(_)));
    }

    #[test]
    fn unknown_rope_scaling_is_refused() {
        let e = ModelConfig::from_hf_json(&cfg(
            r#","model_type":"llama","rope_scaling":{"rope_type":"yarn","factor":4.0}"#,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("yarn"));
    }
}
