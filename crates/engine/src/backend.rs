//! The two backends behind one interface: the custom Llama/Qwen3 model and
//! the hooked (TransformerLens-style) generic transformer.

use candle_core::DType;
use serde::Serialize;

use crate::config::ModelConfig;
use crate::error::{EngineError, Result};
use crate::hooked::{HookedConfig, HookedTransformer};
use crate::hooks::InterventionPlan;
use crate::lens::LensModel;
use crate::model::{Capture, Transformer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The original's "custom" backend: Llama and Qwen3.
    #[default]
    Custom,
    /// The TransformerLens-style backend (the original's `transformerlens`).
    Hooked,
}

impl BackendKind {
    pub const NAMES: &'static str = "custom, hooked (alias transformerlens)";

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "custom" => Some(BackendKind::Custom),
            "hooked" | "transformerlens" => Some(BackendKind::Hooked),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Custom => "custom",
            BackendKind::Hooked => "hooked",
        }
    }
}

pub enum Model {
    Custom(Transformer),
    Hooked(HookedTransformer),
}

/// What clients are told about a loaded model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    pub backend: BackendKind,
    /// "llama", "qwen3", "gpt2", "gpt_neox"...
    pub family: String,
    pub model_class: String,
    /// A one-line description of the resolved configuration.
    pub config: String,
    pub num_layers: usize,
    pub hidden_size: usize,
    pub num_heads: usize,
    pub vocab_size: usize,
}

impl Model {
    pub fn dtype(&self) -> DType {
        match self {
            Model::Custom(m) => m.dtype(),
            Model::Hooked(m) => m.dtype(),
        }
    }

    pub fn d_model(&self) -> usize {
        match self {
            Model::Custom(m) => m.cfg.hidden_size,
            Model::Hooked(m) => m.config().d_model(),
        }
    }

    /// Run `ids` with the plan; `resume` as in [`Transformer::forward`].
    pub fn forward(
        &self,
        ids: &[u32],
        plan: &InterventionPlan,
        resume: Option<(usize, &Capture)>,
    ) -> Result<Capture> {
        match self {
            Model::Custom(m) => m.forward(ids, plan, resume),
            Model::Hooked(m) => m.forward(ids, plan, resume),
        }
    }

    pub fn lens(&self) -> &dyn LensModel {
        match self {
            Model::Custom(m) => m,
            Model::Hooked(m) => m,
        }
    }

    /// The custom backend's config (None for the hooked backend).
    pub fn custom_config(&self) -> Option<&ModelConfig> {
        match self {
            Model::Custom(m) => Some(&m.cfg),
            Model::Hooked(_) => None,
        }
    }

    pub fn info(&self) -> ModelInfo {
        match self {
            Model::Custom(m) => ModelInfo {
                backend: BackendKind::Custom,
                family: format!("{:?}", m.cfg.arch).to_lowercase(),
                model_class: m.cfg.arch.model_class().into(),
                config: m.cfg.repr(),
                num_layers: m.cfg.num_hidden_layers,
                hidden_size: m.cfg.hidden_size,
                num_heads: m.cfg.num_attention_heads,
                vocab_size: m.cfg.vocab_size,
            },
            Model::Hooked(m) => {
                let c = m.config();
                ModelInfo {
                    backend: BackendKind::Hooked,
                    family: c.family().into(),
                    model_class: "HookedTransformer".into(),
                    config: format!("{c:?}"),
                    num_layers: c.n_layers(),
                    hidden_size: c.d_model(),
                    num_heads: c.n_heads(),
                    vocab_size: c.vocab_size(),
                }
            }
        }
    }
}

/// The hooked backend's config for a model described by GGUF metadata:
/// the same fields written as the config.json they came from.
pub fn hooked_config_from(cfg: &ModelConfig) -> Result<HookedConfig> {
    let model_type = match cfg.arch {
        crate::config::Arch::Llama => "llama",
        crate::config::Arch::Qwen3 => "qwen3",
    };
    let mut v = serde_json::json!({
        "model_type": model_type,
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "head_dim": cfg.head_dim,
        "rms_norm_eps": cfg.rms_norm_eps,
        "rope_theta": cfg.rope_theta,
        "max_position_embeddings": cfg.max_position_embeddings,
        "tie_word_embeddings": cfg.tie_word_embeddings,
        "attention_bias": cfg.attention_bias,
        "mlp_bias": cfg.mlp_bias,
        "hidden_act": "silu",
    });
    if let Some(s) = &cfg.rope_scaling {
        v["rope_scaling"] = serde_json::json!({
            "rope_type": "llama3",
            "factor": s.factor,
            "low_freq_factor": s.low_freq_factor,
            "high_freq_factor": s.high_freq_factor,
            "original_max_position_embeddings": s.original_max_position_embeddings,
        });
    }
    HookedConfig::from_hf_json(&v.to_string()).map_err(|e| {
        EngineError::Model(format!("GGUF metadata does not make a hooked config: {e}"))
    })
}

impl LensModel for Model {
    fn dtype(&self) -> DType {
        Model::dtype(self)
    }
    fn n_layers(&self) -> usize {
        self.lens().n_layers()
    }
    fn vocab_size(&self) -> usize {
        self.lens().vocab_size()
    }
    fn unembed(&self, x: &candle_core::Tensor) -> Result<candle_core::Tensor> {
        self.lens().unembed(x)
    }
}
