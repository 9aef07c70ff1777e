//! One descriptor per family: how its config.json resolves (names and
//! transformers' defaults) and where its checkpoint keeps each tensor.
//! Everything that makes "gemma2" gemma2 is in its section here; the
//! forward pass (`model/mod.rs`) only reads the resolved axes.
//!
//! Defaults follow transformers' `configuration_<family>.py`, tensor names
//! its `modeling_<family>.py` state dicts.

use crate::error::{EngineError, Result};
use crate::nn::{Activation, NormKind};

use super::config::{Config, Family, Fields, Residual};

/// How a family's checkpoint names its tensors, relative to its root.
pub(crate) struct Layout {
    /// The decoder's prefix (`model`, `transformer`, `gpt_neox`). A
    /// checkpoint saved without it (the original `gpt2`) is accepted too.
    pub(crate) base: &'static str,
    pub(crate) embed: &'static str,
    /// Learned positions, under `base` (GPT-2's `wpe`).
    pub(crate) pos_embed: Option<&'static str>,
    pub(crate) layers: &'static str,
    pub(crate) final_norm: &'static str,
    /// At the root, not under `base`.
    pub(crate) lm_head: &'static str,
    /// The names inside `{base}.{layers}.{i}`.
    pub(crate) block: BlockLayout,
}

pub(crate) struct BlockLayout {
    /// The attention's input norm.
    pub(crate) ln1: &'static str,
    /// The MLP's input norm; `None` when it shares `ln1` (Phi).
    pub(crate) ln2: Option<&'static str>,
    /// Gemma 2's norms on the attention and MLP outputs.
    pub(crate) post_attn_norm: Option<&'static str>,
    pub(crate) post_ff_norm: Option<&'static str>,
    /// The attention module and its projections.
    pub(crate) attn: &'static str,
    pub(crate) qkv: Qkv,
    pub(crate) o: &'static str,
    /// The per-head q and k norms, where the config enables them.
    pub(crate) qk_norm: (&'static str, &'static str),
    pub(crate) mlp: &'static str,
    pub(crate) mlp_proj: MlpProj,
    /// Projections stored as GPT-2's `Conv1D` (`[in, out]`).
    pub(crate) conv1d: bool,
}

/// How q, k and v are stored.
pub(crate) enum Qkv {
    Separate(&'static str, &'static str, &'static str),
    /// One projection whose rows are `[q; k; v]` (Phi-3, GPT-2 `c_attn`).
    Fused(&'static str),
    /// One projection with rows `[head][q, k, v][head_dim]` (GPT-NeoX).
    FusedPerHead(&'static str),
}

/// How the MLP's projections are stored.
pub(crate) enum MlpProj {
    Gated {
        gate: &'static str,
        up: &'static str,
        down: &'static str,
    },
    /// `gate_up_proj`: the first half of the rows is the gate (Phi-3).
    FusedGateUp {
        gate_up: &'static str,
        down: &'static str,
    },
    Plain {
        fc_in: &'static str,
        fc_out: &'static str,
    },
}

/// A family: its config resolution and its tensor layout.
pub(crate) struct Descriptor {
    pub(crate) config: fn(&Fields) -> Result<Config>,
    pub(crate) layout: &'static Layout,
}

pub(crate) fn descriptor(family: Family) -> Descriptor {
    let (config, layout): (fn(&Fields) -> Result<Config>, _) = match family {
        Family::Llama => (llama, &LLAMA),
        Family::Mistral => (mistral, &LLAMA),
        Family::Qwen2 => (qwen2, &LLAMA),
        Family::Qwen3 => (qwen3, &LLAMA),
        Family::Gemma => (gemma, &LLAMA),
        Family::Gemma2 => (gemma2, &GEMMA2),
        Family::Phi3 => (phi3, &PHI3),
        Family::Phi => (phi, &PHI),
        Family::Gpt2 => (gpt2, &GPT2),
        Family::GptNeox => (gpt_neox, &GPT_NEOX),
    };
    Descriptor { config, layout }
}

/// `d_model / n_heads`, when the config gives no head size.
fn split_heads(d_model: usize, n_heads: usize) -> Result<usize> {
    if n_heads == 0 {
        return Err(EngineError::Model("num_attention_heads is 0".into()));
    }
    if !d_model.is_multiple_of(n_heads) {
        return Err(EngineError::Model(format!(
            "hidden size {d_model} is not divisible by {n_heads} heads and no head_dim is given"
        )));
    }
    Ok(d_model / n_heads)
}

// ---- Llama (modeling_llama.py) and the decoders that share its shape ----

/// The Llama decoder: pre-norm RMSNorm blocks, attention with RoPE (Llama 3
/// scaling) and grouped KV heads, a SiLU-gated MLP, untied head by default.
/// The other llama-shaped families start from it, with their own activation.
fn llama_like(family: Family, f: &Fields, act: Activation) -> Result<Config> {
    let d_model = f.usize(&["hidden_size"])?;
    let n_layers = f.usize(&["num_hidden_layers"])?;
    let n_heads = f.usize(&["num_attention_heads"])?;
    let vocab_size = f.usize(&["vocab_size"])?;
    let head_dim = match f.usize_opt(&["head_dim"])? {
        Some(h) if n_heads > 0 => h,
        _ => split_heads(d_model, n_heads)?,
    };
    let attention_bias = f.bool_or("attention_bias", false)?;
    Ok(Config {
        family,
        vocab_size,
        d_model,
        n_layers,
        n_heads,
        n_kv_heads: f.usize_opt(&["num_key_value_heads"])?.unwrap_or(n_heads),
        head_dim,
        d_mlp: f.usize(&["intermediate_size"])?,
        norm: NormKind::Rms,
        norm_eps: f.f64_or(&["rms_norm_eps"], 1e-6)?,
        qk_norm: None,
        act,
        gated_mlp: true,
        residual: Residual::Sequential,
        embed_scale: false,
        n_positions: None,
        max_positions: f.usize_opt(&["max_position_embeddings"])?.unwrap_or(2048),
        // transformers: `int(head_dim * partial_rotary_factor)`.
        rotary_dim: (head_dim as f64 * f.f64_or(&["partial_rotary_factor"], 1.0)?) as usize,
        rope_theta: f.f64_or(&["rope_theta"], 10000.0)?,
        rope_scaling: f.rope_scaling()?,
        rope_freq_factors: None,
        qkv_bias: attention_bias,
        o_bias: attention_bias,
        mlp_bias: false,
        lm_head_bias: false,
        attn_scale: 1.0 / (head_dim as f64).sqrt(),
        scale_by_inverse_layer: false,
        attn_softcap: None,
        final_softcap: None,
        tie_word_embeddings: f.bool_or("tie_word_embeddings", false)?,
        sliding_window: None,
    })
}

/// The activation of the llama-shaped families: `hidden_act`, SiLU by default.
fn silu(f: &Fields) -> Result<Activation> {
    f.act(&["hidden_act"], "silu")
}

fn llama(f: &Fields) -> Result<Config> {
    Ok(Config {
        mlp_bias: f.bool_or("mlp_bias", false)?,
        ..llama_like(Family::Llama, f, silu(f)?)?
    })
}

/// The Llama state dict: `model.layers.{i}.self_attn.q_proj`, `mlp.gate_proj`...
const LLAMA: Layout = Layout {
    base: "model",
    embed: "embed_tokens",
    pos_embed: None,
    layers: "layers",
    final_norm: "norm",
    lm_head: "lm_head",
    block: BlockLayout {
        ln1: "input_layernorm",
        ln2: Some("post_attention_layernorm"),
        post_attn_norm: None,
        post_ff_norm: None,
        attn: "self_attn",
        qkv: Qkv::Separate("q_proj", "k_proj", "v_proj"),
        o: "o_proj",
        qk_norm: ("q_norm", "k_norm"),
        mlp: "mlp",
        mlp_proj: MlpProj::Gated {
            gate: "gate_proj",
            up: "up_proj",
            down: "down_proj",
        },
        conv1d: false,
    },
};

/// Mistral: Llama without biases, with a sliding attention window.
fn mistral(f: &Fields) -> Result<Config> {
    Ok(Config {
        qkv_bias: false,
        o_bias: false,
        sliding_window: f.usize_opt(&["sliding_window"])?,
        ..llama_like(Family::Mistral, f, silu(f)?)?
    })
}

/// A window only when `use_sliding_window` turns it on (Qwen2, Qwen3).
fn optional_window(f: &Fields) -> Result<Option<usize>> {
    if f.bool_or("use_sliding_window", false)? {
        f.usize_opt(&["sliding_window"])
    } else {
        Ok(None)
    }
}

/// Qwen2: biases on q, k and v (never on o).
fn qwen2(f: &Fields) -> Result<Config> {
    Ok(Config {
        qkv_bias: true,
        o_bias: false,
        sliding_window: optional_window(f)?,
        ..llama_like(Family::Qwen2, f, silu(f)?)?
    })
}

/// Qwen3: per-head RMSNorm on q and k before RoPE; `head_dim` explicit.
fn qwen3(f: &Fields) -> Result<Config> {
    Ok(Config {
        qk_norm: Some(NormKind::Rms),
        sliding_window: optional_window(f)?,
        ..llama_like(Family::Qwen3, f, silu(f)?)?
    })
}

// ---- Gemma (modeling_gemma.py) and Gemma 2 (modeling_gemma2.py) ----

/// Gemma: `(1 + w)` RMSNorm, embeddings times sqrt(d), a tanh-GELU gated
/// MLP, tied head. `hidden_activation` wins over `hidden_act` when set (the
/// fix for checkpoints that say "gelu").
fn gemma(f: &Fields) -> Result<Config> {
    Ok(Config {
        norm: NormKind::RmsOnePlus,
        embed_scale: true,
        tie_word_embeddings: f.bool_or("tie_word_embeddings", true)?,
        ..llama_like(
            Family::Gemma,
            f,
            f.act(&["hidden_activation", "hidden_act"], "gelu_pytorch_tanh")?,
        )?
    })
}

/// Gemma 2: Gemma with each sublayer between a pre and a post norm, scores
/// scaled by `query_pre_attn_scalar` and soft-capped (as are the logits),
/// and sliding windows on alternate layers. Its MLP reads
/// `hidden_activation`; its `hidden_act` is vestigial.
fn gemma2(f: &Fields) -> Result<Config> {
    Ok(Config {
        norm: NormKind::RmsOnePlus,
        residual: Residual::Sandwich,
        embed_scale: true,
        attn_scale: 1.0 / f.f64_or(&["query_pre_attn_scalar"], 256.0)?.sqrt(),
        attn_softcap: f.softcap("attn_logit_softcapping", 50.0)?,
        final_softcap: f.softcap("final_logit_softcapping", 30.0)?,
        tie_word_embeddings: f.bool_or("tie_word_embeddings", true)?,
        sliding_window: Some(f.usize_opt(&["sliding_window"])?.unwrap_or(4096)),
        ..llama_like(
            Family::Gemma2,
            f,
            f.act(&["hidden_activation"], "gelu_pytorch_tanh")?,
        )?
    })
}

/// Gemma 2's `post_attention_layernorm` normalises the attention output;
/// the MLP's input norm is `pre_feedforward_layernorm`.
const GEMMA2: Layout = Layout {
    block: BlockLayout {
        ln2: Some("pre_feedforward_layernorm"),
        post_attn_norm: Some("post_attention_layernorm"),
        post_ff_norm: Some("post_feedforward_layernorm"),
        ..LLAMA.block
    },
    ..LLAMA
};

// ---- Phi-3 (modeling_phi3.py) ----

/// Phi-3: Llama without biases, fused projections, eps 1e-5, a window.
fn phi3(f: &Fields) -> Result<Config> {
    Ok(Config {
        norm_eps: f.f64_or(&["rms_norm_eps"], 1e-5)?,
        qkv_bias: false,
        o_bias: false,
        sliding_window: f.usize_opt(&["sliding_window"])?,
        ..llama_like(Family::Phi3, f, silu(f)?)?
    })
}

const PHI3: Layout = Layout {
    block: BlockLayout {
        qkv: Qkv::Fused("qkv_proj"),
        mlp_proj: MlpProj::FusedGateUp {
            gate_up: "gate_up_proj",
            down: "down_proj",
        },
        ..LLAMA.block
    },
    ..LLAMA
};

// ---- Phi (modeling_phi.py) ----

/// The LayerNorm decoders with a plain MLP, partial RoPE and heads of
/// `d_model / n_heads` (Phi, GPT-NeoX), from the llama decoder's fields.
fn layer_norm_decoder(
    family: Family,
    f: &Fields,
    act: Activation,
    rotary_keys: &[&str],
    rotary_default: f64,
) -> Result<Config> {
    let d_model = f.usize(&["hidden_size"])?;
    let n_heads = f.usize(&["num_attention_heads"])?;
    let head_dim = split_heads(d_model, n_heads)?;
    Ok(Config {
        head_dim,
        norm: NormKind::Layer,
        norm_eps: f.f64_or(&["layer_norm_eps"], 1e-5)?,
        gated_mlp: false,
        rotary_dim: (head_dim as f64 * f.f64_or(rotary_keys, rotary_default)?) as usize,
        attn_scale: 1.0 / (head_dim as f64).sqrt(),
        ..llama_like(family, f, act)?
    })
}

/// Phi (1, 1.5, 2): attention and MLP in parallel from one shared
/// LayerNorm, partial RoPE (half the head), biases everywhere including
/// the head, optional LayerNorm on q and k.
fn phi(f: &Fields) -> Result<Config> {
    let act = f.act(&["hidden_act"], "gelu_new")?;
    Ok(Config {
        qk_norm: f.bool_or("qk_layernorm", false)?.then_some(NormKind::Layer),
        residual: Residual::ParallelSharedNorm,
        qkv_bias: true,
        o_bias: true,
        mlp_bias: true,
        lm_head_bias: true,
        ..layer_norm_decoder(Family::Phi, f, act, &["partial_rotary_factor"], 0.5)?
    })
}

const PHI: Layout = Layout {
    final_norm: "final_layernorm",
    block: BlockLayout {
        ln2: None,
        o: "dense",
        qk_norm: ("q_layernorm", "k_layernorm"),
        mlp_proj: MlpProj::Plain {
            fc_in: "fc1",
            fc_out: "fc2",
        },
        ..LLAMA.block
    },
    ..LLAMA
};

// ---- GPT-2 (modeling_gpt2.py) ----

/// GPT-2: learned absolute positions, LayerNorm, a plain GELU MLP, `Conv1D`
/// projections with biases, fused `c_attn`, tied head; no RoPE.
fn gpt2(f: &Fields) -> Result<Config> {
    let d_model = f.usize(&["n_embd", "hidden_size"])?;
    let n_heads = f.usize(&["n_head", "num_attention_heads"])?;
    let head_dim = split_heads(d_model, n_heads)?;
    let n_positions = f.usize_opt(&["n_positions", "n_ctx"])?.unwrap_or(1024);
    Ok(Config {
        family: Family::Gpt2,
        vocab_size: f.usize(&["vocab_size"])?,
        d_model,
        n_layers: f.usize(&["n_layer", "num_hidden_layers"])?,
        n_heads,
        n_kv_heads: n_heads,
        head_dim,
        d_mlp: f.usize_opt(&["n_inner"])?.unwrap_or(4 * d_model),
        norm: NormKind::Layer,
        norm_eps: f.f64_or(&["layer_norm_epsilon"], 1e-5)?,
        qk_norm: None,
        act: f.act(&["activation_function"], "gelu_new")?,
        gated_mlp: false,
        residual: Residual::Sequential,
        embed_scale: false,
        n_positions: Some(n_positions),
        max_positions: n_positions,
        rotary_dim: 0,
        rope_theta: 10000.0,
        rope_scaling: None,
        rope_freq_factors: None,
        qkv_bias: true,
        o_bias: true,
        mlp_bias: true,
        lm_head_bias: false,
        attn_scale: if f.bool_or("scale_attn_weights", true)? {
            1.0 / (head_dim as f64).sqrt()
        } else {
            1.0
        },
        scale_by_inverse_layer: f.bool_or("scale_attn_by_inverse_layer_idx", false)?,
        attn_softcap: None,
        final_softcap: None,
        tie_word_embeddings: f.bool_or("tie_word_embeddings", true)?,
        sliding_window: None,
    })
}

const GPT2: Layout = Layout {
    base: "transformer",
    embed: "wte",
    pos_embed: Some("wpe"),
    layers: "h",
    final_norm: "ln_f",
    lm_head: "lm_head",
    block: BlockLayout {
        ln1: "ln_1",
        ln2: Some("ln_2"),
        post_attn_norm: None,
        post_ff_norm: None,
        attn: "attn",
        qkv: Qkv::Fused("c_attn"),
        o: "c_proj",
        qk_norm: ("q_norm", "k_norm"),
        mlp: "mlp",
        mlp_proj: MlpProj::Plain {
            fc_in: "c_fc",
            fc_out: "c_proj",
        },
        conv1d: true,
    },
};

// ---- GPT-NeoX / Pythia (modeling_gpt_neox.py) ----

/// GPT-NeoX: attention and MLP in parallel (each with its own LayerNorm)
/// unless `use_parallel_residual` is off, partial RoPE (a quarter of the
/// head), per-head fused `query_key_value`, exact GELU, biases.
fn gpt_neox(f: &Fields) -> Result<Config> {
    let act = f.act(&["hidden_act"], "gelu")?;
    let rotary = ["rotary_pct", "partial_rotary_factor"];
    let base = layer_norm_decoder(Family::GptNeox, f, act, &rotary, 0.25)?;
    let bias = f.bool_or("attention_bias", true)?;
    Ok(Config {
        n_kv_heads: base.n_heads,
        residual: if f.bool_or("use_parallel_residual", true)? {
            Residual::Parallel
        } else {
            Residual::Sequential
        },
        rope_theta: f.f64_or(&["rotary_emb_base", "rope_theta"], 10000.0)?,
        qkv_bias: bias,
        o_bias: bias,
        mlp_bias: true,
        ..base
    })
}

const GPT_NEOX: Layout = Layout {
    base: "gpt_neox",
    embed: "embed_in",
    final_norm: "final_layer_norm",
    lm_head: "embed_out",
    block: BlockLayout {
        attn: "attention",
        qkv: Qkv::FusedPerHead("query_key_value"),
        o: "dense",
        mlp_proj: MlpProj::Plain {
            fc_in: "dense_h_to_4h",
            fc_out: "dense_4h_to_h",
        },
        ..LLAMA.block
    },
    ..LLAMA
};
