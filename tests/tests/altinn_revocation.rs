//! Revocation of Altinn consents through Altinn's consent events feed
//! (SPEC 9.1): a consent revoked in Altinn ends a token that is still valid,
//! at every replica, from the poll after the event shows; the cursor
//! survives a restart; a feed that is down shows in `/readyz` and the lag
//! metric and does not stop Bru's own consents.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bru_tests::altinn::*;
use bru_tests::consent::*;
use bru_tests::*;
use serde_json::json;

async fn altinn_consent_call(cw: &ConsentWorld, bru: &Bru, id: &str) -> Reply {
    let token = token_with_details(
        cw,
        K429,
        SCOPE_INNTEKT,
        json!([consent_detail(
            id,
            KARI,
            K429,
            RESOURCE_INNTEKT,
            &next_year(),
            json!({"inntektsaar": "2024"})
        )]),
    );
    inntekt(bru, &token, None, KARI, PURPOSE_OMSORG).await
}

/// Calls until the consent is refused `consent_revoked`; the time it took.
async fn until_revoked(cw: &ConsentWorld, bru: &Bru, id: &str) -> Duration {
    let started = Instant::now();
    loop {
        let reply = altinn_consent_call(cw, bru, id).await;
        if reply.status == 403 {
            reply.expect_problem(403, "consent_revoked", "revoked in Altinn");
            return started.elapsed();
        }
        reply.expect_status(200, "not yet seen");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the revocation was never enforced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ops_get(bru: &Bru, path: &str) -> (u16, String) {
    let r = bru_tests::bru::http_client()
        .get(bru.ops_url(path))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_revocation_in_altinn_ends_a_valid_token_and_survives_a_restart() {
    let cw = ConsentWorld::new().await;
    let altinn = FakeAltinn::start().await;
    altinn_world(&cw, &altinn, "");
    let mut bru = cw.start().await;
    let (revoked, kept) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    altinn_consent_call(&cw, &bru, &revoked)
        .await
        .expect_status(200, "before");
    // Kari's access log names the Altinn consent (SPEC 9.1), as hers.
    let log = send(
        bru.get("/citizen/v1/transfers")
            .bearer_auth(cw.citizen_token(KARI)),
    )
    .await;
    log.expect_status(200, "Kari's transfers");
    let log = log.json();
    let shown = log["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["consent_id"] == format!("altinn:{revoked}"))
        .unwrap_or_else(|| panic!("no transfer under the Altinn consent: {log}"));
    assert_eq!(shown["consent"], "altinn");
    // Ola's log has nothing of it.
    let ola = send(
        bru.get("/citizen/v1/transfers")
            .bearer_auth(cw.citizen_token(OLA)),
    )
    .await;
    assert!(!ola.text().contains(&revoked));
    // Events about other consents, and ones that do not end a consent.
    altinn.publish(&kept, "accepted");
    altinn.publish(&kept, "used");
    altinn.publish(&revoked, "revoked");
    let took = until_revoked(&cw, &bru, &revoked).await;
    eprintln!(
        "revocation enforced {took:?} after the event showed in the feed (poll interval 1 s)"
    );
    altinn_consent_call(&cw, &bru, &kept)
        .await
        .expect_status(200, "another consent");
    assert_eq!(
        altinn.feed_unauthorised(),
        0,
        "Bru presents its token to the feed"
    );

    // A restart goes on from the stored cursor, and the revocation holds.
    bru.sigterm();
    bru.wait_exit(Duration::from_secs(30)).await;
    let reads_before = altinn.feed_reads().len();
    let bru = cw.start().await;
    altinn_consent_call(&cw, &bru, &revoked)
        .await
        .expect_problem(403, "consent_revoked", "after restart");
    let deadline = Instant::now() + Duration::from_secs(30);
    while altinn.feed_reads().len() == reads_before {
        assert!(
            Instant::now() < deadline,
            "the feed was not read after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        altinn.feed_reads()[reads_before].is_some(),
        "after a restart the feed is read from the stored cursor, not from its start: {:?}",
        altinn.feed_reads()
    );
    // A deletion ends a consent too.
    altinn.publish(&kept, "deleted");
    until_revoked(&cw, &bru, &kept).await;
}

#[tokio::test]
async fn a_feed_that_is_down_shows_and_bru_s_own_consents_go_on() {
    let cw = ConsentWorld::new().await;
    let altinn = FakeAltinn::start().await;
    altinn_world(&cw, &altinn, "");
    altinn.set_feed_down(true);
    let bru = cw.start().await;
    // Poll interval 1 s: behind after three missed polls.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = ops_get(&bru, "/readyz").await;
        assert_eq!(status, 200, "the feed does not make Bru unready: {body}");
        if body.contains("altinn events feed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never showed the feed behind: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, metrics) = ops_get(&bru, "/metrics").await;
    let lag: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("bru_altinn_consent_events_lag_seconds "))
        .expect("the lag metric")
        .trim()
        .parse()
        .unwrap();
    assert!(lag >= 3.0, "lag {lag}");
    // Bru's own consents and Altinn tokens without a known revocation go on.
    let consent = granted(&cw, &bru, KARI, None).await;
    inntekt(&bru, &cw.k429_token(), Some(&consent), KARI, PURPOSE_OMSORG)
        .await
        .expect_status(200, "Bru's own consent");
    altinn_consent_call(&cw, &bru, &uuid::Uuid::new_v4().to_string())
        .await
        .expect_status(200, "an Altinn consent");
    // The feed back: the detail goes.
    altinn.set_feed_down(false);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = ops_get(&bru, "/readyz").await;
        if body == "ready\n" {
            break;
        }
        assert!(Instant::now() < deadline, "/readyz kept the detail: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn three_replicas_refuse_a_consent_revoked_in_altinn() {
    if postgres_url_missing() {
        return;
    }
    let cw = ConsentWorld::new().await;
    let altinn = FakeAltinn::start().await;
    altinn_world(&cw, &altinn, "");
    let replicas = vec![cw.start().await, cw.start().await, cw.start().await];
    let id = uuid::Uuid::new_v4().to_string();
    for bru in &replicas {
        altinn_consent_call(&cw, bru, &id)
            .await
            .expect_status(200, "before");
    }
    altinn.publish(&id, "revoked");
    let started = Instant::now();
    for (i, bru) in replicas.iter().enumerate() {
        let took = until_revoked(&cw, bru, &id).await;
        eprintln!(
            "replica {i}: refused {:?} after the event showed",
            started.elapsed().max(took)
        );
    }
    // Every replica refuses from now on.
    for bru in &replicas {
        altinn_consent_call(&cw, bru, &id).await.expect_problem(
            403,
            "consent_revoked",
            "each replica",
        );
    }
}

/// Several replicas need PostgreSQL (SQLite is one process per file).
fn postgres_url_missing() -> bool {
    if bru_tests::world::postgres_url().is_none() {
        eprintln!("SKIPPED on SQLite: several replicas need PostgreSQL");
        return true;
    }
    false
}
