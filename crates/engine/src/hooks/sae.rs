//! Interventions made through a sparse autoencoder attached to the model,
//! at the hook it reads (SAELens's definitions):
//!
//! - `sae_splice` (`sae`): the activation replaced by its reconstruction.
//! - `sae_ablate` (`sae`, `feature`): the feature's share of the
//!   reconstruction taken out, `x − (decode(f) − decode(f with f_F = 0))`;
//!   the reconstruction error stays.
//! - `sae_clamp` (`sae`, `feature`, `value`): the same with `f_F` set to
//!   `value`.
//! - `sae_steer` (`sae`, `feature`, `value`): `x + value·W_dec[F]`.
//!
//! The SAEs come from an [`SaeProvider`] the operations layer provides.

use std::sync::Arc;

use candle_core::Tensor;

use crate::error::Result;
use crate::invalid;

use super::{HookPoint, InterventionConfig};

/// An SAE as the forward pass uses it.
pub trait SaeCodec: Send + Sync {
    fn name(&self) -> &str;
    /// The hook it reads.
    fn hook(&self) -> HookPoint;
    fn d_sae(&self) -> usize;
    /// `edit` on every row of `x: [T, D]`, in `x`'s dtype.
    fn apply(&self, edit: &SaeEdit, x: &Tensor) -> Result<Tensor>;
}

/// The SAEs attached to the model.
pub trait SaeProvider {
    fn sae(&self, name: &str) -> Option<Arc<dyn SaeCodec>>;
    /// Their names, in the order they were attached.
    fn names(&self) -> Vec<String>;
}

/// What an operation does through its SAE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SaeEdit {
    Splice,
    Ablate { feature: u32 },
    Clamp { feature: u32, value: f32 },
    Steer { feature: u32, value: f32 },
}

/// One SAE operation, its SAE resolved.
#[derive(Clone)]
pub struct SaeOp {
    pub sae: Arc<dyn SaeCodec>,
    pub edit: SaeEdit,
}

impl SaeOp {
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        self.sae.apply(&self.edit, x)
    }
}

impl std::fmt::Debug for SaeOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SaeOp({}, {:?})", self.sae.name(), self.edit)
    }
}

/// The same SAE (not only the same name: one attached again under its name
/// is another) and the same edit.
impl PartialEq for SaeOp {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.sae), Arc::as_ptr(&other.sae))
            && self.edit == other.edit
    }
}

/// The operation types made through an SAE.
pub(super) const KINDS: [&str; 4] = ["sae_splice", "sae_ablate", "sae_clamp", "sae_steer"];

/// `cfg` (one of [`KINDS`]) under `key`, which names hook `at`.
pub(super) fn op(
    cfg: &InterventionConfig,
    key: &str,
    at: HookPoint,
    all_layers: bool,
    saes: Option<&dyn SaeProvider>,
) -> Result<SaeOp> {
    let kind = cfg.kind.as_str();
    let names = saes.map(|s| s.names()).unwrap_or_default();
    let Some(saes) = saes.filter(|_| !names.is_empty()) else {
        return Err(invalid!(
            "intervention {key:?}: {kind} works through a sparse autoencoder, but none is attached \
             to this model; attach one first (--sae DIR, or POST /load_sae)"
        ));
    };
    let name = cfg.sae.as_deref().ok_or_else(|| {
        invalid!(
            "intervention {key:?}: {kind} needs `sae`, the name of an attached SAE ({})",
            names.join(", ")
        )
    })?;
    let sae = saes.sae(name).ok_or_else(|| {
        invalid!(
            "intervention {key:?}: no SAE named {name:?} is attached (attached: {})",
            names.join(", ")
        )
    })?;
    if all_layers {
        return Err(invalid!(
            "intervention {key:?}: {kind} acts at the one hook its SAE reads ({}); not at every layer",
            sae.hook()
        ));
    }
    if at != sae.hook() {
        return Err(invalid!(
            "intervention {key:?}: SAE {name:?} reads {}, not {at}; put {kind} under the key {}",
            sae.hook(),
            sae.hook()
        ));
    }
    let feature = || -> Result<u32> {
        let f = cfg.feature.ok_or_else(|| {
            invalid!("intervention {key:?}: {kind} needs `feature`, a feature id of SAE {name:?}")
        })?;
        if f as usize >= sae.d_sae() {
            return Err(invalid!(
                "intervention {key:?}: feature {f} is out of range: SAE {name:?} has {} features (0..{})",
                sae.d_sae(),
                sae.d_sae() - 1
            ));
        }
        Ok(f)
    };
    let value = || -> Result<f32> {
        let v = cfg
            .value
            .ok_or_else(|| invalid!("intervention {key:?}: {kind} needs a numeric `value`"))?;
        super::finite(v, "value", key)
    };
    let edit = match kind {
        "sae_splice" => SaeEdit::Splice,
        "sae_ablate" => SaeEdit::Ablate {
            feature: feature()?,
        },
        "sae_clamp" => SaeEdit::Clamp {
            feature: feature()?,
            value: value()?,
        },
        "sae_steer" => SaeEdit::Steer {
            feature: feature()?,
            value: value()?,
        },
        other => unreachable!("{other} is not an SAE kind"),
    };
    Ok(SaeOp { sae, edit })
}
