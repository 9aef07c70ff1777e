//! Documents of one length go through the model together in eval-lens,
//! train-lens and eval-sae: what they measure is what the runs made one
//! by one measure.

mod common;

use std::sync::Mutex;

use candle_core::Tensor;
use common::*;
use logitlens_engine::hooks::InterventionPlan;
use logitlens_engine::model::ForwardOptions;
use logitlens_engine::ops::corpus::{corpus_ids, documents, Corpus};
use logitlens_engine::ops::eval::{EvalReport, EvalRequest, EvalSpec};
use logitlens_engine::ops::eval_sae::{EvalSaeRequest, EvalSaeSpec, SaeEvalReport};
use logitlens_engine::ops::fit::{train, FitStep, TrainOptions};
use logitlens_engine::ops::{Context, Operation};
use logitlens_engine::sae::{Sae, SaeOptions};
use logitlens_engine::watch::{Stage, Unwatched, Watch};
use logitlens_engine::{BackendKind, ComputeDtype, EngineError, LoadOptions, LoadedModel};

/// A fixture under the hooked backend, computing in `dtype`.
fn load_in(family: &str, dtype: ComputeDtype) -> LoadedModel {
    let opts = LoadOptions {
        backend: BackendKind::Hooked,
        dtype,
        ..Default::default()
    };
    LoadedModel::load_with(tiny(family).to_str().unwrap(), opts, &mut |_| {}).unwrap()
}

/// A batch's states are each sequence's own run's, on every family, in
/// f64 and f32, within 1e-6 of the state's largest entry. Bit for bit as
/// measured, but for the partial rotations (phi, GPT-NeoX): a lone
/// sequence keeps its rotated heads strided and a batch makes them
/// contiguous, so the scores' product sums in another order (an ulp or
/// two: 6e-7 of the state in f32).
#[test]
fn a_batch_of_documents_is_its_documents_run_alone() {
    let opts = ForwardOptions {
        keep_patterns: false,
        watch: &Unwatched,
    };
    for family in FAMILIES {
        let mut models = vec![
            load_in(family, ComputeDtype::F64),
            load_in(family, ComputeDtype::F32),
        ];
        if ["llama", "qwen3"].contains(&family) {
            models.push(load_tiny(family));
        }
        for m in models {
            let v = m.config().vocab_size as u32;
            let docs: Vec<Vec<u32>> = (0..3u32)
                .map(|k| (0..9u32).map(|i| (i * 31 + k * 17 + 1) % v).collect())
                .collect();
            let refs: Vec<&[u32]> = docs.iter().map(Vec::as_slice).collect();
            let batch = m.model.forward_batch(&refs, &opts).unwrap();
            let plan = InterventionPlan::default();
            let mut worst = 0f64;
            for (i, ids) in docs.iter().enumerate() {
                let alone = m.model.forward_with(ids, &plan, None, &opts).unwrap();
                for (got, want) in [
                    (&batch.resid, &alone.resid),
                    (&batch.post_attn, &alone.post_attn),
                    (&batch.attn_out, &alone.attn_out),
                    (&batch.mlp_out, &alone.mlp_out),
                ] {
                    for (g, w) in got.iter().zip(want) {
                        let scale = max_abs_diff(w, &w.zeros_like().unwrap()).max(1.0);
                        worst = worst.max(max_abs_diff(&g.get(i).unwrap(), w) / scale);
                    }
                }
            }
            eprintln!(
                "{family} {:?}: largest difference {worst:e}",
                m.model.dtype()
            );
            assert!(worst <= 1e-6, "{family}: {worst:e}");
        }
    }
}

/// Documents cut to `MAX_TOKENS` ids, most of them that long, two short
/// ones of one length apart from each other and a shorter one: runs of 4,
/// 2 and 1 documents in one batch, their documents interleaved.
const TEXT: &str = "The quick brown fox jumps over the lazy dog while the cat sleeps.
Hi.
In 1969 Apollo 11 landed on the Moon and two astronauts walked on it.
Hi.
The mitochondria is often called the powerhouse of the cell, they say.
A
The stock market rose on Tuesday after the central bank kept its rates.";
const MAX_TOKENS: usize = 10;

fn lengths(m: &LoadedModel) -> Vec<usize> {
    corpus_ids(m, &documents(TEXT), MAX_TOKENS)
        .unwrap()
        .iter()
        .map(Vec::len)
        .collect()
}

/// Documents-stage progress heard, and a stop once `stop_after` documents
/// are done.
struct Log {
    done: Mutex<Vec<usize>>,
    stop_after: Option<usize>,
}

impl Log {
    fn new(stop_after: Option<usize>) -> Self {
        Log {
            done: Mutex::new(Vec::new()),
            stop_after,
        }
    }
}

impl Watch for Log {
    fn cancelled(&self) -> bool {
        let last = self.done.lock().unwrap().last().copied();
        matches!((self.stop_after, last), (Some(k), Some(d)) if d >= k)
    }
    fn progress(&self, stage: Stage, done: usize, _: usize) {
        if stage == Stage::Documents {
            self.done.lock().unwrap().push(done);
        }
    }
}

fn eval(
    m: &LoadedModel,
    max_batch: Option<usize>,
    watch: &dyn Watch,
) -> logitlens_engine::Result<EvalReport> {
    let req = EvalRequest {
        corpus: Corpus::Text(TEXT.into()),
        max_tokens: MAX_TOKENS,
    };
    let mut spec = EvalSpec::check(m, &req)?;
    spec.max_batch = max_batch;
    let cx = Context {
        watch,
        earlier: &[],
    };
    spec.run(m, &cx, &mut |e| match e {})
}

fn batch_memory(cost: &logitlens_engine::ops::Cost, what: &str) -> u64 {
    cost.memory
        .iter()
        .find(|(name, _)| *name == what)
        .unwrap_or_else(|| panic!("{what} is listed"))
        .1
}

/// Largest difference of two lists of measures, relative to the measure.
fn rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1e-300))
        .fold(0.0, f64::max)
}

/// eval-lens measures the same, batched or one by one, and its watch hears
/// the same documents done and stops it at the same one. The families whose
/// batched run is their lone run to the bit give the same report to the bit;
/// the partial rotations (phi, GPT-NeoX) within 1e-12 of each measure.
#[test]
fn eval_lens_batched_is_eval_lens_one_by_one() {
    let tuned = |m: LoadedModel, family: &str| {
        let dir = fixtures().join("research").join("tuned").join(family);
        m.attach_tuned_lens(&dir).unwrap();
        m
    };
    let models = [
        ("llama", tuned(load_tiny("llama"), "llama")),
        ("qwen3", tuned(load_hooked("qwen3"), "qwen3")),
        ("phi", load_hooked("phi")),
        ("gpt_neox", load_hooked("gpt_neox")),
    ];
    for (family, m) in &models {
        let t = lengths(m);
        assert_eq!(t.iter().filter(|&&t| t == MAX_TOKENS).count(), 4);
        assert!(t[1] == t[3] && t[5] < t[1], "{family}: {t:?}");
        let (log_b, log_1, log_2) = (Log::new(None), Log::new(None), Log::new(None));
        let batched = eval(m, None, &log_b).unwrap();
        let alone = eval(m, Some(1), &log_1).unwrap();
        let pairs = eval(m, Some(2), &log_2).unwrap();
        let n = batched.documents;
        assert_eq!(n, 7);
        let heard: Vec<usize> = (0..=n).collect();
        for log in [&log_b, &log_1, &log_2] {
            assert_eq!(*log.done.lock().unwrap(), heard, "{family}");
        }
        for other in [&alone, &pairs] {
            if ["llama", "qwen3"].contains(family) {
                assert_eq!(&batched, other, "{family}");
            }
            let (a, b) = (&batched.evaluation, &other.evaluation);
            assert_eq!(a.tokens, b.tokens);
            let mut lenses = vec![(&a.logit, &b.logit)];
            if let (Some(x), Some(y)) = (&a.tuned, &b.tuned) {
                lenses.push((x, y));
            }
            for (x, y) in lenses {
                for (g, w) in [
                    (&x.kl, &y.kl),
                    (&x.ce, &y.ce),
                    (&x.entropy, &y.entropy),
                    (&x.top1_agree, &y.top1_agree),
                ] {
                    let d = rel(g, w);
                    assert!(d <= 1e-12, "{family}: {d:e}");
                }
            }
        }
        // Stopped once two documents are done: the same documents heard,
        // batched or not.
        for max_batch in [None, Some(1)] {
            let log = Log::new(Some(2));
            let stopped = eval(m, max_batch, &log);
            assert!(matches!(stopped, Err(EngineError::Cancelled)), "{family}");
            assert_eq!(*log.done.lock().unwrap(), [0, 1, 2], "{family}");
        }
        // The batch's runs are in the memory it asks for.
        let req = EvalRequest {
            corpus: Corpus::Text(TEXT.into()),
            max_tokens: MAX_TOKENS,
        };
        let mut spec = EvalSpec::check(m, &req).unwrap();
        let all = batch_memory(&spec.cost(m), "a batch of documents' runs");
        spec.max_batch = Some(1);
        let one = batch_memory(&spec.cost(m), "a batch of documents' runs");
        assert_eq!(all, 7 * one, "{family}");
    }
}

/// A tuned lens trained on frozen runs made in batches is the one trained
/// on runs made one by one: the same losses, step by step, and the same
/// translators.
#[test]
fn train_lens_batched_is_train_lens_one_by_one() {
    for (family, m) in [("qwen3", load_tiny("qwen3")), ("phi", load_hooked("phi"))] {
        let ids = corpus_ids(&m, &documents(TEXT), MAX_TOKENS).unwrap();
        // Batches of steps of several documents, the first with two of ten
        // ids apart.
        let opts = TrainOptions {
            steps: 4,
            warmup: 1,
            batch_tokens: 24,
            ..Default::default()
        };
        let fit = |max_batch| {
            let mut losses = Vec::new();
            let lens = train(
                &m,
                &ids,
                &TrainOptions { max_batch, ..opts },
                &Unwatched,
                &mut |s: FitStep| {
                    losses.push(s.loss);
                    Ok(())
                },
            )
            .unwrap();
            (lens, losses)
        };
        let (batched, loss_b) = fit(None);
        let (alone, loss_1) = fit(Some(1));
        let exact = family == "qwen3";
        if exact {
            assert_eq!(loss_b, loss_1, "{family}");
        }
        let d = rel(&loss_b, &loss_1);
        assert!(d <= 1e-12, "{family}: losses {d:e}");
        let h = Tensor::randn(0f64, 1.0, (3, m.config().d_model), m.model.device())
            .unwrap()
            .to_dtype(m.model.dtype())
            .unwrap();
        for row in 0..m.config().n_layers {
            let a = batched.translate(row, &h).unwrap();
            let b = alone.translate(row, &h).unwrap();
            let diff = max_abs_diff(&a, &b);
            assert!(
                if exact { diff == 0.0 } else { diff <= 1e-12 },
                "{family} row {row}: {diff:e}"
            );
        }
    }
}

/// eval-sae's clean, spliced and ablated runs made in batches (the spliced
/// and ablated resumed from the clean ones, each document under its own
/// splice) measure what they measure made one by one.
#[test]
fn eval_sae_batched_is_eval_sae_one_by_one() {
    let m = load_tiny("llama");
    let dir = fixtures().join("research/sae/llama/relu_resid_post_1");
    m.attach_saes(vec![Sae::read(&dir, &SaeOptions::default()).unwrap()])
        .unwrap();
    let run = |max_batch| -> SaeEvalReport {
        let req = EvalSaeRequest {
            corpus: Corpus::Text(TEXT.into()),
            max_tokens: MAX_TOKENS,
            saes: None,
            exclude_special: true,
        };
        let mut spec = EvalSaeSpec::check(&m, &req).unwrap();
        spec.max_batch = max_batch;
        spec.run(&m, &Context::default(), &mut |e| match e {})
            .unwrap()
    };
    let batched = run(None);
    assert_eq!(batched.documents, 7);
    assert_eq!(batched, run(Some(1)));
    assert_eq!(batched, run(Some(3)));
}

/// A feature's corpus scan with its documents run in batches finds what it
/// finds with them run one by one: the same counts, strongest activation and
/// contexts.
#[test]
fn sae_feature_corpus_batched_is_one_by_one() {
    use logitlens_engine::ops::sae_corpus::{SaeCorpusReport, SaeCorpusRequest, SaeCorpusSpec};
    let m = load_tiny("llama");
    let dir = fixtures().join("research/sae/llama/relu_resid_post_1");
    let sae = Sae::read(&dir, &SaeOptions::default()).unwrap();
    let name = sae.name.clone();
    m.attach_saes(vec![sae]).unwrap();
    let run = |max_batch| -> SaeCorpusReport {
        let req = SaeCorpusRequest {
            sae: name.clone(),
            feature: 3,
            corpus: Corpus::Text(TEXT.into()),
            max_tokens: MAX_TOKENS,
            contexts: 5,
            window: 2,
        };
        let mut spec = SaeCorpusSpec::check(&m, &req).unwrap();
        spec.max_batch = max_batch;
        spec.run(&m, &Context::default(), &mut |e| match e {})
            .unwrap()
    };
    let batched = run(None);
    assert_eq!(batched.documents, 7);
    assert!(batched.fires > 0, "{batched:?}");
    assert_eq!(batched, run(Some(1)));
    assert_eq!(batched, run(Some(3)));
}
