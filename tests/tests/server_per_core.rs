//! Issue 21, the proxy core: `[server] runtime = "per-core"` (one thread
//! per worker, each with a current-thread runtime and its own SO_REUSEPORT
//! socket) serves HTTP/1.1 and HTTP/2 over TLS, answers and records every
//! call over many connections, and stops gracefully on SIGTERM with the
//! call in flight answered and recorded. It is the default runtime: the rest
//! of the suite runs on it too (and on the multi-thread runtime with
//! `BRU_TEST_RUNTIME=multi-thread`, CI's PostgreSQL pass).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bru_tests::bru::https_client;
use bru_tests::*;

fn per_core() -> WorldBuilder {
    TestWorld::builder()
        .server_setting("runtime", "\"per-core\"")
        .server_setting("workers", "2")
}

/// One call of the statutory dataset to `url` through `client`; its
/// transfer id and the HTTP version it was answered on.
async fn call(client: reqwest::Client, url: String, token: String) -> (String, reqwest::Version) {
    let resp = client
        .get(&url)
        .bearer_auth(token)
        .header("Bru-Purpose", PURPOSE_SOSIAL)
        .header("Nav-Personident", KARI)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let version = resp.version();
    let reply = Reply::from_response(resp).await;
    reply.expect_status(200, &url);
    (reply.transfer_id().expect("Bru-Transfer-Id"), version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_core_workers_answer_and_record_every_call_over_http1_and_http2() {
    let world = per_core().build().await;
    let bru = world.start().await;
    // Logged as the workers start, just after the "listening" line.
    let logs = bru
        .wait_log("public listener on the per-core runtime")
        .await;
    assert!(logs.contains("workers=2"), "{logs}");

    // Several clients, each with its own connections: HTTP/2 by ALPN, and
    // HTTP/1.1 with calls in parallel (a connection each). SO_REUSEPORT
    // spreads the connections over both workers' sockets.
    let h2: Vec<reqwest::Client> = (0..3).map(|_| https_client(&world.pki.ca_pem)).collect();
    let h1: Vec<reqwest::Client> = (0..3)
        .map(|_| {
            let ca = reqwest::Certificate::from_pem(world.pki.ca_pem.as_bytes()).unwrap();
            reqwest::Client::builder()
                .tls_certs_only([ca])
                .http1_only()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap()
        })
        .collect();
    let token = world.mp_token(NAV, SCOPE_SOSIAL);
    let mut calls = tokio::task::JoinSet::new();
    let mut n = 0;
    for _round in 0..4 {
        for client in h2.iter().chain(h1.iter()) {
            for _ in 0..4 {
                n += 1;
                let url = bru.url(&format!("/data/k429/sosialtjeneste/call-{n}"));
                calls.spawn(call(client.clone(), url, token.clone()));
            }
        }
    }
    let answered: Vec<(String, reqwest::Version)> = calls.join_all().await;
    assert_eq!(answered.len(), 96);
    let h2_calls = answered
        .iter()
        .filter(|(_, v)| *v == reqwest::Version::HTTP_2)
        .count();
    let h1_calls = answered
        .iter()
        .filter(|(_, v)| *v == reqwest::Version::HTTP_11)
        .count();
    assert_eq!(
        (h2_calls, h1_calls),
        (48, 48),
        "half the calls over HTTP/2, half over HTTP/1.1"
    );
    assert_eq!(world.k429.count(), 96, "the provider saw every call");

    let ids: Vec<String> = answered.into_iter().map(|(id, _)| id).collect();
    let records = world
        .wait_records("a decision and an outcome for every call", |recs| {
            ids.iter().all(|t| {
                find_record(recs, t, "decision").is_some()
                    && find_record(recs, t, "outcome").is_some()
            })
        })
        .await;
    for t in &ids {
        assert_eq!(
            find_record(&records, t, "decision").unwrap()["decision"],
            "allow"
        );
        assert_eq!(find_record(&records, t, "outcome").unwrap()["status"], 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_core_sigterm_lets_the_call_in_flight_finish_and_records_it() {
    let world = per_core().shutdown_grace_ms(30_000).build().await;
    world.k429.set_delay(Duration::from_secs(3));
    let mut bru = world.start().await;
    let in_flight = tokio::spawn(send(world.nav_sosial(&bru, "", KARI)));
    world.k429.wait_for(1, Duration::from_secs(60)).await;
    bru.sigterm();
    let reply = in_flight.await.expect("join");
    reply.expect_status(200, "the call in flight at SIGTERM");
    let tid = reply.transfer_id().expect("Bru-Transfer-Id");
    let status = bru.wait_exit(Duration::from_secs(90)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "bru must exit 0 after SIGTERM; output:\n{}",
        bru.logs()
    );
    // Written by a background task of the worker's runtime, which must
    // outlive the listener until the record is in the log.
    let (records, raw) = world.export().await;
    let outcome = find_record(&records, &tid, "outcome")
        .unwrap_or_else(|| panic!("no outcome record for {tid} after shutdown:\n{raw}"));
    assert_eq!(outcome["status"], 200, "{outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_without_the_per_core_runtime_is_refused() {
    let world = TestWorld::builder()
        .server_setting("runtime", "\"multi-thread\"")
        .server_setting("workers", "2")
        .build()
        .await;
    let out = std::process::Command::new(bru_bin())
        .args(["check", "--config"])
        .arg(world.dir.path().join("bru.toml"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("server.workers applies only to runtime = \"per-core\""),
        "{text}"
    );
}

/// One statutory call through `bru`: answered 200, with its decision and
/// outcome records in the log.
async fn answers_and_records_a_call(world: &TestWorld, bru: &bru_tests::bru::Bru, on: &str) {
    let reply = send(world.nav_sosial(bru, "", KARI)).await;
    reply.expect_status(200, &format!("a call on {on}"));
    let tid = reply.transfer_id().expect("Bru-Transfer-Id");
    world
        .wait_records(
            &format!("the decision and outcome of a call on {on}"),
            |recs| {
                find_record(recs, &tid, "decision").is_some()
                    && find_record(recs, &tid, "outcome").is_some()
            },
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_runtime_is_per_core_with_a_worker_for_each_cpu() {
    let world = TestWorld::builder()
        .without_server_setting("runtime")
        .build()
        .await;
    let bru = world.start().await;
    let logs = bru
        .wait_log("public listener on the per-core runtime")
        .await;
    // Bru counts the CPUs it may use as this test does (taskset and cgroup
    // limits included); the test runs as Bru's parent, with its CPUs.
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert!(logs.contains(&format!("workers={cpus}")), "{logs}");
    assert!(!logs.contains("multi-thread runtime"), "{logs}");
    answers_and_records_a_call(&world, &bru, "the default runtime").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_multi_thread_runtime_still_serves_and_records_when_asked_for() {
    let world = TestWorld::builder()
        .server_setting("runtime", "\"multi-thread\"")
        .build()
        .await;
    let bru = world.start().await;
    let logs = bru
        .wait_log("public listener on the multi-thread runtime")
        .await;
    assert!(!logs.contains("per-core runtime"), "{logs}");
    answers_and_records_a_call(&world, &bru, "the multi-thread runtime").await;
}
