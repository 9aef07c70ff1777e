//! Writes random-weight checkpoints with Llama-3.1-8B's exact shapes, for
//! the benchmark's scale section (`bench --scale DIR`):
//!
//! - `DIR/llama-3.1-8b-shaped/`: bf16 safetensors in four shards with an
//!   index, Llama 3.1's config.json as published (128256 vocabulary, llama3
//!   RoPE scaling), and SmolLM2's tokenizer: 49152 tokens against 128256
//!   embedding rows, as many published checkpoints have more rows than
//!   their tokenizer uses.
//! - `DIR/llama-3.1-8b-shaped-Q4_K.gguf`: the same shapes quantized with
//!   candle (Q4_K; the output matrix Q6_K, as llama.cpp's Q4_K_M does),
//!   llama.cpp's tensor names and metadata, Llama 3.1's `rope_freqs`, and
//!   the SmolLM2 GGUF's tokenizer metadata.
//!
//! The values are noise (uniform, scaled like an initialisation; norms 1):
//! shapes, dtypes, layouts and file formats are real, the predictions are
//! not. So llama.cpp's q/k row permutation is not applied either.
//!
//! `cargo run --release --example scale_checkpoint -- [--out DIR]`
//! (default `target/scale`; about 16 GB and 4.7 GB on disk, a few minutes).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{Device, Tensor};
use logitlens_engine::default_model::ensure_default_model;
use logitlens_engine::load::gguf::GgufFile;
use logitlens_engine::nn::rope::{inv_freq, Llama3RopeScaling};
use rayon::prelude::*;

const VOCAB: usize = 128_256;
const D: usize = 4096;
const FF: usize = 14_336;
const LAYERS: usize = 32;
const HEADS: usize = 32;
const KV_HEADS: usize = 8;
const HEAD_DIM: usize = 128;
const SHARDS: usize = 4;

/// Llama-3.1-8B's config.json as published.
const CONFIG: &str = r#"{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 8.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
}"#;

/// One tensor of the checkpoint: its HF name, llama.cpp name and shape.
struct Spec {
    hf: String,
    gguf: String,
    shape: Vec<usize>,
}

fn specs() -> Vec<Spec> {
    let t = |hf: String, gguf: String, shape: &[usize]| Spec {
        hf,
        gguf,
        shape: shape.to_vec(),
    };
    let mut out = vec![t(
        "model.embed_tokens.weight".into(),
        "token_embd.weight".into(),
        &[VOCAB, D],
    )];
    let (q, kv) = (HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
    for l in 0..LAYERS {
        let hf = |s: &str| format!("model.layers.{l}.{s}.weight");
        let gg = |s: &str| format!("blk.{l}.{s}.weight");
        out.push(t(hf("input_layernorm"), gg("attn_norm"), &[D]));
        out.push(t(hf("self_attn.q_proj"), gg("attn_q"), &[q, D]));
        out.push(t(hf("self_attn.k_proj"), gg("attn_k"), &[kv, D]));
        out.push(t(hf("self_attn.v_proj"), gg("attn_v"), &[kv, D]));
        out.push(t(hf("self_attn.o_proj"), gg("attn_output"), &[D, q]));
        out.push(t(hf("post_attention_layernorm"), gg("ffn_norm"), &[D]));
        out.push(t(hf("mlp.gate_proj"), gg("ffn_gate"), &[FF, D]));
        out.push(t(hf("mlp.up_proj"), gg("ffn_up"), &[FF, D]));
        out.push(t(hf("mlp.down_proj"), gg("ffn_down"), &[D, FF]));
    }
    out.push(t(
        "model.norm.weight".into(),
        "output_norm.weight".into(),
        &[D],
    ));
    out.push(t(
        "lm_head.weight".into(),
        "output.weight".into(),
        &[VOCAB, D],
    ));
    out
}

/// Deterministic noise for a tensor: uniform in ±sqrt(3/fan_in) (unit
/// variance of a product with unit inputs), norms exactly 1.
fn values(spec: &Spec, seed: u64) -> Vec<f32> {
    let n: usize = spec.shape.iter().product();
    if spec.shape.len() == 1 {
        return vec![1.0; n];
    }
    let scale = (3.0 / *spec.shape.last().unwrap() as f64).sqrt() as f32;
    let chunk = 1 << 20;
    let mut out = vec![0f32; n];
    out.par_chunks_mut(chunk).enumerate().for_each(|(c, xs)| {
        let mut s = seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for x in xs {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *x = ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale;
        }
    });
    out
}

fn bf16_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter()
        .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
        .collect()
}

fn write_safetensors(dir: &Path, specs: &[Spec]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), CONFIG).unwrap();
    let total: usize = specs
        .iter()
        .map(|s| s.shape.iter().product::<usize>() * 2)
        .sum();
    let per_shard = total.div_ceil(SHARDS);
    let mut weight_map = serde_json::Map::new();
    let (mut shard, mut at) = (0usize, 0usize);
    let mut i = 0;
    while i < specs.len() {
        // Tensors in order until the shard holds its share.
        let name = format!("model-{:05}-of-{SHARDS:05}.safetensors", shard + 1);
        let mut tensors: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
        let mut bytes = 0;
        while i < specs.len() && (bytes < per_shard || shard + 1 == SHARDS) {
            let s = &specs[i];
            let data = bf16_bytes(&values(s, i as u64 + 1));
            bytes += data.len();
            weight_map.insert(s.hf.clone(), name.clone().into());
            tensors.push((s.hf.clone(), data, s.shape.clone()));
            i += 1;
        }
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .map(|(n, d, shape)| {
                let v = safetensors::tensor::TensorView::new(
                    safetensors::Dtype::BF16,
                    shape.clone(),
                    d,
                )
                .unwrap();
                (n.clone(), v)
            })
            .collect();
        let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
        safetensors::tensor::serialize_to_file(views, Some(meta), &dir.join(&name)).unwrap();
        at += bytes;
        eprintln!("  {name}: {:.2} GB", bytes as f64 / 1e9);
        shard += 1;
    }
    let index = serde_json::json!({"metadata": {"total_size": at}, "weight_map": weight_map});
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_string_pretty(&index).unwrap(),
    )
    .unwrap();
}

/// Quantize row blocks in parallel (each row is whole blocks, so the parts'
/// bytes concatenate to the whole tensor's).
fn quantize(xs: Vec<f32>, shape: &[usize], dtype: GgmlDType) -> QTensor {
    let (rows, cols) = (shape[0], shape[1]);
    let per = rows.div_ceil(rayon::current_num_threads() * 4).max(1);
    let parts: Vec<Vec<u8>> = xs
        .par_chunks(per * cols)
        .map(|part| {
            let t = Tensor::from_slice(part, (part.len() / cols, cols), &Device::Cpu).unwrap();
            QTensor::quantize(&t, dtype)
                .unwrap()
                .data()
                .unwrap()
                .to_vec()
        })
        .collect();
    let bytes: Vec<u8> = parts.concat();
    QTensor::new(
        QStorage::from_data(std::borrow::Cow::Owned(bytes), &Device::Cpu, dtype).unwrap(),
        (rows, cols),
    )
    .unwrap()
}

fn write_gguf(path: &Path, specs: &[Spec]) {
    let smol = ensure_default_model(&mut |m| eprintln!("{m}")).unwrap();
    let smol = GgufFile::open(&smol).unwrap();
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let xs = values(s, i as u64 + 1);
        let q = if s.shape.len() == 1 {
            QTensor::quantize(
                &Tensor::from_vec(xs, s.shape[0], &Device::Cpu).unwrap(),
                GgmlDType::F32,
            )
            .unwrap()
        } else {
            let dtype = if s.gguf == "output.weight" {
                GgmlDType::Q6K
            } else {
                GgmlDType::Q4K
            };
            quantize(xs, &s.shape, dtype)
        };
        tensors.push((s.gguf.clone(), q));
    }
    // Llama 3.1's RoPE scaling as llama.cpp stores it: per-frequency divisors.
    let scaling = Llama3RopeScaling {
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192.0,
    };
    let plain = inv_freq(HEAD_DIM, 500_000.0, None);
    let scaled = inv_freq(HEAD_DIM, 500_000.0, Some(&scaling));
    let factors: Vec<f32> = plain.iter().zip(&scaled).map(|(p, s)| p / s).collect();
    let n = factors.len();
    tensors.push((
        "rope_freqs.weight".into(),
        QTensor::quantize(
            &Tensor::from_vec(factors, n, &Device::Cpu).unwrap(),
            GgmlDType::F32,
        )
        .unwrap(),
    ));
    let u = |x: usize| Value::U32(x as u32);
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String("llama".into())),
        (
            "general.name".into(),
            Value::String("Llama-3.1-8B-shaped (random weights)".into()),
        ),
        ("general.file_type".into(), u(15)), // llama.cpp's MOSTLY_Q4_K_M
        ("llama.block_count".into(), u(LAYERS)),
        ("llama.context_length".into(), u(131_072)),
        ("llama.embedding_length".into(), u(D)),
        ("llama.feed_forward_length".into(), u(FF)),
        ("llama.attention.head_count".into(), u(HEADS)),
        ("llama.attention.head_count_kv".into(), u(KV_HEADS)),
        ("llama.rope.freq_base".into(), Value::F32(500_000.0)),
        ("llama.rope.dimension_count".into(), u(HEAD_DIM)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(1e-5),
        ),
        ("llama.vocab_size".into(), u(VOCAB)),
    ];
    for (k, v) in &smol.content.metadata {
        if k.starts_with("tokenizer.") {
            meta.push((k.clone(), v.clone()));
        }
    }
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    gguf_file::write(&mut f, &meta_refs, &tensor_refs).unwrap();
    f.flush().unwrap();
}

fn write_tokenizer(dir: &Path) {
    let smol = ensure_default_model(&mut |m| eprintln!("{m}")).unwrap();
    let file = GgufFile::open(&smol).unwrap();
    let tok = logitlens_engine::tokenizer::gguf::tokenizer_from_gguf(&file.content).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tok.to_string(false).unwrap()).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/scale"));
    let specs = specs();
    let params: usize = specs
        .iter()
        .map(|s| s.shape.iter().product::<usize>())
        .sum();
    eprintln!("{params} parameters (Llama-3.1-8B: 8030261248)");
    let t = Instant::now();
    let dir = out.join("llama-3.1-8b-shaped");
    write_safetensors(&dir, &specs);
    write_tokenizer(&dir);
    eprintln!("{} in {:.0} s", dir.display(), t.elapsed().as_secs_f64());
    let t = Instant::now();
    let gguf = out.join("llama-3.1-8b-shaped-Q4_K.gguf");
    write_gguf(&gguf, &specs);
    eprintln!("{} in {:.0} s", gguf.display(), t.elapsed().as_secs_f64());
}
