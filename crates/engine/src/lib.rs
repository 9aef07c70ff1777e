//! logitlens-engine: a hooked Llama/Qwen3 forward pass on candle with the
//! logit lens, stream interventions and attention blocking. No HTTP here:
//! the CLI and the server both drive [`LoadedModel::run`].

pub mod analysis;
pub mod api;
pub mod attention;
pub mod backend;
pub mod config;
pub mod default_model;
pub mod engine;
pub mod error;
pub mod gguf;
pub mod gguf_tokenizer;
pub mod hooked;
pub mod hooks;
pub mod lens;
pub mod model;
pub(crate) mod ops;
pub mod source;
pub mod tokenizer;
pub mod topk;
mod weights;

pub use api::{
    InferenceRequest, InferenceResponse, InterventionConfig, Interventions, LensRow, LensType,
    Prediction,
};
pub use backend::{BackendKind, Model, ModelInfo};
pub use config::{Arch, ModelConfig};
pub use engine::{LoadEvent, LoadOptions, LoadedModel, RunOutput, SourceInfo, Timings};
pub use error::{EngineError, Result};
pub use model::ComputeDtype;
