//! Frequency limits (SPEC 10): a consent request may carry
//! `"frequency": {"max": N, "per": "day"|"week"|"month"}`; more uses in the
//! period are 429 `consent_frequency_exceeded` with `Retry-After` (the
//! seconds until the oldest use leaves the rolling period), counted exactly
//! under parallel calls (and across replicas, PostgreSQL pass). Both stores.
#![allow(clippy::unwrap_used)]

use bru_tests::bru::Reply;
use bru_tests::consent::*;
use bru_tests::*;
use serde_json::{json, Value};

/// A granted consent for KARI with `frequency`; its id.
async fn granted_with(cw: &ConsentWorld, bru: &Bru, frequency: Value) -> String {
    let mut body = request_body(Some(KARI), None);
    body["frequency"] = frequency;
    let id = create(cw, bru, &body).await;
    citizen_action(cw, bru, KARI, &id, "accept")
        .await
        .expect_status(200, "accept");
    id
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .header("retry-after")
        .expect("a 429 carries Retry-After")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn uses_past_the_frequency_are_429_with_retry_after() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    let id = granted_with(&cw, &bru, json!({"max": 2, "per": "day"})).await;

    for n in 0..2 {
        inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
            .await
            .expect_status(200, &format!("use {n} within the frequency"));
    }
    for n in 0..2 {
        let reply = inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG).await;
        reply.expect_problem(
            429,
            "consent_frequency_exceeded",
            &format!("call {n} past it"),
        );
        // The first use frees one day after it was made: just under 86 400 s.
        let secs = retry_after(&reply);
        assert!(
            (86_000..=86_400).contains(&secs),
            "Retry-After {secs} is not the rest of the day"
        );
    }
    send(bru.get("/problems/consent_frequency_exceeded"))
        .await
        .expect_status(200, "the problem's page");

    let request = get_request(&bru, &k429, &id).await;
    request.expect_status(200, "GET the request");
    let request = request.json();
    assert_eq!(request["uses"], 2, "refused calls use nothing");
    assert_eq!(request["frequency"], json!({"max": 2, "per": "day"}));
    assert_eq!(
        event_types(&bru, &k429, &id).await,
        ["created", "accepted", "used", "used"]
    );

    // Another consent of the same citizen and requester has its own count.
    let other = granted_with(&cw, &bru, json!({"max": 1, "per": "week"})).await;
    inntekt(&bru, &k429, Some(&other), KARI, PURPOSE_OMSORG)
        .await
        .expect_status(200, "the other consent's first use");
    let reply = inntekt(&bru, &k429, Some(&other), KARI, PURPOSE_OMSORG).await;
    reply.expect_problem(
        429,
        "consent_frequency_exceeded",
        "the other consent's second",
    );
    assert!((7 * 86_400 - 400..=7 * 86_400).contains(&retry_after(&reply)));

    // A consent without a frequency is not limited by one.
    let plain = granted(&cw, &bru, KARI, None).await;
    for n in 0..4 {
        inntekt(&bru, &k429, Some(&plain), KARI, PURPOSE_OMSORG)
            .await
            .expect_status(200, &format!("use {n} without a frequency"));
    }
    let request = get_request(&bru, &k429, &plain).await.json();
    assert!(request.get("frequency").is_none(), "{request}");
}

#[tokio::test]
async fn a_frequency_must_be_well_formed() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    for bad in [
        json!({"max": 0, "per": "day"}),
        json!({"max": 2, "per": "hour"}),
        json!({"max": 2}),
        json!({"max": -1, "per": "day"}),
        json!({"max": 2, "per": "day", "burst": 3}),
        json!("2/day"),
        json!({"max": 4294967296_u64, "per": "day"}),
    ] {
        let mut body = request_body(Some(KARI), None);
        body["frequency"] = bad.clone();
        let reply = post_request(&bru, &k429, &body).await;
        reply.expect_status(400, &format!("frequency {bad}"));
        assert_eq!(
            reply.json()["field"],
            "frequency",
            "{bad}: {}",
            reply.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_calls_get_exactly_the_frequency() {
    let cw = ConsentWorld::new().await;
    // Three replicas on PostgreSQL; one process on SQLite (one file, one writer).
    let replicas = if world::postgres_url().is_some() {
        vec![cw.start().await, cw.start().await, cw.start().await]
    } else {
        vec![cw.start().await]
    };
    let k429 = cw.k429_token();
    let id = granted_with(&cw, &replicas[0], json!({"max": 5, "per": "month"})).await;
    let calls: Vec<_> = (0..30)
        .map(|i| {
            let rb = replicas[i % replicas.len()]
                .get("/data/nav/inntekt")
                .bearer_auth(&k429)
                .header("Bru-Purpose", PURPOSE_OMSORG)
                .header("Nav-Personident", KARI)
                .header("Bru-Consent", &id);
            tokio::spawn(bru_tests::bru::send(rb))
        })
        .collect();
    let (mut allowed, mut limited) = (0, 0);
    for call in calls {
        let reply = call.await.unwrap();
        match (reply.status, reply.code().as_deref()) {
            (200, _) => allowed += 1,
            (429, Some("consent_frequency_exceeded")) => limited += 1,
            (status, code) => panic!("unexpected {status} {code:?}: {}", reply.text()),
        }
    }
    assert_eq!((allowed, limited), (5, 25));
    let request = get_request(&replicas[0], &k429, &id).await.json();
    assert_eq!(request["uses"], 5);
}
