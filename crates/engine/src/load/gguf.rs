//! GGUF checkpoints: the metadata under the names a config.json uses (so
//! the family descriptor resolves it as it resolves a config.json), and the
//! tensors, still in their quantized blocks, under the Hugging Face
//! state-dict names, so one model code path serves safetensors and GGUF
//! (and widens them, or keeps them as stored).

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::Device;
use serde_json::{json, Map};

use crate::error::{EngineError, Result};
use crate::model::{Config, Family};
use crate::nn::{Matrix, Stored};

/// An opened GGUF file whose tensors are not read yet.
pub struct GgufFile {
    file: File,
    pub content: Content,
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

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path)?;
        let content = Content::read(&mut file).map_err(|e| {
            EngineError::Model(format!(
                "{} is not a readable GGUF file: {e}",
                path.display()
            ))
        })?;
        Ok(GgufFile { file, content })
    }

    /// The family its `general.architecture` names; `Err` says what it named.
    pub fn family(&self) -> Result<std::result::Result<Family, String>> {
        let arch = meta(&self.content, "general.architecture")?
            .to_string()
            .map_err(|e| EngineError::Model(e.to_string()))?;
        Ok(match arch.as_str() {
            "llama" => Ok(Family::Llama),
            "qwen3" => Ok(Family::Qwen3),
            other => Err(format!(
                "GGUF architecture {other:?}; GGUF files of llama and qwen3 are read"
            )),
        })
    }

    /// `tokenizer.ggml.eos_token_id`, when the file names one (a negative
    /// id is llama.cpp's "none"; the tokenizer has checked the range).
    pub fn eos_id(&self) -> Result<Option<u32>> {
        let key = "tokenizer.ggml.eos_token_id";
        let Some(v) = self.content.metadata.get(key) else {
            return Ok(None);
        };
        let id = crate::tokenizer::gguf::int_value(v)
            .ok_or_else(|| EngineError::Model(format!("GGUF `{key}` is not an integer")))?;
        Ok(u32::try_from(id).ok())
    }

    /// The metadata as the config.json fields it came from.
    pub fn config_fields(&self, family: Family) -> Result<Map<String, serde_json::Value>> {
        let c = &self.content;
        let arch = family.as_str();
        let k = |s: &str| format!("{arch}.{s}");
        let hidden = meta_u(c, &k("embedding_length"))?;
        let heads = meta_u(c, &k("attention.head_count"))?;
        let head_dim = meta_u(c, &k("attention.key_length")).unwrap_or(hidden / heads.max(1));
        if let Ok(rot) = meta_u(c, &k("rope.dimension_count")) {
            if rot != head_dim {
                return Err(EngineError::Unsupported(format!(
                    "partial rotary embeddings ({rot} of {head_dim} dims) in a GGUF file are not supported"
                )));
            }
        }
        let vocab = c
            .tensor_infos
            .get("token_embd.weight")
            .map(|t| t.shape.dims()[0])
            .ok_or_else(|| EngineError::Model("GGUF has no token_embd.weight".into()))?;
        let has = |name: &str| c.tensor_infos.contains_key(name);
        let mut fields = json!({
            "model_type": arch,
            "vocab_size": vocab,
            "hidden_size": hidden,
            "intermediate_size": meta_u(c, &k("feed_forward_length"))?,
            "num_hidden_layers": meta_u(c, &k("block_count"))?,
            "num_attention_heads": heads,
            "num_key_value_heads": meta_u(c, &k("attention.head_count_kv")).unwrap_or(heads),
            "head_dim": head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": meta_f(c, &k("attention.layer_norm_rms_epsilon")).unwrap_or(1e-5),
            "rope_theta": meta_f(c, &k("rope.freq_base")).unwrap_or(10_000.0),
            "max_position_embeddings": meta_u(c, &k("context_length")).unwrap_or(2048),
            "tie_word_embeddings": !has("output.weight"),
            "attention_bias": has("blk.0.attn_q.bias"),
            "mlp_bias": has("blk.0.ffn_up.bias"),
        });
        Ok(std::mem::take(fields.as_object_mut().expect("an object")))
    }

    /// Bytes of every tensor as stored and of the largest one, and how
    /// many numbers they hold.
    pub(crate) fn sizes(&self) -> super::Sizes {
        let mut out = super::Sizes::default();
        for info in self.content.tensor_infos.values() {
            let elems = info.shape.elem_count() as u64;
            let bytes =
                elems / info.ggml_dtype.block_size() as u64 * info.ggml_dtype.type_size() as u64;
            out.add(bytes, elems);
        }
        out
    }

    /// Read every tensor, renamed to the HF state-dict names of `cfg`'s
    /// family: in its blocks with `keep_blocks`, else dequantized to f32 as
    /// it is read (so a widened load never holds the blocks and the wide
    /// copy at once). `progress(done, total)` counts tensors.
    pub fn read_tensors(
        mut self,
        cfg: &Config,
        keep_blocks: bool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<GgufTensors> {
        let dev = Device::Cpu;
        let mut tensors = HashMap::new();
        let mut rope_freq_factors = None;
        let mut kinds: Vec<String> = Vec::new();
        let names: Vec<String> = self.content.tensor_infos.keys().cloned().collect();
        let total = names.len();
        for (i, name) in names.iter().enumerate() {
            let qt = self.content.tensor(&mut self.file, name, &dev)?;
            let kind = format!("{:?}", qt.dtype());
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
            if name == "rope_freqs.weight" {
                let t = qt.dequantize(&dev)?;
                rope_freq_factors = Some(t.flatten_all()?.to_vec1::<f32>()?);
            } else if let Some(hf) = hf_name(name) {
                let llama = cfg.family == Family::Llama;
                let heads = if !llama {
                    None
                } else if name.contains(".attn_q.") {
                    Some(cfg.n_heads)
                } else if name.contains(".attn_k.") {
                    Some(cfg.n_kv_heads)
                } else {
                    None
                };
                let t = if keep_blocks {
                    Stored::Blocks(Arc::new(qt))
                } else {
                    Stored::Tensor(qt.dequantize(&dev)?)
                };
                let t = match heads {
                    Some(h) => unpermute(t, h)?,
                    None => t,
                };
                tensors.insert(hf, t);
            } else {
                return Err(EngineError::Unsupported(format!(
                    "GGUF tensor {name:?} has no place in a {} model",
                    cfg.family
                )));
            }
            progress(i + 1, total);
        }
        kinds.sort();
        Ok(GgufTensors {
            tensors,
            rope_freq_factors,
            dtypes: kinds.join(", "),
        })
    }
}

/// What [`GgufFile::read_tensors`] gives back.
pub struct GgufTensors {
    /// Under HF state-dict names, in their blocks or dequantized.
    pub tensors: HashMap<String, Stored>,
    /// llama.cpp's `rope_freqs.weight`: per-frequency divisors (Llama 3.x).
    pub rope_freq_factors: Option<Vec<f32>>,
    /// The quantisation types found, e.g. "Q4_1, F32".
    pub dtypes: String,
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

/// The row order that undoes llama.cpp's q/k permutation (made for
/// interleaved RoPE), so the weights fit the half-split RoPE the HF layout
/// uses: llama.cpp's row `(h, i, j)` of shape `(heads, hd/2, 2)` is HF's
/// row `(h, j, i)`.
fn unpermuted_rows(rows: usize, n_head: usize) -> Vec<usize> {
    let hd = rows / n_head.max(1);
    let half = hd / 2;
    (0..n_head)
        .flat_map(|h| (0..2).flat_map(move |j| (0..half).map(move |i| h * hd + i * 2 + j)))
        .collect()
}

/// Undo llama.cpp's q/k permutation on a weight (whole quantized rows move,
/// so it stays in its blocks) or a bias.
fn unpermute(t: Stored, n_head: usize) -> Result<Stored> {
    let m = match t {
        Stored::Blocks(q) if q.shape().rank() == 2 => Matrix::Blocks(q),
        Stored::Blocks(q) => Matrix::Dense(q.dequantize(&q.device())?.reshape(((), 1))?),
        Stored::Tensor(t) => Matrix::Dense(t.reshape((t.dim(0)?, ()))?),
    };
    let (rows, _) = m.dims();
    Ok(match m.select_rows(&unpermuted_rows(rows, n_head))? {
        Matrix::Blocks(q) => Stored::Blocks(q),
        Matrix::Dense(t) if t.dim(1)? == 1 => Stored::Tensor(t.flatten_all()?),
        Matrix::Dense(t) => Stored::Tensor(t),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

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
        let Stored::Tensor(back) = unpermute(Stored::Tensor(permuted), 2).unwrap() else {
            panic!("a tensor stays a tensor")
        };
        assert_eq!(back.to_vec2::<f32>().unwrap(), w.to_vec2::<f32>().unwrap());
    }

    #[test]
    fn unpermute_moves_quantized_rows_whole() {
        use candle_core::quantized::{GgmlDType, QTensor};
        let dev = Device::Cpu;
        let w = (Tensor::arange(0f32, (8 * 64) as f32, &dev).unwrap() / 100.0)
            .unwrap()
            .sin()
            .unwrap()
            .reshape((8, 64))
            .unwrap();
        let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap());
        let wide = q.dequantize(&dev).unwrap();
        let Stored::Tensor(want) = unpermute(Stored::Tensor(wide), 2).unwrap() else {
            panic!("a tensor stays a tensor")
        };
        let Stored::Blocks(got) = unpermute(Stored::Blocks(q), 2).unwrap() else {
            panic!("blocks stay blocks")
        };
        assert_eq!(
            got.dequantize(&dev).unwrap().to_vec2::<f32>().unwrap(),
            want.to_vec2::<f32>().unwrap()
        );
    }
}
