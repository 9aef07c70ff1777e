//! The archive `torch.save` writes: a zip of `<name>/data.pkl` (the
//! pickle), `<name>/data/<key>` (each storage's bytes, little-endian,
//! stored uncompressed) and a few small records; read with the `zip` crate
//! behind checks of every size the pickle claims, and written so that
//! `torch.load(..., weights_only=True)` reads it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Cursor, Read, Write};
use std::path::Path;

use candle_core::{Device, Tensor};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::error::Result;

use super::pickle::{self, Storage, TensorRef, Value};

/// Bytes of a pickle we read at most: a lens's pickle is a few kilobytes
/// (its matrices are in the storages beside it).
const MAX_PICKLE_BYTES: u64 = 64 << 20;

/// An opened archive: its pickle read, its storages read on demand.
pub(crate) struct Archive {
    zip: ZipArchive<File>,
    prefix: String,
    /// For messages.
    path: String,
    /// The file's bytes: no record can hold more.
    len: u64,
    storages: HashMap<String, Vec<u8>>,
}

/// Open `path` and read its pickle.
pub(crate) fn open(path: &Path) -> Result<(Value, Archive)> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|e| crate::invalid!("cannot open {shown}: {e}"))?;
    let len = file.metadata()?.len();
    let zip = ZipArchive::new(file).map_err(|e| {
        crate::invalid!(
            "{shown} is not a zip archive as torch.save writes ({e}); files of torch's legacy \
             (pre-1.6) format are not read: load and save it again with a current torch"
        )
    })?;
    let pkl: Vec<String> = zip
        .file_names()
        .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .map(str::to_owned)
        .collect();
    let [name] = pkl.as_slice() else {
        return Err(crate::invalid!(
            "{shown} has {} <name>/data.pkl records; a file torch.save wrote has one",
            pkl.len()
        ));
    };
    let prefix = name.trim_end_matches("data.pkl").to_owned();
    let mut archive = Archive {
        zip,
        prefix,
        path: shown,
        len,
        storages: HashMap::new(),
    };
    if let Some(order) = archive.record("byteorder", 16)? {
        if order != b"little" {
            return Err(crate::invalid!(
                "{}: its byteorder is {:?}; only little-endian files are read",
                archive.path,
                String::from_utf8_lossy(&order)
            ));
        }
    }
    let data = archive
        .record("data.pkl", MAX_PICKLE_BYTES)?
        .expect("listed above");
    let value = pickle::read(&data).map_err(|e| crate::invalid!("{}: {e}", archive.path))?;
    Ok((value, archive))
}

impl Archive {
    /// The record `<prefix><name>`, if there is one, refused over `max` bytes.
    fn record(&mut self, name: &str, max: u64) -> Result<Option<Vec<u8>>> {
        let full = format!("{}{name}", self.prefix);
        let mut entry = match self.zip.by_name(&full) {
            Ok(e) => e,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(crate::invalid!("{}: record {full}: {e}", self.path)),
        };
        if entry.compression() != CompressionMethod::Stored {
            return Err(crate::invalid!(
                "{}: record {full} is compressed; torch.save stores its records as they are",
                self.path
            ));
        }
        if entry.size() > max.min(self.len) {
            return Err(crate::invalid!(
                "{}: record {full} has {} bytes, more than the {max} such a record may have",
                self.path,
                entry.size()
            ));
        }
        let mut out = Vec::new();
        entry
            .read_to_end(&mut out)
            .map_err(|e| crate::invalid!("{}: record {full}: {e}", self.path))?;
        Ok(Some(out))
    }

    /// The f32 tensor `t` describes, its claims checked against its storage.
    pub(crate) fn tensor(&mut self, t: &TensorRef) -> Result<Tensor> {
        let elem = t.storage.size_in_bytes();
        if !self.storages.contains_key(&t.key) {
            let want = t
                .numel
                .checked_mul(elem)
                .ok_or_else(|| crate::invalid!("{}: a storage beyond memory", self.path))?;
            let bytes = self
                .record(&format!("data/{}", t.key), want as u64)?
                .ok_or_else(|| {
                    crate::invalid!("{}: storage {} is missing (data/{0})", self.path, t.key)
                })?;
            if bytes.len() != want {
                return Err(crate::invalid!(
                    "{}: storage {} has {} bytes but the pickle says {} elements of {elem}",
                    self.path,
                    t.key,
                    bytes.len(),
                    t.numel
                ));
            }
            self.storages.insert(t.key.clone(), bytes);
        }
        let bytes = &self.storages[&t.key];
        let index = view_indices(t).ok_or_else(|| {
            crate::invalid!(
                "{}: a tensor of size {:?} reaches past its storage of {} elements",
                self.path,
                t.size,
                t.numel
            )
        })?;
        let values: Vec<f32> = index
            .into_iter()
            .map(|k| element(bytes, t.storage, k))
            .collect();
        Ok(Tensor::from_vec(values, t.size.as_slice(), &Device::Cpu)?)
    }
}

/// The storage index of every element of the view, in row-major order;
/// `None` when one falls outside the storage, or when the view has more
/// elements than the storage (a broadcast view, which a lens never saves).
fn view_indices(t: &TensorRef) -> Option<Vec<usize>> {
    let n = t.size.iter().try_fold(1usize, |a, &s| a.checked_mul(s))?;
    if n > t.numel {
        return None;
    }
    if n == 0 {
        return Some(Vec::new());
    }
    let last = t
        .size
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |a, (&s, &st)| {
            a.checked_add((s - 1).checked_mul(st)?)
        })?;
    if last >= t.numel {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; t.size.len()];
    for _ in 0..n {
        out.push(t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>());
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < t.size[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Some(out)
}

fn element(bytes: &[u8], storage: Storage, k: usize) -> f32 {
    match storage {
        Storage::Half => half::f16::from_le_bytes([bytes[2 * k], bytes[2 * k + 1]]).to_f32(),
        Storage::BFloat16 => half::bf16::from_le_bytes([bytes[2 * k], bytes[2 * k + 1]]).to_f32(),
        Storage::Float => f32::from_le_bytes(bytes[4 * k..4 * k + 4].try_into().expect("4 bytes")),
    }
}

/// Write the archive of `pickle` and its `storages` (key, little-endian
/// bytes) to `path`, laid out as torch.save lays it out: records under the
/// file's stem, storages aligned to 64 bytes.
pub(crate) fn write(path: &Path, pickle: &[u8], storages: &[(String, Vec<u8>)]) -> Result<()> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        })
        .unwrap_or("archive");
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .with_alignment(64);
    let mut put = |name: &str, bytes: &[u8]| -> Result<()> {
        zip.start_file(format!("{stem}/{name}"), opts)
            .map_err(|e| crate::invalid!("writing {}: {e}", path.display()))?;
        zip.write_all(bytes)?;
        Ok(())
    };
    put("data.pkl", pickle)?;
    put(".format_version", b"1")?;
    put(".storage_alignment", b"64")?;
    put("byteorder", b"little")?;
    for (key, bytes) in storages {
        put(&format!("data/{key}"), bytes)?;
    }
    put("version", b"3\n")?;
    put(
        ".data/serialization_id",
        serialization_id(pickle).as_bytes(),
    )?;
    let bytes = zip
        .finish()
        .map_err(|e| crate::invalid!("writing {}: {e}", path.display()))?
        .into_inner();
    std::fs::write(path, bytes)?;
    Ok(())
}

/// The 40 decimal digits torch records as the archive's id: here from the
/// pickle's hash, so the same lens writes the same file.
fn serialization_id(pickle: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(pickle)
        .iter()
        .map(|b| format!("{:02}", b % 100))
        .take(20)
        .collect()
}
