//! Several lens runs in one request ([`BatchSpec`]). The prompts without
//! interventions go through the model together, right-padded to the
//! longest of their batch: causal attention keeps every position of a
//! prompt blind to the padding after it, so its states are what it gives
//! alone. Each prompt is then finished (lens, extras, answer) as a run of
//! its own. A prompt the batched pass cannot carry (interventions,
//! `compare`, returned attention) runs alone, in the same request.

use std::time::Instant;

use crate::error::Result;
use crate::lens::Reuse;
use crate::load::LoadedModel;
use crate::model::ForwardOptions;
use crate::watch::check;

use super::cost::sequence_bytes;
use super::{Forwarded, RunOutput, RunRequest, RunSpec};
use crate::ops::{Context, Cost, Count, Never, Operation, Request, MAX_BATCH_BYTES};

/// Several runs asked at once, each as `/inference` asks one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchRequest {
    pub runs: Vec<RunRequest>,
}

/// The runs checked, in request order.
pub struct BatchSpec {
    pub runs: Vec<RunSpec>,
    /// Prompts one batched pass carries at most (`Some(1)`: one by one);
    /// `None`: as many as [`MAX_BATCH_BYTES`] allows.
    pub max_batch: Option<usize>,
}

/// Every run's output, in request order, and how they went through.
pub struct BatchOutput {
    pub runs: Vec<RunOutput>,
    /// The passes made: the indices of the prompts each carried (one index
    /// for a prompt that ran alone).
    pub passes: Vec<Vec<usize>>,
}

impl Request for BatchRequest {
    type Op = BatchSpec;
}

impl Operation for BatchSpec {
    type Request = BatchRequest;
    type Output = BatchOutput;
    type Event = Never;

    fn texts(req: &BatchRequest) -> Vec<(&'static str, &str)> {
        req.runs
            .iter()
            .map(|r| ("a text", r.text.as_str()))
            .collect()
    }

    fn check(model: &LoadedModel, req: &BatchRequest) -> Result<Self> {
        if req.runs.is_empty() {
            return Err(crate::invalid!(
                "no prompts: give at least one request to run"
            ));
        }
        let runs = req
            .runs
            .iter()
            .enumerate()
            .map(|(i, r)| RunSpec::check(model, r).map_err(|e| e.within(&format!("prompt {i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(BatchSpec {
            runs,
            max_batch: None,
        })
    }

    fn max_batch(&mut self) -> Option<&mut Option<usize>> {
        Some(&mut self.max_batch)
    }

    /// Every run's own cost (their answers are all held at the end), and
    /// a batch's padded states beside them.
    fn cost(&self, model: &LoadedModel) -> Cost {
        let mut total = Cost::default();
        for run in &self.runs {
            let c = run.estimate(model);
            for (what, bytes) in c.memory {
                match total.memory.iter_mut().find(|(w, _)| *w == what) {
                    Some((_, b)) => *b += bytes,
                    None => total.memory.push((what, bytes)),
                }
            }
            if c.tokens >= total.tokens {
                total.tokens = c.tokens;
                total.tokens_said = c.tokens_said;
            }
        }
        total
            .memory
            .push(("a batch's padded states", self.batch_bytes(model)));
        total.counts = vec![(Count::Prompts, self.runs.len())];
        total.fixes = vec![
            format!("fewer prompts than {}", self.runs.len()),
            "shorter texts".into(),
        ];
        total
    }

    fn run(
        self,
        model: &LoadedModel,
        cx: &Context,
        _: &mut dyn FnMut(Never) -> Result<()>,
    ) -> Result<BatchOutput> {
        let passes = self.passes(model);
        let mut outputs: Vec<Option<RunOutput>> = self.runs.iter().map(|_| None).collect();
        let mut specs: Vec<Option<RunSpec>> = self.runs.into_iter().map(Some).collect();
        for pass in &passes {
            check(cx.watch)?;
            let mine: Vec<RunSpec> = pass
                .iter()
                .map(|&i| specs[i].take().expect("each prompt in one pass"))
                .collect();
            let done = if let [_] = pass[..] {
                let spec = mine.into_iter().next().expect("one");
                vec![spec.run(model, cx, &mut |e| match e {})?]
            } else {
                forward_together(model, mine, cx)?
            };
            for (&i, out) in pass.iter().zip(done) {
                outputs[i] = Some(out);
            }
        }
        Ok(BatchOutput {
            runs: outputs
                .into_iter()
                .map(|o| o.expect("every prompt run"))
                .collect(),
            passes,
        })
    }
}

impl BatchSpec {
    /// Whether the batched pass carries `run`: a plain forward pass, its
    /// patterns not kept.
    fn batchable(run: &RunSpec) -> bool {
        run.plan.is_empty() && !run.compare && run.attention.is_none()
    }

    /// The most one batch's padded states take: `max_batch` prompts (or
    /// all) padded to the longest, within [`MAX_BATCH_BYTES`].
    fn batch_bytes(&self, model: &LoadedModel) -> u64 {
        let t = self.runs.iter().map(|r| r.ids.len()).max().unwrap_or(0);
        let row = sequence_bytes(model, t);
        let most = self.max_batch.unwrap_or(usize::MAX).min(self.runs.len()) as u64;
        (most * row).min(MAX_BATCH_BYTES.max(row))
    }

    /// The passes: the batchable prompts longest first (so a batch pads
    /// little), in batches within [`MAX_BATCH_BYTES`] (and `max_batch`),
    /// then every other prompt alone.
    fn passes(&self, model: &LoadedModel) -> Vec<Vec<usize>> {
        let mut together: Vec<usize> = (0..self.runs.len())
            .filter(|&i| Self::batchable(&self.runs[i]))
            .collect();
        together.sort_by_key(|&i| std::cmp::Reverse(self.runs[i].ids.len()));
        let mut passes: Vec<Vec<usize>> = Vec::new();
        let cap = self.max_batch.unwrap_or(usize::MAX).max(1);
        for i in together {
            match passes.last_mut() {
                Some(pass)
                    if pass.len() < cap
                        && (pass.len() as u64 + 1)
                            * sequence_bytes(model, self.runs[pass[0]].ids.len())
                            <= MAX_BATCH_BYTES =>
                {
                    pass.push(i)
                }
                _ => passes.push(vec![i]),
            }
        }
        passes.extend(
            (0..self.runs.len())
                .filter(|&i| !Self::batchable(&self.runs[i]))
                .map(|i| vec![i]),
        );
        passes
    }
}

/// Plain runs of `specs` through the model as one batch padded to the
/// longest, each finished on its own rows. A run's forward time is its
/// share of the batch's.
fn forward_together(
    model: &LoadedModel,
    specs: Vec<RunSpec>,
    cx: &Context,
) -> Result<Vec<RunOutput>> {
    let t = specs.iter().map(|s| s.ids.len()).max().unwrap_or(0);
    // Any id of the vocabulary pads: no real position attends to it.
    let padded: Vec<Vec<u32>> = specs
        .iter()
        .map(|s| {
            let mut ids = s.ids.clone();
            ids.resize(t, *s.ids.last().expect("a checked prompt has tokens"));
            ids
        })
        .collect();
    let batch: Vec<&[u32]> = padded.iter().map(Vec::as_slice).collect();
    let started = Instant::now();
    let opts = ForwardOptions {
        keep_patterns: false,
        watch: cx.watch,
    };
    let cap = model.model.forward_batch(&batch, &opts)?;
    let share = started.elapsed() / specs.len() as u32;
    specs
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let fwd = Forwarded {
                capture: cap.item(i, spec.ids.len())?,
                baseline: None,
                first_op: spec.first_op(model),
                reuse: Reuse::default(),
                reused_layers: 0,
            };
            spec.finish(model, fwd, share, cx.watch)
        })
        .collect()
}
