//! `bru serve` picks up a renewed TLS certificate and key without a restart:
//! new connections get the new certificate, an open connection keeps working.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bru_tests::bru::https_client;
use bru_tests::pki::Pki;
use bru_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_on_new_connections_without_dropping_old_ones() {
    // Idle connections stay open well past the reload.
    let world = TestWorld::builder()
        .header_read_timeout_ms(120_000)
        .build()
        .await;
    let bru = world.start().await;
    // `bru.client` trusts only the old CA and keeps its one connection pooled.
    let before = send(bru.get("/no-such-path")).await;
    assert_eq!(before.status, 404, "{}", before.text());

    let renewed = Pki::generate();
    let tls = world.dir.path().join("tls");
    // Each file replaced atomically, as cert-manager or certbot would.
    for (name, pem) in [
        ("key.pem", &renewed.key_pem),
        ("cert.pem", &renewed.cert_pem),
    ] {
        let tmp = tls.join(format!("{name}.new"));
        std::fs::write(&tmp, pem).unwrap();
        std::fs::rename(&tmp, tls.join(name)).unwrap();
    }

    // New connections: only the renewed CA's client gets through, once reloaded.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fresh = https_client(&renewed.ca_pem)
            .get(bru.url("/no-such-path"))
            .send()
            .await;
        if let Ok(resp) = fresh {
            assert_eq!(resp.status(), 404);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served:\n{}",
            bru.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let old_ca_fresh = https_client(&world.pki.ca_pem)
        .get(bru.url("/no-such-path"))
        .send()
        .await;
    assert!(
        old_ca_fresh.is_err(),
        "a new connection still got the old certificate"
    );

    // The connection opened before the renewal still answers: a new one
    // would fail, since this client trusts only the old CA.
    let after = send(bru.get("/no-such-path")).await;
    assert_eq!(after.status, 404, "{}", after.text());
    assert!(bru.logs().contains("reloaded the TLS certificate"));
}
