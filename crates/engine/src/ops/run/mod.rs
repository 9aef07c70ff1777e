//! A lens run: a checked request through the forward pass and the lens, to
//! the answer a client gets and the state a later run or a save takes
//! over. The forward step (where to start, the baseline) and the finishing
//! step (lens, extras, answer) are apart, so a generation, whose passes
//! are its forward pass, finishes the same way.

pub mod batch;
mod cost;
mod resume;
mod spec;

pub use cost::mib;
pub(crate) use cost::{capture_bytes, float_bytes, layer_bytes, sequence_bytes};
pub(crate) use resume::{Earlier, Prior, PriorLens};
pub(crate) use spec::{sources, AttachedSaes, AttachedVectors};
pub use spec::{token_id, AttributionRequest, RunRequest, RunSpec, MAX_TRACKED};

use std::time::{Duration, Instant};

use candle_core::Tensor;

use crate::analysis::{self, Analysis};
use crate::attention::{self, Attention};
use crate::capture::{tensor_bytes, Capture, Receipt, State};
use crate::error::Result;
use crate::hooks::InterventionPlan;
use crate::lens::{
    self, CellExtras, DiffCell, Lens, LensRow, LensType, Reuse, StateEntropies, StateMap,
    StateTops, TrackedCell,
};
use crate::load::LoadedModel;
use crate::model::{Attribution, ForwardOptions};
use crate::watch::Watch;
use resume::Start;

use super::{Context, Cost, Never, Operation, Request};

/// Where the time of one run went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    pub forward: Duration,
    pub lens_projection: Duration,
    pub topk_decode: Duration,
    /// Layers taken over from an earlier run instead of recomputed.
    pub reused_layers: usize,
}

/// What the client gets: the lens and what else the request asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The request's text.
    pub text: String,
    /// Each input token as `decode([id])` gives it.
    pub input_tokens: Vec<String>,
    pub logit_lens: Vec<LensRow>,
    /// The attention asked for, rendered from the run's patterns when the
    /// answer is written (see [`crate::api::InferenceResponse`]): never
    /// held whole.
    pub attention: Option<attention::Spec>,
    /// With `compare`: the same input without interventions.
    pub baseline_logit_lens: Option<Vec<LensRow>>,
    /// With `compare`: `[row][position]` how each cell changed.
    pub diff: Option<Vec<Vec<DiffCell>>>,
    /// With tracked tokens: `[row][position][k]`.
    pub tracked: Option<Vec<Vec<Vec<TrackedCell>>>>,
    /// With `entropy`: `[row][position]` nats.
    pub entropy: Option<Vec<Vec<f64>>>,
    pub analysis: Option<Analysis>,
    /// One per applied operation, in the order applied.
    pub receipts: Vec<Receipt>,
    /// With `attribution`: the shares of the asked logit.
    pub attribution: Option<Attribution>,
    /// With `lens: jacobian`: the rows its matrices transported (the others
    /// are read as the logit lens reads them).
    pub transported_rows: Option<Vec<String>>,
    /// With `sae`: each SAE's features at every position.
    pub sae: Option<Vec<crate::ops::sae::SaeReadout>>,
}

/// What a run leaves for later: re-runs take over its layers and lens rows,
/// saves write its tensors, `/runs/{id}/attention` reads its patterns.
pub struct RunState {
    /// [`LoadedModel::id`] of the model that ran it.
    pub model_id: u64,
    pub ids: Vec<u32>,
    pub lens_type: LensType,
    /// Lens rows as (name, state), in answer order.
    pub rows: Vec<(String, State)>,
    pub capture: Capture,
    /// `[T, V]` final logits.
    pub logits: Tensor,
    pub plan: InterventionPlan,
    /// Top 5 per position of every projected state.
    pub lens_tops: StateMap<StateTops>,
    /// Their entropies, when the run asked for them.
    pub lens_entropies: StateMap<StateEntropies>,
    /// Which lens drew them (a later logit-lens run reuses only its own).
    pub lens: Lens,
}

impl RunState {
    /// Memory held by the run's tensors, for bounding caches of runs.
    pub fn bytes(&self) -> usize {
        self.capture.bytes() + tensor_bytes(&self.logits)
    }
}

/// One run: the answer, the state behind it, and where the time went.
pub struct RunOutput {
    pub answer: Answer,
    pub state: RunState,
    pub timings: Timings,
}

impl RunOutput {
    /// The attention the request asked for, in memory (the server writes
    /// it layer by layer instead).
    pub fn attention(&self) -> Result<Option<Attention>> {
        self.answer
            .attention
            .as_ref()
            .map(|spec| attention::render(&self.state.capture.patterns, spec))
            .transpose()
    }
}

impl Request for RunRequest {
    type Op = RunSpec;
}

impl Operation for RunSpec {
    type Request = RunRequest;
    type Output = RunOutput;
    type Event = Never;

    fn texts(req: &RunRequest) -> Vec<(&'static str, &str)> {
        vec![("the text", req.text.as_str())]
    }

    fn check(model: &LoadedModel, req: &RunRequest) -> Result<Self> {
        let ids = model.tokenize(&req.text, req.apply_chat_template)?;
        RunSpec::new(model, req, ids)
    }

    fn cost(&self, model: &LoadedModel) -> Cost {
        self.estimate(model)
    }

    /// Taking over from the earlier run (of this model, on the same ids)
    /// whose interventions agree longest with it; the answer is identical
    /// to a cold run's.
    fn run(
        self,
        model: &LoadedModel,
        cx: &Context,
        _: &mut dyn FnMut(Never) -> Result<()>,
    ) -> Result<RunOutput> {
        let earlier = self.earlier(model, None, cx.earlier);
        let started = Instant::now();
        let forwarded = self.forward(model, &earlier, cx.watch)?;
        self.finish(model, forwarded, started.elapsed(), cx.watch)
    }
}

/// The forward step's result: the captures the lens reads.
pub(crate) struct Forwarded {
    pub capture: Capture,
    /// With `compare`, the same ids without interventions.
    pub baseline: Option<Capture>,
    /// The first layer the plan acts at (states before it are shared with
    /// the baseline).
    pub first_op: usize,
    /// Lens results taken over with the layers.
    pub reuse: Reuse,
    pub reused_layers: usize,
}

impl RunSpec {
    /// Patterns are kept only for a run that returns attention: they are
    /// n·H·T² numbers, most of a long prompt's memory.
    fn forward_options<'w>(&self, watch: &'w dyn Watch) -> ForwardOptions<'w> {
        ForwardOptions {
            keep_patterns: self.attention.is_some(),
            watch,
        }
    }

    /// The prior runs this one may take over from: `first`, then the kept
    /// `runs` of this model on these ids.
    pub(crate) fn earlier<'a>(
        &self,
        model: &LoadedModel,
        first: Option<Prior<'a>>,
        runs: &[&'a RunState],
    ) -> Earlier<'a> {
        let n = model.config().n_layers;
        let need_patterns = self.attention.is_some();
        Earlier::new(first, runs, (model.id, &self.ids), n, need_patterns)
    }

    /// With `compare`, the same ids without interventions, itself taken
    /// over from an earlier run where possible (and the intervened pass may
    /// resume from it, so it keeps what that pass keeps).
    pub(crate) fn baseline(
        &self,
        model: &LoadedModel,
        earlier: &Earlier,
        watch: &dyn Watch,
    ) -> Result<Option<Capture>> {
        if !self.compare {
            return Ok(None);
        }
        let empty = InterventionPlan::default();
        let from = earlier.best_for(&empty).map(|(r, e)| (r, e.capture));
        let opts = self.forward_options(watch);
        Ok(Some(
            model.model.forward_with(&self.ids, &empty, from, &opts)?,
        ))
    }

    /// The first layer this run's plan acts at.
    pub(crate) fn first_op(&self, model: &LoadedModel) -> usize {
        InterventionPlan::default().first_difference(&self.plan, model.config().n_layers)
    }

    /// The forward step: the baseline (with `compare`), then the intervened
    /// pass from the best place to start.
    pub(crate) fn forward(
        &self,
        model: &LoadedModel,
        earlier: &Earlier,
        watch: &dyn Watch,
    ) -> Result<Forwarded> {
        let baseline = self.baseline(model, earlier, watch)?;
        let first_op = self.first_op(model);
        let start = Start::choose(earlier.best_for(&self.plan), self.compare, first_op);
        let resume = start.resume(baseline.as_ref());
        let opts = self.forward_options(watch);
        let capture = model
            .model
            .forward_with(&self.ids, &self.plan, resume, &opts)?;
        Ok(Forwarded {
            capture,
            baseline,
            first_op,
            reuse: start.lens_reuse(),
            reused_layers: start.reused_layers(),
        })
    }

    /// The finishing step over a forward pass made: the lens (and what is
    /// asked beyond it), the answer, the state kept.
    pub(crate) fn finish(
        self,
        model: &LoadedModel,
        fwd: Forwarded,
        forward: Duration,
        watch: &dyn Watch,
    ) -> Result<RunOutput> {
        let extras = lens::Extras {
            track: &self.track,
            entropy: self.entropy,
            baseline: fwd.baseline.as_ref().map(|b| (b, fwd.first_op)),
            watch: Some(watch),
            tuned: self.tuned.as_deref(),
            jacobian: self.jacobian.as_deref(),
        };
        let projection = lens::compute(
            &model.model,
            &model.tokenizer,
            &fwd.capture,
            self.lens_type,
            &fwd.reuse,
            &extras,
        )?;
        let timings = Timings {
            forward,
            lens_projection: projection.projection,
            topk_decode: projection.topk_decode,
            reused_layers: fwd.reused_layers,
        };
        let answer = self.answer(model, &fwd.capture, &projection)?;
        let n = model.config().n_layers;
        let state = RunState {
            model_id: model.id,
            rows: lens::rows(self.lens_type, n),
            ids: self.ids,
            lens_type: self.lens_type,
            capture: fwd.capture,
            logits: projection.logits,
            plan: self.plan,
            lens_tops: projection.tops,
            lens_entropies: projection.entropies,
            lens: self.lens,
        };
        Ok(RunOutput {
            answer,
            state,
            timings,
        })
    }

    /// The client's answer: the rows, and the extras asked for.
    fn answer(
        &self,
        model: &LoadedModel,
        capture: &Capture,
        projection: &lens::Projection,
    ) -> Result<Answer> {
        let analysis = if self.analysis {
            let rows = lens::rows(self.lens_type, model.config().n_layers);
            let states: Vec<State> = rows.iter().map(|(_, s)| *s).collect();
            Some(analysis::analyse(capture, &states)?)
        } else {
            None
        };
        let attribution = match self.attribution {
            Some((token, position)) => {
                let text = model.tokenizer.decode_one(token)?;
                Some(model.model.attribute(
                    &self.ids,
                    capture,
                    &self.plan,
                    position,
                    (token, text),
                )?)
            }
            None => None,
        };
        let cells = projection.extras.as_deref().unwrap_or(&[]);
        let per_cell = |f: &dyn Fn(&CellExtras) -> f64| -> Vec<Vec<f64>> {
            cells
                .iter()
                .map(|row| row.iter().map(f).collect())
                .collect()
        };
        Ok(Answer {
            text: self.text.clone(),
            input_tokens: self.decode(model, &self.ids)?,
            logit_lens: projection.rows.clone(),
            attention: self.attention.clone(),
            baseline_logit_lens: projection.baseline_rows.clone(),
            diff: self.compare.then(|| {
                cells
                    .iter()
                    .map(|row| row.iter().map(|c| c.diff.expect("diff computed")).collect())
                    .collect::<Vec<Vec<DiffCell>>>()
            }),
            tracked: self.tracked(model, cells)?,
            entropy: self
                .entropy
                .then(|| per_cell(&|c| c.entropy.expect("entropy computed"))),
            analysis,
            receipts: capture.receipts.clone(),
            attribution,
            transported_rows: self
                .jacobian
                .as_ref()
                .map(|j| j.transported_rows(&lens::rows(self.lens_type, model.config().n_layers))),
            sae: self
                .sae
                .as_ref()
                .map(|r| {
                    crate::ops::sae::read(model, r, capture, &self.ids, &self.plan, self.lens_type)
                })
                .transpose()?,
        })
    }

    /// Each tracked token's probability and rank per cell, `[row][position][k]`.
    #[allow(clippy::type_complexity)]
    fn tracked(
        &self,
        model: &LoadedModel,
        cells: &[Vec<CellExtras>],
    ) -> Result<Option<Vec<Vec<Vec<TrackedCell>>>>> {
        if self.track.is_empty() {
            return Ok(None);
        }
        let tokens = self.decode(model, &self.track)?;
        let cell = |c: &CellExtras| -> Vec<TrackedCell> {
            c.tracked
                .iter()
                .zip(&self.track)
                .zip(&tokens)
                .map(|((&(prob, rank), &id), token)| TrackedCell {
                    id,
                    token: token.clone(),
                    prob,
                    rank,
                })
                .collect()
        };
        Ok(Some(
            cells
                .iter()
                .map(|row| row.iter().map(cell).collect())
                .collect(),
        ))
    }

    fn decode(&self, model: &LoadedModel, ids: &[u32]) -> Result<Vec<String>> {
        ids.iter().map(|&i| model.tokenizer.decode_one(i)).collect()
    }
}
