//! A server that a request within its limits cannot knock over: the Host
//! check against DNS rebinding, bounded work and memory per request,
//! values that overflow f32, malformed bodies, half-sent headers, the run
//! queue. Each test fails on the server as it was before these defences.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use common::server::{detail, server_with, TestServer};
use common::*;
use logitlens_engine::hooks;
use serde_json::{json, Value};

const TEXT: &str = "The capital of France is";

async fn llama() -> TestServer {
    let s = server_with(|_| {});
    s.load(tiny("llama")).await;
    s
}

/// A page on a domain re-pointed to 127.0.0.1 sends its own domain as Host:
/// refused with 421 and the reason; this machine's names are served, and a
/// name the operator allowed.
#[tokio::test]
async fn a_foreign_host_is_refused() {
    let s = llama().await;
    for host in [
        "evil.example",
        "evil.example:8000",
        "localhost.evil.example:8000",
    ] {
        let (st, body, _) = s
            .raw(Method::GET, "/model_status", None, &[("host", host)])
            .await;
        assert_eq!(st, StatusCode::MISDIRECTED_REQUEST, "{host}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(detail(&v).contains("--allow-host"), "{v}");
        // The API's state-changing endpoints are refused too.
        let (st, _, _) = s
            .raw(
                Method::POST,
                "/delete_session",
                Some(json!({"session_id": "x"}).to_string()),
                &[("host", host)],
            )
            .await;
        assert_eq!(st, StatusCode::MISDIRECTED_REQUEST, "{host}");
    }
    for host in [
        "localhost:8000",
        "127.0.0.1:8000",
        "[::1]:8000",
        "localhost",
    ] {
        let (st, _, _) = s
            .raw(Method::GET, "/model_status", None, &[("host", host)])
            .await;
        assert_eq!(st, StatusCode::OK, "{host}");
    }
    let lan = server_with(|c| c.allowed_hosts = vec!["mybox.lan".into()]);
    let (st, _, _) = lan
        .raw(
            Method::GET,
            "/model_status",
            None,
            &[("host", "mybox.lan:8000")],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
}

/// A layer named many times is sent once (16 repeats multiplied the
/// response 16 times), on /inference and on /runs/{id}/attention.
#[tokio::test]
async fn repeated_attention_layers_are_sent_once() {
    let s = llama().await;
    let body = |layers: Value| {
        json!({"text": TEXT, "return_attention": true, "attention_layers": layers}).to_string()
    };
    let (_, once, h) = s
        .raw(Method::POST, "/inference", Some(body(json!([0]))), &[])
        .await;
    let (st, many, _) = s
        .raw(
            Method::POST,
            "/inference",
            Some(body(json!(vec![0; 16]))),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(many.len(), once.len());
    let v: Value = serde_json::from_slice(&many).unwrap();
    assert_eq!(v["attention"].as_array().unwrap().len(), 1);
    let (_, v) = s
        .post(
            "/inference",
            json!({"text": TEXT, "return_attention": true, "attention_layers": [2, 0, 2, 0]}),
        )
        .await;
    assert_eq!(v["attention"].as_array().unwrap().len(), 2);
    let id = h["x-logitlens-run-id"].to_str().unwrap();
    let (st, v) = s.get(&format!("/runs/{id}/attention?layers=0,0,0,0")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["layers"], json!([0]));
    assert_eq!(v["attention"].as_array().unwrap().len(), 1);
}

/// Blocking 318 keys from 318 queries on a 640-token input is planned in
/// well under a second (de-duplicating pairs was quadratic: 6.7 s).
#[test]
fn a_large_blocking_is_planned_quickly() {
    let t = 640;
    let keys: Vec<i64> = (0..318).collect();
    let queries: Vec<i64> = (320..638).collect();
    let iv: hooks::Interventions = serde_json::from_value(json!({
        "all_layers_attention": [{"type": "block_attention", "source_tokens": keys, "target_tokens": queries}]
    }))
    .unwrap();
    let started = Instant::now();
    let plan = hooks::plan(&iv, 30, 576, t).unwrap();
    let took = started.elapsed();
    assert_eq!(plan.blocks[0].pairs.len(), 318 * 318);
    assert!(took < Duration::from_secs(1), "planning took {took:?}");
}

/// A text far too long for the token limit (7.6 MiB of emoji) is refused
/// before it is tokenized: at once, not after seconds and gigabytes.
#[tokio::test]
async fn an_oversized_text_is_refused_before_tokenizing() {
    let s = llama().await;
    let text = "🙂".repeat(2_000_000);
    let body = json!({ "text": text }).to_string();
    let started = Instant::now();
    let (st, bytes, _) = s.raw(Method::POST, "/inference", Some(body), &[]).await;
    let took = started.elapsed();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        detail(&v).contains("bytes") && detail(&v).contains("--max-tokens"),
        "{v}"
    );
    assert!(took < Duration::from_secs(2), "refused after {took:?}");
}

/// Values that are finite in JSON but not in f32, and interventions whose
/// results overflow, are refused with the reason (they answered 200 with
/// `"prob": null` and id 4294967295).
#[tokio::test]
async fn values_that_overflow_f32_are_refused() {
    // In f32, as real models compute (test-sized ones default to f64).
    let s = server_with(|c| c.compute_dtype = logitlens_engine::ComputeDtype::F32);
    s.load(tiny("llama")).await;
    let cases = [
        (
            json!({"layer_1_output": [{"type": "scale", "value": 1e39}]}),
            "finite 32-bit",
        ),
        (
            json!({"layer_1_output": [{"type": "zero"}, {"type": "scale", "value": -1e39}]}),
            "finite 32-bit",
        ),
        (
            json!({"layer_1_output": [{"type": "add", "vector": vec![1e39; 64]}]}),
            "finite 32-bit",
        ),
        // Finite factors whose product is not: caught where they apply.
        (
            json!({"embeddings": [{"type": "scale", "value": 1e38}], "layer_0_output": [{"type": "scale", "value": 1e38}]}),
            "not finite",
        ),
    ];
    for (iv, want) in cases {
        let (st, v) = s
            .post("/inference", json!({"text": TEXT, "interventions": iv}))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{iv}: {v}");
        assert!(detail(&v).contains(want), "{iv}: {v}");
    }
    // Large but representable values still run, and every number is a number.
    let (st, v) = s
        .post(
            "/inference",
            json!({"text": TEXT, "interventions": {"layer_1_output": [{"type": "scale", "value": 1e3}]}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    for row in v["logit_lens"].as_array().unwrap() {
        for cell in row["predictions"].as_array().unwrap() {
            for p in cell.as_array().unwrap() {
                assert!(p["prob"].is_f64() && p["id"].as_u64().unwrap() < 512, "{p}");
            }
        }
    }
}

/// A key given twice in `interventions` is refused (it silently kept the
/// last list), as a repeated top-level field already was; a JSON array is
/// not a request; unknown paths under the API answer JSON 404s, not the
/// web app's page.
#[tokio::test]
async fn malformed_bodies_and_paths_get_json_errors() {
    let s = llama().await;
    let body = r#"{"text": "hi", "interventions": {"layer_0_output": [{"type": "zero"}], "layer_0_output": [{"type": "scale", "value": 2}]}}"#;
    let (st, bytes, _) = s
        .raw(Method::POST, "/inference", Some(body.into()), &[])
        .await;
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(detail(&v).contains("given twice"), "{v}");
    let body = r#"{"text": "hi", "text": "again"}"#;
    let (st, _, _) = s
        .raw(Method::POST, "/inference", Some(body.into()), &[])
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    for body in [r#"["The capital of France is"]"#, r#""text""#, "42"] {
        let (st, bytes, _) = s
            .raw(Method::POST, "/inference", Some(body.into()), &[])
            .await;
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert!(detail(&v).contains("JSON object"), "{body}: {v}");
    }
    for path in [
        "/openapi.json/x",
        "/inference/x",
        "/runs",
        "/sessions/1/x",
        "/models/x",
    ] {
        let (st, v) = s.get(path).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
        assert!(v["detail"].is_string(), "{path}: {v}");
    }
}

/// A request over the per-request memory budget is refused with the
/// estimate, the budget and what to change; the server goes on serving.
#[tokio::test]
async fn a_request_over_the_memory_budget_is_refused_with_numbers() {
    let s = server_with(|c| c.max_request_bytes = 2 << 20);
    s.load(tiny("llama")).await;
    let long = "The capital of France is Paris. ".repeat(40);
    let (st, v) = s
        .post(
            "/inference",
            json!({"text": long, "return_attention": true, "compare": true}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let d = detail(&v);
    for want in [
        "would need about",
        "MiB",
        "allows 2 MiB",
        "--max-request-mib",
        "return_attention",
        "compare",
    ] {
        assert!(d.contains(want), "{want}: {d}");
    }
    let (st, _) = s.post("/inference", json!({"text": TEXT})).await;
    assert_eq!(st, StatusCode::OK);
}

/// Beyond the runs that wait their turn, a request is told to come back
/// later (503 with Retry-After) instead of stacking up work.
#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let s = server_with(|c| {
        c.max_running = 1;
        c.max_queued = 0;
    });
    s.load(tiny("llama")).await;
    // Hold the only run slot, as a long run would.
    let held = s.state.gate.enter(0).await.ok().unwrap();
    let (st, bytes, h) = s
        .raw(
            Method::POST,
            "/inference",
            Some(json!({ "text": TEXT }).to_string()),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    let secs: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(secs >= 1);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(detail(&v).contains("busy"), "{v}");
    drop(held);
    let (st, _) = s.post("/inference", json!({ "text": TEXT })).await;
    assert_eq!(st, StatusCode::OK);
}

/// A client that sends half a request's headers and waits is cut off
/// after the header timeout (it held its connection forever).
#[test]
fn half_sent_headers_are_cut_off() {
    let s = server_with(|c| c.header_read_timeout = Duration::from_millis(500));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = logitlens_server::app(s.state.clone());
    let timeout = s.state.cfg.header_read_timeout;
    rt.spawn(logitlens_server::serve::serve_on(
        listener,
        app,
        timeout,
        std::future::pending(),
    ));
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.write_all(b"GET /model_status HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let closed = conn.read_to_end(&mut buf).is_ok();
    assert!(closed, "the server kept the half-open request");
    assert!(started.elapsed() < Duration::from_secs(4));
    // A whole request on a new connection is answered.
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.write_all(b"GET /model_status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
