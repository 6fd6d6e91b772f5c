//! The events feed's `next` link is followed only on the feed's own origin
//! (SPEC 9.1): Bru presents its feed token to whatever `next` names, so a
//! link elsewhere is refused, the token never reaches the other origin, and
//! the feed shows as not read in `/readyz` and the lag metric.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bru_tests::altinn::*;
use bru_tests::consent::*;
use bru_tests::*;

async fn ops_get(bru: &Bru, path: &str) -> (u16, String) {
    let r = bru_tests::bru::http_client()
        .get(bru.ops_url(path))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_not_followed_and_shows() {
    let cw = ConsentWorld::new().await;
    let altinn = FakeAltinn::start().await;
    // Another server, counting every request to its feed path (with or
    // without a token).
    let elsewhere = FakeAltinn::start().await;
    altinn_world(&cw, &altinn, "");
    altinn.set_next_origin(&format!("http://{}", elsewhere.addr));
    altinn.publish(&uuid::Uuid::new_v4().to_string(), "revoked");
    let bru = cw.start().await;
    // Poll interval 1 s: behind after three polls that could not follow.
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
    assert!(
        !altinn.feed_reads().is_empty(),
        "Bru read its own feed (else nothing was tested)"
    );
    assert_eq!(
        (elsewhere.feed_reads().len(), elsewhere.feed_unauthorised()),
        (0, 0),
        "the other origin was never asked"
    );
}
