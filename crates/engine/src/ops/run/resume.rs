//! Where a run's forward pass starts. A request that differs from a
//! computed run of the same model and ids only from layer `r` on takes over
//! that run's layers (and the lens rows of its states) below `r`; with
//! `compare`, the intervened pass takes over the baseline's layers before
//! the first operation. The states taken over are bit-identical to what a
//! cold run computes (tests/reuse.rs).

use candle_core::Tensor;

use crate::capture::Capture;
use crate::hooks::InterventionPlan;
use crate::lens::{Lens, Reuse, StateEntropies, StateMap, StateTops};

use super::RunState;

/// A computed run of the ids a new run is asked for: a kept run, or the
/// passes of a generation joined into one run over what it wrote.
#[derive(Clone, Copy)]
pub(crate) struct Prior<'a> {
    pub plan: &'a InterventionPlan,
    pub capture: &'a Capture,
    /// Its lens results, when the logit lens drew them (another lens's are
    /// not taken over by a logit-lens run).
    pub lens: Option<PriorLens<'a>>,
}

/// A prior run's logit-lens results by state, and its final logits.
#[derive(Clone, Copy)]
pub(crate) struct PriorLens<'a> {
    pub tops: &'a StateMap<StateTops>,
    pub entropies: &'a StateMap<StateEntropies>,
    pub logits: &'a Tensor,
}

impl RunState {
    pub(crate) fn prior(&self) -> Prior<'_> {
        Prior {
            plan: &self.plan,
            capture: &self.capture,
            lens: (self.lens == Lens::Logit).then_some(PriorLens {
                tops: &self.lens_tops,
                entropies: &self.lens_entropies,
                logits: &self.logits,
            }),
        }
    }
}

/// The prior runs a new run may take layers over from.
pub(crate) struct Earlier<'a> {
    priors: Vec<Prior<'a>>,
    n_layers: usize,
}

impl<'a> Earlier<'a> {
    /// Those of `runs` made by model `model_id` on `ids` (and that kept
    /// their attention patterns, when this run keeps its own), after
    /// `first` (a generation's own passes).
    pub(crate) fn new(
        first: Option<Prior<'a>>,
        runs: &[&'a RunState],
        (model_id, ids): (u64, &[u32]),
        n_layers: usize,
        need_patterns: bool,
    ) -> Self {
        let kept = runs
            .iter()
            .filter(|e| e.model_id == model_id && e.ids == ids)
            .map(|e| e.prior());
        Earlier {
            priors: first
                .into_iter()
                .chain(kept)
                .filter(|p| !need_patterns || p.capture.patterns.len() == n_layers)
                .collect(),
            n_layers,
        }
    }

    /// The run agreeing longest with `plan`, and the first layer they
    /// differ at (when that is past the embeddings).
    pub(crate) fn best_for(&self, plan: &InterventionPlan) -> Option<(usize, Prior<'a>)> {
        self.priors
            .iter()
            .map(|p| (p.plan.first_difference(plan, self.n_layers), *p))
            .filter(|(r, _)| *r > 0)
            .max_by_key(|(r, _)| *r)
    }
}

/// Where the intervened pass starts.
pub(crate) enum Start<'a> {
    Cold,
    /// From layer `r` of a prior run.
    Earlier(usize, Prior<'a>),
    /// From layer `r` of this request's own baseline pass.
    Baseline(usize),
}

impl<'a> Start<'a> {
    /// The better of a prior run and the baseline (which agrees with
    /// `plan` up to its first operation, `first_op`).
    pub(crate) fn choose(
        earlier: Option<(usize, Prior<'a>)>,
        has_baseline: bool,
        first_op: usize,
    ) -> Self {
        match earlier {
            _ if has_baseline && first_op > earlier.map_or(0, |(r, _)| r) => {
                Start::Baseline(first_op)
            }
            Some((r, e)) => Start::Earlier(r, e),
            None => Start::Cold,
        }
    }

    /// The layer and capture to resume from.
    pub(crate) fn resume<'c>(&self, baseline: Option<&'c Capture>) -> Option<(usize, &'c Capture)>
    where
        'a: 'c,
    {
        match self {
            Start::Cold => None,
            Start::Earlier(r, e) => Some((*r, e.capture)),
            Start::Baseline(r) => baseline.map(|b| (*r, b)),
        }
    }

    pub(crate) fn reused_layers(&self) -> usize {
        match self {
            Start::Cold => 0,
            Start::Earlier(r, _) | Start::Baseline(r) => *r,
        }
    }

    /// The lens results a prior run already has for the states computed
    /// before layer `r` (the final logits too when nothing changed).
    pub(crate) fn lens_reuse(&self) -> Reuse {
        let Start::Earlier(
            r,
            Prior {
                lens: Some(lens),
                capture,
                ..
            },
        ) = *self
        else {
            return Reuse::default();
        };
        Reuse {
            tops: computed_before(lens.tops, r),
            entropies: computed_before(lens.entropies, r),
            logits: (r == capture.post_attn.len()).then(|| lens.logits.clone()),
        }
    }
}

/// The entries of `map` for states computed before layer `r`.
fn computed_before<T: Clone>(map: &StateMap<T>, r: usize) -> StateMap<T> {
    map.iter()
        .filter(|(s, _)| s.computed_before(r))
        .map(|(s, v)| (*s, v.clone()))
        .collect()
}
