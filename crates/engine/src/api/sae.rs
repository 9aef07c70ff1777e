//! The JSON of what the SAEs say: `logitlens sae-features --json` (and the
//! server's feature route).

use serde::{Deserialize, Serialize};

use crate::ops::sae::FeatureTokens;
use crate::sae::Sae;

/// An SAE, by what a reader needs to place its features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SaeInfo {
    pub name: String,
    /// The hook it reads (TransformerLens's name).
    pub hook: String,
    /// standard, jumprelu or topk.
    pub architecture: String,
    pub d_sae: usize,
}

impl From<&Sae> for SaeInfo {
    fn from(s: &Sae) -> Self {
        SaeInfo {
            name: s.name.clone(),
            hook: s.hook.to_string(),
            architecture: s.settings.architecture.name().into(),
            d_sae: s.d_sae(),
        }
    }
}

/// What features say: each one's top and bottom tokens by `W_dec[f]·W_U`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SaeFeaturesResponse {
    pub model_name: String,
    pub sae: SaeInfo,
    pub features: Vec<FeatureTokens>,
}

/// One SAE to attach: a folder on this machine and what to set over its
/// own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SaeSource {
    /// A SAELens folder (cfg.json and sae_weights.safetensors) or a Gemma
    /// Scope folder (params.npz).
    pub path: String,
    /// Its name (default: the folder's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The hook it reads, over what its files say (a Gemma Scope folder
    /// outside the release's layout says nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
    /// Trained on TransformerLens's centred writing weights (its input is
    /// each position's activation minus its mean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub center_writing_weights: Option<bool>,
    /// expected_average_only_in's factor, when the folder has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm_scaling_factor: Option<f64>,
}

impl SaeSource {
    /// Its folder and options.
    pub fn options(&self) -> (std::path::PathBuf, crate::sae::SaeOptions) {
        (
            self.path.clone().into(),
            crate::sae::SaeOptions {
                name: self.name.clone(),
                hook: self.hook.clone(),
                center_writing_weights: self.center_writing_weights,
                norm_scaling_factor: self.norm_scaling_factor,
            },
        )
    }
}

/// The body of `POST /load_sae`: the SAEs to attach, all or none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoadSaeQuery {
    pub saes: Vec<SaeSource>,
}
