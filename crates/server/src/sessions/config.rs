//! A saved session's `config.json`, typed: the original tool's fields
//! (text, interventions, lens_type, model_name, backend,
//! apply_chat_template, results), then what logitlens adds to reproduce
//! the run (the token ids and tokens, the model's source and weights hash,
//! the compute dtype, the lens, what a generation wrote, the app). Version
//! 2 is this layout; a config without `version` (the original's, and
//! logitlens's before it was versioned) is version 1 and opens the same
//! way, the fields it lacks absent (the original's legacy back-fill:
//! `backend` custom, `apply_chat_template` false). Fields this version does
//! not know are kept, so a session re-saved by it loses nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use logitlens_engine::lens::{Lens, LensRow, LensType};
use logitlens_engine::{
    InferenceRequest, InferenceResponse, Interventions, LoadedModel, RunState, SourceInfo,
};

/// A request's interventions as config.json holds them.
fn interventions_json(iv: &Interventions) -> Map<String, Value> {
    match serde_json::to_value(iv) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

use crate::status::{dtype_name, Backend};

/// The layout written now.
pub const CONFIG_VERSION: u32 = 2;

fn version_1() -> u32 {
    1
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What a saved session's config.json holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionConfig {
    pub text: String,
    /// The request's operations by key, as written: a list per key (the
    /// original's older web app wrote a single operation), each read as
    /// /inference reads it when the session is run again.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub interventions: Map<String, Value>,
    #[serde(default)]
    pub lens_type: LensType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    #[serde(default)]
    pub backend: Backend,
    #[serde(default)]
    pub apply_chat_template: bool,
    /// The lens rows as the client saw them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<SavedResults>,
    /// The layout's version (1 when absent: written before versions).
    /// After the original's fields, which keep their order.
    #[serde(default = "version_1")]
    pub version: u32,
    #[serde(default, skip_serializing_if = "is_false")]
    pub return_attention: bool,
    /// The token ids the run saw (the states in tensors.npz are theirs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_ids: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_source: Option<SavedSource>,
    /// f32 or f64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_dtype: Option<String>,
    /// Which lens drew the rows (absent: the logit lens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lens: Option<Lens>,
    /// The tuned lens's folder, when a tuned lens drew them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuned_lens: Option<String>,
    /// A generation's: the tokens it wrote after the prompt's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_ids: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppInfo>,
    /// Fields of a later layout, kept as they are.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub other: Map<String, Value>,
}

/// The lens rows of the run, as its answer gave them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SavedResults {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub logit_lens: Vec<LensRow>,
}

/// Where the model's weights came from, and their hash at save time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SavedSource {
    /// dir, gguf or hub.
    pub kind: String,
    pub location: String,
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub stored_dtype: String,
    /// SHA-256 over the weight files, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
}

impl From<&SourceInfo> for SavedSource {
    fn from(s: &SourceInfo) -> Self {
        SavedSource {
            kind: s.kind.to_owned(),
            location: s.location.clone(),
            revision: s.revision.clone(),
            commit: s.commit.clone(),
            stored_dtype: s.stored_dtype.clone(),
            weights_sha256: None,
        }
    }
}

/// The app that saved it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppInfo {
    pub name: String,
    pub version: String,
}

impl SessionConfig {
    /// The config of a run of `req` on `model` (served as `backend`) that
    /// answered `answer`: the original's fields, then what reproduces the run.
    pub fn of_run(
        model: &LoadedModel,
        backend: Backend,
        req: &InferenceRequest,
        answer: &InferenceResponse,
        state: &RunState,
    ) -> Self {
        SessionConfig {
            version: CONFIG_VERSION,
            text: req.text.clone(),
            interventions: interventions_json(&req.interventions),
            lens_type: req.lens_type,
            model_name: Some(model.name.clone()),
            backend,
            apply_chat_template: req.apply_chat_template,
            results: Some(SavedResults {
                text: answer.text.clone(),
                logit_lens: answer.logit_lens.clone(),
            }),
            return_attention: req.return_attention,
            input_ids: Some(state.ids.clone()),
            input_tokens: Some(answer.input_tokens.clone()),
            model_source: Some(SavedSource::from(&model.source)),
            compute_dtype: Some(dtype_name(model)),
            lens: Some(state.lens),
            // Which lens drew the rows, and for a tuned one its folder.
            tuned_lens: (state.lens == Lens::Tuned)
                .then(|| model.tuned_lens().map(|l| l.dir.display().to_string()))
                .flatten(),
            generated_ids: None,
            prompt_tokens: None,
            app: Some(AppInfo {
                name: "logitlens".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            }),
            other: Map::new(),
        }
    }

    /// The rows' names as the client saw them, when the config has results.
    pub fn row_names(&self) -> Option<Vec<String>> {
        self.results.as_ref().map(|r| {
            r.logit_lens
                .iter()
                .map(|row| row.layer_name.clone())
                .collect()
        })
    }
}
