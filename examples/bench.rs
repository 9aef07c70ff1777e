//! Performance benchmark on the default model (SmolLM2-135M GGUF).
//!
//! `cargo run --release --example bench` prints markdown tables: engine time
//! split (forward, lens projection, top-k + decoding, attention copy), JSON
//! serialisation, end-to-end HTTP time and response bytes for ~16, ~50 and
//! ~200 tokens, each lens type, with and without attention; candle's f32
//! matmul rate on the lens's own shape and on a large square; and load time
//! and peak RSS (in a child process). Options: `--model M` (default: the
//! SmolLM2 GGUF), `--reps N` (default 5), `--quick` (fewer cases).

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use logitlens_engine::default_model::ensure_default_model;
use logitlens_engine::{InferenceRequest, LoadedModel};
use logitlens_server::{app, routes, AppState, ServerConfig};

const BASE_TEXT: &str =
    "The quick brown fox jumps over the lazy dog while the capital of France, Paris, \
sits on the Seine and hosts museums, cafes and gardens that visitors from every country admire. ";

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// A text of about `n` tokens for this tokenizer.
fn text_of(m: &LoadedModel, n: usize) -> String {
    let mut text = String::new();
    while m.tokenizer.encode(&text, true).unwrap().len() < n {
        text.push_str(BASE_TEXT);
    }
    let words: Vec<&str> = text.split(' ').collect();
    let mut lo = 1;
    let mut hi = words.len();
    while lo < hi {
        let mid = (lo + hi) / 2;
        if m.tokenizer
            .encode(&words[..mid].join(" "), true)
            .unwrap()
            .len()
            >= n
        {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    words[..lo].join(" ")
}

fn matmul_rate(m: usize, k: usize, n: usize, reps: usize) -> f64 {
    let dev = Device::Cpu;
    let a = Tensor::randn(0f32, 1.0, (m, k), &dev).unwrap();
    let b = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
    let bt = b.t().unwrap();
    let _ = a.matmul(&bt).unwrap();
    let times: Vec<Duration> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            let c = a.matmul(&bt).unwrap();
            let _ = c.dims();
            t.elapsed()
        })
        .collect();
    2.0 * (m * k * n) as f64 / median(times).as_secs_f64() / 1e9
}

fn main() {
    let spec = arg("--model").unwrap_or_else(|| {
        ensure_default_model(&mut |m| eprintln!("{m}"))
            .unwrap()
            .display()
            .to_string()
    });
    if std::env::args().any(|a| a == "--load-only") {
        let t = Instant::now();
        let m = LoadedModel::load(&spec, &mut |_| {}).unwrap();
        println!(
            "{} {} {:?}",
            t.elapsed().as_secs_f64(),
            peak_rss_mib(),
            m.model.dtype()
        );
        return;
    }
    let reps: usize = arg("--reps").and_then(|r| r.parse().ok()).unwrap_or(5);
    let quick = std::env::args().any(|a| a == "--quick");

    // Load in a fresh process, so peak RSS is the load's own.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--load-only", "--model", &spec])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let parts: Vec<&str> = line.split_whitespace().collect();
    println!(
        "## Load\n\n| model | ready (s) | peak RSS (MiB) | compute dtype |\n|---|---|---|---|"
    );
    println!(
        "| {} | {:.2} | {:.0} | {} |\n",
        spec,
        parts[0].parse::<f64>().unwrap_or(f64::NAN),
        parts[1].parse::<f64>().unwrap_or(f64::NAN),
        parts.get(2).unwrap_or(&"?")
    );

    let m = LoadedModel::load(&spec, &mut |_| {}).unwrap();
    let info = m.info();
    let (d, v) = (info.hidden_size, info.vocab_size);

    println!("## f32 matrix product (candle, this machine)\n\n| shape (m x k x n) | GFLOP/s |\n|---|---|");
    let rows = info.num_layers + 1;
    for (mm, k, n) in [(rows * 53, d, v), (rows * 16, d, v), (2048, 2048, 2048)] {
        println!("| {mm} x {k} x {n} | {:.0} |", matmul_rate(mm, k, n, reps));
    }
    println!();

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
    rt.spawn(async move { axum::serve(listener, app(st)).await.unwrap() });
    rt.block_on(routes::load(&state, spec.clone(), "custom".into()))
        .unwrap();
    let url = format!("http://{addr}/inference");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(true)
        .build()
        .into();

    println!("## Inference\n\nMedians of {reps} runs, milliseconds. Engine columns from one in-process run; HTTP is POST /inference end to end on loopback.\n");
    println!("| tokens | lens | attention | forward | lens projection | top-k + decode | attention copy | JSON | engine total | HTTP | response |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let sizes: &[usize] = if quick { &[16, 50] } else { &[16, 50, 200] };
    for &n in sizes {
        let text = text_of(&m, n);
        for lens in ["block_output", "post_attention", "combined"] {
            for attention in [false, true] {
                if quick && lens != "block_output" {
                    continue;
                }
                let mut req = InferenceRequest::new(text.clone());
                req.lens_type = lens.into();
                req.return_attention = attention;
                let t = m.tokenize(&req).unwrap().len();
                let mut fwd = vec![];
                let mut proj = vec![];
                let mut topk = vec![];
                let mut att = vec![];
                let mut ser = vec![];
                let mut total = vec![];
                for _ in 0..reps {
                    let t0 = Instant::now();
                    let out = m.run(&req).unwrap();
                    let t1 = Instant::now();
                    let body = serde_json::to_vec(&out.response).unwrap();
                    ser.push(t1.elapsed());
                    total.push(t0.elapsed());
                    let _ = body.len();
                    fwd.push(out.timings.forward);
                    proj.push(out.timings.lens_projection);
                    topk.push(out.timings.topk_decode);
                    att.push(out.timings.attention);
                }
                let body = serde_json::to_value(&req).unwrap();
                let mut http = vec![];
                let mut bytes = 0usize;
                for _ in 0..reps {
                    let t0 = Instant::now();
                    let mut r = agent.post(&url).send_json(&body).unwrap();
                    let b = r
                        .body_mut()
                        .with_config()
                        .limit(1 << 31)
                        .read_to_vec()
                        .unwrap();
                    http.push(t0.elapsed());
                    bytes = b.len();
                }
                println!(
                    "| {t} | {lens} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} MB |",
                    if attention { "yes" } else { "no" },
                    ms(median(fwd)),
                    ms(median(proj)),
                    ms(median(topk)),
                    ms(median(att)),
                    ms(median(ser)),
                    ms(median(total)),
                    ms(median(http)),
                    bytes as f64 / 1e6
                );
            }
        }
    }
}
