//! Activation analysis: norms and cosine similarities of the captured
//! states, per lens row and position, and the norms of what each layer's
//! attention and MLP add. Computed from the same tensors tensors.npz saves.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::capture::{Capture, State};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Analysis {
    /// `[row][position]` L2 norm of the residual stream state the row shows.
    pub resid_norm: Vec<Vec<f64>>,
    /// `[row][position]` cosine similarity to the previous row's state
    /// (null for the first row, or where either state is all zeros).
    pub cos_prev: Vec<Vec<Option<f64>>>,
    /// `[row][position]` cosine similarity to the final row's state.
    pub cos_final: Vec<Vec<Option<f64>>>,
    /// `[layer][position]` L2 norm of what attention adds.
    pub attn_out_norm: Vec<Vec<f64>>,
    /// `[layer][position]` L2 norm of what the MLP adds.
    pub mlp_out_norm: Vec<Vec<f64>>,
}

fn f64s(t: &Tensor) -> Result<Tensor> {
    Ok(t.to_dtype(DType::F64)?)
}

/// Per-position L2 norms of `[T, D]`.
fn norms(t: &Tensor) -> Result<Vec<f64>> {
    Ok(f64s(t)?.sqr()?.sum(1)?.sqrt()?.to_vec1::<f64>()?)
}

/// Per-position cosine similarity of two `[T, D]` states.
fn cosines(a: &Tensor, b: &Tensor) -> Result<Vec<Option<f64>>> {
    let (a, b) = (f64s(a)?, f64s(b)?);
    let dots = (&a * &b)?.sum(1)?.to_vec1::<f64>()?;
    let (na, nb) = (norms(&a)?, norms(&b)?);
    Ok(dots
        .iter()
        .zip(na.iter().zip(&nb))
        .map(|(d, (x, y))| (*x > 0.0 && *y > 0.0).then(|| (d / (x * y)).clamp(-1.0, 1.0)))
        .collect())
}

/// The analysis of `rows` (the lens rows' states, in order).
pub fn analyse(cap: &Capture, rows: &[State]) -> Result<Analysis> {
    let states: Vec<&Tensor> = rows.iter().map(|s| cap.state(*s)).collect();
    let last = *states.last().expect("the lens has rows");
    let mut cos_prev = Vec::with_capacity(states.len());
    for (i, s) in states.iter().enumerate() {
        cos_prev.push(match i {
            0 => vec![None; s.dim(0)?],
            _ => cosines(states[i - 1], s)?,
        });
    }
    Ok(Analysis {
        resid_norm: states.iter().map(|s| norms(s)).collect::<Result<_>>()?,
        cos_prev,
        cos_final: states
            .iter()
            .map(|s| cosines(s, last))
            .collect::<Result<_>>()?,
        attn_out_norm: cap.attn_out.iter().map(norms).collect::<Result<_>>()?,
        mlp_out_norm: cap.mlp_out.iter().map(norms).collect::<Result<_>>()?,
    })
}
