//! A Jacobian lens on disk: the `.pt` TransformerLens's `JacobianLens.save`
//! writes (`J` as float16, as the reference implementation stores it), and
//! our own `.safetensors` (`J.{layer}` as float32, the counts and the
//! provenance as strings in the header's metadata).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde_json::{Map, Value as Json};

use crate::error::{EngineError, Result};

use super::pickle::{Out, Storage, Writer};
use super::{pt, JacobianLens};

/// The header entry that marks a safetensors file as a Jacobian lens.
const FORMAT: &str = "jacobian_lens";

/// Write `lens` as TransformerLens's `save` does: `{"J": {layer: float16
/// [d, d]}, "n_prompts", "source_layers", "d_model"}`, plus `"metadata"`
/// when it has any.
pub(super) fn save_pt(lens: &JacobianLens, path: &Path) -> Result<()> {
    let mut storages = Vec::new();
    let mut j = Vec::new();
    for (i, (&layer, m)) in lens.matrices.iter().enumerate() {
        let halves = m
            .to_dtype(DType::F16)?
            .flatten_all()?
            .to_vec1::<half::f16>()?;
        let bytes = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
        storages.push((i.to_string(), bytes));
        j.push((
            Out::Int(layer as i64),
            Out::Tensor {
                storage: Storage::Half,
                key: i.to_string(),
                size: m.dims().to_vec(),
            },
        ));
    }
    let layers = lens
        .source_layers
        .iter()
        .map(|&l| Out::Int(l as i64))
        .collect();
    let metadata = Json::Object(lens.metadata.clone());
    let mut payload = vec![
        (Out::Str("J"), Out::Dict(j)),
        (Out::Str("n_prompts"), Out::Int(count(lens.n_prompts)?)),
        (Out::Str("source_layers"), Out::List(layers)),
        (Out::Str("d_model"), Out::Int(lens.d_model as i64)),
    ];
    if !lens.metadata.is_empty() {
        payload.push((Out::Str("metadata"), out(&metadata)?));
    }
    let pickle = Writer::new().finish(&Out::Dict(payload));
    pt::write(path, &pickle, &storages)
}

fn count(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| crate::invalid!("n_prompts {n} is beyond a 64-bit int"))
}

/// A metadata value as the pickle writes it.
fn out(v: &Json) -> Result<Out<'_>> {
    Ok(match v {
        Json::Null => Out::None,
        Json::Bool(b) => Out::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Out::Int(i),
            (None, Some(f)) if !n.is_u64() => Out::Float(f),
            _ => {
                return Err(crate::invalid!(
                    "metadata number {n} is beyond a 64-bit int"
                ))
            }
        },
        Json::String(s) => Out::Str(s),
        Json::Array(xs) => Out::List(xs.iter().map(out).collect::<Result<_>>()?),
        Json::Object(m) => Out::Dict(
            m.iter()
                .map(|(k, x)| Ok((Out::Str(k), out(x)?)))
                .collect::<Result<_>>()?,
        ),
    })
}

/// Write `lens` as safetensors: `J.{layer}` float32, and in the header
/// `format`, `n_prompts`, `d_model`, `source_layers` and `metadata` (JSON).
pub(super) fn save_safetensors(lens: &JacobianLens, path: &Path) -> Result<()> {
    let tensors: Vec<(String, Tensor)> = lens
        .matrices
        .iter()
        .map(|(l, m)| Ok((format!("J.{l}"), m.to_dtype(DType::F32)?.contiguous()?)))
        .collect::<Result<_>>()?;
    let header = HashMap::from([
        ("format".to_owned(), FORMAT.to_owned()),
        ("n_prompts".to_owned(), lens.n_prompts.to_string()),
        ("d_model".to_owned(), lens.d_model.to_string()),
        (
            "source_layers".to_owned(),
            Json::from(lens.source_layers.clone()).to_string(),
        ),
        (
            "metadata".to_owned(),
            Json::Object(lens.metadata.clone()).to_string(),
        ),
    ]);
    safetensors::serialize_to_file(tensors, Some(header), path)
        .map_err(|e| EngineError::Model(format!("writing {}: {e}", path.display())))?;
    Ok(())
}

/// Read a lens written by [`save_safetensors`] (or any file of `J.{layer}`
/// matrices: counts absent are 0, `d_model` the matrices' own).
pub(super) fn load_safetensors(path: &Path) -> Result<JacobianLens> {
    let shown = path.display();
    let bytes = std::fs::read(path)?;
    let bad = |e: String| crate::invalid!("{shown} is not a Jacobian lens's safetensors: {e}");
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let info = header.metadata().clone().unwrap_or_default();
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| bad(e.to_string()))?;
    let mut matrices = BTreeMap::new();
    for (name, t) in tensors {
        let layer = name
            .strip_prefix("J.")
            .and_then(|l| l.parse::<usize>().ok())
            .ok_or_else(|| {
                bad(format!(
                    "it has a tensor {name:?}; a lens has only J.{{layer}}"
                ))
            })?;
        matrices.insert(layer, t.to_dtype(DType::F32)?);
    }
    let number = |key: &str| -> Result<Option<u64>> {
        info.get(key)
            .map(|s| {
                s.parse::<u64>()
                    .map_err(|_| bad(format!("its {key} is {s:?}")))
            })
            .transpose()
    };
    let inferred = matrices.values().next().map(|m| m.dim(0)).transpose()?;
    let d_model = match (number("d_model")?, inferred) {
        (Some(d), _) => d as usize,
        (None, Some(d)) => d,
        (None, None) => return Err(bad("it has no J.{layer} matrices".into())),
    };
    let metadata = match info.get("metadata") {
        None => Map::new(),
        Some(s) => match serde_json::from_str::<Json>(s) {
            Ok(Json::Object(m)) => m,
            _ => return Err(bad(format!("its metadata {s:?} is not a JSON object"))),
        },
    };
    if let Some(s) = info.get("source_layers") {
        let keys: Vec<usize> = matrices.keys().copied().collect();
        if serde_json::from_str::<Vec<usize>>(s).ok() != Some(keys.clone()) {
            return Err(bad(format!(
                "its source_layers {s} are not its matrices' layers {keys:?}"
            )));
        }
    }
    let mut lens = JacobianLens::new(
        matrices,
        number("n_prompts")?.unwrap_or(0),
        d_model,
        metadata,
    )
    .map_err(|e| crate::invalid!("{shown}: {e}"))?;
    lens.path = path.to_path_buf();
    Ok(lens)
}
