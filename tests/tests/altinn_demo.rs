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

/// A problem of the demo's own endpoints (no transfer: not the data plane).
fn demo_problem(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{code}: {}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{code}"
    );
    assert_eq!(r.json()["code"], code, "{}", r.text());
}

/// One demo at a time in this file: the demo providers' ports are shared.
async fn one_demo_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
        .lock()
        .await
}

async fn demo() -> (tempfile::TempDir, Bru) {
    init();
    let dir = tempfile::Builder::new()
        .prefix("bru-demo-")
        .tempdir()
        .unwrap();
    let store = match bru_tests::world::postgres_url() {
        Some(base) => Some(bru_tests::world::fresh_postgres_database(&base).await),
        None => None,
    };
    let bru = bru_tests::demo::spawn_demo(dir.path(), "127.0.0.1:0", store.as_deref()).await;
    (dir, bru)
}

/// A consent request in Altinn's format from K429 to Kari for `resource`.
fn consent_request(id: &str, resource: &str, year: &str) -> Value {
    let valid_to = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    json!({
        "id": id,
        "from": format!("urn:altinn:person:identifier-no:{KARI}"),
        "to": format!("urn:altinn:organization:identifier-no:{K429}"),
        "validTo": valid_to,
        "consentRights": [{
            "action": ["consent"],
            "resource": [{"type": "urn:altinn:resource", "value": resource}],
            "metadata": {"inntektsaar": year}
        }],
        "requestMessage": {"nb": "K429 ber om inntekten din for søknaden om omsorgsbolig."},
        "redirectUrl": "https://k429.example/omsorgsbolig"
    })
}

/// K429's Maskinporten token for Altinn's consent request API.
async fn requester(bru: &Bru) -> String {
    token(
        bru,
        json!({"org": K429, "scope": "altinn:consentrequests.write"}),
    )
    .await
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
    approved(bru, "nav-inntekt", year).await
}

/// K429's consent request for `resource`, accepted by Kari. Its id.
async fn approved(bru: &Bru, resource: &str, year: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let r = send(
        bru.post("/demo/altinn/consentrequests")
            .bearer_auth(requester(bru).await)
            .json(&consent_request(&id, resource, year)),
    )
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
    let _one = one_demo_at_a_time().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_request_needs_the_requesters_maskinporten_token() {
    let _one = one_demo_at_a_time().await;
    let (_dir, bru) = demo().await;
    let post = |token: Option<String>| {
        let mut r = bru
            .post("/demo/altinn/consentrequests")
            .json(&consent_request(
                &uuid::Uuid::new_v4().to_string(),
                "nav-inntekt",
                "2023",
            ));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        send(r)
    };
    let r = post(None).await;
    demo_problem(&r, 401, "missing_token");
    assert!(r.header("www-authenticate").is_some());
    demo_problem(
        &post(Some("not-a-token".into())).await,
        401,
        "invalid_token",
    );
    // A token of the demo ID-porten is not a Maskinporten token.
    demo_problem(
        &post(Some(citizen(&bru, KARI).await)).await,
        401,
        "invalid_token",
    );
    // K429's token without Altinn's consent request scope.
    let wrong_scope = token(&bru, json!({"org": K429, "scope": SCOPE_INNTEKT})).await;
    demo_problem(&post(Some(wrong_scope)).await, 403, "insufficient_scope");
    // NAV may not ask on K429's behalf (`to` is K429).
    let nav = token(
        &bru,
        json!({"org": NAV, "scope": "altinn:consentrequests.write"}),
    )
    .await;
    demo_problem(&post(Some(nav)).await, 403, "consumer_not_allowed");
    // Omsorgsapp may, with a token K429 delegated (consumer K429, supplier Omsorgsapp).
    let vendor = token(
        &bru,
        json!({"org": K429, "supplier": OMSORGSAPP, "scope": "altinn:consentrequests.write"}),
    )
    .await;
    let r = post(Some(vendor)).await;
    r.expect_status(201, "vendor for K429");
    assert_eq!(
        r.json()["handledBy"],
        format!("urn:altinn:organization:identifier-no:{OMSORGSAPP}")
    );
    post(Some(requester(&bru).await))
        .await
        .expect_status(201, "K429 itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_altinn_keeps_its_state_across_a_restart() {
    let _one = one_demo_at_a_time().await;
    init();
    let dir = tempfile::Builder::new()
        .prefix("bru-demo-")
        .tempdir()
        .unwrap();
    let store = match bru_tests::world::postgres_url() {
        Some(base) => Some(bru_tests::world::fresh_postgres_database(&base).await),
        None => None,
    };
    let mut bru = bru_tests::demo::spawn_demo(dir.path(), "127.0.0.1:0", store.as_deref()).await;
    // The issuer URLs name the port: the restart listens where the first run did.
    let listen = bru
        .url("/")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .replace("localhost", "127.0.0.1");
    let consent = approved_consent(&bru, "2023").await;
    let su = send(bru.post("/demo/altinn/systemusers").json(&json!({
        "system_id": "omsorgsapp", "systemuser_org": K429, "rights": ["nav-inntekt"]
    })))
    .await;
    su.expect_status(201, "system user");
    let su = su.json()["id"].as_str().unwrap().to_owned();
    // The feed up to now, and where it goes on.
    let feed = send(
        bru.get("/demo/altinn/consentrequests/events")
            .bearer_auth("demo-altinn-events"),
    )
    .await;
    feed.expect_status(200, "feed");
    let feed = feed.json();
    let accepted = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["consentRequestId"] == consent.as_str())
        .count();
    assert_eq!(accepted, 1, "{feed}");
    let next = feed["links"]["next"].as_str().unwrap().to_owned();
    let k429 = token(
        &bru,
        json!({"org": K429, "scope": SCOPE_INNTEKT, "altinn_consent": consent}),
    )
    .await;
    income(&bru, &k429)
        .await
        .expect_status(200, "before the restart");

    bru.sigterm();
    bru.wait_exit(Duration::from_secs(30)).await;
    let bru = bru_tests::demo::spawn_demo(dir.path(), &listen, store.as_deref()).await;

    // The accepted consent request is still there: the demo Maskinporten puts it in a token.
    let k429 = token(
        &bru,
        json!({"org": K429, "scope": SCOPE_INNTEKT, "altinn_consent": consent}),
    )
    .await;
    income(&bru, &k429)
        .await
        .expect_status(200, "after the restart");
    // The feed's cursor from before the restart still points after the same events.
    let path = next
        .split_once("/demo/")
        .map(|(_, p)| format!("/demo/{p}"))
        .unwrap();
    let read = |bru: &Bru| send(bru.get(&path).bearer_auth("demo-altinn-events"));
    let r = read(&bru).await;
    r.expect_status(200, "old cursor");
    assert_eq!(r.json()["data"], json!([]), "nothing new yet");
    let kari = citizen(&bru, KARI).await;
    send(
        bru.post(&format!("/demo/altinn/consentrequests/{consent}/revoke"))
            .bearer_auth(kari),
    )
    .await
    .expect_status(200, "Kari revokes after the restart");
    let r = read(&bru).await;
    let data = r.json()["data"].clone();
    assert_eq!(data.as_array().unwrap().len(), 1, "{data}");
    assert_eq!(data[0]["consentRequestId"], consent.as_str());
    assert_eq!(data[0]["eventType"], "revoked");
    // Bru's own stored cursor goes on too: the revocation ends the token.
    until_refused(&bru, &k429, "consent_revoked").await;
    // The system user made before the restart is still there.
    send(
        bru.client
            .delete(bru.url(&format!("/demo/altinn/systemusers/{su}"))),
    )
    .await
    .expect_status(204, "system user after the restart");
    // The saved state is the owner's only: it holds person numbers.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("demo-altinn.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "demo-altinn.json is private");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_altinn_issues_altinn_2_consent_tokens_bru_verifies() {
    let _one = one_demo_at_a_time().await;
    let (_dir, bru) = demo().await;
    // A consent to a migrated Altinn 2 service (`{org}_{serviceCode}_{serviceEditionCode}`).
    let consent = approved(&bru, "nav_4629_2", "2023").await;
    let path = format!("/demo/altinn/api/authorization/token?authcode={consent}");
    // Altinn 2 hands the token to the organisation it was given to, authenticated.
    demo_problem(&send(bru.get(&path)).await, 401, "missing_token");
    let nav = token(&bru, json!({"org": NAV, "scope": "altinn:consenttokens"})).await;
    demo_problem(
        &send(bru.get(&path).bearer_auth(nav)).await,
        403,
        "consent_not_found",
    );
    let k429 = token(&bru, json!({"org": K429, "scope": "altinn:consenttokens"})).await;
    let r = send(bru.get(&path).bearer_auth(&k429)).await;
    r.expect_status(200, "Altinn 2 token");
    let altinn2 = r.text();
    let (header, claims) = peek(altinn2.trim());
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["AuthorizationCode"], consent.as_str());
    assert_eq!(claims["OfferedBy"], KARI);
    assert_eq!(claims["CoveredBy"], K429);
    assert_eq!(
        claims["Services"],
        json!(["4629_2", "4629_2_inntektsaar=2023"])
    );
    assert!(claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap() <= 30);
    // Its key is in the published JWK set.
    let jwks = send(bru.get("/demo/altinn/api/metadata/jwk")).await.json();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    // An Altinn 3 consent has no Altinn 2 token.
    let altinn3 = approved_consent(&bru, "2023").await;
    let r = send(
        bru.get(&format!(
            "/demo/altinn/api/authorization/token?authcode={altinn3}"
        ))
        .bearer_auth(&k429),
    )
    .await;
    demo_problem(&r, 400, "malformed_request");

    // Bru verifies it against the demo Altinn's keys: genuine, it is read (the
    // demo's nav/inntekt names the Altinn 3 resource nav-inntekt, which the
    // Altinn 2 service does not grant); forged, it is refused as a token.
    let mp = token(&bru, json!({"org": K429, "scope": SCOPE_INNTEKT})).await;
    let with = |t: &str| {
        send(
            bru.get("/data/nav/inntekt")
                .bearer_auth(&mp)
                .header("AltinnSamtykke", t.trim().to_owned())
                .header("Bru-Purpose", PURPOSE_OMSORG)
                .header("Nav-Personident", KARI),
        )
    };
    with(&altinn2).await.expect_problem(
        403,
        "consent_not_found",
        "service not granting nav-inntekt",
    );
    let (h, p, _) = segments(altinn2.trim());
    with(&format!("{h}.{p}.AAAA"))
        .await
        .expect_problem(401, "invalid_token", "forged signature");
}
