//! A `.pt` file's pickle as a lens, as TransformerLens's `JacobianLens.load`
//! reads it: an artifact (`J`, `n_prompts`, `d_model`, optional
//! `source_layers` and `metadata`), or a fit checkpoint of the reference
//! implementation (`jacobian_sum` running sums and `n_done`: the mean is
//! sum / n_done; its provenance gathered as `_from_checkpoint_payload`
//! gathers it, marked `converted_from` so a merge with a native lens is
//! refused).

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Tensor;
use serde_json::{Map, Value as Json};

use crate::error::Result;

use super::pickle::Value;
use super::pt::Archive;
use super::JacobianLens;

/// Fit settings TransformerLens writes that a converted checkpoint must
/// not claim (its `_FIT_RESERVED_KEYS`): a merge then tells the two apart.
const FIT_RESERVED_KEYS: [&str; 9] = [
    "transformer_lens_fit",
    "transformer_lens_version",
    "model_system",
    "processing",
    "hook_convention",
    "fit_dtype",
    "dim_batch",
    "max_seq_len",
    "skip_first_positions",
];

/// Provenance some checkpoint writers keep at the top level.
const FLAT_PROVENANCE: [&str; 3] = ["model_name", "model_revision", "corpus"];

/// The lens in a `.pt` file's payload.
pub(super) fn lens(path: &Path, payload: &Value, archive: &mut Archive) -> Result<JacobianLens> {
    let shown = path.display();
    if !matches!(payload, Value::Dict(_)) {
        return Err(crate::invalid!(
            "{shown} holds {}, not the dict of a Jacobian lens",
            payload.kind()
        ));
    }
    let mut lens = if let Some(j) = payload.get("J") {
        artifact(path, payload, j, archive)?
    } else if let Some(sums) = payload.get("jacobian_sum") {
        checkpoint(path, payload, sums, archive)?
    } else {
        return Err(crate::invalid!(
            "{shown} does not look like a Jacobian lens artifact or fit checkpoint: it has \
             neither a 'J' key (artifact) nor a 'jacobian_sum' key (fit checkpoint)"
        ));
    };
    lens.path = path.to_path_buf();
    Ok(lens)
}

fn artifact(
    path: &Path,
    payload: &Value,
    j: &Value,
    archive: &mut Archive,
) -> Result<JacobianLens> {
    let shown = path.display();
    let matrices = matrices(path, j, "J", archive)?;
    let d_model = match payload.get("d_model") {
        Some(Value::Int(d)) if *d > 0 => *d as usize,
        Some(other) => {
            return Err(crate::invalid!(
                "{shown}: d_model is {}, not a positive int",
                other.kind()
            ))
        }
        None => return Err(crate::invalid!("{shown}: the artifact has no d_model")),
    };
    let n_prompts = count(path, payload.get("n_prompts"), "n_prompts")?.unwrap_or(0);
    if let Some(listed) = payload.get("source_layers") {
        let keys: Vec<i64> = matrices.keys().map(|&l| l as i64).collect();
        let listed_ints = match listed {
            Value::List(xs) | Value::Tuple(xs) => xs
                .iter()
                .map(|x| match x {
                    Value::Int(i) => Some(*i),
                    _ => None,
                })
                .collect::<Option<Vec<i64>>>(),
            _ => None,
        };
        let mut sorted = listed_ints.clone().unwrap_or_default();
        sorted.sort_unstable();
        if listed_ints.is_none() || sorted != keys {
            return Err(crate::invalid!(
                "{shown}: source_layers is {listed:?} but J has matrices for layers {keys:?}"
            ));
        }
    }
    let metadata = match payload.get("metadata") {
        None | Some(Value::None) => Map::new(),
        Some(Value::Dict(entries)) => metadata(entries, &[]),
        Some(other) => {
            return Err(crate::invalid!(
                "{shown}: metadata is {}, not a dict",
                other.kind()
            ))
        }
    };
    JacobianLens::new(matrices, n_prompts, d_model, metadata)
        .map_err(|e| crate::invalid!("{shown}: {e}"))
}

fn checkpoint(
    path: &Path,
    payload: &Value,
    sums: &Value,
    archive: &mut Archive,
) -> Result<JacobianLens> {
    let shown = path.display();
    let n = match payload.get("n_done") {
        Some(v) => count(path, Some(v), "n_done")?,
        None => count(path, payload.get("n_prompts"), "n_prompts")?,
    }
    .unwrap_or(0);
    if n == 0 {
        return Err(crate::invalid!(
            "{shown} is a fit checkpoint with n_prompts=0; a positive prompt count is required to \
             reconstruct the Jacobian mean"
        ));
    }
    let sums = matrices(path, sums, "jacobian_sum", archive)?;
    let Some(first) = sums.values().next() else {
        return Err(crate::invalid!(
            "{shown} is a fit checkpoint with an empty jacobian_sum; at least one layer matrix is \
             required to reconstruct d_model"
        ));
    };
    let d_model = first.dim(0)?;
    let means = sums
        .into_iter()
        .map(|(l, s)| Ok((l, (s / n as f64)?)))
        .collect::<Result<BTreeMap<usize, Tensor>>>()?;
    let mut raw: Vec<(Value, Value)> = match payload.get("metadata") {
        Some(Value::Dict(entries)) => entries.clone(),
        _ => Vec::new(),
    };
    let has = |raw: &[(Value, Value)], key: &str| {
        raw.iter()
            .any(|(k, _)| matches!(k, Value::Str(s) if s == key))
    };
    for key in FLAT_PROVENANCE.iter().chain(&["target_layer"]) {
        if let Some(v) = payload.get(key) {
            if !has(&raw, key) {
                raw.push((Value::Str((*key).to_owned()), v.clone()));
            }
        }
    }
    let mut metadata = metadata(&raw, &FIT_RESERVED_KEYS);
    let dropped = metadata.remove("dropped_fields");
    metadata.insert("converted_from".into(), "jacobian_lens_checkpoint".into());
    if let Some(d) = dropped {
        metadata.insert("dropped_fields".into(), d);
    }
    JacobianLens::new(means, n, d_model, metadata).map_err(|e| crate::invalid!("{shown}: {e}"))
}

/// `J` (or `jacobian_sum`): layer (an int, or a str of one, as Python's
/// `int(layer)` takes it) → matrix, as f32.
fn matrices(
    path: &Path,
    v: &Value,
    what: &str,
    archive: &mut Archive,
) -> Result<BTreeMap<usize, Tensor>> {
    let shown = path.display();
    let Value::Dict(entries) = v else {
        return Err(crate::invalid!(
            "{shown}: {what} is {}, not a dict of layer → matrix",
            v.kind()
        ));
    };
    let mut out = BTreeMap::new();
    for (k, m) in entries {
        let layer = match k {
            Value::Int(i) if *i >= 0 => *i as usize,
            Value::Str(s) if s.parse::<usize>().is_ok() => s.parse().expect("checked"),
            other => {
                return Err(crate::invalid!(
                    "{shown}: {what} has a key that is {}, not a layer number",
                    other.kind()
                ))
            }
        };
        let Value::Tensor(t) = m else {
            return Err(crate::invalid!(
                "{shown}: {what}[{layer}] is {}, not a tensor",
                m.kind()
            ));
        };
        if out.insert(layer, archive.tensor(t)?).is_some() {
            return Err(crate::invalid!("{shown}: {what} names layer {layer} twice"));
        }
    }
    Ok(out)
}

fn count(path: &Path, v: Option<&Value>, what: &str) -> Result<Option<u64>> {
    match v {
        None => Ok(None),
        Some(Value::Int(i)) if *i >= 0 => Ok(Some(*i as u64)),
        Some(other) => Err(crate::invalid!(
            "{}: {what} is {}, not a count",
            path.display(),
            other.kind()
        )),
    }
}

/// Metadata entries as JSON, in their order: keys in `reserved` left out;
/// what JSON cannot hold (tensors, dicts keyed by other than strings,
/// infinities) left out too and named under `dropped_fields`, as
/// TransformerLens names a checkpoint's tensor-valued fields.
fn metadata(entries: &[(Value, Value)], reserved: &[&str]) -> Map<String, Json> {
    let mut out = Map::new();
    let mut dropped = Vec::new();
    for (k, v) in entries {
        let Value::Str(key) = k else {
            let shown = match k {
                Value::Int(i) => i.to_string(),
                other => other.kind().to_owned(),
            };
            dropped.push(Json::String(shown));
            continue;
        };
        if reserved.contains(&key.as_str()) {
            continue;
        }
        match (v, to_json(v, 0)) {
            (_, Some(j)) => {
                out.insert(key.clone(), j);
            }
            (Value::Tensor(t), None) => dropped.push(Json::String(format!(
                "{key}: shape=({}) dtype={}",
                t.size
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
                    + if t.size.len() == 1 { "," } else { "" },
                match t.storage {
                    super::pickle::Storage::Half => "torch.float16",
                    super::pickle::Storage::Float => "torch.float32",
                    super::pickle::Storage::BFloat16 => "torch.bfloat16",
                }
            ))),
            (_, None) => dropped.push(Json::String(key.clone())),
        }
    }
    if !dropped.is_empty() {
        out.insert("dropped_fields".into(), Json::Array(dropped));
    }
    out
}

/// A metadata value as JSON: None, bools, ints, finite floats, strings,
/// lists and tuples of them, string-keyed dicts of them.
pub(super) fn to_json(v: &Value, depth: usize) -> Option<Json> {
    if depth > 32 {
        return None;
    }
    Some(match v {
        Value::None => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => Json::Number(serde_json::Number::from_f64(*f)?),
        Value::Str(s) => Json::String(s.clone()),
        Value::List(xs) | Value::Tuple(xs) => Json::Array(
            xs.iter()
                .map(|x| to_json(x, depth + 1))
                .collect::<Option<_>>()?,
        ),
        Value::Dict(entries) => {
            let mut m = Map::new();
            for (k, x) in entries {
                let Value::Str(k) = k else { return None };
                m.insert(k.clone(), to_json(x, depth + 1)?);
            }
            Json::Object(m)
        }
        Value::Tensor(_) => return None,
    })
}
