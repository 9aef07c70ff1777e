//! The JSON of `POST /patch` and `logitlens patch --json`: an activation
//! patching sweep asked and answered.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::load::LoadedModel;
use crate::ops::patch::{Metric, MetricRequest, PatchRequest, Patched, PATCH_HOOKS};

/// The body of `POST /patch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PatchQuery {
    /// The prompt whose activations are patched in.
    pub clean_text: String,
    /// The prompt that is run with them; it must tokenize to as many tokens.
    pub corrupted_text: String,
    /// resid_pre, resid_mid, attn_out, mlp_out or resid_post (or
    /// `blocks.{l}.hook_resid_pre`, the layer left open).
    pub hook: String,
    pub metric: MetricQuery,
    /// "all" (default) or a list of positions (negative counts from the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<PositionsQuery>))]
    pub positions: Option<Value>,
    #[serde(default)]
    pub apply_chat_template: bool,
}

/// What is read from the last position's logits. A token is a string that
/// encodes (without BOS) to exactly one token, or an id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum MetricQuery {
    /// logit(correct) − logit(wrong).
    LogitDiff {
        #[cfg_attr(feature = "openapi", schema(value_type = super::TrackToken))]
        correct: Value,
        #[cfg_attr(feature = "openapi", schema(value_type = super::TrackToken))]
        wrong: Value,
    },
    /// The softmax probability of `token`.
    Prob {
        #[cfg_attr(feature = "openapi", schema(value_type = super::TrackToken))]
        token: Value,
    },
}

/// Which positions a sweep patches.
#[cfg(feature = "openapi")]
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum PositionsQuery {
    /// "all"
    All(String),
    List(Vec<i64>),
}

impl TryFrom<PatchQuery> for PatchRequest {
    type Error = crate::EngineError;

    fn try_from(q: PatchQuery) -> Result<Self> {
        let positions = match q.positions {
            None => None,
            Some(Value::String(s)) if s == "all" => None,
            Some(Value::Array(list)) => Some(
                list.iter()
                    .map(|v| {
                        v.as_i64()
                            .ok_or_else(|| crate::invalid!("positions: {v} is not a whole number"))
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
            Some(other) => {
                return Err(crate::invalid!(
                    "positions: {other} is neither \"all\" nor a list of positions"
                ))
            }
        };
        Ok(PatchRequest {
            clean_text: q.clean_text,
            corrupted_text: q.corrupted_text,
            hook: q.hook,
            metric: match q.metric {
                MetricQuery::LogitDiff { correct, wrong } => {
                    MetricRequest::LogitDiff { correct, wrong }
                }
                MetricQuery::Prob { token } => MetricRequest::Prob { token },
            },
            positions,
            apply_chat_template: q.apply_chat_template,
        })
    }
}

/// The metric as a sweep resolved it: its token ids and their text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetricAnswer {
    LogitDiff {
        correct: u32,
        wrong: u32,
        correct_text: String,
        wrong_text: String,
    },
    Prob {
        token: u32,
        token_text: String,
    },
}

/// The body `POST /patch` answers with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PatchResponse {
    /// Each token of the clean text as `decode([id])` gives it.
    pub tokens_clean: Vec<String>,
    pub tokens_corrupted: Vec<String>,
    pub layers: usize,
    /// The hook's short name.
    pub hook: String,
    /// The positions patched, resolved (non-negative), in request order.
    pub positions: Vec<usize>,
    pub metric: MetricAnswer,
    /// The metric of the clean run.
    pub clean: f64,
    /// The metric of the corrupted run.
    pub corrupted: f64,
    /// `[layer][j]`: the metric of the corrupted run with the hook's
    /// activation at that layer and `positions[j]` replaced by the clean
    /// run's.
    pub values: Vec<Vec<f64>>,
    /// (values − corrupted) / (clean − corrupted); null where clean =
    /// corrupted.
    pub normalized: Vec<Vec<Option<f64>>>,
    /// Wall-clock time of the sweep.
    pub seconds: f64,
}

impl PatchResponse {
    pub fn new(model: &LoadedModel, p: Patched) -> Result<Self> {
        let spec = &p.spec;
        let tok = &model.tokenizer;
        let decode = |ids: &[u32]| -> Result<Vec<String>> {
            ids.iter().map(|&i| tok.decode_one(i)).collect()
        };
        let metric = match spec.metric {
            Metric::LogitDiff { correct, wrong } => MetricAnswer::LogitDiff {
                correct,
                wrong,
                correct_text: tok.decode_one(correct)?,
                wrong_text: tok.decode_one(wrong)?,
            },
            Metric::Prob { token } => MetricAnswer::Prob {
                token,
                token_text: tok.decode_one(token)?,
            },
        };
        let hook = PATCH_HOOKS
            .iter()
            .find(|(_, k)| *k == spec.hook)
            .map_or("", |(n, _)| n);
        Ok(PatchResponse {
            tokens_clean: decode(&spec.clean)?,
            tokens_corrupted: decode(&spec.corrupted)?,
            layers: p.values.len(),
            hook: hook.to_owned(),
            positions: spec.positions.clone(),
            metric,
            clean: p.clean,
            corrupted: p.corrupted,
            normalized: p.normalized(),
            values: p.values,
            seconds: p.seconds,
        })
    }
}
