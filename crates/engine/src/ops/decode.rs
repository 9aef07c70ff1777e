//! Generation: a prompt continued a token at a time through a KV cache,
//! greedily (as transformers' greedy `generate`) or by seeded sampling; and
//! a corpus the model writes itself, to measure and train lenses on text
//! the model finds likely.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::capture::Capture;
use crate::error::Result;
use crate::hooks::InterventionPlan;
use crate::load::LoadedModel;
use crate::model::{ForwardOptions, KvCache};
use crate::watch::{check, Quiet, Stage, Watch};

/// How each next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// The most likely token; a tie goes to the lowest id (as torch's argmax).
    Greedy,
    /// Drawn from softmax(logits / temperature) by a generator seeded with
    /// `seed`: the same seed gives the same tokens. `temperature` must be
    /// positive and finite.
    Sample { temperature: f64, seed: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerateOptions {
    /// New tokens at most (fewer when generation stops at an eos id).
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Stop after a token of [`LoadedModel::eos_ids`] (which is kept).
    pub stop_at_eos: bool,
    /// Also run the last token chosen through the model (a last step that
    /// chooses nothing), so every position of the result has its states:
    /// for the lens over the whole sequence.
    pub finish: bool,
    /// Keep each pass's attention patterns in its capture.
    pub keep_patterns: bool,
}

impl GenerateOptions {
    /// transformers' greedy `generate(max_new_tokens=n)`.
    pub fn greedy(max_new_tokens: usize) -> Self {
        GenerateOptions {
            max_new_tokens,
            sampling: Sampling::Greedy,
            stop_at_eos: true,
            finish: false,
            keep_patterns: false,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The prompt, then the new tokens (the eos it stopped at included).
    pub ids: Vec<u32>,
    pub prompt_len: usize,
    pub stopped_at_eos: bool,
}

impl Generated {
    /// The tokens after the prompt.
    pub fn new_ids(&self) -> &[u32] {
        &self.ids[self.prompt_len..]
    }
}

/// One pass of generation, as [`generate_with`] hands it over.
pub struct Step<'a> {
    /// 0 for the first token after the prompt.
    pub index: usize,
    /// The token this pass chose; `None` for the finishing pass
    /// ([`GenerateOptions::finish`]), which runs the last token only for
    /// its states.
    pub token: Option<u32>,
    /// The first position this pass ran: 0 at step 0 (the prompt), then
    /// the previous token's.
    pub start: usize,
    /// The forward pass: the prompt's positions at step 0, the previous
    /// token's alone after that. Its last row's lens shows how the choice
    /// formed.
    pub capture: &'a Capture,
    /// `[V]` logits of the last position (f32, the model's head).
    pub logits: &'a [f32],
}

/// Continue `prompt_ids`: the prompt runs once, then each new token alone
/// through a [`KvCache`]; only the last position goes through the head.
/// `watch` hears `(Stage::Generate, step, max_new_tokens)` and may stop it
/// between steps.
pub fn generate(
    model: &LoadedModel,
    prompt_ids: &[u32],
    opts: &GenerateOptions,
    watch: &dyn Watch,
) -> Result<Generated> {
    let plan = InterventionPlan::default();
    generate_with(model, prompt_ids, &plan, opts, watch, &mut |_| Ok(()))
}

/// [`generate`] with `plan`'s interventions applied at every step (its
/// positions absolute over the whole sequence: an operation on a prompt
/// position acts in the prompt's pass, and through the cache on every
/// later token; one past the prompt once that position is run), handing
/// each pass to `on_step` as it is made (to draw the lens of each new
/// column, or to stream tokens); an error from it stops generation.
pub fn generate_with(
    model: &LoadedModel,
    prompt_ids: &[u32],
    plan: &InterventionPlan,
    opts: &GenerateOptions,
    watch: &dyn Watch,
    on_step: &mut dyn FnMut(&Step) -> Result<()>,
) -> Result<Generated> {
    let mut sampler = Sampler::new(opts.sampling)?;
    if prompt_ids.is_empty() {
        return Err(crate::invalid!(
            "generation needs a prompt of at least one token"
        ));
    }
    let steps = opts.max_new_tokens;
    let t = &model.model;
    // Checked before anything runs, and for the whole sequence: the lens is
    // drawn over the prompt and every token generated.
    if let Some(max) = t.max_positions().filter(|&m| prompt_ids.len() + steps > m) {
        return Err(crate::invalid!(
            "a prompt of {} tokens and {steps} new ones make {} positions, but this model runs \
             at most {max}",
            prompt_ids.len(),
            prompt_ids.len() + steps
        ));
    }
    let mut cache = KvCache::new(t);
    let quiet = Quiet(watch);
    let fopts = ForwardOptions {
        keep_patterns: opts.keep_patterns,
        watch: &quiet,
    };
    let n = t.n_layers();
    let mut ids = prompt_ids.to_vec();
    let mut stopped_at_eos = false;
    let mut index = 0;
    loop {
        let finishing = index == steps || stopped_at_eos;
        if finishing && !opts.finish {
            break;
        }
        check(watch)?;
        watch.progress(Stage::Generate, index, steps);
        let start = cache.len();
        let capture = t.forward_cached(&ids[start..], plan, &mut cache, &fopts)?;
        let last = capture.resid[n].dim(0)? - 1;
        let logits = t
            .unembed(&capture.resid[n].narrow(0, last, 1)?)?
            .squeeze(0)?
            .to_vec1::<f32>()?;
        let token = if finishing {
            None
        } else {
            Some(sampler.next(&logits)?)
        };
        on_step(&Step {
            index,
            token,
            start,
            capture: &capture,
            logits: &logits,
        })?;
        let Some(token) = token else { break };
        ids.push(token);
        stopped_at_eos = opts.stop_at_eos && model.eos_ids().contains(&token);
        index += 1;
    }
    watch.progress(Stage::Generate, steps, steps);
    Ok(Generated {
        ids,
        prompt_len: prompt_ids.len(),
        stopped_at_eos,
    })
}

/// The ids a document starts with: what the tokenizer puts before a text
/// (BOS for Llama: the ids [`super::corpus::corpus_ids`]'s documents
/// start with), else the model's first eos id, which separates documents
/// in the training data of models without a BOS (GPT-2, Qwen).
pub fn document_start(model: &LoadedModel) -> Result<Vec<u32>> {
    let lead = model.tokenizer.leading_special_ids()?;
    if !lead.is_empty() {
        return Ok(lead);
    }
    match model.eos_ids().first() {
        Some(&eos) => Ok(vec![eos]),
        None => Err(crate::invalid!(
            "this model's tokenizer adds no BOS and the model names no eos token, so a sampled \
             document has no token to start from"
        )),
    }
}

/// `n_docs` documents of `max_tokens` ids written by the model: each from
/// [`document_start`], sampled at temperature 1 without stopping at eos
/// (documents run on past one, as in training data). Document `i` is drawn
/// with a seed made of `seed` and `i`, so a corpus is reproducible and its
/// documents differ. `watch` hears `(Stage::Sample, tokens done, tokens in
/// all)` and may stop it between tokens.
pub fn sample_corpus(
    model: &LoadedModel,
    n_docs: usize,
    max_tokens: usize,
    seed: u64,
    watch: &dyn Watch,
) -> Result<Vec<Vec<u32>>> {
    if max_tokens == 0 {
        return Err(crate::invalid!("sampled documents need at least one token"));
    }
    let mut start = document_start(model)?;
    start.truncate(max_tokens);
    let per_doc = max_tokens - start.len();
    let total = n_docs * per_doc;
    let mut docs = Vec::with_capacity(n_docs);
    for i in 0..n_docs {
        let opts = GenerateOptions {
            max_new_tokens: per_doc,
            sampling: Sampling::Sample {
                temperature: 1.0,
                seed: document_seed(seed, i),
            },
            stop_at_eos: false,
            finish: false,
            keep_patterns: false,
        };
        let progress = Shifted {
            inner: watch,
            before: i * per_doc,
            total,
        };
        docs.push(generate(model, &start, &opts, &progress)?.ids);
    }
    watch.progress(Stage::Sample, total, total);
    Ok(docs)
}

/// A seed for document `i` of a corpus seeded with `seed`: distinct for
/// each `i`, and not simply `seed + i` (corpora of neighbouring seeds
/// would share documents).
fn document_seed(seed: u64, i: usize) -> u64 {
    splitmix64(splitmix64(seed) ^ i as u64)
}

/// splitmix64's finaliser: a bijection of u64 that scatters neighbours.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Picks next tokens from logit rows.
enum Sampler {
    Greedy,
    // Boxed: the generator's state is some 300 bytes.
    Sample { temperature: f64, rng: Box<StdRng> },
}

impl Sampler {
    fn new(sampling: Sampling) -> Result<Self> {
        Ok(match sampling {
            Sampling::Greedy => Sampler::Greedy,
            Sampling::Sample { temperature, seed } => {
                if !(temperature.is_finite() && temperature > 0.0) {
                    return Err(crate::invalid!(
                        "temperature must be a positive finite number, not {temperature}; \
                         for the most likely token use greedy decoding"
                    ));
                }
                Sampler::Sample {
                    temperature,
                    rng: Box::new(StdRng::seed_from_u64(seed)),
                }
            }
        })
    }

    fn next(&mut self, logits: &[f32]) -> Result<u32> {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if !max.is_finite() {
            return Err(crate::EngineError::Model(
                "the model's logits are not finite; no token can be chosen".into(),
            ));
        }
        Ok(match self {
            Sampler::Greedy => argmax(logits),
            Sampler::Sample { temperature, rng } => {
                // Shifted by the maximum so the largest weight is 1: no overflow
                // at small temperatures, and the argmax always has weight.
                let weights: Vec<f64> = logits
                    .iter()
                    .map(|&x| ((f64::from(x) - f64::from(max)) / *temperature).exp())
                    .collect();
                let sum: f64 = weights.iter().sum();
                let mut left = rng.random::<f64>() * sum;
                let mut chosen = argmax(logits);
                for (i, w) in weights.iter().enumerate() {
                    if *w > 0.0 && left < *w {
                        chosen = i as u32;
                        break;
                    }
                    left -= w;
                }
                chosen
            }
        })
    }
}

/// The index of the largest value, the lowest on ties (torch's argmax).
fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// One document's steps as progress over the whole corpus.
struct Shifted<'a> {
    inner: &'a dyn Watch,
    before: usize,
    total: usize,
}

impl Watch for Shifted<'_> {
    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
    fn progress(&self, stage: Stage, done: usize, _total: usize) {
        if stage == Stage::Generate {
            self.inner
                .progress(Stage::Sample, self.before + done, self.total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_ties_go_to_the_lowest_id() {
        assert_eq!(argmax(&[0.0, 2.0, 1.0, 2.0]), 1);
        assert_eq!(argmax(&[3.0]), 0);
    }

    #[test]
    fn temperature_must_be_positive_and_finite() {
        for t in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = Sampler::new(Sampling::Sample {
                temperature: t,
                seed: 0,
            })
            .err()
            .unwrap();
            assert!(
                e.is_client_error() && e.to_string().contains("temperature"),
                "{e}"
            );
        }
    }

    #[test]
    fn sampling_follows_the_distribution() {
        // p = softmax([ln 1, ln 3]) = [0.25, 0.75].
        let logits = [0f32, 3f32.ln()];
        let mut s = Sampler::new(Sampling::Sample {
            temperature: 1.0,
            seed: 7,
        })
        .unwrap();
        let n = 20_000;
        let ones = (0..n).filter(|_| s.next(&logits).unwrap() == 1).count();
        let share = ones as f64 / n as f64;
        assert!((share - 0.75).abs() < 0.02, "{share}");
        // A -inf logit is never drawn.
        let mut s = Sampler::new(Sampling::Sample {
            temperature: 1.0,
            seed: 7,
        })
        .unwrap();
        assert!((0..1000).all(|_| s.next(&[f32::NEG_INFINITY, 0.0]).unwrap() == 1));
    }

    #[test]
    fn document_seeds_differ_per_document_and_corpus() {
        let seeds: std::collections::HashSet<u64> = (0..4u64)
            .flat_map(|s| (0..100).map(move |i| document_seed(s, i)))
            .collect();
        assert_eq!(seeds.len(), 400);
    }
}
