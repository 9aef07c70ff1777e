//! Shared helpers for the integration tests: fixture paths, reference npz
//! arrays, and tolerance comparisons.
#![allow(dead_code)]

pub mod gguf;
mod ops;
pub mod saes;
pub mod server;

use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use logitlens_engine::LoadedModel;
use ndarray::ArrayD;
use ndarray_npy::NpzReader;
#[allow(unused_imports)]
pub use ops::Ops;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

/// Every family with a tiny fixture in tests/fixtures/tiny.
pub const FAMILIES: [&str; 11] = [
    "llama",
    "llama3-rope-scaled",
    "mistral",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "phi3",
    "phi",
    "gpt2",
    "gpt_neox",
];

pub fn tiny(family: &str) -> PathBuf {
    fixtures().join("tiny").join(family)
}

pub fn load_tiny(family: &str) -> LoadedModel {
    LoadedModel::load(tiny(family).to_str().unwrap(), &mut |_| {}).expect("load tiny fixture")
}

/// A tiny fixture under the hooked backend, which runs every family.
pub fn load_hooked(family: &str) -> LoadedModel {
    let opts = logitlens_engine::LoadOptions {
        backend: logitlens_engine::BackendKind::Hooked,
        ..Default::default()
    };
    LoadedModel::load_with(tiny(family).to_str().unwrap(), opts, &mut |_| {})
        .expect("load tiny fixture")
}

pub struct Npz(NpzReader<File>);

impl Npz {
    pub fn open(path: &Path) -> Self {
        Npz(NpzReader::new(File::open(path).unwrap()).unwrap())
    }
    pub fn f32(&mut self, name: &str) -> ArrayD<f32> {
        self.0
            .by_name(&format!("{name}.npy"))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }
    pub fn i64(&mut self, name: &str) -> ArrayD<i64> {
        self.0
            .by_name(&format!("{name}.npy"))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

/// A reference's list of token ids.
pub fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

pub fn reference_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn flat(t: &Tensor) -> Vec<f32> {
    t.to_dtype(candle_core::DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

/// Stack `[T, ..]` tensors into one flat vector, in order.
pub fn flat_all(ts: &[Tensor]) -> Vec<f32> {
    ts.iter().flat_map(flat).collect()
}

/// Max |a-b|, with differences above 1 counted relatively (|a-b| / |b|).
pub fn max_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = (x - y).abs();
            if y.abs() > 1.0 {
                d / y.abs()
            } else {
                d
            }
        })
        .fold(0.0, f32::max)
}

pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    let e = max_err(got, want);
    assert!(e <= tol, "{what}: max error {e:e} exceeds {tol:e}");
}

/// The GGUF the SmolLM2 tests use: `LOGITLENS_GGUF`, else the default
/// model's cache path. Those tests are `#[ignore]`d, so they run only when
/// asked for (`--include-ignored`); then a missing file is a failure.
pub fn smollm2_gguf() -> PathBuf {
    let p = std::env::var_os("LOGITLENS_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(logitlens_engine::default_model::default_model_path);
    assert!(
        p.is_file(),
        "the SmolLM2 GGUF is missing at {} (fetch it with `logitlens fetch-model`)",
        p.display()
    );
    p
}

/// Top-1 agreement, mean top-5 overlap and the largest |Δprob| of a token
/// in both top-5s, over every cell of two lens answers.
pub fn agreement(
    a: &[logitlens_engine::LensRow],
    b: &[logitlens_engine::LensRow],
) -> (f64, f64, f64) {
    let (mut cells, mut top1, mut overlap, mut worst) = (0usize, 0usize, 0f64, 0f64);
    for (ra, rb) in a.iter().zip(b) {
        for (pa, pb) in ra.predictions.iter().zip(&rb.predictions) {
            cells += 1;
            top1 += usize::from(pa[0].id == pb[0].id);
            let shared = pa
                .iter()
                .filter(|x| pb.iter().any(|y| y.id == x.id))
                .count();
            overlap += shared as f64 / pa.len() as f64;
            for x in pa {
                if let Some(y) = pb.iter().find(|y| y.id == x.id) {
                    worst = worst.max((x.prob - y.prob).abs());
                }
            }
        }
    }
    (top1 as f64 / cells as f64, overlap / cells as f64, worst)
}

/// Largest |a − b| over every element, in f64.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let a = a.to_dtype(candle_core::DType::F64).unwrap();
    let b = b.to_dtype(candle_core::DType::F64).unwrap();
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// Every cell's top-5 of an /inference body's `logit_lens`, as (id, prob).
pub fn lens_cells(body: &serde_json::Value) -> Vec<(u64, f64)> {
    body["logit_lens"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["predictions"].as_array().unwrap())
        .flat_map(|cell| cell.as_array().unwrap())
        .map(|p| (p["id"].as_u64().unwrap(), p["prob"].as_f64().unwrap()))
        .collect()
}

/// Two /inference bodies' lens cells agree: probabilities within 1e-6,
/// the same token (two of equal probability may swap places).
pub fn same_lens_cells(got: &serde_json::Value, want: &serde_json::Value, what: &str) {
    let (g, w) = (lens_cells(got), lens_cells(want));
    assert_eq!(g.len(), w.len(), "{what}");
    for ((gi, gp), (wi, wp)) in g.iter().zip(&w) {
        assert!(
            (gp - wp).abs() <= 1e-6 && (gi == wi || (gp - wp).abs() < 1e-9),
            "{what}: ({gi}, {gp}) against ({wi}, {wp})"
        );
    }
}
