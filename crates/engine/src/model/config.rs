//! A model's configuration, resolved from a Hugging Face `config.json` (or
//! GGUF metadata named the same way) into the architecture axes the forward
//! pass branches on, with nothing left to guess at forward time. Which
//! defaults each family has is in `families.rs`.

use candle_core::DType;
use serde_json::{Map, Value};

use crate::error::{EngineError, Result};
use crate::nn::{rope, Activation, Llama3RopeScaling, NormKind};
use crate::precision::ComputeDtype;

/// The model families, named by their `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
    Gemma,
    Gemma2,
    Phi3,
    Phi,
    Gpt2,
    GptNeox,
}

impl Family {
    pub const ALL: [Family; 10] = [
        Family::Llama,
        Family::Mistral,
        Family::Qwen2,
        Family::Qwen3,
        Family::Gemma,
        Family::Gemma2,
        Family::Phi3,
        Family::Phi,
        Family::Gpt2,
        Family::GptNeox,
    ];

    /// The `model_type` of its config.json.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Mistral => "mistral",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
            Family::Gemma => "gemma",
            Family::Gemma2 => "gemma2",
            Family::Phi3 => "phi3",
            Family::Phi => "phi",
            Family::Gpt2 => "gpt2",
            Family::GptNeox => "gpt_neox",
        }
    }

    /// The transformers class of a checkpoint (`architectures[0]`).
    pub fn class_name(self) -> &'static str {
        match self {
            Family::Llama => "LlamaForCausalLM",
            Family::Mistral => "MistralForCausalLM",
            Family::Qwen2 => "Qwen2ForCausalLM",
            Family::Qwen3 => "Qwen3ForCausalLM",
            Family::Gemma => "GemmaForCausalLM",
            Family::Gemma2 => "Gemma2ForCausalLM",
            Family::Phi3 => "Phi3ForCausalLM",
            Family::Phi => "PhiForCausalLM",
            Family::Gpt2 => "GPT2LMHeadModel",
            Family::GptNeox => "GPTNeoXForCausalLM",
        }
    }

    pub fn from_model_type(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    pub fn from_class(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.class_name() == s)
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a block combines attention and MLP with the residual stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Residual {
    /// `x += attn(ln1(x)); x += mlp(ln2(x))`.
    Sequential,
    /// GPT-NeoX: `x + attn(ln1(x)) + mlp(ln2(x))`.
    Parallel,
    /// Phi: `x + attn(ln(x)) + mlp(ln(x))`, one norm shared.
    ParallelSharedNorm,
    /// Gemma 2: each sublayer sandwiched between a pre and a post norm,
    /// `x += post_attn(attn(ln1(x))); x += post_ff(mlp(pre_ff(x)))`.
    Sandwich,
}

/// Every architecture axis the forward pass branches on.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Config {
    pub family: Family,
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub d_mlp: usize,
    pub norm: NormKind,
    pub norm_eps: f64,
    /// Per-head norm on q and k before RoPE (Qwen3 RMSNorm, Phi LayerNorm).
    pub qk_norm: Option<NormKind>,
    pub act: Activation,
    /// Gated MLP `down(act(gate(x)) * up(x))`, else `fc2(act(fc1(x)))`.
    pub gated_mlp: bool,
    pub residual: Residual,
    /// Multiply token embeddings by sqrt(d_model) (Gemma).
    pub embed_scale: bool,
    /// Learned absolute positions (GPT-2's `wpe`): their count.
    pub n_positions: Option<usize>,
    /// The context length the model was trained for (`max_position_embeddings`).
    pub max_positions: usize,
    /// Leading dims of each head that RoPE rotates; 0 without RoPE.
    pub rotary_dim: usize,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3RopeScaling>,
    /// llama.cpp's `rope_freqs.weight`: per-frequency divisors (Llama 3.x GGUF).
    pub rope_freq_factors: Option<Vec<f32>>,
    pub qkv_bias: bool,
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub lm_head_bias: bool,
    /// Multiplier of q.k before soft-capping and mask.
    pub attn_scale: f64,
    /// GPT-2 `scale_attn_by_inverse_layer_idx`: scores also divided by l+1.
    pub scale_by_inverse_layer: bool,
    pub attn_softcap: Option<f64>,
    pub final_softcap: Option<f64>,
    pub tie_word_embeddings: bool,
    /// The smallest sliding window any layer uses. Not implemented: prompts
    /// longer than it are refused (shorter ones never reach it).
    pub sliding_window: Option<usize>,
}

/// Typed access to a `config.json` object (or GGUF metadata under the same
/// names); the family descriptors supply transformers' defaults.
pub(crate) struct Fields<'a>(pub(crate) &'a Map<String, Value>);

impl Fields<'_> {
    /// First of `keys` present and not null (also inside `rope_parameters`,
    /// the transformers >= 5 spelling of the RoPE fields).
    fn value(&self, keys: &[&str]) -> Option<&Value> {
        let params = self.0.get("rope_parameters").and_then(Value::as_object);
        keys.iter().find_map(|k| {
            self.0
                .get(*k)
                .filter(|v| !v.is_null())
                .or_else(|| params.and_then(|p| p.get(*k)).filter(|v| !v.is_null()))
        })
    }

    pub(crate) fn usize_opt(&self, keys: &[&str]) -> Result<Option<usize>> {
        self.value(keys)
            .map(|v| {
                v.as_u64().map(|x| x as usize).ok_or_else(|| {
                    EngineError::Model(format!("config.json: `{}` is not a count: {v}", keys[0]))
                })
            })
            .transpose()
    }

    pub(crate) fn usize(&self, keys: &[&str]) -> Result<usize> {
        self.usize_opt(keys)?.ok_or_else(|| {
            EngineError::Model(format!("config.json lacks `{}`", keys.join("` / `")))
        })
    }

    pub(crate) fn f64_or(&self, keys: &[&str], default: f64) -> Result<f64> {
        self.value(keys)
            .map(|v| {
                v.as_f64().ok_or_else(|| {
                    EngineError::Model(format!("config.json: `{}` is not a number: {v}", keys[0]))
                })
            })
            .transpose()
            .map(|v| v.unwrap_or(default))
    }

    pub(crate) fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.value(&[key]) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| {
                EngineError::Model(format!("config.json: `{key}` is not a boolean: {v}"))
            }),
        }
    }

    pub(crate) fn str_opt(&self, keys: &[&str]) -> Option<&str> {
        self.value(keys).and_then(Value::as_str)
    }

    /// An activation name, else `default`.
    pub(crate) fn act(&self, keys: &[&str], default: &str) -> Result<Activation> {
        Activation::parse(self.str_opt(keys).unwrap_or(default))
    }

    /// A capping value: absent = the family default, null = none.
    pub(crate) fn softcap(&self, key: &str, default: f64) -> Result<Option<f64>> {
        match self.0.get(key) {
            None => Ok(Some(default)),
            Some(Value::Null) => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                EngineError::Model(format!("config.json: `{key}` is not a number: {v}"))
            }),
        }
    }

    /// `rope_scaling` (or transformers 5's `rope_parameters`): llama3 or none.
    pub(crate) fn rope_scaling(&self) -> Result<Option<Llama3RopeScaling>> {
        let Some(obj) = self
            .0
            .get("rope_scaling")
            .or_else(|| self.0.get("rope_parameters"))
            .and_then(Value::as_object)
        else {
            return Ok(None);
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
}

/// The family a config.json names: `model_type`, else `architectures[0]`.
/// `Err` carries what it named, for the caller's message.
pub(crate) fn family_of(obj: &Map<String, Value>) -> std::result::Result<Family, String> {
    let model_type = obj.get("model_type").and_then(Value::as_str);
    let class = obj
        .get("architectures")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str);
    match model_type {
        Some(t) => Family::from_model_type(t),
        None => class.and_then(Family::from_class),
    }
    .ok_or_else(|| {
        format!(
            "model_type {:?}, architectures[0] {:?}",
            model_type.unwrap_or("<missing>"),
            class.unwrap_or("<missing>")
        )
    })
}

/// A config.json's text as a JSON object.
pub(crate) fn parse_json(text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(EngineError::Model(
            "config.json is not a JSON object".into(),
        )),
        Err(e) => Err(EngineError::Model(format!(
            "config.json is not valid JSON: {e}"
        ))),
    }
}

impl Config {
    /// Checks that hold for every family; a model that fails one cannot run.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.n_layers == 0 {
            return Err(EngineError::Model(
                "the model has 0 layers (num_hidden_layers); a model needs at least one".into(),
            ));
        }
        if self.d_model == 0 || self.vocab_size == 0 || self.head_dim == 0 {
            return Err(EngineError::Model(
                "config.json: hidden size, head size and vocabulary must be non-zero".into(),
            ));
        }
        if self.n_kv_heads == 0 || !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(EngineError::Model(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.n_heads, self.n_kv_heads
            )));
        }
        if !self.rotary_dim.is_multiple_of(2) || self.rotary_dim > self.head_dim {
            return Err(EngineError::Model(format!(
                "rotary dimension {} must be even and at most head_dim {}",
                self.rotary_dim, self.head_dim
            )));
        }
        if let Some(f) = &self.rope_freq_factors {
            if f.len() != self.rotary_dim / 2 {
                return Err(EngineError::Model(format!(
                    "{} RoPE frequency factors given, the model rotates {} pairs per head",
                    f.len(),
                    self.rotary_dim / 2
                )));
            }
        }
        Ok(())
    }

    pub fn family(&self) -> &'static str {
        self.family.as_str()
    }

    pub fn has_pos_embed(&self) -> bool {
        self.n_positions.is_some()
    }

    /// The compute dtype a [`ComputeDtype`] choice means for this model.
    pub fn resolve_dtype(&self, choice: ComputeDtype) -> DType {
        choice.resolve(self.param_count())
    }

    /// Parameters (embeddings counted once when tied), for the f64/f32
    /// precision policy.
    pub fn param_count(&self) -> usize {
        let (d, hd, f) = (self.d_model, self.head_dim, self.d_mlp);
        let (q, kv) = (self.n_heads * hd, self.n_kv_heads * hd);
        let b = |on: bool, n: usize| if on { n } else { 0 };
        let attn = d * (q + 2 * kv) + q * d + b(self.qkv_bias, q + 2 * kv) + b(self.o_bias, d);
        let mlp = if self.gated_mlp { 3 * d * f } else { 2 * d * f }
            + b(self.mlp_bias, if self.gated_mlp { 2 * f } else { f } + d);
        let norm = if self.norm == NormKind::Layer {
            2 * d
        } else {
            d
        };
        let norms_per_layer = match self.residual {
            Residual::ParallelSharedNorm => 1,
            Residual::Sandwich => 4,
            _ => 2,
        };
        let qk = match self.qk_norm {
            Some(NormKind::Layer) => 4 * hd,
            Some(_) => 2 * hd,
            None => 0,
        };
        let layer = attn + mlp + norms_per_layer * norm + qk;
        let embed = self.vocab_size * d;
        let head = if self.tie_word_embeddings { 0 } else { embed }
            + b(self.lm_head_bias, self.vocab_size);
        embed + head + self.n_positions.unwrap_or(0) * d + self.n_layers * layer + norm
    }

    /// RoPE inverse frequencies over the rotated dims: llama3 scaling, then
    /// GGUF's frequency factors, applied when configured.
    pub fn inv_freq(&self) -> Vec<f32> {
        let inv = rope::inv_freq(self.rotary_dim, self.rope_theta, self.rope_scaling.as_ref());
        match &self.rope_freq_factors {
            Some(factors) => inv.iter().zip(factors).map(|(f, d)| f / d).collect(),
            None => inv,
        }
    }
}
