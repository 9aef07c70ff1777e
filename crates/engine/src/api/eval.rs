//! The JSON of `POST /eval_lens` (its answer is
//! [`EvalReport`](crate::ops::eval::EvalReport), which `logitlens eval-lens
//! --json` prints too).

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::ops::corpus::Corpus;
use crate::ops::eval::EvalRequest;

fn default_max_tokens() -> usize {
    128
}

/// The body of `POST /eval_lens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EvalLensRequest {
    /// The corpus: one document per line (blank lines skipped), each
    /// tokenized as /inference does without the chat template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corpus: Option<String>,
    /// Instead of `corpus`: this many documents of `max_tokens` ids sampled
    /// from the model itself (temperature 1, from BOS or its eos token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<usize>,
    /// Seed of a sampled corpus (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Each document's first ids (default 128).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
}

impl TryFrom<EvalLensRequest> for EvalRequest {
    type Error = EngineError;

    fn try_from(q: EvalLensRequest) -> Result<Self> {
        let corpus = match (q.corpus, q.sample) {
            (Some(text), None) => Corpus::Text(text),
            (None, Some(documents)) => Corpus::Sample {
                documents,
                seed: q.seed,
            },
            (Some(_), Some(_)) => {
                return Err(crate::invalid!(
                    "give either corpus (text) or sample (a number of documents), not both"
                ))
            }
            (None, None) => {
                return Err(crate::invalid!(
                "give corpus (one document per line) or sample (documents sampled from the model)"
            ))
            }
        };
        Ok(EvalRequest {
            corpus,
            max_tokens: q.max_tokens,
        })
    }
}
