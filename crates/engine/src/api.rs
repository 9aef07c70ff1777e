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
    /// Also run without interventions: `baseline_logit_lens` and `diff`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub compare: bool,
    /// Tokens (single-token strings, or ids) whose probability and rank
    /// every cell reports in `tracked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_tokens: Option<Vec<serde_json::Value>>,
    /// Each cell's entropy (nats) in `entropy`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub entropy: bool,
    /// Norms and cosines of the captured states in `analysis`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub analysis: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
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
            compare: false,
            track_tokens: None,
            entropy: false,
            analysis: false,
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

/// What one intervention operation did, as applied: every request key
/// that reached the model leaves at least one (an operation that could not
/// apply is a 400 before anything runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Receipt {
    /// The request key it came from (`layer_1_output`, `blocks.0.hook_mlp_out`...).
    pub key: String,
    /// The hook it applied at (`blocks.1.hook_resid_post`,
    /// `blocks.0.attn.hook_attn_scores` for blocking).
    pub hook: String,
    /// None for the embeddings.
    pub layer: Option<usize>,
    /// Token positions touched (query positions for blocking).
    pub positions: Vec<usize>,
    /// Elements changed (for blocking: score entries set to -inf, all heads).
    pub elements: usize,
    /// L2 norm of the change of the stream (for blocking: of that layer's
    /// attention pattern, all heads).
    pub delta_norm: Option<f64>,
    /// The forward step that applied it (the layer being computed; 0 before
    /// layer 0), so re-runs can take over earlier steps' receipts.
    #[serde(skip)]
    pub step: usize,
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
    /// With `compare`: the same text without interventions.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub baseline_logit_lens: Option<Vec<LensRow>>,
    /// With `compare`: `[row][position]` how each cell changed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub diff: Option<Vec<Vec<crate::lens::DiffCell>>>,
    /// With `track_tokens`: `[row][position][k]`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tracked: Option<Vec<Vec<Vec<TrackedCell>>>>,
    /// With `entropy`: `[row][position]` nats.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub entropy: Option<Vec<Vec<f64>>>,
    /// With `analysis`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub analysis: Option<crate::analysis::Analysis>,
    /// One per applied operation, in the order applied.
    #[serde(default)]
    pub receipts: Vec<Receipt>,
}
