//! Training a tuned lens on CPU by the tuned-lens recipe: translators start
//! at zero (the logit lens); the loss is the sum over rows 0..L-1 of the
//! mean KL(p_final ‖ p_lens) over positions; SGD with Nesterov momentum
//! 0.9, weight decay 1e-3 and a linear warm-up; candle's autograd. The
//! frozen model's residuals and output distributions are computed once per
//! batch, without gradients, its documents of one length through the model
//! together.

use std::ops::Range;

use candle_core::{DType, Tensor, Var, D};

use crate::capture::Capture;
use crate::error::Result;
use crate::lens::tuned::{self, TunedLens, TunedLensConfig};
use crate::load::LoadedModel;
use crate::nn::Form;
use crate::watch::{check, Stage, Watch};

use super::corpus::{batch_bytes, batches, clean_runs, Corpus, CorpusSpec};
use super::run::float_bytes;
use super::{Context, Cost, Operation, Request};

/// How to train: the tuned-lens package's recipe. SGD with Nesterov
/// momentum at a learning rate of `lr · (1 − momentum)` (the package's
/// `lr_scale`), weight decay, the gradient's global norm clipped to
/// `clip`, and a linear schedule: up over `warmup` steps, then down to 0
/// at the last step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainOptions {
    pub steps: usize,
    /// The package's `lr_scale`: the peak learning rate is `lr · (1 − momentum)`.
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    /// Largest global norm of a step's gradient (the package clips at 1).
    pub clip: f64,
    /// Steps of linear warm-up to the peak rate.
    pub warmup: usize,
    /// Token positions per batch (whole documents, at least one).
    pub batch_tokens: usize,
    /// At most this many documents' frozen runs go through the model at
    /// once (`None`: as many as
    /// [`MAX_BATCH_BYTES`](super::MAX_BATCH_BYTES)
    /// holds; 1 runs them one by one). The fit is the same either way.
    pub max_batch: Option<usize>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            steps: 200,
            lr: 1.0,
            momentum: 0.9,
            weight_decay: 1e-3,
            clip: 1.0,
            warmup: 20,
            batch_tokens: 4096,
            max_batch: None,
        }
    }
}

/// One document's frozen states: block outputs 0..L-1 and the output's
/// log-probabilities `[T, V]`.
struct Frozen {
    states: Vec<Tensor>,
    final_lp: Tensor,
    /// `exp(final_lp)`, kept: the batch is reused across steps.
    final_p: Tensor,
}

/// The frozen states of `docs`: their clean runs made in batches of
/// documents of one length, each document's output its own.
fn frozen(
    model: &LoadedModel,
    docs: &[Vec<u32>],
    max_batch: Option<usize>,
    watch: &dyn Watch,
) -> Result<Vec<Frozen>> {
    let mut out = Vec::with_capacity(docs.len());
    for run in batches(model, docs, max_batch) {
        for cap in clean_runs(model, docs, run, watch)? {
            out.push(frozen_of(model, &cap)?);
        }
    }
    Ok(out)
}

fn frozen_of(model: &LoadedModel, cap: &Capture) -> Result<Frozen> {
    let m = &model.model;
    let n = m.n_layers();
    let final_lp = candle_nn::ops::log_softmax(&m.unembed(&cap.resid[n])?, D::Minus1)?;
    Ok(Frozen {
        states: cap.resid[..n].to_vec(),
        final_p: final_lp.exp()?,
        final_lp,
    })
}

/// The loss of `batch` under translators `params` (W, b per row), the sum
/// over rows of the mean KL(p_final ‖ p_lens) over all positions, and its
/// gradient. Row s's loss depends on translator s alone, so each document's
/// row is differentiated on its own and the gradients summed: the graph
/// held at a time is one `[T, V]` projection, not the batch's every row
/// (SmolLM2: 30 rows of 64 x 49152 logits per document). `piece` hears of
/// each (document, row) done.
fn loss_and_grads_of(
    model: &LoadedModel,
    batch: &[Frozen],
    params: &[(Var, Var)],
    piece: &mut dyn FnMut(usize, usize) -> Result<()>,
) -> Result<(f64, Vec<(Tensor, Tensor)>)> {
    let positions: usize = batch.iter().map(|f| f.final_lp.dim(0).unwrap_or(0)).sum();
    let scale = 1.0 / positions.max(1) as f64;
    let mut total = 0.0;
    let mut grads: Vec<(Tensor, Tensor)> = params
        .iter()
        .map(|(w, b)| -> Result<_> { Ok((w.zeros_like()?, b.zeros_like()?)) })
        .collect::<Result<_>>()?;
    let pieces = batch.len() * params.len();
    for (k, f) in batch.iter().enumerate() {
        for (s, h) in f.states.iter().enumerate() {
            let (w, b) = &params[s];
            let h = h.to_dtype(w.dtype())?;
            let x = (&h
                + h.matmul(&w.as_tensor().t()?)?
                    .broadcast_add(b.as_tensor())?)?;
            let (normed, logits) = model.model.head_for_training(&x)?;
            let lp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
            // Σ_t Σ_v p_final (log p_final − log p_lens), over the batch's positions.
            let kl = ((&f.final_p * (&f.final_lp - &lp)?)?.sum_all()? * scale)?;
            total += kl.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            // dKL/dlogits = p_lens − p_final per position; taken through the
            // head by hand, then autograd from `normed` to the translator:
            // sum(normed · G) has the loss's gradient when G = dL/dnormed.
            let d_logits = ((lp.exp()? - &f.final_p)? * scale)?;
            let g_normed = model.model.head_grad(&normed, &d_logits)?;
            let g = (&normed * g_normed.detach())?.sum_all()?.backward()?;
            let (gw, gb) = &mut grads[s];
            if let Some(d) = g.get(w.as_tensor()) {
                *gw = (&*gw + d)?;
            }
            if let Some(d) = g.get(b.as_tensor()) {
                *gb = (&*gb + d)?;
            }
            piece(k * params.len() + s + 1, pieces)?;
        }
    }
    Ok((total, grads))
}

/// A tuned lens fit asked for: a corpus, each document's first ids, how
/// to train.
#[derive(Debug, Clone, PartialEq)]
pub struct FitRequest {
    pub corpus: Corpus,
    pub max_tokens: usize,
    pub options: TrainOptions,
}

/// A fit checked: its corpus and its options.
pub struct FitSpec {
    corpus: CorpusSpec,
    options: TrainOptions,
}

/// One optimisation step done: the loss before it, the rate it took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitStep {
    /// 1-based.
    pub step: usize,
    pub steps: usize,
    pub loss: f64,
    pub lr: f64,
}

impl Request for FitRequest {
    type Op = FitSpec;
}

impl Operation for FitSpec {
    type Request = FitRequest;
    type Output = TunedLens;
    type Event = FitStep;

    fn texts(_: &FitRequest) -> Vec<(&'static str, &str)> {
        // Its documents are cut to max_tokens: a corpus may be long.
        Vec::new()
    }

    fn check(model: &LoadedModel, req: &FitRequest) -> Result<Self> {
        if model.model.form() == Form::Stored {
            return Err(crate::invalid!(
                "training a lens needs the unembedding widened: load the model with weights f32"
            ));
        }
        let o = &req.options;
        if o.steps == 0 || o.batch_tokens == 0 || !(o.lr.is_finite() && o.lr > 0.0) {
            return Err(crate::invalid!(
                "a fit needs at least 1 step, 1 token per batch and a positive learning rate \
                 (steps {}, batch_tokens {}, lr {})",
                o.steps,
                o.batch_tokens,
                o.lr
            ));
        }
        Ok(FitSpec {
            corpus: CorpusSpec::check(model, &req.corpus, req.max_tokens)?,
            options: req.options,
        })
    }

    fn max_batch(&mut self) -> Option<&mut Option<usize>> {
        Some(&mut self.options.max_batch)
    }

    /// A batch's frozen states and output distributions (kept across the
    /// steps that reuse it), the translators with their gradients and
    /// momenta, one row's differentiated projection, and the clean runs of a
    /// batch of documents as the frozen states are made.
    fn cost(&self, model: &LoadedModel) -> Cost {
        let cfg = model.config();
        let (n, d, v) = (
            cfg.n_layers as u64,
            cfg.d_model as u64,
            cfg.vocab_size as u64,
        );
        let b = float_bytes(model);
        let batch = (self.options.batch_tokens.max(self.corpus.max_tokens)) as u64;
        let t = self.corpus.max_tokens as u64;
        Cost {
            memory: vec![
                (
                    "a batch's states and distributions",
                    batch * (n * d + 2 * v) * b,
                ),
                (
                    "translators, gradients and momenta",
                    3 * n * (d * d + d) * b,
                ),
                ("one row's projection", 4 * t * v * 4),
                (
                    "a batch of documents' runs",
                    batch_bytes(
                        model,
                        self.corpus.max_tokens,
                        self.corpus.documents(),
                        self.options.max_batch,
                    ),
                ),
            ],
            tokens: self.corpus.max_tokens,
            tokens_said: format!("documents of {t} tokens (max_tokens)"),
            counts: self.corpus.counts(),
            fixes: vec![format!(
                "fewer tokens per batch than {}",
                self.options.batch_tokens
            )],
        }
    }

    /// Sample the corpus if asked (`Stage::Sample`), then train
    /// (`Stage::Fit`: the pieces of every step done), each step handed to
    /// `emit`.
    fn run(
        self,
        model: &LoadedModel,
        cx: &Context,
        emit: &mut dyn FnMut(FitStep) -> Result<()>,
    ) -> Result<TunedLens> {
        let ids = self.corpus.ids(model, cx.watch)?;
        train(model, &ids, &self.options, cx.watch, emit)
    }
}

/// Train a tuned lens for `model` on `corpus`, one document's ids each.
/// `watch` hears `Stage::Fit` (pieces of all steps done: a step on a real
/// model takes seconds) and may stop it; each step is handed to `on_step`.
pub fn train(
    model: &LoadedModel,
    corpus: &[Vec<u32>],
    opts: &TrainOptions,
    watch: &dyn Watch,
    on_step: &mut dyn FnMut(FitStep) -> Result<()>,
) -> Result<TunedLens> {
    let cfg = model.config();
    let (d, n) = (cfg.d_model, cfg.n_layers);
    let dev = model.model.device();
    let dtype = model.model.dtype();
    let ids: Vec<Vec<u32>> = corpus.iter().filter(|d| !d.is_empty()).cloned().collect();
    if ids.is_empty() {
        return Err(crate::invalid!("the corpus has no text to train on"));
    }
    // Batches of whole documents up to batch_tokens positions.
    let mut steps_on: Vec<Range<usize>> = Vec::new();
    let mut in_batch = 0;
    for (i, doc) in ids.iter().enumerate() {
        match steps_on.last_mut() {
            Some(b) if in_batch + doc.len() <= opts.batch_tokens => b.end = i + 1,
            _ => {
                steps_on.push(i..i + 1);
                in_batch = 0;
            }
        }
        in_batch += doc.len();
    }
    let params: Vec<(Var, Var)> = (0..n)
        .map(|_| -> Result<_> { Ok((Var::zeros((d, d), dtype, dev)?, Var::zeros(d, dtype, dev)?)) })
        .collect::<Result<_>>()?;
    let mut momentum: Vec<(Tensor, Tensor)> = params
        .iter()
        .map(|(w, b)| -> Result<_> { Ok((w.zeros_like()?, b.zeros_like()?)) })
        .collect::<Result<_>>()?;
    // One batch's frozen states at a time (all of them when there is one).
    let mut cached: Option<(usize, Vec<Frozen>)> = None;
    for step in 0..opts.steps {
        check(watch)?;
        let bi = step % steps_on.len();
        if cached.as_ref().map(|(i, _)| *i) != Some(bi) {
            let docs = &ids[steps_on[bi].clone()];
            cached = Some((bi, frozen(model, docs, opts.max_batch, watch)?));
        }
        let batch = &cached.as_ref().expect("cached above").1;
        let (l, grads) = loss_and_grads_of(model, batch, &params, &mut |done, total| {
            check(watch)?;
            watch.progress(Stage::Fit, step * total + done, opts.steps * total);
            Ok(())
        })?;
        let lr = opts.lr * (1.0 - opts.momentum) * schedule(step, opts.steps, opts.warmup);
        // clip_grad_norm_: one norm over every translator's gradient.
        let mut sq = 0.0;
        for (gw, gb) in &grads {
            for g in [gw, gb] {
                sq += g
                    .sqr()?
                    .sum_all()?
                    .to_dtype(DType::F64)?
                    .to_scalar::<f64>()?;
            }
        }
        let shrink = (opts.clip / (sq.sqrt() + 1e-6)).min(1.0);
        for (((w, b), (mw, mb)), (gw, gb)) in params.iter().zip(momentum.iter_mut()).zip(&grads) {
            for (var, buf, g) in [(w, mw, gw), (b, mb, gb)] {
                // PyTorch's SGD: g += wd·w; buf = μ·buf + g; step = g + μ·buf.
                // The weights are read detached: an op on the Var itself
                // is recorded, and `buf` would keep every earlier step's
                // tensors alive through it (SmolLM2: +0.2 GB a step).
                let w_now = var.as_tensor().detach();
                let g = ((g.to_dtype(var.dtype())? * shrink)? + (&w_now * opts.weight_decay)?)?;
                *buf = ((&*buf * opts.momentum)? + &g)?;
                let update = (&g + (&*buf * opts.momentum)?)?;
                var.set(&(w_now - (update * lr)?)?)?;
            }
        }
        on_step(FitStep {
            step: step + 1,
            steps: opts.steps,
            loss: l,
            lr,
        })?;
    }
    let config = TunedLensConfig {
        base_model_name_or_path: Some(model.name.clone()),
        d_model: d,
        num_hidden_layers: n,
        bias: true,
        unembed_hash: Some(tuned::unembed_hash(&model.model)?),
        lens_type: Some("linear_tuned_lens".into()),
    };
    let ws = params
        .into_iter()
        .map(|(w, b)| (w.as_tensor().clone(), b.as_tensor().clone()))
        .collect();
    TunedLens::from_translators(config, ws)
}

/// The learning rate's factor at 0-based `step` of `steps`: linear up to 1
/// over `warmup` steps, then linear down, reaching 0 after the last step.
fn schedule(step: usize, steps: usize, warmup: usize) -> f64 {
    if step < warmup {
        return (step + 1) as f64 / warmup as f64;
    }
    (steps - step) as f64 / (steps - warmup).max(1) as f64
}

/// The training loss and its gradient for translators `ws` (W, b per row)
/// on `docs`: what a gradient check compares with finite differences.
pub fn loss_and_grads(
    model: &LoadedModel,
    docs: &[Vec<u32>],
    ws: &[(Tensor, Tensor)],
) -> Result<(f64, Vec<(Tensor, Tensor)>)> {
    let params: Vec<(Var, Var)> = ws
        .iter()
        .map(|(w, b)| -> Result<_> { Ok((Var::from_tensor(w)?, Var::from_tensor(b)?)) })
        .collect::<Result<_>>()?;
    let batch = frozen(model, docs, None, &crate::watch::Unwatched)?;
    loss_and_grads_of(model, &batch, &params, &mut |_, _| Ok(()))
}
