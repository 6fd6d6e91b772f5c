//! The public read path (SPEC section 11): C2SP tlog-tiles hash tiles and
//! `/checkpoint` without authentication, read by an independent client
//! written from the C2SP specs in Python (tests/read_tiles.py; Ed25519 from
//! the `cryptography` package), over more than 256 records so a full tile and
//! a level-1 tile are served.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bru_tests::transparency::*;
use bru_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_tiles_reader_verifies_the_log_without_credentials() {
    let world = audit_world(TestWorld::builder(), None).await;
    let bru = world.start().await;
    // No checkpoint yet: nothing to serve.
    assert_eq!(send(bru.get("/tile/0/000.p/1")).await.status, 404);
    // Two records a call (decision, outcome): 140 calls pass one full tile.
    for i in 0..140 {
        send(world.nav_sosial(&bru, "", PERSONS[i % PERSONS.len()]))
            .await
            .expect_status(200, "a statutory call");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let reply = send(bru.get("/checkpoint")).await;
        if reply.status == 200 {
            let size: u64 = reply.text().lines().nth(1).unwrap().parse().unwrap();
            if size >= 280 {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint of 280 records"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let vkey = send(bru.get("/audit/v1/checkpoint/key"))
        .await
        .text()
        .trim()
        .to_owned();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("read_tiles.py");
    let base = bru.url("");
    let base = base.trim_end_matches('/').to_owned();
    let ca = world.dir.path().join("tls/ca.pem");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(&script)
            .arg(&base)
            .arg(&ca)
            .arg(&vkey)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("OK size="), "{text}");
}
