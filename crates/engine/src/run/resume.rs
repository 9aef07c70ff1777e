//! Where a run's forward pass starts. A request that differs from a recent
//! run of the same model and ids only from layer `r` on takes over that
//! run's layers (and the lens rows of its states) below `r`; with
//! `compare`, the intervened pass takes over the baseline's layers before
//! the first operation. The states taken over are bit-identical to what a
//! cold run computes (tests/reuse.rs).

use crate::hooks::InterventionPlan;
use crate::lens::Reuse;
use crate::types::{Capture, State};

use super::RunState;

/// The earlier runs a new run may take layers over from.
pub(crate) struct Earlier<'a> {
    runs: Vec<&'a RunState>,
    n_layers: usize,
}

impl<'a> Earlier<'a> {
    /// Those of `runs` made by model `model_id` on `ids` (and that kept
    /// their attention patterns, when this run keeps its own).
    pub(crate) fn new(
        runs: &[&'a RunState],
        model_id: u64,
        ids: &[u32],
        n_layers: usize,
        need_patterns: bool,
    ) -> Self {
        let has_patterns = |e: &RunState| e.capture.patterns.len() == n_layers;
        Earlier {
            runs: runs
                .iter()
                .copied()
                .filter(|e| e.model_id == model_id && e.ids == ids)
                .filter(|e| !need_patterns || has_patterns(e))
                .collect(),
            n_layers,
        }
    }

    /// The run agreeing longest with `plan`, and the first layer they
    /// differ at (when that is past the embeddings).
    pub(crate) fn best_for(&self, plan: &InterventionPlan) -> Option<(usize, &'a RunState)> {
        self.runs
            .iter()
            .map(|e| (e.plan.first_difference(plan, self.n_layers), *e))
            .filter(|(r, _)| *r > 0)
            .max_by_key(|(r, _)| *r)
    }
}

/// Where the intervened pass starts.
pub(crate) enum Start<'a> {
    Cold,
    /// From layer `r` of an earlier run.
    Earlier(usize, &'a RunState),
    /// From layer `r` of this request's own baseline pass.
    Baseline(usize),
}

impl<'a> Start<'a> {
    /// The better of an earlier run and the baseline (which agrees with
    /// `plan` up to its first operation, `first_op`).
    pub(crate) fn choose(
        earlier: Option<(usize, &'a RunState)>,
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
            Start::Earlier(r, e) => Some((*r, &e.capture)),
            Start::Baseline(r) => baseline.map(|b| (*r, b)),
        }
    }

    pub(crate) fn reused_layers(&self) -> usize {
        match self {
            Start::Cold => 0,
            Start::Earlier(r, _) | Start::Baseline(r) => *r,
        }
    }

    /// The lens results an earlier run already has for the states computed
    /// before layer `r` (the final logits too when nothing changed).
    pub(crate) fn lens_reuse(&self) -> Reuse {
        let Start::Earlier(r, e) = *self else {
            return Reuse::default();
        };
        if e.lens != crate::lens::Lens::Logit {
            return Reuse::default();
        }
        let before = |s: &State| s.computed_before(r);
        Reuse {
            tops: e
                .lens_tops
                .iter()
                .filter(|(s, _)| before(s))
                .cloned()
                .collect(),
            entropies: e
                .lens_entropies
                .iter()
                .filter(|(s, _)| before(s))
                .cloned()
                .collect(),
            logits: (r == e.capture.post_attn.len()).then(|| e.logits.clone()),
        }
    }
}
