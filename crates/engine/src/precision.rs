//! The precision the forward pass computes in and how a model's weights
//! are held: the two choices a load makes about numbers.

use candle_core::DType;

/// The precision the forward pass runs in.
///
/// transformers' float32 results carry their own rounding error of about
/// 1e-5 on the tiny test models; an f32 forward of ours adds as much again
/// (another summation order) and misses a 1e-5 bar by a hair, an f64 one
/// adds almost nothing. So under `Auto` test-sized models (at most
/// [`F64_MAX_PARAMS`] parameters, where f64 costs nothing noticeable) run
/// in f64, and real models run in f32: SmolLM2-135M in f32 is within 2e-5
/// of transformers (its bar is 1e-4), at half the memory and forward time of
/// f64. `F64` is there for anyone who wants it. The lens projection is f32
/// either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComputeDtype {
    #[default]
    Auto,
    F32,
    F64,
}

/// The largest model `ComputeDtype::Auto` runs in f64.
pub const F64_MAX_PARAMS: usize = 20_000_000;

impl ComputeDtype {
    pub const NAMES: &'static str = "auto, f32, f64";

    /// The dtype this choice means for a model of `params` parameters.
    pub fn resolve(self, params: usize) -> DType {
        match self {
            ComputeDtype::F32 => DType::F32,
            ComputeDtype::F64 => DType::F64,
            ComputeDtype::Auto if params <= F64_MAX_PARAMS => DType::F64,
            ComputeDtype::Auto => DType::F32,
        }
    }
}

impl std::str::FromStr for ComputeDtype {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(ComputeDtype::Auto),
            "f32" => Ok(ComputeDtype::F32),
            "f64" => Ok(ComputeDtype::F64),
            _ => Err(format!("{s:?} is not one of {}", Self::NAMES)),
        }
    }
}

/// How a model's weights are held once loaded.
///
/// `F32` widens every weight to the compute dtype (f32; f64 for tiny models
/// under `ComputeDtype::Auto`), as logitlens always did: the small models'
/// tolerances are measured that way. `Stored` keeps the big matrices as the
/// checkpoint stores them (bf16, f16, GGUF's quantized blocks) and widens a
/// slice at a time while multiplying, with activations and sums in f32: an
/// 8B model in bf16 takes its 16 GB, not 32. `Auto` widens when the wide
/// copy takes under 40% of the memory available, and keeps them stored
/// otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum WeightsMode {
    #[default]
    Auto,
    F32,
    Stored,
}

impl WeightsMode {
    pub const NAMES: &'static str = "auto, f32, stored";
    /// `Auto` widens when the wide copy takes at most this share of the
    /// memory available.
    pub const AUTO_WIDEN_SHARE: f64 = 0.4;
}

impl std::str::FromStr for WeightsMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(WeightsMode::Auto),
            "f32" => Ok(WeightsMode::F32),
            "stored" => Ok(WeightsMode::Stored),
            _ => Err(format!("{s:?} is not one of {}", Self::NAMES)),
        }
    }
}
