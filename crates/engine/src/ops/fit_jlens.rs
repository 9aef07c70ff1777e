//! Fitting a Jacobian lens (Gurnee et al. 2026, "Verbalizable
//! Representations Form a Global Workspace in Language Models";
//! TransformerLens's `JacobianLens.fit`): the reference estimator exactly.
//!
//! For each source layer `l` (block outputs `0..L-1`; the last block's
//! output is the target, its own lens the identity)
//!
//! `J_l = mean over prompts of (1/|V|) Σ_{t∈V} Σ_{t'∈V, t'≥t} ∂h_final,t' / ∂h_l,t`
//!
//! with `h_l` block `l`'s output (`blocks.l.hook_resid_post`,
//! `Capture::resid[l + 1]`), `h_final` the last block's output before the
//! final norm, and `V` a prompt's positions after the first `skip_first`,
//! the last excluded. A prompt is one document cut to `max_seq_len` ids,
//! tokenized as a run's text is (BOS where the tokenizer adds one); one
//! without a valid position is skipped and said; every prompt weighs the
//! same.
//!
//! Per prompt: one forward pass recorded for autograd, the prompt
//! replicated `dim_batch` times along the batch axis, then
//! ⌈d/dim_batch⌉ backward passes. Pass `p` plants, in replica `i`, a one-hot
//! cotangent on output dimension `p·dim_batch + i` at every valid target
//! position at once (causality makes the sum over `t' ≥ t`); row
//! `p·dim_batch + i` of `J_l` is replica `i`'s gradient at `h_l`, averaged
//! over the valid source positions.
//!
//! The fit keeps running sums (f64) and the count of prompts in them
//! ([`JacobianSums`], the reference's fit checkpoint): after each prompt it
//! hands them over ([`JlensFitStep`]), so a stopped fit leaves a checkpoint
//! that `resume` continues; fits of disjoint shards of one corpus merge
//! exactly ([`JacobianSums::merge`]).

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::load::LoadedModel;
use crate::model::{Config, ForwardOptions, Transformer};
use crate::watch::{check, Quiet, Stage, Watch};

use super::corpus::{self, Corpus, CorpusSpec};
use super::run::float_bytes;
use super::{Context, Cost, Operation, Request};

/// Prompts are cut to this many ids (the reference's default).
pub const DEFAULT_MAX_SEQ_LEN: usize = 128;
/// Leading positions left out of the average: attention sinks, whose
/// residual statistics are atypical (the reference's default).
pub const DEFAULT_SKIP_FIRST: usize = 16;
/// Output dimensions per backward pass: replicas of the prompt in one
/// forward pass (the reference's default).
pub const DEFAULT_DIM_BATCH: usize = 8;

/// A Jacobian-lens fit asked for.
#[derive(Debug, Clone)]
pub struct JlensFitRequest {
    pub corpus: Corpus,
    /// Fit on the corpus's first this many documents (all when `None`);
    /// shards and resumed fits divide and continue this set.
    pub max_prompts: Option<usize>,
    pub max_seq_len: usize,
    /// Leading positions left out of the source average.
    pub skip_first: usize,
    /// Output dimensions per backward pass (the prompt's replicas).
    pub dim_batch: usize,
    /// The sums of an earlier fit with the same settings to continue from
    /// (prompts before its `next` are not fitted again).
    pub resume: Option<JacobianSums>,
    /// `(i, n)`: fit only the prompts `j` with `j % n == i`.
    pub shard: Option<(usize, usize)>,
}

impl JlensFitRequest {
    /// A fit of `corpus` with the reference's defaults.
    pub fn new(corpus: Corpus) -> Self {
        JlensFitRequest {
            corpus,
            max_prompts: None,
            max_seq_len: DEFAULT_MAX_SEQ_LEN,
            skip_first: DEFAULT_SKIP_FIRST,
            dim_batch: DEFAULT_DIM_BATCH,
            resume: None,
            shard: None,
        }
    }
}

/// What a fit's sums were made with: sums merge and resume only with
/// equal settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JlensSettings {
    pub max_seq_len: usize,
    pub skip_first: usize,
    pub dim_batch: usize,
    /// Where the prompts come from: a text's documents and its hash, or
    /// the sampled corpus's size and seed.
    pub corpus: String,
}

/// A fit's running sums: what it answers and its checkpoint.
#[derive(Debug, Clone)]
pub struct JacobianSums {
    /// Per source layer, the sum over the prompts fitted of their `[d, d]`
    /// Jacobian estimates, f64.
    pub sums: Vec<Tensor>,
    /// Prompts in the sums.
    pub n_done: usize,
    /// The corpus index of the first prompt not yet considered (the
    /// reference checkpoint's `next_idx`): a resumed fit starts there. A
    /// merge's is the largest of its parts'.
    pub next: usize,
    /// The shard fitted, `(i, n)`; `None` for a whole fit or a merge.
    pub shard: Option<(usize, usize)>,
    /// The block each sum transports from: `0..L-1`.
    pub source_layers: Vec<usize>,
    pub d_model: usize,
    pub settings: JlensSettings,
}

impl JacobianSums {
    /// Empty sums for `cfg`'s source layers.
    fn zeros(
        cfg: &Config,
        settings: JlensSettings,
        shard: Option<(usize, usize)>,
        dev: &Device,
    ) -> Result<Self> {
        let d = cfg.d_model;
        let source_layers: Vec<usize> = (0..cfg.n_layers.saturating_sub(1)).collect();
        Ok(JacobianSums {
            sums: source_layers
                .iter()
                .map(|_| Tensor::zeros((d, d), DType::F64, dev))
                .collect::<candle_core::Result<_>>()?,
            n_done: 0,
            next: 0,
            shard,
            source_layers,
            d_model: d,
            settings,
        })
    }

    /// The lens's matrices: each sum over the prompts in it, f32 `[d, d]`.
    pub fn mean(&self) -> Result<Vec<Tensor>> {
        if self.n_done == 0 {
            return Err(crate::invalid!(
                "these sums hold no prompt: there is no mean to take"
            ));
        }
        let n = self.n_done as f64;
        self.sums
            .iter()
            .map(|s| Ok((s / n)?.to_dtype(DType::F32)?))
            .collect()
    }

    /// Sums of disjoint prompt sets (shards of one fit, or fits of parts
    /// of a corpus) as one: the sums add and the counts add, so the mean
    /// is the prompt-weighted mean of the parts' means, exactly. The parts
    /// must agree on source layers, width and settings; two parts of one
    /// shard are refused (they would count its prompts twice).
    pub fn merge(parts: &[JacobianSums]) -> Result<JacobianSums> {
        let Some(first) = parts.first() else {
            return Err(crate::invalid!("no sums to merge"));
        };
        for (k, p) in parts.iter().enumerate().skip(1) {
            first
                .agrees(p)
                .map_err(|why| crate::invalid!("sums 0 and {k} cannot be merged: {why}"))?;
            if p.shard.is_some() && parts[..k].iter().any(|q| q.shard == p.shard) {
                return Err(crate::invalid!(
                    "sums {k} are of a shard another part also holds ({:?}): its prompts \
                     would count twice",
                    p.shard
                ));
            }
        }
        let mut out = first.clone();
        for p in &parts[1..] {
            for (s, t) in out.sums.iter_mut().zip(&p.sums) {
                *s = (&*s + t)?;
            }
            out.n_done += p.n_done;
            out.next = out.next.max(p.next);
        }
        if parts.len() > 1 {
            out.shard = None;
        }
        Ok(out)
    }

    /// Why `other` cannot join these sums, if it cannot.
    fn agrees(&self, other: &JacobianSums) -> std::result::Result<(), String> {
        if other.d_model != self.d_model {
            return Err(format!("width {} vs {}", self.d_model, other.d_model));
        }
        if other.source_layers != self.source_layers {
            return Err(format!(
                "source layers {:?} vs {:?}",
                self.source_layers, other.source_layers
            ));
        }
        if other.settings != self.settings {
            return Err(format!(
                "settings {:?} vs {:?}",
                self.settings, other.settings
            ));
        }
        Ok(())
    }

    /// One prompt's Jacobians added.
    fn add(&mut self, jacobians: &[Tensor]) -> Result<()> {
        for (s, j) in self.sums.iter_mut().zip(jacobians) {
            *s = (&*s + j)?;
        }
        self.n_done += 1;
        Ok(())
    }
}

/// One prompt considered: fitted, or skipped for want of a valid
/// position. Carries the sums after it: a checkpoint `resume` continues.
#[derive(Debug, Clone)]
pub struct JlensFitStep {
    /// The prompt's index in the corpus.
    pub prompt: usize,
    /// Its ids (after the cut to `max_seq_len`).
    pub tokens: usize,
    /// False when it was skipped: it has at most `skip_first + 1` ids.
    pub fitted: bool,
    /// Prompts the whole fit considers (a resumed one's earlier ones
    /// included).
    pub total: usize,
    pub sums: JacobianSums,
}

/// A fit checked against a model.
pub struct JlensFitSpec {
    corpus: CorpusSpec,
    max_prompts: Option<usize>,
    /// The sums it starts from: a resumed fit's, or zeros.
    start: JacobianSums,
}

impl Request for JlensFitRequest {
    type Op = JlensFitSpec;
}

/// What a corpus is, for the sums' settings: a text by its documents and
/// hash, a sample by its size and seed.
fn describe(corpus: &Corpus) -> String {
    use sha2::{Digest, Sha256};
    match corpus {
        Corpus::Text(text) => {
            let hash = Sha256::digest(text.as_bytes());
            let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!(
                "text of {} documents, sha256 {hex}",
                corpus::documents(text).len()
            )
        }
        Corpus::Sample { documents, seed } => {
            format!("{documents} documents sampled from the model, seed {seed}")
        }
    }
}

/// The request's numbers, checked (before the corpus is read).
fn check_settings(model: &LoadedModel, req: &JlensFitRequest) -> Result<()> {
    let n = model.config().n_layers;
    if n < 2 {
        return Err(crate::invalid!(
            "a Jacobian lens transports block outputs to the last block's: this model has \
             {n} block, so there is nothing to fit"
        ));
    }
    if req.dim_batch == 0 {
        return Err(crate::invalid!(
            "dim_batch is 0: each backward pass needs at least 1 output dimension"
        ));
    }
    if req.max_seq_len <= req.skip_first + 1 {
        return Err(crate::invalid!(
            "no position can be valid: prompts are cut to max_seq_len {} ids, and a prompt \
             needs more than skip_first + 1 = {} (give a larger max_seq_len or a smaller \
             skip_first)",
            req.max_seq_len,
            req.skip_first + 1
        ));
    }
    if let Some(max) = model.model.max_positions().filter(|&m| req.max_seq_len > m) {
        return Err(crate::invalid!(
            "max_seq_len {} is longer than the {max} positions this model runs",
            req.max_seq_len
        ));
    }
    if req.max_prompts == Some(0) {
        return Err(crate::invalid!(
            "max_prompts is 0: a fit needs at least 1 prompt"
        ));
    }
    match req.shard {
        Some((i, n)) if n == 0 || i >= n => Err(crate::invalid!(
            "shard {i} of {n} does not exist: shards are numbered 0 to n - 1, n at least 1"
        )),
        _ => Ok(()),
    }
}

impl JlensFitSpec {
    /// The corpus indices this run fits, of a corpus of `len` documents.
    fn todo(&self, len: usize) -> Vec<usize> {
        todo(&self.start, self.max_prompts, len)
    }
}

/// The corpus indices a fit from `start` considers, of a corpus of `len`
/// documents: the first `max_prompts`, in its shard, from `start.next` on.
fn todo(start: &JacobianSums, max_prompts: Option<usize>, len: usize) -> Vec<usize> {
    considered(start.shard, max_prompts, len)
        .filter(|&j| j >= start.next)
        .collect()
}

/// The corpus indices the whole fit considers, those a resumed one took
/// over included: its progress counts them all.
fn considered(
    shard: Option<(usize, usize)>,
    max_prompts: Option<usize>,
    len: usize,
) -> impl Iterator<Item = usize> {
    let end = max_prompts.map_or(len, |m| m.min(len));
    (0..end).filter(move |j| shard.is_none_or(|(i, n)| j % n == i))
}

impl Operation for JlensFitSpec {
    type Request = JlensFitRequest;
    type Output = JacobianSums;
    type Event = JlensFitStep;

    fn texts(_: &JlensFitRequest) -> Vec<(&'static str, &str)> {
        // Its documents are cut to max_seq_len: a corpus may be long.
        Vec::new()
    }

    fn check(model: &LoadedModel, req: &JlensFitRequest) -> Result<Self> {
        check_settings(model, req)?;
        let settings = JlensSettings {
            max_seq_len: req.max_seq_len,
            skip_first: req.skip_first,
            dim_batch: req.dim_batch,
            corpus: describe(&req.corpus),
        };
        let fresh = JacobianSums::zeros(model.config(), settings, req.shard, model.model.device())?;
        let start = match &req.resume {
            None => fresh,
            Some(r) => {
                fresh.agrees(r).map_err(|why| {
                    crate::invalid!("the sums to resume are not this fit's: {why}")
                })?;
                if r.shard != req.shard {
                    return Err(crate::invalid!(
                        "the sums to resume are of shard {:?}, this fit is of shard {:?}",
                        r.shard,
                        req.shard
                    ));
                }
                r.clone()
            }
        };
        let spec = JlensFitSpec {
            corpus: CorpusSpec::check(model, &req.corpus, req.max_seq_len)?,
            max_prompts: req.max_prompts,
            start,
        };
        if let Some(lengths) = spec.corpus.lengths() {
            let need = req.skip_first + 1;
            let todo = spec.todo(lengths.len());
            if spec.start.n_done == 0 && todo.is_empty() {
                return Err(crate::invalid!(
                    "no prompt to fit: the corpus has {} documents, and none is in this fit's \
                     first max_prompts ({:?}), its shard ({:?}) and after the sums' next ({})",
                    lengths.len(),
                    req.max_prompts,
                    req.shard,
                    spec.start.next
                ));
            }
            if spec.start.n_done == 0 && todo.iter().all(|&j| lengths[j] <= need) {
                return Err(crate::invalid!(
                    "no prompt has a valid position: each of the {} to fit has at most {need} \
                     ids (skip_first + 1); give longer documents or a smaller skip_first",
                    todo.len()
                ));
            }
        }
        Ok(spec)
    }

    /// The recorded forward pass of one prompt (its `dim_batch` replicas
    /// through every block, as the graph keeps them), what a backward pass
    /// holds beside it, and the sums.
    fn cost(&self, model: &LoadedModel) -> Cost {
        let s = &self.start.settings;
        let longest = self
            .corpus
            .lengths()
            .and_then(|l| l.into_iter().max())
            .map_or(s.max_seq_len, |m| m.min(s.max_seq_len));
        let (graph, backward) =
            recorded_bytes(model.config(), s.dim_batch, longest, float_bytes(model));
        let (l, d) = (self.start.sums.len() as u64, self.start.d_model as u64);
        let documents = self.todo(self.corpus.documents()).len();
        let mut counts = self.corpus.counts();
        if let Some(c) = counts
            .iter_mut()
            .find(|(c, _)| *c == super::Count::Documents)
        {
            c.1 = documents;
        }
        Cost {
            memory: vec![
                ("one prompt's recorded forward", graph),
                ("a backward pass", backward),
                ("the Jacobian sums", 3 * l * d * d * 8),
            ],
            tokens: longest,
            tokens_said: format!("prompts of {longest} tokens (max_seq_len)"),
            counts,
            fixes: vec![
                format!(
                    "a smaller dim_batch than {} (the prompt's replicas)",
                    s.dim_batch
                ),
                format!("a smaller max_seq_len than {longest}"),
            ],
        }
    }

    /// Sample the corpus if asked (`Stage::Sample`), then fit each prompt
    /// (`Stage::Fit`: per prompt its forward pass and its backward passes,
    /// of all), each handed to `emit` with the sums after it. Stops between
    /// backward passes when cancelled; the last step's sums are then the
    /// checkpoint.
    fn run(
        self,
        model: &LoadedModel,
        cx: &Context,
        emit: &mut dyn FnMut(JlensFitStep) -> Result<()>,
    ) -> Result<JacobianSums> {
        let JlensFitSpec {
            corpus,
            max_prompts,
            start: mut sums,
        } = self;
        let ids = corpus.ids(model, cx.watch)?;
        let todo = todo(&sums, max_prompts, ids.len());
        // A resumed fit's progress goes on from where its checkpoint stopped.
        let before = considered(sums.shard, max_prompts, ids.len()).count() - todo.len();
        let per = sums.d_model.div_ceil(sums.settings.dim_batch) + 1;
        let total = (before + todo.len()) * per;
        let need = sums.settings.skip_first + 1;
        for (k, &j) in todo.iter().enumerate() {
            check(cx.watch)?;
            let doc = &ids[j];
            let fitted = doc.len() > need;
            if fitted {
                let jac =
                    prompt_jacobians(&model.model, doc, &sums.settings, cx.watch, &mut |done| {
                        cx.watch
                            .progress(Stage::Fit, (before + k) * per + done, total)
                    })?;
                sums.add(&jac)?;
            } else {
                tracing::info!(
                    "Jacobian lens fit: prompt {j} skipped: {} ids, a valid position needs more \
                     than {need}",
                    doc.len()
                );
            }
            sums.next = j + 1;
            // The step (a checkpoint) before the progress that says the
            // prompt is done: what a stop keeps is never behind what was shown.
            emit(JlensFitStep {
                prompt: j,
                tokens: doc.len(),
                fitted,
                total: before + todo.len(),
                sums: sums.clone(),
            })?;
            cx.watch.progress(Stage::Fit, (before + k + 1) * per, total);
        }
        if sums.n_done == 0 {
            return Err(crate::invalid!(
                "no prompt had a valid position: every one has at most {need} ids \
                 (skip_first + 1); nothing was fitted"
            ));
        }
        Ok(sums)
    }
}

/// Bytes of one prompt's recorded forward pass (`b` replicas of `t`
/// positions) and of what a backward pass holds beside it, erring high.
/// Per block and position the graph keeps the stream and its norms, adds
/// and hooks (8·D), q, k, v with their rotated, repeated and normed copies
/// (3·(H + 2·KV)·hd + 2·H·hd), the heads' mix and its copy (2·H·hd) and the
/// MLP's tensors (5·F); per block and head the scores, scaled, masked and
/// softmaxed (4·T²). A backward pass holds the sources' gradients, the
/// gradients of the masks and biases it keeps to its end (T² per head and
/// block), and one block's gradients in flight.
fn recorded_bytes(cfg: &Config, b: usize, t: usize, fb: u64) -> (u64, u64) {
    let (n, d, h, kv, hd, f) = (
        cfg.n_layers as u64,
        cfg.d_model as u64,
        cfg.n_heads as u64,
        cfg.n_kv_heads as u64,
        cfg.head_dim as u64,
        cfg.d_mlp as u64,
    );
    let (b, t) = (b as u64, t as u64);
    let per_position = 8 * d + 3 * (h + 2 * kv) * hd + 4 * h * hd + 5 * f;
    let block = b * t * per_position + 4 * b * h * t * t;
    let graph = n * block * fb;
    let backward = (n * b * t * (d + 2 * h * hd) + n * b * h * t * t + 2 * block) * fb;
    (graph, backward)
}

/// The cotangent of pass `start / dim_batch`: in replica `i < n`, 1 at
/// output dimension `start + i` of every valid position (`skip..t-1`).
fn cotangent(
    b: usize,
    t: usize,
    d: usize,
    (start, n): (usize, usize),
    skip: usize,
    like: &Tensor,
) -> Result<Tensor> {
    let mut c = vec![0f32; b * t * d];
    for i in 0..n {
        for p in skip..t - 1 {
            c[(i * t + p) * d + start + i] = 1.0;
        }
    }
    Ok(Tensor::from_vec(c, (b, t, d), like.device())?.to_dtype(like.dtype())?)
}

/// One prompt's Jacobian estimate per source layer, f64 `[d, d]`: one
/// recorded forward pass of `dim_batch` replicas, then ⌈d/dim_batch⌉
/// backward passes, each giving `dim_batch` rows. `progress` hears the
/// pieces done (1 after the forward pass, then one per backward pass);
/// `watch` may stop it between backward passes.
fn prompt_jacobians(
    model: &Transformer,
    ids: &[u32],
    s: &JlensSettings,
    watch: &dyn Watch,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Tensor>> {
    let (t, d, n) = (ids.len(), model.config().d_model, model.n_layers());
    let (skip, b) = (s.skip_first, s.dim_batch);
    let valid = t - 1 - skip;
    let batch = vec![ids; b];
    // The output of block l is resid[l + 1]; the last block's is the target.
    let wrt: Vec<usize> = (1..n).collect();
    let opts = ForwardOptions {
        keep_patterns: false,
        watch: &Quiet(watch),
    };
    let run = model.forward_differentiable(&batch, &wrt, &opts)?;
    progress(1);
    let target = &run.capture.resid[n];
    let passes = d.div_ceil(b);
    let mut rows: Vec<Vec<Tensor>> = vec![Vec::with_capacity(passes); run.wrt.len()];
    for p in 0..passes {
        check(watch)?;
        let (start, dims) = (p * b, b.min(d - p * b));
        let cot = cotangent(b, t, d, (start, dims), skip, target)?;
        let grads = (target * &cot)?.sum_all()?.backward()?;
        for ((_, var), rows) in run.wrt.iter().zip(rows.iter_mut()) {
            rows.push(match grads.get(var.as_tensor()) {
                Some(g) => {
                    let g = g.narrow(0, 0, dims)?.narrow(1, skip, valid)?;
                    (g.to_dtype(DType::F64)?.sum(1)? / valid as f64)?
                }
                // Not reached from the target: no effect.
                None => Tensor::zeros((dims, d), DType::F64, target.device())?,
            });
        }
        progress(2 + p);
    }
    rows.into_iter().map(|r| Ok(Tensor::cat(&r, 0)?)).collect()
}
