//! The JSON of `POST /inference`, shared by `logitlens lens --json` and the
//! server: the original tool's request and response shapes plus the
//! optional fields logitlens adds; and, in `patch.rs` and `generate.rs`,
//! of `POST /patch` and `POST /generate` and their commands' `--json`.
//! These are wire types only; the engine works with [`RunRequest`],
//! [`Answer`] and their kin, and nothing in the engine imports this
//! module, so the JSON contract changes only here.

mod generate;
mod patch;

pub use generate::{
    write_generation, BaselineAnswer, GenerateEvent, GenerateQuery, GenerateResponse, Written,
};
#[cfg(feature = "openapi")]
pub use patch::PositionsQuery;
pub use patch::{MetricAnswer, MetricQuery, PatchQuery, PatchResponse};

use serde::{Deserialize, Serialize};

use std::io::Write;

use candle_core::Tensor;

use crate::analysis::Analysis;
use crate::attention::{self, Attention, Format, Packed, Reduce};
use crate::error::Result;
use crate::hooks::Interventions;
use crate::lens::{DiffCell, LensRow, LensType, TrackedCell};
use crate::model::Attribution;
use crate::run::{Answer, AttributionRequest, RunRequest};
use crate::types::Receipt;

/// The body of `POST /inference`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InferenceRequest {
    pub text: String,
    /// Operations by key (`layer_3_output`, `blocks.3.hook_resid_post`...),
    /// applied in request order.
    #[serde(default, deserialize_with = "crate::hooks::unique_keys")]
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::HashMap<String, Vec<crate::hooks::InterventionConfig>>))]
    pub interventions: Interventions,
    #[serde(default)]
    pub lens_type: LensType,
    #[serde(default)]
    pub apply_chat_template: bool,
    #[serde(default)]
    pub return_attention: bool,
    /// json (default: the nested `attention` field) or f16 (`attention_f16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_format: Option<Format>,
    /// Only these layers' attention (default: every layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_layers: Option<Vec<i64>>,
    /// none (default) or head_mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_reduce: Option<Reduce>,
    /// Also run without interventions: `baseline_logit_lens` and `diff`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub compare: bool,
    /// Tokens (single-token strings, or ids) whose probability and rank
    /// every cell reports in `tracked`.
    /// Kept as JSON values: what is not a string or an id is refused with
    /// the reason, by the run's checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<TrackToken>>))]
    pub track_tokens: Option<Vec<serde_json::Value>>,
    /// Each cell's entropy (nats) in `entropy`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub entropy: bool,
    /// Norms and cosines of the captured states in `analysis`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub analysis: bool,
    /// `tuned`: draw the block-output rows with the tuned lens attached to
    /// the model (POST /load_lens); default `logit`.
    #[serde(default, skip_serializing_if = "is_logit")]
    pub lens: crate::lens::Lens,
    /// Direct logit attribution of one token at one position: `attribution`
    /// in the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<AttributionQuery>,
}

/// Which logit to attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AttributionQuery {
    /// A string that is exactly one token (encoded without BOS), or an id.
    #[cfg_attr(feature = "openapi", schema(value_type = TrackToken))]
    pub token: serde_json::Value,
    /// The position; negative counts from the end (default -1, the last).
    #[serde(default = "last_position")]
    pub position: i64,
}

fn last_position() -> i64 {
    -1
}

/// The shares of one logit: `embed + Σattn + Σmlp + rest = logit`, and
/// `Σ_h heads[l][h] = attn[l]` minus the attention output projection's
/// bias. Each share is the token's unembedding row dotted with the final
/// norm applied to that part of the final residual state, the norm's scale
/// frozen at that state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttributionAnswer {
    pub token_id: u32,
    /// The token as `decode([token_id])` gives it.
    pub token: String,
    /// The position, resolved (non-negative).
    pub position: usize,
    pub logit: f64,
    /// The token embedding's share.
    pub embed: f64,
    /// Per layer: the attention output's share.
    pub attn: Vec<f64>,
    /// Per layer: the MLP output's share.
    pub mlp: Vec<f64>,
    /// `[layer][head]`: each head's share.
    pub heads: Vec<Vec<f64>>,
    /// What is not a share of the embedding, attention or MLP: the sum of
    /// `rest_parts`; 0 for Llama and Qwen3 without interventions.
    pub rest: f64,
    /// The rest by name: pos_embed (GPT-2), final_norm_bias (LayerNorm
    /// families), lm_head_bias (Phi), final_softcap (Gemma 2),
    /// interventions (the run's stream interventions).
    pub rest_parts: std::collections::BTreeMap<String, f64>,
}

impl AttributionAnswer {
    pub fn new((a, token): &(Attribution, String)) -> Self {
        AttributionAnswer {
            token_id: a.token_id,
            token: token.clone(),
            position: a.position,
            logit: a.logit,
            embed: a.embed,
            attn: a.attn.clone(),
            mlp: a.mlp.clone(),
            heads: a.heads.clone(),
            rest: a.rest,
            rest_parts: a
                .rest_parts
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
        }
    }
}

fn is_logit(k: &crate::lens::Lens) -> bool {
    *k == crate::lens::Lens::Logit
}

/// A tracked token: a string that is exactly one token, or a token id.
#[cfg(feature = "openapi")]
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum TrackToken {
    Text(String),
    Id(u32),
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl InferenceRequest {
    pub fn new(text: impl Into<String>) -> Self {
        InferenceRequest {
            text: text.into(),
            ..Default::default()
        }
    }
}

impl From<InferenceRequest> for RunRequest {
    fn from(r: InferenceRequest) -> Self {
        RunRequest {
            text: r.text,
            apply_chat_template: r.apply_chat_template,
            interventions: r.interventions,
            lens_type: r.lens_type,
            return_attention: r.return_attention,
            attention_format: r.attention_format,
            attention_layers: r.attention_layers,
            attention_reduce: r.attention_reduce,
            compare: r.compare,
            track_tokens: r.track_tokens,
            entropy: r.entropy,
            analysis: r.analysis,
            lens: r.lens,
            attribution: r.attribution.map(|a| AttributionRequest {
                token: a.token,
                position: a.position,
            }),
        }
    }
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
    pub attention_f16: Option<Packed>,
    /// With `compare`: the same text without interventions.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub baseline_logit_lens: Option<Vec<LensRow>>,
    /// With `compare`: `[row][position]` how each cell changed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub diff: Option<Vec<Vec<DiffCell>>>,
    /// With `track_tokens`: `[row][position][k]`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tracked: Option<Vec<Vec<Vec<TrackedCell>>>>,
    /// With `entropy`: `[row][position]` nats.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub entropy: Option<Vec<Vec<f64>>>,
    /// With `analysis`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub analysis: Option<Analysis>,
    /// One per applied operation, in the order applied.
    #[serde(default)]
    pub receipts: Vec<Receipt>,
    /// With `attribution`: the shares of the asked logit.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attribution: Option<AttributionAnswer>,
}

impl InferenceResponse {
    /// The whole body in memory, the attention rendered from the run's
    /// `patterns` ([`write_response`] writes the same JSON a piece at a time).
    pub fn new(a: Answer, patterns: &[Tensor]) -> Result<Self> {
        let (attention, attention_f16) = match &a.attention {
            None => (None, None),
            Some(spec) => match attention::render(patterns, spec)? {
                Attention::Nested(n) => (Some(n), None),
                Attention::Packed(p) => (None, Some(p)),
            },
        };
        Ok(InferenceResponse {
            text: a.text,
            input_tokens: a.input_tokens,
            logit_lens: a.logit_lens,
            attention,
            attention_f16,
            baseline_logit_lens: a.baseline_logit_lens,
            diff: a.diff,
            tracked: a.tracked,
            entropy: a.entropy,
            analysis: a.analysis,
            attribution: a.attribution.as_ref().map(AttributionAnswer::new),
            receipts: a.receipts,
        })
    }
}

/// Write the /inference body for `answer` to `w`: the same JSON as
/// [`InferenceResponse`], field for field, with the attention written from
/// the run's `patterns` a layer at a time, so a long prompt's attention
/// (gigabytes as nested JSON) is never held in memory whole.
pub fn write_response(a: &Answer, patterns: &[Tensor], w: &mut dyn Write) -> Result<()> {
    write_response_with(a, patterns, &serde_json::Map::new(), w)
}

/// [`write_response`] with `extra` fields after the answer's own.
pub fn write_response_with(
    a: &Answer,
    patterns: &[Tensor],
    extra: &serde_json::Map<String, serde_json::Value>,
    w: &mut dyn Write,
) -> Result<()> {
    let mut first = true;
    let mut field = |w: &mut dyn Write, name: &str| -> std::io::Result<()> {
        w.write_all(if std::mem::take(&mut first) {
            b"{"
        } else {
            b","
        })?;
        write!(w, "\"{name}\":")
    };
    let json = |w: &mut dyn Write, v: &dyn erased::Value| v.write(w);
    field(w, "text")?;
    json(w, &a.text)?;
    field(w, "input_tokens")?;
    json(w, &a.input_tokens)?;
    field(w, "logit_lens")?;
    json(w, &a.logit_lens)?;
    if let Some(spec) = &a.attention {
        field(
            w,
            match spec.format {
                Format::Json => "attention",
                Format::F16 => "attention_f16",
            },
        )?;
        attention::write(patterns, spec, w)?;
    }
    if let Some(v) = &a.baseline_logit_lens {
        field(w, "baseline_logit_lens")?;
        json(w, v)?;
    }
    if let Some(v) = &a.diff {
        field(w, "diff")?;
        json(w, v)?;
    }
    if let Some(v) = &a.tracked {
        field(w, "tracked")?;
        json(w, v)?;
    }
    if let Some(v) = &a.entropy {
        field(w, "entropy")?;
        json(w, v)?;
    }
    if let Some(v) = &a.analysis {
        field(w, "analysis")?;
        json(w, v)?;
    }
    field(w, "receipts")?;
    json(w, &a.receipts)?;
    if let Some(v) = &a.attribution {
        field(w, "attribution")?;
        json(w, &AttributionAnswer::new(v))?;
    }
    for (name, v) in extra {
        field(w, name)?;
        json(w, v)?;
    }
    w.write_all(b"}")?;
    Ok(())
}

/// Serialize a value to a writer without naming its type at the call.
mod erased {
    pub(super) trait Value {
        fn write(&self, w: &mut dyn std::io::Write) -> crate::Result<()>;
    }

    impl<T: serde::Serialize> Value for T {
        fn write(&self, w: &mut dyn std::io::Write) -> crate::Result<()> {
            serde_json::to_writer(w, self).map_err(|e| crate::EngineError::Io(e.into()))
        }
    }
}
