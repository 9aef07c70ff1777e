//! Several lens runs in one request: on every family, each prompt's
//! answer is the one it gets alone (the tokens of every cell the same,
//! probabilities, receipts' norms and returned patterns within 1e-6),
//! whether the prompts go through padded in one batch, each under its own
//! interventions (with `compare`, its baseline beside it), one by one, or
//! alone for attention blocking; and the requests a batch cannot take are
//! refused naming the prompt.

mod common;

use common::*;
use logitlens_engine::ops::run::batch::{BatchRequest, BatchSpec};
use logitlens_engine::ops::{execute, Context, Operation};
use logitlens_engine::{Answer, InterventionConfig, Interventions, LensRow, RunRequest};

const TEXTS: [&str; 4] = [
    "The capital of France is",
    "One two three four five six seven eight",
    "Hi",
    "The cat sat on the mat because it was",
];

fn same_rows(got: &[LensRow], want: &[LensRow], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: rows");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.layer_name, w.layer_name, "{what}");
        assert_eq!(
            g.predictions.len(),
            w.predictions.len(),
            "{what}: positions"
        );
        for (p, (gc, wc)) in g.predictions.iter().zip(&w.predictions).enumerate() {
            for (a, b) in gc.iter().zip(wc) {
                let close = (a.prob - b.prob).abs() <= 1e-6;
                // Two tokens of equal probability may swap places.
                assert!(
                    close && (a.id == b.id || (a.prob - b.prob).abs() < 1e-9),
                    "{what}, {} position {p}: {:?} batched, {:?} alone",
                    g.layer_name,
                    a,
                    b
                );
            }
        }
    }
}

fn same_answer(got: &Answer, want: &Answer, what: &str) {
    assert_eq!(got.text, want.text, "{what}");
    assert_eq!(got.input_tokens, want.input_tokens, "{what}");
    same_rows(&got.logit_lens, &want.logit_lens, what);
    assert_eq!(got.receipts.len(), want.receipts.len(), "{what}: receipts");
    for (g, w) in got.receipts.iter().zip(&want.receipts) {
        let close = match (g.delta_norm, w.delta_norm) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * b.abs().max(1.0),
            (a, b) => a == b,
        };
        assert!(close, "{what}: receipt {g:?} batched, {w:?} alone");
        let (mut g, mut w) = (g.clone(), w.clone());
        (g.delta_norm, w.delta_norm) = (None, None);
        assert_eq!(g, w, "{what}: receipts");
    }
    match (&got.baseline_logit_lens, &want.baseline_logit_lens) {
        (Some(g), Some(w)) => same_rows(g, w, &format!("{what}, baseline")),
        (g, w) => assert_eq!(g.is_some(), w.is_some(), "{what}: baseline"),
    }
    match (&got.diff, &want.diff) {
        (Some(g), Some(w)) => {
            for (a, b) in g.iter().flatten().zip(w.iter().flatten()) {
                assert_eq!(
                    (a.baseline_id, a.top_id),
                    (b.baseline_id, b.top_id),
                    "{what}: diff"
                );
                assert!(
                    (a.prob - b.prob).abs() <= 1e-6,
                    "{what}: diff {a:?} vs {b:?}"
                );
            }
        }
        (g, w) => assert_eq!(g.is_some(), w.is_some(), "{what}: diff"),
    }
}

/// Patterns kept for returned attention: the same shapes, within 1e-6.
fn same_patterns(got: &[candle_core::Tensor], want: &[candle_core::Tensor], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: layers of patterns");
    for (l, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.dims(), w.dims(), "{what}: layer {l}");
        let d = max_abs_diff(g, w);
        assert!(d <= 1e-6, "{what}: layer {l}'s pattern off by {d}");
    }
}

/// One operation at `hook`.
fn with_op(mut r: RunRequest, hook: &str, op: InterventionConfig) -> RunRequest {
    r.interventions.entry(hook.into()).or_default().push(op);
    r
}

fn steered(text: &str) -> RunRequest {
    let mut iv = Interventions::new();
    iv.insert(
        "blocks.0.hook_resid_post".into(),
        vec![InterventionConfig {
            kind: "scale".into(),
            value: Some(0.5),
            ..Default::default()
        }],
    );
    RunRequest {
        interventions: iv,
        ..RunRequest::new(text)
    }
}

#[test]
fn each_prompt_gets_the_answer_it_gets_alone() {
    for family in FAMILIES {
        let m = load_hooked(family);
        let mut runs: Vec<RunRequest> = TEXTS.iter().map(|t| RunRequest::new(*t)).collect();
        runs.push(RunRequest {
            entropy: true,
            ..RunRequest::new("Entropy of a short text")
        });
        runs.push(steered(TEXTS[0]));
        // Interventions of every stream kind, at one position and at all,
        // at the embeddings and inside blocks; with `compare`; attention
        // returned; and blocked attention, which runs alone.
        let d = m.config().d_model;
        let zero_last = InterventionConfig {
            kind: "zero".into(),
            token_index: Some(-1),
            ..Default::default()
        };
        let add = InterventionConfig {
            kind: "add".into(),
            vector: Some((0..d).map(|i| ((i % 7) as f64 - 3.0) * 0.05).collect()),
            token_index: Some(1),
            ..Default::default()
        };
        let scale = InterventionConfig {
            kind: "scale".into(),
            value: Some(1.5),
            ..Default::default()
        };
        let attention = RunRequest {
            return_attention: true,
            ..RunRequest::new(TEXTS[3])
        };
        runs.push(with_op(
            with_op(
                RunRequest::new(TEXTS[1]),
                "blocks.1.hook_mlp_out",
                zero_last.clone(),
            ),
            "hook_embed",
            add.clone(),
        ));
        runs.push(RunRequest {
            compare: true,
            ..with_op(RunRequest::new(TEXTS[3]), "blocks.0.hook_attn_out", scale)
        });
        runs.push(with_op(attention.clone(), "blocks.1.hook_resid_pre", add));
        runs.push(RunRequest {
            return_attention: true,
            ..RunRequest::new(TEXTS[2])
        });
        runs.push(with_op(
            RunRequest::new(TEXTS[0]),
            "blocks.1.attn.hook_attn_scores",
            InterventionConfig {
                kind: "block_attention".into(),
                source_tokens: Some(vec![0]),
                target_tokens: Some(vec![-1]),
                ..Default::default()
            },
        ));
        let req = BatchRequest { runs: runs.clone() };
        let alone_runs: Vec<_> = runs.iter().map(|r| execute(&m, r).unwrap()).collect();
        let alone: Vec<Answer> = alone_runs.iter().map(|o| o.answer.clone()).collect();
        for max_batch in [None, Some(1), Some(2)] {
            let spec = BatchSpec {
                max_batch,
                ..BatchSpec::check(&m, &req).unwrap()
            };
            let out = spec
                .run(&m, &Context::default(), &mut |e| match e {})
                .unwrap();
            let what = format!("{family}, max_batch {max_batch:?}");
            assert_eq!(out.runs.len(), runs.len(), "{what}");
            for (i, (got, want)) in out.runs.iter().zip(&alone).enumerate() {
                same_answer(&got.answer, want, &format!("{what}, prompt {i}"));
                same_patterns(
                    &got.state.capture.patterns,
                    &alone_runs[i].state.capture.patterns,
                    &format!("{what}, prompt {i}"),
                );
            }
            assert!(
                !out.runs[6].answer.receipts.is_empty() && !out.runs[8].answer.receipts.is_empty(),
                "{what}: receipts"
            );
            assert!(out.runs[7].answer.diff.is_some(), "{what}: compare");
            let e = out.runs[4].answer.entropy.as_ref().expect("entropy asked");
            let w = alone[4].entropy.as_ref().unwrap();
            for (a, b) in e.iter().flatten().zip(w.iter().flatten()) {
                assert!((a - b).abs() <= 1e-6, "{what}: entropy {a} vs {b}");
            }
            // Every prompt in exactly one pass; the blocked one alone, those
            // returning attention apart from the others.
            let mut seen: Vec<usize> = out.passes.iter().flatten().copied().collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..runs.len()).collect::<Vec<_>>(), "{what}");
            assert!(out.passes.contains(&vec![10]), "{what}: {:?}", out.passes);
            for pass in &out.passes {
                let kept: Vec<bool> = pass.iter().map(|&i| runs[i].return_attention).collect();
                assert!(
                    kept.iter().all(|&k| k == kept[0]),
                    "{what}: {:?}",
                    out.passes
                );
            }
            let widest = out.passes.iter().map(Vec::len).max().unwrap();
            match max_batch {
                None => {
                    assert_eq!(widest, 8, "{what}: the prompts without attention together");
                    assert!(out.passes.contains(&vec![8, 9]), "{what}: {:?}", out.passes);
                }
                Some(k) => assert_eq!(widest, k, "{what}"),
            }
        }
    }
}

#[test]
fn bad_batches_are_refused_naming_the_prompt() {
    let m = load_hooked("llama");
    let e = BatchSpec::check(&m, &BatchRequest { runs: vec![] })
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no prompts"), "{e}");
    let mut bad = steered("Hello");
    bad.interventions.insert(
        "blocks.99.hook_resid_post".into(),
        vec![InterventionConfig {
            kind: "zero".into(),
            ..Default::default()
        }],
    );
    let req = BatchRequest {
        runs: vec![RunRequest::new("fine"), bad],
    };
    let e = BatchSpec::check(&m, &req).err().unwrap().to_string();
    assert!(e.starts_with("prompt 1: "), "{e}");
    assert!(e.contains("99"), "{e}");
}
