//! Generation as a run: greedy decoding through the KV cache with the
//! request's interventions acting at every step, the lens of each pass's
//! new columns handed over as they are made, and at the end the run's
//! answer over prompt and generated tokens, assembled from those passes
//! (the same answer `/inference` gives on those ids).

use std::sync::Arc;
use std::time::Instant;

use candle_core::Tensor;

use crate::capture::Capture;
use crate::error::Result;
use crate::hooks::{self, Extent, InterventionPlan};
use crate::lens::{self, Lens, LensRow, Reuse, StateEntropies, StateMap, StateTops};
use crate::load::LoadedModel;

use super::decode::{generate, generate_with, GenerateOptions, Generated, Step};
use super::run::{AttachedSaes, AttachedVectors, Prior, PriorLens};
use super::{Context, Cost, Operation, Request, RunOutput, RunRequest, RunSpec};

/// Most new tokens one generation writes.
pub const MAX_NEW_TOKENS: usize = 256;

/// A generation asked for: a run's request (its text is the prompt) and
/// how far to write.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    pub run: RunRequest,
    /// 1..=[`MAX_NEW_TOKENS`].
    pub max_new_tokens: usize,
    /// Stop after the model's eos token (kept in the output).
    pub stop_at_eos: bool,
}

/// One pass of a generation, as it is made.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationStep {
    /// 0 for the pass over the prompt.
    pub index: usize,
    /// The token this pass chose, and its text; `None` for the last pass,
    /// which runs the last token chosen only for its column.
    pub token: Option<(u32, String)>,
    /// The first position this pass ran (0 for the prompt).
    pub start: usize,
    /// The tokens at the positions it ran.
    pub tokens: Vec<String>,
    /// The lens rows over the positions it ran.
    pub columns: Vec<LensRow>,
}

/// What a generation wrote without the request's interventions.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineGeneration {
    pub ids: Vec<u32>,
    /// Each token as `decode([id])` gives it.
    pub tokens: Vec<String>,
    pub text: String,
    /// The first generated step at which the two differ; `None` when they
    /// are the same.
    pub first_difference: Option<usize>,
}

pub struct GenerationOutput {
    /// The run over prompt and generated ids: answer, state, timings.
    pub run: RunOutput,
    pub prompt_tokens: usize,
    /// The tokens written (the eos it stopped at included).
    pub generated_ids: Vec<u32>,
    pub generated_text: String,
    pub stopped_at_eos: bool,
    /// With `compare`: what the model writes without the interventions.
    pub baseline: Option<BaselineGeneration>,
}

/// A generation checked before it runs: its prompt, its interventions over
/// the whole sequence it may write, the run's other fields checked on the
/// prompt, and the run at the end as the memory estimate sees it.
pub struct GenerationSpec {
    req: GenerationRequest,
    prompt: Vec<u32>,
    plan: InterventionPlan,
    /// The run's fields but interventions and attribution, on the prompt.
    pre: RunSpec,
    /// The same over the longest sequence it can write.
    longest: RunSpec,
}

impl Request for GenerationRequest {
    type Op = GenerationSpec;
}

impl Operation for GenerationSpec {
    type Request = GenerationRequest;
    type Output = GenerationOutput;
    type Event = GenerationStep;

    fn texts(req: &GenerationRequest) -> Vec<(&'static str, &str)> {
        vec![("the text", req.run.text.as_str())]
    }

    /// Everything that can be checked before writing: the length, the
    /// prompt's tokens, the interventions over the whole sequence, the
    /// run's other fields on the prompt (the run at the end checks its
    /// attribution on all the ids: its position counts back from their end).
    fn check(model: &LoadedModel, req: &GenerationRequest) -> Result<Self> {
        if !(1..=MAX_NEW_TOKENS).contains(&req.max_new_tokens) {
            return Err(crate::invalid!(
                "max_new_tokens is {}; it must be between 1 and {MAX_NEW_TOKENS}",
                req.max_new_tokens
            ));
        }
        let cfg = model.config();
        let prompt = model.tokenize(&req.run.text, req.run.apply_chat_template)?;
        let ext = Extent {
            len: prompt.len(),
            max: prompt.len() + req.max_new_tokens,
        };
        let (vectors, saes) = (AttachedVectors::of(model), AttachedSaes::of(model));
        let plan = hooks::plan_within(
            &req.run.interventions,
            cfg.n_layers,
            cfg.d_model,
            ext,
            super::run::sources(&vectors, &saes),
        )?;
        let others = RunRequest {
            interventions: Default::default(),
            attribution: None,
            ..req.run.clone()
        };
        let pre = RunSpec::new(model, &others, prompt.clone())?;
        let longest = RunSpec::new(model, &others, vec![0; ext.max])?;
        Ok(GenerationSpec {
            req: req.clone(),
            prompt,
            plan,
            pre,
            longest,
        })
    }

    /// The run at the end over the longest sequence it can write.
    fn cost(&self, model: &LoadedModel) -> Cost {
        let (p, k) = (self.prompt.len(), self.req.max_new_tokens);
        Cost {
            tokens_said: format!("a prompt of {p} tokens and {k} new ones make {}", p + k),
            ..self.longest.estimate(model)
        }
    }

    /// Greedy writing with the interventions (positions over the whole
    /// sequence: negative ones count back from the prompt's end, ones past
    /// the prompt act once that position is written), each pass's new
    /// columns handed to `emit`; then the run over all ids, its layers and
    /// lens taken over from those passes (a kept run in `cx.earlier` may
    /// serve its baseline).
    fn run(
        self,
        model: &LoadedModel,
        cx: &Context,
        emit: &mut dyn FnMut(GenerationStep) -> Result<()>,
    ) -> Result<GenerationOutput> {
        let (generated, passes) = self.write(model, cx, emit)?;
        let prior_lens = (self.pre.lens == Lens::Logit).then_some(PriorLens {
            tops: &passes.tops,
            entropies: &passes.entropies,
            logits: &passes.logits,
        });
        let prior = Prior {
            plan: &self.plan,
            capture: &passes.capture,
            lens: prior_lens,
        };
        let spec = RunSpec::with_plan(
            model,
            &self.req.run,
            generated.ids.clone(),
            self.plan.clone(),
        )?;
        let earlier = spec.earlier(model, Some(prior), cx.earlier);
        let started = Instant::now();
        let forwarded = spec.forward(model, &earlier, cx.watch)?;
        let run = spec.finish(model, forwarded, started.elapsed(), cx.watch)?;
        let baseline = self.baseline(model, cx, &generated, &run)?;
        Ok(GenerationOutput {
            run,
            prompt_tokens: generated.prompt_len,
            generated_ids: generated.new_ids().to_vec(),
            generated_text: model.tokenizer.decode(generated.new_ids())?,
            stopped_at_eos: generated.stopped_at_eos,
            baseline,
        })
    }
}

/// A generation's passes joined into one run over what it wrote.
struct Passes {
    capture: Capture,
    logits: Tensor,
    tops: StateMap<StateTops>,
    entropies: StateMap<StateEntropies>,
}

impl GenerationSpec {
    /// The passes: the prompt's, then each written token's, each one's
    /// lens columns drawn and handed over as it is made.
    fn write(
        &self,
        model: &LoadedModel,
        cx: &Context,
        emit: &mut dyn FnMut(GenerationStep) -> Result<()>,
    ) -> Result<(Generated, Passes)> {
        let pre = &self.pre;
        let opts = GenerateOptions {
            stop_at_eos: self.req.stop_at_eos,
            finish: true,
            keep_patterns: pre.attention.is_some(),
            ..GenerateOptions::greedy(self.req.max_new_tokens)
        };
        let mut captures: Vec<Capture> = Vec::new();
        let mut tops: Vec<StateMap<StateTops>> = Vec::new();
        let mut entropies: Vec<StateMap<StateEntropies>> = Vec::new();
        let mut logits: Vec<Tensor> = Vec::new();
        let mut sequence = self.prompt.clone();
        let mut on_step = |s: &Step| -> Result<()> {
            let extras = lens::Extras {
                track: &[],
                entropy: pre.entropy,
                baseline: None,
                watch: None,
                tuned: pre.tuned.as_deref(),
                jacobian: pre.jacobian.as_deref(),
            };
            let lens = lens::compute(
                &model.model,
                &model.tokenizer,
                s.capture,
                pre.lens_type,
                &Reuse::default(),
                &extras,
            )?;
            let tokens = sequence[s.start..]
                .iter()
                .map(|&i| model.tokenizer.decode_one(i))
                .collect::<Result<Vec<_>>>()?;
            let token = s
                .token
                .map(|t| Ok::<_, crate::EngineError>((t, model.tokenizer.decode_one(t)?)))
                .transpose()?;
            emit(GenerationStep {
                index: s.index,
                token,
                start: s.start,
                tokens,
                columns: lens.rows,
            })?;
            if let Some(t) = s.token {
                sequence.push(t);
            }
            captures.push(s.capture.clone());
            tops.push(lens.tops);
            entropies.push(lens.entropies);
            logits.push(lens.logits);
            Ok(())
        };
        let generated = generate_with(
            model,
            &self.prompt,
            &self.plan,
            &opts,
            cx.watch,
            &mut on_step,
        )?;
        let passes = Passes {
            capture: Capture::concat(&captures)?,
            logits: Tensor::cat(&logits, 0)?,
            tops: join_per_state(&tops),
            entropies: join_per_state(&entropies),
        };
        Ok((generated, passes))
    }

    /// With `compare`: what the model writes without the interventions
    /// (without any, this very generation), and where the two part.
    fn baseline(
        &self,
        model: &LoadedModel,
        cx: &Context,
        generated: &Generated,
        run: &RunOutput,
    ) -> Result<Option<BaselineGeneration>> {
        if !self.req.run.compare {
            return Ok(None);
        }
        let base = if run.state.plan.is_empty() {
            generated.clone()
        } else {
            let opts = GenerateOptions {
                stop_at_eos: self.req.stop_at_eos,
                ..GenerateOptions::greedy(self.req.max_new_tokens)
            };
            generate(model, &self.prompt, &opts, cx.watch)?
        };
        let (a, b) = (generated.new_ids(), base.new_ids());
        let first_difference = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i));
        Ok(Some(BaselineGeneration {
            text: model.tokenizer.decode(base.new_ids())?,
            tokens: base
                .new_ids()
                .iter()
                .map(|&i| model.tokenizer.decode_one(i))
                .collect::<Result<_>>()?,
            ids: base.new_ids().to_vec(),
            first_difference,
        }))
    }
}

/// Per-state vectors of consecutive passes joined along positions.
fn join_per_state<T: Clone>(passes: &[StateMap<Arc<Vec<T>>>]) -> StateMap<Arc<Vec<T>>> {
    let Some(first) = passes.first() else {
        return StateMap::new();
    };
    first
        .keys()
        .map(|state| {
            let joined = passes
                .iter()
                .flat_map(|p| {
                    p.get(state)
                        .map(|v| v.iter().cloned())
                        .into_iter()
                        .flatten()
                })
                .collect();
            (*state, Arc::new(joined))
        })
        .collect()
}
