//! The JSON of `POST /lens_vector`: what a token's Jacobian-lens vector
//! says at each layer the lens covers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::lens::jacobian::JacobianLens;
use crate::lens::Prediction;
use crate::load::LoadedModel;
use crate::ops::token_id;

fn ten() -> usize {
    10
}

/// The body of `POST /lens_vector`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LensVectorQuery {
    /// A string that is exactly one token (encoded without BOS), or an id.
    #[cfg_attr(feature = "openapi", schema(value_type = super::TrackToken))]
    pub token: Value,
    /// How many tokens to list per layer (1 to 50, default 10).
    #[serde(default = "ten")]
    pub k: usize,
}

/// One layer's lens vector of the token, read through the logit lens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LensVectorLayer {
    pub layer: usize,
    /// The lens row it belongs to ("Layer ℓ").
    pub layer_name: String,
    /// ‖v‖: how strongly the layer's state must point along it to move
    /// the token's logit.
    pub norm: f64,
    /// The top tokens of the model's own head on the vector (final norm,
    /// unembedding, soft-cap): what the direction says.
    pub top: Vec<Prediction>,
}

/// The body `POST /lens_vector` answers with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LensVectorResponse {
    pub token_id: u32,
    /// The token as `decode([token_id])` gives it.
    pub token: String,
    /// One per layer the lens covers, ascending.
    pub layers: Vec<LensVectorLayer>,
}

impl LensVectorResponse {
    /// The lens vectors v = J_ℓᵀ W_U[:, t] of the token `q` names, each
    /// read back through the model's head.
    pub fn new(model: &LoadedModel, lens: &JacobianLens, q: &LensVectorQuery) -> Result<Self> {
        if !(1..=50).contains(&q.k) {
            return Err(crate::invalid!("k is {}; list 1 to 50 tokens", q.k));
        }
        let id = token_id(model, &q.token, "token")?;
        let row = model.model.unembedding_rows(&[id])?;
        let tok = &model.tokenizer;
        let layers = lens
            .source_layers
            .iter()
            .map(|&layer| {
                let v = lens.lens_vectors(layer, &row)?;
                let norm = v.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt();
                let logits = model.model.unembed(&v.to_dtype(model.model.dtype())?)?;
                let logits = logits.flatten_all()?.to_vec1::<f32>()?;
                let top = top_k(&logits, q.k)
                    .into_iter()
                    .map(|(id, prob)| {
                        Ok(Prediction {
                            token: tok.decode_one(id)?,
                            prob,
                            id,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(LensVectorLayer {
                    layer,
                    layer_name: format!("Layer {layer}"),
                    norm: f64::from(norm),
                    top,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LensVectorResponse {
            token_id: id,
            token: tok.decode_one(id)?,
            layers,
        })
    }
}

/// The `k` most probable ids of softmax(`logits`), most probable first
/// (ties to the lower id), with their probabilities (sums in f64).
fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f64)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let z: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let by_logit = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    let k = k.min(idx.len());
    if k < idx.len() {
        idx.select_nth_unstable_by(k, by_logit);
        idx.truncate(k);
    }
    idx.sort_by(by_logit);
    idx.into_iter()
        .map(|i| (i as u32, f64::from(logits[i] - max).exp() / z))
        .collect()
}
