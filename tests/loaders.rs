//! Every loading path gives the same model: GGUF files (written here from
//! the tiny checkpoints the way llama.cpp's converter writes them, q/k
//! permuted for Llama), bf16 safetensors, sharded safetensors.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use common::*;
use logitlens_engine::{LoadedModel, RunRequest};

const TEXT: &str = "The capital of France is";

/// llama.cpp's `permute`: reshape(n_head, 2, hd/2, in).swapaxes(1, 2).
fn permute(t: &Tensor, n_head: usize) -> Tensor {
    let (out, inp) = t.dims2().unwrap();
    t.reshape((n_head, 2, out / n_head / 2, inp))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape((out, inp))
        .unwrap()
}

fn gguf_name(hf: &str) -> String {
    let direct = [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];
    if let Some((_, g)) = direct.iter().find(|(h, _)| *h == hf) {
        return g.to_string();
    }
    let rest = hf.strip_prefix("model.layers.").unwrap();
    let (layer, rest) = rest.split_once('.').unwrap();
    let map = [
        ("input_layernorm.weight", "attn_norm.weight"),
        ("post_attention_layernorm.weight", "ffn_norm.weight"),
        ("self_attn.q_proj.weight", "attn_q.weight"),
        ("self_attn.k_proj.weight", "attn_k.weight"),
        ("self_attn.v_proj.weight", "attn_v.weight"),
        ("self_attn.o_proj.weight", "attn_output.weight"),
        ("self_attn.q_norm.weight", "attn_q_norm.weight"),
        ("self_attn.k_norm.weight", "attn_k_norm.weight"),
        ("mlp.gate_proj.weight", "ffn_gate.weight"),
        ("mlp.up_proj.weight", "ffn_up.weight"),
        ("mlp.down_proj.weight", "ffn_down.weight"),
    ];
    let (_, g) = map
        .iter()
        .find(|(h, _)| *h == rest)
        .unwrap_or_else(|| panic!("{hf}"));
    format!("blk.{layer}.{g}")
}

/// Write a tiny HF checkpoint as an F32 GGUF with tokenizer metadata.
fn write_gguf(src: &Path, dst: &Path) {
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    let arch = cfg["model_type"].as_str().unwrap().to_string();
    let heads = cfg["num_attention_heads"].as_u64().unwrap() as usize;
    let kv = cfg["num_key_value_heads"].as_u64().unwrap() as usize;
    let tensors =
        candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let mut qts: Vec<(String, QTensor)> = Vec::new();
    for (name, t) in &tensors {
        let t = match (
            arch.as_str(),
            name.ends_with("q_proj.weight"),
            name.ends_with("k_proj.weight"),
        ) {
            ("llama", true, _) => permute(t, heads),
            ("llama", _, true) => permute(t, kv),
            _ => t.clone(),
        };
        qts.push((
            gguf_name(name),
            QTensor::quantize(&t, GgmlDType::F32).unwrap(),
        ));
    }
    let tok: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("tokenizer.json")).unwrap())
            .unwrap();
    let vocab = tok["model"]["vocab"].as_object().unwrap();
    let mut tokens = vec![String::new(); vocab.len()];
    for (t, id) in vocab {
        tokens[id.as_u64().unwrap() as usize] = t.clone();
    }
    let specials: Vec<u64> = tok["added_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_u64().unwrap())
        .collect();
    let merges: Vec<Value> = tok["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m {
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(p) => Value::String(format!(
                "{} {}",
                p[0].as_str().unwrap(),
                p[1].as_str().unwrap()
            )),
            _ => panic!("merge"),
        })
        .collect();
    let adds_bos = tok["post_processor"]["single"].as_array().unwrap().len() > 1;
    let tcfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("tokenizer_config.json")).unwrap())
            .unwrap();
    let u = |k: &str| Value::U32(cfg[k].as_u64().unwrap() as u32);
    let k = |s: &str| format!("{arch}.{s}");
    let mut md: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.clone())),
        (k("block_count"), u("num_hidden_layers")),
        (k("embedding_length"), u("hidden_size")),
        (k("feed_forward_length"), u("intermediate_size")),
        (k("attention.head_count"), u("num_attention_heads")),
        (k("attention.head_count_kv"), u("num_key_value_heads")),
        (k("context_length"), u("max_position_embeddings")),
        (
            k("rope.freq_base"),
            Value::F32(cfg["rope_theta"].as_f64().unwrap() as f32),
        ),
        (
            k("attention.layer_norm_rms_epsilon"),
            Value::F32(cfg["rms_norm_eps"].as_f64().unwrap() as f32),
        ),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("gpt2".into())),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| Value::String(t.clone())).collect()),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(
                (0..tokens.len() as u64)
                    .map(|i| Value::I32(if specials.contains(&i) { 3 } else { 1 }))
                    .collect(),
            ),
        ),
        ("tokenizer.ggml.merges".into(), Value::Array(merges)),
        ("tokenizer.ggml.bos_token_id".into(), u("bos_token_id")),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(adds_bos)),
        (
            "tokenizer.chat_template".into(),
            Value::String(tcfg["chat_template"].as_str().unwrap().into()),
        ),
    ];
    if let Some(hd) = cfg.get("head_dim").and_then(|v| v.as_u64()) {
        md.push((k("attention.key_length"), Value::U32(hd as u32)));
        md.push((k("rope.dimension_count"), Value::U32(hd as u32)));
    }
    let mdr: Vec<(&str, &Value)> = md.iter().map(|(a, b)| (a.as_str(), b)).collect();
    let tr: Vec<(&str, &QTensor)> = qts.iter().map(|(a, b)| (a.as_str(), b)).collect();
    let mut f = std::fs::File::create(dst).unwrap();
    gguf_file::write(&mut f, &mdr, &tr).unwrap();
}

#[test]
fn gguf_llama_and_qwen3_equal_their_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    for family in ["llama", "qwen3"] {
        let path = dir.path().join(format!("{family}.gguf"));
        write_gguf(&tiny(family), &path);
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
