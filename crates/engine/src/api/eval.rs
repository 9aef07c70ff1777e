//! The JSON of `POST /eval_lens` (its answer is
//! [`EvalReport`](crate::ops::eval::EvalReport), which `logitlens eval-lens
//! --json` prints too).

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::ops::corpus::Corpus;
use crate::ops::eval::EvalRequest;

pub(super) fn default_max_tokens() -> usize {
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
        Ok(EvalRequest {
            corpus: corpus_of(q.corpus, q.sample, q.seed)?,
            max_tokens: q.max_tokens,
        })
    }
}

/// The corpus a body names: its text (`corpus`) or a number of documents
/// to sample (`sample`, seeded), one of the two.
pub(super) fn corpus_of(text: Option<String>, sample: Option<usize>, seed: u64) -> Result<Corpus> {
    match (text, sample) {
        (Some(text), None) => Ok(Corpus::Text(text)),
        (None, Some(documents)) => Ok(Corpus::Sample { documents, seed }),
        (Some(_), Some(_)) => Err(crate::invalid!(
            "give either corpus (text) or sample (a number of documents), not both"
        )),
        (None, None) => Err(crate::invalid!(
            "give corpus (one document per line) or sample (documents sampled from the model)"
        )),
    }
}
