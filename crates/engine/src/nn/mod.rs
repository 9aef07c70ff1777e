//! The building blocks the transformer is made of, in the spirit of
//! candle-nn: linear projections, norms, the MLP, rotary embeddings, the
//! attention core with its blocking mask, the hook runner that applies
//! interventions to the streams between them, and where weights come from
//! (widened, or kept as stored).

mod attend;
mod hook_runner;
mod linear;
mod mlp;
mod norm;
mod record;
pub mod rope;
pub mod weights;

pub(crate) use attend::{attend, repeat_kv, Attended, AttnMask};
pub(crate) use hook_runner::{with_row, HookRunner};
pub(crate) use linear::Linear;
pub use mlp::Activation;
pub(crate) use mlp::Mlp;
pub(crate) use norm::Norm;
pub use norm::NormKind;
pub(crate) use record::Mode;
pub use rope::Llama3RopeScaling;
pub use weights::{Form, Matrix, Stored, TensorSource, Weights};
