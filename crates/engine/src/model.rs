//! The custom backend's transformer: Llama and Qwen3 decoders written out
//! explicitly (scores, mask, softmax, weighted sum) so every hook point exists
//! and blocking masks apply. Stateless (`&self`), all positions, batch 1.
//!
//! Follows transformers' `modeling_llama.py` / `modeling_qwen3.py`.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::config::{Arch, ModelConfig};
use crate::error::Result;
use crate::hooks::{HookPoint, InterventionPlan};
use crate::ops::{attend, repeat_kv, rms_norm, AttnMask, Hooks, Linear};

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    /// Qwen3's per-head RMSNorm on q and k, applied before RoPE.
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
}

struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

struct Block {
    input_norm: Tensor,
    post_attention_norm: Tensor,
    attn: Attention,
    mlp: Mlp,
}

pub struct Transformer {
    pub cfg: ModelConfig,
    embed: Tensor,
    blocks: Vec<Block>,
    final_norm: Tensor,
    /// `[V, D]` f32 unembedding (the lens projection always runs in f32).
    lm_head: Tensor,
    /// The dtype weights and activations use (f64 or f32); see [`ComputeDtype`].
    dtype: DType,
    inv_freq: Vec<f32>,
    device: Device,
}

/// Everything captured by one forward pass, after interventions.
///
/// # Shapes
/// `T` = tokens, `D` = hidden size, `H` = query heads, `V` = vocab.
pub struct Capture {
    /// `n+1` tensors `[T, D]`: the embeddings, then each block's output
    /// (the residual stream before the final norm).
    pub resid: Vec<Tensor>,
    /// `n` tensors `[T, D]`: the residual stream after each attention add.
    pub post_attn: Vec<Tensor>,
    /// `n` tensors `[T, D]`: what attention added (after its hook).
    pub attn_out: Vec<Tensor>,
    /// `n` tensors `[T, D]`: what the MLP added (after its hook).
    pub mlp_out: Vec<Tensor>,
    /// `n` tensors `[H, T, T]`, post-softmax, `[head][query][key]`.
    pub patterns: Vec<Tensor>,
    /// What each intervention operation did, in the order applied.
    pub receipts: Vec<crate::api::Receipt>,
}

impl Capture {
    /// Empty, with room for `n` layers.
    pub fn with_layers(n: usize) -> Self {
        Capture {
            resid: Vec::with_capacity(n + 1),
            post_attn: Vec::with_capacity(n),
            attn_out: Vec::with_capacity(n),
            mlp_out: Vec::with_capacity(n),
            patterns: Vec::with_capacity(n),
            receipts: Vec::new(),
        }
    }

    /// Everything computed before layer `r` (tensors are shared, not copied).
    pub fn prefix(&self, r: usize, n: usize) -> Self {
        let mut c = Capture::with_layers(n);
        c.resid.extend_from_slice(&self.resid[..=r]);
        c.post_attn.extend_from_slice(&self.post_attn[..r]);
        c.attn_out.extend_from_slice(&self.attn_out[..r]);
        c.mlp_out.extend_from_slice(&self.mlp_out[..r]);
        c.patterns.extend_from_slice(&self.patterns[..r]);
        c.receipts = self
            .receipts
            .iter()
            .filter(|x| x.step < r)
            .cloned()
            .collect();
        c
    }
}

fn linear(vb: &VarBuilder, out_dim: usize, in_dim: usize, bias: bool) -> Result<Linear> {
    let w = vb.get((out_dim, in_dim), "weight")?;
    let b = if bias {
        Some(vb.get(out_dim, "bias")?)
    } else {
        None
    };
    Linear::new(w, b)
}

impl Transformer {
    /// Build from a `VarBuilder` whose names are the Hugging Face state-dict
    /// names (`model.layers.0.self_attn.q_proj.weight`, ...).
    pub fn load(cfg: ModelConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.hidden_size;
        let hd = cfg.head_dim;
        let (nh, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
        let m = vb.pp("model");
        let embed = m.get((cfg.vocab_size, d), "embed_tokens.weight")?;
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = m.pp("layers").pp(i);
            let a = l.pp("self_attn");
            let (q_norm, k_norm) = if cfg.arch == Arch::Qwen3 {
                (
                    Some(a.get(hd, "q_norm.weight")?),
                    Some(a.get(hd, "k_norm.weight")?),
                )
            } else {
                (None, None)
            };
            let bias = cfg.attention_bias;
            let attn = Attention {
                q: linear(&a.pp("q_proj"), nh * hd, d, bias)?,
                k: linear(&a.pp("k_proj"), nkv * hd, d, bias)?,
                v: linear(&a.pp("v_proj"), nkv * hd, d, bias)?,
                o: linear(&a.pp("o_proj"), d, nh * hd, bias)?,
                q_norm,
                k_norm,
            };
            let p = l.pp("mlp");
            let mb = cfg.mlp_bias;
            let mlp = Mlp {
                gate: linear(&p.pp("gate_proj"), cfg.intermediate_size, d, mb)?,
                up: linear(&p.pp("up_proj"), cfg.intermediate_size, d, mb)?,
                down: linear(&p.pp("down_proj"), d, cfg.intermediate_size, mb)?,
            };
            blocks.push(Block {
                input_norm: l.get(d, "input_layernorm.weight")?,
                post_attention_norm: l.get(d, "post_attention_layernorm.weight")?,
                attn,
                mlp,
            });
        }
        let final_norm = m.get(d, "norm.weight")?;
        let lm_head = if cfg.tie_word_embeddings && !vb.contains_tensor("lm_head.weight") {
            embed.clone()
        } else {
            vb.get((cfg.vocab_size, d), "lm_head.weight")?
        };
        let dtype = embed.dtype();
        let lm_head = lm_head.to_dtype(DType::F32)?;
        let inv_freq = cfg.inv_freq();
        Ok(Transformer {
            device: embed.device().clone(),
            cfg,
            embed,
            blocks,
            final_norm,
            lm_head,
            dtype,
            inv_freq,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn n_layers(&self) -> usize {
        self.blocks.len()
    }

    /// Override the RoPE frequencies (GGUF `rope_freqs.weight` factors).
    pub(crate) fn set_inv_freq(&mut self, inv_freq: Vec<f32>) {
        self.inv_freq = inv_freq;
    }

    /// `[V, D]` f32 unembedding.
    pub fn lm_head(&self) -> &Tensor {
        &self.lm_head
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The final RMSNorm applied to `[.., D]` states, returned in f32.
    pub fn final_norm(&self, x: &Tensor) -> Result<Tensor> {
        Ok(rms_norm(x, &self.final_norm, self.cfg.rms_norm_eps)?.to_dtype(DType::F32)?)
    }

    /// Run the model on `ids` with the plan's interventions applied. With
    /// `resume = Some((r, earlier))` layers before `r` are taken from an
    /// earlier capture of the same ids whose plan agrees up to layer `r`
    /// (see [`InterventionPlan::first_difference`]).
    pub fn forward(
        &self,
        ids: &[u32],
        plan: &InterventionPlan,
        resume: Option<(usize, &Capture)>,
    ) -> Result<Capture> {
        let t = ids.len();
        let n = self.blocks.len();
        let (cos, sin) = crate::ops::rope_tables(&self.inv_freq, &self.device, self.dtype, t)?;
        let mut hk = Hooks::new(plan);
        let (mut cap, mut x, start) = match resume {
            Some((r, earlier)) if r > 0 => (earlier.prefix(r, n), earlier.resid[r].clone(), r),
            _ => {
                let ids_t = Tensor::new(ids, &self.device)?;
                let mut x = self.embed.embedding(&ids_t)?;
                x = hk.apply(x, HookPoint::Embed)?;
                if !plan.ops_at(HookPoint::PosEmbed).is_empty() {
                    return Err(crate::invalid!(
                        "hook_pos_embed: this model has no learned position embeddings (it uses RoPE)"
                    ));
                }
                // resid_pre of layer l+1 is resid_post of layer l: both hooks apply
                // before the state is recorded, so the lens shows what the next layer reads.
                x = hk.apply(x, HookPoint::ResidPre(0))?;
                let mut cap = Capture::with_layers(n);
                cap.resid.push(x.clone());
                (cap, x, 0)
            }
        };
        for (l, block) in self.blocks.iter().enumerate().skip(start) {
            hk.step = l;
            let mask = AttnMask::build(t, plan.blocked_at(l), &self.device, self.dtype)?;
            let h = rms_norm(&x, &block.input_norm, self.cfg.rms_norm_eps)?;
            let (a, pattern, blocked_delta) = self.attention(&block.attn, &h, &cos, &sin, &mask)?;
            hk.blocked(l, pattern.dim(0)?, blocked_delta);
            let a = hk.apply(a, HookPoint::AttnOut(l))?;
            let x1 = hk.apply((&x + &a)?, HookPoint::ResidMid(l))?;
            let h2 = rms_norm(&x1, &block.post_attention_norm, self.cfg.rms_norm_eps)?;
            let mlp = &block.mlp;
            let m = mlp.down.forward(
                &(candle_nn::ops::silu(&mlp.gate.forward(&h2)?)? * mlp.up.forward(&h2)?)?,
            )?;
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

    fn attention(
        &self,
        attn: &Attention,
        h: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &AttnMask,
    ) -> Result<(Tensor, Tensor, Option<f64>)> {
        let cfg = &self.cfg;
        let t = h.dim(0)?;
        let (nh, nkv, hd) = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
        );
        let mut q = attn.q.forward(h)?.reshape((t, nh, hd))?;
        let mut k = attn.k.forward(h)?.reshape((t, nkv, hd))?;
        let v = attn.v.forward(h)?.reshape((t, nkv, hd))?;
        if let (Some(qn), Some(kn)) = (&attn.q_norm, &attn.k_norm) {
            q = rms_norm(&q, qn, cfg.rms_norm_eps)?;
            k = rms_norm(&k, kn, cfg.rms_norm_eps)?;
        }
        // [1, heads, T, hd] for candle's half-split (rotate_half) RoPE kernel.
        let q =
            candle_nn::rotary_emb::rope(&q.transpose(0, 1)?.unsqueeze(0)?.contiguous()?, cos, sin)?
                .squeeze(0)?;
        let k =
            candle_nn::rotary_emb::rope(&k.transpose(0, 1)?.unsqueeze(0)?.contiguous()?, cos, sin)?
                .squeeze(0)?;
        let v = v.transpose(0, 1)?.contiguous()?;
        let (k, v) = (repeat_kv(k, nh / nkv)?, repeat_kv(v, nh / nkv)?);
        let scale = 1.0 / (hd as f64).sqrt();
        let at = attend(&q, &k, &v, scale, None, mask)?;
        Ok((attn.o.forward(&at.out)?, at.pattern, at.blocked_delta))
    }
}

/// The precision the forward pass runs in.
///
/// transformers' float32 results carry their own rounding error of about
/// 1e-5 on the tiny test models; an f32 forward of ours adds as much again
/// (another summation order) and misses a 1e-5 bar by a hair, an f64 one
/// adds almost nothing. So under `Auto` test-sized models (at most
/// [`F64_MAX_PARAMS`] parameters, where f64 costs nothing noticeable) run
/// in f64, and real models run in f32 as the original did: SmolLM2-135M in
/// f32 is within 2e-5 of transformers (its bar is 1e-4), at half the memory
/// and forward time of f64. `F64` is there for anyone who wants it. The lens
/// projection is f32 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComputeDtype {
    #[default]
    Auto,
    F32,
    F64,
}

pub const F64_MAX_PARAMS: usize = 20_000_000;

impl ComputeDtype {
    pub fn resolve(self, cfg: &ModelConfig) -> DType {
        match self {
            ComputeDtype::F32 => DType::F32,
            ComputeDtype::F64 => DType::F64,
            ComputeDtype::Auto if cfg.param_count() <= F64_MAX_PARAMS => DType::F64,
            ComputeDtype::Auto => DType::F32,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(ComputeDtype::Auto),
            "f32" => Some(ComputeDtype::F32),
            "f64" => Some(ComputeDtype::F64),
            _ => None,
        }
    }
}

impl crate::lens::LensModel for Transformer {
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn n_layers(&self) -> usize {
        self.blocks.len()
    }
    fn vocab_size(&self) -> usize {
        self.cfg.vocab_size
    }
    fn unembed(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.final_norm(x)?.matmul(&self.lm_head.t()?)?)
    }
}
