//! Direct logit attribution: how much each part of the residual stream
//! writes to one token's logit at one position.
//!
//! The final residual state is a sum of parts: the token embedding, each
//! layer's attention and MLP output, and (by family) learned positions.
//! With the final norm's scale frozen at that state (1/rms; LayerNorm:
//! centring and 1/std), the norm is linear, so a part's share of the logit
//! is `u · norm_frozen(part)` with `u` the token's unembedding row, and
//! the shares add up to the logit. What is not a share of a part is in
//! `rest_parts`, by name:
//!
//! | part              | families                  | what it is                                  |
//! |-------------------|---------------------------|---------------------------------------------|
//! | `pos_embed`       | gpt2                      | the learned position embedding's share      |
//! | `final_norm_bias` | gpt2, phi, gpt_neox       | `u · b` of the final LayerNorm              |
//! | `lm_head_bias`    | phi                       | the unembedding's bias for the token        |
//! | `final_softcap`   | gemma2                    | the soft-cap's change: `cap·tanh(z/cap) − z` |
//! | `interventions`   | any, with stream ops      | what the run's interventions changed        |
//!
//! Llama, Mistral, Qwen2/3, Gemma and Phi-3 have none: `rest` is 0.
//!
//! A layer's attention output splits over its heads: head `h` writes
//! `O_h z_h` (its slice of the output projection on its slice of the
//! mixed values), so its heads sum to the attention output minus the
//! projection's bias (Gemma 2's norm on the attention output is frozen
//! the same way). The mixed values are recomputed from the layer's
//! captured input, with the run's attention blocking.

use candle_core::{DType, Tensor};

use crate::capture::Capture;
use crate::error::Result;
use crate::hooks::InterventionPlan;
use crate::nn::{rope, AttnMask};

use super::Transformer;

/// The shares of one token's logit at one position: `embed + Σattn + Σmlp
/// + rest = logit`, and `Σ_h heads[l][h] = attn[l]` minus the attention
/// output projection's bias. Each share is the token's unembedding row
/// dotted with the final norm applied to that part of the final residual
/// state, the norm's scale frozen at that state. (The answer's
/// `attribution` field, as it is.)
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = AttributionAnswer))]
pub struct Attribution {
    pub token_id: u32,
    /// The token as `decode([token_id])` gives it.
    pub token: String,
    /// The position, resolved (non-negative).
    pub position: usize,
    /// The logit itself, computed in f64 from the final state.
    pub logit: f64,
    /// The token embedding's share.
    pub embed: f64,
    /// Per layer: the attention output's share (its bias included).
    pub attn: Vec<f64>,
    /// Per layer: the MLP output's share.
    pub mlp: Vec<f64>,
    /// `[layer][head]`: each head's share (without the output bias).
    pub heads: Vec<Vec<f64>>,
    /// What is not a share of the embedding, attention or MLP: the sum of
    /// `rest_parts`; 0 for Llama and Qwen3 without interventions.
    pub rest: f64,
    /// The rest by name: pos_embed (GPT-2), final_norm_bias (LayerNorm
    /// families), lm_head_bias (Phi), final_softcap (Gemma 2),
    /// interventions (the run's stream interventions).
    pub rest_parts: std::collections::BTreeMap<String, f64>,
}

impl Transformer {
    /// Attribute the logit of `token` (its id, and its text for the
    /// answer) at `position` in the run that made
    /// `cap` on `ids` under `plan` (a full run, not a cached continuation).
    pub fn attribute(
        &self,
        ids: &[u32],
        cap: &Capture,
        plan: &InterventionPlan,
        position: usize,
        (token, text): (u32, String),
    ) -> Result<Attribution> {
        let n = self.n_layers();
        let t = ids.len();
        if cap.resid.len() != n + 1 || cap.resid[0].dim(0)? != t || position >= t {
            return Err(crate::EngineError::Model(
                "attribution needs the capture of a full run on these ids".into(),
            ));
        }
        let p = position;
        let x_final = cap.resid[n].get(p)?;
        let frozen = self.final_norm.frozen_at(&x_final)?;
        let ids_t = Tensor::new(&[token], &self.device)?;
        let u = self
            .lm_head
            .embedding(&ids_t, DType::F64)?
            .reshape((self.cfg.d_model, 1))?;
        // Each row of `parts: [K, D]`'s share of the logit.
        let shares = |parts: &Tensor| -> Result<Vec<f64>> {
            Ok(frozen.apply(parts)?.matmul(&u)?.flatten_all()?.to_vec1()?)
        };
        let rows = |xs: &[Tensor]| -> Result<Tensor> {
            let rows = xs
                .iter()
                .map(|x| x.get(p))
                .collect::<candle_core::Result<Vec<_>>>()?;
            Ok(Tensor::stack(&rows, 0)?)
        };

        let embed = self.token_embeddings(&ids[p..=p])?;
        let attn = rows(&cap.attn_out)?;
        let mlp = rows(&cap.mlp_out)?;
        let mut rest_parts = Vec::new();
        let mut sum = (embed.squeeze(0)? + (attn.sum(0)? + mlp.sum(0)?)?)?;
        if let Some(wpe) = &self.pos_embed {
            let pos = wpe.get(p)?.to_dtype(self.dtype)?;
            sum = (sum + &pos)?;
            rest_parts.push(("pos_embed", shares(&pos.unsqueeze(0)?)?[0]));
        }
        if !plan.stream.is_empty() {
            let changed = (&x_final - &sum)?;
            rest_parts.push(("interventions", shares(&changed.unsqueeze(0)?)?[0]));
        }

        // The logit from the final state through the norm as it runs.
        let normed = self
            .final_norm
            .forward(&x_final.unsqueeze(0)?)?
            .to_dtype(DType::F64)?;
        let mut raw = normed.matmul(&u)?.flatten_all()?.to_vec1::<f64>()?[0];
        if let Some(b) = self.final_norm.bias_f64()? {
            let bias = b
                .unsqueeze(0)?
                .matmul(&u)?
                .flatten_all()?
                .to_vec1::<f64>()?[0];
            rest_parts.push(("final_norm_bias", bias));
        }
        if let Some(b) = &self.lm_head_bias {
            let bias = f64::from(b.get(token as usize)?.to_scalar::<f32>()?);
            raw += bias;
            rest_parts.push(("lm_head_bias", bias));
        }
        let logit = match self.cfg.final_softcap {
            Some(cap) => {
                let capped = cap * (raw / cap).tanh();
                rest_parts.push(("final_softcap", capped - raw));
                capped
            }
            None => raw,
        };

        let heads = (0..n)
            .map(|l| shares(&self.head_writes(ids, cap, plan, l, p)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Attribution {
            token_id: token,
            token: text,
            position: p,
            logit,
            embed: shares(&embed)?[0],
            attn: shares(&attn)?,
            mlp: shares(&mlp)?,
            heads,
            rest: rest_parts.iter().map(|(_, v)| v).sum(),
            rest_parts: rest_parts
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        })
    }

    /// `[H, D]`: what each head of layer `l` writes at position `p`,
    /// without the output projection's bias.
    fn head_writes(
        &self,
        ids: &[u32],
        cap: &Capture,
        plan: &InterventionPlan,
        l: usize,
        p: usize,
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let t = ids.len();
        let block = &self.blocks[l];
        let (cos, sin) = rope::tables(&self.inv_freq, &self.device, self.dtype, 0, t)?;
        let mask = AttnMask::build(0, t, plan.blocked_at(l), &self.device, self.dtype)?;
        let h = block.ln1.forward(&cap.resid[l])?;
        let step = super::Step {
            l,
            b: 1,
            t,
            offset: 0,
            plan,
            rope: (&cos, &sin),
            mode: crate::nn::Mode::Plain,
            ragged: None,
        };
        let mix = self.attention_mix(&block.attn, &h, &step, &mask, None)?;
        let z = mix.out.get(p)?.unsqueeze(0)?;
        // Row h keeps head h's slice of the mixed values.
        let (nh, hd) = (cfg.n_heads, cfg.head_dim);
        let mut keep = vec![0f64; nh * nh * hd];
        for head in 0..nh {
            keep[head * nh * hd + head * hd..head * nh * hd + (head + 1) * hd].fill(1.0);
        }
        let keep = Tensor::from_vec(keep, (nh, nh * hd), &self.device)?.to_dtype(z.dtype())?;
        let mut writes = block.attn.o.forward(&z.broadcast_mul(&keep)?)?;
        if let Some(b) = block.attn.o.bias() {
            writes = writes.broadcast_sub(b)?;
        }
        if let Some(norm) = &block.post_attn_norm {
            let whole = block.attn.o.forward(&z)?.squeeze(0)?;
            writes = norm.frozen_at(&whole)?.apply(&writes)?;
        }
        Ok(writes)
    }
}
