//! The JSON shapes of the original tool's `/inference` request and response
//! (UPSTREAM.md §1.3), shared by the CLI's `lens --json` and the server.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// One intervention as the original's `InterventionConfig`. Every field is
/// written back out (nulls included) when a session is saved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InterventionConfig {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub vector: Option<Vec<f64>>,
    #[serde(default)]
    pub token_index: Option<i64>,
    #[serde(default)]
    pub source_tokens: Option<Vec<i64>>,
    #[serde(default)]
    pub target_tokens: Option<Vec<i64>>,
    #[serde(default)]
    pub all_layers: Option<bool>,
}

/// Interventions keyed as the original's API keys them; request order is
/// kept because operations reaching the same hook apply in that order.
pub type Interventions = IndexMap<String, Vec<InterventionConfig>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LensType {
    #[default]
    BlockOutput,
    PostAttention,
    Combined,
}

impl LensType {
    pub const NAMES: &'static str = "block_output, post_attention, combined";

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "block_output" => Some(LensType::BlockOutput),
            "post_attention" => Some(LensType::PostAttention),
            "combined" => Some(LensType::Combined),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LensType::BlockOutput => "block_output",
            LensType::PostAttention => "post_attention",
            LensType::Combined => "combined",
        }
    }
}

fn default_lens_type() -> String {
    "block_output".into()
}

/// The body of `POST /inference`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InferenceRequest {
    pub text: String,
    #[serde(default)]
    pub interventions: Interventions,
    /// Kept as a string so an unknown value is a clear 400, not a 422.
    #[serde(default = "default_lens_type")]
    pub lens_type: String,
    #[serde(default)]
    pub apply_chat_template: bool,
    #[serde(default)]
    pub return_attention: bool,
    /// "json" (default: the nested `attention` field) or "f16" (`attention_f16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_format: Option<String>,
    /// Only these layers' attention (default: every layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_layers: Option<Vec<i64>>,
    /// "none" (default) or "head_mean".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_reduce: Option<String>,
}

impl InferenceRequest {
    pub fn new(text: impl Into<String>) -> Self {
        InferenceRequest {
            text: text.into(),
            interventions: Interventions::new(),
            lens_type: default_lens_type(),
            apply_chat_template: false,
            return_attention: false,
            attention_format: None,
            attention_layers: None,
            attention_reduce: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Prediction {
    pub token: String,
    pub prob: f64,
    pub id: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LensRow {
    pub layer_index: usize,
    pub layer_name: String,
    /// `[position][rank]`, 5 per position, most probable first.
    pub predictions: Vec<Vec<Prediction>>,
}

/// The body `POST /inference` answers with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InferenceResponse {
    pub text: String,
    pub input_tokens: Vec<String>,
    pub logit_lens: Vec<LensRow>,
    /// `[layer][head][query][key]`, only when asked for.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attention: Option<Vec<Vec<Vec<Vec<f32>>>>>,
    /// The compact form, when asked for with `attention_format: "f16"`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attention_f16: Option<crate::attention::Packed>,
}
