//! The JSON of the Jacobian lens's routes: `POST /fit_jlens` (a fit on the
//! model in service) and `POST /lens_vector` (what a token's lens vector
//! says at each layer the lens covers).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::lens::jacobian::JacobianLens;
use crate::lens::Prediction;
use crate::load::LoadedModel;
use crate::ops::fit_jlens::{
    JacobianSums, JlensFitRequest, DEFAULT_DIM_BATCH, DEFAULT_MAX_SEQ_LEN, DEFAULT_SKIP_FIRST,
};
use crate::ops::token_id;

fn ten() -> usize {
    10
}

fn max_seq_len() -> usize {
    DEFAULT_MAX_SEQ_LEN
}

fn skip_first() -> usize {
    DEFAULT_SKIP_FIRST
}

fn dim_batch() -> usize {
    DEFAULT_DIM_BATCH
}

/// The body of `POST /fit_jlens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FitJlensQuery {
    /// The prompts: one document per line (blank lines skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corpus: Option<String>,
    /// Instead of `corpus`: this many documents sampled from the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<usize>,
    /// Seed of a sampled corpus (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Fit on the corpus's first this many documents (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prompts: Option<usize>,
    /// Each prompt's first ids (default 128).
    #[serde(default = "max_seq_len")]
    pub max_seq_len: usize,
    /// Leading positions left out of each prompt's average (default 16).
    #[serde(default = "skip_first")]
    pub skip_first: usize,
    /// Output dimensions per backward pass (default 8).
    #[serde(default = "dim_batch")]
    pub dim_batch: usize,
    /// Continue the fit this server keeps from a stopped one (GET
    /// /fit_jlens) instead of starting afresh; the same corpus and settings.
    #[serde(default)]
    pub resume: bool,
}

impl TryFrom<FitJlensQuery> for JlensFitRequest {
    type Error = crate::EngineError;

    /// The fit asked for (a resumed one's sums are the server's to give).
    fn try_from(q: FitJlensQuery) -> Result<Self> {
        Ok(JlensFitRequest {
            corpus: super::eval::corpus_of(q.corpus, q.sample, q.seed)?,
            max_prompts: q.max_prompts,
            max_seq_len: q.max_seq_len,
            skip_first: q.skip_first,
            dim_batch: q.dim_batch,
            resume: None,
            shard: None,
        })
    }
}

/// A fit this server keeps: the sums of a stopped one, which a fit with
/// `resume` continues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FitCheckpoint {
    /// Prompts in its sums.
    pub n_done: usize,
    /// Prompts the stopped fit was to consider in all.
    pub total: usize,
    /// The corpus index it continues at.
    pub next: usize,
    pub max_seq_len: usize,
    pub skip_first: usize,
    pub dim_batch: usize,
    /// What its corpus was.
    pub corpus: String,
}

impl FitCheckpoint {
    /// The sums a stopped fit of `total` prompts left.
    pub fn of(s: &JacobianSums, total: usize) -> Self {
        FitCheckpoint {
            n_done: s.n_done,
            total,
            next: s.next,
            max_seq_len: s.settings.max_seq_len,
            skip_first: s.settings.skip_first,
            dim_batch: s.settings.dim_batch,
            corpus: s.settings.corpus.clone(),
        }
    }
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
