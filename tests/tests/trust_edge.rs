//! Issue 15, the connection and header findings of the outside attack run:
//! stalled bodies, per-address connection caps, idle HTTP/2 connections,
//! subject variants, `Connection` stripping the subject, repeated
//! `Authorization`, oversized header blocks, invalid `traceparent`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bru_tests::bru::parse_responses;
use bru_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection to Bru's public listener from `from` (a loopback address).
async fn connect_from(bru: &Bru, from: [u8; 4], alpn: &[&[u8]]) -> std::io::Result<Tls> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::from((from, 0)))?;
    let tcp = socket.connect(bru.public).await?;
    let mut config = (*bru.tls).clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("server name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// Reads what the server sends until it closes the connection, or `wait`
/// passes (then None: the connection was still held open).
async fn read_until_closed(stream: &mut Tls, wait: Duration) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(bytes),
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

/// A problem from a JSON API (no transfer id there): status, media type, code.
fn expect_api_problem(reply: &Reply, status: u16, code: &str, context: &str) {
    assert_eq!(reply.status, status, "{context}: {}", reply.text());
    assert!(
        reply
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("application/problem+json")),
        "{context}: not problem+json"
    );
    assert_eq!(reply.json()["code"], code, "{context}: {}", reply.text());
}

/// Long enough for a loaded test machine, far shorter than "forever".
const PATIENCE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- stalled bodies

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokenless_request_is_answered_without_waiting_for_its_body() {
    // The body timeout is longer than the test waits: only answering before
    // the body passes.
    let world = TestWorld::builder()
        .server_setting("body_read_timeout_ms", "600000")
        .build()
        .await;
    let bru = world.start().await;
    let mut set = JoinSet::new();
    for path in [
        "/consent/v1/requests",
        "/citizen/v1/consents/x/accept",
        "/audit/v1/records",
    ] {
        for _ in 0..10 {
            let mut stream = connect_from(&bru, [127, 0, 0, 2], &[b"http/1.1"])
                .await
                .expect("connect");
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                 Content-Length: 60000\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.flush().await.unwrap();
            set.spawn(async move { (path, read_until_closed(&mut stream, PATIENCE).await) });
        }
    }
    while let Some(done) = set.join_next().await {
        let (path, bytes) = done.unwrap();
        let bytes =
            bytes.unwrap_or_else(|| panic!("{path}: a tokenless stalled body is held open"));
        let replies = parse_responses(&bytes);
        let reply = replies
            .first()
            .unwrap_or_else(|| panic!("{path}: no answer"));
        expect_api_problem(reply, 401, "missing_token", path);
    }
    send(world.nav_sosial(&bru, "", KARI))
        .await
        .expect_status(200, "a normal call after the stalled bodies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_times_out_with_408_and_its_connection_closes() {
    let world = TestWorld::builder()
        .server_setting("body_read_timeout_ms", "1000")
        .build()
        .await;
    let bru = world.start().await;
    let data_token = world.mp_token(NAV, SCOPE_SAK);
    let consent_token = world.mp_token(K429, "bru:consent");
    let mut set = JoinSet::new();
    for i in 0..50 {
        let mut stream = connect_from(&bru, [127, 0, 0, 2], &[b"http/1.1"])
            .await
            .expect("connect");
        // Half on the data plane (a JSON-body subject: Bru reads the body),
        // half on the consent API, each with a valid token.
        let head = if i % 2 == 0 {
            format!(
                "POST /data/k429/sak-json HTTP/1.1\r\nHost: localhost\r\n\
                 Authorization: Bearer {data_token}\r\nBru-Purpose: {PURPOSE_SOSIAL}\r\n\
                 Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{\"person\""
            )
        } else {
            format!(
                "POST /consent/v1/requests HTTP/1.1\r\nHost: localhost\r\n\
                 Authorization: Bearer {consent_token}\r\n\
                 Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{\"a\""
            )
        };
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.flush().await.unwrap();
        set.spawn(async move { (i, read_until_closed(&mut stream, PATIENCE).await) });
    }
    while let Some(done) = set.join_next().await {
        let (i, bytes) = done.unwrap();
        let bytes = bytes.unwrap_or_else(|| panic!("stalled body {i} is still held open"));
        let replies = parse_responses(&bytes);
        let reply = replies
            .first()
            .unwrap_or_else(|| panic!("stalled body {i}: no answer"));
        if i % 2 == 0 {
            reply.expect_problem(408, "body_timeout", &format!("stalled body {i}"));
        } else {
            expect_api_problem(reply, 408, "body_timeout", &format!("stalled body {i}"));
        }
    }
    world.k429.assert_untouched("stalled bodies");
    send(world.nav_sosial(&bru, "", KARI))
        .await
        .expect_status(200, "a normal call after the stalled bodies");
    // The log says what the caller was told: each stalled data-plane call
    // is a refusal with the code of its answer.
    let (records, _) = world.export().await;
    let stalled: Vec<_> = records
        .iter()
        .filter(|r| r["dataset"].as_str() == Some("k429/sak-json"))
        .collect();
    assert_eq!(stalled.len(), 25, "one record per stalled data-plane call");
    for r in stalled {
        assert_eq!(r["code"], "body_timeout", "{r}");
        assert_eq!(r["decision"], "deny", "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_on_its_way_to_the_provider_is_recorded_as_body_timeout() {
    let world = TestWorld::builder()
        .server_setting("body_read_timeout_ms", "1000")
        .build()
        .await;
    let bru = world.start().await;
    let token = world.mp_token(NAV, SCOPE_SOSIAL);
    let mut stream = connect_from(&bru, [127, 0, 0, 2], &[b"http/1.1"])
        .await
        .expect("connect");
    // A header subject: the decision comes first and the body streams to
    // the provider, which waits for all of it.
    let head = format!(
        "POST /data/k429/sosialtjeneste HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {token}\r\nBru-Purpose: {PURPOSE_SOSIAL}\r\n\
         Nav-Personident: {KARI}\r\n\
         Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{\"a\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let bytes = read_until_closed(&mut stream, PATIENCE)
        .await
        .expect("the stalled body is not held open");
    let replies = parse_responses(&bytes);
    let reply = replies.first().expect("an answer");
    reply.expect_problem(408, "body_timeout", "a body stalled on its way");
    let transfer_id = reply.problem_transfer_id();
    // The outcome record says the caller's body stopped, not the provider.
    let outcome = world.record(&transfer_id, "outcome").await;
    assert_eq!(outcome["code"], "body_timeout", "{outcome}");
}

// ---------------------------------------------------------------- connections

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_no_more_than_its_share_of_connections() {
    let world = TestWorld::builder()
        .server_setting("max_connections_per_address", "4")
        .header_read_timeout_ms(60_000)
        .build()
        .await;
    let bru = world.start().await;
    let mut held = Vec::new();
    for i in 0..4 {
        held.push(
            connect_from(&bru, [127, 0, 0, 2], &[b"http/1.1"])
                .await
                .unwrap_or_else(|e| panic!("connection {i} within the cap: {e}")),
        );
    }
    // The fifth from the same address is closed at accept: no handshake.
    match connect_from(&bru, [127, 0, 0, 2], &[b"http/1.1"]).await {
        Err(_) => {}
        Ok(mut extra) => {
            // A TLS 1.3 client may finish its side first; the server then
            // closes without answering anything.
            extra
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await
                .ok();
            let bytes = read_until_closed(&mut extra, PATIENCE).await;
            assert!(
                bytes.as_deref().is_some_and(<[u8]>::is_empty),
                "the fifth connection from one address was served: {bytes:?}"
            );
        }
    }
    let metrics = send(bru.ops_client.get(bru.ops_url("/metrics")))
        .await
        .text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("bru_connections_refused_total ") && !l.ends_with(" 0")),
        "the refusal is counted: {metrics}"
    );
    // Another address is not affected.
    let mut other = connect_from(&bru, [127, 0, 0, 3], &[b"http/1.1"])
        .await
        .expect("another address connects");
    other
        .write_all(
            b"GET /catalog/v1/datasets HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let bytes = read_until_closed(&mut other, PATIENCE)
        .await
        .expect("answered and closed");
    assert_eq!(parse_responses(&bytes).first().map(|r| r.status), Some(200));
    send(world.nav_sosial(&bru, "", KARI))
        .await
        .expect_status(200, "a normal call while one address is at its cap");
    // A closed connection frees its slot.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(mut s) = connect_from(&bru, [127, 0, 0, 2], &[b"http/1.1"]).await {
            s.write_all(b"GET /catalog/v1/datasets HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .await
                .ok();
            if let Some(bytes) = read_until_closed(&mut s, PATIENCE).await {
                if parse_responses(&bytes).first().map(|r| r.status) == Some(200) {
                    break;
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the freed slot was never given again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed() {
    let world = TestWorld::builder()
        .server_setting("http2_idle_timeout_ms", "1000")
        .build()
        .await;
    let bru = world.start().await;
    let stream = connect_from(&bru, [127, 0, 0, 2], &[b"h2"])
        .await
        .expect("connect");
    let (client, connection) = h2::client::handshake(stream).await.expect("h2 handshake");
    let connection = tokio::spawn(connection);
    // One call, then nothing: the client would keep the connection forever.
    let mut client = client.ready().await.expect("ready");
    let request = http::Request::get(format!(
        "https://localhost:{}/catalog/v1/datasets",
        bru.public.port()
    ))
    .body(())
    .unwrap();
    let (response, _) = client.send_request(request, true).expect("send");
    let response = response.await.expect("response");
    assert_eq!(response.status(), 200);
    drop(response);
    match tokio::time::timeout(PATIENCE, connection).await {
        Ok(_) => {}
        Err(_) => panic!("an idle HTTP/2 connection is still open"),
    }
}

// ---------------------------------------------------------------- subject variants

/// A raw HTTP/1.1 GET of NAV's on `target` with the subject header and `extra` lines.
fn nav_get(world: &TestWorld, target: &str, scope: &str, extra: &str) -> Vec<u8> {
    let token = world.mp_token(NAV, scope);
    format!(
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Bru-Purpose: {PURPOSE_SOSIAL}\r\n{extra}Connection: close\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_checked_subject_header_reaches_the_provider() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    let extra = format!(
        "Nav-Personident: {KARI}\r\nNav_Personident: {OLA}\r\nNav.Personident: {OLA}\r\n\
         NAV_PERSONIDENT: {OLA}\r\n"
    );
    let ex = bru
        .raw(&nav_get(
            &world,
            "/data/k429/sosialtjeneste",
            SCOPE_SOSIAL,
            &extra,
        ))
        .await;
    ex.first().expect_status(200, "subject with variants");
    let got = world
        .k429
        .requests()
        .pop()
        .expect("the provider was called");
    let subject_like: Vec<&(String, String)> = got
        .headers
        .iter()
        .filter(|(n, _)| n.replace(['_', '.'], "-") == "nav-personident")
        .collect();
    assert_eq!(
        subject_like,
        [&("nav-personident".to_owned(), KARI.to_owned())],
        "the provider got other subject headers than the one Bru checked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_subject_queries_are_refused() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    for query in [
        format!("fnr={KARI}&y=1;fnr={OLA}"),
        format!("fnr={KARI};fnr={OLA}"),
        format!("fnr={KARI}&FNR={OLA}"),
        format!("fnr={KARI}&fnr[]={OLA}"),
        format!("fnr={KARI}&fnr={OLA}"),
    ] {
        let r = send(
            bru.get(&format!("/data/k429/sak-query?{query}"))
                .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
                .header("Bru-Purpose", PURPOSE_SOSIAL),
        )
        .await;
        r.expect_problem(400, "malformed_request", &query);
        assert!(
            r.json()["detail"].as_str().is_some_and(|d| d.len() > 20),
            "{query}: the detail says what is wrong: {}",
            r.text()
        );
    }
    world.k429.assert_untouched("ambiguous subject queries");
    // The plain one still works.
    send(
        bru.get(&format!("/data/k429/sak-query?fnr={KARI}&y=1"))
            .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL),
    )
    .await
    .expect_status(200, "a plain subject query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cannot_strip_the_subject_after_bru_checked_it() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    let token = world.mp_token(NAV, SCOPE_SOSIAL);
    for connection in ["Nav-Personident", "close, nav_personident"] {
        let request = format!(
            "GET /data/k429/sosialtjeneste HTTP/1.1\r\nHost: localhost\r\n\
             Authorization: Bearer {token}\r\nBru-Purpose: {PURPOSE_SOSIAL}\r\n\
             Nav-Personident: {KARI}\r\nConnection: {connection}\r\n\r\n"
        );
        let ex = bru.raw(request.as_bytes()).await;
        ex.first()
            .expect_problem(400, "malformed_request", connection);
    }
    world
        .k429
        .assert_untouched("Connection naming the subject header");
}

// ---------------------------------------------------------------- repeated headers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_headers_bru_decides_on_are_refused() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    let good = world.mp_token(NAV, SCOPE_SOSIAL);
    let other = world.mp_token(K429, SCOPE_SOSIAL);
    let cases = [
        (
            "/data/k429/sosialtjeneste",
            format!("Authorization: Bearer {good}\r\nAuthorization: Bearer {other}\r\nBru-Purpose: {PURPOSE_SOSIAL}\r\nNav-Personident: {KARI}\r\n"),
        ),
        (
            "/data/k429/sosialtjeneste",
            format!("Authorization: Bearer {good}\r\nBru-Purpose: {PURPOSE_SOSIAL}\r\nBru-Purpose: tilsyn\r\nNav-Personident: {KARI}\r\n"),
        ),
        (
            "/data/k429/sosialtjeneste",
            format!("Authorization: Bearer {good}\r\nBru-Purpose: {PURPOSE_SOSIAL}\r\nNav-Personident: {KARI}\r\nNav-Personident: {OLA}\r\n"),
        ),
        (
            "/consent/v1/requests",
            format!("Authorization: Bearer {good}\r\nAuthorization: Bearer {other}\r\n"),
        ),
    ];
    for (target, headers) in cases {
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n"
        );
        let ex = bru.raw(request.as_bytes()).await;
        let context = format!("{target}: {headers}");
        if target.starts_with("/data/") {
            ex.first()
                .expect_problem(400, "malformed_request", &context);
        } else {
            expect_api_problem(ex.first(), 400, "malformed_request", &context);
        }
    }
    world.k429.assert_untouched("repeated headers");
}

// ---------------------------------------------------------------- header limits

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_or_too_large_headers_get_a_problem_over_http1_and_http2() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    let many: String = (0..101).map(|i| format!("X-Fyll-{i}: x\r\n")).collect();
    let large = format!("X-Fyll: {}\r\n", "x".repeat(33 * 1024));
    for (what, extra) in [("101 headers", &many), ("a 33 KiB header block", &large)] {
        let ex = bru
            .raw(&nav_get(
                &world,
                "/data/k429/sosialtjeneste",
                SCOPE_SOSIAL,
                &format!("Nav-Personident: {KARI}\r\n{extra}"),
            ))
            .await;
        ex.first()
            .expect_problem(431, "headers_too_large", &format!("HTTP/1.1, {what}"));
    }

    let stream = connect_from(&bru, [127, 0, 0, 1], &[b"h2"])
        .await
        .expect("connect");
    let (client, connection) = h2::client::handshake(stream).await.expect("h2 handshake");
    let connection = tokio::spawn(connection);
    let token = world.mp_token(NAV, SCOPE_SOSIAL);
    for what in ["101 headers", "a 33 KiB header block"] {
        let mut request = http::Request::get(format!(
            "https://localhost:{}/data/k429/sosialtjeneste",
            bru.public.port()
        ))
        .header("authorization", format!("Bearer {token}"))
        .header("bru-purpose", PURPOSE_SOSIAL)
        .header("nav-personident", KARI);
        if what == "101 headers" {
            for i in 0..101 {
                request = request.header(format!("x-fyll-{i}"), "x");
            }
        } else {
            request = request.header("x-fyll", "x".repeat(33 * 1024));
        }
        let mut client = client.clone().ready().await.expect("ready");
        let (response, _) = client
            .send_request(request.body(()).unwrap(), true)
            .expect("send");
        let response = response.await.expect("response");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.expect("body");
            let _ = body.flow_control().release_capacity(chunk.len());
            bytes.extend_from_slice(&chunk);
        }
        assert_eq!(status, 431, "HTTP/2, {what}");
        assert_eq!(content_type, "application/problem+json", "HTTP/2, {what}");
        let problem: serde_json::Value = serde_json::from_slice(&bytes).expect("problem JSON");
        assert_eq!(problem["code"], "headers_too_large", "HTTP/2, {what}");
    }
    connection.abort();
    world.k429.assert_untouched("oversized header blocks");
}

// ---------------------------------------------------------------- trace context

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_traceparent_is_not_forwarded() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (traceparent, forwarded) in [
        ("00-not-a-trace-01", false),
        (
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            false,
        ),
        (
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            false,
        ),
        (
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
            false,
        ),
        (valid, true),
    ] {
        let before = world.k429.count();
        send(
            world
                .nav_sosial(&bru, "", KARI)
                .header("traceparent", traceparent)
                .header("tracestate", "vendor=1"),
        )
        .await
        .expect_status(200, traceparent);
        world.k429.wait_for(before + 1, PATIENCE).await;
        let got = world
            .k429
            .requests()
            .pop()
            .expect("the provider was called");
        if forwarded {
            assert_eq!(got.header("traceparent"), Some(traceparent));
            assert_eq!(got.header("tracestate"), Some("vendor=1"));
        } else {
            assert_eq!(
                got.header("traceparent"),
                None,
                "{traceparent} was forwarded"
            );
            assert_eq!(
                got.header("tracestate"),
                None,
                "tracestate without a valid traceparent"
            );
        }
    }
}
