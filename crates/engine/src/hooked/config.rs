//! One config for every family the hooked backend runs, resolved from a
//! Hugging Face `config.json` into architecture axes with nothing left to
//! guess at forward time.
//!
//! Field names and defaults follow transformers' `configuration_{llama,
//! mistral,qwen2,qwen3,gemma,gemma2,phi3,phi,gpt2,gpt_neox}.py`.

use candle_core::DType;
use serde_json::{Map, Value};

use crate::config::Llama3RopeScaling;
use crate::error::{EngineError, Result};
use crate::model::{ComputeDtype, F64_MAX_PARAMS};

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
    const ALL: [Family; 10] = [
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
    fn class_name(self) -> &'static str {
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

    fn from_model_type(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    fn from_class(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.class_name() == s)
    }
}

/// How a hidden state is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// `w * x / rms(x)`.
    Rms,
    /// Gemma: `(1 + w) * x / rms(x)`.
    RmsOnePlus,
    /// `w * (x - mean) / std(x) + b`.
    Layer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Silu,
    /// The tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// The exact erf form (`gelu`).
    GeluErf,
    Relu,
}

impl Activation {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "silu" | "swish" => Activation::Silu,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "gelu" => Activation::GeluErf,
            "relu" => Activation::Relu,
            other => {
                return Err(EngineError::Unsupported(format!(
                    "activation {other:?} is not supported by the hooked backend \
                     (supported: silu, gelu_new, gelu_pytorch_tanh, gelu, relu)"
                )))
            }
        })
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

/// Every architecture axis the generic forward pass branches on.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HookedConfig {
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
    /// Leading dims of each head that RoPE rotates; 0 without RoPE.
    pub rotary_dim: usize,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3RopeScaling>,
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

/// Typed access to a `config.json` object, with transformers' defaults.
struct Raw<'a>(&'a Map<String, Value>);

impl Raw<'_> {
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

    fn usize_opt(&self, keys: &[&str]) -> Result<Option<usize>> {
        self.value(keys)
            .map(|v| {
                v.as_u64().map(|x| x as usize).ok_or_else(|| {
                    EngineError::Model(format!("config.json: `{}` is not a count: {v}", keys[0]))
                })
            })
            .transpose()
    }

    fn usize(&self, keys: &[&str]) -> Result<usize> {
        self.usize_opt(keys)?.ok_or_else(|| {
            EngineError::Model(format!("config.json lacks `{}`", keys.join("` / `")))
        })
    }

    fn f64_opt(&self, keys: &[&str]) -> Result<Option<f64>> {
        self.value(keys)
            .map(|v| {
                v.as_f64().ok_or_else(|| {
                    EngineError::Model(format!("config.json: `{}` is not a number: {v}", keys[0]))
                })
            })
            .transpose()
    }

    fn f64_or(&self, keys: &[&str], default: f64) -> Result<f64> {
        Ok(self.f64_opt(keys)?.unwrap_or(default))
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.value(&[key]) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| {
                EngineError::Model(format!("config.json: `{key}` is not a boolean: {v}"))
            }),
        }
    }

    fn str_opt(&self, keys: &[&str]) -> Option<&str> {
        self.value(keys).and_then(Value::as_str)
    }

    /// A capping value: absent = the family default, null = none.
    fn softcap(&self, key: &str, default: f64) -> Result<Option<f64>> {
        match self.0.get(key) {
            None => Ok(Some(default)),
            Some(Value::Null) => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                EngineError::Model(format!("config.json: `{key}` is not a number: {v}"))
            }),
        }
    }

    fn rope_scaling(&self) -> Result<Option<Llama3RopeScaling>> {
        match self
            .0
            .get("rope_scaling")
            .or_else(|| self.0.get("rope_parameters"))
        {
            Some(v) => crate::config::parse_rope_scaling(v),
            None => Ok(None),
        }
    }
}

impl HookedConfig {
    pub const FAMILIES: &'static str =
        "llama, mistral, qwen2, qwen3, gemma, gemma2, phi3, phi, gpt2, gpt_neox";

    /// Resolve a Hugging Face `config.json`: the family from `model_type`
    /// (or `architectures[0]` when that is absent), then its fields.
    pub fn from_hf_json(text: &str) -> Result<Self> {
        let raw: Value = serde_json::from_str(text)
            .map_err(|e| EngineError::Model(format!("config.json is not valid JSON: {e}")))?;
        let obj = raw
            .as_object()
            .ok_or_else(|| EngineError::Model("config.json is not a JSON object".into()))?;
        let model_type = obj.get("model_type").and_then(Value::as_str);
        let class = obj
            .get("architectures")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str);
        let family = match model_type {
            Some(t) => Family::from_model_type(t),
            None => class.and_then(Family::from_class),
        }
        .ok_or_else(|| {
            EngineError::Unsupported(format!(
                "unsupported architecture (model_type {:?}, architectures[0] {:?}); the hooked backend supports: {}",
                model_type.unwrap_or("<missing>"),
                class.unwrap_or("<missing>"),
                Self::FAMILIES
            ))
        })?;
        let cfg = Self::resolve(family, &Raw(obj))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn resolve(family: Family, r: &Raw) -> Result<Self> {
        use Family::*;
        let (d_key, l_key, h_key): (&[&str], &[&str], &[&str]) = match family {
            Gpt2 => (
                &["n_embd", "hidden_size"],
                &["n_layer", "num_hidden_layers"],
                &["n_head", "num_attention_heads"],
            ),
            _ => (
                &["hidden_size"],
                &["num_hidden_layers"],
                &["num_attention_heads"],
            ),
        };
        let d_model = r.usize(d_key)?;
        let n_layers = r.usize(l_key)?;
        let n_heads = r.usize(h_key)?;
        if n_heads == 0 {
            return Err(EngineError::Model("num_attention_heads is 0".into()));
        }
        let vocab_size = r.usize(&["vocab_size"])?;
        let head_dim = match r.usize_opt(&["head_dim"])? {
            Some(h) if !matches!(family, Gpt2 | GptNeox | Phi) => h,
            _ => {
                if d_model % n_heads != 0 {
                    return Err(EngineError::Model(format!(
                        "hidden size {d_model} is not divisible by {n_heads} heads and no head_dim is given"
                    )));
                }
                d_model / n_heads
            }
        };
        let n_kv_heads = match family {
            Gpt2 | GptNeox => n_heads,
            _ => r.usize_opt(&["num_key_value_heads"])?.unwrap_or(n_heads),
        };
        let d_mlp = match family {
            Gpt2 => r.usize_opt(&["n_inner"])?.unwrap_or(4 * d_model),
            _ => r.usize(&["intermediate_size"])?,
        };

        let act_name = match family {
            Gpt2 => r.str_opt(&["activation_function"]).unwrap_or("gelu_new"),
            // Gemma 2's MLP reads `hidden_activation`; its `hidden_act` is
            // vestigial (often "silu" next to gelu_pytorch_tanh).
            Gemma2 => r
                .str_opt(&["hidden_activation"])
                .unwrap_or("gelu_pytorch_tanh"),
            // Gemma: `hidden_activation` when set (the fix for checkpoints
            // saying hidden_act "gelu"), else `hidden_act`.
            Gemma => r
                .str_opt(&["hidden_activation", "hidden_act"])
                .unwrap_or("gelu_pytorch_tanh"),
            Phi => r.str_opt(&["hidden_act"]).unwrap_or("gelu_new"),
            GptNeox => r.str_opt(&["hidden_act"]).unwrap_or("gelu"),
            _ => r.str_opt(&["hidden_act"]).unwrap_or("silu"),
        };
        let act = Activation::parse(act_name)?;

        let (norm, norm_eps) = match family {
            Gpt2 => (NormKind::Layer, r.f64_or(&["layer_norm_epsilon"], 1e-5)?),
            Phi | GptNeox => (NormKind::Layer, r.f64_or(&["layer_norm_eps"], 1e-5)?),
            Gemma | Gemma2 => (NormKind::RmsOnePlus, r.f64_or(&["rms_norm_eps"], 1e-6)?),
            Phi3 => (NormKind::Rms, r.f64_or(&["rms_norm_eps"], 1e-5)?),
            _ => (NormKind::Rms, r.f64_or(&["rms_norm_eps"], 1e-6)?),
        };
        let qk_norm = match family {
            Qwen3 => Some(NormKind::Rms),
            Phi if r.bool_or("qk_layernorm", false)? => Some(NormKind::Layer),
            _ => None,
        };

        let rotary_fraction = match family {
            Gpt2 => 0.0,
            GptNeox => r.f64_or(&["rotary_pct", "partial_rotary_factor"], 0.25)?,
            Phi => r.f64_or(&["partial_rotary_factor"], 0.5)?,
            _ => r.f64_or(&["partial_rotary_factor"], 1.0)?,
        };
        // transformers: `int(head_dim * partial_rotary_factor)`.
        let rotary_dim = (head_dim as f64 * rotary_fraction) as usize;
        let rope_theta = match family {
            GptNeox => r.f64_or(&["rotary_emb_base", "rope_theta"], 10000.0)?,
            _ => r.f64_or(&["rope_theta"], 10000.0)?,
        };
        let rope_scaling = if family == Gpt2 {
            None
        } else {
            r.rope_scaling()?
        };

        let attention_bias = r.bool_or("attention_bias", false)?;
        let (qkv_bias, o_bias, mlp_bias, lm_head_bias) = match family {
            Llama => (
                attention_bias,
                attention_bias,
                r.bool_or("mlp_bias", false)?,
                false,
            ),
            Qwen2 => (true, false, false, false),
            Qwen3 | Gemma | Gemma2 => (attention_bias, attention_bias, false, false),
            Mistral | Phi3 => (false, false, false, false),
            Phi => (true, true, true, true),
            Gpt2 => (true, true, true, false),
            GptNeox => {
                let b = r.bool_or("attention_bias", true)?;
                (b, b, true, false)
            }
        };

        let attn_scale = match family {
            Gemma2 => {
                let s = r.f64_or(&["query_pre_attn_scalar"], 256.0)?;
                1.0 / s.sqrt()
            }
            Gpt2 if !r.bool_or("scale_attn_weights", true)? => 1.0,
            _ => 1.0 / (head_dim as f64).sqrt(),
        };
        let (attn_softcap, final_softcap) = match family {
            Gemma2 => (
                r.softcap("attn_logit_softcapping", 50.0)?,
                r.softcap("final_logit_softcapping", 30.0)?,
            ),
            _ => (None, None),
        };

        let residual = match family {
            Gemma2 => Residual::Sandwich,
            Phi => Residual::ParallelSharedNorm,
            GptNeox if r.bool_or("use_parallel_residual", true)? => Residual::Parallel,
            _ => Residual::Sequential,
        };

        let tie_default = matches!(family, Gemma | Gemma2 | Gpt2);
        let tie_word_embeddings = r.bool_or("tie_word_embeddings", tie_default)?;

        let sliding_window = match family {
            Mistral | Phi3 => r.usize_opt(&["sliding_window"])?,
            Qwen2 | Qwen3 if r.bool_or("use_sliding_window", false)? => {
                r.usize_opt(&["sliding_window"])?
            }
            Gemma2 => Some(r.usize_opt(&["sliding_window"])?.unwrap_or(4096)),
            _ => None,
        };

        Ok(HookedConfig {
            family,
            vocab_size,
            d_model,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            d_mlp,
            norm,
            norm_eps,
            qk_norm,
            act,
            gated_mlp: !matches!(family, Phi | Gpt2 | GptNeox),
            residual,
            embed_scale: matches!(family, Gemma | Gemma2),
            n_positions: match family {
                Gpt2 => Some(r.usize_opt(&["n_positions", "n_ctx"])?.unwrap_or(1024)),
                _ => None,
            },
            rotary_dim,
            rope_theta,
            rope_scaling,
            qkv_bias,
            o_bias,
            mlp_bias,
            lm_head_bias,
            attn_scale,
            scale_by_inverse_layer: family == Gpt2
                && r.bool_or("scale_attn_by_inverse_layer_idx", false)?,
            attn_softcap,
            final_softcap,
            tie_word_embeddings,
            sliding_window,
        })
    }

    fn validate(&self) -> Result<()> {
        if self.n_kv_heads == 0 || self.n_heads % self.n_kv_heads != 0 {
            return Err(EngineError::Model(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.n_heads, self.n_kv_heads
            )));
        }
        if self.rotary_dim % 2 != 0 || self.rotary_dim > self.head_dim {
            return Err(EngineError::Model(format!(
                "rotary dimension {} must be even and at most head_dim {}",
                self.rotary_dim, self.head_dim
            )));
        }
        if self.n_layers == 0 || self.d_model == 0 || self.vocab_size == 0 {
            return Err(EngineError::Model(
                "config.json: layers, hidden size and vocabulary must be non-zero".into(),
            ));
        }
        Ok(())
    }

    pub fn family(&self) -> &str {
        self.family.as_str()
    }

    pub fn n_layers(&self) -> usize {
        self.n_layers
    }

    pub fn d_model(&self) -> usize {
        self.d_model
    }

    pub fn n_heads(&self) -> usize {
        self.n_heads
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The compute dtype a [`ComputeDtype`] choice means for this model (f64
    /// up to [`F64_MAX_PARAMS`] parameters under `auto`, as the custom backend).
    pub fn resolve_dtype(&self, choice: ComputeDtype) -> DType {
        match choice {
            ComputeDtype::F32 => DType::F32,
            ComputeDtype::F64 => DType::F64,
            ComputeDtype::Auto if self.param_count() <= F64_MAX_PARAMS => DType::F64,
            ComputeDtype::Auto => DType::F32,
        }
    }

    pub fn has_pos_embed(&self) -> bool {
        self.n_positions.is_some()
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

    /// RoPE inverse frequencies over the rotated dims, llama3 scaling applied.
    pub fn inv_freq(&self) -> Vec<f32> {
        crate::config::rope_inv_freq(self.rotary_dim, self.rope_theta, self.rope_scaling.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_model_type_lists_families() {
        let e = HookedConfig::from_hf_json(r#"{"model_type":"bert","hidden_size":8}"#).unwrap_err();
        assert!(matches!(e, EngineError::Unsupported(_)));
        let msg = e.to_string();
        assert!(
            msg.contains("bert") && msg.contains(HookedConfig::FAMILIES),
            "{msg}"
        );
    }

    #[test]
    fn architectures_is_the_fallback() {
        let c = HookedConfig::from_hf_json(
            r#"{"architectures":["GPT2LMHeadModel"],"vocab_size":10,"n_embd":8,"n_layer":1,"n_head":2}"#,
        )
        .unwrap();
        assert_eq!(c.family(), "gpt2");
        assert_eq!((c.d_mlp, c.n_positions), (32, Some(1024)));
        assert!(c.tie_word_embeddings && c.has_pos_embed());
    }

    #[test]
    fn inv_freq_agrees_with_the_custom_backend() {
        let json = r#"{"model_type":"llama","vocab_size":10,"hidden_size":64,"intermediate_size":8,
            "num_hidden_layers":1,"num_attention_heads":4,"rope_theta":500000.0,
            "rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,
            "high_freq_factor":4.0,"original_max_position_embeddings":16}}"#;
        let ours = HookedConfig::from_hf_json(json).unwrap();
        let theirs = crate::config::ModelConfig::from_hf_json(json).unwrap();
        assert_eq!(ours.inv_freq(), theirs.inv_freq());
        assert_eq!(ours.param_count(), theirs.param_count());
    }
}
