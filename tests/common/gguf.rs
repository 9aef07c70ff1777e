//! Tiny checkpoints written as GGUF files the way llama.cpp's converter
//! writes them (names, q/k rows permuted for Llama, tokenizer metadata).

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

/// llama.cpp's `permute`: reshape(n_head, 2, hd/2, in).swapaxes(1, 2).
pub fn permute(t: &Tensor, n_head: usize) -> Tensor {
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

pub fn gguf_name(hf: &str) -> String {
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

/// Write a tiny HF checkpoint as a GGUF with tokenizer metadata, as
/// llama.cpp's converter would: matrices in `dtype` blocks, vectors in f32.
pub fn write_gguf(src: &Path, dst: &Path, dtype: GgmlDType) {
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
        let dtype = if t.rank() == 2 { dtype } else { GgmlDType::F32 };
        qts.push((gguf_name(name), QTensor::quantize(&t, dtype).unwrap()));
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
