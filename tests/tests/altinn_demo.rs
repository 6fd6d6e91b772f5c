//! The demo's Altinn (SPEC 9.4), the walkthrough's Altinn story end to end
//! against `bru demo`: K429 asks Kari through Altinn, Kari approves, K429
//! fetches NAV income with an Altinn consent token (narrowed to the consented
//! year), Kari revokes in Altinn and Bru refuses the next call; Omsorgsapp
//! calls as K429's system user, K429 deletes the system user and the next
//! call is refused. Any store (the demo's own SQLite, or BRU_TEST_POSTGRES_URL).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bru_tests::*;
use serde_json::{json, Value};

async fn demo() -> (tempfile::TempDir, Bru) {
    init();
    let dir = tempfile::Builder::new()
        .prefix("bru-demo-")
        .tempdir()
        .unwrap();
    let mut args: Vec<String> = [
        "demo",
        "--dir",
        &dir.path().display().to_string(),
        "--listen",
        "127.0.0.1:0",
        "--ops-listen",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(base) = bru_tests::world::postgres_url() {
        let url = bru_tests::world::fresh_postgres_database(&base).await;
        args.extend(["--store".to_owned(), url]);
    }
    let (child, public, ops, logs) = spawn_bru(&args, dir.path(), &[]).await;
    let ca = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    (dir, Bru::new(child, public, ops, logs, &ca))
}

async fn token(bru: &Bru, request: Value) -> String {
    let r = send(bru.post("/demo/maskinporten/token").json(&request)).await;
    r.expect_status(200, "demo maskinporten token");
    r.json()["access_token"].as_str().unwrap().to_owned()
}

async fn citizen(bru: &Bru, pid: &str) -> String {
    let r = send(bru.post("/demo/idporten/token").json(&json!({"pid": pid}))).await;
    r.expect_status(200, "demo idporten token");
    r.json()["access_token"].as_str().unwrap().to_owned()
}

/// K429's consent request in Altinn's format; Kari accepts it. Its id.
async fn approved_consent(bru: &Bru, year: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let valid_to = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = send(bru.post("/demo/altinn/consentrequests").json(&json!({
        "id": id,
        "from": format!("urn:altinn:person:identifier-no:{KARI}"),
        "to": format!("urn:altinn:organization:identifier-no:{K429}"),
        "validTo": valid_to,
        "consentRights": [{
            "action": ["consent"],
            "resource": [{"type": "urn:altinn:resource", "value": "nav-inntekt"}],
            "metadata": {"inntektsaar": year}
        }],
        "requestMessage": {"nb": "K429 ber om inntekten din for søknaden om omsorgsbolig."},
        "redirectUrl": "https://k429.example/omsorgsbolig"
    })))
    .await;
    r.expect_status(201, "consent request");
    assert_eq!(r.json()["consentRequestEvents"][0]["eventType"], "Created");
    // Only Kari can answer it.
    let ola = citizen(bru, OLA).await;
    send(
        bru.post(&format!("/demo/altinn/consentrequests/{id}/accept"))
            .bearer_auth(ola),
    )
    .await
    .expect_status(404, "another citizen");
    let kari = citizen(bru, KARI).await;
    send(
        bru.post(&format!("/demo/altinn/consentrequests/{id}/accept"))
            .bearer_auth(kari),
    )
    .await
    .expect_status(200, "Kari accepts");
    id
}

async fn income(bru: &Bru, token: &str) -> Reply {
    send(
        bru.get("/data/nav/inntekt")
            .bearer_auth(token)
            .header("Bru-Purpose", PURPOSE_OMSORG)
            .header("Nav-Personident", KARI),
    )
    .await
}

async fn until_refused(bru: &Bru, token: &str, code: &str) -> Duration {
    let started = Instant::now();
    loop {
        let r = income(bru, token).await;
        if r.status == 403 {
            r.expect_problem(403, code, code);
            return started.elapsed();
        }
        r.expect_status(200, "still allowed");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never refused ({code})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_altinn_story_of_the_walkthrough() {
    let (_dir, bru) = demo().await;
    // 1. K429 asks Kari through Altinn; Kari approves in the demo Altinn.
    let consent = approved_consent(&bru, "2023").await;
    // 2. K429 fetches NAV income with the Altinn consent token: only 2023.
    let k429 = token(
        &bru,
        json!({"org": K429, "scope": SCOPE_INNTEKT, "altinn_consent": consent}),
    )
    .await;
    let r = income(&bru, &k429).await;
    r.expect_status(200, "altinn consent");
    let rows = r.json();
    assert_eq!(
        rows,
        json!([{"aar": 2023, "sum": rows[0]["sum"]}]),
        "{rows}"
    );
    // NAV cannot get a token for K429's consent.
    let r = send(
        bru.post("/demo/maskinporten/token")
            .json(&json!({"org": NAV, "scope": SCOPE_INNTEKT, "altinn_consent": consent})),
    )
    .await;
    r.expect_status(400, "consent of another organisation");
    // 3. Kari revokes in Altinn; Bru refuses the still-valid token once the feed shows it.
    let kari = citizen(&bru, KARI).await;
    send(
        bru.post(&format!("/demo/altinn/consentrequests/{consent}/revoke"))
            .bearer_auth(kari),
    )
    .await
    .expect_status(200, "Kari revokes");
    let took = until_refused(&bru, &k429, "consent_revoked").await;
    eprintln!("revocation window in the demo: {took:?} (poll interval 2 s, no Altinn delay)");

    // 4. Omsorgsapp calls as K429's system user, under a new consent to K429.
    let consent = approved_consent(&bru, "2024").await;
    let omsorgsapp = token(
        &bru,
        json!({"org": OMSORGSAPP, "scope": SCOPE_INNTEKT, "systemuser_org": K429, "system_id": "omsorgsapp", "altinn_consent": consent}),
    )
    .await;
    let r = income(&bru, &omsorgsapp).await;
    r.expect_status(200, "system user");
    assert_eq!(r.json()[0]["aar"], 2024);
    // 5. K429 deletes the system user; the next calls are refused (within the PDP cache's 10 s).
    // The demo's system user of Omsorgsapp at K429 (demo/src/altinn.rs).
    send(
        bru.client
            .delete(bru.url("/demo/altinn/systemusers/0a1b2c3d-4e5f-4a6b-8c7d-921429000428")),
    )
    .await
    .expect_status(204, "delete system user");
    until_refused(&bru, &omsorgsapp, "system_user_not_authorized").await;

    // A pid-restricted token serves Kari only.
    let pid = token(
        &bru,
        json!({"org": K429, "scope": SCOPE_INNTEKT, "pid": OLA}),
    )
    .await;
    income(&bru, &pid)
        .await
        .expect_problem(403, "subject_not_permitted", "pid");
}
