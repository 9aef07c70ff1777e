//! Direct logit attribution: the shares match PyTorch's on the tiny llama
//! and qwen3 (tests/fixtures/research/<family>/dla_reference.json, copied
//! from the shared reference), on both backends; and on every family the
//! shares add up to the logit the forward pass computes, and a layer's
//! heads to its attention output.

mod common;

use common::*;
use logitlens_engine::hooks::InterventionPlan;
use logitlens_engine::ops::AttributionRequest;
use logitlens_engine::{InterventionConfig, Interventions, LoadedModel, RunRequest};
use serde_json::{json, Value};

fn close(got: f64, want: f64, what: &str) {
    let tol = 1e-4 * want.abs().max(1.0);
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (tolerance {tol})"
    );
}

fn attribute(m: &LoadedModel, text: &str, token: Value, position: i64) -> (Value, Vec<u32>) {
    let req = RunRequest {
        attribution: Some(AttributionRequest { token, position }),
        ..RunRequest::new(text)
    };
    let out = m.run(&req).unwrap();
    let resp = logitlens_engine::InferenceResponse::new(out.answer, &[]).unwrap();
    let v = serde_json::to_value(resp).unwrap();
    (v["attribution"].clone(), out.state.ids)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn shares_match_pytorch_on_both_backends() {
    for family in ["llama", "qwen3"] {
        let reference =
            reference_json(&fixtures().join(format!("research/{family}/dla_reference.json")));
        for m in [load_tiny(family), load_hooked(family)] {
            for prompt in reference["prompts"].as_array().unwrap() {
                let text = prompt["text"].as_str().unwrap();
                for want in prompt["attributions"].as_array().unwrap() {
                    let r = &want["request"];
                    let (got, ids) = attribute(
                        &m,
                        text,
                        r["token"].clone(),
                        r["position"].as_i64().unwrap(),
                    );
                    let what = format!("{family} {text:?} {r}");
                    assert_eq!(ids, u32s(&prompt["ids"]), "{what}");
                    assert_eq!(got["token_id"], want["token_id"], "{what}");
                    assert_eq!(got["position"], want["position"], "{what}");
                    for key in ["logit", "embed", "rest"] {
                        close(
                            got[key].as_f64().unwrap(),
                            want[key].as_f64().unwrap(),
                            &format!("{what} {key}"),
                        );
                    }
                    for key in ["attn", "mlp"] {
                        for (l, (g, w)) in
                            floats(&got[key]).iter().zip(floats(&want[key])).enumerate()
                        {
                            close(*g, w, &format!("{what} {key}[{l}]"));
                        }
                    }
                    let heads = want["heads"].as_array().unwrap();
                    assert_eq!(got["heads"].as_array().unwrap().len(), heads.len());
                    for (l, row) in heads.iter().enumerate() {
                        for (h, (g, w)) in
                            floats(&got["heads"][l]).iter().zip(floats(row)).enumerate()
                        {
                            close(*g, w, &format!("{what} heads[{l}][{h}]"));
                        }
                    }
                    assert_eq!(got["rest_parts"], json!({}), "{what}");
                }
            }
        }
    }
}

/// embed + Σattn + Σmlp + rest against the logit the model's own head
/// computes from the forward pass (f32), at two positions, on every family;
/// and the heads of a layer against its attention output where the output
/// projection has no bias.
#[test]
fn shares_sum_to_the_logit_on_every_family() {
    let text = "The capital of France is";
    for family in FAMILIES {
        let m = load_hooked(family);
        let cfg = m.config().clone();
        let n = cfg.n_layers;
        for position in [-1i64, 1] {
            let (a, ids) = attribute(&m, text, json!(7), position);
            let p = a["position"].as_u64().unwrap() as usize;
            let what = format!("{family} position {p}");
            let cap = m
                .model
                .forward(&ids, &InterventionPlan::default(), None)
                .unwrap();
            let head = m
                .model
                .unembed(&cap.resid[n].get(p).unwrap().unsqueeze(0).unwrap())
                .unwrap();
            let model_logit = f64::from(
                head.get(0)
                    .unwrap()
                    .get(7)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap(),
            );
            let logit = a["logit"].as_f64().unwrap();
            close(
                logit,
                model_logit,
                &format!("{what}: logit vs the model's head"),
            );
            let parts: f64 = a["rest_parts"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_f64().unwrap())
                .sum();
            assert!(
                (parts - a["rest"].as_f64().unwrap()).abs() < 1e-12,
                "{what}"
            );
            let sum = a["embed"].as_f64().unwrap()
                + floats(&a["attn"]).iter().sum::<f64>()
                + floats(&a["mlp"]).iter().sum::<f64>()
                + a["rest"].as_f64().unwrap();
            close(sum, logit, &format!("{what}: sum of shares"));
            let keys: Vec<&String> = a["rest_parts"].as_object().unwrap().keys().collect();
            let expect: &[&str] = match family {
                "gpt2" => &["final_norm_bias", "pos_embed"],
                "gpt_neox" => &["final_norm_bias"],
                "phi" => &["final_norm_bias", "lm_head_bias"],
                "gemma2" if cfg.final_softcap.is_some() => &["final_softcap"],
                _ => &[],
            };
            assert_eq!(keys, expect, "{what}: rest parts");
            if !cfg.o_bias {
                for l in 0..n {
                    let heads: f64 = floats(&a["heads"][l]).iter().sum();
                    close(
                        heads,
                        a["attn"][l].as_f64().unwrap(),
                        &format!("{what}: heads of layer {l}"),
                    );
                }
            }
        }
    }
}

/// A stream intervention shows as its own part of the rest, and the sum
/// still holds; blocking attention changes the heads' shares.
#[test]
fn interventions_are_accounted_for() {
    let m = load_hooked("llama");
    let mut iv = Interventions::new();
    iv.insert(
        "layer_1_output".into(),
        vec![InterventionConfig {
            kind: "scale".into(),
            value: Some(0.5),
            ..Default::default()
        }],
    );
    let req = RunRequest {
        interventions: iv,
        attribution: Some(AttributionRequest {
            token: json!(7),
            position: -1,
        }),
        ..RunRequest::new("The capital of France is")
    };
    let out = m.run(&req).unwrap();
    let a = out.answer.attribution.unwrap();
    let changed = a
        .rest_parts
        .iter()
        .find(|(k, _)| *k == "interventions")
        .expect("an interventions part")
        .1;
    assert!(changed.abs() > 1e-6, "{changed}");
    let sum = a.embed + a.attn.iter().sum::<f64>() + a.mlp.iter().sum::<f64>() + a.rest;
    close(sum, a.logit, "sum with an intervention");
}

#[test]
fn bad_tokens_and_positions_are_refused_in_words() {
    let m = load_tiny("llama");
    for (token, position, needle) in [
        (json!("capital"), -1, "tokens for this tokenizer"),
        (json!(100000), -1, "not a token id"),
        (json!(7), 40, "out of range"),
        (json!(7), -40, "out of range"),
        (json!([1]), -1, "neither a token string nor an id"),
    ] {
        let req = RunRequest {
            attribution: Some(AttributionRequest { token, position }),
            ..RunRequest::new("The capital of France is")
        };
        let e = m.run(&req).err().expect("refused").to_string();
        assert!(e.contains(needle) && e.contains("attribution"), "{e}");
    }
}
