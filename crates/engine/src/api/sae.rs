//! The JSON of what the SAEs say: `logitlens sae-features --json` (and the
//! server's feature route).

use serde::{Deserialize, Serialize};

use crate::ops::eval_sae::EvalSaeRequest;
use crate::ops::sae::FeatureTokens;
use crate::ops::sae_corpus::SaeCorpusRequest;
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

impl SaeFeaturesResponse {
    /// What `features` of `sae` say (each one's top and bottom `k` tokens)
    /// and, given a kept run of `model`, their activation at every position
    /// of it.
    pub fn of(
        model: &crate::load::LoadedModel,
        sae: &Sae,
        features: &[u32],
        k: usize,
        run: Option<&crate::ops::RunState>,
    ) -> crate::error::Result<Self> {
        Ok(SaeFeaturesResponse {
            model_name: model.name.clone(),
            sae: SaeInfo::from(sae),
            features: crate::ops::sae::feature_tokens(model, sae, features, k)?,
            activations: run
                .map(|run| crate::ops::sae::run_activations(model, sae, features, run))
                .transpose()?,
        })
    }
}

/// What features say: each one's top and bottom tokens by `W_dec[f]·W_U`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SaeFeaturesResponse {
    pub model_name: String,
    pub sae: SaeInfo,
    pub features: Vec<FeatureTokens>,
    /// With a `run_id`: each feature's activation at every position of
    /// that run, in the order of `features`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activations: Option<Vec<Vec<f32>>>,
}

/// One SAE to attach: a folder on this machine and what to set over its
/// own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SaeSource {
    /// A SAELens folder (cfg.json and sae_weights.safetensors) or a Gemma
    /// Scope folder (params.npz), on this machine or as
    /// `org/name[@revision]:folder` in the Hub cache.
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

/// The body of `POST /unload_sae`: the attached SAEs to take off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UnloadSaeQuery {
    pub names: Vec<String>,
}

fn default_k() -> usize {
    10
}

/// The body of `POST /sae_features`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SaeFeaturesQuery {
    /// An attached SAE's name.
    pub sae: String,
    pub features: Vec<u32>,
    /// Tokens listed at each end (1 to 1000, default 10).
    #[serde(default = "default_k")]
    pub k: usize,
    /// A kept run (`run_id` of an /inference answer): each feature's
    /// activation at every position of it is answered too, read after the
    /// run's interventions at the SAE's hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<u64>,
}

/// Most tokens `sae-features` and `/sae_features` list at each end.
pub const MAX_FEATURE_TOKENS: usize = 1000;

impl SaeFeaturesQuery {
    /// `k` in range, at least one feature.
    pub fn check(&self) -> crate::error::Result<()> {
        if !(1..=MAX_FEATURE_TOKENS).contains(&self.k) {
            return Err(crate::invalid!(
                "k is 1 to {MAX_FEATURE_TOKENS} tokens, not {}",
                self.k
            ));
        }
        if self.features.is_empty() {
            return Err(crate::invalid!("features: name at least one feature id"));
        }
        Ok(())
    }
}

fn default_contexts() -> usize {
    10
}

fn default_window() -> usize {
    8
}

fn yes() -> bool {
    true
}

/// The body of `POST /eval_sae`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EvalSaeQuery {
    /// The attached SAEs to measure (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saes: Option<Vec<String>>,
    /// The corpus: one document per line (blank lines skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corpus: Option<String>,
    /// Instead of `corpus`: this many documents sampled from the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<usize>,
    /// Seed of a sampled corpus (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Each document's first ids (default 128).
    #[serde(default = "super::eval::default_max_tokens")]
    pub max_tokens: usize,
    /// Special-token positions keep their activation in the spliced run
    /// (default true); they are never counted.
    #[serde(default = "yes")]
    pub exclude_special: bool,
}

impl TryFrom<EvalSaeQuery> for EvalSaeRequest {
    type Error = crate::error::EngineError;

    fn try_from(q: EvalSaeQuery) -> crate::error::Result<Self> {
        Ok(EvalSaeRequest {
            corpus: super::eval::corpus_of(q.corpus, q.sample, q.seed)?,
            max_tokens: q.max_tokens,
            saes: q.saes,
            exclude_special: q.exclude_special,
        })
    }
}

/// The body of `POST /sae_feature_corpus`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SaeCorpusQuery {
    /// An attached SAE's name.
    pub sae: String,
    pub feature: u32,
    /// The corpus: one document per line (blank lines skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corpus: Option<String>,
    /// Instead of `corpus`: this many documents sampled from the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<usize>,
    /// Seed of a sampled corpus (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Each document's first ids (default 128).
    #[serde(default = "super::eval::default_max_tokens")]
    pub max_tokens: usize,
    /// Contexts listed, strongest first (1 to 100, default 10).
    #[serde(default = "default_contexts")]
    pub contexts: usize,
    /// Tokens shown each side of the one it fires on (0 to 64, default 8).
    #[serde(default = "default_window")]
    pub window: usize,
}

impl TryFrom<SaeCorpusQuery> for SaeCorpusRequest {
    type Error = crate::error::EngineError;

    fn try_from(q: SaeCorpusQuery) -> crate::error::Result<Self> {
        Ok(SaeCorpusRequest {
            sae: q.sae,
            feature: q.feature,
            corpus: super::eval::corpus_of(q.corpus, q.sample, q.seed)?,
            max_tokens: q.max_tokens,
            contexts: q.contexts,
            window: q.window,
        })
    }
}
