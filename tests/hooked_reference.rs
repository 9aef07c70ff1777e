//! The hooked backend against what Hugging Face transformers computes for
//! every tiny random checkpoint (tests/fixtures/tiny/*/reference.npz), against
//! the custom backend on the requests of tests/fixtures/cases.json, and its
//! interventions (zero, scale, attention blocking, position embeddings).

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use common::*;
use logitlens_engine::hooks::{self, InterventionPlan};
use logitlens_engine::lens;
use logitlens_engine::load::transformer_from_safetensors;
use logitlens_engine::nn::Form;
use logitlens_engine::tokenizer::TokenizerBundle;
use logitlens_engine::{
    BackendKind, Capture, ComputeDtype, EngineError, InferenceRequest, InterventionConfig,
    Interventions, LensType, RunRequest, Transformer,
};
use serde_json::Value;

const TOL: f32 = 1e-5;
/// transformers' own float32 error on the residual stream of the longest
/// prompt (p2) of two fixtures exceeds 1e-5: an independent numpy float64
/// forward is 1.18e-5 (qwen2) and 1.22e-5 (phi3) from the reference and
/// within 1e-6 of ours, and phi3's reference logits are 1.05e-5 from an
/// exact head on that stream (7e-7 from one on the reference's own). Only
/// their residual states and logits get this; attention, MLP outputs and
/// the lens hold 1e-5 everywhere.
const REFERENCE_NOISE: [(&str, f32); 2] = [("qwen2", 1.5e-5), ("phi3", 1.5e-5)];
/// An f32 forward adds its own rounding to transformers' f32 one.
const F32_TOL: f32 = 5e-5;

struct Hooked {
    model: Transformer,
    tok: TokenizerBundle,
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn load_with_config(family: &str, config_json: &str, dtype: Option<DType>) -> Hooked {
    let dir = tiny(family);
    let cfg = BackendKind::Hooked
        .config_from_hf_json(config_json)
        .unwrap();
    let dtype = dtype.unwrap_or_else(|| cfg.resolve_dtype(ComputeDtype::Auto));
    let model =
        transformer_from_safetensors(cfg, &[dir.join("model.safetensors")], Form::Widened(dtype))
            .unwrap();
    let tok = TokenizerBundle::from_hf_files(
        &std::fs::read(dir.join("tokenizer.json")).unwrap(),
        Some(&read(&dir.join("tokenizer_config.json"))),
        None,
    )
    .unwrap();
    Hooked { model, tok }
}

/// A tiny fixture in the default precision policy (f64 for small models).
fn load(family: &str) -> Hooked {
    let h = load_with_config(family, &read(&tiny(family).join("config.json")), None);
    assert_eq!(h.model.dtype(), DType::F64, "small models compute in f64");
    h
}

fn load_dtype(family: &str, dtype: DType) -> Hooked {
    load_with_config(
        family,
        &read(&tiny(family).join("config.json")),
        Some(dtype),
    )
}

fn prompts(family: &str) -> Vec<String> {
    reference_json(&tiny(family).join("reference.json"))["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap().to_owned())
        .collect()
}

fn run(h: &Hooked, text: &str, plan: &InterventionPlan) -> (Vec<u32>, Capture) {
    let ids = h.tok.encode_prompt(text, false).unwrap();
    let cap = h.model.forward(&ids, plan, None).unwrap();
    (ids, cap)
}

fn plan_for(h: &Hooked, json: Value, t: usize) -> InterventionPlan {
    let iv: Interventions = serde_json::from_value(json).unwrap();
    let cfg = h.model.config();
    hooks::plan(&iv, cfg.n_layers, cfg.d_model, t).unwrap()
}

/// Largest errors over all prompts, by what they measure.
#[derive(Default, Debug)]
struct Errors {
    /// resid_pre and resid_mid.
    resid: f32,
    /// attn_out and attn_pattern.
    attn: f32,
    mlp: f32,
    logits: f32,
    /// Lens top-5 probabilities.
    lens: f32,
}

fn check_reference(family: &str, h: &Hooked, tol: f32) -> Errors {
    let mut npz = Npz::open(&tiny(family).join("reference.npz"));
    let mut errs = Errors::default();
    let texts = prompts(family);
    assert!(!texts.is_empty());
    for (i, text) in texts.iter().enumerate() {
        let (ids, c) = run(h, text, &InterventionPlan::default());
        let want_ids: Vec<i64> = npz.i64(&format!("p{i}_ids")).iter().copied().collect();
        let got_ids: Vec<i64> = ids.iter().map(|&x| i64::from(x)).collect();
        assert_eq!(got_ids, want_ids, "{family} p{i}: token ids");
        let name = |s: &str| format!("{family} p{i} {s}");
        let stream_tol = REFERENCE_NOISE
            .iter()
            .find(|(f, _)| *f == family)
            .map_or(tol, |&(_, t)| t.max(tol));
        let mut cmp = |what: &str, got: Vec<f32>, acc: &mut f32| {
            let want = npz.f32(&format!("p{i}_{what}"));
            let want = want.as_slice().unwrap();
            *acc = acc.max(max_err(&got, want));
            let tol = if what.starts_with("resid") || what == "logits" {
                stream_tol
            } else {
                tol
            };
            assert_close(&name(what), &got, want, tol);
        };
        let n = c.resid.len() - 1;
        cmp("resid_pre", flat_all(&c.resid), &mut errs.resid);
        cmp("resid_mid", flat_all(&c.post_attn), &mut errs.resid);
        cmp("attn_out", flat_all(&c.attn_out), &mut errs.attn);
        cmp("attn_pattern", flat_all(&c.patterns), &mut errs.attn);
        cmp("mlp_out", flat_all(&c.mlp_out), &mut errs.mlp);
        let logits = flat(&h.model.unembed(&c.resid[n]).unwrap());
        cmp("logits", logits, &mut errs.logits);

        let top_ids = npz.i64(&format!("p{i}_lens_top5_ids"));
        let top_probs = npz.f32(&format!("p{i}_lens_top5_probs"));
        let lens = lens::compute(
            &h.model,
            &h.tok,
            &c,
            LensType::BlockOutput,
            &lens::Reuse::default(),
            &lens::Extras::default(),
        )
        .unwrap();
        assert_eq!(lens.rows.len(), top_ids.shape()[0], "{family} p{i}: rows");
        for (r, row) in lens.rows.iter().enumerate() {
            assert_eq!(row.predictions.len(), ids.len());
            for (t, preds) in row.predictions.iter().enumerate() {
                assert_eq!(preds.len(), 5);
                for (k, pr) in preds.iter().enumerate() {
                    assert_eq!(
                        i64::from(pr.id),
                        top_ids[[r, t, k]],
                        "{family} p{i} row {r} pos {t} rank {k}: id"
                    );
                    let d = (pr.prob as f32 - top_probs[[r, t, k]]).abs();
                    errs.lens = errs.lens.max(d);
                    assert!(
                        d <= tol,
                        "{family} p{i} row {r} pos {t} rank {k}: prob off by {d:e}"
                    );
                }
            }
        }
    }
    errs
}

fn check_family_f64(family: &str) {
    let h = load(family);
    assert_eq!(h.model.config().n_layers, 3);
    let e = check_reference(family, &h, TOL);
    println!("{family} f64: {e:?}");
}

macro_rules! reference_tests {
    ($($name:ident => $family:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check_family_f64($family);
            }
        )*
    };
}

reference_tests! {
    llama_matches_transformers => "llama",
    llama3_rope_scaled_matches_transformers => "llama3-rope-scaled",
    mistral_matches_transformers => "mistral",
    qwen2_matches_transformers => "qwen2",
    qwen3_matches_transformers => "qwen3",
    gemma_matches_transformers => "gemma",
    gemma2_matches_transformers => "gemma2",
    phi3_matches_transformers => "phi3",
    phi_matches_transformers => "phi",
    gpt2_matches_transformers => "gpt2",
    gpt_neox_matches_transformers => "gpt_neox",
}

/// Every fixture directory has a test above.
#[test]
fn every_fixture_family_is_covered() {
    let mut dirs: Vec<String> = std::fs::read_dir(fixtures().join("tiny"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut ours: Vec<String> = FAMILIES.iter().map(|s| s.to_string()).collect();
    ours.sort();
    assert_eq!(dirs, ours);
    for f in FAMILIES {
        let cfg = BackendKind::Hooked
            .config_from_hf_json(&read(&tiny(f).join("config.json")))
            .unwrap();
        let want = if f == "llama3-rope-scaled" {
            "llama"
        } else {
            f
        };
        assert_eq!(cfg.family(), want);
        assert_eq!(cfg.has_pos_embed(), f == "gpt2");
    }
}

/// The f32 path (models above the f64 budget) on the same references.
#[test]
fn f32_path_stays_within_float32_noise() {
    for family in FAMILIES {
        let h = load_dtype(family, DType::F32);
        assert_eq!(h.model.dtype(), DType::F32);
        let e = check_reference(family, &h, F32_TOL);
        println!("{family} f32: {e:?}");
    }
}

/// Same lens as the custom backend for every request of cases.json: the
/// custom side runs the whole request (`LoadedModel::run`), the hooked side
/// the same plan through `forward` and `lens::compute`.
fn parity_with_custom(family: &str) {
    let custom = load_tiny(family);
    let h = load(family);
    let cases: Vec<Value> = serde_json::from_str(&read(&fixtures().join("cases.json"))).unwrap();
    assert_eq!(cases.len(), 10);
    let mut max_prob = 0f64;
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let wire: InferenceRequest = serde_json::from_value(case.clone()).unwrap();
        let mut req = RunRequest::from(wire);
        // Kept patterns, to compare with the forward pass's.
        req.return_attention = true;
        let lens_type = req.lens_type;
        let want = custom.run(&req).unwrap();
        let ids = h
            .tok
            .encode_prompt(&req.text, req.apply_chat_template)
            .unwrap();
        assert_eq!(ids, want.state.ids, "{family} {name}: ids");
        let cfg = h.model.config();
        let plan = hooks::plan(&req.interventions, cfg.n_layers, cfg.d_model, ids.len()).unwrap();
        let got = h.model.forward(&ids, &plan, None).unwrap();
        assert_close(
            &format!("{family} {name}: patterns"),
            &flat_all(&got.patterns),
            &flat_all(&want.state.capture.patterns),
            TOL,
        );
        let lens = lens::compute(
            &h.model,
            &h.tok,
            &got,
            lens_type,
            &lens::Reuse::default(),
            &lens::Extras::default(),
        )
        .unwrap();
        let (ra, rb) = (&want.answer.logit_lens, &lens.rows);
        assert_eq!(ra.len(), rb.len(), "{family} {name}: rows");
        for (ra, rb) in ra.iter().zip(rb) {
            assert_eq!(ra.layer_index, rb.layer_index);
            assert_eq!(ra.layer_name, rb.layer_name, "{family} {name}");
            assert_eq!(ra.predictions.len(), rb.predictions.len());
            for (t, (pa, pb)) in ra.predictions.iter().zip(&rb.predictions).enumerate() {
                assert_eq!(pa.len(), pb.len());
                for (k, (xa, xb)) in pa.iter().zip(pb).enumerate() {
                    let at = format!("{family} {name} {} pos {t} rank {k}", ra.layer_name);
                    assert_eq!(xa.id, xb.id, "{at}: id");
                    assert_eq!(xa.token, xb.token, "{at}: token");
                    let d = (xa.prob - xb.prob).abs();
                    max_prob = max_prob.max(d);
                    assert!(d <= 1e-5, "{at}: prob off by {d:e}");
                }
            }
        }
    }
    println!("{family} parity with custom: max |dprob| {max_prob:e}");
}

#[test]
fn llama_agrees_with_custom_backend() {
    parity_with_custom("llama");
}

#[test]
fn llama3_rope_scaled_agrees_with_custom_backend() {
    parity_with_custom("llama3-rope-scaled");
}

#[test]
fn qwen3_agrees_with_custom_backend() {
    parity_with_custom("qwen3");
}

const INTERVENED: [&str; 3] = ["gpt2", "gpt_neox", "gemma2"];

fn raw_tensors(family: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(tiny(family).join("model.safetensors"), &Device::Cpu).unwrap()
}

/// The lens of a zero state, computed from the raw weights: LayerNorm maps
/// 0 to its bias, so the row is softmax(W_U b); RMSNorm maps 0 to 0, so it
/// is uniform (Gemma 2's soft-cap keeps 0 at 0).
fn zero_state_top5(family: &str) -> Vec<(u32, f32)> {
    let w = raw_tensors(family);
    let (unembed, bias) = match family {
        "gpt2" => ("transformer.wte.weight", Some("transformer.ln_f.bias")),
        "gpt_neox" => ("embed_out.weight", Some("gpt_neox.final_layer_norm.bias")),
        _ => ("model.embed_tokens.weight", None),
    };
    let v = w[unembed].dim(0).unwrap();
    let logits: Vec<f32> = match bias {
        Some(b) => flat(
            &w[unembed]
                .matmul(&w[b].unsqueeze(1).unwrap())
                .unwrap()
                .squeeze(1)
                .unwrap(),
        ),
        None => vec![0.0; v],
    };
    lens::top_k_softmax(&logits).to_vec()
}

/// Zeroing `blocks.{l}.hook_resid_post` zeroes that state: its lens row is
/// the same at every position and is the lens of the zero vector (uniform,
/// 1/V, for RMSNorm models; softmax(W_U ln_f.bias) for LayerNorm ones).
#[test]
fn zeroed_resid_post_gives_the_zero_state_row() {
    for family in INTERVENED {
        let h = load(family);
        let text = &prompts(family)[0];
        let t = h.tok.encode_prompt(text, false).unwrap().len();
        let want = zero_state_top5(family);
        if family == "gemma2" {
            let v = h.model.config().vocab_size as f32;
            assert!(want.iter().all(|&(_, p)| (p - 1.0 / v).abs() < 1e-7));
        }
        for l in 0..h.model.config().n_layers {
            let plan = plan_for(
                &h,
                serde_json::json!({ format!("blocks.{l}.hook_resid_post"): [{"type": "zero"}] }),
                t,
            );
            let (_, c) = run(&h, text, &plan);
            assert!(flat(&c.resid[l + 1]).iter().all(|&x| x == 0.0));
            let lens = lens::compute(
                &h.model,
                &h.tok,
                &c,
                LensType::BlockOutput,
                &lens::Reuse::default(),
                &lens::Extras::default(),
            )
            .unwrap();
            let row = &lens.rows[l + 1];
            for preds in &row.predictions {
                for (k, p) in preds.iter().enumerate() {
                    assert_eq!(p.id, want[k].0, "{family} layer {l} rank {k}");
                    assert!(
                        (p.prob as f32 - want[k].1).abs() < 1e-6,
                        "{family} layer {l}"
                    );
                }
            }
        }
    }
}

/// Scaling every stream hook by 1 changes nothing, bit for bit.
#[test]
fn scale_by_one_is_the_identity() {
    for family in INTERVENED {
        let h = load(family);
        let text = &prompts(family)[1];
        let (_, base) = run(&h, text, &InterventionPlan::default());
        let t = base.resid[0].dim(0).unwrap();
        let one = serde_json::json!([{"type": "scale", "value": 1.0}]);
        let mut iv = serde_json::Map::new();
        for key in ["hook_embed", "all_layers_output"] {
            iv.insert(key.into(), one.clone());
        }
        if family == "gpt2" {
            iv.insert("hook_pos_embed".into(), one.clone());
        }
        for l in 0..h.model.config().n_layers {
            for hook in ["resid_pre", "resid_mid", "attn_out", "mlp_out"] {
                iv.insert(format!("blocks.{l}.hook_{hook}"), one.clone());
            }
        }
        let plan = plan_for(&h, Value::Object(iv), t);
        let (_, c) = run(&h, text, &plan);
        for (what, a, b) in [
            ("resid", &c.resid, &base.resid),
            ("post_attn", &c.post_attn, &base.post_attn),
            ("attn_out", &c.attn_out, &base.attn_out),
            ("mlp_out", &c.mlp_out, &base.mlp_out),
            ("patterns", &c.patterns, &base.patterns),
        ] {
            assert_eq!(flat_all(a), flat_all(b), "{family} {what}");
        }
    }
}

/// Blocking (query q, key k) at layer l zeroes exactly that pattern entry;
/// rows still sum to 1, other rows and earlier layers are unchanged.
#[test]
fn blocking_zeroes_exactly_one_entry() {
    for family in INTERVENED {
        let h = load(family);
        let text = &prompts(family)[0];
        let (_, base) = run(&h, text, &InterventionPlan::default());
        let t = base.resid[0].dim(0).unwrap();
        let (layer, q, k) = (1usize, t - 1, 2usize);
        let plan = plan_for(
            &h,
            serde_json::json!({ format!("blocks.{layer}.attn.hook_attn_scores"): [
                {"type": "block_attention", "source_tokens": [k], "target_tokens": [q]}
            ]}),
            t,
        );
        let (_, c) = run(&h, text, &plan);
        let pat = c.patterns[layer].to_vec3::<f64>().unwrap();
        let old = base.patterns[layer].to_vec3::<f64>().unwrap();
        for (head, (ph, oh)) in pat.iter().zip(&old).enumerate() {
            assert!(oh[q][k] > 0.0, "{family}: entry was attended before");
            assert_eq!(ph[q][k], 0.0, "{family} head {head}");
            for (r, (row, orow)) in ph.iter().zip(oh).enumerate() {
                let s: f64 = row.iter().sum();
                assert!(
                    (s - 1.0).abs() < 1e-12,
                    "{family} head {head} row {r}: sum {s}"
                );
                if r != q {
                    assert_eq!(row, orow, "{family} head {head} row {r} changed");
                }
            }
            assert_ne!(ph[q], oh[q], "{family}: the blocked row renormalises");
        }
        for l in 0..layer {
            assert_eq!(flat(&c.patterns[l]), flat(&base.patterns[l]), "{family}");
        }
        for l in 0..=layer {
            assert_eq!(flat(&c.resid[l]), flat(&base.resid[l]), "{family}");
        }
        assert_ne!(flat(&c.resid[layer + 1]), flat(&base.resid[layer + 1]));
    }
}

/// GPT-2: zeroing `hook_pos_embed` leaves resid_pre[0] = the token
/// embeddings alone; without it resid_pre[0] = token + position.
#[test]
fn zero_pos_embed_leaves_token_embeddings() {
    let h = load("gpt2");
    let w = raw_tensors("gpt2");
    let text = &prompts("gpt2")[0];
    let ids = h.tok.encode_prompt(text, false).unwrap();
    let t = ids.len();
    let ids_t = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap();
    let wte = w["transformer.wte.weight"]
        .to_dtype(DType::F64)
        .unwrap()
        .embedding(&ids_t)
        .unwrap();
    let wpe = w["transformer.wpe.weight"]
        .to_dtype(DType::F64)
        .unwrap()
        .narrow(0, 0, t)
        .unwrap();
    let plan = plan_for(
        &h,
        serde_json::json!({"hook_pos_embed": [{"type": "zero"}]}),
        t,
    );
    let (_, c) = run(&h, text, &plan);
    assert_eq!(
        c.resid[0].to_vec2::<f64>().unwrap(),
        wte.to_vec2::<f64>().unwrap()
    );
    let (_, base) = run(&h, text, &InterventionPlan::default());
    assert_eq!(
        base.resid[0].to_vec2::<f64>().unwrap(),
        (&wte + &wpe).unwrap().to_vec2::<f64>().unwrap()
    );
    // Only the position embeddings changed: the rest of the stream moves.
    assert_ne!(flat(&c.resid[1]), flat(&base.resid[1]));
}

/// RoPE models have no position embeddings to hook.
#[test]
fn pos_embed_hook_is_refused_without_learned_positions() {
    for family in ["llama", "gpt_neox", "gemma2"] {
        let h = load(family);
        let text = &prompts(family)[0];
        let t = h.tok.encode_prompt(text, false).unwrap().len();
        let plan = plan_for(
            &h,
            serde_json::json!({"hook_pos_embed": [{"type": "zero"}]}),
            t,
        );
        let ids = h.tok.encode_prompt(text, false).unwrap();
        let e = h.model.forward(&ids, &plan, None).err().unwrap();
        assert!(e.is_client_error(), "{e}");
        assert!(e.to_string().contains("hook_pos_embed"), "{e}");
    }
}

#[test]
fn unsupported_model_type_lists_the_families() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config.json");
    std::fs::write(
        &p,
        r#"{"model_type": "bert", "architectures": ["BertForMaskedLM"], "hidden_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 512}"#,
    )
    .unwrap();
    let e = BackendKind::Hooked
        .config_from_hf_json(&read(&p))
        .unwrap_err();
    assert!(matches!(e, EngineError::Unsupported(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("bert"), "{msg}");
    for family in ["llama", "qwen3", "gemma2", "gpt_neox"] {
        assert!(msg.contains(family), "{msg}");
    }
}

/// A sliding window shorter than the prompt is refused, not ignored.
#[test]
fn prompt_longer_than_the_sliding_window_is_refused() {
    let mut cfg: Value = serde_json::from_str(&read(&tiny("gemma2").join("config.json"))).unwrap();
    cfg["sliding_window"] = 4.into();
    let h = load_with_config("gemma2", &cfg.to_string(), Some(DType::F64));
    let ids = h.tok.encode_prompt(&prompts("gemma2")[0], false).unwrap();
    assert!(ids.len() > 4);
    let e = h
        .model
        .forward(&ids, &InterventionPlan::default(), None)
        .err()
        .unwrap();
    assert!(e.to_string().contains("sliding"), "{e}");
    // Within the window the model runs as before.
    let full = load("gemma2");
    let a = h
        .model
        .forward(&ids[..4], &InterventionPlan::default(), None)
        .unwrap();
    let b = full
        .model
        .forward(&ids[..4], &InterventionPlan::default(), None)
        .unwrap();
    assert_eq!(flat_all(&a.resid), flat_all(&b.resid));
}

/// A missing weight is an error naming it, not a silent zero.
#[test]
fn missing_tensor_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = raw_tensors("phi");
    w.remove("lm_head.bias");
    let p = dir.path().join("model.safetensors");
    candle_core::safetensors::save(&w, &p).unwrap();
    let cfg = BackendKind::Hooked
        .config_from_hf_json(&read(&tiny("phi").join("config.json")))
        .unwrap();
    let e = transformer_from_safetensors(cfg, &[p], Form::Widened(DType::F64))
        .err()
        .unwrap();
    assert!(e.to_string().contains("lm_head.bias"), "{e}");
}

/// Interventions of the original's spelling reach the same hooks here.
#[test]
fn original_keys_drive_the_hooked_model() {
    let h = load("gpt_neox");
    let text = &prompts("gpt_neox")[0];
    let t = h.tok.encode_prompt(text, false).unwrap().len();
    let mut iv = Interventions::new();
    iv.insert(
        "layer_0_mlp_output".into(),
        vec![InterventionConfig {
            kind: "zero".into(),
            ..Default::default()
        }],
    );
    let cfg = h.model.config();
    let plan = hooks::plan(&iv, cfg.n_layers, cfg.d_model, t).unwrap();
    let (_, c) = run(&h, text, &plan);
    assert!(flat(&c.mlp_out[0]).iter().all(|&x| x == 0.0));
    // Parallel residual: the block output is resid_mid + (zeroed) mlp_out.
    assert_eq!(flat(&c.resid[1]), flat(&c.post_attn[0]));
}
