//! Retries, the retry budget, the circuit breaker and the concurrency limit,
//! counted at real test servers on loopback.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use connectors::{
    AttemptOutcome, BoxError, BreakerState, Resilience, ResilienceConfig, Upstream, UpstreamError,
};
use futures_util::stream;
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Incoming;
use support::*;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Accepts TCP connections, counts them and closes them at once. Behind an
/// `https://` URL every attempt is a connect error (the TLS handshake gets
/// no answer); behind `http://` the request is sent and the answer never comes.
async fn closer() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (addr, accepted)
}

/// What the scripted provider does with its n-th request (0-based).
#[derive(Clone)]
enum Act {
    Ok,
    Status(u16),
    /// Never answers.
    Hang,
    /// Waits for the notify, then answers 200.
    Gate(Arc<Notify>),
    /// Sends the head and one chunk, then fails the body.
    BrokenBody,
}

struct Scripted {
    provider: Provider,
    requests: Arc<AtomicUsize>,
    bodies: Arc<std::sync::Mutex<Vec<Bytes>>>,
}

async fn scripted(script: impl Fn(usize) -> Act + Send + Sync + 'static) -> Scripted {
    let requests = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let script = Arc::new(script);
    let (count, seen) = (requests.clone(), bodies.clone());
    let handler: Handler = Arc::new(move |req: Request<Incoming>| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        let act = script(n);
        let seen = seen.clone();
        Box::pin(async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            seen.lock().unwrap().push(body);
            match act {
                Act::Ok => json_ok(),
                Act::Status(s) => Response::builder().status(s).body(full("{}")).unwrap(),
                Act::Hang => std::future::pending().await,
                Act::Gate(gate) => {
                    gate.notified().await;
                    json_ok()
                }
                Act::BrokenBody => {
                    // The head and the first chunk go out (the body is pending
                    // for a while) before the body fails.
                    let frames = stream::unfold(0, |step| async move {
                        match step {
                            0 => Some((Ok(Frame::data(Bytes::from_static(b"{\"partial\":"))), 1)),
                            1 => {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                Some((
                                    Err::<Frame<Bytes>, BoxError>("the provider crashed".into()),
                                    2,
                                ))
                            }
                            _ => None,
                        }
                    });
                    Response::new(StreamBody::new(frames).boxed_unsync())
                }
            }
        })
    });
    Scripted {
        provider: start(handler).await,
        requests,
        bodies,
    }
}

fn resilient(url: &str, config: ResilienceConfig) -> Upstream {
    let mut up = upstream(url);
    up.request_timeout = Duration::from_millis(500);
    up.resilience = Resilience::new(ResilienceConfig {
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        ..config
    });
    up
}

fn retries(n: u32) -> ResilienceConfig {
    ResilienceConfig {
        retries: n,
        breaker_failures: 0,
        ..ResilienceConfig::default()
    }
}

fn labels(attempts: &[AttemptOutcome]) -> Vec<&'static str> {
    attempts.iter().map(|a| a.label()).collect()
}

fn request(method: Method, body: connectors::OutboundBody) -> connectors::OutboundRequest<'static> {
    let mut req = get("", None);
    req.method = method;
    req.body = body;
    req
}

fn streaming(data: &'static [u8]) -> connectors::OutboundBody {
    let frames = stream::iter(vec![Ok::<_, BoxError>(Frame::data(Bytes::from_static(
        data,
    )))]);
    StreamBody::new(frames).boxed_unsync().into()
}

// ---------------------------------------------------------------- retries

#[tokio::test]
async fn get_is_retried_after_connect_errors() {
    install_crypto();
    let (addr, accepted) = closer().await;
    let up = resilient(&format!("https://localhost:{}", addr.port()), retries(2));
    let (result, report) = connector().forward_reported(&up, get("", None)).await;
    let err = result.unwrap_err();
    assert!(matches!(err, UpstreamError::Connect(_)), "{err:?}");
    assert_eq!(labels(&report.attempts), ["connect_error"; 3]);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "three attempts reached the server"
    );
}

#[tokio::test]
async fn get_is_retried_after_a_timeout_and_then_succeeds() {
    install_crypto();
    let s = scripted(|n| if n == 0 { Act::Hang } else { Act::Ok }).await;
    let up = resilient(&format!("http://{}", s.provider.addr), retries(2));
    let (result, report) = connector().forward_reported(&up, get("", None)).await;
    assert_eq!(result.unwrap().status(), StatusCode::OK);
    assert_eq!(labels(&report.attempts), ["timeout", "ok"]);
    assert_eq!(s.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn post_is_never_retried() {
    install_crypto();
    let s = scripted(|_| Act::Hang).await;
    let up = resilient(&format!("http://{}", s.provider.addr), retries(3));
    let req = request(Method::POST, buffered_body(r#"{"søknad":1}"#));
    let (result, report) = connector().forward_reported(&up, req).await;
    assert!(matches!(result.unwrap_err(), UpstreamError::Timeout(_)));
    assert_eq!(labels(&report.attempts), ["timeout"]);
    assert_eq!(s.requests.load(Ordering::SeqCst), 1);

    // Nor after a connect error, even with an empty body.
    let (addr, accepted) = closer().await;
    let up = resilient(&format!("https://localhost:{}", addr.port()), retries(3));
    let (result, _) = connector()
        .forward_reported(&up, request(Method::POST, empty_body()))
        .await;
    assert!(matches!(result.unwrap_err(), UpstreamError::Connect(_)));
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_streaming_body_is_sent_once_and_a_buffered_one_replayed() {
    install_crypto();
    let (addr, accepted) = closer().await;
    let up = resilient(&format!("https://localhost:{}", addr.port()), retries(2));
    let (result, report) = connector()
        .forward_reported(&up, request(Method::PUT, streaming(b"streamed")))
        .await;
    result.unwrap_err();
    assert_eq!(report.attempt_count(), 1, "a stream cannot be replayed");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    let s = scripted(|n| if n == 0 { Act::Hang } else { Act::Ok }).await;
    let up = resilient(&format!("http://{}", s.provider.addr), retries(2));
    let (result, report) = connector()
        .forward_reported(&up, request(Method::PUT, buffered_body("the whole body")))
        .await;
    assert_eq!(result.unwrap().status(), StatusCode::OK);
    assert_eq!(labels(&report.attempts), ["timeout", "ok"]);
    let bodies = s.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    assert!(
        bodies.iter().all(|b| &b[..] == b"the whole body"),
        "{bodies:?}"
    );
}

#[tokio::test]
async fn nothing_is_retried_once_the_response_head_arrived() {
    install_crypto();
    // A 503 is the provider's answer: passed on, not retried.
    let s = scripted(|_| Act::Status(503)).await;
    let up = resilient(&format!("http://{}", s.provider.addr), retries(3));
    let (result, report) = connector().forward_reported(&up, get("", None)).await;
    assert_eq!(result.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(labels(&report.attempts), ["http_5xx"]);
    assert_eq!(s.requests.load(Ordering::SeqCst), 1);

    // A body that breaks after its first bytes: the error reaches the caller.
    let s = scripted(|_| Act::BrokenBody).await;
    let up = resilient(&format!("http://{}", s.provider.addr), retries(3));
    let (result, report) = connector().forward_reported(&up, get("", None)).await;
    let response = result.unwrap();
    assert!(response.into_body().collect().await.is_err());
    assert_eq!(labels(&report.attempts), ["ok"]);
    assert_eq!(s.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_closed_after_the_request_was_sent_is_not_retried() {
    install_crypto();
    let (addr, accepted) = closer().await;
    let up = resilient(&format!("http://{addr}"), retries(3));
    let (result, report) = connector().forward_reported(&up, get("", None)).await;
    assert!(matches!(result.unwrap_err(), UpstreamError::Protocol(_)));
    assert_eq!(labels(&report.attempts), ["protocol_error"]);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retries_stop_when_the_budget_is_spent() {
    install_crypto();
    let (addr, accepted) = closer().await;
    let up = resilient(
        &format!("https://localhost:{}", addr.port()),
        ResilienceConfig {
            retry_budget_percent: 10,
            ..retries(6)
        },
    );
    let connector = connector();
    let mut attempts = Vec::new();
    for _ in 0..3 {
        let (_, report) = connector.forward_reported(&up, get("", None)).await;
        attempts.push(report.attempt_count());
    }
    // Three calls in the window allow no 10 % share, but the floor of ten
    // retries per window: six for the first call, four for the second.
    assert_eq!(attempts, [7, 5, 1]);
    assert_eq!(accepted.load(Ordering::SeqCst), 13);
}

// ---------------------------------------------------------------- breaker

#[tokio::test]
async fn breaker_opens_after_consecutive_failures_and_refuses_at_once() {
    install_crypto();
    let (addr, accepted) = closer().await;
    let up = resilient(
        &format!("https://localhost:{}", addr.port()),
        ResilienceConfig {
            breaker_failures: 3,
            breaker_open: Duration::from_secs(60),
            ..ResilienceConfig::default()
        },
    );
    let connector = connector();
    for _ in 0..3 {
        let (result, report) = connector.forward_reported(&up, get("", None)).await;
        assert!(matches!(result.unwrap_err(), UpstreamError::Connect(_)));
        assert_eq!(report.attempt_count(), 1);
    }
    assert_eq!(up.resilience.breaker_state(), BreakerState::Open);
    let (result, report) = connector.forward_reported(&up, get("", None)).await;
    let err = result.unwrap_err();
    assert!(matches!(err, UpstreamError::CircuitOpen { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("the provider is failing"),
        "{err}"
    );
    assert!(report.attempts.is_empty());
    assert_eq!(report.breaker, BreakerState::Open);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "the open breaker sent nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_half_opens_with_one_trial_call_and_closes_on_success() {
    install_crypto();
    let gate = Arc::new(Notify::new());
    let trial_gate = gate.clone();
    // Two failures, then a trial held at the gate, then answers.
    let s = scripted(move |n| match n {
        0 | 1 => Act::Status(502),
        2 => Act::Gate(trial_gate.clone()),
        _ => Act::Ok,
    })
    .await;
    let mut up = resilient(
        &format!("http://{}", s.provider.addr),
        ResilienceConfig {
            breaker_failures: 2,
            breaker_open: Duration::from_millis(300),
            ..ResilienceConfig::default()
        },
    );
    up.request_timeout = Duration::from_secs(30);
    let connector = connector();
    for _ in 0..2 {
        let response = connector.forward(&up, get("", None)).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    }
    assert_eq!(up.resilience.breaker_state(), BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(400)).await;

    let trial = {
        let (connector, up) = (connector.clone(), up.clone());
        tokio::spawn(async move { connector.forward_reported(&up, get("", None)).await })
    };
    while s.requests.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(up.resilience.breaker_state(), BreakerState::HalfOpen);
    // While the trial runs, everyone else is refused without a call.
    let err = connector.forward(&up, get("", None)).await.unwrap_err();
    assert!(matches!(err, UpstreamError::CircuitOpen { .. }), "{err:?}");
    assert_eq!(s.requests.load(Ordering::SeqCst), 3);

    gate.notify_one();
    let (result, report) = trial.await.unwrap();
    assert_eq!(result.unwrap().status(), StatusCode::OK);
    assert_eq!(report.breaker, BreakerState::Closed);
    let response = connector.forward(&up, get("", None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(s.requests.load(Ordering::SeqCst), 4);
}

// ---------------------------------------------------------------- concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_holds_until_the_body_ends() {
    install_crypto();
    let gate = Arc::new(Notify::new());
    let first_gate = gate.clone();
    let s = scripted(move |n| {
        if n == 0 {
            Act::Gate(first_gate.clone())
        } else {
            Act::Ok
        }
    })
    .await;
    let up = resilient(
        &format!("http://{}", s.provider.addr),
        ResilienceConfig {
            max_concurrency: 1,
            ..ResilienceConfig::default()
        },
    );
    let connector = connector();
    let first = {
        let (connector, mut up) = (connector.clone(), up.clone());
        up.request_timeout = Duration::from_secs(30);
        tokio::spawn(async move { connector.forward(&up, get("", None)).await })
    };
    while s.requests.load(Ordering::SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (result, report) = connector.forward_reported(&up, get("", None)).await;
    let err = result.unwrap_err();
    assert!(matches!(err, UpstreamError::Busy { limit: 1 }), "{err:?}");
    assert!(report.attempts.is_empty());

    gate.notify_one();
    let response = first.await.unwrap().unwrap();
    // The head is here but the body is not read: the place is still taken.
    let err = connector.forward(&up, get("", None)).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Busy { .. }), "{err:?}");
    response.into_body().collect().await.unwrap();
    let response = connector.forward(&up, get("", None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(s.requests.load(Ordering::SeqCst), 2);
}

/// A retried attempt sends the same head as the first (the head is cloned
/// only when a retry is possible; a call without retries moves it).
#[tokio::test]
async fn a_retried_attempt_sends_the_same_head() {
    install_crypto();
    let heads = Arc::new(std::sync::Mutex::new(Vec::<(String, Vec<String>)>::new()));
    let seen = heads.clone();
    let handler: Handler = Arc::new(move |req: Request<Incoming>| {
        let mut names: Vec<String> = req
            .headers()
            .iter()
            .filter(|(n, _)| n.as_str().starts_with("bru-"))
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("?")))
            .collect();
        names.sort();
        let first = {
            let mut heads = seen.lock().unwrap();
            heads.push((req.uri().to_string(), names));
            heads.len() == 1
        };
        Box::pin(async move {
            if first {
                std::future::pending::<()>().await;
            }
            json_ok()
        })
    });
    let provider = start(handler).await;
    let up = resilient(&format!("http://{}", provider.addr), retries(1));
    let (result, report) = connector()
        .forward_reported(&up, get("/2024", Some("x=1")))
        .await;
    assert_eq!(result.unwrap().status(), StatusCode::OK);
    assert_eq!(labels(&report.attempts), ["timeout", "ok"]);
    let heads = heads.lock().unwrap();
    assert_eq!(heads.len(), 2);
    assert_eq!(heads[0].0, "/inntekt/2024?x=1");
    assert!(
        heads[0].1.iter().any(|h| h.starts_with("bru-assertion: ")),
        "{:?}",
        heads[0]
    );
    assert_eq!(heads[0], heads[1], "the retry sent another head");
}
