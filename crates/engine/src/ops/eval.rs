//! How well a lens reads a model, over a corpus (the tuned-lens paper's
//! measures): per block-output row, pooled over every position of every
//! document, KL(p_final ‖ p_row), the cross-entropy of the next token,
//! the row's entropy, and how often its top-1 is the model's.

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::capture::State;
use crate::error::Result;
use crate::lens::jacobian::JacobianLens;
use crate::lens::{rows, LensType, TunedLens};
use crate::load::LoadedModel;
use crate::watch::{check, Stage, Watch};

use super::corpus::{batch_bytes, batches, clean_runs, Corpus, CorpusSpec};
use super::{Context, Cost, Never, Operation, Request};

/// One lens's measures, a value per row (natural logs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LensMetrics {
    pub kl: Vec<f64>,
    pub ce: Vec<f64>,
    pub entropy: Vec<f64>,
    pub top1_agree: Vec<f64>,
}

/// What `logitlens eval-lens --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evaluation {
    pub layers: Vec<String>,
    /// Positions counted (every position of every document).
    pub tokens: usize,
    pub logit: LensMetrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tuned: Option<LensMetrics>,
    /// The attached Jacobian lens's, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jacobian: Option<LensMetrics>,
}

/// Sums over positions, turned into means at the end.
#[derive(Default)]
struct Sums {
    kl: Vec<f64>,
    ce: Vec<f64>,
    entropy: Vec<f64>,
    agree: Vec<f64>,
}

impl Sums {
    fn new(rows: usize) -> Self {
        Sums {
            kl: vec![0.0; rows],
            ce: vec![0.0; rows],
            entropy: vec![0.0; rows],
            agree: vec![0.0; rows],
        }
    }

    fn means(self, tokens: usize, ce_tokens: usize) -> LensMetrics {
        let m = |v: Vec<f64>, n: usize| v.into_iter().map(|x| x / n.max(1) as f64).collect();
        LensMetrics {
            kl: m(self.kl, tokens),
            ce: m(self.ce, ce_tokens),
            entropy: m(self.entropy, tokens),
            top1_agree: m(self.agree, tokens),
        }
    }
}

/// `log_softmax` of one f32 logit row, in f64.
pub(super) fn log_probs(logits: &[f32]) -> Vec<f64> {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
    let sum: f64 = logits.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    let log_z = max + sum.ln();
    logits.iter().map(|&x| f64::from(x) - log_z).collect()
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv {
                (i, x)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// A lens evaluation asked for: a corpus, each document's first ids.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRequest {
    pub corpus: Corpus,
    pub max_tokens: usize,
}

/// An evaluation checked: its corpus, and the tuned lens attached when it
/// was checked (measured beside the logit lens).
pub struct EvalSpec {
    corpus: CorpusSpec,
    tuned: Option<Arc<TunedLens>>,
    jacobian: Option<Arc<JacobianLens>>,
    /// At most this many documents' runs go through the model at once
    /// (default: as many as
    /// [`MAX_BATCH_BYTES`](super::MAX_BATCH_BYTES)
    /// holds; 1 runs them one by one).
    pub max_batch: Option<usize>,
}

/// An evaluation and what it was made of: what `POST /eval_lens` and
/// `logitlens eval-lens --json` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EvalReport {
    pub model_name: String,
    /// The tuned lens's folder, when one was attached (then `tuned` is set).
    pub tuned_lens: Option<String>,
    /// The Jacobian lens's file, when one was attached (then `jacobian` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jacobian_lens: Option<String>,
    /// Documents evaluated.
    pub documents: usize,
    /// The seed, when the documents were sampled from the model.
    pub sample_seed: Option<u64>,
    pub max_tokens: usize,
    #[serde(flatten)]
    pub evaluation: Evaluation,
}

impl Request for EvalRequest {
    type Op = EvalSpec;
}

impl Operation for EvalSpec {
    type Request = EvalRequest;
    type Output = EvalReport;
    type Event = Never;

    fn texts(req: &EvalRequest) -> Vec<(&'static str, &str)> {
        // Its documents are cut to max_tokens: a corpus may be long.
        let _ = req;
        Vec::new()
    }

    fn check(model: &LoadedModel, req: &EvalRequest) -> Result<Self> {
        Ok(EvalSpec {
            corpus: CorpusSpec::check(model, &req.corpus, req.max_tokens)?,
            tuned: model.tuned_lens(),
            jacobian: model.jacobian_lens(),
            max_batch: None,
        })
    }

    fn max_batch(&mut self) -> Option<&mut Option<usize>> {
        Some(&mut self.max_batch)
    }

    /// At most, for documents of `max_tokens` ids: the f32 logits of a row
    /// and, in f64, the final row's log-probabilities and probabilities and
    /// one row's log-probabilities; a batch of documents' runs.
    fn cost(&self, model: &LoadedModel) -> Cost {
        let t = self.corpus.max_tokens;
        let v = model.model.vocab_size() as u64;
        let runs = batch_bytes(model, t, self.corpus.documents(), self.max_batch);
        Cost {
            memory: vec![
                (
                    "a document's distributions",
                    t as u64 * v * (4 + 4 + 8 + 8 + 8),
                ),
                ("a batch of documents' runs", runs),
            ],
            tokens: t,
            tokens_said: format!("documents of {t} tokens (max_tokens)"),
            counts: self.corpus.counts(),
            fixes: vec![format!("a smaller max_tokens than {t}")],
        }
    }

    /// Sample the corpus if asked (`Stage::Sample`: tokens written), then
    /// measure each document (`Stage::Documents`).
    fn run(
        self,
        model: &LoadedModel,
        cx: &Context,
        _: &mut dyn FnMut(Never) -> Result<()>,
    ) -> Result<EvalReport> {
        let (max_tokens, sample_seed) = (self.corpus.max_tokens, self.corpus.sample_seed());
        let ids = self.corpus.ids(model, cx.watch)?;
        let lenses = Lenses {
            tuned: self.tuned.as_deref(),
            jacobian: self.jacobian.as_deref(),
        };
        let evaluation = evaluate_in_batches(model, &ids, lenses, self.max_batch, cx.watch)?;
        Ok(EvalReport {
            model_name: model.name.clone(),
            tuned_lens: self.tuned.map(|l| l.dir.display().to_string()),
            jacobian_lens: self.jacobian.map(|l| l.path.display().to_string()),
            documents: ids.len(),
            sample_seed,
            max_tokens,
            evaluation,
        })
    }
}

/// The lenses an evaluation measures beside the logit lens.
#[derive(Default, Clone, Copy)]
pub struct Lenses<'a> {
    pub tuned: Option<&'a TunedLens>,
    pub jacobian: Option<&'a JacobianLens>,
}

/// One document's output distributions: what every row is measured against.
struct Reference {
    log_probs: Vec<Vec<f64>>,
    probs: Vec<Vec<f64>>,
    top: Vec<usize>,
}

impl Reference {
    fn of(model: &LoadedModel, final_state: &candle_core::Tensor) -> Result<Self> {
        let log_probs: Vec<Vec<f64>> = model
            .model
            .unembed(final_state)?
            .to_vec2::<f32>()?
            .iter()
            .map(|r| log_probs(r))
            .collect();
        Ok(Reference {
            top: log_probs.iter().map(|r| argmax(r)).collect(),
            probs: log_probs
                .iter()
                .map(|r| r.iter().map(|x| x.exp()).collect())
                .collect(),
            log_probs,
        })
    }

    /// Row `s`'s measures of the states `x` (`[T, D]`) of document `ids`,
    /// added to `sums`.
    fn measure(
        &self,
        model: &LoadedModel,
        ids: &[u32],
        sums: &mut Sums,
        s: usize,
        x: &candle_core::Tensor,
    ) -> Result<()> {
        let logits = model.model.unembed(x)?.to_vec2::<f32>()?;
        for (pos, row) in logits.iter().enumerate() {
            let lp = log_probs(row);
            let (mut kl, mut h) = (0.0, 0.0);
            for ((a, pa), b) in self.log_probs[pos].iter().zip(&self.probs[pos]).zip(&lp) {
                kl += pa * (a - b);
                h -= b.exp() * b;
            }
            sums.kl[s] += kl;
            sums.entropy[s] += h;
            sums.agree[s] += f64::from(u8::from(argmax(&lp) == self.top[pos]));
            if pos + 1 < ids.len() {
                sums.ce[s] -= lp[ids[pos + 1] as usize];
            }
        }
        Ok(())
    }
}

/// Evaluate the logit lens (and the `lenses` given) over `corpus`, one
/// document's ids each. A J-lens is measured on the rows it transports and
/// read as the logit lens reads the others, as its readout does. `watch`
/// hears of each document done (`Stage::Documents`) and may stop the
/// evaluation.
pub fn evaluate(
    model: &LoadedModel,
    corpus: &[Vec<u32>],
    lenses: Lenses,
    watch: &dyn Watch,
) -> Result<Evaluation> {
    evaluate_in_batches(model, corpus, lenses, None, watch)
}

/// [`evaluate`], the clean runs of at most `max_batch` documents made at
/// once (`None`: as many as
/// [`MAX_BATCH_BYTES`](super::MAX_BATCH_BYTES)
/// holds; `Some(1)`: one by one). The measures are the same either way:
/// each document is measured alone, in the corpus's order.
pub fn evaluate_in_batches(
    model: &LoadedModel,
    corpus: &[Vec<u32>],
    lenses: Lenses,
    max_batch: Option<usize>,
    watch: &dyn Watch,
) -> Result<Evaluation> {
    let n = model.model.n_layers();
    let specs = rows(LensType::BlockOutput, n);
    let nrows = specs.len();
    let mut logit = Sums::new(nrows);
    let mut tuned_sums = lenses.tuned.map(|_| Sums::new(nrows));
    let mut jacobian_sums = lenses.jacobian.map(|_| Sums::new(nrows));
    let (mut tokens, mut ce_tokens) = (0usize, 0usize);
    if corpus.iter().all(Vec::is_empty) {
        return Err(crate::invalid!("the corpus has no text to evaluate on"));
    }
    for docs in batches(model, corpus, max_batch) {
        check(watch)?;
        watch.progress(Stage::Documents, docs.start, corpus.len());
        let caps = clean_runs(model, corpus, docs.clone(), watch)?;
        // Measured in document order, so the sums are those made one by one.
        for (d, cap) in docs.clone().zip(caps) {
            if d > docs.start {
                check(watch)?;
                watch.progress(Stage::Documents, d, corpus.len());
            }
            let ids = &corpus[d];
            let reference = Reference::of(model, cap.state(State::Resid(n)))?;
            for (s, (_, state)) in specs.iter().enumerate() {
                let h = cap.state(*state);
                reference.measure(model, ids, &mut logit, s, h)?;
                if let (Some(lens), Some(sums), State::Resid(i)) =
                    (lenses.tuned, tuned_sums.as_mut(), state)
                {
                    reference.measure(model, ids, sums, s, &lens.translate(*i, h)?)?;
                }
                if let (Some(lens), Some(sums)) = (lenses.jacobian, jacobian_sums.as_mut()) {
                    let x = match lens.layer_of(*state) {
                        Some(l) => lens.transport(l, h)?,
                        None => h.clone(),
                    };
                    reference.measure(model, ids, sums, s, &x)?;
                }
            }
            tokens += ids.len();
            ce_tokens += ids.len() - 1;
        }
    }
    watch.progress(Stage::Documents, corpus.len(), corpus.len());
    let means = |s: Sums| s.means(tokens, ce_tokens);
    Ok(Evaluation {
        layers: specs.into_iter().map(|(name, _)| name).collect(),
        tokens,
        logit: means(logit),
        tuned: tuned_sums.map(means),
        jacobian: jacobian_sums.map(means),
    })
}
