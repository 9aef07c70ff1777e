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
mod panels;
mod record;
pub mod rope;
mod swiglu;
pub mod weights;

pub(crate) use attend::{attend, repeat_kv, Attended, AttnMask};
pub use hook_runner::Rewrite;
pub(crate) use hook_runner::{with_row, with_rows, HookRunner};
pub use linear::pin_thread_count;
pub(crate) use linear::{tune_gemm, Linear};
pub use mlp::Activation;
pub(crate) use mlp::Mlp;
pub(crate) use norm::Norm;
pub use norm::NormKind;
pub(crate) use record::Mode;
pub use rope::Llama3RopeScaling;
pub use weights::{Form, Matrix, Stored, TensorSource, Weights};

use candle_core::Tensor;

use crate::error::{EngineError, Result};

/// Run `f` on the f32 elements of a contiguous CPU tensor without copying
/// them out (a `to_vec1` of the lens logits costs a third of the projection; an
/// SAE's pre-activations are read the same way).
pub(crate) fn with_f32_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        return Err(EngineError::Model("this runs on CPU tensors only".into()));
    };
    let data = cpu.as_slice::<f32>()?;
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| EngineError::Model("a tensor read in place is not contiguous".into()))?;
    Ok(f(&data[start..end]))
}
