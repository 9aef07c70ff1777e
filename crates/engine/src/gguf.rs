//! GGUF checkpoints: config from metadata, tensors dequantized to f32 and
//! renamed to the Hugging Face state-dict names, so one model code path
//! serves safetensors and GGUF.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};

use crate::config::{Arch, ModelConfig};
use crate::error::{EngineError, Result};

pub struct GgufCheckpoint {
    pub config: ModelConfig,
    pub content: Content,
    /// HF-named f32 tensors.
    pub tensors: HashMap<String, Tensor>,
    /// llama.cpp's `rope_freqs.weight`: per-frequency divisors (Llama 3.x).
    pub rope_freq_factors: Option<Vec<f32>>,
    /// The quantisation types found, e.g. "Q4_1, F32".
    pub dtypes: String,
}

fn meta<'a>(c: &'a Content, key: &str) -> Result<&'a Value> {
    c.metadata
        .get(key)
        .ok_or_else(|| EngineError::Model(format!("GGUF metadata lacks `{key}`")))
}

fn meta_u(c: &Content, key: &str) -> Result<usize> {
    let v = meta(c, key)?;
    v.to_u64()
        .map(|x| x as usize)
        .or_else(|_| v.to_u32().map(|x| x as usize))
        .or_else(|_| v.to_i32().map(|x| x as usize))
        .map_err(|e| EngineError::Model(format!("GGUF `{key}`: {e}")))
}

fn meta_f(c: &Content, key: &str) -> Option<f64> {
    let v = c.metadata.get(key)?;
    // f32 metadata holds a decimal from config.json (1e-5 is stored as
    // 9.99999975e-6): its shortest decimal form is the value meant.
    v.to_f32()
        .map(|x| x.to_string().parse::<f64>().unwrap_or(f64::from(x)))
        .or_else(|_| v.to_f64())
        .ok()
}

pub fn config_from_gguf(c: &Content) -> Result<ModelConfig> {
    let arch_name = meta(c, "general.architecture")?
        .to_string()
        .map_err(|e| EngineError::Model(e.to_string()))?
        .clone();
    let arch = match arch_name.as_str() {
        "llama" => Arch::Llama,
        "qwen3" => Arch::Qwen3,
        other => {
            return Err(EngineError::Unsupported(format!(
                "GGUF architecture {other:?} is not supported; the custom backend supports {}",
                Arch::SUPPORTED
            )))
        }
    };
    let k = |s: &str| format!("{arch_name}.{s}");
    let hidden = meta_u(c, &k("embedding_length"))?;
    let heads = meta_u(c, &k("attention.head_count"))?;
    let kv = meta_u(c, &k("attention.head_count_kv")).unwrap_or(heads);
    let head_dim = meta_u(c, &k("attention.key_length")).unwrap_or(hidden / heads.max(1));
    if let Ok(rot) = meta_u(c, &k("rope.dimension_count")) {
        if rot != head_dim {
            return Err(EngineError::Unsupported(format!(
                "partial rotary embeddings ({rot} of {head_dim} dims) are not supported by the custom backend"
            )));
        }
    }
    let vocab = c
        .tensor_infos
        .get("token_embd.weight")
        .map(|t| t.shape.dims()[0])
        .ok_or_else(|| EngineError::Model("GGUF has no token_embd.weight".into()))?;
    let cfg = ModelConfig {
        arch,
        vocab_size: vocab,
        hidden_size: hidden,
        intermediate_size: meta_u(c, &k("feed_forward_length"))?,
        num_hidden_layers: meta_u(c, &k("block_count"))?,
        num_attention_heads: heads,
        num_key_value_heads: kv,
        head_dim,
        rms_norm_eps: meta_f(c, &k("attention.layer_norm_rms_epsilon")).unwrap_or(1e-5),
        rope_theta: meta_f(c, &k("rope.freq_base")).unwrap_or(10_000.0),
        rope_scaling: None,
        max_position_embeddings: meta_u(c, &k("context_length")).unwrap_or(2048),
        tie_word_embeddings: !c.tensor_infos.contains_key("output.weight"),
        attention_bias: c.tensor_infos.contains_key("blk.0.attn_q.bias"),
        mlp_bias: c.tensor_infos.contains_key("blk.0.ffn_up.bias"),
    };
    cfg.validate()?;
    Ok(cfg)
}

/// GGUF tensor name -> HF name.
fn hf_name(gguf: &str) -> Option<String> {
    let direct = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(d) = direct {
        return Some(d.to_owned());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (part, suffix) = rest.rsplit_once('.')?;
    let hf = match part {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "attn_q_norm" => "self_attn.q_norm",
        "attn_k_norm" => "self_attn.k_norm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

/// Undo llama.cpp's q/k permutation (made for interleaved RoPE) so the
/// weights fit the half-split RoPE the HF layout uses.
fn unpermute(t: &Tensor, n_head: usize) -> Result<Tensor> {
    let dims = t.dims().to_vec();
    let out = dims[0];
    let rest: usize = dims[1..].iter().product();
    let half = out / n_head / 2;
    Ok(t.reshape((n_head, half, 2, rest))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(dims)?)
}

/// Read and dequantize a GGUF file. `progress(done, total)` counts tensors.
pub fn load(path: &Path, progress: &mut dyn FnMut(usize, usize)) -> Result<GgufCheckpoint> {
    let mut f = File::open(path)?;
    let content = Content::read(&mut f).map_err(|e| {
        EngineError::Model(format!(
            "{} is not a readable GGUF file: {e}",
            path.display()
        ))
    })?;
    let config = config_from_gguf(&content)?;
    let dev = Device::Cpu;
    let mut tensors = HashMap::new();
    let mut rope_freq_factors = None;
    let mut kinds: Vec<String> = Vec::new();
    let names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    let total = names.len();
    for (i, name) in names.iter().enumerate() {
        let qt = content.tensor(&mut f, name, &dev)?;
        let kind = format!("{:?}", qt.dtype());
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
        let t = qt.dequantize(&dev)?;
        if name == "rope_freqs.weight" {
            rope_freq_factors = Some(t.flatten_all()?.to_vec1::<f32>()?);
        } else if let Some(hf) = hf_name(name) {
            let t = if config.arch == Arch::Llama && name.contains(".attn_q.") {
                unpermute(&t, config.num_attention_heads)?
            } else if config.arch == Arch::Llama && name.contains(".attn_k.") {
                unpermute(&t, config.num_key_value_heads)?
            } else {
                t
            };
            tensors.insert(hf, t);
        } else {
            return Err(EngineError::Unsupported(format!(
                "GGUF tensor {name:?} has no place in a {:?} model",
                config.arch
            )));
        }
        progress(i + 1, total);
    }
    kinds.sort();
    Ok(GgufCheckpoint {
        config,
        content,
        tensors,
        rope_freq_factors,
        dtypes: kinds.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_names() {
        assert_eq!(
            hf_name("blk.3.attn_q.weight").unwrap(),
            "model.layers.3.self_attn.q_proj.weight"
        );
        assert_eq!(
            hf_name("blk.0.ffn_norm.weight").unwrap(),
            "model.layers.0.post_attention_layernorm.weight"
        );
        assert_eq!(hf_name("output.weight").unwrap(), "lm_head.weight");
        assert!(hf_name("blk.0.weird.weight").is_none());
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        let dev = Device::Cpu;
        // 2 heads of dim 4, 3 inputs.
        let w = Tensor::arange(0f32, 24.0, &dev)
            .unwrap()
            .reshape((8, 3))
            .unwrap();
        // llama.cpp: reshape(n_head, 2, hd/2, in).swapaxes(1, 2)
        let permuted = w
            .reshape((2, 2, 2, 3))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((8, 3))
            .unwrap();
        let back = unpermute(&permuted, 2).unwrap();
        assert_eq!(back.to_vec2::<f32>().unwrap(), w.to_vec2::<f32>().unwrap());
    }
}
