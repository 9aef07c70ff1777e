//! Training a tuned lens: the gradient is the loss's (finite differences),
//! and 200 steps on the train half of the corpus halve the held-out KL.

mod common;

use candle_core::{DType, Tensor};
use common::*;
use logitlens_engine::ops::corpus::corpus_ids;
use logitlens_engine::ops::eval::{evaluate, Lenses};
use logitlens_engine::ops::fit::{loss_and_grads, train, TrainOptions};
use logitlens_engine::watch::Unwatched;

fn docs(file: &str) -> Vec<String> {
    std::fs::read_to_string(fixtures().join("research").join(file))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn mean_kl(kl: &[f64]) -> f64 {
    let rows = &kl[..kl.len() - 1];
    rows.iter().sum::<f64>() / rows.len() as f64
}

/// The training step's gradient (autograd up to the final norm, the head
/// by hand) against finite differences of the loss, on heads of every kind:
/// RMSNorm (qwen3), Gemma's (1 + w) norm with the final soft-cap (gemma2),
/// LayerNorm (gpt2), and an unembedding bias (phi).
#[test]
fn the_gradient_is_the_losss() {
    for family in ["qwen3", "gemma2", "gpt2", "phi"] {
        gradient_matches_finite_differences(family);
    }
}

fn gradient_matches_finite_differences(family: &str) {
    let m = load_hooked(family);
    let d = m.config().d_model;
    let ids: Vec<Vec<u32>> = docs("corpus_train.txt")[..2]
        .iter()
        .map(|t| {
            let mut i = m.tokenizer.encode(t, true).unwrap();
            i.truncate(12);
            i
        })
        .collect();
    let dev = candle_core::Device::Cpu;
    let dtype = m.model.dtype();
    // Away from zero, so every term of the gradient is exercised.
    let ws: Vec<(Tensor, Tensor)> = (0..m.config().n_layers)
        .map(|_| {
            (
                (Tensor::randn(0f64, 0.05, (d, d), &dev).unwrap())
                    .to_dtype(dtype)
                    .unwrap(),
                (Tensor::randn(0f64, 0.05, d, &dev).unwrap())
                    .to_dtype(dtype)
                    .unwrap(),
            )
        })
        .collect();
    let (_, grads) = loss_and_grads(&m, &ids, &ws).unwrap();
    let eps = 1e-3;
    for (layer, i, j) in [(0usize, 1usize, 2usize), (1, 5, 7), (2, 63, 0)] {
        let at = |delta: f64| {
            let mut w = ws[layer]
                .0
                .to_dtype(DType::F64)
                .unwrap()
                .to_vec2::<f64>()
                .unwrap();
            w[i][j] += delta;
            let mut ws2 = ws.clone();
            ws2[layer].0 = Tensor::new(w, &dev).unwrap().to_dtype(dtype).unwrap();
            loss_and_grads(&m, &ids, &ws2).unwrap().0
        };
        let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
        let analytic = grads[layer]
            .0
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec2::<f64>()
            .unwrap()[i][j];
        assert!(
            (numeric - analytic).abs() <= 1e-3 + 1e-2 * analytic.abs(),
            "{family} W[{layer}][{i}][{j}]: finite differences {numeric}, autograd {analytic}"
        );
    }
}

#[test]
fn two_hundred_steps_halve_the_held_out_kl() {
    for family in ["qwen3", "llama"] {
        let m = load_tiny(family);
        let lens = train(
            &m,
            &corpus_ids(&m, &docs("corpus_train.txt"), 128).unwrap(),
            &TrainOptions::default(),
            &Unwatched,
            &mut |_| Ok(()),
        )
        .unwrap();
        let e = evaluate(
            &m,
            &corpus_ids(&m, &docs("corpus_eval.txt"), 128).unwrap(),
            Lenses {
                tuned: Some(&lens),
                jacobian: None,
            },
            &Unwatched,
        )
        .unwrap();
        let (logit, tuned) = (mean_kl(&e.logit.kl), mean_kl(&e.tuned.unwrap().kl));
        eprintln!(
            "{family}: held-out mean KL rows 0..L-1: logit {logit:.4}, tuned {tuned:.4} ({:.2}x)",
            tuned / logit
        );
        if family == "qwen3" {
            assert!(tuned <= 0.5 * logit, "{family}: {tuned} vs {logit}");
        } else {
            assert!(tuned < logit, "{family}: {tuned} vs {logit}");
        }
    }
}
