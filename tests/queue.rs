//! The queue a script expects: many requests sent at once all get their
//! answers (waiting costs little: a request is checked before it waits),
//! the queue is bounded by count and by the bytes of the bodies waiting
//! (503 with Retry-After beyond), and a waiting request whose client
//! leaves is dropped from the queue. Served on a real port, as a script
//! meets it.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::server::{server_with, TestServer};
use common::*;
use logitlens_server::ServerConfig;
use serde_json::json;

const TEXT: &str = "The capital of France is";

/// A server with the tiny llama in service, on a port of its own.
fn serve(cfg: impl FnOnce(&mut ServerConfig)) -> (tokio::runtime::Runtime, TestServer, SocketAddr) {
    let s = server_with(cfg);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(s.load(tiny("llama")));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(logitlens_server::serve::serve_on(
        listener,
        logitlens_server::app(s.state.clone()),
        s.state.cfg.header_read_timeout,
        std::future::pending(),
    ));
    (rt, s, addr)
}

/// POST /inference as a plain client does; its status.
fn post(addr: SocketAddr, body: &serde_json::Value) -> u16 {
    let url = format!("http://{addr}/inference");
    match ureq::post(&url).send_json(body) {
        Ok(r) => r.status().as_u16(),
        Err(ureq::Error::StatusCode(code)) => code,
        Err(e) => panic!("{e}"),
    }
}

/// Waits until `cond` holds; a deadline far beyond what it takes, so the
/// test fails on a bug, not on a slow machine.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A request sent by hand, its answer not read: a client that waits.
fn send_raw(addr: SocketAddr, body: &str) -> TcpStream {
    let mut conn = TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST /inference HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    conn
}

#[test]
fn sixty_four_requests_sent_at_once_all_get_their_answers() {
    let (_rt, _s, addr) = serve(|_| {});
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..64)
            .map(|i| scope.spawn(move || post(addr, &json!({"text": format!("{TEXT} {i}")}))))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
}

#[test]
fn the_queue_is_bounded_by_count_and_waiting_bytes_and_a_client_that_leaves_leaves_it() {
    let (rt, s, addr) = serve(|c| {
        c.max_running = 1;
        c.max_queued = 1;
        c.max_waiting_bytes = 4096;
    });
    let gate = &s.state.gate;
    // The only run slot taken, as a long run would take it.
    let held = rt.block_on(gate.enter(0)).ok().unwrap();
    let body = json!({ "text": TEXT }).to_string();
    // A client waits its turn...
    let first = send_raw(addr, &body);
    wait_until("the first client waits", || gate.queued() == 1);
    // ...so the queue of one is full: the next is told to come back.
    assert_eq!(post(addr, &json!({ "text": TEXT })), 503);
    // The waiting client gives up: it leaves the queue at once.
    drop(first);
    wait_until("the client that left is dropped", || gate.queued() == 0);
    // A body bigger than the bytes waiting bodies may hold is refused...
    let big = json!({ "text": TEXT, "padding": "x".repeat(5000) });
    assert_eq!(post(addr, &big), 503);
    // ...and one within them waits, and gets its answer when the slot frees.
    let mut second = send_raw(addr, &body);
    wait_until("the second client waits", || gate.queued() == 1);
    drop(held);
    let mut answer = String::new();
    second
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while !answer.contains("\r\n\r\n") {
        let n = second.read(&mut buf).unwrap();
        assert!(n > 0, "the connection closed: {answer}");
        answer.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
