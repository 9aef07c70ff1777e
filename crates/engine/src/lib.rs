//! logitlens-engine: one hooked transformer on candle for the families
//! researchers study, with the logit lens, stream interventions and
//! attention blocking. No HTTP here: the CLI and the server both drive
//! [`LoadedModel::run_spec`].
//!
//! Layers, each importing only those above it in this list:
//! `error`, `types` (capture, state, receipt, dtype) -> `hooks` (hook
//! points, intervention plan) -> `nn` (linear, norms, MLP, RoPE, attention,
//! hook runner) -> `model` (config, family descriptors, profiles, the
//! transformer) -> `tokenizer` -> `load` -> `lens`, `analysis`, `attention`
//! -> `run` (checked request, resume, answer) -> `api` (wire types).

pub mod analysis;
pub mod api;
pub mod attention;
pub mod error;
pub mod hooks;
pub mod lens;
pub mod load;
pub mod model;
pub mod nn;
pub mod run;
pub mod tokenizer;
pub mod types;

pub use api::{InferenceRequest, InferenceResponse};
pub use error::{EngineError, Result};
pub use hooks::{InterventionConfig, Interventions};
pub use lens::{LensRow, LensType, Prediction};
pub use load::{default_model, LoadEvent, LoadOptions, LoadedModel, SourceInfo};
pub use model::{BackendKind, Config, KvCache, ModelInfo, Transformer};
pub use run::{
    generate, sample_corpus, Answer, GenerateOptions, Generated, RunOutput, RunRequest, RunSpec,
    RunState, Sampling, Timings,
};
pub use types::{Capture, ComputeDtype, State, WeightsMode};
