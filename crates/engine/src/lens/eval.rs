//! How well a lens reads a model, over a corpus (the tuned-lens paper's
//! measures): per block-output row, pooled over every position of every
//! document, KL(p_final ‖ p_row), the cross-entropy of the next token,
//! the row's entropy, and how often its top-1 is the model's.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::hooks::InterventionPlan;
use crate::lens::{rows, LensType};
use crate::load::LoadedModel;
use crate::nn::TunedLens;
use crate::types::{check, State, Watch};

/// One lens's measures, a value per row (natural logs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LensMetrics {
    pub kl: Vec<f64>,
    pub ce: Vec<f64>,
    pub entropy: Vec<f64>,
    pub top1_agree: Vec<f64>,
}

/// What `logitlens eval-lens --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evaluation {
    pub layers: Vec<String>,
    /// Positions counted (every position of every document).
    pub tokens: usize,
    pub logit: LensMetrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tuned: Option<LensMetrics>,
}

/// Sums over positions, turned into means at the end.
#[derive(Default)]
struct Sums {
    kl: Vec<f64>,
    ce: Vec<f64>,
    entropy: Vec<f64>,
    agree: Vec<f64>,
}

impl Sums {
    fn new(rows: usize) -> Self {
        Sums {
            kl: vec![0.0; rows],
            ce: vec![0.0; rows],
            entropy: vec![0.0; rows],
            agree: vec![0.0; rows],
        }
    }

    fn means(self, tokens: usize, ce_tokens: usize) -> LensMetrics {
        let m = |v: Vec<f64>, n: usize| v.into_iter().map(|x| x / n.max(1) as f64).collect();
        LensMetrics {
            kl: m(self.kl, tokens),
            ce: m(self.ce, ce_tokens),
            entropy: m(self.entropy, tokens),
            top1_agree: m(self.agree, tokens),
        }
    }
}

/// `log_softmax` of one f32 logit row, in f64.
fn log_probs(logits: &[f32]) -> Vec<f64> {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
    let sum: f64 = logits.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    let log_z = max + sum.ln();
    logits.iter().map(|&x| f64::from(x) - log_z).collect()
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv {
                (i, x)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// A corpus file's documents: one per line, line endings stripped, blank
/// lines skipped.
pub fn documents(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Memory [`evaluate`] holds at most, for documents of `tokens` ids: the
/// f32 logits of a row and, in f64, the final row's log-probabilities and
/// probabilities and one row's log-probabilities.
pub fn peak_bytes(model: &LoadedModel, tokens: usize) -> u64 {
    (tokens as u64) * (model.model.vocab_size() as u64) * (4 + 4 + 8 + 8 + 8)
}

/// The ids of each document as `lens --text` encodes it (BOS where the
/// tokenizer adds one), cut to `max_tokens`; documents with none are left out.
pub fn corpus_ids(
    model: &LoadedModel,
    docs: &[String],
    max_tokens: usize,
) -> Result<Vec<Vec<u32>>> {
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let mut ids = model.tokenizer.encode(doc, true)?;
        ids.truncate(max_tokens);
        if !ids.is_empty() {
            out.push(ids);
        }
    }
    Ok(out)
}

/// Evaluate the logit lens (and `tuned`, when given) over `corpus`, one
/// document's ids each (from [`corpus_ids`], or sampled from the model).
/// `watch` hears of each document done and may stop the evaluation.
pub fn evaluate(
    model: &LoadedModel,
    corpus: &[Vec<u32>],
    tuned: Option<&TunedLens>,
    watch: &dyn Watch,
) -> Result<Evaluation> {
    let n = model.model.n_layers();
    let specs = rows(LensType::BlockOutput, n);
    let nrows = specs.len();
    let mut logit = Sums::new(nrows);
    let mut tuned_sums = tuned.map(|_| Sums::new(nrows));
    let (mut tokens, mut ce_tokens) = (0usize, 0usize);
    let plan = InterventionPlan::default();
    if corpus.iter().all(Vec::is_empty) {
        return Err(crate::invalid!("the corpus has no text to evaluate on"));
    }
    for (d, ids) in corpus.iter().enumerate() {
        check(watch)?;
        watch.progress(crate::types::Stage::Lens, d, corpus.len());
        let t = ids.len();
        let opts = crate::model::ForwardOptions {
            keep_patterns: false,
            watch,
        };
        let cap = model.model.forward_with(ids, &plan, None, &opts)?;
        let final_lp: Vec<Vec<f64>> = {
            let logits = model.model.unembed(cap.state(State::Resid(n)))?;
            logits
                .to_vec2::<f32>()?
                .iter()
                .map(|r| log_probs(r))
                .collect()
        };
        let final_top: Vec<usize> = final_lp.iter().map(|r| argmax(r)).collect();
        let final_p: Vec<Vec<f64>> = final_lp
            .iter()
            .map(|r| r.iter().map(|x| x.exp()).collect())
            .collect();
        let measure = |sums: &mut Sums, s: usize, x: &candle_core::Tensor| -> Result<()> {
            let logits = model.model.unembed(x)?.to_vec2::<f32>()?;
            for (pos, row) in logits.iter().enumerate() {
                let lp = log_probs(row);
                let (mut kl, mut h) = (0.0, 0.0);
                for ((a, pa), b) in final_lp[pos].iter().zip(&final_p[pos]).zip(&lp) {
                    kl += pa * (a - b);
                    h -= b.exp() * b;
                }
                sums.kl[s] += kl;
                sums.entropy[s] += h;
                sums.agree[s] += f64::from(u8::from(argmax(&lp) == final_top[pos]));
                if pos + 1 < t {
                    sums.ce[s] -= lp[ids[pos + 1] as usize];
                }
            }
            Ok(())
        };
        for (s, (_, state)) in specs.iter().enumerate() {
            let h = cap.state(*state);
            measure(&mut logit, s, h)?;
            if let (Some(lens), Some(sums), State::Resid(i)) = (tuned, tuned_sums.as_mut(), state) {
                measure(sums, s, &lens.translate(*i, h)?)?;
            }
        }
        tokens += t;
        ce_tokens += t - 1;
    }
    watch.progress(crate::types::Stage::Lens, corpus.len(), corpus.len());
    Ok(Evaluation {
        layers: specs.into_iter().map(|(name, _)| name).collect(),
        tokens,
        logit: logit.means(tokens, ce_tokens),
        tuned: tuned_sums.map(|s| s.means(tokens, ce_tokens)),
    })
}
