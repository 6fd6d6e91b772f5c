//! Every `consent_*` refusal of the data plane, and object-level
//! authorization: a consent is usable exactly as far as the citizen allowed —
//! by its requester (or the supplier the policy names), for its datasets,
//! its purpose and its subject, while granted, unexpired and not used up.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bru_tests::consent::*;
use bru_tests::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_consent_code() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    let omsorg = PURPOSE_OMSORG;

    // consent_required: no Bru-Consent at all.
    inntekt(&bru, &k429, None, KARI, omsorg)
        .await
        .expect_problem(403, "consent_required", "no Bru-Consent");

    // consent_not_found: an id nobody issued, and one that is not even an id.
    let unknown = uuid::Uuid::new_v4().to_string();
    for id in [unknown.as_str(), "not-a-consent", "../../etc/passwd"] {
        inntekt(&bru, &k429, Some(id), KARI, omsorg)
            .await
            .expect_problem(403, "consent_not_found", "an unknown consent id");
    }

    // A rejected request is no consent.
    let rejected = create(&cw, &bru, &request_body(Some(KARI), None)).await;
    citizen_action(&cw, &bru, KARI, &rejected, "reject")
        .await
        .expect_status(200, "Kari rejects");
    inntekt(&bru, &k429, Some(&rejected), KARI, omsorg)
        .await
        .expect_problem(403, "consent_not_found", "a rejected request");

    // consent_revoked.
    let revoked = granted(&cw, &bru, KARI, None).await;
    inntekt(&bru, &k429, Some(&revoked), KARI, omsorg)
        .await
        .expect_status(200, "before revoking");
    citizen_action(&cw, &bru, KARI, &revoked, "revoke")
        .await
        .expect_status(200, "Kari revokes");
    inntekt(&bru, &k429, Some(&revoked), KARI, omsorg)
        .await
        .expect_problem(403, "consent_revoked", "after revoking");

    // consent_exhausted: two uses, then no more.
    let two = granted(&cw, &bru, KARI, Some(2)).await;
    for n in 1..=2 {
        inntekt(&bru, &k429, Some(&two), KARI, omsorg)
            .await
            .expect_status(200, &format!("use {n} of 2"));
    }
    inntekt(&bru, &k429, Some(&two), KARI, omsorg)
        .await
        .expect_problem(403, "consent_exhausted", "the third use of two");
    // Used up on one dataset is used up on all.
    hjemmetjeneste(&bru, &k429, &two, KARI)
        .await
        .expect_problem(403, "consent_exhausted", "home care after two uses");

    // consent_mismatch: another dataset, another purpose, another organisation.
    let income_only = create(
        &cw,
        &bru,
        &json!({"subject": KARI, "datasets": ["nav/inntekt"], "purpose": omsorg, "valid_to": in_secs(3600)}),
    )
    .await;
    citizen_action(&cw, &bru, KARI, &income_only, "accept")
        .await
        .expect_status(200, "accept");
    hjemmetjeneste(&bru, &k429, &income_only, KARI)
        .await
        .expect_problem(
            403,
            "consent_mismatch",
            "a dataset the consent does not cover",
        );
    inntekt(&bru, &k429, Some(&income_only), KARI, PURPOSE_TILSYN)
        .await
        .expect_problem(403, "consent_mismatch", "a purpose the consent is not for");
    inntekt(
        &bru,
        &cw.other_requester_token(),
        Some(&income_only),
        KARI,
        omsorg,
    )
    .await
    .expect_problem(403, "consent_mismatch", "another organisation's consent");

    // consent_subject_mismatch: Kari's consent used for Ola.
    inntekt(&bru, &k429, Some(&income_only), OLA, omsorg)
        .await
        .expect_problem(403, "consent_subject_mismatch", "another subject");
    let care = send(
        bru.get(&format!("/data/helsenorge/hjemmetjeneste?patient={AISHA}"))
            .bearer_auth(&k429)
            .header("Bru-Purpose", omsorg)
            .header("Bru-Consent", &two),
    )
    .await;
    // Exhausted is checked before the subject: the citizen's limit counts first.
    care.expect_problem(
        403,
        "consent_exhausted",
        "another subject on a used-up consent",
    );

    // None of the refused calls used up anything or reached a provider.
    let income = get_request(&bru, &k429, &income_only).await.json();
    assert_eq!(income["uses"], 0);
    assert_eq!(
        event_types(&bru, &k429, &income_only).await,
        ["created", "accepted"]
    );
    assert_eq!(
        cw.nav.count(),
        3,
        "only the three allowed calls reached NAV"
    );
    cw.helsenorge
        .assert_untouched("every home-care call was refused");

    // Every refusal is recorded with its code, under the consent it named.
    let records = cw
        .wait_records("the refusals", |r| {
            r.iter().any(|r| r["code"] == "consent_subject_mismatch")
        })
        .await;
    let denied: Vec<&str> = records
        .iter()
        .filter(|r| r["kind"] == "decision" && r["decision"] == "deny")
        .filter_map(|r| r["code"].as_str())
        .collect();
    for code in [
        "consent_required",
        "consent_not_found",
        "consent_revoked",
        "consent_exhausted",
        "consent_mismatch",
        "consent_subject_mismatch",
    ] {
        assert!(denied.contains(&code), "no {code} record in {denied:?}");
    }
    assert!(records
        .iter()
        .any(|r| r["code"] == "consent_revoked" && r["consent_id"] == revoked.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_takes_effect_on_the_next_call() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    let valid_for = 4;
    let valid_to = time::OffsetDateTime::now_utc() + time::Duration::seconds(valid_for);
    let mut body = request_body(Some(KARI), None);
    body["valid_to"] = json!(in_secs(valid_for));
    let id = create(&cw, &bru, &body).await;
    citizen_action(&cw, &bru, KARI, &id, "accept")
        .await
        .expect_status(200, "accept");
    inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
        .await
        .expect_status(200, "while valid");

    // Wait until valid_to has passed by the wall clock (not a timing assertion:
    // the assertion below holds however long this takes).
    let left = valid_to - time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(left.whole_milliseconds().max(0)).unwrap() + 500,
    ))
    .await;
    inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
        .await
        .expect_problem(403, "consent_expired", "the first call after valid_to");
    hjemmetjeneste(&bru, &k429, &id, KARI).await.expect_problem(
        403,
        "consent_expired",
        "the next one too",
    );

    let request = get_request(&bru, &k429, &id).await.json();
    assert_eq!(request["status"], "expired");
    assert_eq!(
        event_types(&bru, &k429, &id).await,
        ["created", "accepted", "used", "expired"]
    );
    // An expired consent cannot be revoked or accepted any more.
    let again = citizen_action(&cw, &bru, KARI, &id, "revoke").await;
    assert_eq!(again.expect_problem_status(409), "invalid_transition");
    let mine = send(
        bru.get("/citizen/v1/consents")
            .bearer_auth(cw.citizen_token(KARI)),
    )
    .await
    .json();
    assert_eq!(mine["past"][0]["status"], "expired");
}

/// The problem code of a reply with this status (citizen API problems carry
/// no transfer id, so the data plane's shape check does not apply).
trait ProblemStatus {
    fn expect_problem_status(&self, status: u16) -> String;
}

impl ProblemStatus for Reply {
    fn expect_problem_status(&self, status: u16) -> String {
        self.expect_status(status, "problem");
        assert!(self
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/problem+json")));
        self.code().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_is_only_its_requesters_and_its_citizens() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    let other = cw.other_requester_token();
    let pending = create(&cw, &bru, &request_body(Some(KARI), None)).await;
    let id = granted(&cw, &bru, KARI, Some(5)).await;

    // Another organisation cannot read K429's requests: 404, as if absent.
    for request in [&pending, &id] {
        let reply = get_request(&bru, &other, request).await;
        assert_eq!(reply.expect_problem_status(404), "not_found");
    }
    let listed = send(bru.get("/consent/v1/requests").bearer_auth(&other)).await;
    listed.expect_status(200, "the other organisation's list");
    assert_eq!(listed.json()["requests"], json!([]));
    // K429's supplier, named in the policy, reads them as K429 does.
    get_request(&bru, &cw.omsorgsapp_token(), &id)
        .await
        .expect_status(200, "K429's supplier reads K429's request");
    // A supplier the policy does not name is refused the API altogether.
    let snoop = cw.supplier_token(K429, SNOOP, &k429_scopes());
    let reply = get_request(&bru, &snoop, &id).await;
    reply.expect_status(403, "an unnamed supplier");
    assert_eq!(reply.code().as_deref(), Some("consumer_not_allowed"));

    // Another citizen can neither accept nor revoke Kari's consents.
    for (consent, action) in [(&pending, "accept"), (&pending, "reject"), (&id, "revoke")] {
        let reply = citizen_action(&cw, &bru, OLA, consent, action).await;
        assert_eq!(
            reply.expect_problem_status(404),
            "not_found",
            "Ola {action}"
        );
    }
    let receipt = send(
        bru.get(&format!("/citizen/v1/consents/{id}/receipt"))
            .bearer_auth(cw.citizen_token(OLA)),
    )
    .await;
    receipt.expect_status(404, "Ola asks for Kari's receipt");
    assert_eq!(
        get_request(&bru, &k429, &pending).await.json()["status"],
        "pending"
    );
    assert_eq!(
        get_request(&bru, &k429, &id).await.json()["status"],
        "granted"
    );

    // The consent used by anyone but K429 (or its named supplier), or for
    // anything but what Kari allowed, is refused.
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (
            cw.other_requester_token(),
            KARI,
            PURPOSE_OMSORG,
            "consent_mismatch",
        ),
        (snoop.clone(), KARI, PURPOSE_OMSORG, "consumer_not_allowed"),
        (
            cw.mp_token(SNOOP, SCOPE_INNTEKT),
            KARI,
            PURPOSE_OMSORG,
            "consumer_not_allowed",
        ),
        (
            k429.clone(),
            OLA,
            PURPOSE_OMSORG,
            "consent_subject_mismatch",
        ),
        (k429.clone(), KARI, PURPOSE_TILSYN, "consent_mismatch"),
    ];
    for (token, subject, purpose, code) in &cases {
        inntekt(&bru, token, Some(&id), subject, purpose)
            .await
            .expect_problem(403, code, "a use Kari did not allow");
    }
    // Kari's own uses still work, by K429 and by its named supplier.
    inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
        .await
        .expect_status(200, "K429");
    inntekt(
        &bru,
        &cw.omsorgsapp_token(),
        Some(&id),
        KARI,
        PURPOSE_OMSORG,
    )
    .await
    .expect_status(200, "K429's supplier");
    let request = get_request(&bru, &k429, &id).await.json();
    assert_eq!(request["uses"], 2, "refused calls use up nothing");
}
