//! A feature over a corpus, for its card: how often it fires, how strongly
//! at most, and the contexts where it fires most, each with the token it
//! fires on marked.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::hooks::InterventionPlan;
use crate::load::LoadedModel;
use crate::sae::Sae;
use crate::watch::{check, Stage};

use super::corpus::{batch_bytes, batches, clean_runs, Corpus, CorpusSpec};
use super::{Context, Cost, Never, Operation, Request};

/// Most contexts a scan lists, and most tokens each side of one.
pub const MAX_CONTEXTS: usize = 100;
pub const MAX_WINDOW: usize = 64;

/// A feature's scan asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct SaeCorpusRequest {
    /// An attached SAE's name.
    pub sae: String,
    pub feature: u32,
    pub corpus: Corpus,
    pub max_tokens: usize,
    /// Contexts listed, the strongest first.
    pub contexts: usize,
    /// Tokens shown each side of the one it fires on.
    pub window: usize,
}

/// One place the feature fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeatureContext {
    /// Which document (0-based, in corpus order) and position in it.
    pub document: usize,
    pub position: usize,
    pub act: f32,
    /// The tokens around it, decoded one by one...
    pub tokens: Vec<String>,
    /// ...and the index in `tokens` of the one it fires on.
    pub highlight: usize,
}

/// What `POST /sae_feature_corpus` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SaeCorpusReport {
    pub sae: String,
    pub feature: u32,
    pub documents: usize,
    /// Positions read.
    pub tokens: usize,
    /// Positions where it fires (activation > 0)...
    pub fires: usize,
    /// ...as a share of `tokens`.
    pub frequency: f64,
    pub max_act: f32,
    /// The seed, when the documents were sampled from the model.
    pub sample_seed: Option<u64>,
    pub contexts: Vec<FeatureContext>,
}

/// A scan checked.
pub struct SaeCorpusSpec {
    sae: Arc<Sae>,
    feature: u32,
    corpus: CorpusSpec,
    contexts: usize,
    window: usize,
    /// Documents one batched pass carries at most (`Some(1)`: one by one).
    pub max_batch: Option<usize>,
}

impl Request for SaeCorpusRequest {
    type Op = SaeCorpusSpec;
}

impl Operation for SaeCorpusSpec {
    type Request = SaeCorpusRequest;
    type Output = SaeCorpusReport;
    type Event = Never;

    fn texts(_: &SaeCorpusRequest) -> Vec<(&'static str, &str)> {
        Vec::new()
    }

    fn check(model: &LoadedModel, req: &SaeCorpusRequest) -> Result<Self> {
        let sae = model.attached_sae(&req.sae)?;
        sae.check_feature(req.feature as usize)?;
        if !(1..=MAX_CONTEXTS).contains(&req.contexts) {
            return Err(crate::invalid!(
                "contexts is 1 to {MAX_CONTEXTS}, not {}",
                req.contexts
            ));
        }
        if req.window > MAX_WINDOW {
            return Err(crate::invalid!(
                "window is 0 to {MAX_WINDOW} tokens each side, not {}",
                req.window
            ));
        }
        Ok(SaeCorpusSpec {
            sae,
            feature: req.feature,
            corpus: CorpusSpec::check(model, &req.corpus, req.max_tokens)?,
            contexts: req.contexts,
            window: req.window,
            max_batch: None,
        })
    }

    fn max_batch(&mut self) -> Option<&mut Option<usize>> {
        Some(&mut self.max_batch)
    }

    /// A batch of documents' states and a document's SAE pre-activations.
    fn cost(&self, model: &LoadedModel) -> Cost {
        let t = self.corpus.max_tokens as u64;
        let d_sae = self.sae.d_sae() as u64;
        Cost {
            memory: vec![
                (
                    "a batch of documents' runs",
                    batch_bytes(
                        model,
                        self.corpus.max_tokens,
                        self.corpus.documents(),
                        self.max_batch,
                    ),
                ),
                (
                    "SAE features",
                    (crate::sae::MAX_PRE_BYTES as u64).min(t * d_sae * 4),
                ),
            ],
            tokens: self.corpus.max_tokens,
            tokens_said: format!("documents are cut to {} tokens", self.corpus.max_tokens),
            counts: self.corpus.counts(),
            fixes: vec!["a smaller max_tokens".into(), "fewer documents".into()],
        }
    }

    fn run(
        self,
        model: &LoadedModel,
        cx: &Context,
        _: &mut dyn FnMut(Never) -> Result<()>,
    ) -> Result<SaeCorpusReport> {
        let sample_seed = self.corpus.sample_seed();
        let docs = self.corpus.ids(model, cx.watch)?;
        let plan = InterventionPlan::default();
        let f = self.feature as usize;
        let (mut tokens, mut fires, mut max_act) = (0usize, 0usize, 0f32);
        // (act, document, position), the strongest `contexts` kept.
        let mut best: Vec<(f32, usize, usize)> = Vec::new();
        // The documents' runs in batches (as eval-lens and eval-sae make
        // their clean runs), each document then read in corpus order.
        let ranges = batches(model, &docs, self.max_batch);
        for range in ranges {
            check(cx.watch)?;
            cx.watch.progress(Stage::Documents, range.start, docs.len());
            let caps = clean_runs(model, &docs, range.clone(), cx.watch)?;
            for (d, cap) in range.zip(caps) {
                let ids = &docs[d];
                let x = super::sae::hook_state(model, &cap, ids, &plan, self.sae.hook)?;
                let acts = self.sae.feature_acts(&x, f)?;
                tokens += acts.len();
                for (p, &a) in acts.iter().enumerate().filter(|(_, a)| **a > 0.0) {
                    fires += 1;
                    max_act = max_act.max(a);
                    best.push((a, d, p));
                }
                // Strongest first, then earliest: a stable order for equal acts.
                best.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
                best.truncate(self.contexts);
            }
        }
        cx.watch.progress(Stage::Documents, docs.len(), docs.len());
        let contexts = best
            .into_iter()
            .map(|(act, document, position)| {
                let ids = &docs[document];
                let lo = position.saturating_sub(self.window);
                let hi = (position + self.window + 1).min(ids.len());
                Ok(FeatureContext {
                    document,
                    position,
                    act,
                    tokens: ids[lo..hi]
                        .iter()
                        .map(|&id| model.tokenizer.decode_one(id))
                        .collect::<Result<_>>()?,
                    highlight: position - lo,
                })
            })
            .collect::<Result<_>>()?;
        Ok(SaeCorpusReport {
            sae: self.sae.name.clone(),
            feature: self.feature,
            documents: docs.len(),
            tokens,
            fires,
            frequency: fires as f64 / tokens.max(1) as f64,
            max_act,
            sample_seed,
            contexts,
        })
    }
}
