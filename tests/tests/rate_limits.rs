//! Rate limits: per consumer and dataset from policy, and per client address
//! for calls that fail authentication. Refusals are 429 with `Retry-After`
//! and recorded like any denial.
#![allow(clippy::unwrap_used)]

use bru_tests::*;

/// Gives NAV a limit of 5 calls a second (burst 5) on its datasets.
fn limit_nav(world: &TestWorld) {
    let path = world.dir.path().join("policy.toml");
    let mut policy: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let nav = policy
        .get_mut("consumer")
        .and_then(toml::Value::as_array_mut)
        .unwrap()
        .iter_mut()
        .find(|c| c.get("org").and_then(toml::Value::as_str) == Some(NAV))
        .and_then(toml::Value::as_table_mut)
        .unwrap();
    let mut limit = toml::Table::new();
    limit.insert("per_second".into(), 5.into());
    limit.insert("burst".into(), 5.into());
    nav.insert("rate_limit".into(), toml::Value::Table(limit));
    std::fs::write(&path, toml::to_string(&policy).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_over_its_rate_gets_429_with_retry_after() {
    let world = TestWorld::new().await;
    limit_nav(&world);
    let bru = world.start().await;
    let mut ok = 0;
    let mut limited = Vec::new();
    for _ in 0..30 {
        let reply = send(world.nav_sosial(&bru, "", KARI)).await;
        match reply.status {
            200 => ok += 1,
            429 => limited.push(reply),
            other => panic!("unexpected status {other}: {}", reply.text()),
        }
    }
    assert!(ok >= 5, "the burst is served: {ok}");
    assert!(
        !limited.is_empty(),
        "30 calls in a burst of 5 at 5/s are limited"
    );
    let first = &limited[0];
    first.expect_problem(429, "rate_limited", "over the rate");
    let retry: u64 = first.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1, "Retry-After in whole seconds");
    let transfer = first.problem_transfer_id();
    let record = world.record(&transfer, "decision").await;
    assert_eq!(record["decision"], "deny");
    assert_eq!(record["code"], "rate_limited");
    assert_eq!(record["status"], 429);
    // The provider saw only the calls that were allowed.
    assert_eq!(world.k429.count(), ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_limited_per_address() {
    // A burst of 20 failures, then one a second: 60 failures in a row cannot
    // all be answered 401 unless they took 40 s.
    let world = TestWorld::builder()
        .unauthenticated_rate(1, 20)
        .build()
        .await;
    let bru = world.start().await;
    let valid = world.mp_token(NAV, "k429:sosialtjeneste.read");
    let valid_call = || {
        bru.get("/data/k429/sosialtjeneste")
            .header("authorization", format!("Bearer {valid}"))
            .header("bru-purpose", "sosialhjelp-saksbehandling")
            .header("nav-personident", KARI)
    };
    send(valid_call())
        .await
        .expect_status(200, "a valid call before the failures");
    let mut statuses = Vec::new();
    for _ in 0..60 {
        let reply = send(
            bru.get("/data/k429/sosialtjeneste")
                .header("authorization", "Bearer not.a.token")
                .header("bru-purpose", "sosialhjelp-saksbehandling"),
        )
        .await;
        if reply.status == 429 {
            reply.expect_problem(429, "rate_limited", "failed authentications over the rate");
            assert!(
                reply.header("retry-after").is_some(),
                "429 carries Retry-After"
            );
        }
        statuses.push(reply.status);
    }
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(unauthorized + limited, 60, "only 401 and 429: {statuses:?}");
    assert!(
        unauthorized >= 20,
        "the burst is answered 401: {unauthorized}"
    );
    assert!(
        limited > 0,
        "beyond the burst, failures from one address are limited"
    );
    // A caller whose token was verified before is still served from the same
    // address: the limit is on failures, and a known token costs no cryptography.
    send(valid_call())
        .await
        .expect_status(200, "a valid call after the failures");
}
