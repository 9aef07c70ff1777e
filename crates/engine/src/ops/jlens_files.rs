//! A Jacobian-lens fit's sums on disk and as a lens: the lens they make
//! (their mean, with the fit's provenance as TransformerLens records it),
//! and the checkpoint a stopped fit leaves (`.safetensors`: `sum.{layer}`
//! in f64, the counts, the shard and the settings in the header), which a
//! resumed fit continues and `merge` combines exactly.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device};
use serde_json::{json, Map, Value as Json};

use crate::error::{EngineError, Result};
use crate::lens::jacobian::JacobianLens;

use super::fit_jlens::{JacobianSums, JlensSettings};

/// The header entry that marks a safetensors file as a fit's sums.
const FORMAT: &str = "jacobian_sums";

impl JacobianSums {
    /// The lens these sums make for the model `model_name` (the mean over
    /// their prompts), its metadata the fit's provenance: TransformerLens's
    /// keys, so its `merge` and `validate_model` read them, and `shard`
    /// when the sums are one shard's.
    pub fn lens(&self, model_name: &str) -> Result<JacobianLens> {
        let s = &self.settings;
        let mut meta = Map::new();
        meta.insert("model_name".into(), model_name.into());
        meta.insert("estimator".into(), "jacobian_lens".into());
        meta.insert(
            "hook_convention".into(),
            "blocks.{layer}.hook_resid_post".into(),
        );
        meta.insert("corpus".into(), s.corpus.clone().into());
        meta.insert("n_prompts".into(), self.n_done.into());
        meta.insert("fit_dtype".into(), "float64".into());
        meta.insert("target_layer".into(), (self.source_layers.len()).into());
        meta.insert("dim_batch".into(), s.dim_batch.into());
        meta.insert("max_seq_len".into(), s.max_seq_len.into());
        meta.insert("skip_first_positions".into(), s.skip_first.into());
        meta.insert(
            "fitted_by".into(),
            concat!("logitlens ", env!("CARGO_PKG_VERSION")).into(),
        );
        if let Some((i, n)) = self.shard {
            meta.insert("shard".into(), format!("{i}/{n}").into());
        }
        let matrices: BTreeMap<usize, _> = self
            .source_layers
            .iter()
            .copied()
            .zip(self.mean()?)
            .collect();
        JacobianLens::new(matrices, self.n_done as u64, self.d_model, meta)
    }

    /// Write the sums as a checkpoint.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors: Vec<(String, candle_core::Tensor)> = self
            .source_layers
            .iter()
            .zip(&self.sums)
            .map(|(l, s)| Ok((format!("sum.{l}"), s.to_dtype(DType::F64)?.contiguous()?)))
            .collect::<Result<_>>()?;
        let s = &self.settings;
        let header = HashMap::from([
            ("format".to_owned(), FORMAT.to_owned()),
            (
                "sums".to_owned(),
                json!({
                    "n_done": self.n_done,
                    "next": self.next,
                    "shard": self.shard,
                    "source_layers": self.source_layers,
                    "d_model": self.d_model,
                    "settings": {
                        "max_seq_len": s.max_seq_len,
                        "skip_first": s.skip_first,
                        "dim_batch": s.dim_batch,
                        "corpus": s.corpus,
                    },
                })
                .to_string(),
            ),
        ]);
        safetensors::serialize_to_file(tensors, Some(header), path)
            .map_err(|e| EngineError::Model(format!("writing {}: {e}", path.display())))
    }

    /// Read a checkpoint [`save`](Self::save) wrote; anything else is
    /// refused in words.
    pub fn load(path: &Path) -> Result<Self> {
        let shown = path.display();
        let bad =
            |e: String| crate::invalid!("{shown} is not a Jacobian-lens fit's checkpoint: {e}");
        let bytes = std::fs::read(path).map_err(|e| crate::invalid!("cannot read {shown}: {e}"))?;
        let (_, meta) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
        let header = meta.metadata().clone().unwrap_or_default();
        if header.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(bad("its header does not say format jacobian_sums".into()));
        }
        let info: Json = header
            .get("sums")
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| bad("its header has no readable sums entry".into()))?;
        let num = |k: &str| {
            info[k]
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| bad(format!("{k} is not a count")))
        };
        let settings: JlensSettings = serde_json::from_value(info["settings"].clone())
            .map_err(|e| bad(format!("settings: {e}")))?;
        let shard: Option<(usize, usize)> = serde_json::from_value(info["shard"].clone())
            .map_err(|e| bad(format!("shard: {e}")))?;
        let source_layers: Vec<usize> = serde_json::from_value(info["source_layers"].clone())
            .map_err(|e| bad(format!("source_layers: {e}")))?;
        let d_model = num("d_model")?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
        let sums = source_layers
            .iter()
            .map(|l| {
                let t = tensors
                    .get(&format!("sum.{l}"))
                    .ok_or_else(|| bad(format!("it has no sum.{l}")))?;
                if t.dims() != [d_model, d_model] {
                    return Err(bad(format!(
                        "sum.{l} is {:?}, not [{d_model}, {d_model}]",
                        t.dims()
                    )));
                }
                Ok(t.to_dtype(DType::F64)?)
            })
            .collect::<Result<_>>()?;
        Ok(JacobianSums {
            sums,
            n_done: num("n_done")?,
            next: num("next")?,
            shard,
            source_layers,
            d_model,
            settings,
        })
    }
}
