//! What the attached SAEs read in a run: at each position, the features
//! active at the SAE's hook (after the interventions there, as the lens
//! rows are), its L0 and its reconstruction error; and what a feature
//! says, read through the unembedding (`W_dec[f] · W_Uᵀ`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::capture::Capture;
use crate::capture::State;
use crate::error::{EngineError, Result};
use crate::hooks::{HookPoint, InterventionPlan};
use crate::lens::{rows, LensType};
use crate::load::LoadedModel;
use crate::sae::Sae;

/// Which SAEs a run reads: `true` for all attached, or their names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum SaeSelection {
    All(bool),
    Names(Vec<String>),
}

/// Features listed per position when a request does not say.
pub const DEFAULT_SAE_TOP_K: usize = 8;

/// One feature at one position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SaeFeature {
    pub id: u32,
    pub act: f32,
}

/// One position's features: the strongest (all active ones with
/// `sae_top_k: 0`), by activation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SaePosition {
    pub features: Vec<SaeFeature>,
    /// How many features are active (all of them, listed or not).
    pub l0: usize,
    /// ‖x − x̂‖: how far the reconstruction is from the activation.
    pub recon_error: f32,
}

/// What one SAE reads over a run's positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SaeReadout {
    pub name: String,
    /// The hook it reads (TransformerLens's name).
    pub hook: String,
    /// standard, jumprelu or topk.
    pub architecture: String,
    pub d_sae: usize,
    /// The lens row showing the state the hook reads, for placing the
    /// features in a grid: the block output a resid_pre, resid_post or
    /// mlp_out hook reads or ends in; the post-attention row of a
    /// resid_mid or attn_out hook when the lens type shows one, else its
    /// block's output; Embeddings for the embedding hooks.
    pub row: String,
    pub positions: Vec<SaePosition>,
}

/// The SAEs a request reads, checked.
#[derive(Clone)]
pub(crate) struct SaeRead {
    pub saes: Vec<Arc<Sae>>,
    /// Features listed per position (0: every active one).
    pub top_k: usize,
}

impl std::fmt::Debug for SaeRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.saes.iter().map(|s| s.name.as_str()).collect();
        write!(f, "SaeRead({names:?}, top {})", self.top_k)
    }
}

impl PartialEq for SaeRead {
    fn eq(&self, other: &Self) -> bool {
        self.top_k == other.top_k
            && self.saes.len() == other.saes.len()
            && self
                .saes
                .iter()
                .zip(&other.saes)
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

/// The SAEs `sel` names on `model`, refused in words when it names none
/// attached; `top_k` only with a selection.
pub(crate) fn check_read(
    model: &LoadedModel,
    sel: Option<&SaeSelection>,
    top_k: Option<usize>,
) -> Result<Option<SaeRead>> {
    let attached = model.saes();
    let saes = match sel {
        None | Some(SaeSelection::All(false)) => {
            if top_k.is_some() {
                return Err(EngineError::InvalidRequest(
                    "sae_top_k needs sae (true, or the names of attached SAEs)".into(),
                ));
            }
            return Ok(None);
        }
        Some(SaeSelection::All(true)) => {
            if attached.is_empty() {
                return Err(EngineError::InvalidRequest(
                    "sae: true reads the attached SAEs, but none is attached; attach one first \
                     (--sae DIR, or POST /load_sae)"
                        .into(),
                ));
            }
            attached.clone()
        }
        Some(SaeSelection::Names(list)) => {
            if list.is_empty() {
                return Err(EngineError::InvalidRequest(
                    "sae: an empty list reads nothing; name attached SAEs, or give true".into(),
                ));
            }
            list.iter()
                .map(|n| model.attached_sae(n))
                .collect::<Result<_>>()?
        }
    };
    Ok(Some(SaeRead {
        saes,
        top_k: top_k.unwrap_or(DEFAULT_SAE_TOP_K),
    }))
}

/// What `hook` holds in a run of `ids` that captured `cap` under `plan`.
pub(crate) fn hook_state(
    model: &LoadedModel,
    cap: &Capture,
    ids: &[u32],
    plan: &InterventionPlan,
    hook: HookPoint,
) -> Result<candle_core::Tensor> {
    Ok(match hook {
        HookPoint::ResidPre(l) => cap.resid[l].clone(),
        HookPoint::ResidPost(l) => cap.resid[l + 1].clone(),
        HookPoint::ResidMid(l) => cap.post_attn[l].clone(),
        HookPoint::AttnOut(l) => cap.attn_out[l].clone(),
        HookPoint::MlpOut(l) => cap.mlp_out[l].clone(),
        HookPoint::Embed => model.model.embed_hook_states(ids, plan)?.0,
        HookPoint::PosEmbed => model.model.embed_hook_states(ids, plan)?.1.ok_or_else(|| {
            EngineError::InvalidRequest("this model has no learned position embeddings".into())
        })?,
        HookPoint::AttnScores(_) => {
            return Err(EngineError::InvalidRequest(format!(
                "{hook} holds attention scores, not an activation an SAE reads"
            )))
        }
    })
}

/// The name of the row of `lens` (on an `n_layers` model) that shows the
/// state `hook` reads.
pub fn row_of(hook: HookPoint, lens: LensType, n_layers: usize) -> String {
    let shown = rows(lens, n_layers);
    let name = |state: State| {
        shown
            .iter()
            .find(|(_, s)| *s == state)
            .map(|(name, _)| name.clone())
    };
    let block_out = |l: usize| name(State::Resid(l)).unwrap_or_default();
    match hook {
        HookPoint::Embed | HookPoint::PosEmbed => block_out(0),
        HookPoint::ResidPre(l) => block_out(l),
        HookPoint::ResidPost(l) | HookPoint::MlpOut(l) | HookPoint::AttnScores(l) => {
            block_out(l + 1)
        }
        HookPoint::ResidMid(l) | HookPoint::AttnOut(l) => {
            name(State::PostAttn(l)).unwrap_or_else(|| block_out(l + 1))
        }
    }
}

/// Each SAE's features over the run, placed under the rows of `lens`.
pub(crate) fn read(
    model: &LoadedModel,
    read: &SaeRead,
    cap: &Capture,
    ids: &[u32],
    plan: &InterventionPlan,
    lens: LensType,
) -> Result<Vec<SaeReadout>> {
    let n_layers = model.config().n_layers;
    read.saes
        .iter()
        .map(|sae| {
            let x = hook_state(model, cap, ids, plan, sae.hook)?;
            let rows = sae.encode(&x)?;
            let k = if read.top_k == 0 {
                usize::MAX
            } else {
                read.top_k
            };
            Ok(SaeReadout {
                name: sae.name.clone(),
                hook: sae.hook.to_string(),
                architecture: sae.settings.architecture.name().into(),
                d_sae: sae.d_sae(),
                row: row_of(sae.hook, lens, n_layers),
                positions: rows
                    .into_iter()
                    .map(|r| SaePosition {
                        l0: r.ids.len(),
                        features: r
                            .ids
                            .iter()
                            .zip(&r.acts)
                            .take(k)
                            .map(|(&id, &act)| SaeFeature { id, act })
                            .collect(),
                        recon_error: r.recon_error,
                    })
                    .collect(),
            })
        })
        .collect()
}

/// A vocabulary token and its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenValue {
    pub id: u32,
    pub token: String,
    pub value: f32,
}

/// What a feature says: the tokens its decoder row promotes most
/// (`top_tokens`, descending) and least (`bottom_tokens`, ascending),
/// by `W_dec[f] · W_Uᵀ` (no final norm, as SAELens's logit lens of a
/// feature reads it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeatureTokens {
    pub id: u32,
    /// ‖W_dec[f]‖.
    pub decoder_norm: f32,
    pub top_tokens: Vec<TokenValue>,
    pub bottom_tokens: Vec<TokenValue>,
}

/// The `k` top and bottom tokens of each of `features`.
pub fn feature_tokens(
    model: &LoadedModel,
    sae: &Sae,
    features: &[u32],
    k: usize,
) -> Result<Vec<FeatureTokens>> {
    features
        .iter()
        .map(|&f| {
            sae.check_feature(f as usize)?;
            let row = sae.decoder_row(f as usize)?;
            let logits = model.model.unembed_direction(&row)?;
            let k = k.min(logits.len());
            let value = |id: &u32| logits[*id as usize];
            let pick = |desc: bool| -> Result<Vec<TokenValue>> {
                let mut order: Vec<u32> = (0..logits.len() as u32).collect();
                order.sort_unstable_by(|a, b| {
                    let by_value = if desc {
                        value(b).total_cmp(&value(a))
                    } else {
                        value(a).total_cmp(&value(b))
                    };
                    by_value.then(a.cmp(b))
                });
                order[..k]
                    .iter()
                    .map(|&id| {
                        Ok(TokenValue {
                            id,
                            token: model.tokenizer.decode_one(id)?,
                            value: value(&id),
                        })
                    })
                    .collect()
            };
            Ok(FeatureTokens {
                id: f,
                decoder_norm: sae.decoder_norms()[f as usize],
                top_tokens: pick(true)?,
                bottom_tokens: pick(false)?,
            })
        })
        .collect()
}

/// Each of `features`' activation at every position of a kept run of
/// `model`, read after the run's interventions at the SAE's hook.
pub fn run_activations(
    model: &LoadedModel,
    sae: &Sae,
    features: &[u32],
    run: &super::RunState,
) -> Result<Vec<Vec<f32>>> {
    if run.model_id != model.id {
        return Err(EngineError::InvalidRequest(
            "run_id names a run of another model; run the text again".into(),
        ));
    }
    for &f in features {
        sae.check_feature(f as usize)?;
    }
    let x = hook_state(model, &run.capture, &run.ids, &run.plan, sae.hook)?;
    let rows = sae.encode(&x)?;
    Ok(features
        .iter()
        .map(|&f| rows.iter().map(|r| r.act(f)).collect())
        .collect())
}
