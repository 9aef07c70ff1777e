//! Weights kept as stored. bf16/f16 storage is exact: a checkpoint stored
//! in bf16 or f16 gives, with its matrices kept as stored (widened a slice
//! at a time, computed in f32), the lens its values give widened to f32.
//! And a load that cannot fit is refused before anything is read.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Tensor};
use common::{tiny, Ops, FAMILIES};
use logitlens_engine::{
    BackendKind, ComputeDtype, EngineError, LensRow, LoadOptions, LoadedModel, RunRequest,
    WeightsMode,
};

/// The tiny fixture `family` with every float tensor stored as `dtype`.
fn stored_as(family: &str, dtype: DType, dir: &Path) {
    let src = tiny(family);
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.ends_with(".safetensors") && p.is_file() {
            std::fs::copy(&p, dir.join(&name)).unwrap();
        }
    }
    let tensors =
        candle_core::safetensors::load(src.join("model.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    let converted: HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(k, t)| {
            let t = if t.dtype().is_float() {
                t.to_dtype(dtype).unwrap()
            } else {
                t
            };
            (k, t)
        })
        .collect();
    candle_core::safetensors::save(&converted, dir.join("model.safetensors")).unwrap();
}

fn lens(dir: &Path, weights: WeightsMode) -> (LoadedModel, Vec<LensRow>) {
    let opts = LoadOptions {
        backend: BackendKind::Hooked,
        dtype: ComputeDtype::F32,
        weights,
        ..Default::default()
    };
    let m = LoadedModel::load_with(dir.to_str().unwrap(), opts, &mut |_| {}).unwrap();
    let rows = m
        .run(&RunRequest::new("The capital of France is Paris, and"))
        .unwrap()
        .answer
        .logit_lens;
    (m, rows)
}

#[test]
fn bf16_and_f16_kept_as_stored_give_the_widened_lens() {
    for family in FAMILIES {
        for dtype in [DType::BF16, DType::F16] {
            let dir = tempfile::tempdir().unwrap();
            stored_as(family, dtype, dir.path());
            let (wide_model, wide) = lens(dir.path(), WeightsMode::F32);
            let (stored_model, stored) = lens(dir.path(), WeightsMode::Stored);
            assert_eq!(wide_model.weights_info().form, "f32");
            assert_eq!(stored_model.weights_info().form, "stored");
            let kind = format!("{dtype:?}").to_uppercase();
            assert!(
                stored_model.weights_info().kinds.contains(&kind),
                "{family}: {:?}",
                stored_model.weights_info()
            );
            // Kept as stored, the matrices take half the bytes.
            assert!(
                stored_model.weights_info().resident_bytes * 3
                    < wide_model.weights_info().resident_bytes * 2,
                "{family} {dtype:?}"
            );
            let mut worst = 0f64;
            for (a, b) in wide.iter().zip(&stored) {
                for (pa, pb) in a.predictions.iter().zip(&b.predictions) {
                    for (x, y) in pa.iter().zip(pb) {
                        worst = worst.max((x.prob - y.prob).abs());
                        // Ids may only swap between near-equal probabilities.
                        if x.id != y.id {
                            let other = pb.iter().find(|p| p.id == x.id).map(|p| p.prob);
                            assert!(
                                other.is_some_and(|o| (o - x.prob).abs() < 1e-5),
                                "{family} {dtype:?}: {x:?} vs {y:?}"
                            );
                        }
                    }
                }
            }
            assert!(worst < 1e-5, "{family} {dtype:?}: max |Δprob| {worst}");
        }
    }
}

#[test]
fn auto_widens_small_models_and_keeps_big_ones_stored() {
    let dir = tempfile::tempdir().unwrap();
    stored_as("llama", DType::BF16, dir.path());
    let (m, _) = lens(dir.path(), WeightsMode::Auto);
    assert_eq!(m.weights_info().form, "f32");
    let gib = 1u64 << 30;
    // SmolLM2-135M widened takes 0.5 GB: widened on a 24 GiB machine.
    assert!(logitlens_engine::load::auto_widens(
        135_000_000,
        4,
        24 * gib
    ));
    // Llama-3.1-8B widened would take 32 GB: kept as stored.
    assert!(!logitlens_engine::load::auto_widens(
        8_030_261_248,
        4,
        24 * gib
    ));
}

#[test]
fn a_load_that_cannot_fit_is_refused_with_both_numbers() {
    let opts = LoadOptions {
        weights: WeightsMode::Stored,
        memory_budget: Some(1 << 20),
        ..Default::default()
    };
    let e = LoadedModel::load_with(tiny("llama").to_str().unwrap(), opts, &mut |_| {})
        .err()
        .expect("refused");
    assert!(matches!(e, EngineError::TooLarge(_)), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("GiB") && msg.contains("available"), "{msg}");
}

#[test]
fn stored_weights_compute_in_f32() {
    let opts = LoadOptions {
        weights: WeightsMode::Stored,
        dtype: ComputeDtype::F64,
        ..Default::default()
    };
    let e = LoadedModel::load_with(tiny("llama").to_str().unwrap(), opts, &mut |_| {})
        .err()
        .expect("refused");
    assert!(e.to_string().contains("f32"), "{e}");
}

/// A llama like the tiny fixture (its tokenizer) but with 512-wide
/// layers: ~6M parameters, 23 MB in f32. Random weights.
fn wider_llama(dir: &Path) {
    let src = tiny("llama");
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        if src.join(f).exists() {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
        }
    }
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    cfg["hidden_size"] = 512.into();
    cfg["intermediate_size"] = 1024.into();
    cfg["num_hidden_layers"] = 2.into();
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let dev = candle_core::Device::Cpu;
    let (v, d, f, kv) = (512, 512, 1024, 256);
    let mut t = HashMap::new();
    let mut put = |name: String, shape: &[usize]| {
        let x = Tensor::randn(0f32, 0.05, shape, &dev).unwrap();
        t.insert(name, x);
    };
    put("model.embed_tokens.weight".into(), &[v, d]);
    put("lm_head.weight".into(), &[v, d]);
    put("model.norm.weight".into(), &[d]);
    for l in 0..2 {
        let p = |s: &str| format!("model.layers.{l}.{s}.weight");
        put(p("input_layernorm"), &[d]);
        put(p("post_attention_layernorm"), &[d]);
        put(p("self_attn.q_proj"), &[d, d]);
        put(p("self_attn.k_proj"), &[kv, d]);
        put(p("self_attn.v_proj"), &[kv, d]);
        put(p("self_attn.o_proj"), &[d, d]);
        put(p("mlp.gate_proj"), &[f, d]);
        put(p("mlp.up_proj"), &[f, d]);
        put(p("mlp.down_proj"), &[d, f]);
    }
    candle_core::safetensors::save(&t, dir.join("model.safetensors")).unwrap();
}

/// With a memory budget the tiny model fits in and the wider one does not,
/// /load_model refuses the wider one with 409 and both numbers, and the
/// tiny one keeps serving.
#[tokio::test]
async fn a_load_refused_for_memory_leaves_the_previous_model_serving() {
    use common::server::{detail, server_with};
    let s = server_with(|c| c.memory_budget = Some(140 << 20));
    let (st, v) = s
        .post(
            "/load_model",
            serde_json::json!({"model_name": tiny("llama")}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["weights"]["form"], "f64", "{v}");
    let wide = tempfile::tempdir().unwrap();
    wider_llama(wide.path());
    let (st, v) = s
        .post(
            "/load_model",
            serde_json::json!({"model_name": wide.path(), "weights": "f32"}),
        )
        .await;
    assert_eq!(st, 409, "{v}");
    let msg = detail(&v);
    assert!(
        msg.contains("0.1 GiB is available") && msg.contains("needs about"),
        "{msg}"
    );
    let (_, status) = s.get("/model_status").await;
    assert_eq!(status["model_name"], tiny("llama").display().to_string());
    assert!(
        status["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("available"),
        "{status}"
    );
    let (st, v) = s
        .post("/inference", serde_json::json!({"text": "Hello world"}))
        .await;
    assert_eq!(st, 200, "the previous model still serves: {v}");
}

/// The configs of the 7B-8B models people study, as published, resolve to
/// their published shapes and parameter counts (what the memory estimate
/// and the model browser use).
#[test]
fn published_7b_8b_configs_resolve() {
    let cases = [
        (
            "llama-3.1-8b",
            BackendKind::Custom,
            8_030_261_248usize,
            128_256usize,
            128usize,
        ),
        ("qwen3-8b", BackendKind::Custom, 8_190_735_360, 151_936, 128),
        (
            "mistral-7b-v0.3",
            BackendKind::Hooked,
            7_248_023_552,
            32_768,
            128,
        ),
        (
            "qwen2.5-7b",
            BackendKind::Hooked,
            7_615_616_512,
            152_064,
            128,
        ),
    ];
    for (name, backend, params, vocab, head_dim) in cases {
        let json = std::fs::read_to_string(
            common::fixtures()
                .join("configs")
                .join(format!("{name}.json")),
        )
        .unwrap();
        let cfg = backend
            .config_from_hf_json(&json)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (cfg.param_count(), cfg.vocab_size, cfg.head_dim),
            (params, vocab, head_dim),
            "{name}"
        );
        assert_eq!(cfg.sliding_window, None, "{name}");
        // f32 would not fit in 24 GiB comfortably: auto keeps them stored.
        assert!(!logitlens_engine::load::auto_widens(
            params as u64,
            4,
            24 << 30
        ));
    }
}

/// A Q8_0 GGUF written with candle from the tiny llama: kept as blocks it
/// answers as its own dequantized f32 run does, and that run is the
/// fixture's own model within Q8_0's rounding (so names, the q/k row order
/// and the tokenizer all went through).
#[test]
fn a_q8_0_gguf_kept_as_blocks_agrees_with_its_f32_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-llama-Q8_0.gguf");
    common::gguf::write_gguf(
        &tiny("llama"),
        &path,
        candle_core::quantized::GgmlDType::Q8_0,
    );
    let run = |spec: &Path, weights| {
        let opts = LoadOptions {
            dtype: ComputeDtype::F32,
            weights,
            ..Default::default()
        };
        let m = LoadedModel::load_with(spec.to_str().unwrap(), opts, &mut |_| {}).unwrap();
        let req = RunRequest {
            lens_type: logitlens_engine::LensType::Combined,
            ..RunRequest::new("The capital of France is Paris, and the capital of Germany is")
        };
        (m.weights_info(), m.run(&req).unwrap().answer)
    };
    let (info, stored) = run(&path, WeightsMode::Stored);
    assert_eq!(
        (info.form.as_str(), info.kinds.as_str()),
        ("stored", "Q8_0"),
        "{info:?}"
    );
    let (_, wide) = run(&path, WeightsMode::F32);
    let (_, original) = run(&tiny("llama"), WeightsMode::F32);
    assert_eq!(
        stored.input_tokens, original.input_tokens,
        "the tokenizer as GGUF metadata"
    );
    let (top1, overlap, worst) = common::agreement(&wide.logit_lens, &stored.logit_lens);
    eprintln!("Q8_0 blocks vs their f32 run: top-1 {top1:.4}, top-5 overlap {overlap:.4}, max |Δprob| {worst:.2e}");
    assert!(top1 >= 0.99 && overlap >= 0.95 && worst <= 0.01);
    let (top1, overlap, worst) = common::agreement(&original.logit_lens, &wide.logit_lens);
    eprintln!(
        "Q8_0 vs the fixture: top-1 {top1:.4}, top-5 overlap {overlap:.4}, max |Δprob| {worst:.2e}"
    );
    assert!(
        top1 >= 0.9 && overlap >= 0.9 && worst <= 0.01,
        "{top1} {overlap} {worst}"
    );
}
