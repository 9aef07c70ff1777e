//! Several lens runs in one request: on every family, each prompt's
//! answer is the one it gets alone (the tokens of every cell the same,
//! probabilities within 1e-6), whether the prompts go through padded in
//! one batch, one by one, or alone for want of a plain pass; and the
//! requests a batch cannot take are refused naming the prompt.

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
    assert_eq!(got.receipts, want.receipts, "{what}: receipts");
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
        let req = BatchRequest { runs: runs.clone() };
        let alone: Vec<Answer> = runs
            .iter()
            .map(|r| execute(&m, r).unwrap().answer)
            .collect();
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
            }
            let e = out.runs[4].answer.entropy.as_ref().expect("entropy asked");
            let w = alone[4].entropy.as_ref().unwrap();
            for (a, b) in e.iter().flatten().zip(w.iter().flatten()) {
                assert!((a - b).abs() <= 1e-6, "{what}: entropy {a} vs {b}");
            }
            // Every prompt in exactly one pass; the steered one alone.
            let mut seen: Vec<usize> = out.passes.iter().flatten().copied().collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..runs.len()).collect::<Vec<_>>(), "{what}");
            assert!(out.passes.contains(&vec![5]), "{what}: {:?}", out.passes);
            let widest = out.passes.iter().map(Vec::len).max().unwrap();
            match max_batch {
                None => assert_eq!(widest, 5, "{what}: the plain prompts together"),
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
