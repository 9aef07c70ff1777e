//! Is an SAE any good on this model? Over a corpus, SAELens's measures:
//! the next-token cross-entropy with the SAE spliced in at its hook against
//! the clean model's (ΔCE) and against the hook zero-ablated (the loss
//! recovered), the KL from the clean output, the explained variance and
//! MSE of its reconstructions, its mean L0 and the features that never
//! fire.
//!
//! Positions holding a special token (the BOS a tokenizer adds, an eos) are
//! left out of every measure and, with `exclude_special`, keep their clean
//! activation in the spliced run, as SAELens's evaluation does; the
//! zero-ablated run zeroes every position, as SAELens's does.
//!
//! The documents go through in the batches their clean runs are made in:
//! the spliced and the zero-ablated runs of a batch's documents of one
//! length are one batched pass each, resumed from the clean runs at the
//! hook's layer, each document under its own splice (its special positions
//! kept); the sums are then made in document order, as one by one.

use std::sync::Arc;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::capture::State;
use crate::error::Result;
use crate::hooks::{HookPoint, InterventionPlan, SaeCodec, SaeEdit, SaeOp, StreamOp, StreamOpKind};
use crate::load::LoadedModel;
use crate::model::ForwardOptions;
use crate::sae::Sae;
use crate::watch::{check, Quiet, Stage, Watch};

use super::corpus::{batch_bytes, batches, by_length, clean_runs, Corpus, CorpusSpec};
use super::sae::{check_read, SaeSelection};
use super::{Context, Cost, Never, Operation, Request};

/// An SAE evaluation asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSaeRequest {
    pub corpus: Corpus,
    pub max_tokens: usize,
    /// The attached SAEs to measure (`None`: all of them).
    pub saes: Option<Vec<String>>,
    /// Keep special-token positions out of the splice (they are never
    /// counted).
    pub exclude_special: bool,
}

/// One SAE's measures over the corpus (natural logs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SaeQuality {
    pub name: String,
    pub hook: String,
    pub architecture: String,
    pub d_sae: usize,
    /// Mean next-token cross-entropy of the clean model.
    pub ce_clean: f64,
    /// ... with the SAE's reconstruction spliced in at its hook.
    pub ce_spliced: f64,
    /// `ce_spliced − ce_clean`: what the splice costs.
    pub delta_ce: f64,
    /// ... with the hook's activation zeroed.
    pub ce_zero_ablated: f64,
    /// `(ce_zero_ablated − ce_spliced) / (ce_zero_ablated − ce_clean)`: the
    /// share of the loss the SAE recovers (1 = as clean); none when zeroing
    /// the hook costs nothing.
    pub ce_loss_score: Option<f64>,
    /// Mean KL(clean ‖ spliced) of the output distributions.
    pub kl: f64,
    /// Mean KL(clean ‖ zero-ablated).
    pub kl_zero_ablated: f64,
    /// `1 − Σ‖x − x̂‖² / Σ‖x − x̄‖²` over every counted position, x̄ the
    /// mean activation at the hook.
    pub explained_variance: f64,
    /// Mean `‖x − x̂‖² / d_in`.
    pub mse: f64,
    /// Mean active features per position.
    pub mean_l0: f64,
    /// Features active at no counted position.
    pub dead_features: usize,
    pub alive_features: usize,
}

/// What `POST /eval_sae` and `logitlens eval-sae --json` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SaeEvalReport {
    pub model_name: String,
    pub documents: usize,
    /// Positions counted (special tokens left out).
    pub tokens: usize,
    /// The seed, when the documents were sampled from the model.
    pub sample_seed: Option<u64>,
    pub max_tokens: usize,
    pub exclude_special: bool,
    pub saes: Vec<SaeQuality>,
}

/// An SAE evaluation checked.
pub struct EvalSaeSpec {
    corpus: CorpusSpec,
    saes: Vec<Arc<Sae>>,
    exclude_special: bool,
    /// At most this many documents' clean runs go through the model at once
    /// (default: as many as
    /// [`MAX_BATCH_BYTES`](super::MAX_BATCH_BYTES)
    /// holds; 1 runs them one by one).
    pub max_batch: Option<usize>,
}

impl Request for EvalSaeRequest {
    type Op = EvalSaeSpec;
}

impl Operation for EvalSaeSpec {
    type Request = EvalSaeRequest;
    type Output = SaeEvalReport;
    type Event = Never;

    fn texts(_: &EvalSaeRequest) -> Vec<(&'static str, &str)> {
        // Its documents are cut to max_tokens: a corpus may be long.
        Vec::new()
    }

    fn check(model: &LoadedModel, req: &EvalSaeRequest) -> Result<Self> {
        let sel = match &req.saes {
            None => SaeSelection::All(true),
            Some(names) => SaeSelection::Names(names.clone()),
        };
        let read = check_read(model, Some(&sel), None)?.expect("a selection was given");
        Ok(EvalSaeSpec {
            corpus: CorpusSpec::check(model, &req.corpus, req.max_tokens)?,
            saes: read.saes,
            exclude_special: req.exclude_special,
            max_batch: None,
        })
    }

    fn max_batch(&mut self) -> Option<&mut Option<usize>> {
        Some(&mut self.max_batch)
    }

    /// At most, for documents of `max_tokens` ids: a batch of documents'
    /// clean runs, a batch of their changed runs, the clean output's
    /// log-probabilities (f64), one row of logits at a time, and the
    /// largest SAE's features.
    fn cost(&self, model: &LoadedModel) -> Cost {
        let t = self.corpus.max_tokens as u64;
        let v = model.model.vocab_size() as u64;
        let d_sae = self.saes.iter().map(|s| s.d_sae()).max().unwrap_or(0) as u64;
        Cost {
            memory: vec![
                (
                    "a batch of documents' clean runs",
                    batch_bytes(
                        model,
                        self.corpus.max_tokens,
                        self.corpus.documents(),
                        self.max_batch,
                    ),
                ),
                (
                    "a batch of documents' changed runs",
                    batch_bytes(
                        model,
                        self.corpus.max_tokens,
                        self.corpus.documents(),
                        self.max_batch,
                    ),
                ),
                ("a document's distributions", t * v * (4 + 4 + 8)),
                (
                    "SAE features",
                    (crate::sae::MAX_PRE_BYTES as u64).min(t * d_sae * 4) + t * d_sae.min(4096) * 8,
                ),
            ],
            tokens: self.corpus.max_tokens,
            tokens_said: format!("documents are cut to {} tokens", self.corpus.max_tokens),
            counts: self.corpus.counts(),
            fixes: vec![
                "a smaller max_tokens".into(),
                "fewer documents".into(),
                "fewer SAEs at once".into(),
            ],
        }
    }

    /// Sample the corpus if asked (`Stage::Sample`), then measure each
    /// document (`Stage::Documents`).
    fn run(
        self,
        model: &LoadedModel,
        cx: &Context,
        _: &mut dyn FnMut(Never) -> Result<()>,
    ) -> Result<SaeEvalReport> {
        let (max_tokens, sample_seed) = (self.corpus.max_tokens, self.corpus.sample_seed());
        let ids = self.corpus.ids(model, cx.watch)?;
        let (tokens, saes) = evaluate_saes(
            model,
            &self.saes,
            &ids,
            self.exclude_special,
            self.max_batch,
            cx.watch,
        )?;
        Ok(SaeEvalReport {
            model_name: model.name.clone(),
            documents: ids.len(),
            tokens,
            sample_seed,
            max_tokens,
            exclude_special: self.exclude_special,
            saes,
        })
    }
}

/// Running sums of one SAE's measures.
struct Sums {
    ce_spliced: f64,
    ce_zero: f64,
    kl: f64,
    kl_zero: f64,
    resid_sq: f64,
    /// Σx and Σ‖x‖² per input dimension, for the variance about the mean.
    sum_x: Vec<f64>,
    sum_sq: f64,
    l0: f64,
    fired: Vec<bool>,
}

impl Sums {
    /// A document's codes at the SAE's hook in its clean run, at its
    /// counted positions: L0, the features that fire, the reconstruction
    /// error and the moments of the activations.
    fn add_codes(
        &mut self,
        model: &LoadedModel,
        sae: &Sae,
        clean: &crate::capture::Capture,
        ids: &[u32],
        counted: &[bool],
    ) -> Result<()> {
        let plain = InterventionPlan::default();
        let x = super::sae::hook_state(model, clean, ids, &plain, sae.hook)?;
        let rows = sae.encode(&x)?;
        let xs = x.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
        for ((row, xv), _) in rows.iter().zip(&xs).zip(counted).filter(|(_, c)| **c) {
            self.l0 += row.ids.len() as f64;
            for &f in &row.ids {
                self.fired[f as usize] = true;
            }
            self.resid_sq += f64::from(row.recon_error).powi(2);
            for (acc, &v) in self.sum_x.iter_mut().zip(xv) {
                *acc += f64::from(v);
                self.sum_sq += f64::from(v).powi(2);
            }
        }
        Ok(())
    }

    fn new(sae: &Sae) -> Self {
        Sums {
            ce_spliced: 0.0,
            ce_zero: 0.0,
            kl: 0.0,
            kl_zero: 0.0,
            resid_sq: 0.0,
            sum_x: vec![0.0; sae.d_in()],
            sum_sq: 0.0,
            l0: 0.0,
            fired: vec![false; sae.d_sae()],
        }
    }

    fn quality(self, sae: &Sae, ce_clean: f64, tokens: usize, ce_tokens: usize) -> SaeQuality {
        let n = tokens.max(1) as f64;
        let per_ce = |x: f64| x / ce_tokens.max(1) as f64;
        let (ce_spliced, ce_zero) = (per_ce(self.ce_spliced), per_ce(self.ce_zero));
        let mean_sq: f64 = self.sum_x.iter().map(|s| (s / n).powi(2)).sum();
        let total_sq = self.sum_sq - n * mean_sq;
        let alive = self.fired.iter().filter(|&&f| f).count();
        SaeQuality {
            name: sae.name.clone(),
            hook: sae.hook.to_string(),
            architecture: sae.settings.architecture.name().into(),
            d_sae: sae.d_sae(),
            ce_clean,
            ce_spliced,
            delta_ce: ce_spliced - ce_clean,
            ce_zero_ablated: ce_zero,
            ce_loss_score: (ce_zero != ce_clean)
                .then(|| (ce_zero - ce_spliced) / (ce_zero - ce_clean)),
            kl: self.kl / n,
            kl_zero_ablated: self.kl_zero / n,
            explained_variance: 1.0 - self.resid_sq / total_sq,
            mse: self.resid_sq / n / sae.d_in() as f64,
            mean_l0: self.l0 / n,
            dead_features: sae.d_sae() - alive,
            alive_features: alive,
        }
    }
}

/// An SAE whose splice leaves some rows as they are (special-token
/// positions), for the spliced run of an evaluation.
struct SpliceExcept {
    sae: Arc<Sae>,
    keep: Vec<bool>,
}

impl SaeCodec for SpliceExcept {
    fn name(&self) -> &str {
        &self.sae.name
    }
    fn hook(&self) -> HookPoint {
        self.sae.hook
    }
    fn d_sae(&self) -> usize {
        self.sae.d_sae()
    }
    fn apply(&self, edit: &SaeEdit, x: &Tensor) -> Result<Tensor> {
        let out = self.sae.edit(edit, x)?;
        let kept = self
            .keep
            .iter()
            .enumerate()
            .filter(|(_, &k)| k)
            .map(|(p, _)| Ok((p, x.narrow(0, p, 1)?)))
            .collect::<Result<Vec<_>>>()?;
        if kept.is_empty() {
            return Ok(out);
        }
        crate::nn::with_rows(&out, kept.iter().map(|(p, r)| (*p, r)).collect())
    }
}

/// A plan with one operation at `hook`, on every position.
fn plan_at(hook: HookPoint, kind: StreamOpKind) -> InterventionPlan {
    let mut plan = InterventionPlan::default();
    plan.stream.insert(
        hook,
        vec![StreamOp {
            kind,
            position: None,
            key: hook.to_string(),
        }],
    );
    plan
}

/// `log_softmax` of each row of `logits: [T, V]`, in f64.
fn log_probs(logits: &Tensor) -> Result<Vec<Vec<f64>>> {
    Ok(logits
        .to_vec2::<f32>()?
        .iter()
        .map(|row| super::eval::log_probs(row))
        .collect())
}

/// KL(p ‖ q) of two log-probability rows.
fn kl(p: &[f64], q: &[f64]) -> f64 {
    p.iter().zip(q).map(|(a, b)| a.exp() * (a - b)).sum()
}

/// Measure each of `saes` over `corpus` (each document's ids), the clean
/// runs of at most `max_batch` documents made at once (`None`: as many as
/// [`MAX_BATCH_BYTES`](super::MAX_BATCH_BYTES)
/// holds), the changed runs one by one, resumed from their document's.
/// Returns the positions counted and the measures.
pub fn evaluate_saes(
    model: &LoadedModel,
    saes: &[Arc<Sae>],
    corpus: &[Vec<u32>],
    exclude_special: bool,
    max_batch: Option<usize>,
    watch: &dyn Watch,
) -> Result<(usize, Vec<SaeQuality>)> {
    if corpus.iter().all(Vec::is_empty) {
        return Err(crate::invalid!("the corpus has no text to evaluate on"));
    }
    let mut special = model.tokenizer.leading_special_ids()?;
    special.extend_from_slice(model.eos_ids());
    let n_layers = model.config().n_layers;
    let clean_plan = InterventionPlan::default();
    let opts = ForwardOptions {
        keep_patterns: false,
        watch: &Quiet(watch),
    };
    let mut sums: Vec<Sums> = saes.iter().map(|s| Sums::new(s)).collect();
    let (mut ce_clean, mut tokens, mut ce_tokens) = (0.0, 0usize, 0usize);
    let out = |x: &Tensor| -> Result<Vec<Vec<f64>>> { log_probs(&model.model.unembed(x)?) };
    for docs in batches(model, corpus, max_batch) {
        check(watch)?;
        watch.progress(Stage::Documents, docs.start, corpus.len());
        let cleans = clean_runs(model, corpus, docs.clone(), watch)?;
        // Each document's counted positions (not special tokens).
        let counted: Vec<Vec<bool>> = docs
            .clone()
            .map(|d| corpus[d].iter().map(|id| !special.contains(id)).collect())
            .collect();
        // Per SAE, in document order: the statistics of its codes, then the
        // last states of the spliced and the zero-ablated runs (only those
        // are kept of a changed run: a batch's distributions would not fit).
        let mut changed: Vec<[Vec<Tensor>; 2]> = Vec::with_capacity(saes.len());
        for (sae, s) in saes.iter().zip(&mut sums) {
            let mut spliced_plans = Vec::with_capacity(cleans.len());
            for ((d, clean), counted) in docs.clone().zip(&cleans).zip(&counted) {
                s.add_codes(model, sae, clean, &corpus[d], counted)?;
                let keep = counted.iter().map(|&c| exclude_special && !c).collect();
                let spliced = Arc::new(SpliceExcept {
                    sae: sae.clone(),
                    keep,
                });
                let op = StreamOpKind::Sae(SaeOp {
                    sae: spliced,
                    edit: SaeEdit::Splice,
                });
                spliced_plans.push(plan_at(sae.hook, op));
            }
            let zero = plan_at(sae.hook, StreamOpKind::Zero);
            let zero_plans: Vec<&InterventionPlan> = vec![&zero; cleans.len()];
            let spliced_plans: Vec<&InterventionPlan> = spliced_plans.iter().collect();
            let last = |plans: &[&InterventionPlan]| -> Result<Vec<Tensor>> {
                check(watch)?;
                let r = clean_plan.first_difference(plans[0], n_layers);
                resumed_last_states(model, corpus, docs.clone(), plans, (r, &cleans), &opts)
            };
            changed.push([last(&spliced_plans)?, last(&zero_plans)?]);
        }
        // Measured in document order, so the sums are those made one by one.
        for (k, ((d, clean), counted)) in docs.clone().zip(&cleans).zip(&counted).enumerate() {
            let ids = &corpus[d];
            // CE at t predicts ids[t + 1]: counted when t is.
            let ce_at: Vec<usize> = (0..ids.len().saturating_sub(1))
                .filter(|&t| counted[t])
                .collect();
            let clean_lp = out(clean.state(State::Resid(n_layers)))?;
            ce_clean -= ce_at
                .iter()
                .map(|&t| clean_lp[t][ids[t + 1] as usize])
                .sum::<f64>();
            for (s, [spliced, zero]) in sums.iter_mut().zip(&changed) {
                for (last, ce, klsum) in [
                    (&spliced[k], &mut s.ce_spliced, &mut s.kl),
                    (&zero[k], &mut s.ce_zero, &mut s.kl_zero),
                ] {
                    let lp = out(last)?;
                    *ce -= ce_at
                        .iter()
                        .map(|&t| lp[t][ids[t + 1] as usize])
                        .sum::<f64>();
                    *klsum += (0..ids.len())
                        .filter(|&t| counted[t])
                        .map(|t| kl(&clean_lp[t], &lp[t]))
                        .sum::<f64>();
                }
            }
            tokens += counted.iter().filter(|&&c| c).count();
            ce_tokens += ce_at.len();
        }
    }
    watch.progress(Stage::Documents, corpus.len(), corpus.len());
    if tokens == 0 {
        return Err(crate::invalid!(
            "the corpus has only special tokens: nothing to measure"
        ));
    }
    let ce_clean = ce_clean / ce_tokens.max(1) as f64;
    let quality = saes
        .iter()
        .zip(sums)
        .map(|(sae, s)| s.quality(sae, ce_clean, tokens, ce_tokens))
        .collect();
    Ok((tokens, quality))
}

/// The last residual state `[T, D]` of each of the documents `docs` of
/// `corpus` run with document `d` under `plans[d - docs.start]`, resumed at
/// layer `r` from its clean run (`cleans`, in document order): the
/// documents of one length through the model as one batch, as
/// [`clean_runs`] makes their clean runs. In document order; the rest of
/// each run is let go as soon as its batch is done.
fn resumed_last_states(
    model: &LoadedModel,
    corpus: &[Vec<u32>],
    docs: std::ops::Range<usize>,
    plans: &[&InterventionPlan],
    (r, cleans): (usize, &[crate::capture::Capture]),
    opts: &ForwardOptions,
) -> Result<Vec<Tensor>> {
    let n = model.config().n_layers;
    by_length(corpus, docs.clone(), |group| {
        let at = |d: usize| d - docs.start;
        let batch: Vec<&[u32]> = group.iter().map(|&d| corpus[d].as_slice()).collect();
        let lens: Vec<usize> = batch.iter().map(|ids| ids.len()).collect();
        let group_plans: Vec<&InterventionPlan> = group.iter().map(|&d| plans[at(d)]).collect();
        let earlier: Vec<&crate::capture::Capture> =
            group.iter().map(|&d| &cleans[at(d)]).collect();
        let ran = model.model.forward_batch_planned(
            &batch,
            &group_plans,
            &lens,
            Some((r, &earlier)),
            opts,
        )?;
        Ok(ran
            .iter()
            .map(|cap| cap.state(State::Resid(n)).clone())
            .collect())
    })
}
