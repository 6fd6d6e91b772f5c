//! Notifications, the citizen's side (SPEC 10): settings round-trip (kept
//! per person, also through `Bru-On-Behalf-Of`'s rules), and the inbox: a
//! request waiting for me, a transfer about me, a consent about to expire,
//! newest first, in pages, as my settings choose, in Bru's words and never
//! with a person number. Both stores.
//!
//! A break-glass call's notice (in Bru's words, never the caller's reason)
//! is tested end to end in trust_break_glass_wording.rs and snoop_alerts.rs,
//! at the store level (consent-db store::notifications::tests) and its
//! wording in portal::notify's unit tests.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bru_tests::consent::*;
use bru_tests::represent::*;
use bru_tests::*;
use serde_json::{json, Value};

async fn settings(cw: &ConsentWorld, bru: &Bru, pid: &str) -> Value {
    let reply = send(
        bru.get("/citizen/v1/notifications/settings")
            .bearer_auth(cw.citizen_token(pid)),
    )
    .await;
    reply.expect_status(200, "GET settings");
    reply.json()
}

async fn put_settings(cw: &ConsentWorld, bru: &Bru, pid: &str, body: &str) -> Reply {
    send(
        bru.client
            .put(bru.url("/citizen/v1/notifications/settings"))
            .bearer_auth(cw.citizen_token(pid))
            .header("content-type", "application/json")
            .body(body.to_owned()),
    )
    .await
}

async fn inbox(cw: &ConsentWorld, bru: &Bru, pid: &str, query: &str) -> Value {
    let reply = send(
        bru.get(&format!("/citizen/v1/notifications{query}"))
            .bearer_auth(cw.citizen_token(pid)),
    )
    .await;
    reply.expect_status(200, "GET /citizen/v1/notifications");
    assert!(
        !reply.text().contains(pid),
        "a person number in the inbox: {}",
        reply.text()
    );
    reply.json()
}

fn kinds(page: &Value) -> Vec<String> {
    page["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// The inbox once `pred` holds (the follower of the log runs in the background).
async fn inbox_until(
    cw: &ConsentWorld,
    bru: &Bru,
    pid: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..200 {
        let page = inbox(cw, bru, pid, "").await;
        if pred(&page) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the inbox never got there: {}",
        inbox(cw, bru, pid, "").await
    );
}

#[tokio::test]
async fn settings_are_kept_per_person_and_checked() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    assert_eq!(
        settings(&cw, &bru, KARI).await,
        json!({"transfers": "all", "consent_events": true}),
        "the defaults"
    );
    let put = put_settings(
        &cw,
        &bru,
        KARI,
        r#"{"transfers": "denied", "consent_events": false}"#,
    )
    .await;
    put.expect_status(200, "PUT settings");
    assert_eq!(
        put.json(),
        json!({"transfers": "denied", "consent_events": false})
    );
    assert_eq!(
        settings(&cw, &bru, KARI).await,
        json!({"transfers": "denied", "consent_events": false})
    );
    // Ola's are his own.
    assert_eq!(
        settings(&cw, &bru, OLA).await,
        json!({"transfers": "all", "consent_events": true})
    );
    for bad in [
        r#"{"transfers": "some", "consent_events": true}"#,
        r#"{"transfers": "all"}"#,
        r#"{"transfers": "all", "consent_events": "yes"}"#,
        r#"{"transfers": "all", "consent_events": true, "email": "x"}"#,
        "[]",
    ] {
        let refused = put_settings(&cw, &bru, KARI, bad).await;
        refused.expect_status(400, bad);
        assert_eq!(refused.json()["code"], "malformed_request", "{bad}");
    }
    // Unchanged by the refused ones.
    assert_eq!(
        settings(&cw, &bru, KARI).await,
        json!({"transfers": "denied", "consent_events": false})
    );
    send(bru.get("/citizen/v1/notifications/settings"))
        .await
        .expect_status(401, "without a token");
}

#[tokio::test]
async fn the_inbox_shows_requests_transfers_and_expiring_consents_as_settings_choose() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    // A request waiting for Kari.
    let waiting = create(&cw, &bru, &request_body(Some(KARI), None)).await;
    let page = inbox(&cw, &bru, KARI, "").await;
    let first = &page["notifications"][0];
    assert_eq!(first["kind"], "consent_event", "{page}");
    assert_eq!(first["event"], "created");
    assert_eq!(first["consent_id"], waiting.as_str());
    assert_eq!(first["organisation"]["org"], K429);
    let text = first["text"]["nb"].as_str().unwrap();
    assert!(text.contains("venter på svar fra deg"), "{text}");
    // What K429 wrote in its request never reaches the notification.
    assert!(!page.to_string().contains("fylle ut søknaden"), "{page}");
    assert!(first["text"]["en"]
        .as_str()
        .unwrap()
        .contains("waiting for your answer"));
    assert_eq!(
        inbox(&cw, &bru, OLA, "").await["notifications"],
        json!([]),
        "not Ola's"
    );

    // A granted consent valid for a day: about to expire. Then a transfer under it.
    let kari = granted(&cw, &bru, KARI, None).await;
    inntekt(&bru, &cw.k429_token(), Some(&kari), KARI, PURPOSE_OMSORG)
        .await
        .expect_status(200, "a transfer about Kari");
    let page = inbox_until(&cw, &bru, KARI, |p| {
        kinds(p).contains(&"transfer".to_owned())
    })
    .await;
    let k = kinds(&page);
    assert!(k.contains(&"consent_expiring".to_owned()), "{page}");
    let transfer = page["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "transfer")
        .unwrap();
    assert_eq!(transfer["decision"], "allow");
    assert_eq!(transfer["datasets"][0]["id"], "nav/inntekt");
    assert!(
        transfer["text"]["en"].as_str().unwrap().contains("fetched"),
        "{transfer}"
    );
    // Newest first.
    let times: Vec<&str> = page["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["time"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);

    // Pages of one: every item once.
    let all = page["notifications"].as_array().unwrap().len();
    let mut seen = Vec::new();
    let mut query = "?limit=1".to_owned();
    loop {
        let p = inbox(&cw, &bru, KARI, &query).await;
        for n in p["notifications"].as_array().unwrap() {
            seen.push(n["id"].as_str().unwrap().to_owned());
        }
        match p["next_cursor"].as_str() {
            Some(c) => query = format!("?limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), all, "{seen:?}");
    seen.dedup();
    assert_eq!(seen.len(), all);
    send(
        bru.get("/citizen/v1/notifications?limit=0")
            .bearer_auth(cw.citizen_token(KARI)),
    )
    .await
    .expect_status(400, "limit 0");
    send(
        bru.get("/citizen/v1/notifications?cursor=nonsense")
            .bearer_auth(cw.citizen_token(KARI)),
    )
    .await
    .expect_status(400, "a cursor Bru never gave");

    // Only refused transfers, no consent events: nothing of the above is left.
    put_settings(
        &cw,
        &bru,
        KARI,
        r#"{"transfers": "denied", "consent_events": false}"#,
    )
    .await
    .expect_status(200, "PUT settings");
    assert_eq!(inbox(&cw, &bru, KARI, "").await["notifications"], json!([]));
    // A refused call about Kari (under the consent she has just revoked) is shown.
    citizen_action(&cw, &bru, KARI, &kari, "revoke")
        .await
        .expect_status(200, "revoke");
    let refused = inntekt(&bru, &cw.k429_token(), Some(&kari), KARI, PURPOSE_OMSORG).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    let page = inbox_until(&cw, &bru, KARI, |p| !kinds(p).is_empty()).await;
    assert_eq!(kinds(&page), ["transfer"], "{page}");
    assert_eq!(page["notifications"][0]["decision"], "deny");
    put_settings(
        &cw,
        &bru,
        KARI,
        r#"{"transfers": "all", "consent_events": true}"#,
    )
    .await
    .expect_status(200, "PUT settings");
    assert!(kinds(&inbox(&cw, &bru, KARI, "").await).len() > all);
}

#[tokio::test]
async fn a_parent_reads_and_sets_a_childs_settings_and_inbox_on_their_behalf() {
    let rw = RepresentWorld::new().await;
    let bru = rw.start().await;
    let kari = rw.citizen_token(KARI);
    let emma = party_of(&bru, &kari, "Emma Nordmann").await;
    let waiting = create(&rw, &bru, &request_body(Some(EMMA), None)).await;
    // Emma's inbox, through Kari: the request waiting for Emma.
    let page = get_for(&bru, &kari, Some(&emma), "/citizen/v1/notifications").await;
    page.expect_status(200, "Emma's inbox for Kari");
    assert_eq!(
        page.json()["notifications"][0]["consent_id"],
        waiting.as_str()
    );
    assert!(!page.text().contains(EMMA));
    // Kari's own inbox does not have it.
    let own = get_for(&bru, &kari, None, "/citizen/v1/notifications").await;
    assert_eq!(own.json()["notifications"], json!([]));
    // Kari sets Emma's settings; Emma's own view shows them, Kari's are untouched.
    send(
        bru.client
            .put(bru.url("/citizen/v1/notifications/settings"))
            .bearer_auth(&kari)
            .header("Bru-On-Behalf-Of", &emma)
            .json(&json!({"transfers": "none", "consent_events": true})),
    )
    .await
    .expect_status(200, "PUT for Emma");
    let emmas = send(
        bru.get("/citizen/v1/notifications/settings")
            .bearer_auth(rw.citizen_token(EMMA)),
    )
    .await;
    assert_eq!(
        emmas.json(),
        json!({"transfers": "none", "consent_events": true})
    );
    assert_eq!(
        settings(&rw, &bru, KARI).await,
        json!({"transfers": "all", "consent_events": true})
    );
    // Nobody Kari may act for: refused, as on the other citizen endpoints.
    let refused = get_for(
        &bru,
        &kari,
        Some("p-AAAAAAAAAAAAAAAAAAAAAA"),
        "/citizen/v1/notifications/settings",
    )
    .await;
    expect_refused(
        &refused,
        403,
        "not_represented",
        "a party Kari cannot act for",
    );
}
