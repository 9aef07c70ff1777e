//! What one forward pass captures, which captured state a lens row shows,
//! and what an intervention did: the records every layer above the model
//! reads.

use candle_core::Tensor;

/// Everything captured by one forward pass, after interventions.
///
/// # Shapes
/// `T` = tokens, `D` = hidden size, `H` = query heads.
#[derive(Clone)]
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
    /// `n` tensors `[H, T, T]`, post-softmax, `[head][query][key]`; empty
    /// when the forward pass was asked not to keep them (they are the
    /// largest part of a capture: `n·H·T²` numbers).
    pub patterns: Vec<Tensor>,
    /// What each intervention operation did, in the order applied.
    pub receipts: Vec<Receipt>,
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

    /// Sequence `i` of a batched run's capture (states `[B, T, D]`), its
    /// first `len` positions: states `[len, D]`, views of the batch's, and
    /// kept patterns `[H, len, len]`. Receipts are the caller's to give (a
    /// batch's are per item).
    pub(crate) fn item(&self, i: usize, len: usize) -> crate::error::Result<Self> {
        let pick = |xs: &[Tensor]| -> crate::error::Result<Vec<Tensor>> {
            xs.iter()
                .map(|x| Ok(x.get(i)?.narrow(0, 0, len)?))
                .collect()
        };
        Ok(Capture {
            resid: pick(&self.resid)?,
            post_attn: pick(&self.post_attn)?,
            attn_out: pick(&self.attn_out)?,
            mlp_out: pick(&self.mlp_out)?,
            patterns: self
                .patterns
                .iter()
                .map(|p| {
                    Ok(p.get(i)?
                        .narrow(1, 0, len)?
                        .narrow(2, 0, len)?
                        .contiguous()?)
                })
                .collect::<crate::error::Result<_>>()?,
            receipts: Vec::new(),
        })
    }

    /// Everything computed before layer `r` (tensors are shared, not copied).
    pub fn prefix(&self, r: usize) -> Self {
        let mut c = Capture::with_layers(self.post_attn.len());
        c.resid.extend_from_slice(&self.resid[..=r]);
        c.post_attn.extend_from_slice(&self.post_attn[..r]);
        c.attn_out.extend_from_slice(&self.attn_out[..r]);
        c.mlp_out.extend_from_slice(&self.mlp_out[..r]);
        c.patterns
            .extend_from_slice(&self.patterns[..r.min(self.patterns.len())]);
        c.receipts = self
            .receipts
            .iter()
            .filter(|x| x.step < r)
            .cloned()
            .collect();
        c
    }

    /// The captures of consecutive passes over one sequence (a KV cache's
    /// prefill, then its steps) as one capture of all its positions. A
    /// pass's patterns (`[H, t, S]`: its queries over the keys so far) are
    /// widened with zeros to every key (causal attention gives later keys
    /// zero) and stacked; kept only if every pass kept them.
    pub fn concat(parts: &[Capture]) -> crate::Result<Capture> {
        let Some(first) = parts.first() else {
            return Err(crate::EngineError::Model("no passes to join".into()));
        };
        let join = |pick: fn(&Capture) -> &Vec<Tensor>| -> crate::Result<Vec<Tensor>> {
            (0..pick(first).len())
                .map(|i| {
                    let xs: Vec<&Tensor> = parts.iter().map(|p| &pick(p)[i]).collect();
                    Ok(Tensor::cat(&xs, 0)?)
                })
                .collect()
        };
        let n = first.post_attn.len();
        let total: usize = parts.iter().map(|p| p.resid[0].dims()[0]).sum();
        let patterns = if parts.iter().all(|p| p.patterns.len() == n) {
            (0..n)
                .map(|l| {
                    let rows = parts
                        .iter()
                        .map(|p| {
                            let s = p.patterns[l].dims()[2];
                            Ok(p.patterns[l].pad_with_zeros(2, 0, total - s)?)
                        })
                        .collect::<crate::Result<Vec<_>>>()?;
                    Ok(Tensor::cat(&rows, 1)?)
                })
                .collect::<crate::Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        Ok(Capture {
            resid: join(|c| &c.resid)?,
            post_attn: join(|c| &c.post_attn)?,
            attn_out: join(|c| &c.attn_out)?,
            mlp_out: join(|c| &c.mlp_out)?,
            patterns,
            receipts: merge_receipts(parts),
        })
    }

    /// The `[T, D]` tensor a lens row shows.
    pub fn state(&self, s: State) -> &Tensor {
        match s {
            State::Resid(i) => &self.resid[i],
            State::PostAttn(i) => &self.post_attn[i],
        }
    }

    /// Memory held by the captured tensors.
    pub fn bytes(&self) -> usize {
        self.resid
            .iter()
            .chain(&self.post_attn)
            .chain(&self.attn_out)
            .chain(&self.mlp_out)
            .chain(&self.patterns)
            .map(tensor_bytes)
            .sum()
    }
}

pub(crate) fn tensor_bytes(t: &Tensor) -> usize {
    t.elem_count() * t.dtype().size_in_bytes()
}

/// Which captured state a lens row shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// `Capture::resid[i]`: 0 = embeddings, i = output of block i-1.
    Resid(usize),
    /// `Capture::post_attn[i]`.
    PostAttn(usize),
}

impl State {
    /// Whether this state is computed before layer `first_difference`: such
    /// states are the same in two runs whose interventions first differ at
    /// that layer.
    pub fn computed_before(self, first_difference: usize) -> bool {
        match self {
            State::Resid(i) => i <= first_difference,
            State::PostAttn(i) => i < first_difference,
        }
    }
}

/// One receipt per operation over passes that each applied it to their own
/// positions: positions and elements joined, the norms of the changes (on
/// disjoint positions) combined as one L2 norm. Within a pass two
/// operations may share a key and hook (a list of operations under one
/// key); they stay apart, matched to their own across passes by order.
fn merge_receipts(parts: &[Capture]) -> Vec<Receipt> {
    let mut out: Vec<Receipt> = Vec::new();
    for part in parts {
        let mut taken = vec![false; out.len()];
        for r in &part.receipts {
            let same = |m: &Receipt| {
                (m.key.as_str(), m.hook.as_str(), m.layer, m.step)
                    == (r.key.as_str(), r.hook.as_str(), r.layer, r.step)
            };
            match (0..taken.len()).find(|&i| !taken[i] && same(&out[i])) {
                Some(i) => {
                    taken[i] = true;
                    let m = &mut out[i];
                    m.positions.extend_from_slice(&r.positions);
                    m.elements += r.elements;
                    m.delta_norm = match (m.delta_norm, r.delta_norm) {
                        (Some(a), Some(b)) => Some(a.hypot(b)),
                        (a, b) => a.or(b),
                    };
                }
                None => out.push(r.clone()),
            }
        }
    }
    out
}

/// What one intervention operation did, as applied: every request key that
/// reached the model leaves at least one (an operation that could not apply
/// is refused before anything runs).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Receipt {
    /// The request key it came from (`layer_1_output`, `blocks.0.hook_mlp_out`...).
    pub key: String,
    /// The hook it applied at (`blocks.1.hook_resid_post`,
    /// `blocks.0.attn.hook_attn_scores` for blocking).
    pub hook: String,
    /// None for the embeddings.
    pub layer: Option<usize>,
    /// Token positions touched (query positions for blocking).
    pub positions: Vec<usize>,
    /// Elements changed (for blocking: score entries set to -inf, all heads).
    pub elements: usize,
    /// L2 norm of the change of the stream (for blocking: of that layer's
    /// attention pattern, all heads).
    pub delta_norm: Option<f64>,
    /// The forward step that applied it (the layer being computed; 0 before
    /// layer 0), so re-runs can take over earlier steps' receipts.
    #[serde(skip)]
    pub step: usize,
}
