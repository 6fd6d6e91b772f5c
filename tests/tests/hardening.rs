//! Slow and hostile clients: the server keeps serving normal clients while
//! an attack runs, and the attacking connections are bounded in time.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bru_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

async fn tls_stream(
    bru: &Bru,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(bru.public)
        .await
        .expect("connect");
    tls_over(bru, alpn, tcp).await
}

/// A connection from another loopback address than the normal client's: an
/// attacker's failed authentications count against its own address, as they
/// would from another host, and the normal client's calls are judged alone.
async fn attacker_tls_stream(
    bru: &Bru,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 2], 0)))
        .expect("bind 127.0.0.2");
    let tcp = socket.connect(bru.public).await.expect("connect");
    tls_over(bru, alpn, tcp).await
}

async fn tls_over(
    bru: &Bru,
    alpn: &[&[u8]],
    tcp: tokio::net::TcpStream,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut config = (*bru.tls).clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("server name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// A normal statutory call must succeed while an attack is under way.
async fn normal_call_succeeds(world: &TestWorld, bru: &Bru, during: &str) {
    send(world.nav_sosial(bru, "", KARI))
        .await
        .expect_status(200, &format!("a normal call during {during}"));
}

/// Reads until the server closes the connection; true if it did within `wait`.
async fn closed_by_server<S: AsyncReadExt + Unpin>(stream: &mut S, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_and_others_are_served() {
    let world = TestWorld::builder()
        .header_read_timeout_ms(2000)
        .build()
        .await;
    let bru = world.start().await;
    let mut attackers = JoinSet::new();
    for _ in 0..50 {
        let mut stream = tls_stream(&bru, &[b"http/1.1"]).await;
        attackers.spawn(async move {
            // Headers dribbled a byte at a time, never finished within the timeout.
            let header = b"GET /data/k429/sosialtjeneste HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            for byte in header.iter() {
                if stream.write_all(&[*byte]).await.is_err() || stream.flush().await.is_err() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            closed_by_server(&mut stream, Duration::from_secs(30)).await
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    normal_call_succeeds(&world, &bru, "a slowloris attack").await;
    let mut closed = 0;
    while let Some(result) = attackers.join_next().await {
        if result.unwrap() {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 50,
        "every dribbling connection is closed by the server"
    );
    normal_call_succeeds(&world, &bru, "after the slowloris attack").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_others_are_served() {
    let world = TestWorld::builder()
        .header_read_timeout_ms(2000)
        // 300 from one address: above the default per-address cap (trust_edge.rs tests that).
        .server_setting("max_connections_per_address", "1000")
        .build()
        .await;
    let bru = world.start().await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(tls_stream(&bru, &[b"http/1.1"]).await);
    }
    normal_call_succeeds(&world, &bru, "300 idle connections").await;
    let mut waiting = JoinSet::new();
    for mut stream in idle {
        waiting.spawn(async move { closed_by_server(&mut stream, Duration::from_secs(30)).await });
    }
    let mut closed = 0;
    while let Some(result) = waiting.join_next().await {
        if result.unwrap() {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 300,
        "idle connections that never send a request are closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_body_is_bounded_and_others_are_served() {
    let world = TestWorld::builder().request_timeout_ms(3000).build().await;
    let bru = world.start().await;
    let token = world.mp_token(NAV, "k429:sosialtjeneste.read");
    let mut stream = tls_stream(&bru, &[b"http/1.1"]).await;
    let head = format!(
        "POST /data/k429/sosialtjeneste HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Bru-Purpose: sosialhjelp-saksbehandling\r\nNav-Personident: {KARI}\r\nContent-Length: 100000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let slow = tokio::spawn(async move {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        for _ in 0..120 {
            if stream.write_all(b"x").await.is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_millis(250), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                Err(_) => {}
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    normal_call_succeeds(&world, &bru, "a slow request body").await;
    let answer = slow.await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 504") || answer.starts_with("HTTP/1.1 502"),
        "a body that never finishes ends with the provider timeout, got {answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_reset_and_stream_floods_do_not_starve_others() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    let token = world.mp_token(NAV, "k429:sosialtjeneste.read");
    let stream = attacker_tls_stream(&bru, &[b"h2"]).await;
    let (client, connection) = h2::client::handshake(stream).await.expect("h2 handshake");
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");

    let url = format!(
        "https://localhost:{}/data/k429/sosialtjeneste",
        bru.public.port()
    );
    let attack = tokio::spawn(async move {
        let mut sent = 0u32;
        // Bounded in count and time, whatever the machine's speed.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        for _ in 0..5_000 {
            if tokio::time::Instant::now() > deadline {
                break;
            }
            let request = http::Request::get(url.as_str())
                .header("authorization", format!("Bearer {token}"))
                .header("bru-purpose", "sosialhjelp-saksbehandling")
                .header("nav-personident", KARI)
                .body(())
                .unwrap();
            client = match client.ready().await {
                Ok(c) => c,
                Err(_) => break,
            };
            match client.send_request(request, true) {
                Ok((_response, mut send_stream)) => {
                    send_stream.send_reset(h2::Reason::CANCEL);
                    sent += 1;
                }
                Err(_) => break,
            }
        }
        sent
    });
    normal_call_succeeds(&world, &bru, "an HTTP/2 rapid reset attack").await;
    let sent = attack.await.unwrap();
    assert!(sent > 0, "the attack sent no request");
    normal_call_succeeds(&world, &bru, "after the rapid reset attack").await;
    connection.abort();

    // A flood of concurrent streams on one connection: the client has to wait
    // for the server's stream limit, and other clients are still served.
    // Its streams carry no token: each fails authentication.
    let stream = attacker_tls_stream(&bru, &[b"h2"]).await;
    let (client, mut connection) = h2::client::handshake(stream).await.expect("h2 handshake");
    // Drive the connection until the server's SETTINGS have arrived.
    let _ = tokio::time::timeout(Duration::from_millis(500), &mut connection).await;
    let limit = connection.max_concurrent_send_streams();
    assert!(
        (1..=256).contains(&limit),
        "the server limits concurrent streams per connection, it allows {limit}"
    );
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let mut open = Vec::new();
    for _ in 0..1000 {
        let request = http::Request::get(format!(
            "https://localhost:{}/data/k429/sosialtjeneste",
            bru.public.port()
        ))
        .body(())
        .unwrap();
        // At the server's stream limit the client has to wait: stop there.
        client = match tokio::time::timeout(Duration::from_secs(2), client.ready()).await {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => panic!("the connection failed during the flood: {e}"),
            Err(_) => break,
        };
        // Keep every stream open (no end of stream) so they pile up.
        open.push(client.send_request(request, false).expect("send_request"));
    }
    assert!(!open.is_empty(), "the flood opened no stream");
    normal_call_succeeds(&world, &bru, "a concurrent stream flood").await;
    drop(open);
    connection.abort();
}
