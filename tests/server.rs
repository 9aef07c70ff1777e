//! The HTTP API against the real router (and a real port for concurrency),
//! with the tiny fixture models: the original's paths and JSON shapes, every
//! error as JSON, sessions on disk, PNG exports, and path attacks.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::server::{detail, server_with, TestServer};
use common::*;
use http_body_util::BodyExt;
use logitlens_server::lifecycle::{self, Then};
use logitlens_server::status::{Backend, LoadingStatus};
use logitlens_server::{app, AppState, ServerConfig};
use serde_json::{json, Value};
use tower::ServiceExt;

type Server = TestServer;

async fn loaded(family: &str) -> Server {
    let s = server_with(|_| {});
    s.load(tiny(family)).await;
    s
}

impl TestServer {
    fn tree(&self) -> BTreeSet<PathBuf> {
        fn walk(p: &Path, out: &mut BTreeSet<PathBuf>) {
            for e in std::fs::read_dir(p).unwrap().flatten() {
                out.insert(e.path());
                if e.file_type().unwrap().is_dir() {
                    walk(&e.path(), out);
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(
            self.dir
                .path()
                .parent()
                .unwrap()
                .join(self.dir.path().file_name().unwrap())
                .as_path(),
            &mut out,
        );
        out
    }
}

#[tokio::test]
async fn model_lifecycle_and_status() {
    let s = server_with(|_| {});
    let (st, v) = s.get("/model_status").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["loaded"], false);
    assert_eq!(v["backend"], "custom");
    let (st, v) = s.post("/inference", json!({"text": "hi"})).await;
    assert_eq!(
        (st, detail(&v)),
        (StatusCode::BAD_REQUEST, "Model not loaded")
    );

    let llama = tiny("llama").display().to_string();
    let (st, v) = s
        .post(
            "/load_model",
            json!({"model_name": llama, "backend": "custom"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "loaded");
    assert_eq!(v["model_class"], "LlamaModel");
    assert!(v["config"]
        .as_str()
        .unwrap()
        .starts_with("LlamaConfig(vocab_size=512"));
    let (_, v) = s
        .post(
            "/load_model",
            json!({"model_name": llama, "backend": "custom"}),
        )
        .await;
    assert_eq!(v["status"], "already_loaded");
    assert_eq!(v["loaded"], true);
    let (_, v) = s.get("/model_status").await;
    assert_eq!(
        (
            v["loaded"].clone(),
            v["status"].clone(),
            v["model_name"].clone()
        ),
        (json!(true), json!("ready"), json!(llama))
    );

    // A failed load keeps the previous model in service.
    let (st, v) = s
        .post(
            "/load_model",
            json!({"model_name": tiny("gpt2").display().to_string()}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        detail(&v).contains("gpt2") && detail(&v).contains("supports"),
        "{v}"
    );
    let (st, v) = s
        .post(
            "/load_model",
            json!({"model_name": "no-such-org/no-such-model"}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let (_, v) = s.get("/model_status").await;
    assert_eq!(v["model_name"], json!(llama));
    assert!(v["last_error"]
        .as_str()
        .unwrap()
        .contains("no-such-org/no-such-model"));
    let (st, _) = s.post("/inference", json!({"text": "still here"})).await;
    assert_eq!(st, StatusCode::OK);

    // An unknown backend is refused; the hooked one (alias transformerlens) runs other families.
    let (st, v) = s
        .post(
            "/load_model",
            json!({"model_name": llama, "backend": "pytorch"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(detail(&v).contains("unknown backend"), "{v}");
    let (st, v) = s
        .post(
            "/load_model",
            json!({"model_name": llama, "backend": "custom"}),
        )
        .await;
    assert_eq!(
        (st, v["status"].clone()),
        (StatusCode::OK, json!("already_loaded"))
    );

    // While a load runs, inference is a 409 and status says loading.
    lifecycle::set_loading(&s.state, Some(LoadingStatus::new("x", Backend::Custom)));
    let (st, v) = s.post("/inference", json!({"text": "hi"})).await;
    assert_eq!((st, detail(&v)), (StatusCode::CONFLICT, "model is loading"));
    let (_, v) = s.get("/model_status").await;
    assert_eq!(v["status"], "loading");
    assert_eq!(v["loading"]["model_name"], "x");
    lifecycle::set_loading(&s.state, None);

    let gpt2 = tiny("gpt2").display().to_string();
    let (st, v) = s
        .post(
            "/load_model",
            json!({"model_name": gpt2, "backend": "transformerlens"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["backend"].clone(),
            v["family"].clone(),
            v["model_class"].clone()
        ),
        (
            json!("transformerlens"),
            json!("gpt2"),
            json!("HookedTransformer")
        )
    );
    let (_, v) = s
        .post(
            "/load_model",
            json!({"model_name": gpt2, "backend": "hooked"}),
        )
        .await;
    assert_eq!(
        v["status"], "already_loaded",
        "the alias names the same backend"
    );
    let (st, v) = s
        .post("/inference", json!({"text": "hi", "lens_type": "combined"}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["logit_lens"].as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn inference_has_the_originals_shape() {
    let s = loaded("llama").await;
    let body = json!({"text": "The capital of France is", "return_attention": true, "lens_type": "combined",
        "interventions": {"layer_1_output": [{"type": "scale", "value": 0.5, "token_index": -1}]},
        "attention_aggregation": "ignored extra field"});
    let (st, v) = s.post("/inference", body).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    // The original's fields in its order, then the receipts of what applied.
    assert_eq!(
        keys,
        [
            "text",
            "input_tokens",
            "logit_lens",
            "attention",
            "receipts"
        ]
    );
    assert_eq!(v["receipts"][0]["key"], "layer_1_output");
    assert_eq!(v["input_tokens"].as_array().unwrap().len(), 13);
    let rows = v["logit_lens"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[7]["layer_name"], "Final Output");
    assert_eq!(rows[3]["layer_index"], 3);
    let p = &rows[0]["predictions"][0][0];
    assert!(p["token"].is_string() && p["prob"].is_f64() && p["id"].is_u64());
    assert_eq!(v["attention"].as_array().unwrap().len(), 3);
    assert_eq!(v["attention"][0][0][0].as_array().unwrap().len(), 13);
    let (_, v) = s.post("/inference", json!({"text": "x"})).await;
    assert!(v.get("attention").is_none());
}

/// Receipts alike but for their norms, which agree within 1e-6 (relative
/// above 1): a batch's products may sum in other spans than a run alone's.
fn same_receipts(got: &Value, want: &Value, what: &str) {
    let (g, w) = (got.as_array().unwrap(), want.as_array().unwrap());
    assert_eq!(g.len(), w.len(), "{what}: receipts");
    for (a, b) in g.iter().zip(w) {
        let (mut a, mut b) = (a.clone(), b.clone());
        let (x, y) = (a["delta_norm"].as_f64(), b["delta_norm"].as_f64());
        match (x, y) {
            (Some(x), Some(y)) => assert!(
                (x - y).abs() <= 1e-6 * y.abs().max(1.0),
                "{what}: {x} vs {y}"
            ),
            _ => assert_eq!(x, y, "{what}"),
        }
        a["delta_norm"] = Value::Null;
        b["delta_norm"] = Value::Null;
        assert_eq!(a, b, "{what}: receipts");
    }
}

/// POST /inference_batch answers each request as /inference does (the same
/// tokens in every cell, probabilities within 1e-6), says which went
/// through together, names each run for /save_state, and refuses a bad
/// prompt by its index.
#[tokio::test]
async fn a_batch_answers_each_prompt_as_inference_does() {
    let s = loaded("llama").await;
    let requests = json!([
        {"text": "The capital of France is"},
        {"text": "Hi there", "entropy": true},
        {"text": "The capital of France is",
         "interventions": {"layer_1_output": [{"type": "scale", "value": 0.5}]}},
        {"text": "The capital of France is",
         "interventions": {"layer_1_attention": [{"type": "block_attention",
             "source_tokens": [0], "target_tokens": [-1]}]}},
    ]);
    let (status, bytes, headers) = s
        .raw(
            Method::POST,
            "/inference_batch",
            Some(json!({"requests": requests}).to_string()),
            &[],
        )
        .await;
    let got: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, StatusCode::OK, "{got}");
    // Each under its own interventions in one pass; blocked attention alone.
    assert_eq!(got["passes"], json!([[0, 2, 1], [3]]));
    let results = got["results"].as_array().unwrap();
    for (i, req) in requests.as_array().unwrap().iter().enumerate() {
        let (st, want) = s.post("/inference", req.clone()).await;
        assert_eq!(st, StatusCode::OK);
        let g = &results[i];
        assert_eq!(g["input_tokens"], want["input_tokens"], "prompt {i}");
        same_receipts(&g["receipts"], &want["receipts"], &format!("prompt {i}"));
        assert_eq!(g.get("entropy").is_some(), want.get("entropy").is_some());
        same_lens_cells(g, &want, &format!("prompt {i}"));
    }
    let ids = headers
        .get("x-logitlens-run-ids")
        .unwrap()
        .to_str()
        .unwrap();
    let ids: Vec<u64> = ids.split(',').map(|x| x.parse().unwrap()).collect();
    assert_eq!(ids.len(), 4);
    let (st, saved) = s
        .post(
            "/save_state",
            json!({"name": "second_of_batch", "run_id": ids[1]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{saved}");

    let (st, v) = s
        .post(
            "/inference_batch",
            json!({"requests": [{"text": "fine"},
                {"text": "bad", "interventions": {"layer_99_output": [{"type": "zero"}]}}]}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["detail"].as_str().unwrap().starts_with("prompt 1: "),
        "{v}"
    );
    let (st, v) = s.post("/inference_batch", json!({"requests": []})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = s.post("/inference_batch", json!({"texts": ["a"]})).await;
    assert!(st.is_client_error(), "{v}");
}

/// Decode an `attention_f16` / GET /runs/{id}/attention object.
fn unpack(v: &Value) -> Vec<f32> {
    let p: logitlens_engine::attention::Packed = serde_json::from_value(v.clone()).unwrap();
    logitlens_engine::attention::unpack(&p).unwrap()
}

impl Server {
    /// POST /inference, returning the body and the run id header.
    async fn inference(&self, body: Value) -> (StatusCode, Value, Option<u64>) {
        let (st, bytes, h) = self
            .raw(Method::POST, "/inference", Some(body.to_string()), &[])
            .await;
        let id = h
            .get("x-logitlens-run-id")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        (st, serde_json::from_slice(&bytes).unwrap(), id)
    }
}

#[tokio::test]
async fn compact_attention_equals_the_json_form() {
    let s = loaded("llama").await;
    let text = "The capital of France is";
    let block = json!({"layer_0_attention": [{"type": "block_attention", "source_tokens": [0], "target_tokens": [3]}]});
    let (st, full, _) = s
        .inference(json!({"text": text, "return_attention": true, "interventions": block}))
        .await;
    assert_eq!(st, StatusCode::OK);
    let full = full["attention"].clone();
    let (n_layers, heads, t) = (3usize, full[0].as_array().unwrap().len(), 13usize);
    let at = |l: usize, h: usize, q: usize, k: usize| full[l][h][q][k].as_f64().unwrap() as f32;

    // f16, two layers out of order, every head.
    let (st, v, id) = s
        .inference(
            json!({"text": text, "return_attention": true, "interventions": block,
            "attention_format": "f16", "attention_layers": [2, 0]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(
        v.get("attention").is_none(),
        "the compact form replaces the nested one"
    );
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "text",
            "input_tokens",
            "logit_lens",
            "attention_f16",
            "receipts"
        ]
    );
    let p = &v["attention_f16"];
    assert_eq!(
        (
            p["layers"].clone(),
            p["heads"].as_u64(),
            p["tokens"].as_u64(),
            p["reduce"].as_str()
        ),
        (
            json!([2, 0]),
            Some(heads as u64),
            Some(t as u64),
            Some("none")
        )
    );
    let data = unpack(p);
    assert_eq!(data.len(), 2 * heads * t * t);
    for (i, &l) in [2usize, 0].iter().enumerate() {
        for h in 0..heads {
            for q in 0..t {
                for k in 0..t {
                    let got = data[((i * heads + h) * t + q) * t + k];
                    let want = at(l, h, q, k);
                    assert!(
                        (got - want).abs() <= want.abs() / 1024.0 + 1e-7,
                        "l{l} h{h} q{q} k{k}: {got} vs {want}"
                    );
                }
            }
        }
    }
    // The blocked entry is exactly zero in f16 too.
    assert_eq!(data[((heads) * t + 3) * t], 0.0);

    // Head means, JSON form, one layer.
    let (_, v, _) = s
        .inference(
            json!({"text": text, "return_attention": true, "interventions": block,
            "attention_layers": [1], "attention_reduce": "head_mean"}),
        )
        .await;
    let a = &v["attention"];
    assert_eq!(
        (a.as_array().unwrap().len(), a[0].as_array().unwrap().len()),
        (1, 1)
    );
    let mean = (0..heads).map(|h| at(1, h, 7, 2)).sum::<f32>() / heads as f32;
    assert!((a[0][0][7][2].as_f64().unwrap() as f32 - mean).abs() < 1e-6);

    // The same run's attention on demand.
    let id = id.unwrap();
    let (st, v) = s
        .get(&format!(
            "/runs/{id}/attention?layers=1&format=f16&reduce=head_mean"
        ))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["run_id"].as_u64(),
            v["heads"].as_u64(),
            v["layers"].clone()
        ),
        (Some(id), Some(1), json!([1]))
    );
    assert!((unpack(&v)[7 * t + 2] - mean).abs() <= mean / 1024.0 + 1e-7);
    let (st, v) = s.get(&format!("/runs/{id}/attention")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v["attention"], full,
        "default: every layer and head as JSON"
    );
    assert_eq!(v["layers"], json!([0, 1, 2]));
    let _ = n_layers;

    // Errors say what to fix.
    for (body, needle) in [
        (
            json!({"text": text, "attention_format": "f16"}),
            "return_attention: true",
        ),
        (
            json!({"text": text, "return_attention": true, "attention_format": "png"}),
            "json, f16",
        ),
        (
            json!({"text": text, "return_attention": true, "attention_layers": [3]}),
            "layers 0..2",
        ),
        (
            json!({"text": text, "return_attention": true, "attention_layers": []}),
            "empty",
        ),
        (
            json!({"text": text, "return_attention": true, "attention_reduce": "max"}),
            "head_mean",
        ),
    ] {
        let (st, v) = s.post("/inference", body.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        assert!(detail(&v).contains(needle), "{body}: {v}");
    }
    for (path, status, needle) in [
        (
            format!("/runs/{id}/attention?layers=9"),
            StatusCode::BAD_REQUEST,
            "layers 0..2",
        ),
        (
            format!("/runs/{id}/attention?layers=a"),
            StatusCode::BAD_REQUEST,
            "not a layer index",
        ),
        (
            format!("/runs/{id}/attention?format=xml"),
            StatusCode::BAD_REQUEST,
            "json, f16",
        ),
        (
            "/runs/abc/attention".to_string(),
            StatusCode::BAD_REQUEST,
            "not a number",
        ),
        (
            "/runs/999999/attention".to_string(),
            StatusCode::NOT_FOUND,
            "run the request again",
        ),
    ] {
        let (st, v) = s.get(&path).await;
        assert_eq!(st, status, "{path}: {v}");
        assert!(detail(&v).contains(needle), "{path}: {v}");
    }
}

/// Runs are kept within a memory budget (the newest always): an older one
/// is gone once newer ones fill it, and the 404 says how to keep more.
#[tokio::test]
async fn kept_runs_are_bounded_by_memory() {
    let s = server_with(|c| c.kept_run_bytes = 1);
    lifecycle::load(
        &s.state,
        tiny("llama").display().to_string(),
        Backend::Custom,
        Then::Serve,
    )
    .await
    .unwrap();
    let body = json!({"text": TEXT, "return_attention": true});
    let (_, _, first) = s.inference(body.clone()).await;
    let first = first.unwrap();
    let (st, _) = s.get(&format!("/runs/{first}/attention")).await;
    assert_eq!(st, StatusCode::OK, "the newest run is kept");
    s.inference(body).await;
    let (st, v) = s.get(&format!("/runs/{first}/attention")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v2) = s.post("/save_state", json!({"run_id": first})).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert!(detail(&v2).contains("--kept-runs-mib"), "{v2}");
}

/// POST /inference: (reused layers, body bytes).
async fn call(s: &Server, body: Value) -> (usize, Vec<u8>) {
    let (st, bytes, h) = s
        .raw(Method::POST, "/inference", Some(body.to_string()), &[])
        .await;
    assert_eq!(st, StatusCode::OK);
    let reused: usize = h["x-logitlens-reused-layers"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(h["server-timing"]
        .to_str()
        .unwrap()
        .starts_with("forward;dur="));
    (reused, bytes)
}

#[tokio::test]
async fn reruns_take_over_earlier_layers_over_http() {
    let s = loaded("llama").await;
    let text = "The capital of France is";
    let req = |iv: Value| json!({"text": text, "lens_type": "combined", "return_attention": true, "interventions": iv});
    let (r, _) = call(&s, req(json!({}))).await;
    assert_eq!(r, 0, "the first run is cold");
    let late = json!({"layer_2_output": [{"type": "zero"}]});
    let (r, warm) = call(&s, req(late.clone())).await;
    assert_eq!(r, 2, "layers 0 and 1 taken over");
    // The same request on a fresh server (cold) answers byte for byte the same.
    let fresh = loaded("llama").await;
    let (_, cold, h) = fresh
        .raw(Method::POST, "/inference", Some(req(late).to_string()), &[])
        .await;
    assert_eq!(h["x-logitlens-reused-layers"], "0");
    assert_eq!(warm, cold);
    // After loading another model, the old runs are not taken over.
    lifecycle::load(
        &s.state,
        tiny("qwen3").display().to_string(),
        Backend::Custom,
        Then::Serve,
    )
    .await
    .unwrap();
    let (r, _) = call(&s, req(json!({}))).await;
    assert_eq!(r, 0);
}

#[tokio::test]
async fn every_error_is_json_with_a_fitting_status() {
    let s = loaded("llama").await;
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"text": "hi", "lens_type": "diagonal"}),
            StatusCode::BAD_REQUEST,
            "unknown lens_type",
        ),
        (
            json!({"text": "hi", "interventions": {"layer_9_output": [{"type": "zero"}]}}),
            StatusCode::BAD_REQUEST,
            "out of range",
        ),
        (
            json!({"text": "hi", "interventions": {"layer_0_output": [{"type": "scale"}]}}),
            StatusCode::BAD_REQUEST,
            "needs a numeric `value`",
        ),
        (
            json!({"text": "hi", "interventions": {"layer_0_output": {"type": "zero"}}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "interventions",
        ),
        (
            json!({"interventions": {}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "text",
        ),
        (
            json!({"text": "hi", "interventions": {"layer_0_output": [{"type": "zero", "token_index": 1.5}]}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "token_index",
        ),
        (
            json!({"text": "hi", "apply_chat_template": "yes"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "apply_chat_template",
        ),
    ];
    for (body, status, want) in cases {
        let (st, v) = s.post("/inference", body.clone()).await;
        assert_eq!(st, status, "{body} -> {v}");
        assert!(detail(&v).contains(want), "{body} -> {v}");
    }
    // Not JSON at all, wrong content type, wrong method, unknown path.
    let (st, b, _) = s
        .raw(Method::POST, "/inference", Some("{nope".into()), &[])
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(serde_json::from_slice::<Value>(&b).unwrap()["detail"].is_string());
    let req = Request::post("/inference").body(Body::from("{}")).unwrap();
    let resp = app(s.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(serde_json::from_slice::<Value>(&b).unwrap()["detail"].is_string());
    let (st, v) = s.get("/inference").await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    assert!(v["detail"].is_string());
    let (st, v) = s.post("/no_such_endpoint", json!({})).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(v["detail"].is_string());
}

#[tokio::test]
async fn limits_body_size_and_prompt_tokens() {
    let s = server_with(|c| {
        c.max_body_bytes = 4096;
        c.max_prompt_tokens = 20;
    });
    lifecycle::load(
        &s.state,
        tiny("llama").display().to_string(),
        Backend::Custom,
        Then::Serve,
    )
    .await
    .unwrap();
    let (st, v) = s
        .post("/inference", json!({"text": "x".repeat(10_000)}))
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(detail(&v), "request body too large");
    let (st, v) = s
        .post(
            "/inference",
            json!({"text": "one two three four five six seven eight nine ten"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(detail(&v).contains("limit is 20 tokens"), "{v}");
}

#[tokio::test]
async fn cors_allows_only_local_origins() {
    let s = loaded("llama").await;
    let pre = |origin: &'static str| {
        let s = &s;
        async move {
            let hs = [
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ];
            s.raw(Method::OPTIONS, "/inference", None, &hs).await.2
        }
    };
    let h = pre("http://localhost:5173").await;
    assert_eq!(
        h.get("access-control-allow-origin").unwrap(),
        "http://localhost:5173"
    );
    assert!(h.get("access-control-allow-credentials").is_none());
    let h = pre("http://evil.example").await;
    assert!(h.get("access-control-allow-origin").is_none());
    let (_, _, h) = s
        .raw(
            Method::GET,
            "/model_status",
            None,
            &[("origin", "http://evil.example")],
        )
        .await;
    assert!(h.get("access-control-allow-origin").is_none());
}

fn npz_arrays(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            assert_eq!(f.compression(), zip::CompressionMethod::Stored);
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut b).unwrap();
            (f.name().to_string(), b)
        })
        .collect()
}

#[tokio::test]
async fn sessions_save_list_load_delete_with_tensors() {
    let s = loaded("llama").await;
    let (st, v) = s.post("/save_state", json!({"name": "x"})).await;
    assert_eq!(
        (st, detail(&v)),
        (StatusCode::BAD_REQUEST, "No state to save")
    );
    let req = json!({"text": "The capital of France is", "return_attention": true, "lens_type": "post_attention",
        "interventions": {"layer_0_mlp_output": [{"type": "scale", "value": 2.0}]}});
    let (_, resp) = s.post("/inference", req).await;
    let (st, v) = s.post("/save_state", json!({"name": "my run/../x"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let id = v["session_id"].as_str().unwrap().to_string();
    assert!(
        id.ends_with("_my_run___x") || id.ends_with("_my_run_._x") || !id.contains('/'),
        "{id}"
    );
    assert!(!id.contains('/') && !id.contains(".."));
    assert_eq!(v["path"], format!("saved_states/{id}"));
    // Saving by run id saves that run, even after another client ran something else.
    let (st_a, _, h) = s
        .raw(
            Method::POST,
            "/inference",
            Some(json!({"text": "first run of this tab"}).to_string()),
            &[],
        )
        .await;
    assert_eq!(st_a, StatusCode::OK);
    let run_id: u64 = h["x-logitlens-run-id"].to_str().unwrap().parse().unwrap();
    s.post("/inference", json!({"text": "another client's run"}))
        .await;
    let (_, v_run) = s
        .post("/save_state", json!({"name": "by_id", "run_id": run_id}))
        .await;
    let cfg_run: Value = serde_json::from_slice(
        &std::fs::read(
            s.dir
                .path()
                .join("saved_states")
                .join(v_run["session_id"].as_str().unwrap())
                .join("config.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(cfg_run["text"], "first run of this tab");
    let (st_gone, v_gone) = s.post("/save_state", json!({"run_id": 999_999})).await;
    assert_eq!(st_gone, StatusCode::NOT_FOUND);
    assert!(detail(&v_gone).contains("no longer kept"));
    s.post(
        "/delete_session",
        json!({"session_id": v_run["session_id"]}),
    )
    .await;
    // Same name, same second: a distinct session.
    let (_, v2) = s.post("/save_state", json!({"name": "my run/../x"})).await;
    assert_ne!(v2["session_id"], v["session_id"]);

    let dir = s.dir.path().join("saved_states").join(&id);
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let keys: Vec<&String> = cfg.as_object().unwrap().keys().collect();
    assert_eq!(
        &keys[..7],
        [
            "text",
            "interventions",
            "lens_type",
            "model_name",
            "backend",
            "apply_chat_template",
            "results"
        ]
    );
    assert_eq!(
        cfg["interventions"]["layer_0_mlp_output"][0],
        json!({"type": "scale", "value": 2.0, "vector": null, "token_index": null, "source_tokens": null, "target_tokens": null, "all_layers": null})
    );
    assert_eq!(cfg["results"]["logit_lens"], resp["logit_lens"]);
    assert_eq!(cfg["input_ids"].as_array().unwrap().len(), 13);
    assert_eq!(cfg["model_source"]["kind"], "dir");
    let sha = cfg["model_source"]["weights_sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64, "sha256 of the weights");
    assert_eq!(cfg["model_source"]["stored_dtype"], "F32");
    assert_eq!(cfg["compute_dtype"], "f64");
    assert_eq!(cfg["app"]["name"], "logitlens");

    // tensors.npz, array by array.
    let arrays = npz_arrays(&dir.join("tensors.npz"));
    let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "hidden_states.npy",
            "logits.npy",
            "layer_names.npy",
            "post_attention_states.npy",
            "attentions.npy"
        ]
    );
    let mut npz = Npz::open(&dir.join("tensors.npz"));
    let hs = npz.f32("hidden_states");
    assert_eq!(hs.shape(), [5, 1, 13, 64]);
    assert_eq!(npz.f32("logits").shape(), [1, 13, 512]);
    assert_eq!(npz.f32("post_attention_states").shape(), [3, 1, 13, 64]);
    let att = npz.f32("attentions");
    assert_eq!(att.shape(), [3, 1, 4, 13, 13]);
    for l in 0..3 {
        for h in 0..4 {
            for q in 0..13 {
                for k in 0..13 {
                    let want = resp["attention"][l][h][q][k].as_f64().unwrap() as f32;
                    assert_eq!(att[[l, 0, h, q, k]], want);
                }
            }
        }
    }
    // layer_names: numpy unicode, no pickle.
    let ln = &arrays[2].1;
    let hlen = u16::from_le_bytes([ln[8], ln[9]]) as usize;
    let header = std::str::from_utf8(&ln[10..10 + hlen]).unwrap();
    assert!(
        header.contains("'descr': '<U12'") && header.contains("(5,)"),
        "{header}"
    );
    // The lens rows recomputed from the saved states equal the response.
    let m = s.state.active().unwrap().0;
    let row2: Vec<f32> = hs.index_axis(ndarray::Axis(0), 2).iter().copied().collect();
    let t = candle_core::Tensor::from_vec(row2, (13, 64), &candle_core::Device::Cpu)
        .unwrap()
        .to_dtype(m.model.dtype())
        .unwrap();
    let logits = m.model.unembed(&t).unwrap();
    let last = flat(&logits.narrow(0, 12, 1).unwrap());
    let top = logitlens_engine::lens::top_k_softmax(&last);
    assert_eq!(
        top[0].0 as u64,
        resp["logit_lens"][2]["predictions"][12][0]["id"]
            .as_u64()
            .unwrap()
    );

    // Listing, newest first.
    let (_, list) = s.get("/sessions").await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list[0]["id"].as_str().unwrap() > list[1]["id"].as_str().unwrap());
    let entry = list.iter().find(|e| e["id"] == id.as_str()).unwrap();
    assert_eq!(entry["timestamp"].as_str().unwrap().len(), 15);
    assert!(entry["name"].as_str().unwrap().starts_with("my_run"));

    // Load: the config (with legacy back-fill) becomes what save_state saves.
    let (st, v) = s.post("/load_session", json!({"session_id": id})).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["text"], "The capital of France is");
    assert_eq!(v["lens_type"], "post_attention");
    let (_, v3) = s.post("/save_state", json!({"name": "resaved"})).await;
    let id3 = v3["session_id"].as_str().unwrap();
    let d3 = s.dir.path().join("saved_states").join(id3);
    assert_eq!(
        std::fs::read(d3.join("tensors.npz")).unwrap(),
        std::fs::read(dir.join("tensors.npz")).unwrap()
    );

    // A legacy config without backend/apply_chat_template.
    let legacy = s.dir.path().join("saved_states/20250101_000000_legacy");
    std::fs::create_dir_all(&legacy).unwrap();
    std::fs::write(legacy.join("config.json"), r#"{"text":"old","interventions":{},"lens_type":"block_output","model_name":"m","results":{"text":"old","logit_lens":[]}}"#).unwrap();
    let (st, v) = s
        .post(
            "/load_session",
            json!({"session_id": "20250101_000000_legacy"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (v["backend"].clone(), v["apply_chat_template"].clone()),
        (json!("custom"), json!(false))
    );
    // Written before configs had versions: version 1, read as such.
    assert_eq!(v["version"], 1);
    // A config of a later version: the fields this one does not know are
    // kept through a re-save, which writes this version's layout.
    let later = s.dir.path().join("saved_states/20250101_000002_later");
    std::fs::create_dir_all(&later).unwrap();
    let fields = r#"{"version":9,"text":"new","lens_type":"combined","model_name":"m","interventions":{"layer_0_output":{"type":"zero"}},"future":{"kept":[1,2]}}"#;
    std::fs::write(later.join("config.json"), fields).unwrap();
    let (st, v) = s
        .post(
            "/load_session",
            json!({"session_id": "20250101_000002_later"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["future"], json!({"kept": [1, 2]}));
    // The original's older web app saved one operation per key: kept as written.
    assert_eq!(v["interventions"]["layer_0_output"]["type"], "zero");
    let (_, saved) = s.post("/save_state", json!({"name": "later"})).await;
    let id_later = saved["session_id"].as_str().unwrap();
    let resaved: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            s.dir
                .path()
                .join("saved_states")
                .join(id_later)
                .join("config.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (resaved["version"].clone(), resaved["future"].clone()),
        (json!(2), json!({"kept": [1, 2]}))
    );
    // What is not a session's config is refused, naming the file.
    std::fs::write(later.join("config.json"), r#"{"text": 5}"#).unwrap();
    let (st, v) = s
        .post(
            "/load_session",
            json!({"session_id": "20250101_000002_later"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        detail(&v).contains("config.json is not a session's config"),
        "{v}"
    );

    // Delete.
    let (st, v) = s.post("/delete_session", json!({"session_id": id})).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v, json!({"status": "deleted", "session_id": id}));
    assert!(!dir.exists());
    let (st, v) = s.post("/delete_session", json!({"session_id": id})).await;
    assert_eq!(
        (st, detail(&v)),
        (StatusCode::NOT_FOUND, "Session not found")
    );
    let (st, _) = s.post("/load_session", json!({"session_id": id})).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // A session folder without config.json.
    std::fs::create_dir_all(s.dir.path().join("saved_states/20250101_000001_empty")).unwrap();
    let (st, v) = s
        .post(
            "/load_session",
            json!({"session_id": "20250101_000001_empty"}),
        )
        .await;
    assert_eq!(
        (st, detail(&v)),
        (StatusCode::NOT_FOUND, "Config file not found")
    );
}

#[tokio::test]
async fn path_attacks_change_nothing() {
    let s = loaded("llama").await;
    s.post("/inference", json!({"text": "hi"})).await;
    let (_, v) = s.post("/save_state", json!({"name": "keep"})).await;
    let keep = v["session_id"].as_str().unwrap().to_string();
    // Things an attacker would like to reach, next to and above saved_states/.
    std::fs::write(s.dir.path().join("victim.txt"), "x").unwrap();
    std::fs::create_dir_all(s.dir.path().join("victim_dir")).unwrap();
    std::fs::write(s.dir.path().join("victim_dir/config.json"), "{}").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        s.dir.path().join("victim_dir"),
        s.dir.path().join("saved_states/20250101_000000_link"),
    )
    .unwrap();
    let before = s.tree();
    let long = "a".repeat(5000);
    let attacks = [
        "",
        ".",
        "..",
        "../x",
        "../victim_dir",
        "/etc",
        "/",
        "a/../../b",
        "%2e%2e",
        "..%2f..%2fetc",
        "%2E%2E%2F",
        "saved_states/../victim_dir",
        "..\\victim_dir",
        "./",
        "20250101_000000_link",
        &long,
        "éé/../..",
        "\u{202e}..",
        "\0",
        ".tmp-1-1",
        "~",
        "victim_dir/..",
    ];
    for a in attacks {
        for ep in ["/load_session", "/delete_session"] {
            let (st, v) = s.post(ep, json!({"session_id": a})).await;
            assert!(
                st == StatusCode::BAD_REQUEST || st == StatusCode::NOT_FOUND,
                "{ep} {a:?}: {st}"
            );
            assert!(v["detail"].is_string());
        }
        let (st, v) = s.post("/save_state", json!({"name": a})).await;
        assert_eq!(st, StatusCode::OK, "{a:?}: {v}");
        let id = v["session_id"].as_str().unwrap();
        assert!(
            !id.contains('/') && !id.contains("..") && !id.starts_with('.'),
            "{a:?} -> {id}"
        );
        let p = s.dir.path().join("saved_states").join(id);
        assert!(
            p.parent().unwrap() == s.dir.path().join("saved_states") && p.is_dir(),
            "{a:?} -> {id}"
        );
        s.post("/delete_session", json!({"session_id": id})).await;
        for (ep, body) in [
            (
                "/save_visualization",
                json!({"attention_data": [[1.0]], "tokens": ["a"], "title": a}),
            ),
            (
                "/save_grid_visualization",
                json!({"grid_data": [[[1.0]]], "tokens": ["a"], "title": a, "grid_type": "layer_grid"}),
            ),
        ] {
            let (st, v) = s.post(ep, body).await;
            assert_eq!(st, StatusCode::OK, "{ep} {a:?}: {v}");
            let fp = v["filepath"].as_str().unwrap();
            let name = fp.strip_prefix("attention_visualizations/").unwrap();
            assert!(!name.contains('/') && !name.contains(".."), "{fp}");
            std::fs::remove_file(s.dir.path().join(fp)).unwrap();
        }
    }
    assert_eq!(s.tree(), before, "the folder tree changed");
    assert!(s.dir.path().join("saved_states").join(&keep).is_dir());
    assert!(s.dir.path().join("victim_dir/config.json").is_file());
}

#[tokio::test]
async fn png_exports_are_written_and_decode() {
    let s = loaded("llama").await;
    let m: Vec<Vec<f32>> = (0..5)
        .map(|q| {
            (0..5)
                .map(|k| if k <= q { 1.0 / (q + 1) as f32 } else { 0.0 })
                .collect()
        })
        .collect();
    let tokens: Vec<String> = ["<s>", "T", "he", "␣c", "\\n"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (st, v) = s.post("/save_visualization", json!({"attention_data": m, "tokens": tokens, "title": "Llama-3.2-1B_The capita_L0_Mean"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "success");
    let fp = v["filepath"].as_str().unwrap();
    assert!(
        fp.starts_with("attention_visualizations/")
            && fp.ends_with("_Llama_3_2_1B_The_capita_L0_Mean.png"),
        "{fp}"
    );
    let size = |p: &str| {
        let d = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(s.dir.path().join(p)).unwrap(),
        ));
        let r = d.read_info().unwrap();
        (r.info().width, r.info().height)
    };
    assert_eq!(size(fp), (1200, 1000));
    for (n, kind, h) in [
        (1usize, "layer_grid", 400u32),
        (4, "head_grid", 400),
        (5, "head_grid", 800),
    ] {
        let grid = vec![m.clone(); n];
        let (st, v) = s
            .post(
                "/save_grid_visualization",
                json!({"grid_data": grid, "tokens": tokens, "title": "grid", "grid_type": kind}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(size(v["filepath"].as_str().unwrap()), (2000, h));
    }
    // Bad inputs are 400s with a reason, not 500s.
    let (st, v) = s
        .post(
            "/save_visualization",
            json!({"attention_data": m, "tokens": ["a"], "title": "t"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = s
        .post(
            "/save_grid_visualization",
            json!({"grid_data": [], "tokens": tokens, "title": "t", "grid_type": "x"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn models_openapi_events_and_the_spa() {
    let s = loaded("llama").await;
    let (st, v) = s.get("/models").await;
    assert_eq!(st, StatusCode::OK);
    let list = v.as_array().unwrap();
    assert!(list
        .iter()
        .any(|m| m["id"] == "Qwen/Qwen3-0.6B" && m["family"] == "Qwen3"));
    assert!(list
        .iter()
        .all(|m| m["cached"].is_boolean() && m["name"].is_string()));
    let (st, v) = s.get("/openapi.json").await;
    assert_eq!(st, StatusCode::OK);
    for p in [
        "/load_model",
        "/model_status",
        "/inference",
        "/save_state",
        "/sessions",
        "/load_session",
        "/delete_session",
        "/save_visualization",
        "/save_grid_visualization",
        "/models",
        "/events",
        "/runs/{run_id}/attention",
        "/diff_sessions",
    ] {
        assert!(v["paths"].get(p).is_some(), "{p} missing from openapi");
    }
    assert!(v["components"]["schemas"]["InferenceRequest"].is_object());
    for field in [
        "compare",
        "track_tokens",
        "entropy",
        "analysis",
        "attention_format",
    ] {
        assert!(
            v["components"]["schemas"]["InferenceRequest"]["properties"][field].is_object(),
            "{field} missing from the InferenceRequest schema"
        );
    }
    for schema in ["DiffCell", "Receipt", "Analysis", "TrackedCell", "Packed"] {
        assert!(
            v["components"]["schemas"][schema].is_object(),
            "{schema} schema missing"
        );
    }

    // /events starts with the current status.
    let req = Request::get("/events").body(Body::empty()).unwrap();
    let resp = app(s.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = resp.into_body();
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let text = String::from_utf8(frame.to_vec()).unwrap();
    assert!(
        text.starts_with("event: status") && text.contains("\"loaded\":true"),
        "{text}"
    );

    // No built app: a page saying how to build it. Built: served, with SPA fallback.
    let (st, b, _) = s.raw(Method::GET, "/", None, &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert!(String::from_utf8(b).unwrap().contains("npm run build"));
    let dist = tempfile::tempdir().unwrap();
    std::fs::write(dist.path().join("index.html"), "<html>spa</html>").unwrap();
    std::fs::write(dist.path().join("app.js"), "console.log(1)").unwrap();
    let s2 = server_with(|c| c.frontend_dir = Some(dist.path().to_path_buf()));
    for (path, want) in [
        ("/", "<html>spa</html>"),
        ("/app.js", "console.log(1)"),
        ("/some/client/route", "<html>spa</html>"),
    ] {
        let (st, b, _) = s2.raw(Method::GET, path, None, &[]).await;
        assert_eq!(st, StatusCode::OK, "{path}");
        assert_eq!(String::from_utf8(b).unwrap(), want, "{path}");
    }
}

/// 32 clients on a real port mixing inference, model swaps and saves: no
/// crash, every answer whole, every saved session self-consistent.
#[test]
fn concurrent_clients_on_a_real_port() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::new(ServerConfig {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    })
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let st = state.clone();
    rt.spawn(async move {
        let forever = std::future::pending::<()>();
        logitlens_server::serve::serve_on(
            listener,
            app(st),
            std::time::Duration::from_secs(10),
            forever,
        )
        .await
        .unwrap()
    });
    rt.block_on(lifecycle::load(
        &state,
        tiny("llama").display().to_string(),
        Backend::Custom,
        Then::Serve,
    ))
    .unwrap();
    let models = [
        tiny("llama").display().to_string(),
        tiny("qwen3").display().to_string(),
    ];
    let base = format!("http://{addr}");
    let handles: Vec<_> = (0..32)
        .map(|i| {
            let base = base.clone();
            let models = models.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                for j in 0..6 {
                    let (path, body) = match (i + j) % 4 {
                        0 | 1 => ("/inference", json!({"text": format!("client {i} request {j}"), "return_attention": j % 2 == 0})),
                        2 => ("/save_state", json!({"name": format!("c{i}")})),
                        _ => ("/load_model", json!({"model_name": models[(i + j) % 2]})),
                    };
                    let mut resp = agent.post(&format!("{base}{path}")).send_json(&body).unwrap();
                    let status = resp.status().as_u16();
                    let retry_after = resp.headers().get("retry-after").is_some();
                    let v: Value = resp.body_mut().read_json().unwrap();
                    match (path, status) {
                        ("/inference", 200) => {
                            let t = v["input_tokens"].as_array().unwrap().len();
                            let rows = v["logit_lens"].as_array().unwrap();
                            assert_eq!(rows.len(), 4);
                            assert!(rows.iter().all(|r| r["predictions"].as_array().unwrap().len() == t));
                        }
                        ("/inference", 409) | ("/save_state", 400) => assert!(v["detail"].is_string()),
                        // More clients than the queue holds: told when to come back.
                        ("/inference", 503) => assert!(retry_after && v["detail"].is_string(), "{v}"),
                        (_, 200) => {}
                        (p, s) => panic!("{p}: unexpected {s}: {v}"),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // The server still answers, and every session on disk is whole.
    let v: Value = ureq::get(&format!("{base}/model_status"))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(v["loaded"], true);
    let sessions = dir.path().join("saved_states");
    let mut n = 0;
    for e in std::fs::read_dir(&sessions).unwrap().flatten() {
        let name = e.file_name().into_string().unwrap();
        assert!(
            !name.starts_with(".tmp"),
            "a temporary folder was left behind: {name}"
        );
        let cfg: Value =
            serde_json::from_slice(&std::fs::read(e.path().join("config.json")).unwrap()).unwrap();
        let t = cfg["input_ids"].as_array().unwrap().len();
        let mut npz = Npz::open(&e.path().join("tensors.npz"));
        let hs = npz.f32("hidden_states");
        assert_eq!(
            hs.shape()[2],
            t,
            "{name}: tensors and config from different runs"
        );
        assert_eq!(
            hs.shape()[0],
            cfg["results"]["logit_lens"].as_array().unwrap().len()
        );
        n += 1;
    }
    assert!(n > 0);
}

// ---- Beyond the original: diff, tracking, entropy, analysis, receipts ----

const TEXT: &str = "The capital of France is";

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test]
async fn compare_without_interventions_changes_nothing() {
    let s = loaded("llama").await;
    let (st, v) = s
        .post(
            "/inference",
            json!({"text": TEXT, "compare": true, "lens_type": "combined"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["baseline_logit_lens"], v["logit_lens"]);
    let diff = v["diff"].as_array().unwrap();
    assert_eq!(diff.len(), v["logit_lens"].as_array().unwrap().len());
    for (r, row) in diff.iter().enumerate() {
        assert_eq!(row.as_array().unwrap().len(), 13);
        for (p, c) in row.as_array().unwrap().iter().enumerate() {
            assert_eq!(f(&c["delta_prob"]), 0.0, "row {r} pos {p}");
            assert_eq!(f(&c["kl"]), 0.0);
            assert_eq!(c["rank"], 0);
            assert_eq!(c["top_id"], c["baseline_id"]);
            assert_eq!(
                c["baseline_id"],
                v["logit_lens"][r]["predictions"][p][0]["id"]
            );
            assert_eq!(c["prob"], c["baseline_prob"]);
        }
    }
    assert_eq!(v["receipts"], json!([]));
}

#[tokio::test]
async fn zeroing_a_layer_gives_uniform_rows_and_kl_log_v_minus_entropy() {
    let s = loaded("llama").await;
    let v_size = 512f64;
    let (_, base) = s
        .post("/inference", json!({"text": TEXT, "entropy": true}))
        .await;
    let iv = json!({"layer_1_output": [{"type": "zero"}]});
    let (st, bytes, h) = s
        .raw(
            Method::POST,
            "/inference",
            Some(
                json!({"text": TEXT, "compare": true, "entropy": true, "interventions": iv})
                    .to_string(),
            ),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // The baseline and the intervened run share layers 0 and 1's inputs.
    assert_eq!(h["x-logitlens-reused-layers"], "1");
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        v["baseline_logit_lens"], base["logit_lens"],
        "baseline = a plain run"
    );
    // Row 2 is "Layer 1", the zeroed block output: uniform.
    assert_eq!(v["logit_lens"][2]["layer_name"], "Layer 1");
    for p in 0..13 {
        let c = &v["diff"][2][p];
        let h_base = f(&base["entropy"][2][p]);
        assert!(
            (f(&c["kl"]) - (v_size.ln() - h_base)).abs() < 1e-6,
            "pos {p}: {c}"
        );
        assert!((f(&c["prob"]) - 1.0 / v_size).abs() < 1e-9);
        assert!((f(&c["delta_prob"]) - (1.0 / v_size - f(&c["baseline_prob"]))).abs() < 1e-12);
        assert!((f(&v["entropy"][2][p]) - v_size.ln()).abs() < 1e-6);
        // Uniform: ties go to the lower id, so the old top's rank is its id.
        assert_eq!(c["rank"], c["baseline_id"]);
        assert_eq!(c["top_id"], 0);
        // Rows before the intervention did not change at all.
        assert_eq!(f(&v["diff"][1][p]["kl"]), 0.0);
        assert_eq!(f(&v["diff"][0][p]["delta_prob"]), 0.0);
    }
    // Receipts: one operation, every position of layer 1's resid_post.
    let r = v["receipts"].as_array().unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["key"], "layer_1_output");
    assert_eq!(r[0]["hook"], "blocks.1.hook_resid_post");
    assert_eq!(r[0]["layer"], 1);
    assert_eq!(r[0]["positions"].as_array().unwrap().len(), 13);
    assert_eq!(r[0]["elements"], 13 * 64);
    assert!(f(&r[0]["delta_norm"]) > 0.0);
}

#[tokio::test]
async fn tracked_tokens_entropy_and_their_errors() {
    let s = loaded("llama").await;
    let (_, base) = s.post("/inference", json!({"text": TEXT})).await;
    let top = &base["logit_lens"][3]["predictions"][4][0];
    let top_token = top["token"].as_str().unwrap().to_string();
    let second_id = base["logit_lens"][3]["predictions"][4][1]["id"].clone();
    let (st, v) = s
        .post(
            "/inference",
            json!({"text": TEXT, "track_tokens": [top_token, second_id], "entropy": true}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let cell = &v["tracked"][3][4];
    assert_eq!(cell[0]["id"], top["id"]);
    assert_eq!(cell[0]["token"], top["token"]);
    assert_eq!(cell[0]["rank"], 0);
    assert!((f(&cell[0]["prob"]) - f(&top["prob"])).abs() < 1e-6);
    assert_eq!(cell[1]["id"], second_id);
    assert_eq!(cell[1]["rank"], 1);
    assert_eq!(v["tracked"].as_array().unwrap().len(), 4);
    assert_eq!(v["tracked"][0].as_array().unwrap().len(), 13);
    // Every probability listed in the top 5 agrees with the tracked one.
    for (r, row) in v["logit_lens"].as_array().unwrap().iter().enumerate() {
        for (p, preds) in row["predictions"].as_array().unwrap().iter().enumerate() {
            for (rank, pr) in preds.as_array().unwrap().iter().enumerate() {
                if pr["id"] == cell[0]["id"] {
                    assert_eq!(v["tracked"][r][p][0]["rank"], rank as u64);
                    assert!((f(&v["tracked"][r][p][0]["prob"]) - f(&pr["prob"])).abs() < 1e-6);
                }
            }
            let h = f(&v["entropy"][r][p]);
            assert!(h >= 0.0 && h <= 512f64.ln() + 1e-9);
        }
    }
    for (body, needle) in [
        (
            json!({"text": TEXT, "track_tokens": ["The capital of France"]}),
            "tokens for this tokenizer",
        ),
        (
            json!({"text": TEXT, "track_tokens": [512]}),
            "not a token id",
        ),
        (
            json!({"text": TEXT, "track_tokens": [-1]}),
            "not a token id",
        ),
        (json!({"text": TEXT, "track_tokens": []}), "empty"),
        (
            json!({"text": TEXT, "track_tokens": [true]}),
            "neither a token string nor an id",
        ),
        (
            json!({"text": TEXT, "track_tokens": (0..17).collect::<Vec<_>>()}),
            "at most 16",
        ),
    ] {
        let (st, v) = s.post("/inference", body.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        assert!(detail(&v).contains(needle), "{body}: {v}");
    }
}

#[tokio::test]
async fn analysis_comes_from_the_saved_tensors() {
    let s = loaded("llama").await;
    let (st, v) = s
        .post(
            "/inference",
            json!({"text": TEXT, "analysis": true, "lens_type": "combined",
                   "interventions": {"blocks.0.hook_mlp_out": [{"type": "scale", "value": 3.0, "token_index": 4}]}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let a = &v["analysis"];
    let rows = v["logit_lens"].as_array().unwrap().len();
    assert_eq!(a["resid_norm"].as_array().unwrap().len(), rows);
    assert_eq!(a["attn_out_norm"].as_array().unwrap().len(), 3);
    assert_eq!(a["mlp_out_norm"][0].as_array().unwrap().len(), 13);
    assert!(a["cos_prev"][0]
        .as_array()
        .unwrap()
        .iter()
        .all(Value::is_null));
    for p in 0..13 {
        assert!((f(&a["cos_final"][rows - 1][p]) - 1.0).abs() < 1e-9);
        // Final Output repeats the last block output in `combined`.
        assert!((f(&a["cos_prev"][rows - 1][p]) - 1.0).abs() < 1e-9);
    }
    // The same numbers from tensors.npz.
    let (_, saved) = s.post("/save_state", json!({"name": "analysis"})).await;
    let npz = s
        .dir
        .path()
        .join("saved_states")
        .join(saved["session_id"].as_str().unwrap())
        .join("tensors.npz");
    let mut z = ndarray_npy::NpzReader::new(std::fs::File::open(npz).unwrap()).unwrap();
    let hidden: ndarray::ArrayD<f32> = z.by_name("hidden_states.npy").unwrap();
    for r in 0..rows {
        for p in 0..13 {
            let x: Vec<f64> = (0..64).map(|d| hidden[[r, 0, p, d]] as f64).collect();
            let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
            let got = f(&a["resid_norm"][r][p]);
            assert!(
                (got - norm).abs() <= 1e-5 * norm.max(1.0),
                "row {r} pos {p}: {got} vs {norm}"
            );
        }
    }
    // The receipt of the scaled MLP output: positions [4], |Δ| = 2·|mlp_out| there.
    let r = &v["receipts"][0];
    assert_eq!(
        (
            r["hook"].as_str(),
            r["positions"].clone(),
            r["elements"].as_u64()
        ),
        (Some("blocks.0.hook_mlp_out"), json!([4]), Some(64))
    );
    let mlp = f(&a["mlp_out_norm"][0][4]);
    assert!(
        (f(&r["delta_norm"]) - 2.0 / 3.0 * mlp).abs() < 1e-6 * mlp,
        "{r} vs {mlp}"
    );
}

#[tokio::test]
async fn receipts_for_all_layers_and_blocking() {
    let s = loaded("llama").await;
    let (_, v) = s
        .post(
            "/inference",
            json!({"text": TEXT, "interventions": {
                "all_layers_attn_output": [{"type": "scale", "value": 0.5, "token_index": -1}],
                "all_layers_attention": [{"type": "block_attention", "source_tokens": [0, 1], "target_tokens": [5]}]
            }}),
        )
        .await;
    let r = v["receipts"].as_array().unwrap();
    let scale: Vec<&Value> = r
        .iter()
        .filter(|x| x["key"] == "all_layers_attn_output")
        .collect();
    let block: Vec<&Value> = r
        .iter()
        .filter(|x| x["key"] == "all_layers_attention")
        .collect();
    assert_eq!((scale.len(), block.len()), (3, 3), "{r:?}");
    for (l, x) in scale.iter().enumerate() {
        assert_eq!(x["layer"], l);
        assert_eq!(x["hook"], format!("blocks.{l}.hook_attn_out"));
        assert_eq!(x["positions"], json!([12]));
        assert!(f(&x["delta_norm"]) > 0.0);
    }
    for (l, x) in block.iter().enumerate() {
        assert_eq!(x["hook"], format!("blocks.{l}.attn.hook_attn_scores"));
        assert_eq!(x["positions"], json!([5]));
        assert_eq!(x["elements"], 2 * 4, "2 pairs x 4 heads");
        assert!(f(&x["delta_norm"]) > 0.0);
    }
}

#[tokio::test]
async fn diff_sessions_compares_saved_runs_and_checkpoints() {
    let s = loaded("llama").await;
    let iv = json!({"layer_0_output": [{"type": "scale", "value": 0.25}]});
    let (_, live) = s
        .post(
            "/inference",
            json!({"text": TEXT, "compare": true, "interventions": iv, "lens_type": "combined"}),
        )
        .await;
    s.post("/inference", json!({"text": TEXT, "lens_type": "combined"}))
        .await;
    let (_, a) = s.post("/save_state", json!({"name": "plain"})).await;
    s.post(
        "/inference",
        json!({"text": TEXT, "interventions": iv, "lens_type": "combined"}),
    )
    .await;
    let (_, b) = s.post("/save_state", json!({"name": "scaled"})).await;
    let (a, b) = (
        a["session_id"].as_str().unwrap().to_string(),
        b["session_id"].as_str().unwrap().to_string(),
    );
    let (st, v) = s.post("/diff_sessions", json!({"a": a, "b": b})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["a"]["session_id"], a.as_str());
    assert_eq!(v["layer_names"].as_array().unwrap().len(), 8);
    assert_eq!(v["input_tokens"].as_array().unwrap().len(), 13);
    // The saved states are f32 (the run computed in f64): equal to 1e-5.
    for (r, row) in v["diff"].as_array().unwrap().iter().enumerate() {
        for (p, c) in row.as_array().unwrap().iter().enumerate() {
            let want = &live["diff"][r][p];
            assert_eq!(c["baseline_id"], want["baseline_id"]);
            assert_eq!(c["top_id"], want["top_id"]);
            assert_eq!(c["rank"], want["rank"]);
            for k in ["baseline_prob", "prob", "delta_prob", "kl"] {
                assert!(
                    (f(&c[k]) - f(&want[k])).abs() < 1e-5,
                    "{r} {p} {k}: {c} vs {want}"
                );
            }
        }
    }
    assert_eq!(
        v["a_logit_lens"][7]["predictions"][3][0]["id"],
        live["baseline_logit_lens"][7]["predictions"][3][0]["id"]
    );
    // Two checkpoints: the same prompt on another model with the same tokenizer.
    let other = tiny("llama3-rope-scaled").display().to_string();
    lifecycle::load(&s.state, other, Backend::Custom, Then::Serve)
        .await
        .unwrap();
    s.post("/inference", json!({"text": TEXT, "lens_type": "combined"}))
        .await;
    let (_, c) = s.post("/save_state", json!({"name": "other_model"})).await;
    let c = c["session_id"].as_str().unwrap().to_string();
    let (st, v) = s.post("/diff_sessions", json!({"a": a, "b": c})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_ne!(v["a"]["model_name"], v["b"]["model_name"]);
    let kl: f64 = v["diff"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|c| f(&c["kl"])))
        .sum();
    assert!(kl > 0.0, "different weights give different distributions");
    // Not comparable: other text, other lens rows, unknown session.
    s.post(
        "/inference",
        json!({"text": "Something else entirely", "lens_type": "combined"}),
    )
    .await;
    let (_, d) = s.post("/save_state", json!({"name": "other_text"})).await;
    s.post("/inference", json!({"text": TEXT})).await;
    let (_, e) = s.post("/save_state", json!({"name": "block_output"})).await;
    for (x, needle) in [(d, "different token ids"), (e, "lens rows differ")] {
        let (st, v) = s
            .post("/diff_sessions", json!({"a": a, "b": x["session_id"]}))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(detail(&v).contains(needle), "{v}");
    }
    let (st, _) = s
        .post(
            "/diff_sessions",
            json!({"a": a, "b": "20990101_000000_nope"}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s.post("/diff_sessions", json!({"a": a, "b": "../x"})).await;
    assert!(st == StatusCode::BAD_REQUEST || st == StatusCode::NOT_FOUND);
}

/// A session whose tensors.npz was edited by hand (a 0-d array, an empty
/// one, the wrong rank, not a zip at all) is refused with the reason, never
/// a 500; the server keeps serving.
#[tokio::test]
async fn hostile_session_tensors_are_refused_with_reasons() {
    let s = loaded("llama").await;
    s.post("/inference", json!({"text": TEXT})).await;
    let (_, good) = s.post("/save_state", json!({"name": "good"})).await;
    let good = good["session_id"].as_str().unwrap().to_string();
    let root = s.dir.path().join("saved_states");
    let config = std::fs::read(root.join(&good).join("config.json")).unwrap();
    let write = |name: &str, npz: &dyn Fn(&Path)| -> String {
        let id = format!("20990101_000000_{name}");
        let dir = root.join(&id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), &config).unwrap();
        npz(&dir.join("tensors.npz"));
        id
    };
    let with_hidden = |arr: ndarray::ArrayD<f32>| {
        move |p: &Path| {
            let mut w = ndarray_npy::NpzWriter::new(std::fs::File::create(p).unwrap());
            w.add_array("hidden_states", &arr).unwrap();
            w.finish().unwrap();
        }
    };
    let cases = [
        (
            write(
                "zero_d",
                &with_hidden(ndarray::ArrayD::zeros(ndarray::IxDyn(&[]))),
            ),
            "not [rows, 1, tokens, hidden size]",
        ),
        (
            write(
                "empty",
                &with_hidden(ndarray::ArrayD::zeros(ndarray::IxDyn(&[0, 1, 0, 64]))),
            ),
            "is empty",
        ),
        (
            write(
                "rank3",
                &with_hidden(ndarray::ArrayD::zeros(ndarray::IxDyn(&[4, 13, 64]))),
            ),
            "not [rows, 1, tokens, hidden size]",
        ),
        (
            write("not_zip", &|p: &Path| std::fs::write(p, b"PK? no").unwrap()),
            "tensors.npz",
        ),
        (
            write("no_hidden", &|p: &Path| {
                let mut w = ndarray_npy::NpzWriter::new(std::fs::File::create(p).unwrap());
                w.add_array("logits", &ndarray::arr1(&[1f32])).unwrap();
                w.finish().unwrap();
            }),
            "no readable hidden_states",
        ),
    ];
    for (id, want) in &cases {
        for body in [json!({"a": good, "b": id}), json!({"a": id, "b": good})] {
            let (st, v) = s.post("/diff_sessions", body.clone()).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
            assert!(detail(&v).contains(want), "{body}: {v}");
            assert!(detail(&v).contains(id.as_str()), "names the session: {v}");
        }
    }
    let (st, v) = s.get("/model_status").await;
    assert_eq!((st, v["status"].clone()), (StatusCode::OK, json!("ready")));
}

/// A checkpoint whose config has no layers is refused when loaded, with the
/// reason; the model in service stays.
#[tokio::test]
async fn a_model_without_layers_is_refused() {
    let s = loaded("llama").await;
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        std::fs::copy(tiny("llama").join(f), dir.path().join(f)).unwrap();
    }
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(tiny("llama").join("config.json")).unwrap())
            .unwrap();
    cfg["num_hidden_layers"] = 0.into();
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    for backend in ["custom", "hooked"] {
        let (st, v) = s
            .post(
                "/load_model",
                json!({"model_name": dir.path().display().to_string(), "backend": backend}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert!(detail(&v).contains("0 layers"), "{v}");
    }
    let (_, v) = s.get("/model_status").await;
    assert_eq!(v["model_name"], tiny("llama").display().to_string());
    let (st, _) = s.post("/inference", json!({"text": TEXT})).await;
    assert_eq!(st, StatusCode::OK);
}
