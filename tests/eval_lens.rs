//! `eval-lens` against the reference (transformers + the tuned-lens package,
//! float64 from float32 logits): every measure of both lenses within 1e-4;
//! top-1 agreement may differ by the positions whose argmax is a near-tie.

mod common;

use common::*;
use logitlens_engine::lens::eval::{corpus_ids, evaluate, LensMetrics};
use logitlens_engine::types::Unwatched;

fn research() -> std::path::PathBuf {
    fixtures().join("research")
}

fn docs(file: &str) -> Vec<String> {
    std::fs::read_to_string(research().join(file))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn close(family: &str, lens: &str, got: &LensMetrics, want: &serde_json::Value, tokens: usize) {
    let v = |k: &str| -> Vec<f64> {
        want[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    for (name, g, w) in [
        ("kl", &got.kl, v("kl")),
        ("ce", &got.ce, v("ce")),
        ("entropy", &got.entropy, v("entropy")),
    ] {
        assert_eq!(g.len(), w.len());
        for (s, (a, b)) in g.iter().zip(&w).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4,
                "{family} {lens} {name}[{s}]: {a} vs {b}"
            );
        }
    }
    let ties = v("top1_agree_ties");
    for (s, (a, b)) in got.top1_agree.iter().zip(v("top1_agree")).enumerate() {
        let slack = ties[s] / tokens as f64 + 1e-4;
        assert!(
            (a - b).abs() <= slack,
            "{family} {lens} top1_agree[{s}]: {a} vs {b}"
        );
    }
}

#[test]
fn both_lenses_measure_as_the_reference() {
    for family in ["llama", "qwen3"] {
        let m = load_tiny(family);
        m.attach_tuned_lens(&research().join("tuned").join(family))
            .unwrap();
        let want: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(research().join(family).join("eval_reference.json")).unwrap(),
        )
        .unwrap();
        let e = evaluate(
            &m,
            &corpus_ids(&m, &docs("corpus.txt"), 128).unwrap(),
            m.tuned_lens().as_deref(),
            &Unwatched,
        )
        .unwrap();
        assert_eq!(
            e.tokens as u64,
            want["tokens"].as_u64().unwrap(),
            "{family}"
        );
        let layers: Vec<String> = serde_json::from_value(want["layers"].clone()).unwrap();
        assert_eq!(e.layers, layers);
        close(family, "logit", &e.logit, &want["logit"], e.tokens);
        close(
            family,
            "tuned",
            e.tuned.as_ref().unwrap(),
            &want["tuned"],
            e.tokens,
        );
    }
}

#[test]
fn the_held_out_half_measures_as_the_reference() {
    for family in ["llama", "qwen3"] {
        let m = load_tiny(family);
        let want: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(research().join(family).join("eval_split_reference.json"))
                .unwrap(),
        )
        .unwrap();
        let e = evaluate(
            &m,
            &corpus_ids(&m, &docs("corpus_eval.txt"), 128).unwrap(),
            None,
            &Unwatched,
        )
        .unwrap();
        assert_eq!(
            e.tokens as u64,
            want["tokens"].as_u64().unwrap(),
            "{family}"
        );
        close(family, "logit", &e.logit, &want["logit"], e.tokens);
        assert!(e.tuned.is_none());
    }
}
