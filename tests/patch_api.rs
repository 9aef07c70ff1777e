//! The causal tools over HTTP: POST /patch answers with the reference's
//! sweep (tests/fixtures/research/llama/patch_reference.json) and reports
//! its progress on /events; /inference's `attribution` with the
//! reference's shares; POST /tokenize with the ids /inference runs; and
//! every bad request is a 400 in words.

mod common;

use axum::http::{Method, StatusCode};
use common::server::*;
use common::*;
use logitlens_server::state::ServerEvent;
use logitlens_server::status::RunStage;
use serde_json::{json, Value};

fn close(got: &Value, want: &Value, what: &str) {
    let (g, w) = (got.as_f64().unwrap(), want.as_f64().unwrap());
    assert!(
        (g - w).abs() <= 1e-4 * w.abs().max(1.0),
        "{what}: {g} vs {w}"
    );
}

async fn llama_server() -> TestServer {
    let s = server_with(|_| {});
    s.load(tiny("llama")).await;
    s
}

#[tokio::test]
async fn a_sweep_over_http_matches_the_reference_and_reports_progress() {
    let s = llama_server().await;
    let reference = reference_json(&fixtures().join("research/llama/patch_reference.json"));
    let pair = &reference["pairs"][0];
    let case = &pair["metrics"][0];
    let mut events = s.state.events.subscribe();
    let body = json!({
        "clean_text": pair["clean"],
        "corrupted_text": pair["corrupted"],
        "hook": "blocks.{l}.hook_resid_mid",
        "metric": case["metric"],
    });
    let (status, bytes, _) = s
        .raw(
            Method::POST,
            "/patch",
            Some(body.to_string()),
            &[("x-logitlens-request", "sweep-1")],
        )
        .await;
    let got: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, StatusCode::OK, "{got}");
    let want = &case["results"]["resid_mid"];
    assert_eq!(got["tokens_clean"], pair["tokens_clean"]);
    assert_eq!(got["tokens_corrupted"], pair["tokens_corrupted"]);
    assert_eq!(got["positions"], pair["positions"]);
    assert_eq!(got["layers"], reference["layers"]);
    assert_eq!(got["hook"], "resid_mid");
    assert_eq!(got["metric"]["type"], "logit_diff");
    assert_eq!(got["metric"]["correct"], case["metric"]["correct"]);
    assert!(got["metric"]["correct_text"].is_string());
    close(&got["clean"], &want["clean"], "clean");
    close(&got["corrupted"], &want["corrupted"], "corrupted");
    let layers = reference["layers"].as_u64().unwrap() as usize;
    let positions = pair["positions"].as_array().unwrap().len();
    for l in 0..layers {
        for j in 0..positions {
            close(
                &got["values"][l][j],
                &want["values"][l][j],
                &format!("values[{l}][{j}]"),
            );
            close(
                &got["normalized"][l][j],
                &want["normalized"][l][j],
                &format!("normalized[{l}][{j}]"),
            );
        }
    }
    assert!(got["seconds"].as_f64().unwrap() >= 0.0);
    // Its own progress, as patched runs done of all, ending complete.
    let mut last = None;
    while let Ok(e) = events.try_recv() {
        if let ServerEvent::Run(p) = e {
            assert_eq!(p.request.as_deref(), Some("sweep-1"));
            assert_eq!(p.stage, RunStage::Patching);
            assert_eq!(p.total, layers * positions);
            last = Some(p.done);
        }
    }
    assert_eq!(last, Some(layers * positions));

    // Positions by list, negative from the end, in request order; a prob metric by string.
    let (status, got) = s
        .post(
            "/patch",
            json!({
                "clean_text": pair["clean"], "corrupted_text": pair["corrupted"],
                "hook": "resid_pre", "positions": [-1, 8],
                "metric": {"type": "prob", "token": pair["tokens_clean"][3]},
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["positions"], json!([positions - 1, 8]));
    assert_eq!(got["metric"]["token_text"], pair["tokens_clean"][3]);
    assert_eq!(got["values"][0].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_sweeps_are_refused_in_words() {
    let s = server_with(|_| {});
    let ok = json!({"clean_text": "The capital of France is", "corrupted_text": "The capital of Spain is",
                    "hook": "resid_pre", "metric": {"type": "prob", "token": 7}});
    let (status, v) = s.post("/patch", ok.clone()).await;
    assert_eq!(
        (status, detail(&v)),
        (StatusCode::BAD_REQUEST, "Model not loaded")
    );
    s.load(tiny("llama")).await;
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    for (body, needle) in [
        (
            with("corrupted_text", json!("The nurse said that she")),
            "13 tokens",
        ),
        (
            with("corrupted_text", json!("The nurse said that she")),
            "same number",
        ),
        (with("hook", json!("attn_scores")), "cannot be patched"),
        (
            with("metric", json!({"type": "prob", "token": "capital"})),
            "metric.token",
        ),
        (with("metric", json!({"type": "kl"})), "metric"),
        (with("metric", json!({"type": "prob"})), "token"),
        (with("positions", json!("some")), "neither \"all\""),
        (with("positions", json!([0.5])), "not a whole number"),
        (with("positions", json!([99])), "out of range"),
        (with("colour", json!(1)), "colour"),
    ] {
        let (status, v) = s.post("/patch", body.clone()).await;
        // Shapes serde refuses are 422, as the original's; checks, 400.
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {v}"
        );
        assert!(detail(&v).contains(needle), "{needle}: {}", detail(&v));
    }
    let (status, v) = s.post("/patch", with("positions", json!("all"))).await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // Over the memory budget: refused with the numbers before any run.
    let small = server_with(|c| c.max_request_bytes = 1 << 10);
    small.load(tiny("llama")).await;
    let (status, v) = small.post("/patch", ok).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail(&v).contains("max-request-mib"), "{}", detail(&v));
}

#[tokio::test]
async fn attribution_over_http_matches_the_reference() {
    let s = llama_server().await;
    let reference = reference_json(&fixtures().join("research/llama/dla_reference.json"));
    let prompt = &reference["prompts"][0];
    for want in prompt["attributions"].as_array().unwrap() {
        let (status, got) = s
            .post(
                "/inference",
                json!({"text": prompt["text"], "attribution": want["request"]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{got}");
        let a = &got["attribution"];
        assert_eq!(a["token_id"], want["token_id"]);
        assert_eq!(a["position"], want["position"]);
        assert!(a["token"].is_string());
        for k in ["logit", "embed", "rest"] {
            close(&a[k], &want[k], k);
        }
        for l in 0..3 {
            close(&a["attn"][l], &want["attn"][l], "attn");
            close(&a["mlp"][l], &want["mlp"][l], "mlp");
            for h in 0..want["heads"][l].as_array().unwrap().len() {
                close(&a["heads"][l][h], &want["heads"][l][h], "heads");
            }
        }
        assert_eq!(a["rest_parts"], json!({}));
    }
    // The position defaults to the last; errors in words.
    let (_, got) = s
        .post(
            "/inference",
            json!({"text": "Hello there", "attribution": {"token": 7}}),
        )
        .await;
    let n = got["input_tokens"].as_array().unwrap().len();
    assert_eq!(got["attribution"]["position"], json!(n - 1));
    let (status, v) = s
        .post(
            "/inference",
            json!({"text": "Hello", "attribution": {"token": 7, "position": 50}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        detail(&v).contains("attribution.position 50"),
        "{}",
        detail(&v)
    );
    let (status, _) = s
        .post(
            "/inference",
            json!({"text": "Hello", "attribution": {"token": 7, "layer": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn tokenize_gives_the_ids_inference_runs() {
    let s = llama_server().await;
    let (status, t) = s
        .post("/tokenize", json!({"text": "The capital of France is"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let (_, run) = s
        .post("/inference", json!({"text": "The capital of France is"}))
        .await;
    assert_eq!(t["tokens"], run["input_tokens"]);
    assert_eq!(
        t["ids"].as_array().unwrap().len(),
        t["tokens"].as_array().unwrap().len()
    );
    // Without special tokens: what a metric or tracked token string encodes to.
    let (_, bare) = s
        .post(
            "/tokenize",
            json!({"text": "The capital of France is", "add_special_tokens": false}),
        )
        .await;
    assert_eq!(
        bare["tokens"].as_array().unwrap()[..],
        t["tokens"].as_array().unwrap()[1..]
    );
    let (status, v) = s
        .post(
            "/tokenize",
            json!({"text": "x", "apply_chat_template": true, "add_special_tokens": false}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
}
