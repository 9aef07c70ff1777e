//! A request, and the same request checked once against a model and a
//! tokenized input: the typed [`RunSpec`] the run executes without checking
//! anything again.

use serde_json::Value;

use std::sync::Arc;

use crate::attention::{self, Format, Reduce};
use crate::error::{EngineError, Result};
use crate::hooks::{
    self, Extent, InterventionPlan, Interventions, LensVectors, SaeCodec, SaeProvider, Sources,
};
use crate::lens::{JacobianLens, Lens, LensType, TunedLens};
use crate::load::LoadedModel;
use crate::ops::sae::{check_read, SaeRead, SaeSelection};
use crate::sae::Sae;

/// Most tokens one request may track.
pub const MAX_TRACKED: usize = 16;

/// What a run is asked to do, before it meets a model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunRequest {
    pub text: String,
    pub apply_chat_template: bool,
    pub interventions: Interventions,
    pub lens_type: LensType,
    pub return_attention: bool,
    /// Only with `return_attention`: the form (default: nested JSON).
    pub attention_format: Option<Format>,
    /// Only with `return_attention`: these layers, in this order (default: all).
    pub attention_layers: Option<Vec<i64>>,
    /// Only with `return_attention`: average over heads (default: none).
    pub attention_reduce: Option<Reduce>,
    /// Also run without interventions, and diff every cell.
    pub compare: bool,
    /// Tokens whose probability and rank every cell reports: single-token
    /// strings or ids, as JSON states them (checked against the model).
    pub track_tokens: Option<Vec<Value>>,
    /// Each cell's entropy.
    pub entropy: bool,
    /// Norms and cosines of the captured states.
    pub analysis: bool,
    /// The logit lens (default) or the model's attached tuned or Jacobian
    /// lens.
    pub lens: Lens,
    /// Direct logit attribution of one token at one position.
    pub attribution: Option<AttributionRequest>,
    /// The attached SAEs whose features to read at every position.
    pub sae: Option<SaeSelection>,
    /// Features listed per position (default 8; 0: every active one).
    pub sae_top_k: Option<usize>,
}

/// Which logit to attribute: a token (a single-token string or an id, as
/// JSON states it) at a position (negative counts from the end).
#[derive(Debug, Clone, PartialEq)]
pub struct AttributionRequest {
    pub token: Value,
    pub position: i64,
}

impl RunRequest {
    pub fn new(text: impl Into<String>) -> Self {
        RunRequest {
            text: text.into(),
            ..Default::default()
        }
    }
}

/// A request checked against one model and one input.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub text: String,
    pub ids: Vec<u32>,
    pub lens_type: LensType,
    pub plan: InterventionPlan,
    /// The attention to return, if any.
    pub attention: Option<attention::Spec>,
    pub compare: bool,
    /// Ids whose probability and rank every cell reports.
    pub track: Vec<u32>,
    pub entropy: bool,
    pub analysis: bool,
    pub lens: Lens,
    /// With `lens: tuned`, the tuned lens attached when the request was
    /// checked: the run reads with it whatever is attached meanwhile.
    pub tuned: Option<Arc<TunedLens>>,
    /// With `lens: jacobian`, the Jacobian lens attached when the request
    /// was checked.
    pub jacobian: Option<Arc<JacobianLens>>,
    /// (token, position) whose logit to attribute.
    pub attribution: Option<(u32, usize)>,
    /// The SAEs whose features to read, as attached when checked.
    pub(crate) sae: Option<SaeRead>,
}

impl RunSpec {
    /// Check `req` against `model` for the input `ids`; every error says
    /// what to fix.
    pub fn new(model: &LoadedModel, req: &RunRequest, ids: Vec<u32>) -> Result<Self> {
        let cfg = model.config();
        check_ids(model, &ids)?;
        let (vectors, saes) = (AttachedVectors::of(model), AttachedSaes::of(model));
        let plan = hooks::plan_within(
            &req.interventions,
            cfg.n_layers,
            cfg.d_model,
            Extent::fixed(ids.len()),
            sources(&vectors, &saes),
        )?;
        Self::with_plan(model, req, ids, plan)
    }

    /// [`new`](Self::new) with the interventions already checked into
    /// `plan` (a generation checks them over the whole sequence it may
    /// write); `req.interventions` is not read.
    pub(crate) fn with_plan(
        model: &LoadedModel,
        req: &RunRequest,
        ids: Vec<u32>,
        plan: InterventionPlan,
    ) -> Result<Self> {
        let cfg = model.config();
        check_ids(model, &ids)?;
        let (tuned, jacobian) = reading_lens(model, req)?;
        Ok(RunSpec {
            lens: req.lens,
            tuned,
            jacobian,
            text: req.text.clone(),
            lens_type: req.lens_type,
            plan,
            attention: attention_spec(req, cfg.n_layers)?,
            compare: req.compare,
            track: track_ids(model, req.track_tokens.as_deref())?,
            entropy: req.entropy,
            analysis: req.analysis,
            attribution: req
                .attribution
                .as_ref()
                .map(|a| attribution_target(model, a, ids.len()))
                .transpose()?,
            sae: check_read(model, req.sae.as_ref(), req.sae_top_k)?,
            ids,
        })
    }
}

/// An input the model can run: at least one token, every id in its vocabulary.
fn check_ids(model: &LoadedModel, ids: &[u32]) -> Result<()> {
    let vocab = model.config().vocab_size;
    if ids.is_empty() {
        return Err(EngineError::InvalidRequest(
            "the text encodes to no tokens (it is empty and this tokenizer adds no BOS); nothing to run".into(),
        ));
    }
    match ids.iter().find(|&&i| i as usize >= vocab) {
        Some(&bad) => Err(EngineError::InvalidRequest(format!(
            "token id {bad} is outside this model's vocabulary of {vocab}"
        ))),
        None => Ok(()),
    }
}

/// The lens a `lens: tuned` or `lens: jacobian` request reads with: the
/// one attached to the model, for block outputs only. A tuned lens's
/// translators were trained on block outputs; a Jacobian lens's matrices
/// are the Jacobians of the final block's output with respect to a block's
/// output, and a post-attention state has none (its Jacobian would pass
/// through that block's MLP too), so neither reads `post_attention` or
/// `combined` rows.
#[allow(clippy::type_complexity)]
fn reading_lens(
    model: &LoadedModel,
    req: &RunRequest,
) -> Result<(Option<Arc<TunedLens>>, Option<Arc<JacobianLens>>)> {
    let block_outputs = |what: &str, does: &str| {
        if req.lens_type == LensType::BlockOutput {
            return Ok(());
        }
        Err(crate::invalid!(
            "a {what} lens {does} block outputs only; use lens_type block_output with lens: {}",
            req.lens.as_str()
        ))
    };
    match req.lens {
        Lens::Logit => Ok((None, None)),
        Lens::Tuned => {
            let Some(lens) = model.tuned_lens() else {
                return Err(crate::invalid!(
                    "lens: tuned, but no tuned lens is attached to this model; attach one (--tuned-lens DIR) or use lens: logit"
                ));
            };
            block_outputs("tuned", "translates")?;
            Ok((Some(lens), None))
        }
        Lens::Jacobian => {
            let Some(lens) = model.jacobian_lens() else {
                return Err(crate::invalid!(
                    "lens: jacobian, but no Jacobian lens is attached to this model; attach one or use lens: logit"
                ));
            };
            block_outputs("Jacobian", "transports")?;
            Ok((None, Some(lens)))
        }
    }
}

/// The Jacobian lens attached to a model as the vectors its interventions
/// read (`jlens_steer`, `jlens_ablate`, `jlens_swap`).
pub(crate) struct AttachedVectors<'a> {
    model: &'a LoadedModel,
    lens: Arc<JacobianLens>,
}

impl<'a> AttachedVectors<'a> {
    /// `None` when no Jacobian lens is attached.
    pub(crate) fn of(model: &'a LoadedModel) -> Option<Self> {
        model
            .jacobian_lens()
            .map(|lens| AttachedVectors { model, lens })
    }
}

impl LensVectors for AttachedVectors<'_> {
    fn token_id(&self, token: &Value, what: &str) -> Result<u32> {
        token_id(self.model, token, what)
    }

    fn layers(&self) -> Vec<usize> {
        self.lens.source_layers.clone()
    }

    fn vectors(&self, layer: usize, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        let rows = self.model.model.unembedding_rows(tokens)?;
        Ok(self.lens.lens_vectors(layer, &rows)?.to_vec2::<f32>()?)
    }
}

/// The SAEs attached to a model, for the `sae_*` interventions (as they
/// are when the request is checked: one attached later is another).
pub(crate) struct AttachedSaes(Vec<Arc<Sae>>);

impl AttachedSaes {
    pub(crate) fn of(model: &LoadedModel) -> Self {
        AttachedSaes(model.saes())
    }
}

impl SaeProvider for AttachedSaes {
    fn sae(&self, name: &str) -> Option<Arc<dyn SaeCodec>> {
        self.0
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.clone() as Arc<dyn SaeCodec>)
    }

    fn names(&self) -> Vec<String> {
        self.0.iter().map(|s| s.name.clone()).collect()
    }
}

/// What a model's interventions may read besides the request.
pub(crate) fn sources<'a>(
    vectors: &'a Option<AttachedVectors<'_>>,
    saes: &'a AttachedSaes,
) -> Sources<'a> {
    Sources {
        lens: vectors.as_ref().map(|v| v as &dyn LensVectors),
        saes: Some(saes),
    }
}

/// The attention a request asks for (None without `return_attention`).
fn attention_spec(req: &RunRequest, n_layers: usize) -> Result<Option<attention::Spec>> {
    let asked = req.attention_format.is_some()
        || req.attention_layers.is_some()
        || req.attention_reduce.is_some();
    if !req.return_attention {
        if asked {
            return Err(EngineError::InvalidRequest(
                "attention_format, attention_layers and attention_reduce need return_attention: true".into(),
            ));
        }
        return Ok(None);
    }
    attention::Spec::new(
        req.attention_format,
        req.attention_layers.as_deref(),
        req.attention_reduce,
        n_layers,
    )
    .map(Some)
}

/// The ids of `track_tokens`: ids as given, strings that are exactly one token.
fn track_ids(model: &LoadedModel, list: Option<&[Value]>) -> Result<Vec<u32>> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    if list.is_empty() {
        return Err(crate::invalid!(
            "track_tokens: the list is empty; leave it out, or list tokens or ids"
        ));
    }
    if list.len() > MAX_TRACKED {
        return Err(crate::invalid!(
            "track_tokens: {} entries; at most {MAX_TRACKED}",
            list.len()
        ));
    }
    list.iter()
        .map(|v| token_id(model, v, "track_tokens"))
        .collect()
}

/// The token and resolved position of an attribution request.
fn attribution_target(
    model: &LoadedModel,
    a: &AttributionRequest,
    seq_len: usize,
) -> Result<(u32, usize)> {
    let token = token_id(model, &a.token, "attribution.token")?;
    let t = seq_len as i64;
    let p = if a.position < 0 {
        a.position + t
    } else {
        a.position
    };
    if !(0..t).contains(&p) {
        return Err(crate::invalid!(
            "attribution.position {} is out of range for a {seq_len}-token input (valid: {}..{})",
            a.position,
            -t,
            t - 1
        ));
    }
    Ok((token, p as usize))
}

/// One token named in a request: an id of this model's vocabulary, or a
/// string that encodes (without special tokens) to exactly one token;
/// `what` names the field in errors, which show a string's pieces.
pub fn token_id(model: &LoadedModel, v: &Value, what: &str) -> Result<u32> {
    let vocab = model.config().vocab_size;
    let tok = &model.tokenizer;
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(id) if (id as usize) < vocab => Ok(id as u32),
            _ => Err(crate::invalid!(
                "{what}: {n} is not a token id of this model (ids 0..{})",
                vocab - 1
            )),
        },
        Value::String(s) => {
            let ids = tok.encode(s, false)?;
            match ids.as_slice() {
                [id] => Ok(*id),
                _ => {
                    let pieces = ids
                        .iter()
                        .map(|&i| tok.decode_one(i))
                        .collect::<Result<Vec<_>>>()?;
                    Err(crate::invalid!(
                        "{what}: {s:?} is {} tokens for this tokenizer ({pieces:?}, ids {ids:?}); give a single token, e.g. one of those pieces or its id (a leading space is part of a token: \" Paris\" and \"Paris\" differ)",
                        ids.len()
                    ))
                }
            }
        }
        other => Err(crate::invalid!(
            "{what}: {other} is neither a token string nor an id"
        )),
    }
}
