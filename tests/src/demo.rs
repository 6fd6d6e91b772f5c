//! `bru demo` as the walkthrough starts it (SPEC 8), for the tests of the
//! demo world: on the demo's own SQLite, or on a fresh PostgreSQL database
//! when the suite runs against one (`BRU_TEST_POSTGRES_URL`), with tokens
//! from the demo's own Maskinporten and ID-porten.

use std::path::Path;

use serde_json::{json, Value};

use crate::bru::{send, spawn_bru, Bru};

/// `bru demo` in `dir` (which may already hold a `policy.toml` of the
/// test's), on free loopback ports.
pub async fn start_in(dir: &Path) -> Bru {
    let store = match crate::world::postgres_url() {
        Some(base) => Some(crate::world::fresh_postgres_database(&base).await),
        None => None,
    };
    spawn_demo(dir, "127.0.0.1:0", store.as_deref()).await
}

/// `bru demo` in a fresh temporary directory on the demo's own SQLite,
/// whichever store the suite runs on (the tests of what a user sees on a
/// first `bru demo`).
pub async fn start_on_sqlite(prefix: &str) -> (tempfile::TempDir, Bru) {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let bru = spawn_demo(dir.path(), "127.0.0.1:0", None).await;
    (dir, bru)
}

/// `bru demo` on `dir`, listening on `listen` (a restart can take its old
/// port back), on the store named (else the demo's own SQLite).
pub async fn spawn_demo(dir: &Path, listen: &str, store: Option<&str>) -> Bru {
    crate::init();
    let mut args: Vec<String> = [
        "demo",
        "--dir",
        &dir.display().to_string(),
        "--listen",
        listen,
        "--ops-listen",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(url) = store {
        args.extend(["--store".to_owned(), url.to_owned()]);
    }
    let (child, public, ops, logs) = spawn_bru(&args, dir, &[]).await;
    let ca = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    Bru::new(child, public, ops, logs, &ca)
}

/// `bru demo` in a fresh temporary directory, kept as long as the first.
pub async fn start(prefix: &str) -> (tempfile::TempDir, Bru) {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let bru = start_in(dir.path()).await;
    (dir, bru)
}

/// A token of the demo Maskinporten for `org` with `scope`.
pub async fn machine_token(bru: &Bru, org: &str, scope: &str) -> String {
    let r = send(
        bru.post("/demo/maskinporten/token")
            .json(&json!({"org": org, "scope": scope})),
    )
    .await;
    r.expect_status(200, "demo maskinporten token");
    r.json()["access_token"].as_str().unwrap().to_owned()
}

/// A token of the demo ID-porten for `body` (`{"pid": …}`, with a fullmakt's
/// `authorization_details` where the test needs one).
pub async fn citizen_token(bru: &Bru, body: Value) -> String {
    let r = send(bru.post("/demo/idporten/token").json(&body)).await;
    r.expect_status(200, "demo idporten token");
    r.json()["access_token"].as_str().unwrap().to_owned()
}

/// A consent the demo's `requester` asks of `subject` for `datasets` and
/// `purpose` (30 days), accepted by the citizen token `citizen`: its id.
pub async fn granted_consent(
    bru: &Bru,
    requester: &str,
    citizen: &str,
    subject: &str,
    datasets: &[&str],
    purpose: &str,
) -> String {
    let valid_to = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let created = send(
        bru.post("/consent/v1/requests")
            .bearer_auth(requester)
            .json(&json!({
                "subject": subject,
                "datasets": datasets,
                "purpose": purpose,
                "valid_to": valid_to,
            })),
    )
    .await;
    created.expect_status(201, "consent request");
    let id = created.json()["id"].as_str().unwrap().to_owned();
    send(
        bru.post(&format!("/citizen/v1/consents/{id}/accept"))
            .bearer_auth(citizen),
    )
    .await
    .expect_status(200, "the citizen accepts");
    id
}
