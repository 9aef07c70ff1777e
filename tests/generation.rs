//! Generation as a run (`LoadedModel::generate_run`, what POST /generate
//! serves): the answer assembled from the cached passes equals a cold run
//! on the same ids on every family and both backends; greedy ids and the
//! lens over them equal transformers' (tests/fixtures/research/<family>/
//! generate_reference.json); interventions act at every step, on prompt
//! positions and on positions written later; compare writes the baseline's
//! own continuation; each pass hands over its new columns.

mod common;

use common::*;
use logitlens_engine::lens::LensRow;
use logitlens_engine::ops::generate::{GenerationOutput, GenerationRequest, GenerationStep};
use logitlens_engine::watch::Unwatched;
use logitlens_engine::{
    InterventionConfig, Interventions, LensType, LoadedModel, RunRequest, RunSpec,
};

const TOL: f64 = 1e-5;

fn request(run: RunRequest, max_new_tokens: usize) -> GenerationRequest {
    GenerationRequest {
        run,
        max_new_tokens,
        stop_at_eos: true,
    }
}

/// The largest probability difference between two grids, asserting the
/// same ids except where near-equal probabilities swap.
fn grid_diff(a: &[LensRow], b: &[LensRow], what: &str) -> f64 {
    assert_eq!(a.len(), b.len(), "{what}: rows");
    let mut worst = 0f64;
    for (ra, rb) in a.iter().zip(b) {
        assert_eq!(ra.layer_name, rb.layer_name);
        assert_eq!(
            ra.predictions.len(),
            rb.predictions.len(),
            "{what}: positions"
        );
        for (t, (ca, cb)) in ra.predictions.iter().zip(&rb.predictions).enumerate() {
            for (pa, pb) in ca.iter().zip(cb) {
                worst = worst.max((pa.prob - pb.prob).abs());
                if pa.id != pb.id {
                    let other = cb.iter().find(|c| c.id == pa.id).map(|c| c.prob);
                    assert!(
                        other.is_some_and(|o| (o - pa.prob).abs() < TOL),
                        "{what} {} pos {t}: {} vs {}",
                        ra.layer_name,
                        pa.id,
                        pb.id
                    );
                }
            }
        }
    }
    worst
}

/// A generation of `n` tokens at most, nothing watched.
fn written(m: &LoadedModel, run: RunRequest, n: usize) -> GenerationOutput {
    m.generate_run(&request(run, n), &[], &Unwatched, &mut |_| Ok(()))
        .unwrap()
}

fn cold(m: &LoadedModel, run: &RunRequest, ids: &[u32]) -> Vec<LensRow> {
    let spec = RunSpec::new(m, run, ids.to_vec()).unwrap();
    m.run_spec(spec, &[]).unwrap().answer.logit_lens
}

#[test]
fn the_cache_changes_nothing_on_every_family_and_backend() {
    let mut models: Vec<(String, LoadedModel)> = FAMILIES
        .iter()
        .map(|f| (format!("{f} hooked"), load_hooked(f)))
        .collect();
    models.push(("llama custom".into(), load_tiny("llama")));
    models.push(("qwen3 custom".into(), load_tiny("qwen3")));
    for (name, m) in &models {
        let run = RunRequest {
            lens_type: LensType::Combined,
            entropy: true,
            ..RunRequest::new("The capital of France is")
        };
        let out = written(m, run.clone(), 5);
        let ids = &out.run.state.ids;
        assert_eq!(
            ids.len(),
            out.prompt_tokens + out.generated_ids.len(),
            "{name}"
        );
        // Every layer was taken over from the passes, none recomputed.
        assert_eq!(out.run.timings.reused_layers, m.config().n_layers, "{name}");
        let want = cold(m, &run, ids);
        let worst = grid_diff(&out.run.answer.logit_lens, &want, name);
        assert!(worst < TOL, "{name}: {worst}");
        let spec = RunSpec::new(m, &run, ids.clone()).unwrap();
        let entropy = m.run_spec(spec, &[]).unwrap().answer.entropy.unwrap();
        for (ra, rb) in out
            .run
            .answer
            .entropy
            .as_ref()
            .unwrap()
            .iter()
            .zip(&entropy)
        {
            for (a, b) in ra.iter().zip(rb) {
                assert!((a - b).abs() < TOL, "{name}: entropy {a} vs {b}");
            }
        }
    }
}

#[test]
fn greedy_ids_and_lens_match_transformers() {
    for family in ["llama", "qwen3"] {
        let json =
            reference_json(&fixtures().join(format!("research/{family}/generate_reference.json")));
        let steps = json["max_new_tokens"].as_u64().unwrap() as usize;
        for m in [load_tiny(family), load_hooked(family)] {
            for prompt in json["prompts"].as_array().unwrap() {
                let text = prompt["text"].as_str().unwrap();
                let out = m
                    .generate_run(
                        &request(RunRequest::new(text), steps),
                        &[],
                        &Unwatched,
                        &mut |_| Ok(()),
                    )
                    .unwrap();
                assert_eq!(
                    out.generated_ids,
                    u32s(&prompt["generated_ids"]),
                    "{family} {text:?}"
                );
                assert_eq!(
                    out.stopped_at_eos,
                    prompt["stopped_at_eos"].as_bool().unwrap()
                );
                assert_eq!(out.prompt_tokens, u32s(&prompt["prompt_ids"]).len());
                let rows = &out.run.answer.logit_lens;
                for (s, row) in rows.iter().enumerate() {
                    for (t, cell) in row.predictions.iter().enumerate() {
                        for (k, pred) in cell.iter().enumerate() {
                            let prob = prompt["lens_top5_probs"][s][t][k].as_f64().unwrap();
                            assert!(
                                (pred.prob - prob).abs() < TOL,
                                "{family} row {s} pos {t} rank {k}"
                            );
                        }
                    }
                }
            }
        }
    }
}

fn zero(key: &str, token_index: Option<i64>) -> Interventions {
    let mut iv = Interventions::new();
    iv.insert(
        key.into(),
        vec![InterventionConfig {
            kind: "zero".into(),
            token_index,
            ..Default::default()
        }],
    );
    iv
}

/// An operation on a prompt position acts through the cache on every later
/// token; one on a position past the prompt acts once it is written; one
/// on every position acts at every step. Each gives what one cold run of
/// the same plan over the final ids gives.
#[test]
fn interventions_act_at_every_step() {
    let m = load_hooked("llama");
    let text = "Once upon a time there was";
    let t = m.tokenize(text, false).unwrap().len() as i64;
    let plain = written(&m, RunRequest::new(text), 8);
    for (key, index) in [
        ("blocks.1.hook_resid_post", Some(t - 1)),
        ("layer_0_mlp_output", Some(t + 2)),
        ("all_layers_attn_output", None),
    ] {
        let run = RunRequest {
            interventions: zero(key, index),
            ..RunRequest::new(text)
        };
        let out = written(&m, run.clone(), 8);
        let what = format!("{key} at {index:?}");
        let ids = &out.run.state.ids;
        let worst = grid_diff(&out.run.answer.logit_lens, &cold(&m, &run, ids), &what);
        assert!(worst < TOL, "{what}: {worst}");
        let receipt = &out.run.answer.receipts;
        match index {
            Some(p) => assert!(
                receipt.iter().all(|r| r.positions == [p as usize]),
                "{what}: {receipt:?}"
            ),
            // One receipt per layer, covering every position of every pass.
            None => {
                assert_eq!(receipt.len(), m.config().n_layers, "{what}");
                assert!(
                    receipt.iter().all(|r| r.positions.len() == ids.len()),
                    "{what}"
                );
            }
        }
        if index == Some(t - 1) {
            assert_ne!(
                out.generated_ids, plain.generated_ids,
                "{what} changes what is written"
            );
        }
    }
    // A position past what will exist is refused, in words.
    let run = RunRequest {
        interventions: zero("layer_0_output", Some(t + 8)),
        ..RunRequest::new(text)
    };
    let e = m
        .generate_run(&request(run, 8), &[], &Unwatched, &mut |_| Ok(()))
        .err()
        .unwrap();
    assert!(e.to_string().contains("prompt and 8 new tokens"), "{e}");
    let e = m
        .generate_run(
            &request(RunRequest::new(text), 0),
            &[],
            &Unwatched,
            &mut |_| Ok(()),
        )
        .err()
        .unwrap();
    assert!(e.to_string().contains("between 1 and 256"), "{e}");
}

#[test]
fn compare_writes_the_baseline_continuation_and_where_they_part() {
    let m = load_hooked("llama");
    let text = "Once upon a time there was";
    let t = m.tokenize(text, false).unwrap().len() as i64;
    let plain = written(&m, RunRequest::new(text), 8);
    let run = RunRequest {
        interventions: zero("blocks.1.hook_resid_post", Some(t - 1)),
        compare: true,
        ..RunRequest::new(text)
    };
    let out = written(&m, run, 8);
    let base = out.baseline.expect("a baseline continuation");
    assert_eq!(base.ids, plain.generated_ids);
    assert_eq!(base.text, plain.generated_text);
    let first = (0..8).find(|&i| out.generated_ids.get(i) != base.ids.get(i));
    assert_eq!(base.first_difference, first);
    assert!(first.is_some());
    assert!(
        out.run.answer.diff.is_some(),
        "the /inference diff over the written ids"
    );
}

#[test]
fn each_pass_hands_over_its_new_columns() {
    let m = load_tiny("qwen3");
    let text = "The capital of France is";
    let mut seen: Vec<(usize, Option<u32>, usize, usize, usize)> = Vec::new();
    let out = m
        .generate_run(
            &request(RunRequest::new(text), 4),
            &[],
            &Unwatched,
            &mut |s: &GenerationStep| {
                assert_eq!(s.tokens.len(), s.columns[0].predictions.len());
                seen.push((
                    s.index,
                    s.token.as_ref().map(|t| t.0),
                    s.start,
                    s.tokens.len(),
                    s.columns.len(),
                ));
                Ok(())
            },
        )
        .unwrap();
    let t = out.prompt_tokens;
    let n = out.generated_ids.len();
    // The prompt's pass, one pass per token after the first, and the last
    // token's pass, which chooses nothing.
    assert_eq!(seen.len(), n + 1);
    assert_eq!(seen[0].2..seen[0].2 + seen[0].3, 0..t);
    for (i, s) in seen.iter().enumerate().skip(1) {
        assert_eq!((s.2, s.3), (t + i - 1, 1));
    }
    let chosen: Vec<u32> = seen.iter().filter_map(|s| s.1).collect();
    assert_eq!(chosen, out.generated_ids);
    assert_eq!(seen.last().unwrap().1, None);
    assert!(seen.iter().all(|s| s.4 == out.run.answer.logit_lens.len()));
}

#[test]
fn compare_without_interventions_writes_the_same() {
    let m = load_tiny("llama");
    let run = RunRequest {
        compare: true,
        ..RunRequest::new("Once upon a time there was")
    };
    let out = written(&m, run, 6);
    let base = out
        .baseline
        .expect("compare always says what the baseline writes");
    assert_eq!(base.ids, out.generated_ids);
    assert_eq!(base.first_difference, None);
}
