//! Fuzzes the server in process: /inference bodies (generated from the
//! request's grammar with hostile values, and byte-mutated valid bodies)
//! and session files (mutated config.json and tensors.npz loaded through
//! /load_session, /save_state and /diff_sessions), on the tiny llama
//! fixture. Every answer must be JSON; none may be a 5xx or a panic.
//!
//! `cargo run --release --example fuzz -- [--cases N] [--seed S]`
//! (default 100000 cases, seed 1). Prints a table of what was tried and
//! what came back; exits non-zero on the first 5xx, naming the input.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use logitlens_server::lifecycle::{self, Then};
use logitlens_server::status::Backend;
use logitlens_server::{app, AppState, ServerConfig};
use serde_json::{json, Value};
use tower::ServiceExt;

/// xorshift64*: deterministic for a seed, good enough to pick values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const WORDS: &[&str] = &[
    "The",
    " capital",
    " of",
    " France",
    " is",
    " Paris",
    "🙂",
    "日本",
    "\n",
    "\t",
    " ",
    "\u{0}",
    "<|im_start|>",
    "é",
    "\u{202e}",
    "1234567890",
    "{",
    "\"",
    "\\",
];

fn text(r: &mut Rng) -> Value {
    match r.below(20) {
        0 => json!(""),
        1 => json!(r.next() as i64),
        2 => Value::Null,
        3 => json!("x".repeat(r.below(600))),
        _ => json!((0..r.below(30) + 1)
            .map(|_| *r.pick(WORDS))
            .collect::<String>()),
    }
}

fn number(r: &mut Rng) -> Value {
    match r.below(14) {
        0 => json!(1e39),
        1 => json!(-1e39),
        2 => json!(1e308),
        3 => json!(f64::MIN_POSITIVE),
        4 => json!(i64::MIN),
        5 => json!(u64::MAX),
        6 => json!("0.5"),
        7 => Value::Null,
        8 => json!(true),
        9 => json!(-0.0),
        10 => json!(1e38),
        _ => json!((r.next() % 2001) as f64 / 100.0 - 10.0),
    }
}

fn index(r: &mut Rng) -> Value {
    match r.below(10) {
        0 => json!(i64::MAX),
        1 => json!(i64::MIN),
        2 => json!(1.5),
        3 => json!("2"),
        4 => Value::Null,
        _ => json!(r.below(30) as i64 - 12),
    }
}

fn index_list(r: &mut Rng) -> Value {
    match r.below(8) {
        0 => Value::Null,
        1 => json!([]),
        2 => json!((0..300).collect::<Vec<i64>>()),
        3 => json!("0,1"),
        _ => Value::Array((0..r.below(6)).map(|_| index(r)).collect()),
    }
}

fn key(r: &mut Rng) -> String {
    let l = r.below(8) as i64 - 2;
    let hooks = [
        "hook_resid_pre",
        "hook_resid_mid",
        "hook_attn_out",
        "hook_mlp_out",
        "hook_resid_post",
        "attn.hook_attn_scores",
        "hook_nope",
    ];
    match r.below(14) {
        0 => "embeddings".into(),
        1 => "hook_embed".into(),
        2 => "hook_pos_embed".into(),
        3 => "all_layers_output".into(),
        4 => "all_layers_mlp_output".into(),
        5 => format!("all_layers_attention_{}", r.below(9)),
        6 => format!("layer_{l}_output"),
        7 => format!("layer_{l}_attn_output"),
        8 => format!("layer_{l}_mlp_output"),
        9 => format!("layer_{l}_attention"),
        10 => format!("blocks.{l}.{}", r.pick(&hooks)),
        11 => format!("layer_{}_output", u64::MAX),
        12 => "".into(),
        _ => (0..r.below(12)).map(|_| *r.pick(WORDS)).collect(),
    }
}

fn operation(r: &mut Rng) -> Value {
    let kind = *r.pick(&[
        "zero",
        "scale",
        "add",
        "block_attention",
        "negate",
        "",
        "ZERO",
    ]);
    let mut op = serde_json::Map::new();
    if !r.chance(3) {
        op.insert("type".into(), json!(kind));
    }
    if r.chance(60) {
        op.insert("value".into(), number(r));
    }
    if r.chance(40) {
        let n = *r.pick(&[64usize, 63, 0, 1, 65, 5000]);
        let v: Vec<Value> = (0..n).map(|_| number(r)).collect();
        op.insert("vector".into(), Value::Array(v));
    }
    if r.chance(50) {
        op.insert("token_index".into(), index(r));
    }
    if r.chance(50) {
        op.insert("source_tokens".into(), index_list(r));
    }
    if r.chance(50) {
        op.insert("target_tokens".into(), index_list(r));
    }
    if r.chance(20) {
        op.insert(
            "all_layers".into(),
            r.pick(&[json!(true), json!(false), json!("yes")]).clone(),
        );
    }
    Value::Object(op)
}

/// A request from the grammar, every field optional and often hostile.
fn request(r: &mut Rng) -> Value {
    let mut body = serde_json::Map::new();
    if !r.chance(3) {
        body.insert("text".into(), text(r));
    }
    if r.chance(70) {
        let mut iv = serde_json::Map::new();
        for _ in 0..r.below(4) {
            let ops = match r.below(10) {
                0 => operation(r),
                1 => json!([]),
                _ => Value::Array((0..r.below(3) + 1).map(|_| operation(r)).collect()),
            };
            iv.insert(key(r), ops);
        }
        body.insert("interventions".into(), Value::Object(iv));
    }
    let fields: [(&str, Value); 9] = [
        (
            "lens_type",
            json!(*r.pick(&["block_output", "post_attention", "combined", "sideways", ""])),
        ),
        ("return_attention", json!(r.chance(50))),
        ("attention_format", json!(*r.pick(&["json", "f16", "png"]))),
        ("attention_layers", index_list(r)),
        (
            "attention_reduce",
            json!(*r.pick(&["none", "head_mean", "max"])),
        ),
        ("compare", json!(r.chance(50))),
        (
            "track_tokens",
            json!([*r.pick(&[
                json!(" Paris"),
                json!(5),
                json!(-1),
                json!(1e9),
                json!(true),
                json!("Paris France")
            ])]),
        ),
        ("entropy", json!(r.chance(50))),
        ("analysis", json!(r.chance(50))),
    ];
    for (name, value) in fields {
        if r.chance(25) {
            body.insert(name.into(), value);
        }
    }
    Value::Object(body)
}

/// Flip, insert, delete or truncate bytes of `bytes`.
fn mutate(r: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..r.below(4) + 1 {
        if bytes.is_empty() {
            bytes.push(b'{');
        }
        let at = r.below(bytes.len());
        match r.below(5) {
            0 => bytes[at] ^= 1 << r.below(8),
            1 => bytes.insert(at, *r.pick(b"{}[]\":,0123456789-e.tfn\\ \x00\xff")),
            2 => {
                bytes.remove(at);
            }
            3 => bytes.truncate(at),
            _ => {
                // A run of bytes copied elsewhere: repeated keys and values.
                let len = r.below(16).min(bytes.len() - at);
                let chunk = bytes[at..at + len].to_vec();
                let to = r.below(bytes.len());
                bytes.splice(to..to, chunk);
            }
        }
    }
}

async fn call(
    state: &AppState,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(path);
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap();
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, bytes)
}

/// Write a session folder whose files are `config` and `npz`.
fn write_session(root: &Path, id: &str, config: &[u8], npz: Option<&[u8]>) {
    let dir = root.join(id);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
    if let Some(b) = npz {
        std::fs::write(dir.join("tensors.npz"), b).unwrap();
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cases: usize = arg("--cases").map_or(100_000, |s| s.parse().unwrap());
    let seed: u64 = arg("--seed").map_or(1, |s| s.parse().unwrap());
    let mut r = Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::new(ServerConfig {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    })
    .unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/llama");
    lifecycle::load(
        &state,
        fixture.display().to_string(),
        Backend::Custom,
        Then::Serve,
    )
    .await
    .unwrap();
    // Seeds for the mutators: a valid request and a valid saved session.
    let (_, good) = call(&state, Method::POST, "/inference", Some(br#"{"text":"The capital of France is","return_attention":true,"lens_type":"combined"}"#.to_vec())).await;
    assert!(serde_json::from_slice::<Value>(&good).is_ok());
    let (_, saved) = call(
        &state,
        Method::POST,
        "/save_state",
        Some(br#"{"name":"seed"}"#.to_vec()),
    )
    .await;
    let seed_id = serde_json::from_slice::<Value>(&saved).unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let root = dir.path().join("saved_states");
    let seed_config = std::fs::read(root.join(&seed_id).join("config.json")).unwrap();
    let seed_npz = std::fs::read(root.join(&seed_id).join("tensors.npz")).unwrap();
    let valid_body = serde_json::to_vec(&json!({
        "text": "The capital of France is",
        "interventions": {"layer_1_output": [{"type": "scale", "value": 0.5, "token_index": -1}],
                          "all_layers_attention": [{"type": "block_attention", "source_tokens": [1], "target_tokens": [3]}]},
        "return_attention": true, "attention_format": "f16", "compare": true, "entropy": true
    }))
    .unwrap();

    // (kind, status) -> count
    let mut seen: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    let started = Instant::now();
    for case in 0..cases {
        let kind;
        let (method, path, body): (Method, String, Option<Vec<u8>>) = match case % 10 {
            0..=4 => {
                kind = "inference: generated";
                (
                    Method::POST,
                    "/inference".into(),
                    Some(serde_json::to_vec(&request(&mut r)).unwrap()),
                )
            }
            5..=6 => {
                kind = "inference: mutated bytes";
                let mut b = valid_body.clone();
                mutate(&mut r, &mut b);
                (Method::POST, "/inference".into(), Some(b))
            }
            7 => {
                kind = "session: mutated config.json";
                let mut c = seed_config.clone();
                mutate(&mut r, &mut c);
                write_session(&root, "fuzz_c", &c, Some(&seed_npz));
                let p = *r.pick(&["/load_session", "/diff_sessions"]);
                let b = if p == "/load_session" {
                    json!({"session_id": "fuzz_c"})
                } else {
                    json!({"a": seed_id, "b": "fuzz_c"})
                };
                (Method::POST, p.into(), Some(b.to_string().into_bytes()))
            }
            8 => {
                kind = "session: mutated tensors.npz";
                let mut z = seed_npz.clone();
                mutate(&mut r, &mut z);
                write_session(&root, "fuzz_z", &seed_config, Some(&z));
                let p = *r.pick(&["/diff_sessions", "/load_session"]);
                let b = if p == "/load_session" {
                    json!({"session_id": "fuzz_z"})
                } else {
                    json!({"a": "fuzz_z", "b": seed_id})
                };
                (Method::POST, p.into(), Some(b.to_string().into_bytes()))
            }
            _ => {
                kind = "session: re-saved after loading";
                let mut z = seed_npz.clone();
                mutate(&mut r, &mut z);
                write_session(&root, "fuzz_s", &seed_config, Some(&z));
                call(
                    &state,
                    Method::POST,
                    "/load_session",
                    Some(br#"{"session_id":"fuzz_s"}"#.to_vec()),
                )
                .await;
                (
                    Method::POST,
                    "/save_state".into(),
                    Some(br#"{"name":"fuzz"}"#.to_vec()),
                )
            }
        };
        let (status, bytes) = call(&state, method, &path, body.clone()).await;
        *seen.entry((kind, status.as_u16())).or_default() += 1;
        let json_ok = serde_json::from_slice::<Value>(&bytes).is_ok();
        if status.is_server_error() || !json_ok {
            eprintln!(
                "case {case} ({kind}) {path}: {status} {}\nbody sent: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(500)]),
                String::from_utf8_lossy(&body.unwrap_or_default()[..])
            );
            std::process::exit(1);
        }
        // Saved sessions pile up: keep the folder small.
        if case % 500 == 499 {
            for e in std::fs::read_dir(&root).unwrap().flatten() {
                if e.file_name() != seed_id.as_str() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{cases} cases (seed {seed}) in {secs:.0} s: no 5xx, no panic, every answer JSON.\n");
    println!("| input | status | cases |");
    println!("|---|---|---|");
    for ((kind, status), n) in &seen {
        println!("| {kind} | {status} | {n} |");
    }
}
