//! Generation as a run: greedy decoding through the KV cache with the
//! request's interventions acting at every step, the lens of each pass's
//! new columns handed over as they are made, and at the end the run's
//! answer over prompt and generated tokens, assembled from those passes
//! (the same answer `/inference` gives on those ids).

use std::sync::Arc;

use candle_core::Tensor;

use crate::error::Result;
use crate::hooks::{self, Extent};
use crate::lens::{self, Lens, LensRow, Reuse, StateEntropies, StateTops};
use crate::load::LoadedModel;
use crate::types::{Capture, State, Watch};

use super::generate::{generate, generate_with, GenerateOptions, Step};
use super::{RunOutput, RunRequest, RunSpec, RunState};

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
pub struct GenerationStep<'a> {
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
    pub columns: &'a [LensRow],
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

/// A generation checked before it runs: its prompt and its plan.
struct Checked {
    prompt: Vec<u32>,
    plan: crate::hooks::InterventionPlan,
    /// The run's other fields, checked on the prompt.
    pre: RunSpec,
}

impl GenerationRequest {
    /// Check everything that can be checked before generating: the length,
    /// the prompt's tokens, the interventions over the whole sequence, the
    /// run's other fields on the prompt. Gives the prompt's token count.
    pub fn check(&self, model: &LoadedModel) -> Result<usize> {
        Ok(self.checked(model)?.prompt.len())
    }

    fn checked(&self, model: &LoadedModel) -> Result<Checked> {
        if !(1..=MAX_NEW_TOKENS).contains(&self.max_new_tokens) {
            return Err(crate::invalid!(
                "max_new_tokens is {}; it must be between 1 and {MAX_NEW_TOKENS}",
                self.max_new_tokens
            ));
        }
        let cfg = model.config();
        let prompt = model.tokenize(&self.run.text, self.run.apply_chat_template)?;
        let ext = Extent {
            len: prompt.len(),
            max: prompt.len() + self.max_new_tokens,
        };
        let plan = hooks::plan_within(&self.run.interventions, cfg.n_layers, cfg.d_model, ext)?;
        // The run at the end checks the rest again on all the ids (an
        // attribution position counts back from the end of those).
        let others = RunRequest {
            interventions: Default::default(),
            attribution: None,
            ..self.run.clone()
        };
        let pre = RunSpec::new(model, &others, prompt.clone())?;
        Ok(Checked { prompt, plan, pre })
    }

    /// The run at the end as the memory estimate sees it: this request's
    /// fields over the longest sequence it can write.
    pub fn longest_run(&self, model: &LoadedModel, prompt_tokens: usize) -> Result<RunSpec> {
        let others = RunRequest {
            interventions: Default::default(),
            attribution: None,
            ..self.run.clone()
        };
        RunSpec::new(model, &others, vec![0; prompt_tokens + self.max_new_tokens])
    }
}

impl LoadedModel {
    /// Generate greedily from `req`'s text with its interventions (positions
    /// over the whole sequence: negative ones count back from the prompt's
    /// end, ones past the prompt act once that position is written),
    /// handing each pass's new columns to `on_step`; then the run over all
    /// ids, its layers and lens taken over from those passes (an earlier
    /// run in `earlier` may serve its baseline). `watch` hears the steps.
    pub fn generate_run(
        &self,
        req: &GenerationRequest,
        earlier: &[&RunState],
        watch: &dyn Watch,
        on_step: &mut dyn FnMut(&GenerationStep) -> Result<()>,
    ) -> Result<GenerationOutput> {
        let Checked { prompt, plan, pre } = req.checked(self)?;
        let cfg = self.config();
        let tuned = match pre.lens {
            Lens::Tuned => self.tuned_lens(),
            Lens::Logit => None,
        };
        let opts = GenerateOptions {
            stop_at_eos: req.stop_at_eos,
            finish: true,
            keep_patterns: pre.attention.is_some(),
            ..GenerateOptions::greedy(req.max_new_tokens)
        };

        let mut passes: Vec<Capture> = Vec::new();
        let mut tops: Vec<Vec<(State, StateTops)>> = Vec::new();
        let mut entropies: Vec<Vec<(State, StateEntropies)>> = Vec::new();
        let mut logits: Vec<Tensor> = Vec::new();
        let mut sequence = prompt.clone();
        let generated = generate_with(self, &prompt, &plan, &opts, watch, &mut |s: &Step| {
            let extras = lens::Extras {
                track: &[],
                entropy: pre.entropy,
                baseline: None,
                watch: None,
                tuned: tuned.as_deref(),
            };
            let lens = lens::compute(
                &self.model,
                &self.tokenizer,
                s.capture,
                pre.lens_type,
                &Reuse::default(),
                &extras,
            )?;
            let ran = &sequence[s.start..];
            let tokens = ran
                .iter()
                .map(|&i| self.tokenizer.decode_one(i))
                .collect::<Result<Vec<_>>>()?;
            let token = s
                .token
                .map(|t| Ok::<_, crate::EngineError>((t, self.tokenizer.decode_one(t)?)))
                .transpose()?;
            on_step(&GenerationStep {
                index: s.index,
                token,
                start: s.start,
                tokens,
                columns: &lens.rows,
            })?;
            if let Some(t) = s.token {
                sequence.push(t);
            }
            passes.push(s.capture.clone());
            tops.push(lens.tops);
            entropies.push(lens.entropies);
            logits.push(lens.logits);
            Ok(())
        })?;

        // The passes as one run over every position: the final run takes
        // all of its layers and lens rows over.
        let ids = generated.ids.clone();
        let state = RunState {
            model_id: self.id,
            ids: ids.clone(),
            lens_type: pre.lens_type,
            rows: lens::rows(pre.lens_type, cfg.n_layers),
            capture: Capture::concat(&passes)?,
            logits: Tensor::cat(&logits, 0)?,
            plan: plan.clone(),
            lens_tops: join_per_state(&tops),
            lens_entropies: join_per_state(&entropies),
            lens: pre.lens,
        };
        let mut spec = RunSpec::new(
            self,
            &RunRequest {
                interventions: Default::default(),
                ..req.run.clone()
            },
            ids.clone(),
        )?;
        spec.plan = plan;
        let with_passes: Vec<&RunState> = std::iter::once(&state)
            .chain(earlier.iter().copied())
            .collect();
        let run = self.run_watched(spec, &with_passes, watch)?;

        let baseline = if req.run.compare {
            // Without interventions the baseline is this very generation.
            let base = if run.state.plan.is_empty() {
                generated.clone()
            } else {
                let opts = GenerateOptions {
                    stop_at_eos: req.stop_at_eos,
                    ..GenerateOptions::greedy(req.max_new_tokens)
                };
                generate(self, &prompt, &opts, watch)?
            };
            let (a, b) = (generated.new_ids(), base.new_ids());
            let first_difference = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i));
            Some(BaselineGeneration {
                text: self.tokenizer.decode(base.new_ids())?,
                tokens: base
                    .new_ids()
                    .iter()
                    .map(|&i| self.tokenizer.decode_one(i))
                    .collect::<Result<_>>()?,
                ids: base.new_ids().to_vec(),
                first_difference,
            })
        } else {
            None
        };
        Ok(GenerationOutput {
            run,
            prompt_tokens: generated.prompt_len,
            generated_ids: generated.new_ids().to_vec(),
            generated_text: self.tokenizer.decode(generated.new_ids())?,
            stopped_at_eos: generated.stopped_at_eos,
            baseline,
        })
    }
}

/// Something per position of each state a pass projected.
type PerState<T> = Vec<(State, Arc<Vec<T>>)>;

/// Per-state vectors of consecutive passes joined along positions.
fn join_per_state<T: Clone>(passes: &[PerState<T>]) -> PerState<T> {
    let Some(first) = passes.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .map(|(i, (state, _))| {
            let joined = passes
                .iter()
                .flat_map(|p| {
                    p.get(i)
                        .map(|(_, v)| v.iter().cloned())
                        .into_iter()
                        .flatten()
                })
                .collect();
            (*state, Arc::new(joined))
        })
        .collect()
}
