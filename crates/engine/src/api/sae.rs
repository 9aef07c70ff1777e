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
