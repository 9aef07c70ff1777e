//! One run: a checked request through the forward pass and the lens, to
//! the answer a client gets and the state a later run or a save takes over;
//! and generation, which continues a prompt through a KV cache.

mod cost;
mod generate;
mod generation;
mod patch;
mod resume;
mod spec;

pub use cost::{mib, Cost};
pub use generate::{
    document_start, generate, generate_with, sample_corpus, GenerateOptions, Generated, Sampling,
    Step,
};
pub use generation::{
    BaselineGeneration, GenerationOutput, GenerationRequest, GenerationStep, MAX_NEW_TOKENS,
};
pub use patch::{Metric, MetricRequest, PatchRequest, PatchSpec, Patched, PATCH_HOOKS};
pub use spec::{token_id, AttributionRequest, RunRequest, RunSpec, MAX_TRACKED};

use std::time::{Duration, Instant};

use candle_core::Tensor;

use crate::analysis::{self, Analysis};
use crate::attention::{self, Attention};
use crate::error::Result;
use crate::hooks::InterventionPlan;
use crate::lens::{
    self, DiffCell, Lens, LensRow, LensType, StateEntropies, StateTops, TrackedCell,
};
use crate::load::LoadedModel;
use crate::model::{Attribution, ForwardOptions};
use crate::types::{tensor_bytes, Capture, Receipt, State, Unwatched, Watch};
use resume::{Earlier, Start};

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
    /// The attention asked for, written from the run's patterns when the
    /// answer is written ([`crate::api::write_response`]): never held whole.
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
    /// With `attribution`: the shares of the asked logit, and its token.
    pub attribution: Option<(Attribution, String)>,
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
    pub lens_tops: Vec<(State, StateTops)>,
    /// Their entropies, when the run asked for them.
    pub lens_entropies: Vec<(State, StateEntropies)>,
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

impl LoadedModel {
    /// Tokenize a request's text (wrapped in the chat template when asked).
    pub fn tokenize(&self, text: &str, apply_chat_template: bool) -> Result<Vec<u32>> {
        self.tokenizer.encode_prompt(text, apply_chat_template)
    }

    /// Tokenize, check and run one request, cold.
    pub fn run(&self, req: &RunRequest) -> Result<RunOutput> {
        let ids = self.tokenize(&req.text, req.apply_chat_template)?;
        self.run_spec(RunSpec::new(self, req, ids)?, &[])
    }

    /// Run a checked request, taking over from the `earlier` run (of this
    /// model, on the same ids) whose interventions agree longest with it.
    /// The answer is identical to a cold run's.
    pub fn run_spec(&self, spec: RunSpec, earlier: &[&RunState]) -> Result<RunOutput> {
        self.run_watched(spec, earlier, &Unwatched)
    }

    /// [`run_spec`](Self::run_spec), reporting progress to `watch` and
    /// stopping between layers and lens chunks when it says so.
    pub fn run_watched(
        &self,
        spec: RunSpec,
        earlier: &[&RunState],
        watch: &dyn Watch,
    ) -> Result<RunOutput> {
        let n = self.model.n_layers();
        // Patterns are kept only for a run that returns attention: they are
        // n·H·T² numbers, most of a long prompt's memory.
        let keep_patterns = spec.attention.is_some();
        let earlier = Earlier::new(earlier, self.id, &spec.ids, n, keep_patterns);
        let started = Instant::now();
        // With `compare`, the same ids without interventions: itself taken
        // over from an earlier run where possible (and the intervened run
        // may resume from it, so it keeps what that run keeps).
        let empty = InterventionPlan::default();
        let opts = ForwardOptions {
            keep_patterns,
            watch,
        };
        let baseline = if spec.compare {
            let from = earlier.best_for(&empty).map(|(r, e)| (r, &e.capture));
            Some(self.model.forward_with(&spec.ids, &empty, from, &opts)?)
        } else {
            None
        };
        let first_op = empty.first_difference(&spec.plan, n);
        let start = Start::choose(earlier.best_for(&spec.plan), spec.compare, first_op);
        let resume = start.resume(baseline.as_ref());
        let capture = self
            .model
            .forward_with(&spec.ids, &spec.plan, resume, &opts)?;
        let forward = started.elapsed();

        // The lens attached when the run starts, whatever happens to it meanwhile.
        let tuned = match spec.lens {
            Lens::Tuned => Some(self.tuned_lens().ok_or_else(|| {
                crate::invalid!("lens: tuned, but no tuned lens is attached to this model")
            })?),
            Lens::Logit => None,
        };
        let extras = lens::Extras {
            track: &spec.track,
            entropy: spec.entropy,
            baseline: baseline.as_ref().map(|b| (b, first_op)),
            watch: Some(watch),
            tuned: tuned.as_deref(),
        };
        let lens = lens::compute(
            &self.model,
            &self.tokenizer,
            &capture,
            spec.lens_type,
            &start.lens_reuse(),
            &extras,
        )?;
        let rows = lens::rows(spec.lens_type, n);
        let analysis = if spec.analysis {
            let states: Vec<State> = rows.iter().map(|(_, s)| *s).collect();
            Some(analysis::analyse(&capture, &states)?)
        } else {
            None
        };
        let (diff, tracked, entropy) = match &lens.extras {
            None => (None, None, None),
            Some(cells) => self.cell_extras(&spec, cells)?,
        };

        let attribution = match spec.attribution {
            Some((token, position)) => Some((
                self.model
                    .attribute(&spec.ids, &capture, &spec.plan, position, token)?,
                self.tokenizer.decode_one(token)?,
            )),
            None => None,
        };
        let input_tokens = spec
            .ids
            .iter()
            .map(|&i| self.tokenizer.decode_one(i))
            .collect::<Result<Vec<_>>>()?;
        let timings = Timings {
            forward,
            lens_projection: lens.projection,
            topk_decode: lens.topk_decode,
            reused_layers: start.reused_layers(),
        };
        let answer = Answer {
            text: spec.text,
            input_tokens,
            logit_lens: lens.rows,
            attention: spec.attention,
            baseline_logit_lens: lens.baseline_rows,
            diff,
            tracked,
            entropy,
            analysis,
            receipts: capture.receipts.clone(),
            attribution,
        };
        let state = RunState {
            model_id: self.id,
            ids: spec.ids,
            lens_type: spec.lens_type,
            rows,
            capture,
            logits: lens.logits,
            plan: spec.plan,
            lens_tops: lens.tops,
            lens_entropies: lens.entropies,
            lens: spec.lens,
        };
        Ok(RunOutput {
            answer,
            state,
            timings,
        })
    }

    /// The per-cell extras a request asked for, `[row][position]`.
    #[allow(clippy::type_complexity)]
    fn cell_extras(
        &self,
        spec: &RunSpec,
        cells: &[Vec<lens::CellExtras>],
    ) -> Result<(
        Option<Vec<Vec<DiffCell>>>,
        Option<Vec<Vec<Vec<TrackedCell>>>>,
        Option<Vec<Vec<f64>>>,
    )> {
        fn per_cell<T>(
            cells: &[Vec<lens::CellExtras>],
            f: impl Fn(&lens::CellExtras) -> T,
        ) -> Vec<Vec<T>> {
            cells
                .iter()
                .map(|row| row.iter().map(&f).collect())
                .collect()
        }
        let tokens = spec
            .track
            .iter()
            .map(|&id| self.tokenizer.decode_one(id))
            .collect::<Result<Vec<_>>>()?;
        let tracked = |c: &lens::CellExtras| -> Vec<TrackedCell> {
            c.tracked
                .iter()
                .zip(&spec.track)
                .zip(&tokens)
                .map(|((&(prob, rank), &id), token)| TrackedCell {
                    id,
                    token: token.clone(),
                    prob,
                    rank,
                })
                .collect()
        };
        Ok((
            spec.compare
                .then(|| per_cell(cells, |c| c.diff.expect("diff computed"))),
            (!spec.track.is_empty()).then(|| per_cell(cells, tracked)),
            spec.entropy
                .then(|| per_cell(cells, |c| c.entropy.expect("entropy computed"))),
        ))
    }
}
