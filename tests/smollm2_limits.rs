//! The server's limits on the real default model, over a real port: the
//! longest prompt the server takes, with the original's nested attention,
//! is refused with the numbers or served within its memory budget; a run
//! whose client goes away stops computing. They need the GGUF, so a plain
//! `cargo test` lists them as ignored; scripts/test.sh runs them.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::server::{server_with, TestServer};
use common::*;
use logitlens_engine::LoadedModel;
use logitlens_server::ServerConfig;
use serde_json::{json, Value};

/// Memory and CPU are measured for the whole process: one test at a time.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Resident memory of this process, bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// CPU time this process has used, seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// A server with the GGUF loaded, serving on a real port, and its model.
fn serve(
    cfg: impl FnOnce(&mut ServerConfig),
) -> (
    tokio::runtime::Runtime,
    SocketAddr,
    TestServer,
    Arc<LoadedModel>,
) {
    let s = server_with(cfg);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(s.load(smollm2_gguf()));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = logitlens_server::app(s.state.clone());
    rt.spawn(logitlens_server::serve::serve_on(
        listener,
        app,
        Duration::from_secs(10),
        std::future::pending(),
    ));
    let model = s.state.active().unwrap().0;
    (rt, addr, s, model)
}

/// A text of `n` tokens for the model.
fn text_of(m: &LoadedModel, n: usize) -> String {
    let base = "The quick brown fox jumps over the lazy dog while the capital of France, Paris, sits on the Seine. ";
    let mut words: Vec<&str> = Vec::new();
    let all: Vec<&str> = base.split(' ').cycle().take(4 * n).collect();
    for w in all {
        words.push(w);
        if m.tokenizer.encode(&words.join(" "), true).unwrap().len() >= n {
            break;
        }
    }
    words.join(" ")
}

/// POST /inference over a fresh connection: status, the body's size (read
/// and dropped as it comes), and the peak RSS growth seen while it ran.
fn post_counting(addr: SocketAddr, body: &Value) -> (u16, u64, u64, String) {
    let base = rss();
    let peak = Arc::new(AtomicU64::new(base));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let body = body.to_string();
    let mut c = TcpStream::connect(addr).unwrap();
    write!(
        c,
        "POST /inference HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1 << 16];
    let mut total = 0u64;
    let mut first = String::new();
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        if head.len() < 4096 {
            head.extend_from_slice(&buf[..n.min(4096)]);
        }
        total += n as u64;
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let text = String::from_utf8_lossy(&head).to_string();
    let status: u16 = text[9..12].parse().unwrap();
    if let Some(i) = text.find("\r\n\r\n") {
        first = text[i + 4..].chars().take(2000).collect();
    }
    (status, total, peak.load(Ordering::Relaxed) - base, first)
}

#[test]
#[ignore = "needs the default GGUF: logitlens fetch-model"]
fn the_longest_prompt_with_nested_attention_is_refused_or_served_within_budget() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let budget: u64 = 1536 << 20;
    let (_rt, addr, _s, m) = serve(|c| c.max_request_bytes = budget);
    // The server's whole token allowance, with the original's nested attention:
    // refused before running, with the estimate, the budget and what to change.
    let longest = json!({"text": text_of(&m, 2048), "return_attention": true});
    let (status, _, grew, body) = post_counting(addr, &longest);
    assert_eq!(status, 400, "{body}");
    for want in [
        "would need about",
        "allows 1536 MiB",
        "--max-request-mib",
        "return_attention",
    ] {
        assert!(body.contains(want), "{want}: {body}");
    }
    assert!(grew < 256 << 20, "refused, yet memory grew by {grew} bytes");
    // A prompt within the budget is served: its nested attention (about a
    // gigabyte of JSON) streamed, the process growing less than the budget.
    let fits = json!({"text": text_of(&m, 600), "return_attention": true});
    let (status, bytes, grew, body) = post_counting(addr, &fits);
    assert_eq!(status, 200, "{body}");
    assert!(
        bytes > 500 << 20,
        "the whole attention was sent ({bytes} bytes)"
    );
    assert!(
        grew < budget,
        "peak growth {} MiB over the {} MiB budget",
        grew >> 20,
        budget >> 20
    );
    // And the server is still up.
    let (status, _, _, _) = post_counting(addr, &json!({"text": "Hi"}));
    assert_eq!(status, 200);
}

#[test]
#[ignore = "needs the default GGUF: logitlens fetch-model"]
fn a_run_whose_client_goes_away_stops_within_a_second() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let (_rt, addr, _s, m) = serve(|_| {});
    // Long enough to take many seconds: 2000 tokens, every lens row.
    let body = json!({"text": text_of(&m, 2000), "lens_type": "combined"}).to_string();
    let mut c = TcpStream::connect(addr).unwrap();
    write!(
        c,
        "POST /inference HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let busy_before = cpu_secs();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        cpu_secs() - busy_before > 0.3,
        "the run should be computing by now"
    );
    drop(c);
    let gone = Instant::now();
    // Within a second of the client leaving, the run has stopped: over the
    // next second the process uses (almost) no CPU.
    std::thread::sleep(Duration::from_secs(1));
    let idle_from = cpu_secs();
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_secs() - idle_from;
    assert!(
        used < 0.2,
        "{used:.2} s of CPU in the second from {:?} after the client left",
        gone.elapsed() - Duration::from_secs(1)
    );
}
