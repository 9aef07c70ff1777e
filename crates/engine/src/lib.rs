//! logitlens-engine: one hooked transformer on candle for the families
//! researchers study, with the logit, tuned and Jacobian lenses, stream
//! interventions (the Jacobian lens's among them) and attention blocking.
//! No HTTP here: the CLI and the server both drive the same operations
//! ([`ops::Operation`]: check, cost, run).
//!
//! Layers, each importing only those above it in this list:
//! `error`, `capture`, `precision`, `watch` (what a forward pass records,
//! its numbers, progress and cancellation) -> `hooks` (hook points, the
//! intervention plan) -> `nn` (linear, norms, MLP, RoPE, attention core,
//! hook runner) -> `model` (config, family descriptors, profiles, the
//! transformer) -> `sae` (sparse autoencoders) -> `tokenizer` -> `lens` (rows, the projection in steps,
//! tuned and Jacobian lenses) -> `load` (the loaded model and its attached
//! lenses and SAEs) -> `analysis`, `attention` -> `ops` (the heavy operations: a
//! run, a generation, a patching sweep, a lens evaluation, a lens fit) ->
//! `api` (wire types).

pub mod analysis;
pub mod api;
pub mod attention;
pub mod capture;
pub mod error;
pub mod hooks;
pub mod lens;
pub mod load;
pub mod model;
pub mod nn;
pub mod ops;
pub mod precision;
pub mod sae;
pub mod tokenizer;
pub mod watch;

pub use api::{InferenceRequest, InferenceResponse};
pub use capture::{Capture, State};
pub use error::{EngineError, Result};
pub use hooks::{InterventionConfig, Interventions};
pub use lens::{Lens, LensRow, LensType, Prediction};
pub use load::{default_model, LoadEvent, LoadOptions, LoadedModel, SourceInfo};
pub use model::{BackendKind, Config, KvCache, ModelInfo, Transformer};
pub use ops::{
    execute, execute_with, Answer, Context, Cost, Limits, Operation, RunOutput, RunRequest,
    RunSpec, RunState, Timings,
};
pub use precision::{ComputeDtype, WeightsMode};
