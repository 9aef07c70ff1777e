//! The keys and values one forward pass leaves for the next, so a model
//! can continue a sequence (generation) without recomputing its prefix.

use candle_core::{DType, Tensor};

use crate::error::Result;

use super::Transformer;

/// Every layer's keys and values for the first [`len`](Self::len)
/// positions of one sequence, made for one model (its layer count, KV heads,
/// head size and compute dtype). Keys are stored after RoPE and before
/// `repeat_kv`, in the compute dtype, as `[n_kv_heads, len, head_dim]`.
///
/// [`Transformer::forward_cached`] reads it and appends the positions it
/// computes. A run that fails or is cancelled leaves it as it was. Cloning
/// is cheap (tensors are shared), so one prefix can be continued several
/// ways.
#[derive(Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    /// Positions every layer holds. A failed run may have appended to some
    /// layers already; those rows past `len` are cut off when next read.
    len: usize,
    n_kv_heads: usize,
    head_dim: usize,
    d_model: usize,
    dtype: DType,
}

impl KvCache {
    /// An empty cache for `model`.
    pub fn new(model: &Transformer) -> Self {
        let cfg = model.config();
        KvCache {
            layers: vec![None; model.n_layers()],
            len: 0,
            n_kv_heads: cfg.n_kv_heads,
            head_dim: cfg.head_dim,
            d_model: cfg.d_model,
            dtype: model.dtype(),
        }
    }

    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keep only the first `len` positions (no copy).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Memory held by the cached tensors.
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(|(k, v)| crate::capture::tensor_bytes(k) + crate::capture::tensor_bytes(v))
            .sum()
    }

    /// Refuses a cache made for another model.
    pub(crate) fn check_fits(&self, model: &Transformer) -> Result<()> {
        let cfg = model.config();
        let mine = (
            self.layers.len(),
            self.d_model,
            self.n_kv_heads,
            self.head_dim,
            self.dtype,
        );
        let theirs = (
            model.n_layers(),
            cfg.d_model,
            cfg.n_kv_heads,
            cfg.head_dim,
            model.dtype(),
        );
        if mine != theirs {
            return Err(crate::invalid!(
                "this KV cache was made for another model ({} layers, d_model {}, {} KV heads \
                 of {}, {:?}), not this one ({} layers, d_model {}, {} KV heads of {}, {:?})",
                mine.0,
                mine.1,
                mine.2,
                mine.3,
                mine.4,
                theirs.0,
                theirs.1,
                theirs.2,
                theirs.3,
                theirs.4
            ));
        }
        Ok(())
    }

    /// Append one layer's new keys and values (`[n_kv_heads, T, head_dim]`)
    /// and return all of them: the cached positions, then the new.
    pub(crate) fn extend(
        &mut self,
        layer: usize,
        k: Tensor,
        v: Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let all = match &self.layers[layer] {
            Some((ck, cv)) if self.len > 0 => (
                Tensor::cat(&[&ck.narrow(1, 0, self.len)?, &k], 1)?,
                Tensor::cat(&[&cv.narrow(1, 0, self.len)?, &v], 1)?,
            ),
            _ => (k, v),
        };
        self.layers[layer] = Some(all.clone());
        Ok(all)
    }

    /// Layer `layer`'s keys and values of the first `len` positions,
    /// `[n_kv_heads, len, head_dim]` each.
    pub(crate) fn prefix(&self, layer: usize, len: usize) -> Result<(Tensor, Tensor)> {
        match &self.layers[layer] {
            Some((k, v)) if len <= self.len => Ok((k.narrow(1, 0, len)?, v.narrow(1, 0, len)?)),
            _ => Err(crate::invalid!(
                "the cache holds {} positions at layer {layer}, not {len}",
                self.len
            )),
        }
    }

    /// Every layer now holds `t` more positions.
    pub(crate) fn commit(&mut self, t: usize) {
        self.len += t;
    }
}
