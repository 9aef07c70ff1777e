//! The JSON of `POST /inference`, shared by `logitlens lens --json` and the
//! server: the original tool's request and response shapes plus the
//! optional fields logitlens adds; and, in `patch.rs`, `generate.rs` and
//! `eval.rs`, of `POST /patch`, `POST /generate` and `POST /eval_lens` and
//! their commands' `--json`. These are the wire types: requests convert
//! into the operations' requests, answers are built from their outputs,
//! and each body has one type, written whole or streamed by the same
//! serde code (a long prompt's attention is rendered a layer at a time as
//! it is written).

mod eval;
mod generate;
mod jlens;
mod patch;
mod sae;

pub use eval::EvalLensRequest;
pub use generate::{BaselineAnswer, GenerateEvent, GenerateQuery, GenerateResponse, Written};
pub use jlens::{
    FitCheckpoint, FitJlensQuery, LensVectorLayer, LensVectorQuery, LensVectorResponse,
};
#[cfg(feature = "openapi")]
pub use patch::PositionsQuery;
pub use patch::{MetricAnswer, MetricQuery, PatchQuery, PatchResponse};
pub use sae::{
    EvalSaeQuery, LoadSaeQuery, SaeCorpusQuery, SaeFeaturesQuery, SaeFeaturesResponse, SaeInfo,
    SaeSource, UnloadSaeQuery, MAX_FEATURE_TOKENS,
};

use serde::{Deserialize, Serialize};

use candle_core::Tensor;

use crate::analysis::Analysis;
use crate::attention::{Attention, Format, Nested, Packed, Reduce};
use crate::capture::Receipt;
use crate::error::Result;
use crate::hooks::Interventions;
use crate::lens::{DiffCell, LensRow, LensType, TrackedCell};
use crate::model::Attribution;
use crate::ops::run::batch::{BatchOutput, BatchRequest};
use crate::ops::{Answer, AttributionRequest, RunRequest};

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
    /// the model (POST /load_lens); `jacobian`: with the Jacobian lens
    /// attached to it (the rows it covers transported, named in
    /// `transported_rows`); default `logit`.
    #[serde(default, skip_serializing_if = "is_logit")]
    pub lens: crate::lens::Lens,
    /// Direct logit attribution of one token at one position: `attribution`
    /// in the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<AttributionQuery>,
    /// The attached SAEs whose features to read at every position: `true`
    /// for all, or their names (`sae` in the answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sae: Option<crate::ops::sae::SaeSelection>,
    /// Features listed per position and SAE, by activation (default 8; 0:
    /// every active feature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sae_top_k: Option<usize>,
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
            sae: r.sae,
            sae_top_k: r.sae_top_k,
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
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Vec<Vec<Vec<f32>>>>>))]
    pub attention: Option<Nested>,
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
    pub attribution: Option<Attribution>,
    /// With `lens: jacobian`: the rows the lens's matrices transported
    /// (`Layer 0`.. for the layers it covers); the other rows (the
    /// embeddings, the final output) are read as the logit lens reads them.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub transported_rows: Option<Vec<String>>,
    /// With `sae`: each SAE's features at every position (its strongest
    /// `sae_top_k`), L0 and reconstruction error.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sae: Option<Vec<crate::ops::sae::SaeReadout>>,
}

impl InferenceResponse {
    /// The body for `a`, its attention (if asked) rendered from the run's
    /// `patterns` only as it is serialized, a layer at a time: serialize it
    /// with `serde_json::to_writer` and a long prompt's attention is never
    /// held whole.
    pub fn new(a: Answer, patterns: &[Tensor]) -> Result<Self> {
        let (attention, attention_f16) = match &a.attention {
            None => (None, None),
            Some(spec) => match Attention::of(patterns, spec)? {
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
            attribution: a.attribution,
            transported_rows: a.transported_rows,
            sae: a.sae,
        })
    }
}

/// The body of `POST /inference_batch`: several `/inference` bodies, run
/// in one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InferenceBatchRequest {
    /// Each prompt's request, as `/inference` takes it.
    pub requests: Vec<InferenceRequest>,
}

impl From<InferenceBatchRequest> for BatchRequest {
    fn from(r: InferenceBatchRequest) -> Self {
        BatchRequest {
            runs: r.requests.into_iter().map(RunRequest::from).collect(),
        }
    }
}

/// The answer of `POST /inference_batch`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InferenceBatchResponse {
    /// One `/inference` answer per request, in request order.
    pub results: Vec<InferenceResponse>,
    /// How the prompts went through the model: the requests (indices) each
    /// pass carried. Prompts go through together, padded to the longest of
    /// their pass, each under its own interventions (with `compare`, its
    /// baseline beside it); those returning attention in passes of their
    /// own; a prompt that blocks attention or acts at `hook_pos_embed`
    /// alone.
    pub passes: Vec<Vec<usize>>,
}

impl InferenceBatchResponse {
    pub fn new(out: BatchOutput) -> Result<Self> {
        Ok(InferenceBatchResponse {
            results: out
                .runs
                .into_iter()
                .map(|o| InferenceResponse::new(o.answer, &o.state.capture.patterns))
                .collect::<Result<_>>()?,
            passes: out.passes,
        })
    }
}
