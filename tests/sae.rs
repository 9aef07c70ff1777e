//! Sparse autoencoders against SAELens 6.54 (tests/fixtures/research/sae,
//! copied from the shared reference; its README says how they were made):
//! three SAEs per tiny model (standard at a block output with b_dec
//! applied to the input, JumpReLU at an MLP output, TopK with decoder-norm
//! rescaling at a block input) read every position's active features with
//! their activations, L0 and reconstruction error (within 1e-4·max(1, |x|));
//! splice, ablate and steer give SAELens's final output (top-5 within
//! 1e-4); a feature's top tokens by W_dec·W_U are SAELens's; an exact SAE
//! attaches at every hook of every family and reads the hook's state;
//! what cannot be read or applied is refused in words.

mod common;

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use common::*;
use logitlens_engine::hooks::{InterventionConfig, Interventions};
use logitlens_engine::ops::sae::{feature_tokens, SaeReadout, SaeSelection};
use logitlens_engine::sae::{Architecture, Normalize, Sae, SaeOptions, SaeSettings, SaeTensors};
use logitlens_engine::{LoadedModel, RunRequest};
use serde_json::Value;

const FAMILIES: [&str; 2] = ["llama", "qwen3"];

fn sae_dir(family: &str, name: &str) -> PathBuf {
    fixtures().join("research/sae").join(family).join(name)
}

fn reference(family: &str) -> Value {
    reference_json(&fixtures().join(format!("research/sae/{family}/reference.json")))
}

/// The model with its three reference SAEs attached.
fn with_saes(family: &str, r: &Value) -> LoadedModel {
    let m = load_tiny(family);
    let saes = r["saes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let name = s["name"].as_str().unwrap();
            Sae::read(&sae_dir(family, name), &SaeOptions::default()).unwrap()
        })
        .collect();
    m.attach_saes(saes).unwrap();
    m
}

fn read(
    m: &LoadedModel,
    text: &str,
    name: &str,
    iv: Interventions,
) -> (Vec<u32>, SaeReadout, Vec<logitlens_engine::LensRow>) {
    let out = m
        .run(&RunRequest {
            sae: Some(SaeSelection::Names(vec![name.into()])),
            sae_top_k: Some(0),
            interventions: iv,
            ..RunRequest::new(text)
        })
        .unwrap();
    let mut saes = out.answer.sae.unwrap();
    (out.state.ids.clone(), saes.remove(0), out.answer.logit_lens)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-4 * b.abs().max(1.0)
}

#[test]
fn the_saelens_folders_read_as_saved() {
    for family in FAMILIES {
        let r = reference(family);
        for s in r["saes"].as_array().unwrap() {
            let name = s["name"].as_str().unwrap();
            let sae = Sae::read(&sae_dir(family, name), &SaeOptions::default()).unwrap();
            assert_eq!(sae.name, name);
            assert_eq!(sae.hook.to_string(), s["hook"].as_str().unwrap());
            assert_eq!(
                sae.settings.architecture.name(),
                s["architecture"].as_str().unwrap()
            );
            assert_eq!((sae.d_in(), sae.d_sae()), (64, 256));
            assert_eq!(sae.dtype(), DType::F32);
            assert_eq!(sae.bytes(), 2 * 64 * 256 * 4 + 4 * (3 * 256 + 64));
        }
        let topk = Sae::read(&sae_dir(family, "topk_resid_pre_2"), &SaeOptions::default()).unwrap();
        assert_eq!(
            topk.settings.architecture,
            Architecture::TopK {
                k: 12,
                rescale: true
            }
        );
        let relu = Sae::read(
            &sae_dir(family, "relu_resid_post_1"),
            &SaeOptions::default(),
        )
        .unwrap();
        assert!(relu.settings.apply_b_dec_to_input);
        let jump = Sae::read(
            &sae_dir(family, "jumprelu_mlp_out_0"),
            &SaeOptions::default(),
        )
        .unwrap();
        assert!(!jump.settings.apply_b_dec_to_input);
    }
}

#[test]
fn features_are_saelens_s() {
    for family in FAMILIES {
        let r = reference(family);
        let m = with_saes(family, &r);
        for s in r["saes"].as_array().unwrap() {
            let name = s["name"].as_str().unwrap();
            for p in s["prompts"].as_array().unwrap() {
                let (ids, got, _) =
                    read(&m, p["text"].as_str().unwrap(), name, Interventions::new());
                let want_ids: Vec<u32> = serde_json::from_value(p["ids"].clone()).unwrap();
                assert_eq!(ids, want_ids, "{family} {name}");
                assert_eq!(got.hook, s["hook"].as_str().unwrap());
                for (t, pos) in got.positions.iter().enumerate() {
                    let want = p["active"][t].as_array().unwrap();
                    let want: Vec<(u32, f64)> = want
                        .iter()
                        .map(|f| (f[0].as_u64().unwrap() as u32, f[1].as_f64().unwrap()))
                        .collect();
                    let got_ids: Vec<u32> = pos.features.iter().map(|f| f.id).collect();
                    let want_set: Vec<u32> = want.iter().map(|w| w.0).collect();
                    assert_eq!(
                        got_ids.len(),
                        want_set.len(),
                        "{family} {name} pos {t}: {got_ids:?} vs {want_set:?}"
                    );
                    for f in &pos.features {
                        let w = want.iter().find(|w| w.0 == f.id);
                        let w = w.unwrap_or_else(|| {
                            panic!(
                                "{family} {name} pos {t}: feature {} ({}) is not SAELens's",
                                f.id, f.act
                            )
                        });
                        assert!(
                            close(f.act as f64, w.1),
                            "{family} {name} pos {t} #{}: {} vs {}",
                            f.id,
                            f.act,
                            w.1
                        );
                    }
                    assert_eq!(pos.l0 as u64, p["l0"][t].as_u64().unwrap());
                    let e = p["recon_error"][t].as_f64().unwrap();
                    assert!(
                        close(pos.recon_error as f64, e),
                        "{family} {name} pos {t}: error {} vs {e}",
                        pos.recon_error
                    );
                }
            }
        }
    }
}

/// The Final Output row against a reference `{ids [T][5], probs [T][5]}`.
fn compare_output(what: &str, rows: &[logitlens_engine::LensRow], want: &Value) {
    let last = rows.last().unwrap();
    for (t, cell) in last.predictions.iter().enumerate() {
        for (k, pred) in cell.iter().enumerate() {
            let id = want["ids"][t][k].as_u64().unwrap() as u32;
            let prob = want["probs"][t][k].as_f64().unwrap();
            if pred.id != id {
                // Near-equal probabilities may swap.
                let other = cell.iter().find(|c| c.id == id).map(|c| c.prob);
                assert!(
                    other.is_some_and(|o| (o - prob).abs() < 1e-5),
                    "{what} pos {t} rank {k}: {} vs {id}",
                    pred.id
                );
                continue;
            }
            assert!(
                (pred.prob - prob).abs() <= 1e-4,
                "{what} pos {t} rank {k}: {} vs {prob}",
                pred.prob
            );
        }
    }
}

fn op(kind: &str, sae: &str, feature: Option<u32>, value: Option<f64>) -> InterventionConfig {
    InterventionConfig {
        kind: kind.into(),
        sae: Some(sae.into()),
        feature,
        value,
        ..Default::default()
    }
}

#[test]
fn splice_ablate_and_steer_are_saelens_s() {
    for family in FAMILIES {
        let r = reference(family);
        let m = with_saes(family, &r);
        let steer = r["steer_value"].as_f64().unwrap();
        for s in r["saes"].as_array().unwrap() {
            let (name, hook) = (s["name"].as_str().unwrap(), s["hook"].as_str().unwrap());
            for p in s["prompts"].as_array().unwrap() {
                let text = p["text"].as_str().unwrap();
                let f = p["feature"].as_u64().unwrap() as u32;
                let (_, _, plain) = read(&m, text, name, Interventions::new());
                compare_output(&format!("{family} {name} plain"), &plain, &p["plain"]);
                for (what, cfg) in [
                    ("splice", op("sae_splice", name, None, None)),
                    ("ablate", op("sae_ablate", name, Some(f), None)),
                    ("steer", op("sae_steer", name, Some(f), Some(steer))),
                ] {
                    let mut iv = Interventions::new();
                    iv.insert(hook.into(), vec![cfg]);
                    let out = m
                        .run(&RunRequest {
                            interventions: iv,
                            ..RunRequest::new(text)
                        })
                        .unwrap();
                    compare_output(
                        &format!("{family} {name} {what}"),
                        &out.answer.logit_lens,
                        &p[what],
                    );
                    let receipts = &out.answer.receipts;
                    assert_eq!(receipts.len(), 1, "{what}");
                    assert_eq!(receipts[0].hook, hook);
                    assert_eq!(
                        receipts[0].positions.len(),
                        p["ids"].as_array().unwrap().len()
                    );
                }
            }
        }
    }
}

#[test]
fn a_feature_says_what_saelens_says() {
    for family in FAMILIES {
        let r = reference(family);
        let m = with_saes(family, &r);
        for s in r["saes"].as_array().unwrap() {
            let sae = m.sae(s["name"].as_str().unwrap()).unwrap();
            for p in s["prompts"].as_array().unwrap() {
                let f = p["feature"].as_u64().unwrap() as u32;
                let said = feature_tokens(&m, &sae, &[f], 5).unwrap().remove(0);
                let ids: Vec<u64> = said.top_tokens.iter().map(|t| t.id as u64).collect();
                let want: Vec<u64> =
                    serde_json::from_value(p["feature_logit_lens_top5"].clone()).unwrap();
                assert_eq!(ids, want, "{family} {} #{f}", sae.name);
                assert!(said.top_tokens.windows(2).all(|w| w[0].value >= w[1].value));
                assert!(said
                    .bottom_tokens
                    .windows(2)
                    .all(|w| w[0].value <= w[1].value));
                assert!(said.bottom_tokens[0].value <= said.top_tokens[4].value);
            }
        }
    }
}

/// An SAE with `W_enc = [I | −I]`, `W_dec = [I; −I]`, no biases: its
/// features are `relu(±x)` and it reconstructs `x` exactly.
fn exact(d: usize, hook: &str) -> Sae {
    let eye = Tensor::eye(d, DType::F32, &Device::Cpu).unwrap();
    let w_enc = Tensor::cat(&[&eye, &eye.neg().unwrap()], 1).unwrap();
    let w_dec = Tensor::cat(&[&eye, &eye.neg().unwrap()], 0).unwrap();
    let settings = SaeSettings {
        architecture: Architecture::Standard,
        d_in: d,
        d_sae: 2 * d,
        hook: hook.into(),
        apply_b_dec_to_input: true,
        normalize: Normalize::None,
        center_input: false,
        enc_scale: 1.0,
        dec_scale: 1.0,
        model_name: None,
        format: "saelens",
        notes: vec![],
    };
    let t = SaeTensors {
        w_enc,
        w_dec,
        b_enc: vec![0.0; 2 * d],
        b_dec: vec![0.0; d],
        threshold: None,
    };
    Sae::from_parts(format!("exact {hook}"), "test".into(), settings, t).unwrap()
}

#[test]
fn every_family_reads_an_sae_at_every_hook() {
    for family in common::FAMILIES {
        let m = load_hooked(family);
        let cfg = m.config().clone();
        let mut hooks = vec!["hook_embed".to_string()];
        if cfg.has_pos_embed() {
            hooks.push("hook_pos_embed".into());
        }
        for l in 0..cfg.n_layers {
            for h in [
                "hook_resid_pre",
                "hook_resid_mid",
                "hook_attn_out",
                "hook_mlp_out",
                "hook_resid_post",
            ] {
                hooks.push(format!("blocks.{l}.{h}"));
            }
        }
        let saes: Vec<Sae> = hooks.iter().map(|h| exact(cfg.d_model, h)).collect();
        m.attach_saes(saes).unwrap();
        let text = "The capital of France is";
        let plain = m.run(&RunRequest::new(text)).unwrap();
        let out = m
            .run(&RunRequest {
                sae: Some(SaeSelection::All(true)),
                sae_top_k: Some(0),
                ..RunRequest::new(text)
            })
            .unwrap();
        let readouts = out.answer.sae.unwrap();
        assert_eq!(readouts.len(), hooks.len());
        let cap = &plain.state.capture;
        let t = plain.state.ids.len();
        for (hook, r) in hooks.iter().zip(&readouts) {
            assert_eq!(&r.hook, hook);
            assert_eq!(r.positions.len(), t, "{family} {hook}");
            // The state the hook holds, from the plain run's capture.
            let state: Option<&Tensor> = match hook.split('.').collect::<Vec<_>>()[..] {
                ["blocks", l, "hook_resid_pre"] => Some(&cap.resid[l.parse::<usize>().unwrap()]),
                ["blocks", l, "hook_resid_post"] => {
                    Some(&cap.resid[l.parse::<usize>().unwrap() + 1])
                }
                ["blocks", l, "hook_resid_mid"] => {
                    Some(&cap.post_attn[l.parse::<usize>().unwrap()])
                }
                ["blocks", l, "hook_attn_out"] => Some(&cap.attn_out[l.parse::<usize>().unwrap()]),
                ["blocks", l, "hook_mlp_out"] => Some(&cap.mlp_out[l.parse::<usize>().unwrap()]),
                _ => None,
            };
            let rows: Vec<Vec<f32>> = match state {
                Some(s) => s.to_dtype(DType::F32).unwrap().to_vec2().unwrap(),
                None if !cfg.has_pos_embed() && hook == "hook_embed" => cap.resid[0]
                    .to_dtype(DType::F32)
                    .unwrap()
                    .to_vec2()
                    .unwrap(),
                None => continue,
            };
            for (t, (pos, x)) in r.positions.iter().zip(&rows).enumerate() {
                let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt();
                assert!(
                    pos.recon_error <= 1e-5 * norm.max(1.0),
                    "{family} {hook} pos {t}: {}",
                    pos.recon_error
                );
                for f in &pos.features {
                    let (i, sign) = if (f.id as usize) < cfg.d_model {
                        (f.id as usize, 1.0)
                    } else {
                        (f.id as usize - cfg.d_model, -1.0)
                    };
                    assert!(
                        (f.act - sign * x[i]).abs() <= 1e-5 * x[i].abs().max(1.0),
                        "{family} {hook} pos {t} #{}",
                        f.id
                    );
                }
                assert_eq!(
                    pos.l0,
                    x.iter().filter(|v| **v != 0.0).count(),
                    "{family} {hook} pos {t}"
                );
            }
        }
        // A splice through an exact SAE changes nothing, and a steer of
        // feature i by c is `add` of c·e_i at the same key.
        for hook in ["blocks.1.hook_resid_pre", "blocks.1.hook_resid_mid"] {
            let name = format!("exact {hook}");
            let run = |cfg: InterventionConfig| {
                let mut iv = Interventions::new();
                iv.insert(hook.into(), vec![cfg]);
                m.run(&RunRequest {
                    interventions: iv,
                    ..RunRequest::new(text)
                })
                .unwrap()
                .answer
                .logit_lens
            };
            let spliced = run(op("sae_splice", &name, None, None));
            let (a, b) = (
                spliced.last().unwrap(),
                plain.answer.logit_lens.last().unwrap(),
            );
            for (x, y) in a.predictions.iter().zip(&b.predictions) {
                assert_eq!(x[0].id, y[0].id, "{family} {hook}");
                assert!((x[0].prob - y[0].prob).abs() < 1e-5, "{family} {hook}");
            }
            let mut e = vec![0.0; cfg.d_model];
            e[3] = 2.5;
            let steered = run(op("sae_steer", &name, Some(3), Some(2.5)));
            let added = run(InterventionConfig {
                kind: "add".into(),
                vector: Some(e),
                ..Default::default()
            });
            // The SAE adds in f32, `add` in the model's dtype (f64 here).
            for (a, b) in steered.iter().zip(&added) {
                for (x, y) in a.predictions.iter().zip(&b.predictions) {
                    for (p, q) in x.iter().zip(y) {
                        assert!(
                            p.id == q.id && (p.prob - q.prob).abs() < 1e-6,
                            "{family} {hook} {}",
                            a.layer_name
                        );
                    }
                }
            }
        }
    }
}

fn refusal(m: &LoadedModel, key: &str, cfg: InterventionConfig) -> String {
    let mut iv = Interventions::new();
    iv.insert(key.into(), vec![cfg]);
    m.run(&RunRequest {
        interventions: iv,
        ..RunRequest::new("Hello there")
    })
    .err()
    .unwrap()
    .to_string()
}

#[test]
fn what_cannot_be_read_or_applied_is_refused_in_words() {
    let m = load_tiny("llama");
    let relu = || {
        Sae::read(
            &sae_dir("llama", "relu_resid_post_1"),
            &SaeOptions::default(),
        )
        .unwrap()
    };
    // Nothing attached.
    let e = refusal(
        &m,
        "blocks.1.hook_resid_post",
        op("sae_splice", "relu_resid_post_1", None, None),
    );
    assert!(e.contains("none is attached"), "{e}");
    let e = m
        .run(&RunRequest {
            sae: Some(SaeSelection::All(true)),
            ..RunRequest::new("Hi")
        })
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("none is attached"), "{e}");
    let e = m
        .run(&RunRequest {
            sae_top_k: Some(3),
            ..RunRequest::new("Hi")
        })
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("sae_top_k needs sae"), "{e}");
    // A width or a hook this model does not have.
    let mut narrow = exact(32, "blocks.1.hook_resid_post");
    narrow.name = "narrow".into();
    let e = m.attach_saes(vec![narrow]).unwrap_err().to_string();
    assert!(e.contains("32") && e.contains("64"), "{e}");
    let e = m
        .attach_saes(vec![exact(64, "blocks.7.hook_resid_post")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("3 layers"), "{e}");
    let e = m
        .attach_saes(vec![exact(64, "hook_pos_embed")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("rotary"), "{e}");
    let e = Sae::read(&sae_dir("llama", "nope"), &SaeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no such folder"), "{e}");
    // Two of one name in one batch; nothing of a refused batch is attached.
    let e = m.attach_saes(vec![relu(), relu()]).unwrap_err().to_string();
    assert!(e.contains("two SAEs are named"), "{e}");
    assert!(m.saes().is_empty());
    m.attach_saes(vec![relu()]).unwrap();
    // Operations that cannot apply.
    let key = "blocks.1.hook_resid_post";
    let e = refusal(
        &m,
        "blocks.0.hook_resid_post",
        op("sae_splice", "relu_resid_post_1", None, None),
    );
    assert!(e.contains("reads blocks.1.hook_resid_post"), "{e}");
    let e = refusal(
        &m,
        key,
        op("sae_ablate", "relu_resid_post_1", Some(256), None),
    );
    assert!(
        e.contains("out of range") && e.contains("256 features"),
        "{e}"
    );
    let e = refusal(&m, key, op("sae_clamp", "relu_resid_post_1", Some(3), None));
    assert!(e.contains("`value`"), "{e}");
    let e = refusal(&m, key, op("sae_steer", "other", Some(3), Some(1.0)));
    assert!(
        e.contains("\"other\"") && e.contains("relu_resid_post_1"),
        "{e}"
    );
    let e = refusal(
        &m,
        "all_layers_output",
        op("sae_splice", "relu_resid_post_1", None, None),
    );
    assert!(e.contains("not at every layer"), "{e}");
    // The original's spelling of the same hook works.
    let mut iv = Interventions::new();
    iv.insert(
        "layer_1_output".into(),
        vec![op("sae_splice", "relu_resid_post_1", None, None)],
    );
    m.run(&RunRequest {
        interventions: iv,
        ..RunRequest::new("Hello there")
    })
    .unwrap();
    let e = m
        .run(&RunRequest {
            sae: Some(SaeSelection::Names(vec!["x".into()])),
            ..RunRequest::new("Hi")
        })
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("\"x\"") && e.contains("attached: relu_resid_post_1"),
        "{e}"
    );
}

/// `POST /load_sae` attaches all of a batch or none; `/model_status` lists
/// them; `/inference` reads their features (8 a position by default) and
/// applies their interventions; `/generate` steers through one.
#[tokio::test]
async fn the_server_attaches_reads_and_applies_saes() {
    use common::server::{detail, server_with};
    use serde_json::json;
    let s = server_with(|_| {});
    s.load(tiny("llama")).await;
    let dir = |n: &str| sae_dir("llama", n).display().to_string();
    let (st, v) = s
        .post(
            "/load_sae",
            json!({"saes": [{"path": dir("relu_resid_post_1"), "name": "r"},
                            {"path": dir("jumprelu_mlp_out_0")}, {"path": dir("topk_resid_pre_2")}]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v["saes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["r", "jumprelu_mlp_out_0", "topk_resid_pre_2"]);
    assert_eq!(v["saes"][2]["k"], 12);
    assert_eq!(v["saes"][0]["dtype"], "F32");
    assert_eq!(v["saes"][0]["hook"], "blocks.1.hook_resid_post");
    // A batch with one that does not fit attaches none of it.
    let (st, v) = s
        .post(
            "/load_sae",
            json!({"saes": [{"path": dir("relu_resid_post_1"), "name": "other"},
                            {"path": dir("relu_resid_post_1"), "name": "far", "hook": "blocks.9.hook_resid_post"}]}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(detail(&v).contains("3 layers"), "{v}");
    let (_, status) = s.get("/model_status").await;
    assert_eq!(status["saes"].as_array().unwrap().len(), 3, "{status}");

    let (st, v) = s
        .post(
            "/inference",
            json!({"text": "The capital of France is", "sae": true}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let readouts = v["sae"].as_array().unwrap();
    assert_eq!(readouts.len(), 3);
    for r in readouts {
        for p in r["positions"].as_array().unwrap() {
            let n = p["features"].as_array().unwrap().len();
            assert!(n <= 8 && p["l0"].as_u64().unwrap() as usize >= n, "{p}");
        }
    }
    let (st, v) = s
        .post("/inference", json!({"text": "Hi", "sae": ["nope"]}))
        .await;
    assert_eq!(st, 400);
    assert!(
        detail(&v).contains("attached: r, jumprelu_mlp_out_0, topk_resid_pre_2"),
        "{v}"
    );
    let iv = json!({"blocks.1.hook_resid_post": [{"type": "sae_ablate", "sae": "r", "feature": 18, "token_index": -1}]});
    let (st, v) = s
        .post(
            "/inference",
            json!({"text": "The capital of France is", "interventions": iv}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["receipts"][0]["positions"].as_array().unwrap().len(), 1);
    let iv = json!({"blocks.1.hook_resid_post": [{"type": "sae_steer", "sae": "r", "feature": 18, "value": 4}]});
    let (st, v) = s
        .post("/generate", json!({"text": "Once upon", "max_new_tokens": 3, "interventions": iv, "sae": ["r"], "compare": true}))
        .await;
    assert_eq!(st, 200, "{v}");
    let n = v["input_tokens"].as_array().unwrap().len();
    assert_eq!(v["sae"][0]["positions"].as_array().unwrap().len(), n);
    // It acted at every step: its receipt covers prompt and written tokens.
    let receipt = &v["receipts"][0];
    assert_eq!(receipt["hook"], "blocks.1.hook_resid_post");
    assert_eq!(
        receipt["positions"].as_array().unwrap().len(),
        n,
        "{receipt}"
    );

    // The row each readout sits under, in the grid of its lens type.
    let rows: Vec<&str> = readouts
        .iter()
        .map(|r| r["row"].as_str().unwrap())
        .collect();
    assert_eq!(rows, ["Layer 1", "Layer 0", "Layer 1"]);

    // What a feature says, and where it fires in a kept run: the
    // activations are the run's own readout.
    let body = json!({"text": "The capital of France is", "sae": ["r"], "sae_top_k": 0});
    let (_, bytes, headers) = s
        .raw(
            axum::http::Method::POST,
            "/inference",
            Some(body.to_string()),
            &[],
        )
        .await;
    let run: Value = serde_json::from_slice(&bytes).unwrap();
    let run_id: u64 = headers["x-logitlens-run-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let f = run["sae"][0]["positions"][2]["features"][0]["id"]
        .as_u64()
        .unwrap();
    let (st, v) = s
        .post(
            "/sae_features",
            json!({"sae": "r", "features": [f], "k": 3, "run_id": run_id}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["features"][0]["top_tokens"].as_array().unwrap().len(), 3);
    let acts = v["activations"][0].as_array().unwrap();
    for (p, pos) in run["sae"][0]["positions"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let want = pos["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"].as_u64() == Some(f))
            .map_or(0.0, |x| x["act"].as_f64().unwrap());
        assert!((acts[p].as_f64().unwrap() - want).abs() < 1e-6, "{p}: {v}");
    }
    let (st, v) = s
        .post("/sae_features", json!({"sae": "r", "features": [256]}))
        .await;
    assert_eq!(st, 400);
    assert!(detail(&v).contains("0..255"), "{v}");
    let (st, v) = s
        .post(
            "/sae_features",
            json!({"sae": "r", "features": [1], "run_id": 99999}),
        )
        .await;
    assert_eq!(st, 404, "{v}");

    // A feature over a corpus, and the SAEs measured (the last kept).
    let (st, v) = s
        .post(
            "/sae_feature_corpus",
            json!({"sae": "r", "feature": f, "corpus": "The capital of France is Paris.\nA cat sat.", "contexts": 3}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["documents"], 2);
    assert!(v["contexts"].as_array().unwrap().len() <= 3);
    let (st, v) = s.get("/eval_sae").await;
    assert_eq!(st, 200);
    assert_eq!(v, json!(null));
    let (st, v) = s
        .post(
            "/eval_sae",
            json!({"saes": ["r"], "sample": 2, "max_tokens": 8}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["saes"][0]["name"], "r");
    assert_eq!(v["sample_seed"], 0);
    let (_, kept) = s.get("/eval_sae").await;
    assert_eq!(kept, v);
    let (st, v) = s
        .post("/eval_sae", json!({"corpus": "a", "sample": 2}))
        .await;
    assert_eq!(st, 400);
    assert!(detail(&v).contains("not both"), "{v}");

    // Taken off, all named or none.
    let (st, v) = s.post("/unload_sae", json!({"names": ["r", "nope"]})).await;
    assert_eq!(st, 400);
    assert!(detail(&v).contains("nothing was taken off"), "{v}");
    let (st, v) = s.post("/unload_sae", json!({"names": ["r"]})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["saes"].as_array().unwrap().len(), 2);
}

/// A run's cost counts its SAEs: the widest one's pre-activations (read or
/// applied) and the features its answer lists, `sae_top_k` a position or,
/// with 0, every feature that can be active; over the budget, the refusal
/// names the part and says to list fewer.
#[test]
fn a_runs_cost_counts_its_sae_features() {
    use logitlens_engine::ops::{Limits, Operation, RunSpec};
    let m = load_tiny("llama");
    let d = m.config().d_model;
    m.attach_saes(vec![exact(d, "blocks.1.hook_resid_post")])
        .unwrap();
    let name = "exact blocks.1.hook_resid_post";
    let text = "The capital of France is";
    let cost = |sae: Option<SaeSelection>, top_k: Option<usize>, iv: Interventions| {
        let req = RunRequest {
            sae,
            sae_top_k: top_k,
            interventions: iv,
            ..RunRequest::new(text)
        };
        let spec = RunSpec::check(&m, &req).unwrap();
        let t = spec.ids.len() as u64;
        (spec.cost(&m), t)
    };
    let (d_sae, pre) = (2 * d as u64, |t: u64| t * 2 * d as u64 * 4);
    let all = || Some(SaeSelection::All(true));
    let (c, t) = cost(None, None, Interventions::new());
    assert_eq!(c.part("SAE features"), 0);
    let (c, _) = cost(all(), Some(3), Interventions::new());
    assert_eq!(c.part("SAE features"), pre(t) + t * 3 * 32);
    let (c, _) = cost(all(), Some(0), Interventions::new());
    assert_eq!(c.part("SAE features"), pre(t) + t * d_sae * 32);
    let mut iv = Interventions::new();
    let steer: InterventionConfig = serde_json::from_value(
        serde_json::json!({"type": "sae_steer", "sae": name, "feature": 1, "value": 2.0}),
    )
    .unwrap();
    iv.insert("blocks.1.hook_resid_post".into(), vec![steer]);
    let (c, _) = cost(None, None, iv);
    assert_eq!(c.part("SAE features"), pre(t));

    let (c, _) = cost(all(), Some(0), Interventions::new());
    let limits = Limits {
        max_bytes: Some(c.bytes() - 1),
        ..Limits::none()
    };
    let req = RunRequest {
        sae: all(),
        sae_top_k: Some(0),
        ..RunRequest::new(text)
    };
    let e = logitlens_engine::ops::execute_with(
        &m,
        &req,
        &limits,
        &Default::default(),
        &mut |_| Ok(()),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("SAE features") && e.contains("a smaller sae_top_k"),
        "{e}"
    );
}
