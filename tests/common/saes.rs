//! SAE folders written by the tests themselves: a SAELens folder (cfg.json
//! and sae_weights.safetensors) or a Gemma Scope one (params.npz), from
//! seeded weights, and a Hub-like cache to put them in.

use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::Value;

/// `n` values in [-scale, scale) from a fixed linear congruential sequence:
/// the same on every machine, no dependency.
pub fn seeded(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 40) as f32 / (1u64 << 24) as f32;
            (2.0 * u - 1.0) * scale
        })
        .collect()
}

pub fn tensor(v: Vec<f32>, dims: &[usize]) -> Tensor {
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// A SAELens folder at `dir`: `cfg` as cfg.json, `tensors` as
/// sae_weights.safetensors.
pub fn write_saelens(dir: &Path, cfg: &Value, tensors: &[(&str, Tensor)]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("cfg.json"),
        serde_json::to_string_pretty(cfg).unwrap(),
    )
    .unwrap();
    let map: std::collections::HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, t)| (k.to_string(), t.clone()))
        .collect();
    candle_core::safetensors::save(&map, dir.join("sae_weights.safetensors")).unwrap();
}

/// A Gemma Scope folder at `dir`: `tensors` as params.npz.
pub fn write_gemma_scope(dir: &Path, tensors: &[(&str, Tensor)]) {
    std::fs::create_dir_all(dir).unwrap();
    Tensor::write_npz(tensors, dir.join("params.npz")).unwrap();
}

/// Copies every file under `src` into a Hub-like cache as the Hub lays a
/// repo out: `models--org--name/snapshots/<commit>/<folder>/<file>`, each a
/// symlink to `blobs/<hash>`, with `refs/main` naming the commit.
pub fn put_in_hub_cache(cache: &Path, repo: &str, commit: &str, folder: &str, src: &Path) {
    let base = cache.join(format!("models--{}", repo.replace('/', "--")));
    let snap = base.join("snapshots").join(commit).join(folder);
    std::fs::create_dir_all(base.join("blobs")).unwrap();
    std::fs::create_dir_all(base.join("refs")).unwrap();
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::write(base.join("refs").join("main"), commit).unwrap();
    let depth = folder.split('/').count() + 2;
    let up: std::path::PathBuf = std::iter::repeat_n("..", depth).collect();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let bytes = std::fs::read(entry.path()).unwrap();
        // The Hub names blobs by content hash; any unique name serves.
        let hash = bytes.iter().fold(0xcbf29ce484222325u64, |h, &x| {
            (h ^ x as u64).wrapping_mul(0x100000001b3)
        });
        let blob = format!("{hash:016x}");
        std::fs::write(base.join("blobs").join(&blob), &bytes).unwrap();
        std::os::unix::fs::symlink(up.join("blobs").join(&blob), snap.join(entry.file_name()))
            .unwrap();
    }
}
