//! Performance benchmark on the default model (SmolLM2-135M GGUF).
//!
//! `cargo run --release --example bench` prints markdown tables: engine time
//! split (forward, lens projection, top-k + decoding), writing the JSON (attention included)
//! serialisation, end-to-end HTTP time and response bytes for ~16, ~50 and
//! ~200 tokens, each lens type, with and without attention; candle's f32
//! matmul rate on the lens's own shape and on a large square; and load time
//! and peak RSS (in a child process); an activation-patching sweep against
//! the cold forward passes it replaces, and direct logit attribution. Options: `--model M` (default: the
//! SmolLM2 GGUF), `--reps N` (default 5), `--quick` (fewer cases),
//! `--causal-only` (only the patching, attribution and generation sections), `--sweep-only`
//! (the batched sweeps alone, min and median of `--reps`),
//! `--forward-only` (the forward pass alone at 17, 54 and 220 tokens against its floor, and
//! eight prompts' passes one by one and as one batch),
//! `--generation-only`, `--jlens-only` (a Jacobian-lens fit's cost per prompt against a
//! forward pass, and its readout against the logit lens's), `--sae-only` (an SAE's encoding of
//! a 220-token prompt against its product floor, and a splice and an ablation), `--eval-only`
//! (eval-lens and a few train-lens steps over documents of 64 tokens, tokens per second with the
//! documents run one by one and batched, interleaved).

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use logitlens_engine::attention::{Format, Reduce};
use logitlens_engine::default_model::ensure_default_model;
use logitlens_engine::ops::{self, Context, Operation};
use logitlens_engine::watch::Unwatched;
use logitlens_engine::{
    api, InferenceRequest, LensType, LoadedModel, RunOutput, RunRequest, RunSpec, RunState,
};
use logitlens_server::lifecycle::{self, Then};
use logitlens_server::status::Backend;
use logitlens_server::{app, AppState, ServerConfig};

const BASE_TEXT: &str =
    "The quick brown fox jumps over the lazy dog while the capital of France, Paris, \
sits on the Seine and hosts museums, cafes and gardens that visitors from every country admire. ";

/// A checked run, taking over from `earlier` runs.
fn run_spec(m: &LoadedModel, spec: RunSpec, earlier: &[&RunState]) -> RunOutput {
    let cx = Context {
        watch: &Unwatched,
        earlier,
    };
    spec.run(m, &cx, &mut |e| match e {}).unwrap()
}

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

/// A `/proc/self/status` figure (`VmHWM`, `VmRSS`) in MiB.
fn status_mib(key: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn peak_rss_mib() -> f64 {
    status_mib("VmHWM")
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

/// Write the GGUF's weights as a Hugging Face folder (config.json,
/// tokenizer.json, model.safetensors in `dtype`), for the load benchmark.
fn export_safetensors(gguf_path: &str, dir: &std::path::Path, dtype: DType) {
    std::fs::create_dir_all(dir).unwrap();
    let file =
        logitlens_engine::load::gguf::GgufFile::open(std::path::Path::new(gguf_path)).unwrap();
    let family = file.family().unwrap().unwrap();
    // The GGUF's metadata under config.json's names is the config.json.
    let mut config = file.config_fields(family).unwrap();
    config.insert(
        "architectures".into(),
        serde_json::json!([family.class_name()]),
    );
    let torch_dtype = if dtype == DType::BF16 {
        "bfloat16"
    } else {
        "float32"
    };
    config.insert("torch_dtype".into(), torch_dtype.into());
    let config = serde_json::Value::Object(config).to_string();
    std::fs::write(dir.join("config.json"), &config).unwrap();
    let cfg = logitlens_engine::BackendKind::Custom
        .config_from_hf_json(&config)
        .unwrap();
    let tok = logitlens_engine::tokenizer::gguf::tokenizer_from_gguf(&file.content).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tok.to_string(false).unwrap()).unwrap();
    let tensors: std::collections::HashMap<String, Tensor> = file
        .read_tensors(&cfg, false, &mut |_, _| {})
        .unwrap()
        .tensors
        .into_iter()
        .map(|(k, t)| (k, t.widen(dtype).unwrap()))
        .collect();
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
}

fn main() {
    logitlens_engine::nn::pin_thread_count();
    let spec = arg("--model").unwrap_or_else(|| {
        ensure_default_model(&mut |m| eprintln!("{m}"))
            .unwrap()
            .display()
            .to_string()
    });
    if let Some(model) = arg("--scale-run") {
        scale_run(&model);
        return;
    }
    if let Some(dir) = arg("--scale") {
        scale_section(std::path::Path::new(&dir));
        return;
    }
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
    if std::env::args().any(|a| a == "--generation-only") {
        generation_section(&LoadedModel::load(&spec, &mut |_| {}).unwrap(), reps);
        return;
    }
    if std::env::args().any(|a| a == "--jlens-only") {
        jlens_section(&LoadedModel::load(&spec, &mut |_| {}).unwrap(), reps);
        return;
    }
    if std::env::args().any(|a| a == "--sae-only") {
        sae_section(&LoadedModel::load(&spec, &mut |_| {}).unwrap(), reps);
        return;
    }
    if std::env::args().any(|a| a == "--eval-only") {
        eval_section(&LoadedModel::load(&spec, &mut |_| {}).unwrap(), reps);
        return;
    }
    if std::env::args().any(|a| a == "--forward-only") {
        forward_section(&LoadedModel::load(&spec, &mut |_| {}).unwrap(), reps);
        return;
    }
    if std::env::args().any(|a| a == "--sweep-only") {
        sweep_section(&LoadedModel::load(&spec, &mut |_| {}).unwrap(), reps);
        return;
    }
    if std::env::args().any(|a| a == "--causal-only") {
        let m = LoadedModel::load(&spec, &mut |_| {}).unwrap();
        causal_section(&m, reps);
        generation_section(&m, reps);
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");

    // Each load in a fresh process, so peak RSS is the load's own: the
    // GGUF, and the same weights exported as safetensors (f32 and bf16).
    let export = tempfile::tempdir().unwrap();
    let mut loads = vec![(spec.clone(), "as given".to_string())];
    if spec.ends_with(".gguf") {
        for dtype in [DType::F32, DType::BF16] {
            let dir = export
                .path()
                .join(format!("SmolLM2-135M-{dtype:?}-safetensors"));
            export_safetensors(&spec, &dir, dtype);
            loads.push((dir.display().to_string(), format!("safetensors {dtype:?}")));
        }
    }
    println!("## Load\n\n| model | stored | ready (s) | peak RSS (MiB) | compute dtype |\n|---|---|---|---|---|");
    for (model, stored) in &loads {
        let mut ready = vec![];
        let mut rss = vec![];
        let mut dtype = String::new();
        for _ in 0..reps.min(3) {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--load-only", "--model", model])
                .output()
                .unwrap();
            let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let parts: Vec<&str> = line.split_whitespace().collect();
            ready.push(Duration::from_secs_f64(
                parts[0].parse::<f64>().unwrap_or(f64::NAN),
            ));
            rss.push(parts[1].parse::<f64>().unwrap_or(f64::NAN));
            dtype = parts.get(2).unwrap_or(&"?").to_string();
        }
        rss.sort_by(f64::total_cmp);
        println!(
            "| {} | {stored} | {:.2} | {:.0} | {dtype} |",
            model.rsplit('/').next().unwrap_or(model),
            median(ready).as_secs_f64(),
            rss[rss.len() / 2],
        );
    }
    println!();

    let m = LoadedModel::load(&spec, &mut |_| {}).unwrap();
    let info = m.info();
    let (d, v) = (info.hidden_size, info.vocab_size);

    println!("## f32 matrix product (candle, this machine)\n\n| shape (m x k x n) | GFLOP/s |\n|---|---|");
    let rows = info.num_layers + 1;
    for (mm, k, n) in [(rows * 53, d, v), (rows * 16, d, v), (2048, 2048, 2048)] {
        println!("| {mm} x {k} x {n} | {:.0} |", matmul_rate(mm, k, n, reps));
    }
    println!();

    let (_rt, url) = server(&spec, false);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(true)
        .build()
        .into();

    println!("## Inference\n\nMedians of {reps} runs, milliseconds. Engine columns from one in-process run; HTTP is POST /inference end to end on loopback (every run cold). Attention: `json` is the original's nested `attention` field (every layer and head), `spa` what the web app asks for (`attention_format: f16`, `attention_reduce: head_mean`, and `entropy: true`).\n");
    println!("| tokens | lens | attention | forward | lens projection | top-k + decode | JSON (with attention) | engine total | HTTP | response |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let sizes: &[usize] = if quick { &[16, 53] } else { &[16, 53, 220] };
    for &n in sizes {
        let text = text_of(&m, n);
        for lens in ["block_output", "post_attention", "combined"] {
            for attention in ["no", "json", "spa"] {
                if quick && lens != "block_output" {
                    continue;
                }
                let mut wire = InferenceRequest::new(text.clone());
                wire.lens_type = lens.parse().unwrap();
                let req = &mut wire;
                req.return_attention = attention != "no";
                if attention == "spa" {
                    req.attention_format = Some(Format::F16);
                    req.attention_reduce = Some(Reduce::HeadMean);
                    req.entropy = true;
                }
                let t = m.tokenize(&req.text, false).unwrap().len();
                let req = RunRequest::from(wire.clone());
                let mut fwd = vec![];
                let mut proj = vec![];
                let mut topk = vec![];
                let mut ser = vec![];
                let mut total = vec![];
                for _ in 0..reps {
                    let t0 = Instant::now();
                    let out = ops::execute(&m, &req).unwrap();
                    let t1 = Instant::now();
                    let mut body = Vec::new();
                    let RunOutput {
                        answer,
                        state,
                        timings,
                    } = out;
                    let wire_body =
                        api::InferenceResponse::new(answer, &state.capture.patterns).unwrap();
                    serde_json::to_writer(&mut body, &wire_body).unwrap();
                    ser.push(t1.elapsed());
                    total.push(t0.elapsed());
                    let _ = body.len();
                    fwd.push(timings.forward);
                    proj.push(timings.lens_projection);
                    topk.push(timings.topk_decode);
                }
                let (http, bytes) =
                    post_median(&agent, &url, &serde_json::to_value(&wire).unwrap(), reps);
                println!(
                    "| {t} | {lens} | {attention} | {} | {} | {} | {} | {} | {} | {:.2} MB |",
                    ms(median(fwd)),
                    ms(median(proj)),
                    ms(median(topk)),
                    ms(median(ser)),
                    ms(median(total)),
                    ms(http),
                    bytes as f64 / 1e6
                );
            }
        }
    }

    // Re-runs: the same text with an intervention at two thirds of the
    // depth, after a run without it (what a researcher does in the UI).
    let n_layers = info.num_layers;
    let l = n_layers * 2 / 3;
    println!("\n## Re-runs\n\nAn intervention at layer {l} of {n_layers} (`layer_{l}_output` scaled by 0.5), combined lens, attention and entropy as the web app asks for them. Cold: no earlier run of the text; warm: right after a run without the intervention. Medians of {reps}, milliseconds.\n");
    println!("| tokens | engine cold | engine warm | speed-up | HTTP cold | HTTP warm | speed-up | layers reused |");
    println!("|---|---|---|---|---|---|---|---|");
    let (rt2, url2) = server(&spec, true);
    for &n in &[53usize, 220] {
        if quick && n > 50 {
            continue;
        }
        let text = text_of(&m, n);
        let mk = |text: &str, iv: bool| {
            let mut r = InferenceRequest::new(text);
            r.lens_type = LensType::Combined;
            r.return_attention = true;
            r.attention_format = Some(Format::F16);
            r.attention_reduce = Some(Reduce::HeadMean);
            r.entropy = true;
            if iv {
                r.interventions = serde_json::from_value(serde_json::json!({
                    format!("layer_{l}_output"): [{"type": "scale", "value": 0.5}]
                }))
                .unwrap();
            }
            r
        };
        let (base, req) = (
            RunRequest::from(mk(&text, false)),
            RunRequest::from(mk(&text, true)),
        );
        let ids = m.tokenize(&req.text, false).unwrap();
        let spec = |r: &RunRequest| RunSpec::new(&m, r, ids.clone()).unwrap();
        let first = run_spec(&m, spec(&base), &[]);
        let mut cold = vec![];
        let mut warm = vec![];
        let mut reused = 0;
        for _ in 0..reps {
            let t0 = Instant::now();
            let c = run_spec(&m, spec(&req), &[]);
            cold.push(t0.elapsed());
            let t0 = Instant::now();
            let w = run_spec(&m, spec(&req), &[&first.state]);
            warm.push(t0.elapsed());
            reused = w.timings.reused_layers;
            assert_eq!(w.answer, c.answer, "warm and cold runs must agree");
        }
        // Over HTTP, on a server that reuses: cold = a text it has not
        // seen (a different word at the front each time), warm = the
        // intervention right after the plain run of the same text.
        let mut hcold = vec![];
        let mut hwarm = vec![];
        for i in 0..reps {
            let variant = format!(
                "{} {text}",
                ["One", "Two", "Three", "Four", "Five", "Six", "Seven"][i % 7]
            );
            let (d, _) = post_median(
                &agent,
                &url2,
                &serde_json::to_value(mk(&variant, true)).unwrap(),
                1,
            );
            hcold.push(d);
            let variant = format!("Again {variant}");
            post_median(
                &agent,
                &url2,
                &serde_json::to_value(mk(&variant, false)).unwrap(),
                1,
            );
            let (d, _) = post_median(
                &agent,
                &url2,
                &serde_json::to_value(mk(&variant, true)).unwrap(),
                1,
            );
            hwarm.push(d);
        }
        let (c, w, hc, hw) = (median(cold), median(warm), median(hcold), median(hwarm));
        println!(
            "| {} | {} | {} | {:.1}x | {} | {} | {:.1}x | {reused} |",
            ids.len(),
            ms(c),
            ms(w),
            c.as_secs_f64() / w.as_secs_f64(),
            ms(hc),
            ms(hw),
            hc.as_secs_f64() / hw.as_secs_f64()
        );
    }
    drop(rt2);

    causal_section(&m, reps);
    generation_section(&m, reps);

    // /model_status while a long request runs.
    println!("\n## /model_status during a long request\n");
    let long = {
        let mut r = InferenceRequest::new(text_of(&m, if quick { 50 } else { 200 }));
        r.lens_type = LensType::Combined;
        r.return_attention = true;
        serde_json::to_value(&r).unwrap()
    };
    let status_url = url.replace("/inference", "/model_status");
    let busy = {
        let agent = agent.clone();
        let url = url.clone();
        std::thread::spawn(move || post_median(&agent, &url, &long, 1).0)
    };
    std::thread::sleep(Duration::from_millis(100));
    let mut lat = vec![];
    while !busy.is_finished() {
        let t0 = Instant::now();
        agent
            .get(&status_url)
            .call()
            .unwrap()
            .body_mut()
            .read_to_vec()
            .unwrap();
        lat.push(t0.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    let long_took = busy.join().unwrap();
    lat.sort();
    println!(
        "{} polls during a {} ms request: median {} ms, max {} ms.",
        lat.len(),
        ms(long_took),
        ms(lat[lat.len() / 2]),
        ms(*lat.last().unwrap())
    );
}

/// POST `body` `reps` times: (median time, bytes of the last answer).
fn post_median(
    agent: &ureq::Agent,
    url: &str,
    body: &serde_json::Value,
    reps: usize,
) -> (Duration, usize) {
    let mut times = vec![];
    let mut bytes = 0;
    for _ in 0..reps {
        let t0 = Instant::now();
        let mut r = agent.post(url).send_json(body).unwrap();
        let b = r
            .body_mut()
            .with_config()
            .limit(1 << 31)
            .read_to_vec()
            .unwrap();
        times.push(t0.elapsed());
        bytes = b.len();
    }
    (median(times), bytes)
}

/// A server with `spec` loaded on a loopback port: its runtime and data
/// folder (alive as long as it is used) and the /inference URL.
fn server(spec: &str, reuse_runs: bool) -> ((tokio::runtime::Runtime, tempfile::TempDir), String) {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::new(ServerConfig {
        data_dir: dir.path().to_path_buf(),
        reuse_runs,
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
    rt.block_on(lifecycle::load(
        &state,
        spec.to_string(),
        Backend::Custom,
        Then::Serve,
    ))
    .unwrap();
    ((rt, dir), format!("http://{addr}/inference"))
}

/// In a child process: load `model` with its weights as stored, run the
/// full lens on 12 tokens, then time the forward pass and the lens at 16
/// and 64 tokens. Prints one JSON line.
fn scale_run(model: &str) {
    use logitlens_engine::{LoadOptions, WeightsMode};
    let t = Instant::now();
    let opts = LoadOptions {
        weights: WeightsMode::Stored,
        ..Default::default()
    };
    let m = LoadedModel::load_with(model, opts, &mut |_| {}).unwrap();
    let load_s = t.elapsed().as_secs_f64();
    let loaded_rss = status_mib("VmRSS");
    let info = m.weights_info();
    let t = Instant::now();
    let out = ops::execute(&m, &RunRequest::new(text_of(&m, 12))).unwrap();
    let lens12_s = t.elapsed().as_secs_f64();
    let rows12 = out.answer.logit_lens.len();
    drop(out);
    let peak12 = peak_rss_mib();
    let mut times = serde_json::Map::new();
    for n in [16usize, 64] {
        let text = text_of(&m, n);
        let (mut fwd, mut lens) = (vec![], vec![]);
        for _ in 0..2 {
            let out = ops::execute(&m, &RunRequest::new(text.clone())).unwrap();
            fwd.push(out.timings.forward);
            lens.push(out.timings.lens_projection + out.timings.topk_decode);
        }
        times.insert(
            n.to_string(),
            serde_json::json!([median(fwd).as_secs_f64(), median(lens).as_secs_f64()]),
        );
    }
    println!(
        "{}",
        serde_json::json!({
            "load_s": load_s, "loaded_rss_mib": loaded_rss, "lens12_s": lens12_s,
            "rows12": rows12, "peak12_mib": peak12, "peak_mib": peak_rss_mib(),
            "kinds": info.kinds, "resident": info.resident_bytes,
            "block_bytes": m.model.block_bytes(), "times": times,
        })
    );
}

/// Bytes copied per second between two 1 GiB buffers, both cores copying.
fn copy_bandwidth() -> f64 {
    use rayon::prelude::*;
    let n = 1 << 30;
    let src = vec![1u8; n];
    let mut dst = vec![0u8; n];
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        dst.par_chunks_mut(1 << 22)
            .zip(src.par_chunks(1 << 22))
            .for_each(|(d, s)| d.copy_from_slice(s));
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(&dst);
    n as f64 / best
}

/// The scale section: 8B-shaped checkpoints written by
/// `examples/scale_checkpoint.rs`, each loaded in a child process.
fn scale_section(dir: &std::path::Path) {
    let models = [
        (
            dir.join("llama-3.1-8b-shaped"),
            "bf16 safetensors (4 shards)",
        ),
        (
            dir.join("llama-3.1-8b-shaped-Q4_K.gguf"),
            "GGUF Q4_K (output Q6_K)",
        ),
    ];
    let bw = copy_bandwidth();
    // The forward's own gemm shapes at 64 tokens, f32.
    let (d, ff, kv) = (4096usize, 14336usize, 1024usize);
    let rate = matmul_rate(64, d, ff, 3) * 1e9;
    let matmul_params = 32 * (2 * d * d + 2 * kv * d + 3 * d * ff);
    println!("## Scale: Llama-3.1-8B shapes, weights kept as stored\n");
    println!(
        "Random weights with Llama-3.1-8B's exact shapes (`cargo run --release --example scale_checkpoint`). This machine: copy bandwidth {:.1} GB/s, f32 gemm {:.0} GFLOP/s at 64 x 4096 x 14336. Floors for a 64-token forward: the blocks' weights read once (their bytes as held / copy bandwidth) and the gemm work (2 x 64 x {matmul_params} FLOP / gemm rate).\n",
        bw / 1e9,
        rate / 1e9,
    );
    println!("| checkpoint | on disk (GB) | load (s) | RSS loaded (GB) | peak RSS, 12-token lens (GB) | peak / stored | 12-token lens (s) | forward 16 (s) | lens 16 (s) | forward 64 (s) | lens 64 (s) | floor 64: bandwidth / gemm (s) | forward 64 / floor |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (path, what) in &models {
        if !path.exists() {
            println!(
                "| {what} | missing: run the scale_checkpoint example | | | | | | | | | | | |"
            );
            continue;
        }
        let on_disk: u64 = if path.is_dir() {
            std::fs::read_dir(path)
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".safetensors"))
                .map(|e| e.metadata().unwrap().len())
                .sum()
        } else {
            std::fs::metadata(path).unwrap().len()
        };
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--scale-run", path.to_str().unwrap()])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout);
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
            println!(
                "| {what} | failed: {} | | | | | | | | | | | |",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            continue;
        };
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        let t = |n: &str, i: usize| v["times"][n][i].as_f64().unwrap_or(f64::NAN);
        let floor_bw = f("block_bytes") / bw;
        let floor_gemm = 2.0 * 64.0 * matmul_params as f64 / rate;
        let mib_gb = 1048576.0 / 1e9;
        println!(
            "| {what} ({}) | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {:.2} |",
            v["kinds"].as_str().unwrap_or("?"),
            on_disk as f64 / 1e9,
            f("load_s"),
            f("loaded_rss_mib") * mib_gb,
            f("peak12_mib") * mib_gb,
            f("peak12_mib") * 1048576.0 / on_disk as f64,
            f("lens12_s"),
            t("16", 0),
            t("16", 1),
            t("64", 0),
            t("64", 1),
            floor_bw,
            floor_gemm,
            t("64", 0) / floor_bw.max(floor_gemm),
        );
    }
    println!();
}

/// The forward pass alone (no lens, no attention kept) at short and long
/// prompts, against its product floor: `2 · T · params` (the block
/// weights) at this machine's f32 product rate, measured next to each
/// forward on the forward's largest shape at 512 tokens (`[512, d] x
/// [d, d_mlp]`, candle), and against reading its f32 weights once at the
/// copy bandwidth measured here. The host is shared, so the rate is taken
/// again for each row rather than assumed. `LOGITLENS_BENCH_LOOP=N` repeats each forward N
/// more times, for a sampling profiler.
fn forward_section(m: &LoadedModel, reps: usize) {
    use logitlens_engine::hooks::InterventionPlan;
    use logitlens_engine::model::ForwardOptions;
    let cfg = m.config().clone();
    let (d, f, n) = (cfg.d_model, cfg.d_mlp, cfg.n_layers);
    // The block products' weights (q, k, v, o, and the MLP's three), the
    // products a forward makes per token; the head is not part of it.
    let kv = cfg.n_kv_heads * cfg.head_dim;
    let per_layer = d * cfg.n_heads * cfg.head_dim * 2 + 2 * d * kv + 3 * d * f;
    let params = (n * per_layer) as f64;
    let bw = copy_bandwidth() / 1e9;
    let extra: usize = std::env::var("LOGITLENS_BENCH_LOOP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    println!("\n## The forward pass alone\n");
    println!("Medians of {reps}, ms. Floor: the block products at this machine's f32 product rate, measured next to each forward on [512, {d}] x [{d}, {f}] (candle), or reading their f32 weights ({:.0} MB) once at the copy bandwidth ({bw:.1} GB/s), whichever is larger.\n", params * 4.0 / 1e6);
    println!("| tokens | forward | product rate at 512 (GFLOP/s) | product floor | weight-read floor | forward / floor |");
    println!("|---|---|---|---|---|---|");
    let plan = InterventionPlan::default();
    let opts = ForwardOptions {
        keep_patterns: false,
        watch: &Unwatched,
    };
    let only: Option<usize> = std::env::var("LOGITLENS_BENCH_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok());
    for tokens in [17, 54, 220] {
        if only.is_some_and(|o| o != tokens) {
            continue;
        }
        let ids = m.tokenize(&text_of(m, tokens), false).unwrap();
        let t = ids.len();
        let _ = m.model.forward_with(&ids, &plan, None, &opts).unwrap();
        let time = median(
            (0..reps + extra)
                .map(|_| {
                    let t0 = Instant::now();
                    m.model.forward_with(&ids, &plan, None, &opts).unwrap();
                    t0.elapsed()
                })
                .collect(),
        );
        let rate = matmul_rate(512, d, f, reps.max(5)) * 1e9;
        let product = 2.0 * t as f64 * params / rate;
        let read = params * 4.0 / (bw * 1e9);
        let floor = product.max(read);
        println!(
            "| {t} | {:.1} | {:.0} | {:.1} | {:.1} | {:.2}x |",
            time.as_secs_f64() * 1e3,
            rate / 1e9,
            product * 1e3,
            read * 1e3,
            time.as_secs_f64() / floor
        );
    }
    batch_of_prompts(m, reps);
}

/// Eight prompts of 17 to 24 tokens: their forward passes one by one and
/// as one padded batch, and whole runs (lens and all) one by one and as
/// `/inference_batch` makes them.
fn batch_of_prompts(m: &LoadedModel, reps: usize) {
    use logitlens_engine::hooks::InterventionPlan;
    use logitlens_engine::model::ForwardOptions;
    use logitlens_engine::ops::run::batch::{BatchRequest, BatchSpec};
    let texts: Vec<String> = (0..8).map(|i| text_of(m, 17 + i)).collect();
    let ids: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| m.tokenize(t, false).unwrap())
        .collect();
    let plan = InterventionPlan::default();
    let opts = ForwardOptions {
        keep_patterns: false,
        watch: &Unwatched,
    };
    let t = ids.iter().map(Vec::len).max().unwrap();
    let padded: Vec<Vec<u32>> = ids
        .iter()
        .map(|i| {
            let mut p = i.clone();
            p.resize(t, *i.last().unwrap());
            p
        })
        .collect();
    let batch: Vec<&[u32]> = padded.iter().map(Vec::as_slice).collect();
    let timed = |f: &dyn Fn()| {
        f();
        median(
            (0..reps.max(5))
                .map(|_| {
                    let t0 = Instant::now();
                    f();
                    t0.elapsed()
                })
                .collect(),
        )
    };
    let alone = timed(&|| {
        for i in &ids {
            m.model.forward_with(i, &plan, None, &opts).unwrap();
        }
    });
    let together = timed(&|| {
        m.model.forward_batch(&batch, &opts).unwrap();
    });
    let req = BatchRequest {
        runs: texts.iter().map(|t| RunRequest::new(t.as_str())).collect(),
    };
    let runs = |max_batch| {
        let spec = BatchSpec {
            max_batch,
            ..BatchSpec::check(m, &req).unwrap()
        };
        spec.run(m, &Context::default(), &mut |e| match e {})
            .unwrap();
    };
    let runs_alone = timed(&|| runs(Some(1)));
    let runs_together = timed(&|| runs(None));
    let lens = |d: Duration| d.as_secs_f64() * 1e3;
    println!("
{} prompts of {}-{t} tokens (medians of {}, ms): their forward passes one by one {}, as one batch padded to {t} tokens {} ({:.1}x); whole runs with the block_output lens one by one {}, as `/inference_batch` runs them {} ({:.2}x: the lens projection, at its floor, is most of a run).",
        ids.len(),
        ids.iter().map(Vec::len).min().unwrap(),
        reps.max(5),
        ms(alone),
        ms(together),
        lens(alone) / lens(together),
        ms(runs_alone),
        ms(runs_together),
        lens(runs_alone) / lens(runs_together));
}

/// The bench's patching pair: the sweep of `hook` over a 10-token pair,
/// logit(" Paris") - logit(" Rome").
fn bench_pair(m: &LoadedModel, hook: &str) -> logitlens_engine::ops::patch::PatchSpec {
    use logitlens_engine::ops::patch::{MetricRequest, PatchRequest, PatchSpec};
    let req = PatchRequest {
        clean_text: "The Eiffel Tower is located in the city of".into(),
        corrupted_text: "The Colosseum is located in the city of".into(),
        hook: hook.into(),
        metric: MetricRequest::LogitDiff {
            correct: serde_json::json!(" Paris"),
            wrong: serde_json::json!(" Rome"),
        },
        positions: None,
        apply_chat_template: false,
    };
    PatchSpec::check(m, &req).unwrap()
}

/// Runs `spec` `reps` times, each time taken alone.
fn sweep_times(
    m: &LoadedModel,
    spec: &logitlens_engine::ops::patch::PatchSpec,
    reps: usize,
) -> Vec<Duration> {
    (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            spec.clone()
                .run(m, &Context::default(), &mut |e| match e {})
                .unwrap();
            t0.elapsed()
        })
        .collect()
}

/// The causal section's batched sweeps alone, `reps` times each: min and
/// median, for before/after runs interleaved by hand.
fn sweep_section(m: &LoadedModel, reps: usize) {
    for hook in ["resid_pre", "mlp_out"] {
        let mut times = sweep_times(m, &bench_pair(m, hook), reps);
        times.sort();
        println!(
            "sweep {hook}: min {:.3} s, median {:.3} s ({reps} runs)",
            times[0].as_secs_f64(),
            times[reps / 2].as_secs_f64()
        );
    }
}

/// An activation-patching sweep (every layer x every position of a 10-token
/// pair, resid_pre, then mlp_out) against what it replaces: one cold
/// forward pass per patched run, each projecting its last position (a
/// sweep with no resuming); and direct logit attribution at the last
/// position beside the run it is part of.
fn causal_section(m: &LoadedModel, reps: usize) {
    use logitlens_engine::hooks::InterventionPlan;
    use logitlens_engine::model::ForwardOptions;
    use logitlens_engine::ops::patch::PatchSpec;
    use logitlens_engine::ops::AttributionRequest;

    let (clean, corrupted) = (
        "The Eiffel Tower is located in the city of",
        "The Colosseum is located in the city of",
    );
    let n = m.config().n_layers;
    println!("\n## Patching and attribution\n");
    let mut rows = Vec::new();
    for hook in ["resid_pre", "mlp_out"] {
        let spec = bench_pair(m, hook);
        let t = spec.clean.len();
        let runs = spec.runs(n);
        let time = |spec: &PatchSpec| median(sweep_times(m, spec, reps.min(3)));
        // One by one (each patched run through the layers after its own,
        // alone: the sweep before batching) and batched.
        let alone = time(&PatchSpec {
            max_batch: Some(1),
            ..spec.clone()
        });
        let batched = time(&spec);
        rows.push((hook, t, runs, alone, batched));
    }
    // What a sweep without resuming costs: a cold forward pass of the
    // corrupted text and its last position's head, once per patched run.
    let (_, t, runs, _, _) = rows[0];
    let ids = m.tokenize(corrupted, false).unwrap();
    let opts = ForwardOptions {
        keep_patterns: false,
        watch: &Unwatched,
    };
    let plain = InterventionPlan::default();
    let t0 = Instant::now();
    for _ in 0..runs {
        let cap = m.model.forward_with(&ids, &plain, None, &opts).unwrap();
        let last = cap.resid[n].narrow(0, t - 1, 1).unwrap();
        m.model.unembed(&last).unwrap();
    }
    let cold = t0.elapsed();
    // The unit an HTTP client sees a sweep in: one forward of its prompt.
    let one = median(
        (0..reps.max(5))
            .map(|_| {
                let t0 = Instant::now();
                m.model.forward_with(&ids, &plain, None, &opts).unwrap();
                t0.elapsed()
            })
            .collect(),
    );
    println!("A {t}-token pair (\"{clean}\" / \"{corrupted}\", logit(\" Paris\") - logit(\" Rome\")), {n} layers x {t} positions = {runs} patched runs. Sweep: medians of {}, seconds; cold: {runs} cold forward passes with the last position's head, one after another.\n", reps.min(3));
    println!("| hook | patched runs | sweep one run at a time (s) | sweep batched (s) | batching's speed-up | {runs} cold forwards (s) | cold / batched | per patched run (ms) | sweep in forwards of its prompt ({} ms each) |", ms(one));
    println!("|---|---|---|---|---|---|---|---|---|");
    for (hook, _, runs, alone, sweep) in &rows {
        println!(
            "| {hook} | {runs} | {:.2} | {:.2} | {:.1}x | {:.2} | {:.1}x | {:.1} | {:.1} |",
            alone.as_secs_f64(),
            sweep.as_secs_f64(),
            alone.as_secs_f64() / sweep.as_secs_f64(),
            cold.as_secs_f64(),
            cold.as_secs_f64() / sweep.as_secs_f64(),
            sweep.as_secs_f64() * 1e3 / *runs as f64,
            sweep.as_secs_f64() / one.as_secs_f64()
        );
    }

    let text = "The Eiffel Tower is located in the city of";
    let base = RunRequest::new(text);
    let with = RunRequest {
        attribution: Some(AttributionRequest {
            token: serde_json::json!(" Paris"),
            position: -1,
        }),
        ..RunRequest::new(text)
    };
    let time = |r: &RunRequest| {
        median(
            (0..reps)
                .map(|_| {
                    let t0 = Instant::now();
                    ops::execute(m, r).unwrap();
                    t0.elapsed()
                })
                .collect(),
        )
    };
    let (plain_run, attributed) = (time(&base), time(&with));
    println!(
        "\nDirect logit attribution of \" Paris\" at the last of {t} positions (every layer, head and MLP): \
         a block_output run takes {} ms, the same run with `attribution` {} ms (medians of {reps}).",
        ms(plain_run),
        ms(attributed)
    );
}

/// Generation with the lens at 64 prompt + 64 new tokens: the time of each
/// pass (one token's forward through the KV cache, its head and its lens
/// column), against a full /inference-style run over all 128 tokens (what
/// each step would cost without the cache).
fn generation_section(m: &LoadedModel, reps: usize) {
    use logitlens_engine::ops::generate::{GenerationRequest, GenerationSpec};

    let text = text_of(m, 64);
    let prompt = m.tokenize(&text, false).unwrap().len();
    let req = GenerationRequest {
        run: RunRequest::new(text.clone()),
        max_new_tokens: 64,
        stop_at_eos: false,
    };
    let mut prefill = vec![];
    let mut steps = vec![];
    let mut totals = vec![];
    let mut full = vec![];
    for _ in 0..reps.min(3) {
        let t0 = Instant::now();
        let mut last = t0;
        let mut marks = vec![];
        let out = GenerationSpec::check(m, &req)
            .unwrap()
            .run(m, &Context::default(), &mut |_| {
                let now = Instant::now();
                marks.push(now - last);
                last = now;
                Ok(())
            })
            .unwrap();
        totals.push(t0.elapsed());
        prefill.push(marks[0]);
        steps.extend(marks[1..].iter().copied());
        // The same ids run at once, cold, as /inference runs them.
        let spec =
            RunSpec::new(m, &RunRequest::new(text.clone()), out.run.state.ids.clone()).unwrap();
        let t0 = Instant::now();
        run_spec(m, spec, &[]);
        full.push(t0.elapsed());
    }
    let (prefill, step, total, full) =
        (median(prefill), median(steps), median(totals), median(full));
    println!("\n## Generation with the lens\n");
    println!(
        "A {prompt}-token prompt and 64 new tokens (greedy, block_output lens of every pass), medians of {} runs, milliseconds. A pass = one token through the KV cache, its head, and its lens column (every row); the whole = the prompt's pass, 64 passes, and the answer over all 128 positions assembled from them.\n",
        reps.min(3)
    );
    println!("| prompt's pass ({prompt} tokens) | per new token | whole generation | one full run over all {} tokens |", prompt + 64);
    println!("|---|---|---|---|");
    println!(
        "| {} | {} | {} | {} |",
        ms(prefill),
        ms(step),
        ms(total),
        ms(full)
    );
    println!(
        "\nWithout the cache each new token would cost a full run over the sequence so far (up to the last column's {} ms); with it a token costs {:.1}x less than that full run.",
        ms(full),
        full.as_secs_f64() / step.as_secs_f64()
    );
}

/// The Jacobian lens: a fit's cost per prompt (one recorded forward, then
/// ⌈d/dim_batch⌉ backward passes of `dim_batch` replicas) against a plain
/// forward pass of the same prompt, and a run read through the lens it
/// fitted against the same run through the logit lens.
fn jlens_section(m: &LoadedModel, reps: usize) {
    use logitlens_engine::ops::corpus::Corpus;
    use logitlens_engine::ops::fit_jlens::JlensFitRequest;
    use logitlens_engine::Lens;

    let text = text_of(m, 24);
    let tokens = m.tokenize(&text, false).unwrap().len();
    let d = m.config().d_model;
    println!("\n## The Jacobian lens\n");
    println!(
        "One prompt of {tokens} tokens, skip_first 4; a plain forward pass (block_output lens) of the same prompt for scale; seconds.\n"
    );
    println!(
        "| dim_batch | passes | fit of one prompt | per pass | forward + lens | fit / forward |"
    );
    println!("|---|---|---|---|---|---|");
    let forward = median(
        (0..reps)
            .map(|_| {
                let ids = m.tokenize(&text, false).unwrap();
                let spec = RunSpec::new(m, &RunRequest::new(text.clone()), ids).unwrap();
                let t = Instant::now();
                run_spec(m, spec, &[]);
                t.elapsed()
            })
            .collect(),
    );
    let mut fitted = None;
    for dim_batch in [32, 96] {
        let req = JlensFitRequest {
            max_seq_len: 64,
            skip_first: 4,
            dim_batch,
            ..JlensFitRequest::new(Corpus::Text(text.clone()))
        };
        let t = Instant::now();
        let sums = ops::execute(m, &req).unwrap();
        let fit = t.elapsed();
        let passes = 1 + d.div_ceil(dim_batch);
        println!(
            "| {dim_batch} | {passes} | {:.1} | {:.2} | {:.3} | {:.0}x |",
            fit.as_secs_f64(),
            fit.as_secs_f64() / passes as f64,
            forward.as_secs_f64(),
            fit.as_secs_f64() / forward.as_secs_f64()
        );
        fitted = Some(sums);
    }
    // The readout: the lens just fitted, attached from a file as a user's is.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jlens.safetensors");
    fitted.unwrap().lens(&m.name).unwrap().save(&path).unwrap();
    m.attach_jacobian_lens(&path).unwrap();
    let time = |lens: Lens| {
        let mut req = RunRequest::new(text.clone());
        req.lens = lens;
        median(
            (0..reps)
                .map(|_| {
                    let ids = m.tokenize(&text, false).unwrap();
                    let spec = RunSpec::new(m, &req, ids).unwrap();
                    let t = Instant::now();
                    run_spec(m, spec, &[]);
                    t.elapsed()
                })
                .collect(),
        )
    };
    let (logit, jacobian) = (time(Lens::Logit), time(Lens::Jacobian));
    println!(
        "\nA run of the {tokens} tokens read through the Jacobian lens takes {} ms, through the logit lens {} ms ({:+.0}%: one [d, d] product per transported row; medians of {reps}).",
        ms(jacobian),
        ms(logit),
        (jacobian.as_secs_f64() / logit.as_secs_f64() - 1.0) * 100.0
    );
}

/// Sparse autoencoders: a random f32 SAE of 16384 features over SmolLM2's
/// residual stream (576 wide), encoding a 220-token prompt's
/// `blocks.15.hook_resid_post` against its product floor (the same
/// `[T, 576] × [576, 16384]` f32 product alone), and a splice and an
/// ablation of the same rows. Random weights would leave half the
/// features active, which no trained SAE does, so the standard SAE's
/// `b_enc` is set to give about 64 active features a position (the
/// sparse decoding of the reconstruction error costs what it costs at a
/// trained SAE's L0), and the topk SAE keeps 64.
fn sae_section(m: &LoadedModel, reps: usize) {
    use logitlens_engine::hooks::SaeEdit;
    use logitlens_engine::sae::{Architecture, Normalize, Sae, SaeSettings, SaeTensors};
    const D_SAE: usize = 16384;
    const L0: usize = 64;
    const LAYER: usize = 15;

    let d = m.config().d_model;
    let text = text_of(m, 220);
    let ids = m.tokenize(&text, false).unwrap();
    let tokens = ids.len();
    let spec = RunSpec::new(m, &RunRequest::new(text), ids).unwrap();
    let x = run_spec(m, spec, &[]).state.capture.resid[LAYER + 1]
        .to_dtype(DType::F32)
        .unwrap();
    let dev = Device::Cpu;
    let scale = 1.0 / (d as f64).sqrt();
    let w_enc = Tensor::randn(0f32, scale as f32, (d, D_SAE), &dev).unwrap();
    let w_dec = Tensor::randn(0f32, scale as f32, (D_SAE, d), &dev).unwrap();
    let product = || {
        let p = x.matmul(&w_enc).unwrap();
        let _ = p.dims();
    };
    // The bias that leaves L0 of D_SAE pre-activations above zero, over
    // every position: the right quantile of this very product.
    let mut pre: Vec<f32> = x
        .matmul(&w_enc)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let at = pre.len() - pre.len() * L0 / D_SAE;
    let (_, q, _) = pre.select_nth_unstable_by(at, f32::total_cmp);
    let cut = *q;

    println!("\n## Sparse autoencoders\n");
    println!(
        "A random f32 SAE, {D_SAE} features x {d}, reading blocks.{LAYER}.hook_resid_post of a {tokens}-token prompt; the product floor is `x.matmul(W_enc)` ([{tokens}, {d}] x [{d}, {D_SAE}], f32) alone, timed in turn with the encode; ms, medians of {reps} (encode / floor: the median of the pairs' ratios).\n"
    );
    println!("| SAE | mean L0 | MiB | product floor | encode | encode / floor | splice | ablate |");
    println!("|---|---|---|---|---|---|---|---|");
    for (label, architecture, b) in [
        ("standard (b_enc for L0 ~64)", Architecture::Standard, -cut),
        (
            "topk k=64",
            Architecture::TopK {
                k: L0,
                rescale: false,
            },
            0.0,
        ),
    ] {
        let settings = SaeSettings {
            architecture,
            d_in: d,
            d_sae: D_SAE,
            hook: format!("blocks.{LAYER}.hook_resid_post"),
            apply_b_dec_to_input: false,
            normalize: Normalize::None,
            center_input: false,
            enc_scale: 1.0,
            dec_scale: 1.0,
            model_name: None,
            format: "saelens",
            notes: Vec::new(),
        };
        let tensors = SaeTensors {
            w_enc: w_enc.clone(),
            w_dec: w_dec.clone(),
            b_enc: vec![b; D_SAE],
            b_dec: vec![0.0; d],
            threshold: None,
        };
        let sae = Sae::from_parts("bench".into(), "memory".into(), settings, tensors).unwrap();
        let time = |f: &dyn Fn()| {
            f();
            median(
                (0..reps)
                    .map(|_| {
                        let t = Instant::now();
                        f();
                        t.elapsed()
                    })
                    .collect(),
            )
        };
        let rows = sae.encode(&x).unwrap();
        let l0 = rows.iter().map(|r| r.ids.len()).sum::<usize>() as f64 / rows.len() as f64;
        let feature = rows
            .last()
            .and_then(|r| r.ids.first())
            .copied()
            .unwrap_or(0);
        // The floor and the encode timed in turn, each pair back to back,
        // so the machine's drift (a shared VM's) falls on both alike; the
        // ratio is the median of the pairs'.
        product();
        sae.encode(&x).unwrap();
        let pairs: Vec<(Duration, Duration)> = (0..reps)
            .map(|_| {
                let t = Instant::now();
                product();
                let floor = t.elapsed();
                let t = Instant::now();
                sae.encode(&x).unwrap();
                (floor, t.elapsed())
            })
            .collect();
        let floor = median(pairs.iter().map(|p| p.0).collect());
        let encode = median(pairs.iter().map(|p| p.1).collect());
        let mut ratios: Vec<f64> = pairs
            .iter()
            .map(|(f, e)| e.as_secs_f64() / f.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        let ratio = ratios[ratios.len() / 2];
        let splice = time(&|| {
            sae.edit(&SaeEdit::Splice, &x).unwrap();
        });
        let ablate = time(&|| {
            sae.edit(&SaeEdit::Ablate { feature }, &x).unwrap();
        });
        println!(
            "| {label} | {l0:.1} | {:.1} | {} | {} | {:.2}x | {} | {} |",
            sae.bytes() as f64 / (1 << 20) as f64,
            ms(floor),
            ms(encode),
            ratio,
            ms(splice),
            ms(ablate)
        );
    }
}

/// eval-lens and train-lens over a corpus of documents all `max_tokens`
/// long (as a sampled corpus is), their clean runs made one by one
/// (`max_batch: 1`, as before issue 25's batching) and batched, the two
/// interleaved so a noisy machine weighs on both alike; and the clean
/// forwards alone, which is what batching changes.
fn eval_section(m: &LoadedModel, reps: usize) {
    use logitlens_engine::hooks::InterventionPlan;
    use logitlens_engine::model::ForwardOptions;
    use logitlens_engine::ops::corpus::{corpus_ids, documents, Corpus};
    use logitlens_engine::ops::eval::{EvalRequest, EvalSpec};
    use logitlens_engine::ops::fit::{FitRequest, FitSpec, TrainOptions};
    use logitlens_engine::ops::MAX_BATCH_BYTES;
    const T: usize = 64;
    const DOCS: usize = 16;
    const TRAIN_DOCS: usize = 8;
    const STEPS: usize = 2;
    // Distinct documents, each longer than T tokens: the base text's words
    // turned by a few words a document.
    let base = BASE_TEXT.repeat(3);
    let words: Vec<&str> = base.split(' ').collect();
    let text = |docs: usize| -> String {
        (0..docs)
            .map(|k| {
                let r = (3 * k) % (words.len() / 3);
                words[r..].join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let ids = corpus_ids(m, &documents(&text(DOCS)), T).unwrap();
    assert!(
        ids.iter().all(|d| d.len() == T),
        "every document is {T} tokens"
    );
    let reps = reps.clamp(1, 3);
    let secs = |xs: &[Duration]| median(xs.to_vec()).as_secs_f64();
    let rate = |tokens: usize, xs: &[Duration]| tokens as f64 / secs(xs);

    // eval-lens (the logit lens; no tuned lens attached).
    let req = EvalRequest {
        corpus: Corpus::Text(text(DOCS)),
        max_tokens: T,
    };
    let spec_of = |max_batch| {
        let mut spec = EvalSpec::check(m, &req).unwrap();
        spec.max_batch = max_batch;
        spec
    };
    // Documents a batch takes: its runs' memory over one document's.
    let runs = |max_batch| {
        let cost = spec_of(max_batch).cost(m);
        let (_, bytes) = *cost
            .memory
            .iter()
            .find(|(what, _)| *what == "a batch of documents' runs")
            .unwrap();
        bytes
    };
    let (per_batch, per_doc) = ((runs(None) / runs(Some(1))) as usize, runs(Some(1)));

    // The clean forwards alone, in the batches eval-lens makes.
    let plan = InterventionPlan::default();
    let opts = ForwardOptions {
        keep_patterns: false,
        watch: &Unwatched,
    };
    let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let (mut fwd_alone, mut fwd_batched) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(3) {
        let t0 = Instant::now();
        for d in &ids {
            m.model.forward_with(d, &plan, None, &opts).unwrap();
        }
        fwd_alone.push(t0.elapsed());
        let t0 = Instant::now();
        for batch in refs.chunks(per_batch) {
            m.model.forward_batch(batch, &opts).unwrap();
        }
        fwd_batched.push(t0.elapsed());
    }

    let eval = |max_batch| {
        let spec = spec_of(max_batch);
        let t0 = Instant::now();
        let report = spec
            .run(m, &Context::default(), &mut |e| match e {})
            .unwrap();
        (t0.elapsed(), report)
    };
    let (mut eval_alone, mut eval_batched) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (a, ra) = eval(Some(1));
        let (b, rb) = eval(None);
        assert_eq!(
            ra, rb,
            "batched, eval-lens reports what it reported one by one"
        );
        eval_alone.push(a);
        eval_batched.push(b);
    }

    // train-lens, a few steps on one batch of documents (its frozen runs
    // made once, at the first step).
    let train_req = FitRequest {
        corpus: Corpus::Text(text(TRAIN_DOCS)),
        max_tokens: T,
        options: TrainOptions {
            steps: STEPS,
            warmup: 1,
            ..Default::default()
        },
    };
    let train = |max_batch| {
        let mut req = train_req.clone();
        req.options.max_batch = max_batch;
        let spec = FitSpec::check(m, &req).unwrap();
        let t0 = Instant::now();
        let mut losses = Vec::new();
        spec.run(m, &Context::default(), &mut |s| {
            losses.push(s.loss);
            Ok(())
        })
        .unwrap();
        (t0.elapsed(), losses)
    };
    let (mut train_alone, mut train_batched) = (Vec::new(), Vec::new());
    for _ in 0..reps.min(2) {
        let (a, la) = train(Some(1));
        let (b, lb) = train(None);
        assert_eq!(
            la, lb,
            "batched, train-lens takes the steps it took one by one"
        );
        train_alone.push(a);
        train_batched.push(b);
    }

    let tokens = DOCS * T;
    let trained = STEPS * TRAIN_DOCS * T;
    println!("\n## eval-lens and train-lens, documents batched\n");
    println!(
        "{DOCS} documents of {T} tokens (train-lens: {TRAIN_DOCS}, {STEPS} steps of all {} positions); one by one: `max_batch: 1`, each document's clean run alone; batched: runs of up to {per_batch} documents ({} MiB budget, {:.1} MiB of states and layer work a document). Medians of {reps} (train-lens: {}), interleaved; tokens per second (train-lens: positions trained, steps x positions).\n",
        TRAIN_DOCS * T,
        MAX_BATCH_BYTES >> 20,
        per_doc as f64 / (1u64 << 20) as f64,
        reps.min(2)
    );
    println!("| what | one by one (s) | batched (s) | one by one (tokens/s) | batched (tokens/s) | speed-up |");
    println!("|---|---|---|---|---|---|");
    for (what, n, a, b) in [
        ("clean forwards alone", tokens, &fwd_alone, &fwd_batched),
        ("eval-lens (logit lens)", tokens, &eval_alone, &eval_batched),
        ("train-lens", trained, &train_alone, &train_batched),
    ] {
        println!(
            "| {what} | {:.2} | {:.2} | {:.0} | {:.0} | {:.2}x |",
            secs(a),
            secs(b),
            rate(n, a),
            rate(n, b),
            secs(a) / secs(b)
        );
    }
}
