//! Hook points, the intervention language and the validated plan.
//!
//! Hooks are named as TransformerLens names them (`hook_embed`,
//! `blocks.{l}.hook_resid_post`, `blocks.{l}.attn.hook_attn_scores`...):
//! [`HookPoint`] parses and prints exactly those names. Request keys are
//! accepted in both spellings, the original tool's (`layer_3_output`) and
//! TransformerLens's. Every rule the original applied silently
//! (out-of-range layer or token, unknown type, scale without a value) is an
//! [`EngineError::InvalidRequest`](crate::EngineError::InvalidRequest) here.
//! Operations read from a Jacobian lens (`jlens_steer`, `jlens_ablate`,
//! `jlens_swap`) are built in `hooks/jlens.rs` from the vectors a
//! [`LensVectors`] gives; those made through a sparse autoencoder
//! (`sae_splice`, `sae_ablate`, `sae_clamp`, `sae_steer`) in `hooks/sae.rs`
//! from the SAEs an [`SaeProvider`] gives.

mod jlens;
mod sae;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::invalid;

pub use jlens::{JlensOp, LensVectors, MAX_ABLATED};
pub use sae::{SaeCodec, SaeEdit, SaeOp, SaeProvider};

/// One intervention as a request states it (the original's
/// `InterventionConfig`): an operation `type` and the fields it uses.
/// [`plan`] checks every field against the model and the input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InterventionConfig {
    /// zero, scale, add, block_attention, jlens_steer, jlens_ablate,
    /// jlens_swap, sae_splice, sae_ablate, sae_clamp or sae_steer.
    #[serde(rename = "type")]
    pub kind: String,
    /// The factor of `scale`; the feature's activation of `sae_clamp`; the
    /// coefficient of `sae_steer`.
    #[serde(default)]
    pub value: Option<f64>,
    /// What `add` adds: hidden-size numbers.
    #[serde(default)]
    pub vector: Option<Vec<f64>>,
    /// One position (negative counts from the end); all positions when absent.
    #[serde(default)]
    pub token_index: Option<i64>,
    /// block_attention: the keys that can no longer be read.
    #[serde(default)]
    pub source_tokens: Option<Vec<i64>>,
    /// block_attention: the queries that can no longer read them.
    #[serde(default)]
    pub target_tokens: Option<Vec<i64>>,
    /// Apply at every layer (a J-lens operation: every layer the lens covers).
    #[serde(default)]
    pub all_layers: Option<bool>,
    /// jlens_steer: the token whose lens vector to steer along (a string
    /// that is exactly one token, or an id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<ConceptToken>))]
    pub token: Option<serde_json::Value>,
    /// jlens_ablate: the tokens whose lens vectors' span is projected out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<ConceptToken>>))]
    pub tokens: Option<Vec<serde_json::Value>>,
    /// jlens_swap: the concept whose lens coordinate is exchanged with
    /// `target`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<ConceptToken>))]
    pub source: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<ConceptToken>))]
    pub target: Option<serde_json::Value>,
    /// jlens_steer and jlens_swap: the strength (steering adds alpha times
    /// the median norm of the stream; a swap of alpha 1 exchanges the two
    /// coordinates, 2 is the paper's double strength).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// sae_*: the name of the attached SAE it works through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sae: Option<String>,
    /// sae_ablate, sae_clamp, sae_steer: the feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<u32>,
}

/// A token an operation names: a string that is exactly one token, or a
/// token id.
#[cfg(feature = "openapi")]
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ConceptToken {
    Text(String),
    Id(u32),
}

/// Interventions by request key; request order is kept because operations
/// reaching the same hook apply in that order.
pub type Interventions = IndexMap<String, Vec<InterventionConfig>>;

/// Deserialize [`Interventions`], refusing a key given twice: a JSON object
/// with a repeated key would otherwise keep only its last list, silently.
pub fn unique_keys<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Interventions, D::Error> {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Interventions;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object from intervention keys to lists of operations")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Interventions, A::Error> {
            let mut out = Interventions::new();
            while let Some((key, ops)) = map.next_entry::<String, Vec<InterventionConfig>>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!(
                        "intervention key {key:?} is given twice; put its operations in one list (they apply in order)"
                    )));
                }
                out.insert(key, ops);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Keys)
}

/// The kinds of hook, without a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookKind {
    Embed,
    PosEmbed,
    ResidPre,
    ResidMid,
    AttnOut,
    MlpOut,
    ResidPost,
    AttnScores,
}

impl HookKind {
    const PER_LAYER: [HookKind; 6] = [
        HookKind::ResidPre,
        HookKind::ResidMid,
        HookKind::AttnOut,
        HookKind::MlpOut,
        HookKind::ResidPost,
        HookKind::AttnScores,
    ];

    /// The name inside `blocks.{l}.`, or the whole name without a layer.
    fn suffix(self) -> &'static str {
        match self {
            HookKind::Embed => "hook_embed",
            HookKind::PosEmbed => "hook_pos_embed",
            HookKind::ResidPre => "hook_resid_pre",
            HookKind::ResidMid => "hook_resid_mid",
            HookKind::AttnOut => "hook_attn_out",
            HookKind::MlpOut => "hook_mlp_out",
            HookKind::ResidPost => "hook_resid_post",
            HookKind::AttnScores => "attn.hook_attn_scores",
        }
    }

    fn per_layer(suffix: &str) -> Option<Self> {
        Self::PER_LAYER.into_iter().find(|k| k.suffix() == suffix)
    }

    /// This kind at layer `l` (ignored by the embedding hooks).
    pub fn at(self, l: usize) -> HookPoint {
        match self {
            HookKind::Embed => HookPoint::Embed,
            HookKind::PosEmbed => HookPoint::PosEmbed,
            HookKind::ResidPre => HookPoint::ResidPre(l),
            HookKind::ResidMid => HookPoint::ResidMid(l),
            HookKind::AttnOut => HookPoint::AttnOut(l),
            HookKind::MlpOut => HookPoint::MlpOut(l),
            HookKind::ResidPost => HookPoint::ResidPost(l),
            HookKind::AttnScores => HookPoint::AttnScores(l),
        }
    }
}

/// A place in the forward pass where an intervention applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookPoint {
    /// Token embeddings, before layer 0 (`hook_embed`).
    Embed,
    /// Learned position embeddings (`hook_pos_embed`, GPT-2 style models).
    PosEmbed,
    /// The residual stream entering a layer (`blocks.{l}.hook_resid_pre`).
    ResidPre(usize),
    /// The residual stream after the attention add (`blocks.{l}.hook_resid_mid`).
    ResidMid(usize),
    /// What attention adds to the residual stream at a layer, after o_proj.
    AttnOut(usize),
    /// What the MLP adds to the residual stream at a layer, after down_proj.
    MlpOut(usize),
    /// The residual stream after both adds of a layer.
    ResidPost(usize),
    /// The pre-softmax attention scores of a layer, where blocking applies
    /// (`blocks.{l}.attn.hook_attn_scores`).
    AttnScores(usize),
}

impl HookPoint {
    pub fn kind(self) -> HookKind {
        match self {
            HookPoint::Embed => HookKind::Embed,
            HookPoint::PosEmbed => HookKind::PosEmbed,
            HookPoint::ResidPre(_) => HookKind::ResidPre,
            HookPoint::ResidMid(_) => HookKind::ResidMid,
            HookPoint::AttnOut(_) => HookKind::AttnOut,
            HookPoint::MlpOut(_) => HookKind::MlpOut,
            HookPoint::ResidPost(_) => HookKind::ResidPost,
            HookPoint::AttnScores(_) => HookKind::AttnScores,
        }
    }

    pub fn layer(self) -> Option<usize> {
        match self {
            HookPoint::Embed | HookPoint::PosEmbed => None,
            HookPoint::ResidPre(l)
            | HookPoint::ResidMid(l)
            | HookPoint::AttnOut(l)
            | HookPoint::MlpOut(l)
            | HookPoint::ResidPost(l)
            | HookPoint::AttnScores(l) => Some(l),
        }
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.layer() {
            None => f.write_str(self.kind().suffix()),
            Some(l) => write!(f, "blocks.{l}.{}", self.kind().suffix()),
        }
    }
}

/// A TransformerLens hook name (`hook_embed`, `blocks.3.hook_mlp_out`...).
impl FromStr for HookPoint {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "hook_embed" => return Ok(HookPoint::Embed),
            "hook_pos_embed" => return Ok(HookPoint::PosEmbed),
            _ => {}
        }
        let (layer, suffix) = s
            .strip_prefix("blocks.")
            .and_then(|rest| rest.split_once('.'))
            .ok_or_else(|| format!("{s:?} is not a hook name; hooks are {HOOK_NAMES}"))?;
        let kind = HookKind::per_layer(suffix)
            .ok_or_else(|| format!("unknown hook {suffix:?} in {s:?}; hooks are {HOOK_NAMES}"))?;
        let l = layer
            .parse::<usize>()
            .map_err(|_| format!("{layer:?} in {s:?} is not a layer number"))?;
        Ok(kind.at(l))
    }
}

/// Every hook name [`HookPoint`] parses.
pub const HOOK_NAMES: &str = "hook_embed, hook_pos_embed, blocks.{l}.hook_resid_pre, blocks.{l}.hook_resid_mid, \
blocks.{l}.hook_attn_out, blocks.{l}.hook_mlp_out, blocks.{l}.hook_resid_post, blocks.{l}.attn.hook_attn_scores";

#[derive(Debug, Clone, PartialEq)]
pub enum StreamOpKind {
    Zero,
    Scale(f32),
    Add(Vec<f32>),
    /// Read from the Jacobian lens at this op's layer.
    Jlens(JlensOp),
    /// Through an attached SAE, at the hook it reads.
    Sae(SaeOp),
}

/// One operation at one hook, for one position or all.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOp {
    pub kind: StreamOpKind,
    /// `None` = every position.
    pub position: Option<usize>,
    /// The request key it came from.
    pub key: String,
}

/// One `block_attention` operation after expansion, kept for receipts.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionBlock {
    pub key: String,
    pub layers: Vec<usize>,
    /// (query, key) pairs whose pre-softmax score becomes -inf.
    pub pairs: Vec<(usize, usize)>,
}

/// Everything a forward pass must do besides computing, validated against
/// one model and one input length.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InterventionPlan {
    pub stream: HashMap<HookPoint, Vec<StreamOp>>,
    pub blocks: Vec<AttentionBlock>,
}

impl InterventionPlan {
    pub fn is_empty(&self) -> bool {
        self.stream.is_empty() && self.blocks.is_empty()
    }

    pub fn ops_at(&self, hook: HookPoint) -> &[StreamOp] {
        self.stream.get(&hook).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Blocked (query, key) pairs at one layer, over all blocking operations.
    pub fn blocked_at(&self, layer: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.blocks
            .iter()
            .filter(move |b| b.layers.contains(&layer))
            .flat_map(|b| b.pairs.iter().copied())
    }

    /// The first layer whose computation differs between two plans: every
    /// state before it (the residual stream entering it included) is the
    /// same under both. `n_layers` when the plans act identically.
    pub fn first_difference(&self, other: &InterventionPlan, n_layers: usize) -> usize {
        // Where a hook's effect first shows: hooks inside layer l change
        // layer l; resid_pre of layer l is applied at the end of layer l-1's
        // step (it shapes resid_post of l-1 as the lens records it).
        let start = |h: HookPoint| match h {
            HookPoint::Embed | HookPoint::PosEmbed => 0,
            HookPoint::ResidPre(l) => l.saturating_sub(1),
            HookPoint::ResidMid(l)
            | HookPoint::AttnOut(l)
            | HookPoint::MlpOut(l)
            | HookPoint::ResidPost(l)
            | HookPoint::AttnScores(l) => l,
        };
        let mut first = n_layers;
        for h in self.stream.keys().chain(other.stream.keys()) {
            if self.ops_at(*h) != other.ops_at(*h) {
                first = first.min(start(*h));
            }
        }
        for l in 0..first {
            let mut a: Vec<_> = self.blocked_at(l).collect();
            let mut b: Vec<_> = other.blocked_at(l).collect();
            a.sort_unstable();
            a.dedup();
            b.sort_unstable();
            b.dedup();
            if a != b {
                first = l;
                break;
            }
        }
        first
    }

    /// The earliest layer any operation touches (`Some(0)` for embeddings);
    /// `None` without interventions.
    pub fn first_layer(&self) -> Option<usize> {
        let stream = self.stream.keys().map(|h| h.layer().unwrap_or(0));
        let blocks = self.blocks.iter().flat_map(|b| b.layers.iter().copied());
        stream.chain(blocks).min()
    }
}

/// One activation replaced in a forward pass (activation patching): row
/// `position` of the stream at `at` becomes `row` (`[1, D]`), after any
/// operation of the plan there.
#[derive(Debug, Clone)]
pub struct Patch {
    pub at: HookPoint,
    pub position: usize,
    pub row: candle_core::Tensor,
}

/// What a request key designates: a stream hook at the given layers, or
/// attention blocking at one layer (`None`: every layer).
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Stream(HookKind, Vec<usize>),
    Attention(Option<usize>),
}

pub const ACCEPTED_KEYS: &str = "embeddings | hook_embed, hook_pos_embed, blocks.{l}.hook_resid_pre, blocks.{l}.hook_resid_mid, layer_{l}_attn_output | blocks.{l}.hook_attn_out, \
layer_{l}_mlp_output | blocks.{l}.hook_mlp_out, layer_{l}_output | blocks.{l}.hook_resid_post, \
all_layers_{attn_output|mlp_output|output|resid_pre|resid_mid}, layer_{l}_attention | blocks.{l}.attn.hook_attn_scores, \
all_layers_attention[...]";

fn parse_layer(s: &str, key: &str, n_layers: usize) -> Result<usize> {
    let l: i64 = s.parse().map_err(|_| {
        invalid!(
            "intervention key {key:?}: {s:?} is not a layer number; accepted keys: {ACCEPTED_KEYS}"
        )
    })?;
    if l < 0 || l as usize >= n_layers {
        return Err(invalid!(
            "intervention key {key:?}: layer {l} is out of range; this model has {n_layers} layers (0..{})",
            n_layers - 1
        ));
    }
    Ok(l as usize)
}

fn target_at(kind: HookKind, l: usize) -> Target {
    match kind {
        HookKind::AttnScores => Target::Attention(Some(l)),
        k => Target::Stream(k, vec![l]),
    }
}

fn parse_key(key: &str, n_layers: usize) -> Result<Target> {
    let all: Vec<usize> = (0..n_layers).collect();
    match key {
        "embeddings" | "hook_embed" => return Ok(Target::Stream(HookKind::Embed, vec![0])),
        "hook_pos_embed" => return Ok(Target::Stream(HookKind::PosEmbed, vec![0])),
        "all_layers_output" => return Ok(Target::Stream(HookKind::ResidPost, all)),
        "all_layers_attn_output" => return Ok(Target::Stream(HookKind::AttnOut, all)),
        "all_layers_mlp_output" => return Ok(Target::Stream(HookKind::MlpOut, all)),
        "all_layers_resid_pre" => return Ok(Target::Stream(HookKind::ResidPre, all)),
        "all_layers_resid_mid" => return Ok(Target::Stream(HookKind::ResidMid, all)),
        _ => {}
    }
    // The frontend names all-layer blocks `all_layers_attention_{src}_to_{tgt}`
    // so several can coexist; any suffix is accepted.
    if key.starts_with("all_layers_attention") {
        return Ok(Target::Attention(None));
    }
    if let Some(rest) = key.strip_prefix("blocks.") {
        let (layer, hook) = rest.split_once('.').ok_or_else(|| {
            invalid!("unknown intervention key {key:?}; accepted keys: {ACCEPTED_KEYS}")
        })?;
        let kind = HookKind::per_layer(hook).ok_or_else(|| {
            invalid!("unknown hook {hook:?} in key {key:?}; accepted keys: {ACCEPTED_KEYS}")
        })?;
        return Ok(target_at(kind, parse_layer(layer, key, n_layers)?));
    }
    if let Some((layer, loc)) = key.strip_prefix("layer_").and_then(|r| r.split_once('_')) {
        let kind = match loc {
            "output" => HookKind::ResidPost,
            "attn_output" => HookKind::AttnOut,
            "mlp_output" => HookKind::MlpOut,
            "attention" => HookKind::AttnScores,
            _ => {
                return Err(invalid!(
                    "unknown intervention key {key:?} (location {loc:?}); accepted keys: {ACCEPTED_KEYS}"
                ))
            }
        };
        return Ok(target_at(kind, parse_layer(layer, key, n_layers)?));
    }
    Err(invalid!(
        "unknown intervention key {key:?}; accepted keys: {ACCEPTED_KEYS}"
    ))
}

/// The positions an intervention may name: `len` tokens now (negative
/// indices count back from its end), growing to `max` (generation: an
/// index past the prompt applies once that position exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub len: usize,
    pub max: usize,
}

impl Extent {
    /// A fixed input of `len` tokens.
    pub fn fixed(len: usize) -> Self {
        Extent { len, max: len }
    }
}

/// Python-style index normalisation; out of range is an error, not a skip.
fn norm_index(i: i64, ext: Extent, what: &str, key: &str) -> Result<usize> {
    let j = if i < 0 { i + ext.len as i64 } else { i };
    if j < 0 || j >= ext.max as i64 {
        let input = if ext.max == ext.len {
            format!("a {}-token input", ext.len)
        } else {
            format!(
                "a {}-token prompt and {} new tokens",
                ext.len,
                ext.max - ext.len
            )
        };
        return Err(invalid!(
            "intervention {key:?}: {what} {i} is out of range for {input} (valid: {}..{})",
            -(ext.len as i64),
            ext.max as i64 - 1
        ));
    }
    Ok(j as usize)
}

/// The value as the f32 the forward pass uses; JSON numbers beyond f32's
/// range (1e39) would become infinities there.
fn finite(x: f64, what: &str, key: &str) -> Result<f32> {
    let y = x as f32;
    if !y.is_finite() {
        return Err(invalid!(
            "intervention {key:?}: {what} must be a finite 32-bit number (|x| < 3.4e38), got {x}"
        ));
    }
    Ok(y)
}

fn stream_op(cfg: &InterventionConfig, key: &str, ext: Extent, d_model: usize) -> Result<StreamOp> {
    let kind = match cfg.kind.as_str() {
        "zero" => StreamOpKind::Zero,
        "scale" => {
            let v = cfg.value.ok_or_else(|| {
                invalid!("intervention {key:?}: `scale` needs a numeric `value` (the factor)")
            })?;
            StreamOpKind::Scale(finite(v, "value", key)?)
        }
        "add" => {
            let v = cfg.vector.as_ref().ok_or_else(|| {
                invalid!("intervention {key:?}: `add` needs a `vector` of {d_model} numbers")
            })?;
            if v.len() != d_model {
                return Err(invalid!(
                    "intervention {key:?}: `add` vector has {} numbers; this model's hidden size is {d_model}",
                    v.len()
                ));
            }
            StreamOpKind::Add(v.iter().map(|x| finite(*x, "vector entry", key)).collect::<Result<_>>()?)
        }
        "block_attention" => {
            return Err(invalid!(
                "intervention {key:?}: block_attention applies to attention keys \
                 (layer_{{l}}_attention, blocks.{{l}}.attn.hook_attn_scores or all_layers_attention), not to a stream"
            ))
        }
        other => {
            return Err(invalid!(
                "intervention {key:?}: unknown type {other:?} (known: {KNOWN_TYPES})"
            ))
        }
    };
    Ok(StreamOp {
        kind,
        position: position(cfg, key, ext)?,
        key: key.to_owned(),
    })
}

/// Every operation type.
const KNOWN_TYPES: &str = "zero, scale, add, block_attention, jlens_steer, jlens_ablate, \
    jlens_swap, sae_splice, sae_ablate, sae_clamp, sae_steer";

/// The position an operation names with `token_index` (`None`: all).
fn position(cfg: &InterventionConfig, key: &str, ext: Extent) -> Result<Option<usize>> {
    cfg.token_index
        .map(|i| norm_index(i, ext, "token_index", key))
        .transpose()
}

fn block_op(cfg: &InterventionConfig, key: &str, ext: Extent) -> Result<Vec<(usize, usize)>> {
    match cfg.kind.as_str() {
        "block_attention" => {}
        "zero" | "scale" | "add" | "jlens_steer" | "jlens_ablate" | "jlens_swap" | "sae_splice"
        | "sae_ablate" | "sae_clamp" | "sae_steer" => {
            return Err(invalid!(
                "intervention {key:?}: `{}` is a stream operation; attention keys take only block_attention",
                cfg.kind
            ))
        }
        other => {
            return Err(invalid!(
                "intervention {key:?}: unknown type {other:?} (known: {KNOWN_TYPES})"
            ))
        }
    }
    let list = |v: &Option<Vec<i64>>, what: &str| -> Result<Vec<usize>> {
        let v = v.as_ref().filter(|v| !v.is_empty()).ok_or_else(|| {
            invalid!("intervention {key:?}: block_attention needs a non-empty `{what}` list")
        })?;
        v.iter().map(|&i| norm_index(i, ext, what, key)).collect()
    };
    // Sources are keys (attended to), targets are queries (attending).
    let sources = list(&cfg.source_tokens, "source_tokens")?;
    let targets = list(&cfg.target_tokens, "target_tokens")?;
    let mut pairs = Vec::with_capacity(targets.len() * sources.len());
    let mut seen = HashSet::with_capacity(pairs.capacity());
    for &q in &targets {
        for &k in &sources {
            if k > q {
                return Err(invalid!(
                    "intervention {key:?}: source token {k} comes after target token {q}; causal attention \
                     never reads later tokens, so there is nothing to block (need source <= target)"
                ));
            }
            if seen.insert((q, k)) {
                pairs.push((q, k));
            }
        }
    }
    Ok(pairs)
}

/// Validate a request's interventions against a model with `n_layers` layers
/// and hidden size `d_model`, for an input of `seq_len` tokens (without a
/// Jacobian lens: its operations are refused).
pub fn plan(
    interventions: &Interventions,
    n_layers: usize,
    d_model: usize,
    seq_len: usize,
) -> Result<InterventionPlan> {
    plan_within(
        interventions,
        n_layers,
        d_model,
        Extent::fixed(seq_len),
        Sources::default(),
    )
}

/// What operations read from beyond the request: the attached Jacobian
/// lens's vectors and SAEs (their operations are refused without them).
#[derive(Clone, Copy, Default)]
pub struct Sources<'a> {
    pub lens: Option<&'a dyn LensVectors>,
    pub saes: Option<&'a dyn SaeProvider>,
}

/// [`plan`] for an input that grows (positions are checked against
/// `ext.max`, negative ones count back from the end of `ext.len` tokens),
/// with the Jacobian lens's vectors and the SAEs, when attached, for their
/// operations.
pub fn plan_within(
    interventions: &Interventions,
    n_layers: usize,
    d_model: usize,
    ext: Extent,
    sources: Sources<'_>,
) -> Result<InterventionPlan> {
    let mut out = InterventionPlan::default();
    for (key, configs) in interventions {
        let target = parse_key(key, n_layers)?;
        if configs.is_empty() {
            return Err(invalid!(
                "intervention {key:?} has an empty list of operations"
            ));
        }
        for cfg in configs {
            match &target {
                Target::Stream(loc, layers) if jlens::KINDS.contains(&cfg.kind.as_str()) => {
                    if *loc != HookKind::ResidPost {
                        return Err(invalid!(
                            "intervention {key:?}: {} acts on block outputs (layer_{{l}}_output, \
                             blocks.{{l}}.hook_resid_post or all_layers_output), the states a \
                             Jacobian lens's matrices read",
                            cfg.kind
                        ));
                    }
                    let all = key.starts_with("all_layers_") || cfg.all_layers == Some(true);
                    let position = position(cfg, key, ext)?;
                    for (l, op) in jlens::ops(cfg, key, layers, all, sources.lens)? {
                        out.stream.entry(loc.at(l)).or_default().push(StreamOp {
                            kind: StreamOpKind::Jlens(op),
                            position,
                            key: key.clone(),
                        });
                    }
                }
                Target::Stream(loc, layers) if sae::KINDS.contains(&cfg.kind.as_str()) => {
                    let all = layers.len() > 1 || cfg.all_layers == Some(true);
                    let op = sae::op(cfg, key, loc.at(layers[0]), all, sources.saes)?;
                    out.stream
                        .entry(loc.at(layers[0]))
                        .or_default()
                        .push(StreamOp {
                            kind: StreamOpKind::Sae(op),
                            position: position(cfg, key, ext)?,
                            key: key.clone(),
                        });
                }
                Target::Stream(loc, layers) => {
                    let op = stream_op(cfg, key, ext, d_model)?;
                    // `all_layers: true` widens a single-layer stream key, as it
                    // does for attention keys.
                    let layers: Vec<usize> = if cfg.all_layers == Some(true)
                        && !matches!(loc, HookKind::Embed | HookKind::PosEmbed)
                    {
                        (0..n_layers).collect()
                    } else {
                        layers.clone()
                    };
                    for &l in &layers {
                        out.stream.entry(loc.at(l)).or_default().push(op.clone());
                    }
                }
                Target::Attention(layer) => {
                    let pairs = block_op(cfg, key, ext)?;
                    let layers = match layer {
                        Some(l) if cfg.all_layers != Some(true) => vec![*l],
                        _ => (0..n_layers).collect(),
                    };
                    out.blocks.push(AttentionBlock {
                        key: key.clone(),
                        layers,
                        pairs,
                    });
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::InterventionConfig as C;
    use super::*;

    fn one(key: &str, c: C) -> Interventions {
        let mut m = Interventions::new();
        m.insert(key.into(), vec![c]);
        m
    }

    fn zero() -> C {
        C {
            kind: "zero".into(),
            ..Default::default()
        }
    }

    #[test]
    fn aliases_reach_the_same_hook() {
        for key in ["layer_2_output", "blocks.2.hook_resid_post"] {
            let p = plan(&one(key, zero()), 4, 8, 5).unwrap();
            assert_eq!(p.ops_at(HookPoint::ResidPost(2)).len(), 1, "{key}");
        }
        let p = plan(&one("hook_embed", zero()), 4, 8, 5).unwrap();
        assert_eq!(p.ops_at(HookPoint::Embed).len(), 1);
        let p = plan(&one("blocks.1.hook_mlp_out", zero()), 4, 8, 5).unwrap();
        assert_eq!(p.ops_at(HookPoint::MlpOut(1)).len(), 1);
        let p = plan(&one("blocks.3.hook_resid_pre", zero()), 4, 8, 5).unwrap();
        assert_eq!(p.ops_at(HookPoint::ResidPre(3)).len(), 1);
        let p = plan(&one("blocks.0.hook_resid_mid", zero()), 4, 8, 5).unwrap();
        assert_eq!(p.ops_at(HookPoint::ResidMid(0)).len(), 1);
        assert_eq!(
            HookPoint::ResidMid(0).to_string(),
            "blocks.0.hook_resid_mid"
        );
        let p = plan(&one("layer_1_attn_output", zero()), 4, 8, 5).unwrap();
        assert_eq!(p.ops_at(HookPoint::AttnOut(1)).len(), 1);
    }

    #[test]
    fn hook_names_parse_and_print_alike() {
        let l = 4;
        for h in [
            HookPoint::Embed,
            HookPoint::PosEmbed,
            HookPoint::ResidPre(l),
            HookPoint::ResidMid(l),
            HookPoint::AttnOut(l),
            HookPoint::MlpOut(l),
            HookPoint::ResidPost(l),
            HookPoint::AttnScores(l),
        ] {
            assert_eq!(h.to_string().parse::<HookPoint>(), Ok(h), "{h}");
        }
        assert_eq!(
            HookPoint::AttnScores(3).to_string(),
            "blocks.3.attn.hook_attn_scores"
        );
        for bad in [
            "blocks.x.hook_mlp_out",
            "blocks.1.hook_nope",
            "layer_1_output",
            "blocks.1",
        ] {
            assert!(bad.parse::<HookPoint>().is_err(), "{bad}");
        }
    }

    #[test]
    fn two_keys_on_one_hook_both_apply_in_request_order() {
        let mut m = Interventions::new();
        m.insert(
            "all_layers_output".into(),
            vec![C {
                kind: "scale".into(),
                value: Some(0.5),
                ..Default::default()
            }],
        );
        m.insert("layer_1_output".into(), vec![zero()]);
        let p = plan(&m, 3, 8, 5).unwrap();
        let ops = p.ops_at(HookPoint::ResidPost(1));
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].kind, StreamOpKind::Scale(0.5));
        assert_eq!(ops[1].kind, StreamOpKind::Zero);
        assert_eq!(p.ops_at(HookPoint::ResidPost(0)).len(), 1);
    }

    #[test]
    fn errors_name_what_to_fix() {
        let e = plan(&one("layer_9_output", zero()), 3, 8, 5)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("layer 9") && e.contains("3 layers") && e.contains("0..2"),
            "{e}"
        );
        let e = plan(&one("layer_-1_output", zero()), 3, 8, 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of range"), "{e}");
        let e = plan(&one("layer_x_output", zero()), 3, 8, 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a layer number"), "{e}");
        let e = plan(&one("layer_1_foo", zero()), 3, 8, 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown intervention key"), "{e}");
        let e = plan(&one("nonsense", zero()), 3, 8, 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("accepted keys"), "{e}");
        let e = plan(
            &one(
                "layer_1_output",
                C {
                    kind: "scale".into(),
                    ..Default::default()
                },
            ),
            3,
            8,
            5,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs a numeric `value`"), "{e}");
        let e = plan(
            &one(
                "layer_1_output",
                C {
                    kind: "negate".into(),
                    ..Default::default()
                },
            ),
            3,
            8,
            5,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown type \"negate\""), "{e}");
        let e = plan(
            &one(
                "layer_1_output",
                C {
                    kind: "zero".into(),
                    token_index: Some(5),
                    ..Default::default()
                },
            ),
            3,
            8,
            5,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("token_index 5") && e.contains("-5..4"), "{e}");
        let e = plan(
            &one(
                "layer_1_output",
                C {
                    kind: "add".into(),
                    vector: Some(vec![1.0; 3]),
                    ..Default::default()
                },
            ),
            3,
            8,
            5,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("hidden size is 8"), "{e}");
        let e = plan(
            &one(
                "layer_1_output",
                C {
                    kind: "block_attention".into(),
                    ..Default::default()
                },
            ),
            3,
            8,
            5,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("attention keys"), "{e}");
        let e = plan(&one("layer_1_attention", zero()), 3, 8, 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("stream operation"), "{e}");
        let blk = |s: Vec<i64>, t: Vec<i64>| C {
            kind: "block_attention".into(),
            source_tokens: Some(s),
            target_tokens: Some(t),
            ..Default::default()
        };
        let e = plan(&one("layer_1_attention", blk(vec![], vec![2])), 3, 8, 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("non-empty `source_tokens`"), "{e}");
        let e = plan(
            &one("all_layers_attention", blk(vec![1, 2], vec![4, 5])),
            3,
            8,
            5,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("target_tokens 5") && e.contains("5-token"),
            "{e}"
        );
        let e = plan(&one("layer_0_attention", blk(vec![3], vec![1])), 3, 8, 5)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("source token 3 comes after target token 1"),
            "{e}"
        );
        let mut m = Interventions::new();
        m.insert("layer_0_output".into(), vec![]);
        assert!(plan(&m, 3, 8, 5)
            .unwrap_err()
            .to_string()
            .contains("empty list"));
    }

    #[test]
    fn negative_indices_count_from_the_end() {
        let p = plan(
            &one(
                "embeddings",
                C {
                    kind: "zero".into(),
                    token_index: Some(-1),
                    ..Default::default()
                },
            ),
            3,
            8,
            5,
        )
        .unwrap();
        assert_eq!(p.ops_at(HookPoint::Embed)[0].position, Some(4));
        let blk = C {
            kind: "block_attention".into(),
            source_tokens: Some(vec![0, -2]),
            target_tokens: Some(vec![-1]),
            ..Default::default()
        };
        let p = plan(&one("layer_2_attention", blk), 3, 8, 5).unwrap();
        assert_eq!(p.blocked_at(2).collect::<Vec<_>>(), vec![(4, 0), (4, 3)]);
        assert_eq!(p.blocked_at(1).count(), 0);
    }

    #[test]
    fn all_layers_resid_pre_and_mid_reach_every_layer() {
        for (key, hook) in [
            (
                "all_layers_resid_pre",
                HookPoint::ResidPre as fn(usize) -> HookPoint,
            ),
            ("all_layers_resid_mid", HookPoint::ResidMid),
        ] {
            let p = plan(&one(key, zero()), 3, 8, 5).unwrap();
            let mut hooks: Vec<HookPoint> = p.stream.keys().copied().collect();
            hooks.sort();
            assert_eq!(hooks, (0..3).map(hook).collect::<Vec<_>>(), "{key}");
        }
    }

    #[test]
    fn all_layers_flag_widens_attention_and_stream_keys() {
        let blk = C {
            kind: "block_attention".into(),
            source_tokens: Some(vec![0]),
            target_tokens: Some(vec![1]),
            all_layers: Some(true),
            ..Default::default()
        };
        let p = plan(&one("layer_1_attention", blk.clone()), 3, 8, 5).unwrap();
        assert_eq!(p.blocks[0].layers, vec![0, 1, 2]);
        let p = plan(
            &one(
                "all_layers_attention_0_to_1",
                C {
                    all_layers: None,
                    ..blk
                },
            ),
            3,
            8,
            5,
        )
        .unwrap();
        assert_eq!(p.blocks[0].layers, vec![0, 1, 2]);
        assert_eq!(p.first_layer(), Some(0));
    }
}
