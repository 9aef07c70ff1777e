//! The JSON of `POST /generate` and `logitlens generate --json`: the
//! /inference body over prompt and written tokens, what was written, and
//! the lines of a streamed generation.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::lens::LensRow;
use crate::ops::generate::{GenerationOutput, GenerationRequest, GenerationStep};
use crate::ops::{RunRequest, RunState};

use super::{InferenceRequest, InferenceResponse};

fn yes() -> bool {
    true
}

/// The body of `POST /generate`: /inference's fields (the text is the
/// prompt; interventions act at every step, their positions over the whole
/// sequence) and how far to write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GenerateQuery {
    #[serde(flatten)]
    pub inference: InferenceRequest,
    /// New tokens at most, 1 to 256 (greedy decoding).
    pub max_new_tokens: usize,
    /// Stop after the model's eos token, which is kept (default true).
    #[serde(default = "yes")]
    pub stop_at_eos: bool,
    /// Answer with newline-delimited JSON as the tokens are written: a
    /// `step` line per pass, then a `done` line with the whole body.
    #[serde(default)]
    pub stream: bool,
}

impl From<GenerateQuery> for GenerationRequest {
    fn from(q: GenerateQuery) -> Self {
        GenerationRequest {
            run: RunRequest::from(q.inference),
            max_new_tokens: q.max_new_tokens,
            stop_at_eos: q.stop_at_eos,
        }
    }
}

/// What the model writes without the interventions (with `compare`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BaselineAnswer {
    pub generated_ids: Vec<u32>,
    /// Each token as `decode([id])` gives it.
    pub generated_tokens: Vec<String>,
    pub generated_text: String,
    /// The first written step at which the two continuations differ; null
    /// when they are the same.
    pub first_difference: Option<usize>,
}

/// What a generation wrote, beside the /inference fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Written {
    /// The tokens written (the eos it stopped at included).
    pub generated_ids: Vec<u32>,
    pub generated_text: String,
    /// The prompt's token count: positions from here on were written.
    pub prompt_tokens: usize,
    pub stopped_at_eos: bool,
    /// With `compare`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub baseline_generation: Option<BaselineAnswer>,
}

impl Written {
    pub fn new(out: &GenerationOutput) -> Self {
        Written {
            generated_ids: out.generated_ids.clone(),
            generated_text: out.generated_text.clone(),
            prompt_tokens: out.prompt_tokens,
            stopped_at_eos: out.stopped_at_eos,
            baseline_generation: out.baseline.as_ref().map(|b| BaselineAnswer {
                generated_ids: b.ids.clone(),
                generated_tokens: b.tokens.clone(),
                generated_text: b.text.clone(),
                first_difference: b.first_difference,
            }),
        }
    }
}

/// The body `POST /generate` answers with: the /inference body over the
/// prompt and the written tokens (`input_tokens`, `logit_lens` ... cover
/// both), and what was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GenerateResponse {
    #[serde(flatten)]
    pub inference: InferenceResponse,
    #[serde(flatten)]
    pub written: Written,
}

/// One line of a streamed `POST /generate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GenerateEvent {
    /// A pass: the prompt's (index 0), then each written token's. `columns`
    /// are the lens rows over the positions it ran (`start..`), `token_id`
    /// the token it chose (null for the last pass, run for its column).
    Step {
        index: usize,
        token_id: Option<u32>,
        token: Option<String>,
        start: usize,
        tokens: Vec<String>,
        columns: Vec<LensRow>,
    },
    /// The whole body, as without `stream`, and the kept run's id (for
    /// /save_state's `run_id`).
    Done {
        run_id: u64,
        response: Box<GenerateResponse>,
    },
    /// The generation stopped with this error after the stream began.
    Error { detail: String },
}

impl From<GenerationStep> for GenerateEvent {
    fn from(s: GenerationStep) -> Self {
        let (token_id, token) = s.token.unzip();
        GenerateEvent::Step {
            index: s.index,
            token_id,
            token,
            start: s.start,
            tokens: s.tokens,
            columns: s.columns,
        }
    }
}

impl GenerateResponse {
    /// The body of a generation, and the run over what it wrote (kept by
    /// the server for /save_state); the attention is rendered as the body
    /// is written.
    pub fn new(out: GenerationOutput) -> Result<(Self, RunState)> {
        let written = Written::new(&out);
        let inference = InferenceResponse::new(out.run.answer, &out.run.state.capture.patterns)?;
        Ok((GenerateResponse { inference, written }, out.run.state))
    }
}
