//! `eval-lens` against the reference (transformers + the tuned-lens package,
//! float64 from float32 logits): every measure of both lenses within 1e-4;
//! top-1 agreement may differ by the positions whose argmax is a near-tie.

mod common;

use common::*;
use logitlens_engine::ops::corpus::{corpus_ids, documents};
use logitlens_engine::ops::eval::{evaluate, LensMetrics, Lenses};
use logitlens_engine::watch::Unwatched;

fn research() -> std::path::PathBuf {
    fixtures().join("research")
}

fn docs(file: &str) -> Vec<String> {
    documents(&std::fs::read_to_string(research().join(file)).unwrap())
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
            Lenses {
                tuned: m.tuned_lens().as_deref(),
                jacobian: None,
            },
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
            Lenses::default(),
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

/// POST /eval_lens measures the model in service (with its attached lens)
/// as the reference does; GET /eval_lens gives it back until another model
/// is in service; every misuse is a 4xx saying what to change.
#[tokio::test]
async fn the_server_evaluates_the_lenses_of_the_model_in_service() {
    use common::server::{detail, server_with};
    use serde_json::json;
    let s = server_with(|c| c.max_prompt_tokens = 256);
    let corpus = std::fs::read_to_string(research().join("corpus.txt")).unwrap();
    let (st, v) = s.post("/eval_lens", json!({"corpus": corpus})).await;
    assert_eq!(st, 400, "{v}");
    assert!(detail(&v).contains("Model not loaded"), "{v}");
    s.load(tiny("llama")).await;
    // Nothing evaluated yet: an empty answer, not an error.
    let (st, v) = s.get("/eval_lens").await;
    assert_eq!((st.as_u16(), v), (200, serde_json::Value::Null));
    for (body, says) in [
        (json!({"corpus": "\n \n"}), "no text"),
        (json!({"corpus": "a", "max_tokens": 0}), "at least 1 token"),
        (json!({"corpus": "a", "max_tokens": 257}), "256"),
        (json!({"corpus": "a\n".repeat(5000)}), "4096"),
        (json!({"corpus": "a", "sample": 3}), "not both"),
        (json!({"max_tokens": 3}), "give corpus"),
        (json!({"sample": 0}), "at least 1"),
        (
            json!({"sample": 1000, "max_tokens": 128}),
            "128000 sampled tokens; this server takes at most 65536",
        ),
    ] {
        let (st, v) = s.post("/eval_lens", body.clone()).await;
        assert!(st == 400 || st == 422, "{body}: {st} {v}");
        assert!(detail(&v).contains(says), "{body}: {v}");
    }
    let lens_dir = research().join("tuned").join("llama");
    let (st, _) = s.post("/load_lens", json!({"path": lens_dir})).await;
    assert_eq!(st, 200);
    let (st, v) = s
        .post("/eval_lens", json!({"corpus": corpus, "max_tokens": 128}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["documents"], 40);
    assert_eq!(v["tuned_lens"], lens_dir.display().to_string());
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(research().join("llama").join("eval_reference.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(v["tokens"], want["tokens"]);
    let tokens = v["tokens"].as_u64().unwrap() as usize;
    for lens in ["logit", "tuned"] {
        let got: LensMetrics = serde_json::from_value(v[lens].clone()).unwrap();
        close("llama", lens, &got, &want[lens], tokens);
    }
    let (st, kept) = s.get("/eval_lens").await;
    assert_eq!(st, 200);
    assert_eq!(kept, v);
    // A corpus sampled from the model: reproducible from its seed.
    let body = json!({"sample": 3, "max_tokens": 8, "seed": 7});
    let (st, a) = s.post("/eval_lens", body.clone()).await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(
        (a["documents"].as_u64(), a["tokens"].as_u64()),
        (Some(3), Some(24))
    );
    assert_eq!(a["sample_seed"], 7);
    let (_, b) = s.post("/eval_lens", body).await;
    assert_eq!(a, b);
    let (_, c) = s
        .post(
            "/eval_lens",
            json!({"sample": 3, "max_tokens": 8, "seed": 8}),
        )
        .await;
    assert_ne!(a["logit"], c["logit"]);
    // Another model in service: its evaluation has not been run.
    s.load(tiny("qwen3")).await;
    let (st, v) = s.get("/eval_lens").await;
    assert_eq!((st.as_u16(), v), (200, serde_json::Value::Null));
}
