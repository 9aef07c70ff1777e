//! Activation patching: which activation carries the answer. The corrupted
//! prompt is run with one activation (a hook at one layer, one position)
//! taken from the clean prompt's run, for every layer and position asked,
//! and a metric of the last position's logits is read each time.
//!
//! Each patched run resumes from the corrupted run at the layer the patch
//! enters (a residual-stream patch replaces the state entering its layer;
//! an attention or MLP output, or the mid-layer stream, is replaced as that
//! layer runs), and only the last position is projected through the head.

use std::time::Instant;

use serde_json::Value;

use crate::capture::Capture;
use crate::error::Result;
use crate::hooks::{HookKind, InterventionPlan, Patch};
use crate::load::LoadedModel;
use crate::model::{ForwardOptions, Join, KvCache, Transformer};
use crate::nn::with_row;
use crate::watch::{check, Quiet, Stage, Watch};
use candle_core::Tensor;

use super::run::{capture_bytes, float_bytes, layer_bytes, token_id};
use super::{Context, Cost, Count, Never, Operation, Request, MAX_BATCH_BYTES};

/// The hooks a sweep can patch, by their short names.
pub const PATCH_HOOKS: [(&str, HookKind); 5] = [
    ("resid_pre", HookKind::ResidPre),
    ("resid_mid", HookKind::ResidMid),
    ("attn_out", HookKind::AttnOut),
    ("mlp_out", HookKind::MlpOut),
    ("resid_post", HookKind::ResidPost),
];

/// What is read from the last position's logits.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricRequest {
    /// logit(correct) − logit(wrong).
    LogitDiff { correct: Value, wrong: Value },
    /// softmax probability of `token`.
    Prob { token: Value },
}

/// The metric with its tokens resolved to ids.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    LogitDiff { correct: u32, wrong: u32 },
    Prob { token: u32 },
}

impl Metric {
    /// The metric of f32 logits `[V]`, in f64.
    pub fn of(&self, logits: &[f32]) -> f64 {
        match *self {
            Metric::LogitDiff { correct, wrong } => {
                f64::from(logits[correct as usize]) - f64::from(logits[wrong as usize])
            }
            Metric::Prob { token } => {
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let z: f64 = logits.iter().map(|&x| f64::from(x - max).exp()).sum();
                f64::from(logits[token as usize] - max).exp() / z
            }
        }
    }

    /// The metric of each of `[N, D]` residual states through `model`'s
    /// head. A logit difference reads its two logits only (the whole
    /// vocabulary's product was a tenth of a sweep); a probability needs
    /// them all.
    fn of_states(&self, model: &Transformer, x: &Tensor) -> Result<Vec<f64>> {
        Ok(match *self {
            Metric::LogitDiff { correct, wrong } => model
                .unembed_at(x, &[correct, wrong])?
                .to_vec2::<f32>()?
                .iter()
                .map(|l| f64::from(l[0]) - f64::from(l[1]))
                .collect(),
            Metric::Prob { .. } => model
                .unembed(x)?
                .to_vec2::<f32>()?
                .iter()
                .map(|l| self.of(l))
                .collect(),
        })
    }
}

/// A patching sweep as asked, before it meets a model.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    pub clean_text: String,
    pub corrupted_text: String,
    /// `resid_pre`, ... or TransformerLens's `blocks.{l}.hook_resid_pre`.
    pub hook: String,
    pub metric: MetricRequest,
    /// Positions to patch (negative counts from the end); `None`: all.
    pub positions: Option<Vec<i64>>,
    pub apply_chat_template: bool,
}

/// A sweep checked against a model and its two inputs.
#[derive(Debug, Clone)]
pub struct PatchSpec {
    pub clean: Vec<u32>,
    pub corrupted: Vec<u32>,
    pub hook: HookKind,
    pub metric: Metric,
    pub positions: Vec<usize>,
    /// At most this many patched runs go through the model in one batch
    /// (default: as many as [`MAX_BATCH_BYTES`] holds, at least one; 1 runs
    /// them one by one).
    pub max_batch: Option<usize>,
}

/// The hook a request names: a short name, `hook_` + it, or the
/// TransformerLens name with the layer left open (`blocks.{l}.hook_…`).
fn parse_hook(name: &str) -> Result<HookKind> {
    let short = name
        .strip_prefix("blocks.{l}.hook_")
        .or_else(|| name.strip_prefix("hook_"))
        .unwrap_or(name);
    if let Some((_, kind)) = PATCH_HOOKS.iter().find(|(n, _)| *n == short) {
        return Ok(*kind);
    }
    let names = PATCH_HOOKS.map(|(n, _)| n).join(", ");
    if name.starts_with("blocks.") {
        return Err(crate::invalid!(
            "hook {name:?}: a sweep patches every layer, so name the hook with the layer left \
             open (blocks.{{l}}.hook_resid_pre) or by its short name ({names})"
        ));
    }
    Err(crate::invalid!(
        "hook {name:?} cannot be patched; use one of {names} (or blocks.{{l}}.hook_<name>)"
    ))
}

impl Request for PatchRequest {
    type Op = PatchSpec;
}

impl Operation for PatchSpec {
    type Request = PatchRequest;
    type Output = Patched;
    type Event = Never;

    fn texts(req: &PatchRequest) -> Vec<(&'static str, &str)> {
        vec![
            ("clean_text", req.clean_text.as_str()),
            ("corrupted_text", req.corrupted_text.as_str()),
        ]
    }

    /// Tokenize and check `req` against `model`; every error says what to fix.
    fn check(model: &LoadedModel, req: &PatchRequest) -> Result<Self> {
        let hook = parse_hook(&req.hook)?;
        let clean = model.tokenize(&req.clean_text, req.apply_chat_template)?;
        let corrupted = model.tokenize(&req.corrupted_text, req.apply_chat_template)?;
        if clean.len() != corrupted.len() {
            return Err(crate::invalid!(
                "the clean text is {} tokens and the corrupted text {}: patching replaces \
                 activations position by position, so both must tokenize to the same number \
                 of tokens",
                clean.len(),
                corrupted.len()
            ));
        }
        if clean.is_empty() {
            return Err(crate::invalid!(
                "the texts encode to no tokens; nothing to patch"
            ));
        }
        let metric = match &req.metric {
            MetricRequest::LogitDiff { correct, wrong } => Metric::LogitDiff {
                correct: token_id(model, correct, "metric.correct")?,
                wrong: token_id(model, wrong, "metric.wrong")?,
            },
            MetricRequest::Prob { token } => Metric::Prob {
                token: token_id(model, token, "metric.token")?,
            },
        };
        let t = clean.len();
        let positions = match &req.positions {
            None => (0..t).collect(),
            Some(list) => resolve_positions(list, t)?,
        };
        Ok(PatchSpec {
            clean,
            corrupted,
            hook,
            metric,
            positions,
            max_batch: None,
        })
    }

    fn max_batch(&mut self) -> Option<&mut Option<usize>> {
        Some(&mut self.max_batch)
    }

    /// The clean, corrupted and patched captures, one layer's work, one row
    /// of logits; a patched run per layer and position.
    fn cost(&self, model: &LoadedModel) -> Cost {
        let cfg = model.config();
        let (t, b) = (self.clean.len() as u64, float_bytes(model));
        Cost {
            memory: vec![
                ("three runs' captured states", 3 * capture_bytes(cfg, t, b)),
                (
                    "a batch of patched runs",
                    self.batch_runs(model) as u64 * self.run_bytes(model),
                ),
                (
                    "the batch's last rows of logits",
                    8 * self.batch_runs(model) as u64 * cfg.vocab_size as u64,
                ),
            ],
            tokens: self.clean.len(),
            tokens_said: format!("the texts are {t} tokens long"),
            counts: vec![(Count::PatchedRuns, self.runs(cfg.n_layers))],
            fixes: vec![
                format!("shorter texts than their {t} tokens"),
                format!("fewer positions than {}", self.positions.len()),
            ],
        }
    }

    /// The sweep, reporting `Stage::Patch` progress (patched runs done of
    /// all) and stopping between runs when `cx.watch` says so.
    fn run(
        self,
        model: &LoadedModel,
        cx: &Context,
        _: &mut dyn FnMut(Never) -> Result<()>,
    ) -> Result<Patched> {
        self.sweep(model, cx.watch)
    }
}

impl PatchSpec {
    /// Patched runs the sweep makes.
    pub fn runs(&self, n_layers: usize) -> usize {
        n_layers * self.positions.len()
    }

    /// The bytes one patched run adds to a batch: its stream and one
    /// layer's work.
    fn run_bytes(&self, model: &LoadedModel) -> u64 {
        let cfg = model.config();
        let (t, b) = (self.corrupted.len() as u64, float_bytes(model));
        layer_bytes(cfg, t, b) + 2 * t * cfg.d_model as u64 * b
    }

    /// The activation this sweep patches at layer `l`, `[T, D]`:
    /// `resid_post` of layer l is the stream entering layer l + 1.
    fn state<'c>(&self, c: &'c Capture, l: usize) -> &'c Tensor {
        match self.hook {
            HookKind::ResidPre => &c.resid[l],
            HookKind::ResidPost => &c.resid[l + 1],
            HookKind::ResidMid => &c.post_attn[l],
            HookKind::AttnOut => &c.attn_out[l],
            _ => &c.mlp_out[l],
        }
    }

    /// The run patched at layer `l`, position `p`: where it joins the
    /// batch, the positions it carries (from the patched one on: causal
    /// attention keeps every earlier position the corrupted run's), the
    /// stream it enters with, and its patch.
    fn join(&self, l: usize, p: usize, clean: &Capture, corrupted: &Capture) -> Result<Join> {
        let t = self.corrupted.len();
        let row = self.state(clean, l).narrow(0, p, 1)?;
        Ok(match self.hook {
            // The residual stream entering layer r: replaced in the state
            // the run starts from.
            HookKind::ResidPre | HookKind::ResidPost => {
                let r = l + usize::from(self.hook == HookKind::ResidPost);
                let start = corrupted.resid[r].narrow(0, p, t - p)?;
                Join {
                    layer: r,
                    runs: 1,
                    from: p,
                    start: with_row(&start, 0, &row)?,
                    patches: Vec::new(),
                }
            }
            kind => Join {
                layer: l,
                runs: 1,
                from: p,
                start: corrupted.resid[l].narrow(0, p, t - p)?,
                patches: vec![Patch {
                    at: kind.at(l),
                    position: 0,
                    row,
                }],
            },
        })
    }

    /// Per position, whether the clean run's activation at layer `l`'s
    /// hook is the corrupted run's, every number the same.
    fn unchanged(&self, l: usize, clean: &Capture, corrupted: &Capture) -> Result<Vec<bool>> {
        let state = |c| self.state(c, l);
        let equal = state(clean).eq(state(corrupted))?.min(1)?.to_vec1::<u8>()?;
        Ok(equal.into_iter().map(|e| e == 1).collect())
    }

    /// Patched runs that go through the model at once.
    fn batch_runs(&self, model: &LoadedModel) -> usize {
        let fit = (MAX_BATCH_BYTES / self.run_bytes(model).max(1)) as usize;
        self.max_batch
            .unwrap_or(fit)
            .min(fit)
            .clamp(1, (self.positions.len() * model.config().n_layers).max(1))
    }
}

fn resolve_positions(list: &[i64], t: usize) -> Result<Vec<usize>> {
    if list.is_empty() {
        return Err(crate::invalid!(
            "positions is an empty list; leave it out (or \"all\") to patch every position"
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for &i in list {
        let j = if i < 0 { i + t as i64 } else { i };
        if !(0..t as i64).contains(&j) {
            return Err(crate::invalid!(
                "position {i} is out of range for {t}-token inputs (valid: {}..{})",
                -(t as i64),
                t - 1
            ));
        }
        if out.contains(&(j as usize)) {
            return Err(crate::invalid!(
                "position {i} is listed twice (as position {j})"
            ));
        }
        out.push(j as usize);
    }
    Ok(out)
}

/// A growing batch's layers heard as a sweep's progress: the share of
/// its runs' work done, in runs.
struct Layers<'a> {
    watch: &'a dyn Watch,
    /// Runs done before this batch, runs in it, runs in the sweep.
    done: usize,
    runs: usize,
    total: usize,
}

impl Watch for Layers<'_> {
    fn cancelled(&self) -> bool {
        self.watch.cancelled()
    }

    fn progress(&self, stage: Stage, layer: usize, layers: usize) {
        if stage == Stage::Forward {
            let part = self.runs * layer / layers.max(1);
            self.watch
                .progress(Stage::Patch, self.done + part, self.total);
        }
    }
}

/// A sweep's result.
#[derive(Debug, Clone)]
pub struct Patched {
    /// What was swept.
    pub spec: PatchSpec,
    /// The metric of the clean and of the corrupted run.
    pub clean: f64,
    pub corrupted: f64,
    /// `[layer][j]`: the corrupted run with the activation at that layer
    /// and `positions[j]` taken from the clean run.
    pub values: Vec<Vec<f64>>,
    pub seconds: f64,
}

impl Patched {
    /// (values − corrupted) / (clean − corrupted); `None` everywhere when
    /// the two runs' metrics are equal.
    pub fn normalized(&self) -> Vec<Vec<Option<f64>>> {
        let span = self.clean - self.corrupted;
        self.values
            .iter()
            .map(|row| {
                row.iter()
                    .map(|v| (span != 0.0).then(|| (v - self.corrupted) / span))
                    .collect()
            })
            .collect()
    }
}

impl PatchSpec {
    fn sweep(self, loaded: &LoadedModel, watch: &dyn Watch) -> Result<Patched> {
        let spec = &self;
        let started = Instant::now();
        let model = &loaded.model;
        let n = model.n_layers();
        let quiet = Quiet(watch);
        let opts = ForwardOptions {
            keep_patterns: false,
            watch: &quiet,
        };
        let plain = InterventionPlan::default();
        let clean = model.forward_with(&spec.clean, &plain, None, &opts)?;
        // The corrupted run's keys and values: a patched run computes only
        // the positions from its patch on and reads the earlier ones' here.
        let mut prefix = KvCache::new(model);
        let corrupted = model.forward_cached(&spec.corrupted, &plain, &mut prefix, &opts)?;
        // Every metric reads its logits through one product of at least two
        // rows: a product's kernel for one row sums in another order, and a
        // run patched with its own activation must read the same metric.
        let metrics = |rows: &[Tensor]| -> Result<Vec<f64>> {
            let mut rows = rows.to_vec();
            let one = rows.len() == 1;
            if one {
                rows.push(rows[0].clone());
            }
            let mut values = spec.metric.of_states(model, &Tensor::cat(&rows, 0)?)?;
            values.truncate(values.len() - usize::from(one));
            Ok(values)
        };
        let final_row = |cap: &Capture| -> Result<Tensor> {
            Ok(cap.resid[n].narrow(0, cap.resid[n].dim(0)? - 1, 1)?)
        };
        let both = metrics(&[final_row(&clean)?, final_row(&corrupted)?])?;
        let (m_clean, m_corrupted) = (both[0], both[1]);

        let total = spec.runs(n);
        // The patched runs, position by position, each position's at every
        // layer, go through the model in batches of `batch_runs`; a batch
        // grows as it goes (the runs patched at layer l join it at the
        // layer they resume at), so each layer's weights are read once for
        // all the runs of the batch that pass through it. A patch that writes the value already there (the two texts agree
        // up to that position, so the two runs' states there are the same
        // numbers) leaves the corrupted run as it is: its metric, unrun.
        let mut values = vec![vec![m_corrupted; spec.positions.len()]; n];
        let mut runs: Vec<(usize, usize)> = Vec::with_capacity(total);
        for l in 0..n {
            let same = spec.unchanged(l, &clean, &corrupted)?;
            runs.extend(
                (0..spec.positions.len())
                    .filter(|&j| !same[spec.positions[j]])
                    .map(|j| (l, j)),
            );
        }
        runs.sort_by_key(|&(l, j)| (j, l));
        let mut done = total - runs.len();
        for batch in runs.chunks(spec.batch_runs(loaded)) {
            check(watch)?;
            watch.progress(Stage::Patch, done, total);
            // By layer: the order forward_joining answers in.
            let mut sorted = batch.to_vec();
            sorted.sort();
            let joins = sorted
                .iter()
                .map(|&(l, j)| spec.join(l, spec.positions[j], &clean, &corrupted))
                .collect::<Result<Vec<_>>>()?;
            let progress = Layers {
                watch,
                done,
                runs: batch.len(),
                total,
            };
            let opts = ForwardOptions {
                keep_patterns: false,
                watch: &progress,
            };
            let last = model.forward_joining(&spec.corrupted, joins, Some(&prefix), &opts)?;
            // Each run's last position, through the head at once.
            let last: Vec<Tensor> = (0..batch.len())
                .map(|i| last.narrow(0, i, 1))
                .collect::<candle_core::Result<_>>()?;
            for (&(l, j), value) in sorted.iter().zip(metrics(&last)?) {
                values[l][j] = value;
            }
            done += batch.len();
        }
        watch.progress(Stage::Patch, total, total);
        Ok(Patched {
            spec: self,
            clean: m_clean,
            corrupted: m_corrupted,
            values,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}
