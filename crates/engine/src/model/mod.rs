//! The transformer: one decoder for every family, driven by its resolved
//! [`Config`] and loaded through its family's tensor [`Layout`]. Written
//! out (scores, mask, softmax, weighted sum) so every hook point exists
//! and blocking masks apply. Stateless (`&self`): every position of the
//! input, or, continuing a [`KvCache`], the positions after it; one
//! sequence, or (`batch.rs`) several of one length at once, plain or
//! recorded for candle's autograd. One block loop runs them all.
//!
//! Follows transformers' `modeling_{llama,mistral,qwen2,qwen3,gemma,gemma2,
//! phi3,phi,gpt2,gpt_neox}.py` (eager attention).
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
//! `blocks.{l}.attn.hook_attn_scores` is where blocking masks apply.

mod attribution;
mod batch;
mod cache;
mod config;
mod families;
mod profile;

pub use attribution::Attribution;
pub use batch::{DifferentiableRun, Join};
pub use cache::KvCache;
pub(crate) use config::Fields;
pub use config::{Config, Family, Residual};
pub use profile::{BackendKind, ModelInfo};

use candle_core::{DType, Device, Tensor, Var};

use crate::capture::Capture;
use crate::error::Result;
use crate::hooks::{HookPoint, InterventionPlan, Patch};
use crate::nn::{
    attend, repeat_kv, rope, Attended, AttnMask, Form, HookRunner, Linear, Matrix, Mlp, Mode, Norm,
    Weights,
};
use crate::watch::{check, Stage, Unwatched, Watch};
use families::{Layout, MlpProj, Qkv};

/// How [`Transformer::forward_with`] runs.
pub struct ForwardOptions<'a> {
    /// Keep every layer's attention pattern (`n·H·T²` numbers) in the capture.
    pub keep_patterns: bool,
    pub watch: &'a dyn Watch,
}

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    /// Per-head norms on q and k, before RoPE (Qwen3, Phi `qk_layernorm`).
    qk_norm: Option<(Norm, Norm)>,
}

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

pub struct Transformer {
    cfg: Config,
    /// `[V, D]`: in the compute dtype, or as stored.
    embed: Matrix,
    /// `[n_positions, D]` learned positions (GPT-2).
    pos_embed: Option<Tensor>,
    blocks: Vec<Block>,
    final_norm: Norm,
    /// `[V, D]` unembedding: f32 or as stored (the lens projection always
    /// runs in f32).
    lm_head: Matrix,
    /// `[V]` f32 (Phi).
    lm_head_bias: Option<Tensor>,
    dtype: DType,
    form: Form,
    inv_freq: Vec<f32>,
    device: Device,
}

impl Attention {
    fn load(cfg: &Config, layout: &Layout, vb: &Weights) -> Result<Self> {
        let b = &layout.block;
        let a = vb.pp(b.attn);
        let (d, hd) = (cfg.d_model, cfg.head_dim);
        let (q_dim, kv_dim) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
        let proj = |name: &str, out_dim, in_dim, bias| {
            if b.conv1d {
                Linear::load_conv1d(&a.pp(name), out_dim, in_dim)
            } else {
                Linear::load(&a.pp(name), out_dim, in_dim, bias)
            }
        };
        let [q, k, v] = match b.qkv {
            Qkv::Separate(q, k, v) => [
                proj(q, q_dim, d, cfg.qkv_bias)?,
                proj(k, kv_dim, d, cfg.qkv_bias)?,
                proj(v, kv_dim, d, cfg.qkv_bias)?,
            ],
            Qkv::Fused(name) => proj(name, q_dim + 2 * kv_dim, d, cfg.qkv_bias)?
                .split_rows([q_dim, kv_dim, kv_dim])?,
            Qkv::FusedPerHead(name) => {
                proj(name, 3 * q_dim, d, cfg.qkv_bias)?.split_per_head_qkv(cfg.n_heads, hd)?
            }
        };
        let qk_norm = match cfg.qk_norm {
            Some(kind) => {
                let (qn, kn) = b.qk_norm;
                Some((
                    Norm::load(&a.pp(qn), kind, hd, cfg.norm_eps)?,
                    Norm::load(&a.pp(kn), kind, hd, cfg.norm_eps)?,
                ))
            }
            None => None,
        };
        Ok(Attention {
            q,
            k,
            v,
            o: proj(b.o, d, q_dim, cfg.o_bias)?,
            qk_norm,
        })
    }
}

fn load_mlp(cfg: &Config, layout: &Layout, vb: &Weights) -> Result<Mlp> {
    let b = &layout.block;
    let m = vb.pp(b.mlp);
    let (d, f, bias) = (cfg.d_model, cfg.d_mlp, cfg.mlp_bias);
    let proj = |name: &str, out_dim, in_dim| {
        if b.conv1d {
            Linear::load_conv1d(&m.pp(name), out_dim, in_dim)
        } else {
            Linear::load(&m.pp(name), out_dim, in_dim, bias)
        }
    };
    Ok(match b.mlp_proj {
        MlpProj::Gated { gate, up, down } => Mlp::Gated {
            gate: proj(gate, f, d)?,
            up: proj(up, f, d)?,
            down: proj(down, d, f)?,
        },
        MlpProj::FusedGateUp { gate_up, down } => {
            let [gate, up] = proj(gate_up, 2 * f, d)?.split_rows([f, f])?;
            Mlp::Gated {
                gate,
                up,
                down: proj(down, d, f)?,
            }
        }
        MlpProj::Plain { fc_in, fc_out } => Mlp::Plain {
            fc_in: proj(fc_in, f, d)?,
            fc_out: proj(fc_out, d, f)?,
        },
    })
}

impl Block {
    fn load(cfg: &Config, layout: &Layout, vb: &Weights) -> Result<Self> {
        let b = &layout.block;
        let norm = |name: &str| Norm::load(&vb.pp(name), cfg.norm, cfg.d_model, cfg.norm_eps);
        let opt_norm = |name: Option<&str>| name.map(norm).transpose();
        Ok(Block {
            ln1: norm(b.ln1)?,
            ln2: opt_norm(b.ln2)?,
            post_attn_norm: opt_norm(b.post_attn_norm)?,
            post_ff_norm: opt_norm(b.post_ff_norm)?,
            attn: Attention::load(cfg, layout, vb)?,
            mlp: load_mlp(cfg, layout, vb)?,
        })
    }
}

impl Transformer {
    /// Build from [`Weights`] whose names are the Hugging Face state-dict
    /// names (as safetensors store them, or GGUF tensors renamed to them),
    /// in their form (widened to the compute dtype, or matrices as stored).
    /// A missing tensor is an error, except an absent `lm_head` of a tied
    /// model.
    pub fn load(cfg: Config, vb: Weights) -> Result<Self> {
        crate::nn::tune_gemm();
        let layout = families::descriptor(cfg.family).layout;
        let d = cfg.d_model;
        // A checkpoint saved without the decoder's prefix (the original `gpt2`).
        let embed_name = format!("{}.weight", layout.embed);
        let base = if !vb.pp(layout.base).contains(&embed_name) && vb.contains(&embed_name) {
            vb.clone()
        } else {
            vb.pp(layout.base)
        };
        let embed = base.matrix((cfg.vocab_size, d), &embed_name)?;
        let pos_embed = match (cfg.n_positions, layout.pos_embed) {
            (Some(p), Some(name)) => Some(base.pp(name).get((p, d), "weight")?),
            _ => None,
        };
        let blocks = (0..cfg.n_layers)
            .map(|i| Block::load(&cfg, layout, &base.pp(layout.layers).pp(i)))
            .collect::<Result<Vec<_>>>()?;
        let final_norm = Norm::load(&base.pp(layout.final_norm), cfg.norm, d, cfg.norm_eps)?;
        let head = vb.pp(layout.lm_head);
        let lm_head = if cfg.tie_word_embeddings && !head.contains("weight") {
            embed.clone()
        } else {
            head.matrix((cfg.vocab_size, d), "weight")?
        };
        // The lens projects in f32: a widened head in f64 gets its f32 copy.
        let lm_head = match lm_head {
            Matrix::Dense(t) if t.dtype() == DType::F64 => Matrix::Dense(t.to_dtype(DType::F32)?),
            m => m,
        };
        let lm_head_bias = if cfg.lm_head_bias {
            Some(head.get(cfg.vocab_size, "bias")?.to_dtype(DType::F32)?)
        } else {
            None
        };
        let form = vb.form();
        let inv_freq = cfg.inv_freq();
        Ok(Transformer {
            device: vb.device().clone(),
            lm_head,
            lm_head_bias,
            cfg,
            embed,
            pos_embed,
            blocks,
            final_norm,
            dtype: form.compute_dtype(),
            form,
            inv_freq,
        })
    }

    /// How the weights are held.
    pub fn form(&self) -> Form {
        self.form
    }

    /// Bytes the weights take in memory, in the form they are held.
    pub fn weight_bytes(&self) -> usize {
        let t = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
        let mut n = self.embed.bytes() + self.pos_embed.as_ref().map_or(0, t);
        // A tied head shares the embedding's storage unless it was widened apart.
        let shared = match (&self.embed, &self.lm_head) {
            (Matrix::Dense(a), Matrix::Dense(b)) => a.id() == b.id(),
            (Matrix::Blocks(a), Matrix::Blocks(b)) => std::sync::Arc::ptr_eq(a, b),
            _ => false,
        };
        if !shared {
            n += self.lm_head.bytes();
        }
        n + self.lm_head_bias.as_ref().map_or(0, t) + self.final_norm.bytes() + self.block_bytes()
    }

    /// Bytes of the blocks' weights: what one forward pass reads besides
    /// the embedding rows of its tokens.
    pub fn block_bytes(&self) -> usize {
        let norm = |n: &Option<Norm>| n.as_ref().map_or(0, Norm::bytes);
        self.blocks
            .iter()
            .map(|b| {
                b.ln1.bytes()
                    + norm(&b.ln2)
                    + norm(&b.post_attn_norm)
                    + norm(&b.post_ff_norm)
                    + b.attn.q.bytes()
                    + b.attn.k.bytes()
                    + b.attn.v.bytes()
                    + b.attn.o.bytes()
                    + b.attn
                        .qk_norm
                        .as_ref()
                        .map_or(0, |(q, k)| q.bytes() + k.bytes())
                    + b.mlp.bytes()
            })
            .sum()
    }

    /// How the big matrices are held, e.g. "F32" or "BF16" or "Q4K, Q6K".
    pub fn weight_kinds(&self) -> String {
        let mut kinds: Vec<String> = vec![self.embed.kind(), self.lm_head.kind()];
        for b in &self.blocks {
            kinds.push(b.attn.q.kind());
            kinds.extend(b.mlp.kinds());
        }
        kinds.sort();
        kinds.dedup();
        kinds.join(", ")
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The dtype activations use (f64 or f32), and widened weights.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn n_layers(&self) -> usize {
        self.blocks.len()
    }

    pub fn vocab_size(&self) -> usize {
        self.cfg.vocab_size
    }

    /// The model's own head on `[N, D]` residual states: final norm,
    /// unembedding (+ bias), final soft-cap. Returns f32 logits `[N, V]`,
    /// like HF's head.
    pub fn unembed(&self, x: &Tensor) -> Result<Tensor> {
        let normed = self.final_norm.forward(x)?.to_dtype(DType::F32)?;
        self.logits_of_normed(&normed)
    }

    /// The logits of tokens `ids` alone from `[N, D]` residual states, f32
    /// `[N, ids.len()]`: [`unembed`](Self::unembed)'s columns `ids`, from
    /// those rows of the unembedding only (a metric that reads two logits
    /// need not multiply by the whole vocabulary).
    pub fn unembed_at(&self, x: &Tensor, ids: &[u32]) -> Result<Tensor> {
        let normed = self.final_norm.forward(x)?.to_dtype(DType::F32)?;
        let mut logits = normed.matmul(&self.unembedding_rows(ids)?.t()?)?;
        if let Some(b) = &self.lm_head_bias {
            let at = Tensor::new(ids, &self.device)?;
            logits = logits.broadcast_add(&b.index_select(&at, 0)?)?;
        }
        if let Some(cap) = self.cfg.final_softcap {
            logits = ((logits / cap)?.tanh()? * cap)?;
        }
        Ok(logits)
    }

    /// The head after the final norm: unembedding (+ bias), soft-cap.
    fn logits_of_normed(&self, normed: &Tensor) -> Result<Tensor> {
        let mut logits = self.lm_head.matmul_t(normed)?;
        if let Some(b) = &self.lm_head_bias {
            logits = logits.broadcast_add(b)?;
        }
        if let Some(cap) = self.cfg.final_softcap {
            logits = ((logits / cap)?.tanh()? * cap)?;
        }
        Ok(logits)
    }

    /// `W_U · v` for a direction `v` of d_model numbers: every token's
    /// logit of it, without the final norm, bias or soft-cap (what a
    /// feature's decoder row says of the vocabulary).
    pub fn unembed_direction(&self, v: &[f32]) -> Result<Vec<f32>> {
        let v = Tensor::from_slice(v, (1, v.len()), &self.device)?;
        let v = if self.lm_head.is_dense_in(DType::F64) {
            v.to_dtype(DType::F64)?
        } else {
            v
        };
        Ok(self
            .lm_head
            .matmul_t(&v)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1()?)
    }

    /// Rows `ids` of the unembedding, f32 `[k, D]`: reads only those rows
    /// of a matrix kept as stored.
    pub fn unembedding_rows(&self, ids: &[u32]) -> Result<Tensor> {
        let ids = Tensor::new(ids, &self.device)?;
        self.lm_head.embedding(&ids, DType::F32)
    }

    /// The head split for training a lens: the final norm of `x` in
    /// differentiable ops (f32 `[N, D]`), and the logits it gives (f32
    /// `[N, V]`, as [`unembed`](Self::unembed), not tracked). The
    /// vocabulary-sized part is differentiated by hand in
    /// [`head_grad`](Self::head_grad), so autograd never holds an
    /// `[N, V]` graph nor computes the gradient of the frozen unembedding.
    pub fn head_for_training(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        if self.lm_head.dense().is_none() {
            return Err(crate::invalid!(
                "training a lens needs the unembedding widened (weights: f32)"
            ));
        }
        let normed = self
            .final_norm
            .forward_differentiable(x)?
            .to_dtype(DType::F32)?;
        let logits = self.logits_of_normed(&normed.detach())?;
        Ok((normed, logits))
    }

    /// dL/d(normed) from dL/d(logits), for [`head_for_training`]'s
    /// `normed`: back through the final soft-cap and the unembedding.
    pub fn head_grad(&self, normed: &Tensor, d_logits: &Tensor) -> Result<Tensor> {
        let Some(head) = self.lm_head.dense() else {
            return Err(crate::invalid!(
                "training a lens needs the unembedding widened (weights: f32)"
            ));
        };
        let mut g = d_logits.clone();
        if let Some(cap) = self.cfg.final_softcap {
            // z = cap·tanh(r/cap), so dz/dr = 1 − tanh²(r/cap).
            let mut raw = self.lm_head.matmul_t(&normed.detach())?;
            if let Some(b) = &self.lm_head_bias {
                raw = raw.broadcast_add(b)?;
            }
            let t = (raw / cap)?.tanh()?;
            g = (g * t.sqr()?.affine(-1.0, 1.0)?)?;
        }
        Ok(g.matmul(&head.to_dtype(DType::F32)?)?)
    }

    /// Run the model on `ids` with the plan's interventions applied. With
    /// `resume = Some((r, earlier))` layers before `r` are taken from an
    /// earlier capture of the same ids whose plan agrees up to layer `r`
    /// (see [`InterventionPlan::first_difference`]). Keeps every attention
    /// pattern; [`forward_with`](Self::forward_with) chooses.
    pub fn forward(
        &self,
        ids: &[u32],
        plan: &InterventionPlan,
        resume: Option<(usize, &Capture)>,
    ) -> Result<Capture> {
        let opts = ForwardOptions {
            keep_patterns: true,
            watch: &Unwatched,
        };
        self.forward_with(ids, plan, resume, &opts)
    }

    /// [`forward_with`](Self::forward_with) from the embeddings, `rewrite`
    /// acting at the hook points it wants (after `plan`'s operations
    /// there): a caller's own intervention, written as code.
    pub fn forward_rewritten(
        &self,
        ids: &[u32],
        plan: &InterventionPlan,
        rewrite: &dyn crate::nn::Rewrite,
        opts: &ForwardOptions,
    ) -> Result<Capture> {
        let pass = Pass {
            rewrite: Some(rewrite),
            ..Pass::one(ids, plan)
        };
        Ok(self.run_blocks(pass, None, opts)?.capture)
    }

    /// [`forward`](Self::forward), keeping the attention patterns only when
    /// asked, reporting each layer to `opts.watch` and stopping between
    /// layers when it says so. A resumed capture must have kept its patterns
    /// if this one keeps them.
    pub fn forward_with(
        &self,
        ids: &[u32],
        plan: &InterventionPlan,
        resume: Option<(usize, &Capture)>,
        opts: &ForwardOptions,
    ) -> Result<Capture> {
        let pass = Pass {
            resume,
            ..Pass::one(ids, plan)
        };
        Ok(self.run_blocks(pass, None, opts)?.capture)
    }

    /// A run on `ids` without interventions whose activation at
    /// `patch.at` is replaced, resuming at layer `r` of `earlier` (a capture
    /// of the same ids that agrees with this run before layer `r`, resid[r]
    /// included; `r` may be 0: the embeddings are taken over).
    pub fn forward_patched(
        &self,
        ids: &[u32],
        (r, earlier): (usize, &Capture),
        patch: Option<&Patch>,
        opts: &ForwardOptions,
    ) -> Result<Capture> {
        let plan = InterventionPlan::default();
        let patches = patch.map(std::slice::from_ref).unwrap_or(&[]);
        let pass = Pass {
            resume: Some((r, earlier)),
            patches,
            ..Pass::one(ids, &plan)
        };
        Ok(self.run_blocks(pass, None, opts)?.capture)
    }

    /// Run `ids` as the positions that follow the `cache.len()` positions
    /// `cache` holds (RoPE, learned positions and the causal mask at those
    /// absolute positions), and append theirs to it. The capture holds the
    /// new positions only (`[T, D]` states); kept patterns are `[H, T,
    /// cache.len() + T]`, the new queries over every key.
    ///
    /// The plan's positions are absolute: an operation at one position
    /// applies in the run that computes it, one on every position to each
    /// run's positions, a blocked (query, key) pair in the run that computes
    /// its query. So one plan over prefill and steps gives what it gives over
    /// the whole sequence at once; receipts name absolute positions.
    pub fn forward_cached(
        &self,
        ids: &[u32],
        plan: &InterventionPlan,
        cache: &mut KvCache,
        opts: &ForwardOptions,
    ) -> Result<Capture> {
        Ok(self
            .run_blocks(Pass::one(ids, plan), Some(cache), opts)?
            .capture)
    }

    /// The longest sequence the model runs: its learned positions, or its
    /// sliding window (not implemented, so sequences must fit in one).
    pub fn max_positions(&self) -> Option<usize> {
        let learned = self.pos_embed.as_ref().map(|p| p.dims()[0]);
        learned.into_iter().chain(self.cfg.sliding_window).min()
    }

    /// The one block loop of every forward pass: [`forward_with`]
    /// (Self::forward_with), [`forward_patched`](Self::forward_patched),
    /// [`forward_cached`](Self::forward_cached) and the batched and recorded
    /// runs ([`forward_batch`](Self::forward_batch),
    /// [`forward_differentiable`](Self::forward_differentiable)). The stream
    /// is `[B*T, D]` (`[T, D]` for one sequence); from the first block that
    /// reads a state in `pass.wrt` on, the ops are recorded for autograd
    /// ([`Mode::Recorded`]: the same values) and each such state gets a zero
    /// variable added, returned beside the capture.
    fn run_blocks(
        &self,
        pass: Pass,
        mut cache: Option<&mut KvCache>,
        opts: &ForwardOptions,
    ) -> Result<Ran> {
        let n = self.blocks.len();
        let (b, t) = self.check_pass(&pass, cache.as_deref())?;
        let plan = pass.plan;
        let offset = cache.as_ref().map_or(0, |c| c.len());
        let (cos, sin) = rope::tables(&self.inv_freq, &self.device, self.dtype, offset, t)?;
        let mut hk = match (&cache, pass.items) {
            (Some(_), _) => HookRunner::continuing(plan, offset),
            (None, Some((plans, lens))) => HookRunner::items(plans, lens, t, pass.patches),
            (None, None) => HookRunner::patching(plan, pass.patches),
        };
        hk.rewrite = pass.rewrite;
        let mut vars = Vec::new();
        let (mut cap, mut x, start) = match pass.resume {
            Some((r, earlier)) => (earlier.prefix(r), earlier.resid[r].clone(), r),
            None => {
                let x = self.embed_tokens(pass.ids, b, offset, &mut hk, plan)?;
                let x = with_variable(x, 0, b, pass.wrt, &mut vars)?;
                let mut cap = Capture::with_layers(n);
                cap.resid.push(x.clone());
                (cap, x, 0)
            }
        };
        if opts.keep_patterns && cap.patterns.len() != start {
            return Err(crate::EngineError::Model(
                "a run that keeps attention cannot resume from one that did not".into(),
            ));
        }
        let first_recorded = pass.wrt.iter().min().copied().unwrap_or(usize::MAX);
        for (l, block) in self.blocks.iter().enumerate().skip(start) {
            check(opts.watch)?;
            opts.watch.progress(Stage::Forward, l, n);
            hk.step = l;
            let step = Step {
                l,
                b,
                t,
                offset,
                plan,
                rope: (&cos, &sin),
                mode: if l >= first_recorded {
                    Mode::Recorded
                } else {
                    Mode::Plain
                },
                ragged: None,
            };
            let out = self.block_step(block, &x, &step, &mut hk, cache.as_deref_mut())?;
            x = with_variable(out.resid, l + 1, b, pass.wrt, &mut vars)?;
            cap.post_attn.push(out.resid_mid);
            cap.attn_out.push(out.attn_out);
            cap.mlp_out.push(out.mlp_out);
            if let (true, Some(pattern)) = (opts.keep_patterns, out.pattern) {
                cap.patterns.push(pattern);
            }
            cap.resid.push(x.clone());
        }
        opts.watch.progress(Stage::Forward, n, n);
        let item_receipts = hk.item_receipts();
        cap.receipts.extend(hk.receipts);
        if let Some(c) = cache {
            c.commit(t);
        }
        Ok(Ran {
            capture: cap,
            vars,
            item_receipts,
        })
    }

    /// A pass's input checked against the model (and the cache it
    /// continues): its batch size and sequence length.
    fn check_pass(&self, pass: &Pass, cache: Option<&KvCache>) -> Result<(usize, usize)> {
        let cfg = &self.cfg;
        let b = pass.b.max(1);
        let t = pass.ids.len() / b;
        if t == 0 {
            return Err(crate::invalid!("no tokens to run"));
        }
        if let Some(&bad) = pass.ids.iter().find(|&&i| i as usize >= cfg.vocab_size) {
            return Err(crate::invalid!(
                "token id {bad} is outside this model's vocabulary of {}",
                cfg.vocab_size
            ));
        }
        let continues = pass.resume.is_some() || cache.is_some();
        let resumes_alone = pass.resume.is_some() && pass.items.is_none();
        if b > 1 && (resumes_alone || cache.is_some() || !pass.plan.is_empty()) {
            return Err(crate::invalid!(
                "a batched run takes no shared plan, cache or earlier capture (not implemented): \
                 give each item its plan"
            ));
        }
        if let Some((plans, lens)) = pass.items {
            check_items(plans, lens, b, t)?;
        }
        if let Some(&i) = pass.wrt.iter().find(|&&i| i > self.blocks.len()) {
            return Err(crate::invalid!(
                "resid[{i}] does not exist: this model has {} residual states",
                self.blocks.len() + 1
            ));
        }
        if !pass.wrt.is_empty() && continues {
            return Err(crate::invalid!(
                "a differentiated run starts from the embeddings (no cache, no earlier run)"
            ));
        }
        if let Some(c) = cache {
            c.check_fits(self)?;
        }
        let offset = cache.map_or(0, |c| c.len());
        if let Some(w) = cfg.sliding_window.filter(|&w| offset + t > w) {
            return Err(crate::invalid!(
                "the input has {} but this {} model's sliding attention window is {w}; \
                 sliding windows are not implemented, so inputs must fit in one",
                positions(offset, t),
                cfg.family()
            ));
        }
        Ok((b, t))
    }

    /// One block on the stream `x: [B*T, D]`, every hook in place.
    fn block_step(
        &self,
        block: &Block,
        x: &Tensor,
        s: &Step,
        hk: &mut HookRunner,
        cache: Option<&mut KvCache>,
    ) -> Result<BlockOut> {
        let cfg = &self.cfg;
        let (l, mode) = (s.l, s.mode);
        let h = block.ln1.forward_in(x, mode)?;
        let (mix, pattern, blocked_delta) = match s.ragged {
            Some(ragged) => (
                self.attention_ragged(&block.attn, &h, s, ragged)?,
                None,
                None,
            ),
            None => {
                let mask = AttnMask::build(
                    s.offset,
                    s.t,
                    s.plan.blocked_at(l),
                    &self.device,
                    self.dtype,
                )?;
                let at = self.attention_mix(&block.attn, &h, s, &mask, cache)?;
                if let Some(r) = hk.rewrite {
                    r.scores(l, &at.scores)?;
                }
                (at.out, Some(at.pattern), at.blocked_delta)
            }
        };
        // A ragged batch's last block goes on with its runs' last rows only.
        let kept = match s.ragged.and_then(|r| r.kept(s.t)) {
            Some(rows) => Some(Tensor::new(rows, &self.device)?),
            None => None,
        };
        let keep = |x: Tensor| -> Result<Tensor> {
            Ok(match &kept {
                Some(rows) => x.index_select(rows, 0)?,
                None => x,
            })
        };
        let (mix, h) = (keep(mix)?, keep(h)?);
        let x = &keep(x.clone())?;
        let mut a = block.attn.o.forward_in(&mix, mode)?;
        hk.blocked(l, cfg.n_heads, s.t, blocked_delta);
        if let Some(norm) = &block.post_attn_norm {
            a = norm.forward_in(&a, mode)?;
        }
        let a = hk.apply(a, HookPoint::AttnOut(l))?;
        let x1 = hk.apply((x + &a)?, HookPoint::ResidMid(l))?;
        let mlp_in = match (cfg.residual, &block.ln2) {
            (Residual::ParallelSharedNorm, _) | (_, None) => h,
            (Residual::Parallel, Some(ln2)) => ln2.forward_in(x, mode)?,
            (Residual::Sequential | Residual::Sandwich, Some(ln2)) => ln2.forward_in(&x1, mode)?,
        };
        let mut m = block.mlp.forward(cfg.act, &mlp_in, mode)?;
        if let Some(norm) = &block.post_ff_norm {
            m = norm.forward_in(&m, mode)?;
        }
        let m = hk.apply(m, HookPoint::MlpOut(l))?;
        let x2 = (&x1 + &m)?;
        // resid_pre of layer l+1 is resid_post of layer l: both hooks apply
        // before the state is recorded, so the lens shows what the next layer reads.
        let out = hk.apply(x2, HookPoint::ResidPost(l))?;
        let resid = hk.apply(out, HookPoint::ResidPre(l + 1))?;
        Ok(BlockOut {
            resid_mid: x1,
            attn_out: a,
            mlp_out: m,
            resid,
            pattern,
        })
    }

    /// Token embeddings (scaled for Gemma) plus learned positions (from
    /// position `offset` on), through their hooks and `resid_pre[0]`'s;
    /// `ids` are `b` sequences of one length, back to back.
    fn embed_tokens(
        &self,
        ids: &[u32],
        b: usize,
        offset: usize,
        hk: &mut HookRunner,
        plan: &InterventionPlan,
    ) -> Result<Tensor> {
        let t = ids.len() / b;
        let mut x = hk.apply(self.token_embeddings(ids)?, HookPoint::Embed)?;
        match &self.pos_embed {
            Some(wpe) => {
                let p = wpe.dim(0)?;
                if offset + t > p {
                    return Err(crate::invalid!(
                        "the input has {} but this model has {p} learned positions",
                        positions(offset, t)
                    ));
                }
                let pos = hk.apply(wpe.narrow(0, offset, t)?, HookPoint::PosEmbed)?;
                x = if b == 1 {
                    (x + pos)?
                } else {
                    let d = self.cfg.d_model;
                    x.reshape((b, t, d))?
                        .broadcast_add(&pos)?
                        .reshape((b * t, d))?
                };
            }
            None if !plan.ops_at(HookPoint::PosEmbed).is_empty() => {
                return Err(crate::invalid!(
                    "hook_pos_embed: this model has no learned position embeddings (it uses RoPE)"
                ));
            }
            None => {}
        }
        hk.apply(x, HookPoint::ResidPre(0))
    }

    /// What `hook_embed` and `hook_pos_embed` (learned positions only) hold
    /// for `ids` from position 0, after their interventions: the states a
    /// run's capture does not keep apart (it keeps their sum, `resid_pre[0]`).
    pub fn embed_hook_states(
        &self,
        ids: &[u32],
        plan: &InterventionPlan,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let mut hk = HookRunner::new(plan);
        let x = hk.apply(self.token_embeddings(ids)?, HookPoint::Embed)?;
        let pos = match &self.pos_embed {
            Some(wpe) if ids.len() <= wpe.dim(0)? => {
                Some(hk.apply(wpe.narrow(0, 0, ids.len())?, HookPoint::PosEmbed)?)
            }
            _ => None,
        };
        Ok((x, pos))
    }

    /// The token embeddings of `ids` as the forward pass reads them, `[T, D]`
    /// (scaled by sqrt(d) for Gemma).
    fn token_embeddings(&self, ids: &[u32]) -> Result<Tensor> {
        let x = self
            .embed
            .embedding(&Tensor::new(ids, &self.device)?, self.dtype)?;
        if !self.cfg.embed_scale {
            return Ok(x);
        }
        // HF multiplies by sqrt(d) cast to the hidden dtype.
        let s = (self.cfg.d_model as f64).sqrt();
        let s = if self.dtype == DType::F32 {
            f64::from(s as f32)
        } else {
            s
        };
        Ok(x.affine(s, 0.0)?)
    }

    /// One layer's attention on `h: [B*T, D]` up to the heads' mix (`out`:
    /// `[B*T, H*hd]`, before the output projection); with a cache, the new
    /// keys and values join the cached ones (and stay in the cache).
    fn attention_mix(
        &self,
        attn: &Attention,
        h: &Tensor,
        s: &Step,
        mask: &AttnMask,
        cache: Option<&mut KvCache>,
    ) -> Result<Attended> {
        let (b, t, mode) = (s.b, s.t, s.mode);
        let projected = (
            attn.q.forward_in(h, mode)?,
            attn.k.forward_in(h, mode)?,
            attn.v.forward_in(h, mode)?,
        );
        let (q, k, v) = self.heads(attn, projected, (b, t), s.rope, mode)?;
        let (k, v) = match cache {
            Some(c) => c.extend(s.l, k, v)?,
            None => (k, v),
        };
        let n_rep = self.cfg.n_heads / self.cfg.n_kv_heads;
        let (k, v) = (repeat_kv(k, n_rep)?, repeat_kv(v, n_rep)?);
        attend(&q, &k, &v, b, self.scores_at(s.l), mask, mode)
    }

    /// One layer's projected queries, keys and values (`[B*T, width]`
    /// each) as heads: q `[B*H, T, hd]`, k and v `[B*KV, T, hd]`; q and k
    /// normed per head (Qwen3, Phi) and rotated at the positions `rope`
    /// holds.
    fn heads(
        &self,
        attn: &Attention,
        (q, k, v): (Tensor, Tensor, Tensor),
        (b, t): (usize, usize),
        (cos, sin): (&Tensor, &Tensor),
        mode: Mode,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let cfg = &self.cfg;
        let (nh, nkv, hd) = (cfg.n_heads, cfg.n_kv_heads, cfg.head_dim);
        let mut q = q.reshape((b, t, nh, hd))?;
        let mut k = k.reshape((b, t, nkv, hd))?;
        let v = v.reshape((b, t, nkv, hd))?;
        if let Some((qn, kn)) = &attn.qk_norm {
            q = qn.forward_in(&q, mode)?;
            k = kn.forward_in(&k, mode)?;
        }
        let rotate = |x: &Tensor, heads: usize| -> Result<Tensor> {
            let x = rope::rotate(&x.transpose(1, 2)?, cos, sin, cfg.rotary_dim, mode)?;
            // One sequence keeps the rotated layout (a partial rotation's
            // concatenation is strided): the scores' product sums as it did.
            Ok(if b == 1 {
                x.squeeze(0)?
            } else {
                x.reshape((b * heads, t, hd))?
            })
        };
        let (q, k) = (rotate(&q, nh)?, rotate(&k, nkv)?);
        let v = v.transpose(1, 2)?.contiguous()?.reshape((b * nkv, t, hd))?;
        Ok((q, k, v))
    }

    /// Layer `l`'s scale of the attention scores, and their soft-cap.
    fn scores_at(&self, l: usize) -> (f64, Option<f64>) {
        let cfg = &self.cfg;
        let mut scale = cfg.attn_scale;
        if cfg.scale_by_inverse_layer {
            scale /= (l + 1) as f64;
        }
        (scale, cfg.attn_softcap)
    }
}

/// What one run of the block loop computes and from where.
struct Pass<'a> {
    /// `b` sequences of one length, back to back.
    ids: &'a [u32],
    b: usize,
    plan: &'a InterventionPlan,
    /// Layers before `r` taken from an earlier capture.
    resume: Option<(usize, &'a Capture)>,
    /// Activations replaced at their hooks.
    patches: &'a [Patch],
    /// Residual states (indices into `Capture::resid`) to differentiate
    /// against; empty for a plain run.
    wrt: &'a [usize],
    /// The caller's code at hook points.
    rewrite: Option<&'a dyn crate::nn::Rewrite>,
    /// A batch whose items have plans of their own (`plan` is empty): each
    /// item's plan and its length (its first rows; the rest padding).
    items: Option<(&'a [&'a InterventionPlan], &'a [usize])>,
}

impl<'a> Pass<'a> {
    /// One sequence under `plan`, from the embeddings, plain.
    fn one(ids: &'a [u32], plan: &'a InterventionPlan) -> Self {
        Pass {
            ids,
            b: 1,
            plan,
            resume: None,
            patches: &[],
            wrt: &[],
            rewrite: None,
            items: None,
        }
    }
}

/// What [`Transformer::run_blocks`] made.
struct Ran {
    capture: Capture,
    /// The variables added to the states differentiated against.
    vars: Vec<(usize, Var)>,
    /// With per-item plans, each item's receipts (the capture has none).
    item_receipts: Vec<Vec<crate::capture::Receipt>>,
}

/// A batch's per-item plans: one per item, each item no longer than the
/// batch's rows, and only what acts on an item's own rows (stream
/// operations; not attention blocking, whose mask the batch shares, nor
/// `hook_pos_embed`, whose rows it shares).
fn check_items(plans: &[&InterventionPlan], lens: &[usize], b: usize, t: usize) -> Result<()> {
    if plans.len() != b || lens.len() != b {
        return Err(crate::invalid!(
            "a batch of {b} sequences needs {b} plans and lengths, not {} and {}",
            plans.len(),
            lens.len()
        ));
    }
    if let Some(&len) = lens.iter().find(|&&len| len == 0 || len > t) {
        return Err(crate::invalid!(
            "an item of {len} tokens in a batch of {t}-token rows"
        ));
    }
    if plans
        .iter()
        .any(|p| !p.blocks.is_empty() || !p.ops_at(HookPoint::PosEmbed).is_empty())
    {
        return Err(crate::invalid!(
            "a batch item's plan blocks attention or acts at hook_pos_embed: \
             run it alone (the batch shares its attention mask and positions)"
        ));
    }
    Ok(())
}

/// What a block's step reads besides its input and the hooks.
struct Step<'a> {
    l: usize,
    b: usize,
    t: usize,
    offset: usize,
    plan: &'a InterventionPlan,
    rope: (&'a Tensor, &'a Tensor),
    mode: Mode,
    /// Runs that carry different positions of one sequence
    /// ([`Transformer::forward_joining`]); `b` is then not used.
    ragged: Option<&'a batch::Ragged<'a>>,
}

/// What a block computes, as the capture records it.
struct BlockOut {
    resid_mid: Tensor,
    attn_out: Tensor,
    mlp_out: Tensor,
    /// The block's output after its hooks (`resid_pre` of the next).
    resid: Tensor,
    /// `None` for a ragged batch (no pattern is kept of it).
    pattern: Option<Tensor>,
}

/// `x`, the residual state `i` (`[B*T, D]`), plus a zero variable `[B, T,
/// D]` when `wrt` holds `i`: the same values, and the variable's gradient
/// is the state's.
fn with_variable(
    x: Tensor,
    i: usize,
    b: usize,
    wrt: &[usize],
    vars: &mut Vec<(usize, Var)>,
) -> Result<Tensor> {
    if !wrt.contains(&i) {
        return Ok(x);
    }
    let (n, d) = x.dims2()?;
    let v = Var::zeros((b, n / b, d), x.dtype(), x.device())?;
    let x = (x + v.as_tensor().reshape((n, d))?)?;
    vars.push((i, v));
    Ok(x)
}

/// "N tokens", or "N tokens after M cached" for a run continuing a cache.
fn positions(offset: usize, t: usize) -> String {
    if offset == 0 {
        format!("{t} tokens")
    } else {
        format!(
            "{t} tokens after {offset} cached ({} positions)",
            offset + t
        )
    }
}
