//! The demo world's citizen protections (SPEC 10), the walkthrough's two
//! stories against `bru demo`: K429's home-care call passes Kari's block on
//! `helsenorge/hjemmetjeneste` with `Bru-Break-Glass` and is recorded with
//! its reason; Politiet (demo) reads her social-service case, recorded with
//! its 30-day delay and in the audit API, but not in Kari's access log.
//! Any store (the demo's own SQLite, or BRU_TEST_POSTGRES_URL).
#![allow(clippy::unwrap_used)]

use bru_tests::demo;
use bru_tests::*;
use serde_json::{json, Value};

const POLICE: &str = "974760002";

/// The audit API's decision record of `transfer_id` (K429 reads the audit log).
async fn audited(bru: &Bru, transfer_id: &str) -> Value {
    let audit = demo::machine_token(bru, K429, "bru:audit").await;
    let reply = send(
        bru.get("/audit/v1/records?kind=decision&limit=500")
            .bearer_auth(audit),
    )
    .await;
    reply.expect_status(200, "GET /audit/v1/records");
    reply.json()["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["transfer_id"] == transfer_id)
        .cloned()
        .unwrap_or_else(|| panic!("the audit API lacks {transfer_id}"))
}

async fn home_care(bru: &Bru, k429: &str, consent: &str, reason: Option<&str>) -> Reply {
    let mut rb = bru
        .get(&format!("/data/helsenorge/hjemmetjeneste?patient={KARI}"))
        .bearer_auth(k429)
        .header("Bru-Purpose", PURPOSE_OMSORG)
        .header("Bru-Consent", consent);
    if let Some(r) = reason {
        rb = rb.header(
            "Bru-Break-Glass",
            reqwest::header::HeaderValue::from_bytes(r.as_bytes()).unwrap(),
        );
    }
    send(rb).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_has_break_glass_on_home_care_and_a_delayed_police_district() {
    let (_dir, bru) = demo::start("bru-demo-").await;
    let k429 = demo::machine_token(
        &bru,
        K429,
        "nav:inntekt.read helsenorge:hjemmetjeneste.read bru:consent",
    )
    .await;
    let kari = demo::citizen_token(&bru, json!({"pid": KARI})).await;

    // Kari approves K429's request, then blocks K429.
    let id = demo::granted_consent(
        &bru,
        &k429,
        &kari,
        KARI,
        &["nav/inntekt", "helsenorge/hjemmetjeneste"],
        PURPOSE_OMSORG,
    )
    .await;
    send(
        bru.post("/citizen/v1/blocks")
            .bearer_auth(&kari)
            .json(&json!({"consumer": format!("0192:{K429}")})),
    )
    .await
    .expect_status(201, "Kari blocks K429");
    home_care(&bru, &k429, &id, None).await.expect_problem(
        403,
        "blocked_by_subject",
        "the block holds",
    );

    // Break-glass passes it, recorded with the reason.
    let reason = "Akutt: Kari svarer ikke på døra, hjemmesykepleien går inn";
    let reply = home_care(&bru, &k429, &id, Some(reason)).await;
    reply.expect_status(200, "break-glass on home care");
    let glass = reply.transfer_id().unwrap();
    let record = audited(&bru, &glass).await;
    assert_eq!(record["break_glass"], reason, "{record}");
    assert_eq!(record["decision"], "allow");

    // Politiet (demo) reads her social-service case for an investigation.
    let police = demo::machine_token(&bru, POLICE, "k429:sosialtjeneste.read").await;
    let reply = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(&police)
            .header("Bru-Purpose", "etterforskning")
            .header("Nav-Personident", KARI),
    )
    .await;
    reply.expect_status(200, "the police read the case");
    let police_transfer = reply.transfer_id().unwrap();
    let record = audited(&bru, &police_transfer).await;
    assert_eq!(record["disclosure_delay_days"], 30, "{record}");
    // Not for NAV's purpose, and NAV not for the police's.
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(&police)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await
    .expect_problem(
        403,
        "purpose_not_allowed",
        "the police for social assistance",
    );
    let nav = demo::machine_token(&bru, NAV, "k429:sosialtjeneste.read").await;
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(&nav)
            .header("Bru-Purpose", "etterforskning")
            .header("Nav-Personident", KARI),
    )
    .await
    .expect_problem(403, "purpose_not_allowed", "NAV for an investigation");

    // Kari's access log: the break-glass call, not the police's.
    let log = send(
        bru.get("/citizen/v1/transfers?limit=500")
            .bearer_auth(&kari),
    )
    .await;
    log.expect_status(200, "Kari's access log");
    let ids: Vec<String> = log.json()["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["transfer_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.contains(&glass), "{ids:?}");
    assert!(!ids.contains(&police_transfer), "{ids:?}");
}
