//! What one forwarded call's request head costs when the attempt clones it
//! (the code before 2026-12-04: every attempt cloned the URI and the header
//! map, so that a retry could send them again) against moving it into the
//! one attempt a call without retries makes. Side by side in one process,
//! interleaved in rounds; the head is a statutory call's as Bru forwards it
//! (the caller's headers after hygiene, Bru's five `Bru-*` headers, a
//! 744-byte ES256 assertion).
//!
//! usage: cargo run --release -p connectors --example forward_head_bench -- [N] [ROUNDS]
//!        (default N = 400000 heads per case, in ROUNDS = 20 rounds)

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};

/// The process allocator, as in `bru` (gateway/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The caller's headers after hygiene.
const CALLER: [(&str, &str); 4] = [
    ("accept", "application/json"),
    ("user-agent", "nav-saksbehandling/4.2 (+https://nav.no)"),
    (
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ),
    ("nav-personident", "12884513829"),
];

/// A head as the pipeline hands it to the connector: the caller's headers
/// parsed by hyper (slices of one read buffer), then Bru's added.
fn head(read_buffer: &Bytes, assertion: &str) -> (Uri, HeaderMap) {
    let mut headers = HeaderMap::new();
    let mut at = 0;
    for (name, value) in CALLER {
        // hyper's values share the connection's read buffer.
        let v = read_buffer.slice(at..at + value.len());
        at += value.len();
        if let Ok(v) = HeaderValue::from_maybe_shared(v) {
            headers.append(HeaderName::from_static(name), v);
        }
    }
    let bru: [(&str, &str); 5] = [
        ("bru-transfer-id", "0193a4f2-7c1e-7d2a-9b1e-3c5d7e9f1a2b"),
        ("bru-consumer", "0192:983440002"),
        ("bru-purpose", "sosialhjelp-saksbehandling"),
        ("bru-legal-basis", "statutory"),
        ("bru-assertion", assertion),
    ];
    for (name, value) in bru {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    let uri = Uri::from_static("http://127.0.0.1:8091/sosialtjeneste/1k");
    (uri, headers)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(400_000);
    let rounds: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20)
        .max(1);
    let per_round = (n / rounds).max(1);
    let read_buffer = Bytes::from(CALLER.iter().map(|(_, v)| *v).collect::<String>());
    let assertion = "e".repeat(744);

    let cloned = |_: ()| {
        let (uri, headers) = head(&read_buffer, &assertion);
        let mut request = Request::new(());
        *request.method_mut() = Method::GET;
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = headers.clone();
        black_box(&request);
        drop((uri, headers));
    };
    let moved = |_: ()| {
        let (uri, headers) = head(&read_buffer, &assertion);
        let mut request = Request::new(());
        *request.method_mut() = Method::GET;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        black_box(&request);
    };
    let cases: [(&str, &dyn Fn(())); 2] = [
        ("head cloned for the attempt (before)", &cloned),
        ("head moved into the one attempt (now)", &moved),
    ];
    for (_, f) in &cases {
        for _ in 0..10_000 {
            f(());
        }
    }
    let mut ns: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); cases.len()];
    for round in 0..rounds {
        for j in 0..cases.len() {
            let i = (j + round) % cases.len();
            let started = Instant::now();
            for _ in 0..per_round {
                (cases[i].1)(());
            }
            ns[i].push(started.elapsed().as_secs_f64() * 1e9 / per_round as f64);
        }
    }
    println!(
        "forward_head_bench: {per_round} heads per case per round, {rounds} rounds, interleaved; \
         median (min–max) over rounds; building the head included in both"
    );
    println!();
    println!("| case | ns/call | spread | ×before |");
    println!("| --- | --- | --- | --- |");
    for (i, (name, _)) in cases.iter().enumerate() {
        let ratios: Vec<f64> = ns[i].iter().zip(&ns[0]).map(|(x, b)| x / b).collect();
        let (lo, hi) = ns[i]
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
        println!(
            "| {name} | {:.0} | {lo:.0}–{hi:.0} | {:.3} |",
            median(&ns[i]),
            median(&ratios)
        );
    }
    let saved: Vec<f64> = ns[0].iter().zip(&ns[1]).map(|(b, a)| b - a).collect();
    println!();
    println!(
        "saved per call: {:.0} ns (median of the rounds)",
        median(&saved)
    );
    Ok(())
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}
