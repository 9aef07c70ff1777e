//! The real default model, SmolLM2-135M-Instruct (Q4_1 GGUF), against
//! transformers on the same dequantized weights (fixtures/smollm2) and
//! against the original tool's answers. They need the GGUF, so a plain
//! `cargo test` lists them as ignored; scripts/test.sh fetches it and runs
//! them with `--include-ignored`, where a missing file fails.

mod common;

use std::sync::OnceLock;

use common::*;
use logitlens_engine::{
    ComputeDtype, InferenceRequest, InferenceResponse, LensType, LoadOptions, LoadedModel,
    RunRequest, RunSpec, WeightsMode,
};

fn model() -> &'static LoadedModel {
    static M: OnceLock<LoadedModel> = OnceLock::new();
    M.get_or_init(|| {
        let p = smollm2_gguf();
        LoadedModel::load(p.to_str().unwrap(), &mut |_| {}).expect("load SmolLM2 GGUF")
    })
}

fn fixture(name: &str) -> std::path::PathBuf {
    fixtures().join("smollm2").join(name)
}

#[test]
#[ignore = "needs the default GGUF: logitlens fetch-model"]
fn tokenizer_ids_equal_the_models_own_tokenizer() {
    let m = model();
    let r = reference_json(&fixture("reference.json"));
    for p in r["prompts"].as_array().unwrap() {
        let text = p["text"].as_str().unwrap();
        let want: Vec<u32> = p["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(m.tokenizer.encode(text, true).unwrap(), want, "{text:?}");
        let tokens: Vec<String> = want
            .iter()
            .map(|&i| m.tokenizer.decode_one(i).unwrap())
            .collect();
        let want_tokens: Vec<&str> = p["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(tokens, want_tokens, "{text:?}");
    }
    // Digits split one by one, emoji and accents survive a round trip.
    for text in [
        "12345 2024",
        "naïve café 🙂🎉",
        "日本語のテキスト",
        "line\nbreak\ttab",
    ] {
        let ids = m.tokenizer.encode(text, true).unwrap();
        assert_eq!(m.tokenizer.tokenizer.decode(&ids, false).unwrap(), text);
    }
    let digits = m.tokenizer.encode("2024", true).unwrap();
    assert_eq!(digits.len(), 4, "SmolLM2 splits digits individually");
}

#[test]
#[ignore = "needs the default GGUF: logitlens fetch-model"]
fn lens_matches_transformers_within_1e4() {
    let m = model();
    let r = reference_json(&fixture("reference.json"));
    let mut npz = Npz::open(&fixture("reference.npz"));
    for (i, p) in r["prompts"].as_array().unwrap().iter().enumerate() {
        let out = m
            .run(&RunRequest::new(p["text"].as_str().unwrap()))
            .unwrap();
        let ids = npz.i64(&format!("p{i}_ids"));
        assert_eq!(
            out.state.ids.iter().map(|&x| x as i64).collect::<Vec<_>>(),
            ids.iter().copied().collect::<Vec<_>>()
        );
        let top_ids = npz.i64(&format!("p{i}_lens_top5_ids"));
        let top_probs = npz.f32(&format!("p{i}_lens_top5_probs"));
        let rows = &out.answer.logit_lens;
        assert_eq!(rows.len(), 31);
        for (r, row) in rows.iter().enumerate() {
            for (t, preds) in row.predictions.iter().enumerate() {
                for (k, pr) in preds.iter().enumerate() {
                    let d = (pr.prob as f32 - top_probs[[r, t, k]]).abs();
                    assert!(
                        d <= 1e-4,
                        "p{i} row {r} pos {t} rank {k}: prob off by {d:e}"
                    );
                    // Equal ids, except where two candidates are within the
                    // tolerance of each other and may swap places.
                    if pr.id as i64 != top_ids[[r, t, k]] {
                        let other = preds.iter().find(|q| q.id as i64 == top_ids[[r, t, k]]);
                        let close = other.is_some_and(|q| (q.prob - pr.prob).abs() <= 1e-4);
                        assert!(
                            close,
                            "p{i} row {r} pos {t} rank {k}: id {} vs reference {}",
                            pr.id,
                            top_ids[[r, t, k]]
                        );
                    }
                }
            }
        }
        let last = npz.f32(&format!("p{i}_logits_last"));
        let t = out.state.ids.len();
        let got = flat(&out.state.logits.narrow(0, t - 1, 1).unwrap());
        assert_close(
            &format!("p{i} last logits"),
            &got,
            last.as_slice().unwrap(),
            1e-4,
        );
    }
}

fn parity(m: &LoadedModel) -> (usize, f64, f64, f64, Vec<String>) {
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fixture("upstream_cases.json")).unwrap())
            .unwrap();
    let (mut cells, mut top1_equal) = (0usize, 0usize);
    let (mut overlap_sum, mut dp_sum) = (0.0f64, 0.0f64);
    let mut final_cell_failures = Vec::new();
    for case in &cases {
        let name = case["request"]["name"].as_str().unwrap();
        let wire: InferenceRequest = serde_json::from_value(case["request"].clone()).unwrap();
        let req = RunRequest::from(wire);
        if name == "block_all_layers" {
            // Fixed bug: target token 5 of a 5-token prompt was silently
            // ignored by the original; now it is a clear error.
            let e = m
                .run(&req)
                .err()
                .expect("out-of-range target must be refused")
                .to_string();
            assert!(
                e.contains("target_tokens 5") && e.contains("5-token"),
                "{e}"
            );
            continue;
        }
        let out = m.run(&req).unwrap();
        let ours_attention = out.attention().unwrap();
        let ours = out.answer;
        let theirs = &case["response"];
        let their_tokens: Vec<&str> = theirs["input_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(ours.input_tokens, their_tokens, "{name}: input tokens");
        let their_rows = theirs["logit_lens"].as_array().unwrap();
        assert_eq!(ours.logit_lens.len(), their_rows.len(), "{name}: rows");
        for (r, (row, their)) in ours.logit_lens.iter().zip(their_rows).enumerate() {
            assert_eq!(
                row.layer_name,
                their["layer_name"].as_str().unwrap(),
                "{name}"
            );
            let their_preds = their["predictions"].as_array().unwrap();
            assert_eq!(row.predictions.len(), their_preds.len());
            for (t, (preds, tp)) in row.predictions.iter().zip(their_preds).enumerate() {
                let tp = tp.as_array().unwrap();
                let their_ids: Vec<u64> = tp.iter().map(|p| p["id"].as_u64().unwrap()).collect();
                let overlap = preds
                    .iter()
                    .filter(|p| their_ids.contains(&(p.id as u64)))
                    .count();
                let dp = (preds[0].prob - tp[0]["prob"].as_f64().unwrap()).abs();
                // A uniform (zeroed) row ties every id: torch's order is arbitrary.
                let tie = preds[0].prob == preds[4].prob;
                cells += 1;
                top1_equal += usize::from(preds[0].id as u64 == their_ids[0] || tie);
                overlap_sum += overlap as f64 / 5.0;
                dp_sum += dp;
                let final_cell = r + 1 == their_rows.len() && t + 1 == their_preds.len();
                if final_cell && (preds[0].id as u64 != their_ids[0] || dp >= 0.01 || overlap < 4) {
                    final_cell_failures.push(format!(
                        "{name}: top-1 {} vs {}, dp {dp:.4}, overlap {overlap}/5",
                        preds[0].id, their_ids[0]
                    ));
                }
            }
        }
        if let Some(att) = theirs.get("attention") {
            let theirs_att: Vec<Vec<Vec<Vec<f32>>>> = serde_json::from_value(att.clone()).unwrap();
            let a: Vec<f32> = ours_attention
                .as_ref()
                .expect("attention asked for")
                .as_nested()
                .expect("the nested form")
                .iter()
                .flatten()
                .flatten()
                .flatten()
                .copied()
                .collect();
            let b: Vec<f32> = theirs_att
                .iter()
                .flatten()
                .flatten()
                .flatten()
                .copied()
                .collect();
            assert_close(&format!("{name} attention"), &a, &b, 0.01);
        }
    }
    let n = cells as f64;
    (
        cells,
        top1_equal as f64 / n,
        overlap_sum / n,
        dp_sum / n,
        final_cell_failures,
    )
}

/// The original tool's answers to cases.json (its parity bar: top-1 equal,
/// top-5 overlap >= 90%, |dprob| < 0.01). The original loaded weights through
/// float16 (`torch_dtype=float16`); loading the same way, we meet that bar
/// on every cell of every row, not just the final cell its script checked.
#[test]
#[ignore = "needs the default GGUF: logitlens fetch-model"]
fn upstream_cases_match_the_original_when_loaded_as_it_did() {
    let p = smollm2_gguf();
    let opts = LoadOptions {
        emulate_f16_load: true,
        ..Default::default()
    };
    let m = LoadedModel::load_with(p.to_str().unwrap(), opts, &mut |_| {}).unwrap();
    let (cells, agree, overlap, dp, finals) = parity(&m);
    eprintln!("f16-loaded SmolLM2 vs original over {cells} cells: top-1 {agree:.4}, top-5 overlap {overlap:.4}, mean |dp| {dp:.6}");
    assert_eq!(agree, 1.0, "top-1 must agree on every cell");
    assert!(overlap >= 0.99, "top-5 overlap {overlap}");
    assert!(dp < 1e-3, "mean |dp| {dp}");
    assert!(finals.is_empty(), "{finals:?}");
}

/// With the exact dequantized weights (our default) the original's bar still
/// holds on its final cells, except `all_layers_output_scale`, where halving
/// the residual 30 times amplifies the original's float16 rounding (the test
/// above shows it vanishes under the same rounding).
#[test]
#[ignore = "needs the default GGUF: logitlens fetch-model"]
fn upstream_cases_meet_the_parity_bar_with_exact_weights() {
    let m = model();
    let (cells, agree, overlap, dp, finals) = parity(m);
    eprintln!("SmolLM2 vs original over {cells} cells: top-1 {agree:.4}, top-5 overlap {overlap:.4}, mean |dp| {dp:.5}; final cells off: {finals:?}");
    assert!(agree >= 0.99, "top-1 agreement {agree:.4} < 0.99");
    assert!(overlap >= 0.9, "mean top-5 overlap {overlap:.4} < 0.9");
    assert!(dp < 0.01, "mean |dprob| {dp:.5} >= 0.01");
    assert!(
        finals
            .iter()
            .all(|f| f.starts_with("all_layers_output_scale:")),
        "{finals:?}"
    );
}

/// The hooked backend on the same GGUF agrees with the custom one on every
/// request of cases.json: same rows and top-5, probabilities within 1e-5.
#[test]
#[ignore = "needs the default GGUF: logitlens fetch-model"]
fn hooked_backend_agrees_with_custom_on_the_gguf() {
    let custom = model();
    let p = smollm2_gguf();
    let opts = LoadOptions {
        backend: logitlens_engine::BackendKind::Hooked,
        ..Default::default()
    };
    let hooked = LoadedModel::load_with(p.to_str().unwrap(), opts, &mut |_| {}).unwrap();
    assert_eq!(hooked.info().model_class, "HookedTransformer");
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("cases.json")).unwrap())
            .unwrap();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let wire: InferenceRequest = serde_json::from_value(case.clone()).unwrap();
        let req = RunRequest::from(wire);
        let (a, b) = (custom.run(&req), hooked.run(&req));
        match (a, b) {
            (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string(), "{name}"),
            (Ok(a), Ok(b)) => {
                assert_eq!(a.answer.input_tokens, b.answer.input_tokens, "{name}");
                assert_eq!(
                    a.answer.logit_lens.len(),
                    b.answer.logit_lens.len(),
                    "{name}"
                );
                for (ra, rb) in a.answer.logit_lens.iter().zip(&b.answer.logit_lens) {
                    assert_eq!(ra.layer_name, rb.layer_name);
                    for (pa, pb) in ra.predictions.iter().zip(&rb.predictions) {
                        for (x, y) in pa.iter().zip(pb) {
                            assert_eq!(x.id, y.id, "{name} {}", ra.layer_name);
                            assert!(
                                (x.prob - y.prob).abs() <= 1e-5,
                                "{name} {}: {} vs {}",
                                ra.layer_name,
                                x.prob,
                                y.prob
                            );
                        }
                    }
                }
                let nested = |r: &logitlens_engine::RunOutput| {
                    r.attention().unwrap().and_then(|a| a.as_nested())
                };
                if let (Some(x), Some(y)) = (nested(&a), nested(&b)) {
                    let fx: Vec<f32> = x.iter().flatten().flatten().flatten().copied().collect();
                    let fy: Vec<f32> = y.iter().flatten().flatten().flatten().copied().collect();
                    assert_close(&format!("{name} attention"), &fx, &fy, 1e-5);
                }
            }
            (a, b) => panic!(
                "{name}: custom {:?} vs hooked {:?}",
                a.err().map(|e| e.to_string()),
                b.err().map(|e| e.to_string())
            ),
        }
    }
}

/// A re-run changing only layer 20's output (two thirds of 30 layers) takes
/// over layers 0-19 and their lens rows, and answers exactly as a cold run:
/// on the real vocabulary the lens projection is split in chunks differently
/// between the two, so this also pins that a state's logits do not depend on
/// which other states share its matrix product.
#[test]
#[ignore = "needs the default GGUF: logitlens fetch-model"]
fn rerun_from_layer_20_is_identical_to_a_cold_run() {
    let m = model();
    let mut base = RunRequest::new("The capital of France is Paris. The capital of Italy is");
    base.lens_type = logitlens_engine::LensType::Combined;
    base.return_attention = true;
    let mut req = base.clone();
    req.interventions = serde_json::from_value(serde_json::json!({
        "layer_20_output": [{"type": "scale", "value": 0.5, "token_index": -1}]
    }))
    .unwrap();
    let ids = m.tokenize(&base.text, false).unwrap();
    let spec = |r: &RunRequest| RunSpec::new(m, r, ids.clone()).unwrap();
    let first = m.run_spec(spec(&base), &[]).unwrap();
    let cold = m.run_spec(spec(&req), &[]).unwrap();
    let warm = m.run_spec(spec(&req), &[&first.state]).unwrap();
    assert_eq!(warm.timings.reused_layers, 20);
    let body = |r: &logitlens_engine::RunOutput| {
        let body = InferenceResponse::new(r.answer.clone(), &r.state.capture.patterns).unwrap();
        serde_json::to_string(&body).unwrap()
    };
    assert_eq!(body(&warm), body(&cold));
    assert_eq!(flat(&warm.state.logits), flat(&cold.state.logits));
    assert_eq!(
        flat_all(&warm.state.capture.resid),
        flat_all(&cold.state.capture.resid)
    );
}

/// GGUF blocks kept as stored against the same file widened to f32: the
/// lens agrees (the products see the same dequantized values; only the
/// order of the sums differs).
#[test]
#[ignore = "needs the default GGUF: logitlens fetch-model"]
fn quantized_blocks_kept_as_stored_agree_with_their_f32_run() {
    let path = smollm2_gguf();
    let load = |weights| {
        let opts = LoadOptions {
            dtype: ComputeDtype::F32,
            weights,
            ..Default::default()
        };
        LoadedModel::load_with(path.to_str().unwrap(), opts, &mut |_| {}).unwrap()
    };
    let (wide, stored) = (load(WeightsMode::F32), load(WeightsMode::Stored));
    assert_eq!(stored.weights_info().form, "stored");
    assert!(
        stored.weights_info().kinds.contains("Q4_1"),
        "{:?}",
        stored.weights_info()
    );
    assert!(stored.weights_info().resident_bytes * 4 < wide.weights_info().resident_bytes);
    let text = "The quick brown fox jumps over the lazy dog. The capital of France is Paris, \
                and the capital of Germany is Berlin.";
    let req = RunRequest {
        lens_type: LensType::Combined,
        ..RunRequest::new(text)
    };
    let a = wide.run(&req).unwrap().answer.logit_lens;
    let b = stored.run(&req).unwrap().answer.logit_lens;
    let (top1, overlap, worst) = agreement(&a, &b);
    let cells: usize = a.iter().map(|r| r.predictions.len()).sum();
    eprintln!(
        "{cells} cells: top-1 equal {top1:.4}, top-5 overlap {overlap:.4}, max |Δprob| {worst:.2e}"
    );
    assert!(top1 >= 0.99 && overlap >= 0.95 && worst <= 0.01);
}

/// Generation with the chat template answers "What is the capital of
/// France?" with Paris; zeroing every layer's MLP output at the last prompt
/// token changes what it writes (and compare says from where).
#[test]
#[ignore = "needs the default GGUF: logitlens fetch-model"]
fn generation_answers_paris_and_an_mlp_ablation_changes_it() {
    use logitlens_engine::ops::generate::GenerationRequest;
    use logitlens_engine::watch::Unwatched;
    use logitlens_engine::{InterventionConfig, Interventions};

    let m = model();
    let ask = |interventions: Interventions, compare: bool| {
        let req = GenerationRequest {
            run: RunRequest {
                apply_chat_template: true,
                interventions,
                compare,
                ..RunRequest::new("What is the capital of France?")
            },
            max_new_tokens: 16,
            stop_at_eos: true,
        };
        m.generate_run(&req, &[], &Unwatched, &mut |_| Ok(()))
            .unwrap()
    };
    let plain = ask(Interventions::new(), false);
    assert!(
        plain.generated_text.contains("Paris"),
        "{:?}",
        plain.generated_text
    );
    assert!(plain.stopped_at_eos, "{:?}", plain.generated_text);
    assert_eq!(
        m.eos_ids().last(),
        plain.generated_ids.last(),
        "the eos token is kept"
    );

    let mut zero_mlps = Interventions::new();
    zero_mlps.insert(
        "all_layers_mlp_output".into(),
        vec![InterventionConfig {
            kind: "zero".into(),
            token_index: Some(-1),
            ..Default::default()
        }],
    );
    let ablated = ask(zero_mlps, true);
    assert_ne!(ablated.generated_ids, plain.generated_ids);
    let base = ablated.baseline.expect("compare writes the baseline");
    assert_eq!(base.ids, plain.generated_ids);
    assert_eq!(
        base.first_difference,
        Some(0),
        "{:?}",
        ablated.generated_text
    );
    // One receipt per layer, at the last prompt token only.
    let last = ablated.prompt_tokens - 1;
    assert_eq!(ablated.run.answer.receipts.len(), m.config().n_layers);
    assert!(ablated
        .run
        .answer
        .receipts
        .iter()
        .all(|r| r.positions == [last]));
}
