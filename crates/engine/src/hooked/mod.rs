//! The hooked (TransformerLens-style) backend: one generic transformer
//! driven by each family's config, with every hook point of the custom
//! backend ([`crate::model`]) at the same place.
//!
//! Follows transformers' `modeling_llama.py`, `modeling_mistral.py`,
//! `modeling_qwen2.py`, `modeling_qwen3.py`, `modeling_gemma.py`,
//! `modeling_gemma2.py`, `modeling_phi3.py`, `modeling_phi.py`,
//! `modeling_gpt2.py` and `modeling_gpt_neox.py` (eager attention).
//!
//! # Where the hooks sit
//!
//! `hook_embed` sees the token embeddings (Gemma: already times sqrt(d), as
//! TransformerLens folds the scale into `W_E`); `hook_pos_embed` the learned
//! positions before they are added (GPT-2 only; elsewhere it is an error).
//! Then `resid_pre[0]` is recorded and, per layer `l`:
//!
//! | hook              | sequential (llama ...)  | gemma2 (sandwich)              | gpt_neox (parallel)   | phi (parallel, one norm) |
//! |-------------------|-------------------------|--------------------------------|-----------------------|--------------------------|
//! | `hook_attn_out`   | `attn(ln1(x))`          | `post_attn_norm(attn(ln1(x)))` | `attn(ln1(x))`        | `attn(ln(x))`            |
//! | `hook_resid_mid`  | `x + attn_out`          | `x + attn_out`                 | `x + attn_out` (*)    | `x + attn_out` (*)       |
//! | MLP input         | `ln2(resid_mid)`        | `pre_ff_norm(resid_mid)`       | `ln2(x)`              | `ln(x)` (shared)         |
//! | `hook_mlp_out`    | `mlp(..)`               | `post_ff_norm(mlp(..))`        | `mlp(ln2(x))`         | `mlp(ln(x))`             |
//! | `hook_resid_post` | `resid_mid + mlp_out`   | `resid_mid + mlp_out`          | `resid_mid + mlp_out` | `resid_mid + mlp_out`    |
//!
//! `x` is the block's input (`resid_pre[l]`, after its hook). (*) The
//! parallel families have no real post-attention state; `resid_mid` is
//! defined as `resid_pre + attn_out` (as the references define it), so the
//! block output `resid_pre + attn_out + mlp_out` is `resid_mid + mlp_out`:
//! a `hook_resid_mid` intervention reaches the block output but not the MLP,
//! which reads the block input. After `hook_resid_post` comes
//! `hook_resid_pre` of layer `l + 1`, then the state is recorded.

mod config;
mod layers;

pub use config::{Activation, Family, HookedConfig, NormKind, Residual};

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;

use crate::error::{EngineError, Result};
use crate::hooks::{HookPoint, InterventionPlan};
use crate::model::Capture;
use crate::ops::{attend, repeat_kv, AttnMask, Hooks};
use layers::{conv1d, linear, split_per_head_qkv, split_rows, Attention, Mlp, Norm};

struct Block {
    ln1: Norm,
    /// The MLP's own input norm; `None` when it shares `ln1` (Phi).
    ln2: Option<Norm>,
    /// Gemma 2's norms on the attention and MLP outputs.
    post_attn_norm: Option<Norm>,
    post_ff_norm: Option<Norm>,
    attn: Attention,
    mlp: Mlp,
}

pub struct HookedTransformer {
    cfg: HookedConfig,
    /// `[V, D]` in the compute dtype.
    embed: Tensor,
    /// `[n_positions, D]` learned positions (GPT-2).
    pos_embed: Option<Tensor>,
    blocks: Vec<Block>,
    final_norm: Norm,
    /// `[V, D]` f32 unembedding (the lens projection always runs in f32).
    lm_head: Tensor,
    /// `[V]` f32 (Phi).
    lm_head_bias: Option<Tensor>,
    dtype: DType,
    inv_freq: Vec<f32>,
    device: Device,
}

/// Where a family keeps its tensors, relative to the root of the checkpoint.
struct Names {
    /// The decoder's prefix (`model`, `transformer`, `gpt_neox`).
    base: &'static str,
    embed: &'static str,
    layers: &'static str,
    final_norm: &'static str,
    /// At the root, not under `base`.
    lm_head: &'static str,
}

fn names(family: Family) -> Names {
    match family {
        Family::Gpt2 => Names {
            base: "transformer",
            embed: "wte",
            layers: "h",
            final_norm: "ln_f",
            lm_head: "lm_head",
        },
        Family::GptNeox => Names {
            base: "gpt_neox",
            embed: "embed_in",
            layers: "layers",
            final_norm: "final_layer_norm",
            lm_head: "embed_out",
        },
        Family::Phi => Names {
            base: "model",
            embed: "embed_tokens",
            layers: "layers",
            final_norm: "final_layernorm",
            lm_head: "lm_head",
        },
        _ => Names {
            base: "model",
            embed: "embed_tokens",
            layers: "layers",
            final_norm: "norm",
            lm_head: "lm_head",
        },
    }
}

fn load_attention(cfg: &HookedConfig, vb: &VarBuilder) -> Result<Attention> {
    let (d, hd) = (cfg.d_model, cfg.head_dim);
    let (q_dim, kv_dim) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
    let (q, k, v, o) = match cfg.family {
        Family::Gpt2 => {
            let a = vb.pp("attn");
            let fused = conv1d(&a.pp("c_attn"), 3 * d, d)?;
            let [q, k, v]: [_; 3] = split_rows(&fused, &[d, d, d])?
                .try_into()
                .map_err(|_| EngineError::Model("c_attn split".into()))?;
            (q, k, v, conv1d(&a.pp("c_proj"), d, d)?)
        }
        Family::GptNeox => {
            let a = vb.pp("attention");
            let fused = linear(&a.pp("query_key_value"), 3 * q_dim, d, cfg.qkv_bias)?;
            let [q, k, v] = split_per_head_qkv(&fused, cfg.n_heads, hd)?;
            (q, k, v, linear(&a.pp("dense"), d, q_dim, cfg.o_bias)?)
        }
        Family::Phi3 => {
            let a = vb.pp("self_attn");
            let fused = linear(&a.pp("qkv_proj"), q_dim + 2 * kv_dim, d, cfg.qkv_bias)?;
            let [q, k, v]: [_; 3] = split_rows(&fused, &[q_dim, kv_dim, kv_dim])?
                .try_into()
                .map_err(|_| EngineError::Model("qkv_proj split".into()))?;
            (q, k, v, linear(&a.pp("o_proj"), d, q_dim, cfg.o_bias)?)
        }
        _ => {
            let a = vb.pp("self_attn");
            let o_name = if cfg.family == Family::Phi {
                "dense"
            } else {
                "o_proj"
            };
            (
                linear(&a.pp("q_proj"), q_dim, d, cfg.qkv_bias)?,
                linear(&a.pp("k_proj"), kv_dim, d, cfg.qkv_bias)?,
                linear(&a.pp("v_proj"), kv_dim, d, cfg.qkv_bias)?,
                linear(&a.pp(o_name), d, q_dim, cfg.o_bias)?,
            )
        }
    };
    let (q_norm, k_norm) = match (cfg.qk_norm, cfg.family) {
        (Some(kind), Family::Phi) => {
            let a = vb.pp("self_attn");
            (
                Some(Norm::load(&a.pp("q_layernorm"), kind, hd, cfg.norm_eps)?),
                Some(Norm::load(&a.pp("k_layernorm"), kind, hd, cfg.norm_eps)?),
            )
        }
        (Some(kind), _) => {
            let a = vb.pp("self_attn");
            (
                Some(Norm::load(&a.pp("q_norm"), kind, hd, cfg.norm_eps)?),
                Some(Norm::load(&a.pp("k_norm"), kind, hd, cfg.norm_eps)?),
            )
        }
        (None, _) => (None, None),
    };
    Ok(Attention {
        q,
        k,
        v,
        o,
        q_norm,
        k_norm,
    })
}

fn load_mlp(cfg: &HookedConfig, vb: &VarBuilder) -> Result<Mlp> {
    let (d, f, bias) = (cfg.d_model, cfg.d_mlp, cfg.mlp_bias);
    Ok(match cfg.family {
        Family::Gpt2 => {
            let m = vb.pp("mlp");
            Mlp::Plain {
                fc_in: conv1d(&m.pp("c_fc"), f, d)?,
                fc_out: conv1d(&m.pp("c_proj"), d, f)?,
            }
        }
        Family::GptNeox => {
            let m = vb.pp("mlp");
            Mlp::Plain {
                fc_in: linear(&m.pp("dense_h_to_4h"), f, d, bias)?,
                fc_out: linear(&m.pp("dense_4h_to_h"), d, f, bias)?,
            }
        }
        Family::Phi => {
            let m = vb.pp("mlp");
            Mlp::Plain {
                fc_in: linear(&m.pp("fc1"), f, d, bias)?,
                fc_out: linear(&m.pp("fc2"), d, f, bias)?,
            }
        }
        Family::Phi3 => {
            let m = vb.pp("mlp");
            // `gate_up_proj`: the first half of the rows is the gate.
            let fused = linear(&m.pp("gate_up_proj"), 2 * f, d, bias)?;
            let [gate, up]: [_; 2] = split_rows(&fused, &[f, f])?
                .try_into()
                .map_err(|_| EngineError::Model("gate_up_proj split".into()))?;
            Mlp::Gated {
                gate,
                up,
                down: linear(&m.pp("down_proj"), d, f, bias)?,
            }
        }
        _ => {
            let m = vb.pp("mlp");
            Mlp::Gated {
                gate: linear(&m.pp("gate_proj"), f, d, bias)?,
                up: linear(&m.pp("up_proj"), f, d, bias)?,
                down: linear(&m.pp("down_proj"), d, f, bias)?,
            }
        }
    })
}

fn load_block(cfg: &HookedConfig, vb: &VarBuilder) -> Result<Block> {
    let norm = |name: &str| Norm::load(&vb.pp(name), cfg.norm, cfg.d_model, cfg.norm_eps);
    let (ln1, ln2, post_attn_norm, post_ff_norm) = match cfg.family {
        Family::Gpt2 => (norm("ln_1")?, Some(norm("ln_2")?), None, None),
        Family::Phi => (norm("input_layernorm")?, None, None, None),
        // Gemma 2's `post_attention_layernorm` normalises the attention
        // output; the MLP's input norm is `pre_feedforward_layernorm`.
        Family::Gemma2 => (
            norm("input_layernorm")?,
            Some(norm("pre_feedforward_layernorm")?),
            Some(norm("post_attention_layernorm")?),
            Some(norm("post_feedforward_layernorm")?),
        ),
        _ => (
            norm("input_layernorm")?,
            Some(norm("post_attention_layernorm")?),
            None,
            None,
        ),
    };
    Ok(Block {
        ln1,
        ln2,
        post_attn_norm,
        post_ff_norm,
        attn: load_attention(cfg, vb)?,
        mlp: load_mlp(cfg, vb)?,
    })
}

impl HookedTransformer {
    /// Build from a `VarBuilder` whose names are the Hugging Face state-dict
    /// names (as safetensors store them, or GGUF tensors renamed to them).
    /// The VarBuilder's dtype is the compute dtype. A missing tensor is an
    /// error, except an absent `lm_head` of a tied model.
    pub fn load(cfg: HookedConfig, vb: VarBuilder) -> Result<Self> {
        let n = names(cfg.family);
        let d = cfg.d_model;
        // Some GPT-2 checkpoints (the original `gpt2`) omit the prefix.
        let base = if cfg.family == Family::Gpt2
            && !vb.contains_tensor("transformer.wte.weight")
            && vb.contains_tensor("wte.weight")
        {
            vb.clone()
        } else {
            vb.pp(n.base)
        };
        let embed = base.get((cfg.vocab_size, d), &format!("{}.weight", n.embed))?;
        let pos_embed = cfg
            .n_positions
            .map(|p| base.get((p, d), "wpe.weight"))
            .transpose()?;
        let blocks = (0..cfg.n_layers)
            .map(|i| load_block(&cfg, &base.pp(n.layers).pp(i)))
            .collect::<Result<Vec<_>>>()?;
        let final_norm = Norm::load(&base.pp(n.final_norm), cfg.norm, d, cfg.norm_eps)?;
        let head = vb.pp(n.lm_head);
        let lm_head = if cfg.tie_word_embeddings && !head.contains_tensor("weight") {
            embed.clone()
        } else {
            head.get((cfg.vocab_size, d), "weight")?
        };
        let lm_head_bias = if cfg.lm_head_bias {
            Some(head.get(cfg.vocab_size, "bias")?.to_dtype(DType::F32)?)
        } else {
            None
        };
        let dtype = embed.dtype();
        let inv_freq = cfg.inv_freq();
        Ok(HookedTransformer {
            device: embed.device().clone(),
            lm_head: lm_head.to_dtype(DType::F32)?,
            lm_head_bias,
            cfg,
            embed,
            pos_embed,
            blocks,
            final_norm,
            dtype,
            inv_freq,
        })
    }

    /// [`load`](Self::load) from safetensors files (one checkpoint, maybe
    /// sharded) mapped read-only, on the CPU, computing in `dtype`.
    pub fn from_safetensors<P: AsRef<std::path::Path>>(
        cfg: HookedConfig,
        files: &[P],
        dtype: DType,
    ) -> Result<Self> {
        // SAFETY: the checkpoint files are mapped read-only and not modified while loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(files, dtype, &Device::Cpu)? };
        Self::load(cfg, vb)
    }

    pub fn config(&self) -> &HookedConfig {
        &self.cfg
    }

    /// The dtype weights and activations use (f64 or f32).
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Override the RoPE inverse frequencies (GGUF `rope_freqs.weight`
    /// factors divide [`HookedConfig::inv_freq`]).
    pub fn set_inv_freq(&mut self, inv_freq: Vec<f32>) -> Result<()> {
        if inv_freq.len() != self.inv_freq.len() {
            return Err(EngineError::Model(format!(
                "{} RoPE frequencies given, the model rotates {} pairs per head",
                inv_freq.len(),
                self.inv_freq.len()
            )));
        }
        self.inv_freq = inv_freq;
        Ok(())
    }

    /// The final norm applied to `[.., D]` states, returned in f32.
    pub fn final_norm(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.final_norm.forward(x)?.to_dtype(DType::F32)?)
    }

    /// Run the model on `ids` with the plan's interventions applied,
    /// resuming at layer `r` from an earlier capture when given (as the
    /// custom backend's `forward`).
    pub fn forward(
        &self,
        ids: &[u32],
        plan: &InterventionPlan,
        resume: Option<(usize, &Capture)>,
    ) -> Result<Capture> {
        let cfg = &self.cfg;
        let t = ids.len();
        let n = self.blocks.len();
        if t == 0 {
            return Err(crate::invalid!("no tokens to run"));
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= cfg.vocab_size) {
            return Err(crate::invalid!(
                "token id {bad} is outside this model's vocabulary of {}",
                cfg.vocab_size
            ));
        }
        if let Some(w) = cfg.sliding_window.filter(|&w| t > w) {
            return Err(crate::invalid!(
                "the input has {t} tokens but this {} model's sliding attention window is {w}; \
                 the hooked backend does not implement sliding windows, so inputs must fit in one",
                cfg.family()
            ));
        }
        let (cos, sin) = crate::ops::rope_tables(&self.inv_freq, &self.device, self.dtype, t)?;
        let mut hk = Hooks::new(plan);
        let (mut cap, mut x, start) = match resume {
            Some((r, earlier)) if r > 0 => (earlier.prefix(r, n), earlier.resid[r].clone(), r),
            _ => {
                let ids_t = Tensor::new(ids, &self.device)?;
                let mut x = self.embed.embedding(&ids_t)?;
                if cfg.embed_scale {
                    // HF multiplies by sqrt(d) cast to the hidden dtype.
                    let s = (cfg.d_model as f64).sqrt();
                    let s = if self.dtype == DType::F32 {
                        f64::from(s as f32)
                    } else {
                        s
                    };
                    x = x.affine(s, 0.0)?;
                }
                x = hk.apply(x, HookPoint::Embed)?;
                match &self.pos_embed {
                    Some(wpe) => {
                        let p = wpe.dim(0)?;
                        if t > p {
                            return Err(crate::invalid!(
                                "the input has {t} tokens but this model has {p} learned positions"
                            ));
                        }
                        let pos = hk.apply(wpe.narrow(0, 0, t)?, HookPoint::PosEmbed)?;
                        x = (x + pos)?;
                    }
                    None if !plan.ops_at(HookPoint::PosEmbed).is_empty() => {
                        return Err(crate::invalid!(
                            "hook_pos_embed: this model has no learned position embeddings (it uses RoPE)"
                        ));
                    }
                    None => {}
                }
                x = hk.apply(x, HookPoint::ResidPre(0))?;
                let mut cap = Capture::with_layers(n);
                cap.resid.push(x.clone());
                (cap, x, 0)
            }
        };
        for (l, block) in self.blocks.iter().enumerate().skip(start) {
            hk.step = l;
            let mask = AttnMask::build(t, plan.blocked_at(l), &self.device, self.dtype)?;
            let h = block.ln1.forward(&x)?;
            let (mut a, pattern, blocked_delta) =
                self.attention(l, &block.attn, &h, &cos, &sin, &mask)?;
            hk.blocked(l, pattern.dim(0)?, blocked_delta);
            if let Some(norm) = &block.post_attn_norm {
                a = norm.forward(&a)?;
            }
            let a = hk.apply(a, HookPoint::AttnOut(l))?;
            let x1 = hk.apply((&x + &a)?, HookPoint::ResidMid(l))?;
            let mlp_in = match (cfg.residual, &block.ln2) {
                (Residual::ParallelSharedNorm, _) | (_, None) => h,
                (Residual::Parallel, Some(ln2)) => ln2.forward(&x)?,
                (Residual::Sequential | Residual::Sandwich, Some(ln2)) => ln2.forward(&x1)?,
            };
            let mut m = block.mlp.forward(cfg.act, &mlp_in)?;
            if let Some(norm) = &block.post_ff_norm {
                m = norm.forward(&m)?;
            }
            let m = hk.apply(m, HookPoint::MlpOut(l))?;
            let x2 = (&x1 + &m)?;
            x = hk.apply(x2, HookPoint::ResidPost(l))?;
            x = hk.apply(x, HookPoint::ResidPre(l + 1))?;
            cap.post_attn.push(x1);
            cap.attn_out.push(a);
            cap.mlp_out.push(m);
            cap.patterns.push(pattern);
            cap.resid.push(x.clone());
        }
        cap.receipts.extend(hk.receipts);
        Ok(cap)
    }

    /// Half-split (rotate_half) RoPE on the first `rotary_dim` dims of each
    /// head of `x: [H, T, hd]`; the rest pass through (partial rotary).
    fn rotate(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let (rd, hd) = (self.cfg.rotary_dim, self.cfg.head_dim);
        if rd == 0 {
            return Ok(x.contiguous()?);
        }
        let x = x.unsqueeze(0)?;
        let out = if rd == hd {
            candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin)?
        } else {
            let rot =
                candle_nn::rotary_emb::rope(&x.narrow(D::Minus1, 0, rd)?.contiguous()?, cos, sin)?;
            Tensor::cat(&[&rot, &x.narrow(D::Minus1, rd, hd - rd)?], D::Minus1)?
        };
        Ok(out.squeeze(0)?)
    }

    fn attention(
        &self,
        layer: usize,
        attn: &Attention,
        h: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &AttnMask,
    ) -> Result<(Tensor, Tensor, Option<f64>)> {
        let cfg = &self.cfg;
        let t = h.dim(0)?;
        let (nh, nkv, hd) = (cfg.n_heads, cfg.n_kv_heads, cfg.head_dim);
        let mut q = attn.q.forward(h)?.reshape((t, nh, hd))?;
        let mut k = attn.k.forward(h)?.reshape((t, nkv, hd))?;
        let v = attn.v.forward(h)?.reshape((t, nkv, hd))?;
        if let (Some(qn), Some(kn)) = (&attn.q_norm, &attn.k_norm) {
            q = qn.forward(&q)?;
            k = kn.forward(&k)?;
        }
        let q = self.rotate(&q.transpose(0, 1)?, cos, sin)?;
        let k = self.rotate(&k.transpose(0, 1)?, cos, sin)?;
        let v = v.transpose(0, 1)?.contiguous()?;
        let (k, v) = (repeat_kv(k, nh / nkv)?, repeat_kv(v, nh / nkv)?);
        let mut scale = cfg.attn_scale;
        if cfg.scale_by_inverse_layer {
            scale /= (layer + 1) as f64;
        }
        let at = attend(&q, &k, &v, scale, cfg.attn_softcap, mask)?;
        Ok((attn.o.forward(&at.out)?, at.pattern, at.blocked_delta))
    }
}

impl crate::lens::LensModel for HookedTransformer {
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn n_layers(&self) -> usize {
        self.blocks.len()
    }

    fn vocab_size(&self) -> usize {
        self.cfg.vocab_size
    }

    /// Final norm, unembedding (+ bias), final soft-cap; f32 like HF's head.
    fn unembed(&self, x: &Tensor) -> Result<Tensor> {
        let mut logits = self.final_norm(x)?.matmul(&self.lm_head.t()?)?;
        if let Some(b) = &self.lm_head_bias {
            logits = logits.broadcast_add(b)?;
        }
        if let Some(cap) = self.cfg.final_softcap {
            logits = ((logits / cap)?.tanh()? * cap)?;
        }
        Ok(logits)
    }
}
