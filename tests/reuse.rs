//! Re-runs that change only later interventions take over the earlier run's
//! states and lens rows: the answer must be identical, bit for bit, to a
//! cold run, and only the layers from the first difference on are redone.

mod common;

use common::*;
use logitlens_engine::{
    BackendKind, InferenceResponse, LoadOptions, LoadedModel, RunOutput, RunRequest, RunSpec, State,
};
use serde_json::json;

fn request(text: &str, interventions: serde_json::Value, lens: &str) -> RunRequest {
    let mut r = RunRequest::new(text);
    r.interventions = serde_json::from_value(interventions).unwrap();
    r.lens_type = lens.parse().unwrap();
    r.return_attention = true;
    r
}

fn run(m: &LoadedModel, req: &RunRequest, earlier: &[&RunOutput]) -> RunOutput {
    let ids = m.tokenize(&req.text, req.apply_chat_template).unwrap();
    let spec = RunSpec::new(m, req, ids).unwrap();
    let earlier: Vec<_> = earlier.iter().map(|r| &r.state).collect();
    m.run_spec(spec, &earlier).unwrap()
}

fn body(r: &RunOutput) -> String {
    let body = InferenceResponse::new(r.answer.clone(), &r.state.capture.patterns).unwrap();
    serde_json::to_string(&body).unwrap()
}

/// Everything a client or a saved session sees, compared exactly.
fn assert_identical(warm: &RunOutput, cold: &RunOutput, what: &str) {
    assert_eq!(body(warm), body(cold), "{what}: response body");
    let pairs = [
        (
            &warm.state.capture.resid,
            &cold.state.capture.resid,
            "resid",
        ),
        (
            &warm.state.capture.post_attn,
            &cold.state.capture.post_attn,
            "post_attn",
        ),
        (
            &warm.state.capture.attn_out,
            &cold.state.capture.attn_out,
            "attn_out",
        ),
        (
            &warm.state.capture.mlp_out,
            &cold.state.capture.mlp_out,
            "mlp_out",
        ),
        (
            &warm.state.capture.patterns,
            &cold.state.capture.patterns,
            "patterns",
        ),
    ];
    for (a, b, name) in pairs {
        assert_eq!(a.len(), b.len(), "{what}: {name} count");
        assert_eq!(flat_all(a), flat_all(b), "{what}: {name}");
    }
    assert_eq!(
        flat(&warm.state.logits),
        flat(&cold.state.logits),
        "{what}: logits"
    );
}

fn zero(layer_key: &str) -> serde_json::Value {
    json!({ layer_key: [{"type": "zero", "token_index": 2}] })
}

fn check_model(m: &LoadedModel) {
    let n = m.info().num_layers;
    assert!(n >= 3, "the fixtures have at least 3 layers");
    let text = "The capital of France is Paris, and";
    let base = run(m, &request(text, json!({}), "combined"), &[]);
    assert_eq!(base.timings.reused_layers, 0);
    let last = n - 1;
    let block = |l: usize| json!({ format!("layer_{l}_attention"): [{"type": "block_attention", "source_tokens": [1], "target_tokens": [4]}] });
    // (interventions, lens, layers expected to be reused)
    let cases: Vec<(serde_json::Value, &str, usize)> = vec![
        (zero(&format!("layer_{last}_output")), "block_output", last),
        (zero(&format!("layer_{last}_attn_output")), "combined", last),
        (
            zero(&format!("blocks.{last}.hook_mlp_out")),
            "post_attention",
            last,
        ),
        (block(1), "combined", 1),
        (
            zero(&format!("blocks.{last}.hook_resid_pre")),
            "combined",
            last - 1,
        ),
        (
            zero(&format!("blocks.{last}.hook_resid_mid")),
            "combined",
            last,
        ),
        (zero("blocks.1.hook_resid_post"), "block_output", 1),
        (json!({}), "combined", n),
        (zero("embeddings"), "combined", 0),
        (
            json!({"all_layers_output": [{"type": "scale", "value": 0.5}]}),
            "combined",
            0,
        ),
    ];
    // The web app asks for entropy too: those re-runs take over the
    // entropies with the top 5s. Tracked tokens and baselines are computed
    // afresh, but the forward pass is still taken over.
    let mut base_entropy = request(text, json!({}), "combined");
    base_entropy.entropy = true;
    let base_entropy = run(m, &base_entropy, &[]);
    for (iv, lens, reused) in cases {
        for extra in ["", "entropy", "entropy+track", "compare"] {
            let mut req = request(text, iv.clone(), lens);
            req.entropy = extra.contains("entropy");
            req.compare = extra == "compare";
            if extra.contains("track") {
                req.track_tokens = Some(vec![json!(5), json!(17)]);
            }
            let earlier = if req.entropy { &base_entropy } else { &base };
            let cold = run(m, &req, &[]);
            let warm = run(m, &req, &[earlier]);
            let what = format!("{} {iv} {lens} [{extra}]", m.name);
            assert_eq!(warm.timings.reused_layers, reused, "{what}: layers reused");
            assert_identical(&warm, &cold, &what);
            // The embeddings' lens row is taken over, not recomputed, when
            // nothing but top 5s and entropies are asked for.
            let first = |r: &RunOutput| r.state.lens_tops.get(&State::Resid(0)).cloned();
            if reused > 0 && (extra.is_empty() || extra == "entropy") {
                assert!(
                    std::sync::Arc::ptr_eq(&first(&warm).unwrap(), &first(earlier).unwrap()),
                    "{what}: lens row reused"
                );
                if req.entropy {
                    let e = |r: &RunOutput| r.state.lens_entropies[&State::Resid(0)].clone();
                    assert!(
                        std::sync::Arc::ptr_eq(&e(&warm), &e(earlier)),
                        "{what}: entropies reused"
                    );
                }
            }
        }
    }

    // Chains: a run warmed from a warm run is still exact, and the best
    // earlier run (the longest agreement) is picked.
    let late = request(text, zero(&format!("layer_{last}_output")), "combined");
    let early = request(text, zero("layer_0_output"), "combined");
    let r_early = run(m, &early, &[]);
    let r_late = run(m, &late, &[&r_early, &base]);
    assert_eq!(r_late.timings.reused_layers, last);
    let both = request(
        text,
        json!({"layer_0_output": [{"type": "zero", "token_index": 2}],
               format!("layer_{last}_attn_output"): [{"type": "scale", "value": 2.0}]}),
        "combined",
    );
    let warm = run(m, &both, &[&base, &r_early, &r_late]);
    assert_eq!(
        warm.timings.reused_layers, last,
        "picked the run zeroing layer 0"
    );
    assert_identical(&warm, &run(m, &both, &[]), "chained");

    // Other ids, or another model's run, are never taken over.
    let other = run(
        m,
        &request("Another text entirely", json!({}), "combined"),
        &[&base],
    );
    assert_eq!(other.timings.reused_layers, 0);
}

#[test]
fn custom_backend_reruns_are_exact() {
    for family in ["llama", "qwen3"] {
        check_model(&load_tiny(family));
    }
}

#[test]
fn hooked_backend_reruns_are_exact() {
    for family in ["gpt2", "gemma2", "gpt_neox"] {
        let m = LoadedModel::load_with(
            tiny(family).to_str().unwrap(),
            LoadOptions {
                backend: BackendKind::Hooked,
                ..Default::default()
            },
            &mut |_| {},
        )
        .unwrap();
        check_model(&m);
    }
}

#[test]
fn another_models_runs_are_not_taken_over() {
    let a = load_tiny("llama");
    let b = load_tiny("llama");
    let req = request("Same text, same weights", json!({}), "block_output");
    let base = run(&a, &req, &[]);
    let r = run(&b, &req, &[&base]);
    assert_eq!(
        r.timings.reused_layers, 0,
        "a different load is a different model"
    );
}
