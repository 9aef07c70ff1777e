//! The building blocks the transformer is made of, in the spirit of
//! candle-nn: linear projections, norms, the MLP, rotary embeddings, the
//! attention core with its blocking mask, the hook runner that applies
//! interventions to the streams between them, and where weights come from
//! (widened, or kept as stored).

mod attention;
mod hook_runner;
mod linear;
mod mlp;
mod norm;
pub mod rope;
mod tuned_lens;
mod unembed_hash;
pub mod weights;

pub(crate) use attention::{attend, repeat_kv, Attended, AttnMask};
pub(crate) use hook_runner::{with_row, HookRunner};
pub(crate) use linear::Linear;
pub use mlp::Activation;
pub(crate) use mlp::Mlp;
pub(crate) use norm::Norm;
pub use norm::NormKind;
pub use rope::Llama3RopeScaling;
pub use tuned_lens::{TunedLens, TunedLensConfig};
pub use unembed_hash::{unembed_hash, unembed_hash_of_rows};
pub use weights::{Form, Matrix, Stored, TensorSource, Weights};
