//! The two backends are two profiles of one transformer. `hooked` (the
//! original's `transformerlens`) runs every family. `custom` (the
//! original's own Llama/Qwen3 backend) runs Llama and Qwen3 only, refuses
//! what the original's model code could not run (non-SiLU activations,
//! sliding windows) at load rather than at run time, and describes a model
//! with the original's class names and config repr.

use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::nn::Activation;

use super::config::{self, Config, Family, Fields};
use super::families;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The original's "custom" backend: Llama and Qwen3.
    #[default]
    Custom,
    /// The TransformerLens-style backend (the original's `transformerlens`).
    Hooked,
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

    /// The families this profile runs, as its error messages list them.
    fn supported(self) -> &'static str {
        match self {
            BackendKind::Custom => {
                "llama (LlamaForCausalLM, incl. llama3 rope scaling) and qwen3 (Qwen3ForCausalLM)"
            }
            BackendKind::Hooked => {
                "llama, mistral, qwen2, qwen3, gemma, gemma2, phi3, phi, gpt2, gpt_neox"
            }
        }
    }

    fn runs(self, family: Family) -> bool {
        match self {
            BackendKind::Custom => matches!(family, Family::Llama | Family::Qwen3),
            BackendKind::Hooked => true,
        }
    }

    /// `family` if this profile runs it, else an error listing what it runs.
    pub(crate) fn check_family(
        self,
        family: std::result::Result<Family, String>,
    ) -> Result<Family> {
        let (named, hint) = match family {
            Ok(f) if self.runs(f) => return Ok(f),
            Ok(f) => (
                format!("{f} ({})", f.class_name()),
                "; the hooked backend runs it",
            ),
            Err(named) => (named, ""),
        };
        Err(EngineError::Unsupported(format!(
            "unsupported architecture ({named}); the {} backend supports {}{hint}",
            self.as_str(),
            self.supported()
        )))
    }

    /// Resolve config fields for `family` and check them against the
    /// profile: the family's descriptor, then the checks every model
    /// passes, then this profile's own.
    pub(crate) fn resolve(self, family: Family, fields: &Fields) -> Result<Config> {
        let cfg = (families::descriptor(family).config)(fields)?;
        cfg.validate()?;
        if self == BackendKind::Custom {
            if cfg.act != Activation::Silu {
                return Err(EngineError::Unsupported(format!(
                    "hidden_act {:?} is not supported by the custom backend (only silu); the hooked backend runs it",
                    fields.str_opt(&["hidden_act"]).unwrap_or("?")
                )));
            }
            if cfg.sliding_window.is_some() {
                return Err(EngineError::Unsupported(
                    "sliding-window attention (use_sliding_window=true) is not supported by the custom backend"
                        .into(),
                ));
            }
        }
        Ok(cfg)
    }

    /// Resolve a Hugging Face `config.json`.
    pub fn config_from_hf_json(self, text: &str) -> Result<Config> {
        let obj = config::parse_json(text)?;
        // The architecture is checked before the fields, so an unsupported
        // model gets the "supports ..." message rather than a missing-field one.
        let family = self.check_family(config::family_of(&obj))?;
        self.resolve(family, &Fields(&obj))
    }

    /// What `/load_model` and `/model_status` say about a model.
    pub fn info(self, cfg: &Config) -> ModelInfo {
        let (model_class, config) = match self {
            BackendKind::Custom => (
                match cfg.family {
                    Family::Qwen3 => "Qwen3Model",
                    _ => "LlamaModel",
                }
                .to_string(),
                original_repr(cfg),
            ),
            BackendKind::Hooked => ("HookedTransformer".to_string(), format!("{cfg:?}")),
        };
        ModelInfo {
            backend: self,
            family: cfg.family().into(),
            model_class,
            config,
            num_layers: cfg.n_layers,
            hidden_size: cfg.d_model,
            num_heads: cfg.n_heads,
            vocab_size: cfg.vocab_size,
        }
    }
}

/// A one-line description in the spirit of the original's dataclass repr.
fn original_repr(c: &Config) -> String {
    let name = match c.family {
        Family::Qwen3 => "Qwen3Config",
        _ => "LlamaConfig",
    };
    let py = |b: bool| if b { "True" } else { "False" };
    format!(
        "{name}(vocab_size={}, hidden_size={}, intermediate_size={}, num_hidden_layers={}, num_attention_heads={}, num_key_value_heads={}, head_dim={}, hidden_act='silu', max_position_embeddings={}, rms_norm_eps={:e}, rope_theta={:?}, rope_scaling={}, tie_word_embeddings={}, attention_bias={})",
        c.vocab_size,
        c.d_model,
        c.d_mlp,
        c.n_layers,
        c.n_heads,
        c.n_kv_heads,
        c.head_dim,
        c.max_positions,
        c.norm_eps,
        c.rope_theta,
        match &c.rope_scaling {
            Some(s) => format!(
                "llama3(factor={}, low_freq_factor={}, high_freq_factor={}, original_max_position_embeddings={})",
                s.factor, s.low_freq_factor, s.high_freq_factor, s.original_max_position_embeddings
            ),
            None => "None".into(),
        },
        py(c.tie_word_embeddings),
        py(c.qkv_bias),
    )
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
        let c = BackendKind::Custom
            .config_from_hf_json(&cfg(r#","model_type":"qwen3","head_dim":6"#))
            .unwrap();
        assert_eq!((c.family, c.head_dim), (Family::Qwen3, 6));
        let c = BackendKind::Custom
            .config_from_hf_json(&cfg(r#","architectures":["LlamaForCausalLM"]"#))
            .unwrap();
        assert_eq!((c.family, c.head_dim), (Family::Llama, 4));
    }

    #[test]
    fn unsupported_architecture_lists_supported_ones() {
        let e = BackendKind::Custom
            .config_from_hf_json(&cfg(r#","model_type":"gpt2""#))
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("gpt2") && msg.contains("llama") && msg.contains("qwen3"),
            "{msg}"
        );
        assert!(msg.contains("the hooked backend runs it"), "{msg}");
        assert!(matches!(e, EngineError::Unsupported(_)));
        let e = BackendKind::Hooked
            .config_from_hf_json(r#"{"model_type":"bert","hidden_size":8}"#)
            .unwrap_err();
        assert!(matches!(e, EngineError::Unsupported(_)));
        let msg = e.to_string();
        assert!(
            msg.contains("bert") && msg.contains(BackendKind::Hooked.supported()),
            "{msg}"
        );
    }

    #[test]
    fn the_custom_profile_is_stricter() {
        let gelu = cfg(r#","model_type":"llama","hidden_act":"gelu""#);
        assert_eq!(
            BackendKind::Hooked.config_from_hf_json(&gelu).unwrap().act,
            Activation::GeluErf
        );
        let e = BackendKind::Custom
            .config_from_hf_json(&gelu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"gelu\"") && e.contains("only silu"), "{e}");
        let window = cfg(
            r#","model_type":"qwen3","head_dim":4,"use_sliding_window":true,"sliding_window":8"#,
        );
        assert!(BackendKind::Hooked.config_from_hf_json(&window).is_ok());
        let e = BackendKind::Custom
            .config_from_hf_json(&window)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sliding"), "{e}");
    }

    #[test]
    fn both_profiles_resolve_alike() {
        // Qwen3's tie_word_embeddings defaults to false, as in transformers
        // (the custom backend used to default it to true).
        for text in [
            cfg(r#","model_type":"qwen3","head_dim":4"#),
            cfg(
                r#","model_type":"llama","rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":16}"#,
            ),
        ] {
            let a = BackendKind::Custom.config_from_hf_json(&text).unwrap();
            let b = BackendKind::Hooked.config_from_hf_json(&text).unwrap();
            assert_eq!(a, b);
            assert!(!a.tie_word_embeddings);
        }
    }

    #[test]
    fn zero_layers_are_refused() {
        for backend in [BackendKind::Custom, BackendKind::Hooked] {
            let e = backend
                .config_from_hf_json(
                    r#"{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,
                    "num_hidden_layers":0,"num_attention_heads":2}"#,
                )
                .unwrap_err();
            assert!(matches!(e, EngineError::Model(_)), "{e}");
            assert!(e.to_string().contains("0 layers"), "{e}");
        }
    }

    #[test]
    fn unknown_rope_scaling_is_refused() {
        let e = BackendKind::Custom
            .config_from_hf_json(&cfg(
                r#","model_type":"llama","rope_scaling":{"rope_type":"yarn","factor":4.0}"#,
            ))
            .unwrap_err();
        assert!(e.to_string().contains("yarn"));
    }

    #[test]
    fn architectures_is_the_fallback() {
        let c = BackendKind::Hooked
            .config_from_hf_json(
                r#"{"architectures":["GPT2LMHeadModel"],"vocab_size":10,"n_embd":8,"n_layer":1,"n_head":2}"#,
            )
            .unwrap();
        assert_eq!(c.family(), "gpt2");
        assert_eq!((c.d_mlp, c.n_positions), (32, Some(1024)));
        assert!(c.tie_word_embeddings && c.has_pos_embed());
    }
}
