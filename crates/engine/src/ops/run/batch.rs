//! Several lens runs in one request ([`BatchSpec`]). The prompts go through
//! the model together, right-padded to the longest of their batch: causal
//! attention keeps every position of a prompt blind to the padding after
//! it, so its states are what it gives alone. Each prompt's interventions
//! act on its own rows (`Transformer::forward_batch_planned`); with
//! `compare` its baseline is one more item of the batch; prompts that
//! return attention share passes that keep patterns. Each prompt is then
//! finished (lens, extras, answer) as a run of its own. A prompt the
//! batched pass cannot carry (attention blocking, whose mask a batch
//! shares; `hook_pos_embed`, whose rows it shares) runs alone, in the same
//! request.

use std::time::Instant;

use crate::error::Result;
use crate::hooks::{HookPoint, InterventionPlan};
use crate::lens::Reuse;
use crate::load::LoadedModel;
use crate::model::ForwardOptions;
use crate::watch::check;

use super::cost::{float_bytes, sequence_bytes};
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
    /// Whether the batched pass carries `run`: everything but attention
    /// blocking (the batch shares one mask) and operations at
    /// `hook_pos_embed` (it shares the position rows). Its interventions
    /// act on its own rows; with `compare` its baseline is an item beside
    /// it; returned attention puts it in a pass that keeps patterns.
    fn batchable(run: &RunSpec) -> bool {
        run.plan.blocks.is_empty() && run.plan.ops_at(HookPoint::PosEmbed).is_empty()
    }

    /// What `run` adds to a batch of `t`-token rows: its states and one
    /// layer's work (twice with `compare`), and its patterns when it
    /// returns attention.
    fn item_bytes(model: &LoadedModel, run: &RunSpec, t: usize) -> u64 {
        let cfg = model.config();
        let patterns = match run.attention {
            Some(_) => {
                cfg.n_layers as u64 * cfg.n_heads as u64 * (t * t) as u64 * float_bytes(model)
            }
            None => 0,
        };
        (1 + u64::from(run.compare)) * (sequence_bytes(model, t) + patterns)
    }

    /// The most one batch's padded states take: `max_batch` prompts (or
    /// all) padded to the longest, within [`MAX_BATCH_BYTES`].
    fn batch_bytes(&self, model: &LoadedModel) -> u64 {
        let t = self.runs.iter().map(|r| r.ids.len()).max().unwrap_or(0);
        let mut rows: Vec<u64> = self
            .runs
            .iter()
            .map(|r| Self::item_bytes(model, r, t))
            .collect();
        rows.sort_unstable_by(|a, b| b.cmp(a));
        let most = self.max_batch.unwrap_or(usize::MAX).min(self.runs.len());
        let row = rows.first().copied().unwrap_or(0);
        rows.iter()
            .take(most)
            .sum::<u64>()
            .min(MAX_BATCH_BYTES.max(row))
    }

    /// The passes: the batchable prompts longest first (so a batch pads
    /// little), those that return attention apart from the others (only
    /// their passes keep patterns), in batches within [`MAX_BATCH_BYTES`]
    /// (and `max_batch`); then every other prompt alone.
    fn passes(&self, model: &LoadedModel) -> Vec<Vec<usize>> {
        let cap = self.max_batch.unwrap_or(usize::MAX).max(1);
        let mut passes: Vec<Vec<usize>> = Vec::new();
        for attention in [false, true] {
            let mut together: Vec<usize> = (0..self.runs.len())
                .filter(|&i| {
                    let r = &self.runs[i];
                    Self::batchable(r) && r.attention.is_some() == attention
                })
                .collect();
            together.sort_by_key(|&i| std::cmp::Reverse(self.runs[i].ids.len()));
            // The pass being filled, and the bytes its items take at the
            // rows its first (longest) prompt sets.
            let mut current: Vec<usize> = Vec::new();
            let mut used = 0;
            for i in together {
                let t = current
                    .first()
                    .map_or(self.runs[i].ids.len(), |&f| self.runs[f].ids.len());
                let add = Self::item_bytes(model, &self.runs[i], t);
                if !current.is_empty() && (current.len() >= cap || used + add > MAX_BATCH_BYTES) {
                    passes.push(std::mem::take(&mut current));
                    used = Self::item_bytes(model, &self.runs[i], self.runs[i].ids.len());
                } else {
                    used += add;
                }
                current.push(i);
            }
            if !current.is_empty() {
                passes.push(current);
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

/// The runs of `specs` through the model as one batch padded to the
/// longest, each under its own interventions (and, with `compare`, its
/// baseline as an item beside it), each finished on its own rows as a run
/// alone is. A run's forward time is its share of the batch's.
fn forward_together(
    model: &LoadedModel,
    specs: Vec<RunSpec>,
    cx: &Context,
) -> Result<Vec<RunOutput>> {
    let t = specs.iter().map(|s| s.ids.len()).max().unwrap_or(0);
    let plain = InterventionPlan::default();
    // The items: each run's own, then its baseline's with `compare`.
    let mut items: Vec<(usize, &InterventionPlan)> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        items.push((i, &spec.plan));
        if spec.compare {
            items.push((i, &plain));
        }
    }
    // Any id of the vocabulary pads: no real position attends to it.
    let padded: Vec<Vec<u32>> = items
        .iter()
        .map(|&(i, _)| {
            let ids = &specs[i].ids;
            let mut ids = ids.clone();
            ids.resize(t, *ids.last().expect("a checked prompt has tokens"));
            ids
        })
        .collect();
    let batch: Vec<&[u32]> = padded.iter().map(Vec::as_slice).collect();
    let plans: Vec<&InterventionPlan> = items.iter().map(|&(_, p)| p).collect();
    let lens: Vec<usize> = items.iter().map(|&(i, _)| specs[i].ids.len()).collect();
    let started = Instant::now();
    let opts = ForwardOptions {
        keep_patterns: specs.iter().any(|s| s.attention.is_some()),
        watch: cx.watch,
    };
    let mut caps = model
        .model
        .forward_batch_planned(&batch, &plans, &lens, None, &opts)?
        .into_iter();
    let share = started.elapsed() / specs.len() as u32;
    specs
        .into_iter()
        .map(|spec| {
            let capture = caps.next().expect("an item per run");
            let baseline = if spec.compare { caps.next() } else { None };
            let fwd = Forwarded {
                capture,
                baseline,
                first_op: spec.first_op(model),
                reuse: Reuse::default(),
                reused_layers: 0,
            };
            spec.finish(model, fwd, share, cx.watch)
        })
        .collect()
}
