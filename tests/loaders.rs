//! Every loading path gives the same model: GGUF files (written here from
//! the tiny checkpoints the way llama.cpp's converter writes them, q/k
//! permuted for Llama), bf16 safetensors, sharded safetensors.

mod common;

use std::collections::HashMap;

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use common::gguf::write_gguf;
use common::*;
use logitlens_engine::{LoadedModel, RunRequest};

const TEXT: &str = "The capital of France is";

#[test]
fn gguf_llama_and_qwen3_equal_their_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    for family in ["llama", "qwen3"] {
        let path = dir.path().join(format!("{family}.gguf"));
        write_gguf(&tiny(family), &path, GgmlDType::F32);
        let g = LoadedModel::load(path.to_str().unwrap(), &mut |_| {}).unwrap();
        let s = load_tiny(family);
        assert_eq!(
            g.config(),
            s.config(),
            "{family}: config from GGUF metadata"
        );
        assert_eq!(g.source.kind, "gguf");
        assert_eq!(g.source.stored_dtype, "F32");
        for chat in [false, true] {
            let mut req = RunRequest::new(TEXT);
            req.apply_chat_template = chat;
            req.return_attention = true;
            let (a, b) = (g.run(&req).unwrap(), s.run(&req).unwrap());
            assert_eq!(
                a.state.ids, b.state.ids,
                "{family}: tokenizer from GGUF metadata (chat {chat})"
            );
            assert_eq!(a.answer.input_tokens, b.answer.input_tokens);
            // Same weights, same code: the q/k un-permutation must be exact.
            assert_eq!(
                flat_all(&a.state.capture.resid),
                flat_all(&b.state.capture.resid),
                "{family}"
            );
            assert_eq!(a.answer, b.answer);
        }
    }
}

#[test]
fn bf16_and_sharded_safetensors_load() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny("llama");
    let tensors =
        candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        for sub in ["bf16", "sharded"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
            std::fs::copy(src.join(f), dir.path().join(sub).join(f)).unwrap();
        }
    }
    // bf16 on disk: computed widened, exactly the bf16 values.
    let bf: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.to_dtype(DType::BF16).unwrap()))
        .collect();
    candle_core::safetensors::save(&bf, dir.path().join("bf16/model.safetensors")).unwrap();
    let m = LoadedModel::load(dir.path().join("bf16").to_str().unwrap(), &mut |_| {}).unwrap();
    assert_eq!(m.source.stored_dtype, "BF16");
    let out = m.run(&RunRequest::new(TEXT)).unwrap();
    let embed = bf["model.embed_tokens.weight"]
        .to_dtype(DType::F32)
        .unwrap();
    let want = embed
        .index_select(
            &Tensor::new(out.state.ids.as_slice(), &Device::Cpu).unwrap(),
            0,
        )
        .unwrap();
    assert_eq!(flat(&out.state.capture.resid[0]), flat(&want));

    // Two shards and an index: the same model as the single file.
    let names: Vec<&String> = tensors.keys().collect();
    let (a, b): (Vec<_>, Vec<_>) = names.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let mut weight_map = serde_json::Map::new();
    for (shard, part) in [
        ("model-00001-of-00002.safetensors", a),
        ("model-00002-of-00002.safetensors", b),
    ] {
        let sub: HashMap<String, Tensor> = part
            .iter()
            .map(|(_, k)| ((**k).clone(), tensors[**k].clone()))
            .collect();
        for k in sub.keys() {
            weight_map.insert(k.clone(), serde_json::Value::String(shard.into()));
        }
        candle_core::safetensors::save(&sub, dir.path().join("sharded").join(shard)).unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(
        dir.path().join("sharded/model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let sharded =
        LoadedModel::load(dir.path().join("sharded").to_str().unwrap(), &mut |_| {}).unwrap();
    let req = RunRequest::new(TEXT);
    assert_eq!(
        sharded.run(&req).unwrap().answer,
        load_tiny("llama").run(&req).unwrap().answer
    );
}

#[test]
fn broken_checkpoints_are_errors_not_random_weights() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny("llama");
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let mut tensors =
        candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    tensors.remove("model.layers.1.mlp.up_proj.weight");
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    let e = LoadedModel::load(dir.path().to_str().unwrap(), &mut |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("model.layers.1.mlp.up_proj.weight"), "{e}");
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let e = LoadedModel::load(dir.path().to_str().unwrap(), &mut |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("neither model.safetensors nor"), "{e}");
}
