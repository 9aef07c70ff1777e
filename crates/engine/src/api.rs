//! The JSON of `POST /inference`, shared by `logitlens lens --json` and the
//! server: the original tool's request and response shapes plus the
//! optional fields logitlens adds. These are wire types only; the engine
//! works with [`RunRequest`] and [`Answer`], and nothing in the engine
//! imports this module, so the JSON contract changes only here.

use serde::{Deserialize, Serialize};

use std::io::Write;

use candle_core::Tensor;

use crate::analysis::Analysis;
use crate::attention::{self, Attention, Format, Packed, Reduce};
use crate::error::Result;
use crate::hooks::Interventions;
use crate::lens::{DiffCell, LensRow, LensType, TrackedCell};
use crate::run::{Answer, RunRequest};
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
    pub lens: crate::lens::LensKind,
}

fn is_logit(k: &crate::lens::LensKind) -> bool {
    *k == crate::lens::LensKind::Logit
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
            receipts: a.receipts,
        })
    }
}

/// Write the /inference body for `answer` to `w`: the same JSON as
/// [`InferenceResponse`], field for field, with the attention written from
/// the run's `patterns` a layer at a time, so a long prompt's attention
/// (gigabytes as nested JSON) is never held in memory whole.
pub fn write_response(a: &Answer, patterns: &[Tensor], w: &mut dyn Write) -> Result<()> {
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
