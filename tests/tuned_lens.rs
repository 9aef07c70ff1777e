//! Tuned lenses as the tuned-lens package saves them (tests/fixtures/research,
//! copied from the shared reference): its params.pt (bare `{i}.weight` keys)
//! and the same lens as params.safetensors (`layer_translators.{i}.weight`)
//! give the rows the package computes, top-5 ids equal and probabilities
//! within 1e-5; lenses that do not fit are refused naming both sizes.

mod common;

use common::*;
use logitlens_engine::lens::Lens;
use logitlens_engine::{LoadedModel, RunRequest};

fn research() -> std::path::PathBuf {
    fixtures().join("research")
}

fn check_against_reference(family: &str, lens_dir: &std::path::Path) {
    let m = load_tiny(family);
    m.attach_tuned_lens(lens_dir).unwrap();
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(research().join(family).join("tuned_reference.json")).unwrap(),
    )
    .unwrap();
    let mut npz = Npz::open(&research().join(family).join("tuned_reference.npz"));
    let mut worst = 0f64;
    for (p, prompt) in json["prompts"].as_array().unwrap().iter().enumerate() {
        let req = RunRequest {
            lens: Lens::Tuned,
            ..RunRequest::new(prompt["text"].as_str().unwrap())
        };
        let out = m.run(&req).unwrap();
        let want_ids: Vec<u32> = npz
            .i64(&format!("p{p}_ids"))
            .iter()
            .map(|&i| i as u32)
            .collect();
        assert_eq!(out.state.ids, want_ids, "{family} p{p}: ids");
        let ids = npz.i64(&format!("p{p}_tuned_top5_ids"));
        let probs = npz.f32(&format!("p{p}_tuned_top5_probs"));
        let rows = &out.answer.logit_lens;
        assert_eq!(rows.len(), ids.shape()[0], "{family}: rows");
        for (s, row) in rows.iter().enumerate() {
            assert_eq!(row.layer_name, json["layers"][s].as_str().unwrap());
            for (t, cell) in row.predictions.iter().enumerate() {
                for (k, pred) in cell.iter().enumerate() {
                    let (id, prob) = (ids[[s, t, k]] as u32, f64::from(probs[[s, t, k]]));
                    worst = worst.max((pred.prob - prob).abs());
                    if pred.id != id {
                        // Near-equal probabilities may swap.
                        let other = cell.iter().find(|c| c.id == id).map(|c| c.prob);
                        assert!(
                            other.is_some_and(|o| (o - prob).abs() < 1e-5),
                            "{family} p{p} row {s} pos {t} rank {k}: {} vs {id}",
                            pred.id
                        );
                    }
                }
            }
        }
    }
    assert!(worst < 1e-5, "{family}: max |Δprob| {worst}");
}

#[test]
fn the_packages_params_pt_gives_its_rows() {
    for family in ["llama", "qwen3"] {
        check_against_reference(family, &research().join("tuned").join(family));
    }
}

#[test]
fn the_same_lens_as_safetensors_gives_the_same_rows() {
    for family in ["llama", "qwen3"] {
        check_against_reference(family, &research().join("tuned_st").join(family));
    }
}

#[test]
fn the_logit_lens_is_unchanged_with_a_lens_attached() {
    let m = load_tiny("llama");
    let before = m.run(&RunRequest::new("The capital of France is")).unwrap();
    m.attach_tuned_lens(&research().join("tuned").join("llama"))
        .unwrap();
    let after = m.run(&RunRequest::new("The capital of France is")).unwrap();
    assert_eq!(before.answer.logit_lens, after.answer.logit_lens);
    // The tuned rows differ but for the last, the model's own output.
    let tuned = m
        .run(&RunRequest {
            lens: Lens::Tuned,
            ..RunRequest::new("The capital of France is")
        })
        .unwrap();
    let (a, b) = (&before.answer.logit_lens, &tuned.answer.logit_lens);
    assert_ne!(a[0], b[0]);
    assert_eq!(a.last(), b.last());
}

#[test]
fn lenses_that_do_not_fit_are_refused_with_both_sizes() {
    let m = load_tiny("llama");
    let e = m
        .attach_tuned_lens(&research().join("tuned_mismatch").join("d_model_32"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("32") && e.contains("64"), "{e}");
    let e = m
        .attach_tuned_lens(&research().join("tuned_mismatch").join("layers_4"))
        .unwrap_err()
        .to_string();
    assert!(e.contains('4') && e.contains('3'), "{e}");
    assert!(m.tuned_lens().is_none());
}

/// All tiny models share one shape, so the llama lens fits qwen3: it is
/// attached, with the warning the tuned-lens package gives, because the
/// unembed_hash it records (the package's own) is llama's, not qwen3's.
#[test]
fn a_lens_for_another_model_of_the_same_shape_is_attached_with_a_warning() {
    let own = load_tiny("llama")
        .attach_tuned_lens(&research().join("tuned").join("llama"))
        .unwrap();
    assert_eq!(own.warning, None);
    let m = load_tiny("qwen3");
    let lens = m
        .attach_tuned_lens(&research().join("tuned").join("llama"))
        .unwrap();
    let w = lens.warning.clone().expect("a warning");
    let recorded = lens.config.unembed_hash.clone().unwrap();
    let ours = logitlens_engine::lens::tuned::unembed_hash(&m.model).unwrap();
    assert!(w.contains(&recorded) && w.contains(&ours), "{w}");
    assert!(m.tuned_lens().is_some());
    // qwen3's own lens records qwen3's hash.
    let own = m
        .attach_tuned_lens(&research().join("tuned").join("qwen3"))
        .unwrap();
    assert_eq!(own.config.unembed_hash.as_deref(), Some(ours.as_str()));
    assert_eq!(own.warning, None);
}

#[test]
fn a_tuned_run_needs_a_lens_and_block_outputs() {
    let m: LoadedModel = load_tiny("llama");
    let req = RunRequest {
        lens: Lens::Tuned,
        ..RunRequest::new("Hello")
    };
    let e = m.run(&req).err().unwrap().to_string();
    assert!(e.contains("no tuned lens is attached"), "{e}");
    m.attach_tuned_lens(&research().join("tuned").join("llama"))
        .unwrap();
    let e = m
        .run(&RunRequest {
            lens_type: logitlens_engine::LensType::Combined,
            ..req
        })
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("block_output"), "{e}");
}

/// The server: POST /load_lens attaches a lens to the model in service,
/// `lens: "tuned"` draws with it (with compare, tracking and entropy), and
/// every misuse is a 4xx saying why.
#[tokio::test]
async fn the_server_attaches_and_draws_with_a_tuned_lens() {
    use common::server::{detail, server_with};
    use serde_json::json;
    let s = server_with(|_| {});
    let lens_dir = research().join("tuned").join("llama");
    let (st, v) = s.post("/load_lens", json!({"path": lens_dir})).await;
    assert_eq!(st, 409, "no model yet: {v}");
    s.load(tiny("llama")).await;
    let body = json!({"text": "The capital of France is", "lens": "tuned"});
    let (st, v) = s.post("/inference", body.clone()).await;
    assert_eq!(st, 400, "{v}");
    assert!(detail(&v).contains("no tuned lens is attached"), "{v}");
    let (st, v) = s
        .post(
            "/load_lens",
            json!({"path": research().join("tuned_mismatch").join("d_model_32")}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        detail(&v).contains("32") && detail(&v).contains("64"),
        "{v}"
    );
    let (st, v) = s.post("/load_lens", json!({"path": lens_dir})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["tuned_lens"], lens_dir.display().to_string());
    assert_eq!(v["tuned_lens_warning"], serde_json::Value::Null);
    let (_, status) = s.get("/model_status").await;
    assert_eq!(status["tuned_lens"], lens_dir.display().to_string());
    // The rows are the engine's tuned rows.
    let m = load_tiny("llama");
    m.attach_tuned_lens(&lens_dir).unwrap();
    let want = m
        .run(&RunRequest {
            lens: Lens::Tuned,
            ..RunRequest::new("The capital of France is")
        })
        .unwrap()
        .answer
        .logit_lens;
    let (st, v) = s.post("/inference", body).await;
    assert_eq!(st, 200, "{v}");
    let got: Vec<logitlens_engine::LensRow> =
        serde_json::from_value(v["logit_lens"].clone()).unwrap();
    assert_eq!(got, want);
    // With compare, tracking and entropy: the baseline is drawn by the same lens.
    let (st, v) = s
        .post(
            "/inference",
            json!({"text": "The capital of France is", "lens": "tuned", "compare": true,
                   "entropy": true, "track_tokens": [5],
                   "interventions": {"layer_1_output": [{"type": "scale", "value": 0.5}]}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let base: Vec<logitlens_engine::LensRow> =
        serde_json::from_value(v["baseline_logit_lens"].clone()).unwrap();
    assert_eq!(base, want);
    assert!(v["entropy"].is_array() && v["tracked"].is_array() && v["diff"].is_array());
    let (st, v) = s
        .post(
            "/inference",
            json!({"text": "Hi", "lens": "tuned", "lens_type": "combined"}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(detail(&v).contains("block_output"), "{v}");
    let (st, _) = s
        .post("/inference", json!({"text": "Hi", "lens": "sideways"}))
        .await;
    assert!(st.is_client_error());
}

/// A saved session records which lens drew its rows.
#[tokio::test]
async fn sessions_record_the_lens() {
    use common::server::server_with;
    use serde_json::json;
    let s = server_with(|_| {});
    s.load(tiny("llama")).await;
    let lens_dir = research().join("tuned").join("llama");
    let (st, _) = s.post("/load_lens", json!({"path": lens_dir})).await;
    assert_eq!(st, 200);
    for (lens, want_dir) in [
        ("tuned", json!(lens_dir.display().to_string())),
        ("logit", json!(null)),
    ] {
        let (st, v) = s
            .post("/inference", json!({"text": "Hello", "lens": lens}))
            .await;
        assert_eq!(st, 200, "{v}");
        let (st, v) = s.post("/save_state", json!({"name": lens})).await;
        assert_eq!(st, 200, "{v}");
        let id = v["session_id"].as_str().unwrap();
        let cfg: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                s.dir
                    .path()
                    .join("saved_states")
                    .join(id)
                    .join("config.json"),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (&cfg["lens"], &cfg["tuned_lens"]),
            (&json!(lens), &want_dir),
            "{cfg}"
        );
    }
}
