//! `bru demo` runs two witnesses of its own (SPEC section 11): their keys,
//! state and verifier keys under DIR/witnesses/, `[[witness]]` blocks in
//! DIR/bru.toml, and the demo's checkpoints come cosigned by both.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use bru_tests::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_two_witnesses_and_its_log_verifies_with_both() {
    let (dir, mut bru) = bru_tests::demo::start("bru-demo-").await;

    let vkeys: Vec<String> = (1..=2)
        .map(|n| {
            std::fs::read_to_string(dir.path().join(format!("witnesses/witness-{n}.vkey")))
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect();
    let config = std::fs::read_to_string(dir.path().join("bru.toml")).unwrap();
    for vkey in &vkeys {
        assert!(
            config.contains(&format!("key = \"{vkey}\"")),
            "bru.toml names the witness {vkey}:\n{config}"
        );
    }

    let token = send(
        bru.post("/demo/maskinporten/token")
            .json(&json!({"org": NAV, "scope": SCOPE_SOSIAL})),
    )
    .await
    .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(&token)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await
    .expect_status(200, "a demo call");
    // Both witnesses cosign while Bru runs (metrics: no lag left).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = send(bru.ops_client.get(bru.ops_url("/metrics")))
            .await
            .text();
        let lags: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("bru_witness_lag{"))
            .collect();
        let signed = metrics
            .lines()
            .any(|l| l.starts_with("bru_checkpoints_signed_total ") && !l.ends_with(" 0"));
        if signed && lags.len() == 2 && lags.iter().all(|l| l.ends_with(" 0")) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the demo's witnesses never caught up:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bru.sigterm();
    bru.wait_exit(Duration::from_secs(60)).await;

    let config_path = dir.path().join("bru.toml");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bru_bin())
            .args(["audit", "verify", "--witnesses", "2", "--config"])
            .arg(&config_path)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("2 valid cosignatures"), "{text}");
}
