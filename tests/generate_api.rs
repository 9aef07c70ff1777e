//! POST /generate: greedy ids and the lens over them as transformers gives
//! them (tests/fixtures/research/llama/generate_reference.json), the same
//! answer streamed a pass at a time, a kept run /save_state can save, its
//! progress on /events, and every bad request a 400 in words.

mod common;

use axum::http::{Method, StatusCode};
use common::server::*;
use common::*;
use logitlens_server::state::ServerEvent;
use logitlens_server::status::RunStage;
use serde_json::{json, Value};

async fn llama() -> TestServer {
    let s = server_with(|_| {});
    s.load(tiny("llama")).await;
    s
}

/// Each prediction of a body's grid against the reference's top-5 ids and
/// probabilities (within 1e-5).
fn assert_grid(got: &Value, want: &Value, what: &str) {
    for (s, row) in got["logit_lens"].as_array().unwrap().iter().enumerate() {
        for (t, cell) in row["predictions"].as_array().unwrap().iter().enumerate() {
            for (k, pred) in cell.as_array().unwrap().iter().enumerate() {
                let p = pred["prob"].as_f64().unwrap();
                let w = want["lens_top5_probs"][s][t][k].as_f64().unwrap();
                assert!(
                    (p - w).abs() < 1e-5,
                    "{what}: row {s} pos {t} rank {k}: {p} vs {w}"
                );
            }
        }
    }
}

#[tokio::test]
async fn generate_matches_transformers_streamed_or_not() {
    let s = llama().await;
    let reference = reference_json(&fixtures().join("research/llama/generate_reference.json"));
    let steps = reference["max_new_tokens"].clone();
    for prompt in reference["prompts"].as_array().unwrap() {
        let body = json!({"text": prompt["text"], "max_new_tokens": steps});
        let mut events = s.state.events.subscribe();
        let (status, bytes, headers) = s
            .raw(
                Method::POST,
                "/generate",
                Some(body.to_string()),
                &[("x-logitlens-request", "g")],
            )
            .await;
        let got: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status, StatusCode::OK, "{got}");
        let what = prompt["text"].to_string();
        assert_eq!(got["generated_ids"], prompt["generated_ids"], "{what}");
        assert_eq!(got["stopped_at_eos"], prompt["stopped_at_eos"], "{what}");
        assert_eq!(
            got["prompt_tokens"],
            json!(u32s(&prompt["prompt_ids"]).len())
        );
        assert_eq!(
            got["generated_text"].as_str().unwrap().is_empty(),
            u32s(&prompt["generated_ids"]).is_empty()
        );
        assert_eq!(
            got["input_tokens"].as_array().unwrap().len(),
            u32s(&prompt["ids"]).len()
        );
        assert_grid(&got, prompt, &what);
        let mut last = None;
        while let Ok(e) = events.try_recv() {
            if let ServerEvent::Run(p) = e {
                if p.stage == RunStage::Generating {
                    last = Some((p.done, p.total));
                }
            }
        }
        assert_eq!(
            last,
            Some((
                steps.as_u64().unwrap() as usize,
                steps.as_u64().unwrap() as usize
            ))
        );

        // The run is kept: /save_state saves prompt and written ids.
        let run_id: u64 = headers["x-logitlens-run-id"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let (status, saved) = s.post("/save_state", json!({"run_id": run_id})).await;
        assert_eq!(status, StatusCode::OK, "{saved}");

        // Streamed: a line per pass, then the same body.
        let mut streamed = body.clone();
        streamed["stream"] = json!(true);
        let (status, bytes, headers) = s
            .raw(Method::POST, "/generate", Some(streamed.to_string()), &[])
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/x-ndjson");
        let lines: Vec<Value> = String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let (done, passes) = lines.split_last().unwrap();
        assert_eq!(done["type"], "done");
        let n = u32s(&prompt["generated_ids"]).len();
        assert_eq!(
            passes.len(),
            n + 1,
            "{what}: the prompt's pass, a pass per token"
        );
        let chosen: Vec<Value> = passes
            .iter()
            .filter(|p| !p["token_id"].is_null())
            .map(|p| p["token_id"].clone())
            .collect();
        assert_eq!(Value::from(chosen), prompt["generated_ids"]);
        let mut columns = 0;
        for p in passes {
            assert_eq!(p["type"], "step");
            assert_eq!(p["start"], json!(columns));
            columns += p["tokens"].as_array().unwrap().len();
            let rows = p["columns"].as_array().unwrap();
            assert_eq!(rows.len(), got["logit_lens"].as_array().unwrap().len());
            // Each pass's columns are the final grid's columns at its positions.
            for (s_, row) in rows.iter().enumerate() {
                for (j, cell) in row["predictions"].as_array().unwrap().iter().enumerate() {
                    let pos = p["start"].as_u64().unwrap() as usize + j;
                    assert_eq!(
                        cell[0]["id"],
                        got["logit_lens"][s_]["predictions"][pos][0]["id"]
                    );
                }
            }
        }
        assert_eq!(columns, u32s(&prompt["ids"]).len());
        let response = &done["response"];
        assert_eq!(response["generated_ids"], got["generated_ids"]);
        assert_eq!(response["logit_lens"], got["logit_lens"]);
    }
}

#[tokio::test]
async fn interventions_and_compare_over_http() {
    let s = llama().await;
    let text = "Once upon a time there was";
    let (_, plain) = s
        .post("/generate", json!({"text": text, "max_new_tokens": 8}))
        .await;
    let t = plain["prompt_tokens"].as_i64().unwrap();
    let body = json!({
        "text": text, "max_new_tokens": 8, "compare": true,
        "interventions": {"blocks.1.hook_resid_post": [{"type": "zero", "token_index": t - 1}]},
    });
    let (status, got) = s.post("/generate", body).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let base = &got["baseline_generation"];
    assert_eq!(base["generated_ids"], plain["generated_ids"]);
    assert_eq!(base["generated_text"], plain["generated_text"]);
    let t0 = plain["prompt_tokens"].as_u64().unwrap() as usize;
    assert_eq!(
        base["generated_tokens"].as_array().unwrap()[..],
        plain["input_tokens"].as_array().unwrap()[t0..]
    );
    assert_ne!(got["generated_ids"], plain["generated_ids"]);
    let first = base["first_difference"].as_u64().unwrap() as usize;
    let (a, b) = (u32s(&got["generated_ids"]), u32s(&plain["generated_ids"]));
    assert_eq!(
        a[..first],
        b[..first],
        "the same up to the first difference"
    );
    assert_ne!(got["generated_ids"][first], plain["generated_ids"][first]);
    assert!(got["diff"].is_array() && got["baseline_logit_lens"].is_array());
    assert_eq!(got["receipts"][0]["positions"], json!([t - 1]));
}

#[tokio::test]
async fn bad_generations_are_refused_in_words() {
    let s = server_with(|c| c.max_prompt_tokens = 20);
    let (status, v) = s
        .post("/generate", json!({"text": "Hi", "max_new_tokens": 4}))
        .await;
    assert_eq!(
        (status, detail(&v)),
        (StatusCode::BAD_REQUEST, "Model not loaded")
    );
    s.load(tiny("llama")).await;
    for (body, needle) in [
        (
            json!({"text": "Hi", "max_new_tokens": 0}),
            "between 1 and 256",
        ),
        (
            json!({"text": "Hi", "max_new_tokens": 300}),
            "between 1 and 256",
        ),
        (
            json!({"text": "Hi", "max_new_tokens": 19}),
            "limit is 20 tokens",
        ),
        (
            json!({"text": "Hi", "max_new_tokens": 4, "stream": true,
                   "interventions": {"layer_0_output": [{"type": "zero", "token_index": 9}]}}),
            "prompt and 4 new tokens",
        ),
        (
            json!({"text": "Hi", "max_new_tokens": 4, "track_tokens": ["capital"]}),
            "track_tokens",
        ),
    ] {
        let (status, v) = s.post("/generate", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(detail(&v).contains(needle), "{needle}: {}", detail(&v));
    }
    let (status, _) = s.post("/generate", json!({"text": "Hi"})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "max_new_tokens is required"
    );
}
