//! Safetensors checkpoints (single or sharded), and the tensor sources
//! model code reads its weights from without holding two copies.
//!
//! The models keep widened weights in their own layout (linear weights
//! transposed, see `nn::Linear`), so such tensors are copied once while
//! loading. With candle's stock backends the source stays alive until the
//! load ends (a `HashMap` of dequantized GGUF tensors, or a memory map whose
//! touched pages count as resident), which doubled peak memory. These
//! sources release each tensor as soon as it has been handed out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};

use crate::error::{EngineError, Result};
use crate::nn::{Stored, TensorSource};

/// Tensors already in memory, each removed from the map when taken.
pub(crate) struct TakeTensors(Mutex<HashMap<String, Stored>>);

impl TakeTensors {
    pub(crate) fn source(tensors: HashMap<String, Stored>) -> Arc<dyn TensorSource> {
        Arc::new(TakeTensors(Mutex::new(tensors)))
    }
}

impl TensorSource for TakeTensors {
    fn take(&self, name: &str) -> Result<Stored> {
        self.0
            .lock()
            .expect("weights lock")
            .remove(name)
            .ok_or_else(|| EngineError::Model(format!("the checkpoint has no tensor {name}")))
    }

    fn has(&self, name: &str) -> bool {
        self.0.lock().expect("weights lock").contains_key(name)
    }
}

/// One memory-mapped safetensors file with its parsed header.
struct MappedFile {
    path: PathBuf,
    map: memmap2::Mmap,
    /// Where tensor data starts (after the 8-byte length and the header).
    data_start: usize,
    meta: safetensors::tensor::Metadata,
}

/// Memory-mapped safetensors files. A tensor's pages are dropped from this
/// process (`MADV_DONTNEED`; the page cache keeps them) once it is copied
/// out, so resident memory stays near one copy of the weights.
struct MappedSafetensors(Vec<MappedFile>);

fn candle_dtype(d: safetensors::Dtype) -> Option<DType> {
    use safetensors::Dtype as S;
    Some(match d {
        S::F32 => DType::F32,
        S::F16 => DType::F16,
        S::BF16 => DType::BF16,
        S::F64 => DType::F64,
        S::I64 => DType::I64,
        S::I32 => DType::I32,
        S::I16 => DType::I16,
        S::U32 => DType::U32,
        S::U8 => DType::U8,
        _ => return None,
    })
}

impl MappedSafetensors {
    fn open(files: &[PathBuf]) -> Result<Self> {
        let mut out = Vec::with_capacity(files.len());
        for path in files {
            let file = std::fs::File::open(path)?;
            // SAFETY: read-only map of a checkpoint file nobody modifies while it loads.
            let map = unsafe { memmap2::Mmap::map(&file)? };
            let (n, meta) = safetensors::SafeTensors::read_metadata(&map).map_err(|e| {
                EngineError::Model(format!("{} is not a safetensors file: {e}", path.display()))
            })?;
            out.push(MappedFile {
                path: path.clone(),
                map,
                data_start: 8 + n,
                meta,
            });
        }
        Ok(MappedSafetensors(out))
    }

    fn load(&self, name: &str, dev: &Device) -> Result<Tensor> {
        for f in &self.0 {
            let Some(info) = f.meta.info(name) else {
                continue;
            };
            let dtype = candle_dtype(info.dtype).ok_or_else(|| {
                EngineError::Model(format!(
                    "{name} in {} has dtype {:?}, which is not supported",
                    f.path.display(),
                    info.dtype
                ))
            })?;
            let (a, b) = info.data_offsets;
            let (start, end) = (f.data_start + a, f.data_start + b);
            let bytes = f.map.get(start..end).ok_or_else(|| {
                EngineError::Model(format!(
                    "{name} lies outside {} (truncated file?)",
                    f.path.display()
                ))
            })?;
            let t = Tensor::from_raw_buffer(bytes, dtype, &info.shape, dev)?;
            release(&f.map, start, end);
            return Ok(t);
        }
        Err(EngineError::Model(format!(
            "the checkpoint has no tensor {name}"
        )))
    }
}

/// Drop the whole pages inside `[start, end)` of a read-only file map from
/// this process's resident set.
fn release(map: &memmap2::Mmap, start: usize, end: usize) {
    #[cfg(unix)]
    {
        const PAGE: usize = 4096;
        let first = start.div_ceil(PAGE) * PAGE;
        let last = end / PAGE * PAGE;
        if last > first {
            // SAFETY: the range is inside the map, the map is private and
            // read-only, and no slice of this range is used afterwards (a
            // later read would fault the pages back in from the file).
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, first, last - first)
            };
        }
    }
    #[cfg(not(unix))]
    let _ = (map, start, end);
}

impl TensorSource for MappedSafetensors {
    fn take(&self, name: &str) -> Result<Stored> {
        Ok(Stored::Tensor(self.load(name, &Device::Cpu)?))
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|f| f.meta.info(name).is_some())
    }
}

/// A checkpoint's safetensors files, mapped and their headers read once:
/// what they hold, then the tensor source the model loads from.
pub(crate) struct Checkpoint(MappedSafetensors);

impl Checkpoint {
    pub(crate) fn open(files: &[PathBuf]) -> Result<Self> {
        Ok(Checkpoint(MappedSafetensors::open(files)?))
    }

    /// Bytes and numbers stored, in all and in the largest tensor.
    pub(crate) fn sizes(&self) -> super::Sizes {
        let mut out = super::Sizes::default();
        for f in &self.0 .0 {
            for info in f.meta.tensors().values() {
                let (a, b) = info.data_offsets;
                out.add((b - a) as u64, info.shape.iter().product::<usize>() as u64);
            }
        }
        out
    }

    /// The dtypes stored, e.g. "BF16" or "F16, F32".
    pub(crate) fn stored_dtypes(&self) -> String {
        let mut kinds: Vec<String> = Vec::new();
        for f in &self.0 .0 {
            for info in f.meta.tensors().values() {
                let k = format!("{:?}", info.dtype);
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
        }
        kinds.sort();
        kinds.join(", ")
    }

    pub(crate) fn into_source(self) -> Arc<dyn TensorSource> {
        Arc::new(self.0)
    }
}

fn read_to_string(p: &Path) -> Result<String> {
    std::fs::read_to_string(p)
        .map_err(|e| EngineError::Model(format!("cannot read {}: {e}", p.display())))
}

/// The safetensors files of a checkpoint (single, or sharded by an index);
/// `get(file)` finds each file (a local folder or the Hub cache).
pub(crate) fn checkpoint_files(
    dir: &Path,
    get: &mut dyn FnMut(&str) -> Result<Option<PathBuf>>,
) -> Result<Vec<PathBuf>> {
    if let Some(index) = get("model.safetensors.index.json")? {
        let v: serde_json::Value = serde_json::from_str(&read_to_string(&index)?)
            .map_err(|e| EngineError::Model(format!("model.safetensors.index.json: {e}")))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| {
                EngineError::Model("model.safetensors.index.json has no weight_map".into())
            })?;
        let mut shards: Vec<String> = map
            .values()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect();
        shards.sort();
        shards.dedup();
        let mut out = Vec::new();
        for s in shards {
            if s.contains('/') || s.contains("..") {
                return Err(EngineError::Model(format!(
                    "shard name {s:?} is not a plain file name"
                )));
            }
            out.push(get(&s)?.ok_or_else(|| EngineError::Model(format!("shard {s} is missing")))?);
        }
        return Ok(out);
    }
    match get("model.safetensors")? {
        Some(p) => Ok(vec![p]),
        None => Err(EngineError::NotFound(format!(
            "{} has neither model.safetensors nor model.safetensors.index.json",
            dir.display()
        ))),
    }
}
