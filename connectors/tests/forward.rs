//! `Connector::forward` against a real provider on 127.0.0.1.

#![allow(clippy::unwrap_used)]

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use connectors::{
    collect_limited, minimise, BodyEnd, BodyError, BoxError, Credentials, OutboundRequest,
    UpstreamError,
};
use futures_util::stream;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Version};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Limited, StreamBody};
use support::*;
use tokio::sync::{mpsc, oneshot, Notify};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn inbound_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("authorization", "Bearer caller-maskinporten-token"),
        ("bru-consent", "consent-123"),
        ("bru-assertion", "forged.assertion.jwt"),
        ("bru-consumer", "0192:971000007"),
        ("bru-legal-basis", "statutory"),
        ("proxy-authorization", "Basic Zm9vOmJhcg=="),
        ("cookie", "session=caller"),
        ("x-http-method-override", "DELETE"),
        ("connection", "x-hop"),
        ("x-hop", "1"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("upgrade", "websocket"),
        ("host", "bru.example"),
        ("forwarded", "for=6.6.6.6"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-host", "evil.example"),
        ("traceparent", TRACEPARENT),
        ("tracestate", "bru=1"),
        ("nav-personident", "12884513829"),
        ("content-type", "application/json"),
        ("accept", "application/json"),
    ] {
        h.append(k, HeaderValue::from_static(v));
    }
    h
}

#[tokio::test]
async fn provider_gets_mapped_path_clean_headers_and_bru_headers() {
    install_crypto();
    let (handler, mut seen) = recording(json_ok);
    let provider = start(handler).await;
    let connector = connector();
    let mut up = upstream(&format!("http://{}/api/", provider.addr));
    up.credentials = Credentials::bearer("provider-secret").unwrap();

    let response = connector
        .forward(
            &up,
            OutboundRequest {
                method: Method::POST,
                dataset: "inntekt",
                rest: "2025/maaned",
                query: Some("fom=2025-01&tom=2025-12"),
                headers: inbound_headers(),
                body: full_body(r#"{"q":1}"#),
                bru: BRU,
            },
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let seen = seen.recv().await.unwrap();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(
        seen.uri.path_and_query().unwrap().as_str(),
        "/api/inntekt/2025/maaned?fom=2025-01&tom=2025-12"
    );
    assert_eq!(&seen.body[..], br#"{"q":1}"#);
    let h = &seen.headers;
    let one = |name: &str| {
        let all: Vec<_> = h.get_all(name).iter().collect();
        assert_eq!(all.len(), 1, "{name}: {all:?}");
        all[0].to_str().unwrap().to_owned()
    };
    assert_eq!(one("authorization"), "Bearer provider-secret");
    assert_eq!(one("bru-transfer-id"), BRU.transfer_id);
    assert_eq!(one("bru-consumer"), "0192:921429002");
    assert_eq!(one("bru-purpose"), "omsorgsbolig-soknad");
    assert_eq!(one("bru-legal-basis"), "consent");
    assert_eq!(one("bru-assertion"), BRU.assertion);
    assert_eq!(one("host"), provider.addr.to_string());
    assert_eq!(one("traceparent"), TRACEPARENT);
    assert_eq!(one("tracestate"), "bru=1");
    assert_eq!(one("nav-personident"), "12884513829");
    assert_eq!(one("content-type"), "application/json");
    for gone in [
        "bru-consent",
        "proxy-authorization",
        "cookie",
        "x-http-method-override",
        "x-hop",
        "keep-alive",
        "te",
        "upgrade",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
    ] {
        assert!(h.get(gone).is_none(), "{gone} reached the provider");
    }
}

#[tokio::test]
async fn header_credentials_and_no_purpose() {
    install_crypto();
    let (handler, mut seen) = recording(json_ok);
    let provider = start(handler).await;
    let mut up = upstream(&format!("http://{}", provider.addr));
    up.credentials = Credentials::header("X-Api-Key", "k3y").unwrap();
    let mut req = get("", None);
    req.headers = inbound_headers();
    req.bru.purpose = None;
    req.bru.legal_basis = "statutory";
    connector().forward(&up, req).await.unwrap();

    let seen = seen.recv().await.unwrap();
    assert_eq!(seen.uri.path_and_query().unwrap().as_str(), "/inntekt");
    assert_eq!(seen.headers.get("x-api-key").unwrap(), "k3y");
    assert!(seen.headers.get("authorization").is_none());
    assert!(seen.headers.get("bru-purpose").is_none());
    assert_eq!(seen.headers.get("bru-legal-basis").unwrap(), "statutory");
}

#[tokio::test]
async fn response_headers_are_cleaned_and_status_passes() {
    install_crypto();
    let (handler, _seen) = recording(|| {
        Response::builder()
            .status(StatusCode::CREATED)
            .header("content-type", "application/json")
            .header("set-cookie", "provider=1")
            .header("connection", "x-provider-hop")
            .header("x-provider-hop", "1")
            .header("bru-transfer-id", "forged")
            .header("alt-svc", "h3=\":443\"")
            .header("etag", "\"v1\"")
            .body(full("{}"))
            .unwrap()
    });
    let provider = start(handler).await;
    let up = upstream(&format!("http://{}", provider.addr));
    let response = connector().forward(&up, get("x", None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.version(), Version::HTTP_11);
    let h = response.headers();
    assert_eq!(h.get("content-type").unwrap(), "application/json");
    assert_eq!(h.get("etag").unwrap(), "\"v1\"");
    assert_eq!(h.get("content-length").unwrap(), "2");
    for gone in [
        "set-cookie",
        "connection",
        "x-provider-hop",
        "bru-transfer-id",
        "alt-svc",
    ] {
        assert!(h.get(gone).is_none(), "{gone} reached the caller");
    }
}

#[tokio::test]
async fn slow_provider_is_a_timeout() {
    install_crypto();
    let handler: Handler = Arc::new(|_req| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            json_ok()
        })
    });
    let provider = start(handler).await;
    let mut up = upstream(&format!("http://{}", provider.addr));
    up.request_timeout = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let err = connector().forward(&up, get("", None)).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Timeout(_)), "{err:?}");
    assert!(err.is_timeout());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn request_timeout_does_not_cut_a_slow_body() {
    install_crypto();
    // The head comes at once; the body trickles in after the request timeout.
    let handler: Handler = Arc::new(|_req| {
        Box::pin(async {
            let frames = stream::unfold(0u8, |n| async move {
                if n == 3 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
                Some((
                    Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"ab"))),
                    n + 1,
                ))
            });
            Response::new(StreamBody::new(frames).boxed_unsync())
        })
    });
    let provider = start(handler).await;
    let mut up = upstream(&format!("http://{}", provider.addr));
    up.request_timeout = Duration::from_millis(200);
    let response = connector().forward(&up, get("", None)).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ababab");
}

#[tokio::test]
async fn closed_port_is_a_connect_error() {
    install_crypto();
    // Bind and drop to find a port nobody listens on.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut up = upstream(&format!("http://{addr}"));
    up.credentials = Credentials::bearer("provider-secret").unwrap();
    let mut req = get("", None);
    req.headers = inbound_headers();
    let err = connector().forward(&up, req).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Connect(_)), "{err:?}");
    assert!(!err.is_timeout());
    let shown = format!("{err} {err:?}");
    for secret in [
        "provider-secret",
        "caller-maskinporten-token",
        BRU.assertion,
    ] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[tokio::test]
async fn declared_length_over_the_limit_is_refused_before_streaming() {
    install_crypto();
    let (handler, _seen) = recording(|| Response::new(full(vec![b'x'; 2000])));
    let provider = start(handler).await;
    let mut up = upstream(&format!("http://{}", provider.addr));
    up.max_response_bytes = 1000;
    let err = connector().forward(&up, get("", None)).await.unwrap_err();
    assert!(
        matches!(
            err,
            UpstreamError::TooLarge {
                declared: 2000,
                limit: 1000
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_timeout());
}

/// A provider body of `n` chunks of `size` bytes, without a length.
fn chunked(n: usize, size: usize) -> ProviderBody {
    let chunk = Bytes::from(vec![b'x'; size]);
    let frames = stream::iter((0..n).map(move |_| Ok::<_, BoxError>(Frame::data(chunk.clone()))));
    StreamBody::new(frames).boxed_unsync()
}

#[tokio::test]
async fn growing_over_the_limit_ends_the_body_with_an_error() {
    install_crypto();
    let handler: Handler = Arc::new(|_req| Box::pin(async { Response::new(chunked(10, 1000)) }));
    let provider = start(handler).await;
    let mut up = upstream(&format!("http://{}", provider.addr));
    up.max_response_bytes = 2500;
    let response = connector().forward(&up, get("", None)).await.unwrap();
    let mut body = response.into_body();
    let outcome = body.outcome();
    let mut delivered = 0u64;
    let err = loop {
        match body.frame().await {
            Some(Ok(frame)) => delivered += frame.into_data().unwrap().len() as u64,
            Some(Err(e)) => break e,
            None => panic!("the body ended without an error after {delivered} bytes"),
        }
    };
    assert!(
        matches!(err, BodyError::TooLarge { limit: 2500 }),
        "{err:?}"
    );
    assert!(delivered <= 2500);
    // After the error the body is over.
    assert!(body.frame().await.is_none());
    let outcome = outcome.await.unwrap();
    assert_eq!(outcome.end, BodyEnd::TooLarge);
    assert_eq!(outcome.bytes, delivered);
}

#[tokio::test]
async fn fifty_megabytes_stream_through_chunk_by_chunk() {
    install_crypto();
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 800; // 50 MiB
                               // The provider sends one chunk, then waits until the test has read it:
                               // the body can only complete if it is streamed, not buffered.
    let first_read = Arc::new(Notify::new());
    let gate = first_read.clone();
    let handler: Handler = Arc::new(move |_req| {
        let gate = gate.clone();
        Box::pin(async move {
            let chunk = Bytes::from(vec![b'x'; CHUNK]);
            let frames = stream::unfold(0usize, move |n| {
                let gate = gate.clone();
                let chunk = chunk.clone();
                async move {
                    if n == CHUNKS {
                        return None;
                    }
                    if n == 1 {
                        gate.notified().await;
                    }
                    Some((Ok::<_, BoxError>(Frame::data(chunk)), n + 1))
                }
            });
            Response::new(StreamBody::new(frames).boxed_unsync())
        })
    });
    let provider = start(handler).await;
    let mut up = upstream(&format!("http://{}", provider.addr));
    up.max_response_bytes = 64 * 1024 * 1024;
    let response = connector().forward(&up, get("", None)).await.unwrap();
    let mut body = response.into_body();
    let outcome = body.outcome();

    let mut total = 0u64;
    let mut frames = 0usize;
    let mut largest = 0usize;
    let read = async {
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            total += data.len() as u64;
            largest = largest.max(data.len());
            frames += 1;
            if frames == 1 {
                first_read.notify_one();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the body stalled: was it buffered?");
    assert_eq!(total, (CHUNK * CHUNKS) as u64);
    assert!(frames > 1);
    assert!(largest <= 1024 * 1024, "a frame of {largest} bytes");
    drop(body);
    let outcome = outcome.await.unwrap();
    assert!(outcome.is_complete());
    assert_eq!(outcome.bytes, total);
}

#[tokio::test]
async fn request_body_is_streamed_to_the_provider() {
    install_crypto();
    // The provider answers after the first chunk; the second is only sent
    // once the provider has said it saw the first.
    let (saw_first_tx, saw_first_rx) = oneshot::channel::<()>();
    let saw_first_tx = Arc::new(std::sync::Mutex::new(Some(saw_first_tx)));
    let handler: Handler = Arc::new(move |req| {
        let saw_first_tx = saw_first_tx.clone();
        Box::pin(async move {
            let mut body = req.into_body();
            let mut total = 0usize;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.unwrap().into_data() {
                    if total == 0 {
                        if let Some(tx) = saw_first_tx.lock().unwrap().take() {
                            let _ = tx.send(());
                        }
                    }
                    total += data.len();
                }
            }
            Response::new(full(total.to_string()))
        })
    });
    let provider = start(handler).await;
    let up = upstream(&format!("http://{}", provider.addr));

    let (chunks_tx, chunks_rx) = mpsc::channel::<Bytes>(1);
    let frames = stream::unfold(chunks_rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, BoxError>(Frame::data(b)), rx))
    });
    let mut req = get("", None);
    req.method = Method::PUT;
    req.body = StreamBody::new(frames).boxed_unsync().into();
    let feed = async move {
        chunks_tx.send(Bytes::from(vec![1u8; 1000])).await.unwrap();
        saw_first_rx.await.unwrap();
        // 20 MiB more, the provider counting as it goes.
        for _ in 0..320 {
            chunks_tx
                .send(Bytes::from(vec![2u8; 64 * 1024]))
                .await
                .unwrap();
        }
    };
    let connector = connector();
    let (response, ()) = tokio::time::timeout(
        Duration::from_secs(30),
        futures_util::future::join(connector.forward(&up, req), feed),
    )
    .await
    .expect("the request body was not streamed");
    let body = response
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], (1000 + 320 * 64 * 1024).to_string().as_bytes());
}

#[tokio::test]
async fn dropping_the_body_reports_a_cancelled_outcome() {
    install_crypto();
    let handler: Handler =
        Arc::new(|_req| Box::pin(async { Response::new(chunked(1000, 16 * 1024)) }));
    let provider = start(handler).await;
    let up = upstream(&format!("http://{}", provider.addr));
    let response = connector().forward(&up, get("", None)).await.unwrap();
    let mut body = response.into_body();
    let outcome = body.outcome();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(body.bytes_so_far(), first.len() as u64);
    drop(body);
    let outcome = outcome.await.unwrap();
    assert_eq!(outcome.end, BodyEnd::Cancelled);
    assert_eq!(outcome.bytes, first.len() as u64);
}

#[tokio::test]
async fn an_empty_body_is_complete_even_if_never_polled() {
    install_crypto();
    let (handler, _seen) = recording(|| {
        Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(full(Bytes::new()))
            .unwrap()
    });
    let provider = start(handler).await;
    let up = upstream(&format!("http://{}", provider.addr));
    let response = connector().forward(&up, get("", None)).await.unwrap();
    let mut body = response.into_body();
    assert!(body.is_end_stream());
    let outcome = body.outcome();
    drop(body);
    let outcome = outcome.await.unwrap();
    assert!(outcome.is_complete());
    assert_eq!(outcome.bytes, 0);
}

#[tokio::test]
async fn connections_are_pooled() {
    install_crypto();
    let (handler, _seen) = recording(json_ok);
    let provider = start(handler).await;
    let up = upstream(&format!("http://{}", provider.addr));
    let connector = connector();
    for _ in 0..3 {
        let response = connector.forward(&up, get("", None)).await.unwrap();
        // Reading to the end hands the connection back to the pool.
        response.into_body().collect().await.unwrap();
    }
    assert_eq!(provider.connections(), 1);
}

#[tokio::test]
async fn upstreams_with_different_connect_timeouts_work_side_by_side() {
    install_crypto();
    let (handler, _seen) = recording(json_ok);
    let provider = start(handler).await;
    let connector = connector();
    let mut a = upstream(&format!("http://{}", provider.addr));
    let mut b = a.clone();
    a.connect_timeout = Duration::from_millis(500);
    b.connect_timeout = Duration::from_millis(700);
    for up in [&a, &b, &a, &b] {
        let response = connector.forward(up, get("", None)).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    // One pool per connect timeout.
    assert_eq!(provider.connections(), 2);
}

#[tokio::test]
async fn a_failing_request_body_is_the_callers_fault() {
    install_crypto();
    let (handler, _seen) = recording(json_ok);
    let provider = start(handler).await;
    let up = upstream(&format!("http://{}", provider.addr));
    let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
        Ok(Frame::data(Bytes::from_static(b"partial"))),
        Err("the caller went away".into()),
    ];
    let mut req = get("", None);
    req.method = Method::POST;
    req.body = StreamBody::new(stream::iter(frames)).boxed_unsync().into();
    let err = connector().forward(&up, req).await.unwrap_err();
    assert!(matches!(err, UpstreamError::RequestBody(_)), "{err:?}");
    assert!(err.is_caller_fault());
}

#[tokio::test]
async fn a_limited_request_body_over_its_limit_is_request_too_large() {
    install_crypto();
    let (handler, _seen) = recording(json_ok);
    let provider = start(handler).await;
    let up = upstream(&format!("http://{}", provider.addr));
    // Streamed, so the limit is only noticed while sending.
    let frames = stream::iter(
        (0..10).map(|_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![0u8; 1000])))),
    );
    let mut req = get("", None);
    req.method = Method::POST;
    req.body = Limited::new(StreamBody::new(frames), 5000)
        .boxed_unsync()
        .into();
    let err = connector().forward(&up, req).await.unwrap_err();
    assert!(matches!(err, UpstreamError::RequestTooLarge), "{err:?}");
}

#[tokio::test]
async fn invalid_target_is_refused_without_a_call() {
    install_crypto();
    let (handler, _seen) = recording(json_ok);
    let provider = start(handler).await;
    let up = upstream(&format!("http://{}", provider.addr));
    let err = connector()
        .forward(&up, get("a/../../admin", None))
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::InvalidRequest(_)), "{err:?}");
    assert_eq!(provider.connections(), 0);
}

#[tokio::test]
async fn masked_response_is_collected_and_minimised() {
    install_crypto();
    let (handler, _seen) = recording(|| {
        Response::new(full(
            r#"{"person":"12884513829","inntekt":[{"aar":2025,"sum":512000,"arbeidsgivere":[{"orgnr":"921429002"}],"ytelser":[]}]}"#,
        ))
    });
    let provider = start(handler).await;
    let up = upstream(&format!("http://{}", provider.addr));
    let response = connector().forward(&up, get("", None)).await.unwrap();
    let mut body = response.into_body();
    let outcome = body.outcome();
    let bytes = collect_limited(body, 1024).await.unwrap();
    // Paths from the root: the years are under `inntekt`.
    let mask = policy::FieldMask::JsonFields(vec!["inntekt[].aar".into(), "inntekt[].sum".into()]);
    let out = minimise(&mask, &bytes).unwrap();
    assert_eq!(&out[..], br#"{"inntekt":[{"aar":2025,"sum":512000}]}"#);
    let outcome = outcome.await.unwrap();
    assert!(outcome.is_complete());
    assert_eq!(outcome.bytes, bytes.len() as u64);
}

#[test]
fn bodies_and_the_forward_future_are_send() {
    fn assert_body<B: Body<Data = Bytes> + Send + 'static>() {}
    assert_body::<connectors::ResponseBody>();
    fn assert_send<T: Send>(_: &T) {}
    let connector = connector();
    let up = upstream("http://127.0.0.1:9");
    let pending = connector.forward(&up, get("", None));
    assert_send(&pending);
}

#[tokio::test]
async fn unanswered_connect_is_a_connect_timeout() {
    install_crypto();
    // A listener that never accepts, its queue filled: Linux then drops
    // further SYNs, so the next connect hangs like a filtered port.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let attempt = tokio::net::TcpStream::connect(addr);
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(200), attempt).await {
            fillers.push(s);
        }
    }
    let mut up = upstream(&format!("http://{addr}"));
    up.connect_timeout = Duration::from_millis(300);
    up.request_timeout = Duration::from_secs(5);
    let started = std::time::Instant::now();
    let err = connector().forward(&up, get("", None)).await.unwrap_err();
    assert!(matches!(err, UpstreamError::ConnectTimeout(_)), "{err:?}");
    assert!(err.is_timeout());
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(listener);
}
