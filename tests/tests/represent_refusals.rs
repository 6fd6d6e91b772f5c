//! Issue 18 / SPEC 9.3: a refused `Bru-On-Behalf-Of` is something the
//! security team must see. On every citizen endpoint, the proof of a
//! transfer included, it is an `audit_read` record (`deny`,
//! `not_represented`) about the citizen who sent it, under the route's
//! template, and never with the header's value (it may be a person number).
#![allow(clippy::unwrap_used)]

use bru_tests::consent::*;
use bru_tests::represent::*;
use bru_tests::*;
use serde_json::Value;

#[tokio::test]
async fn a_refused_party_is_recorded_on_every_citizen_endpoint_without_the_party() {
    let rw = RepresentWorld::new().await;
    let bru = rw.start().await;
    let kari = rw.citizen_token(KARI);
    let ola = rw.citizen_token(OLA);
    let pers_party = party_of(
        &bru,
        &rw.fullmakt_token(AISHA, PER, &["helse"]),
        "PER HANSEN",
    )
    .await;
    let id = create(&rw, &bru, &request_body(Some(PER), None)).await;
    let endpoints: Vec<(&str, String, &str)> = vec![
        ("GET", "/citizen/v1/consents".into(), "/citizen/v1/consents"),
        (
            "GET",
            format!("/citizen/v1/consents/{id}"),
            "/citizen/v1/consents/{id}",
        ),
        (
            "POST",
            format!("/citizen/v1/consents/{id}/accept"),
            "/citizen/v1/consents/{id}/accept",
        ),
        (
            "POST",
            format!("/citizen/v1/consents/{id}/pause"),
            "/citizen/v1/consents/{id}/pause",
        ),
        (
            "GET",
            format!("/citizen/v1/consents/{id}/receipt"),
            "/citizen/v1/consents/{id}/receipt",
        ),
        ("GET", "/citizen/v1/blocks".into(), "/citizen/v1/blocks"),
        ("POST", "/citizen/v1/blocks".into(), "/citizen/v1/blocks"),
        (
            "GET",
            "/citizen/v1/transfers".into(),
            "/citizen/v1/transfers",
        ),
        // An 11-digit index: the record keeps the template, not the path.
        (
            "GET",
            format!("/citizen/v1/transfers/{PER}/proof"),
            "/citizen/v1/transfers/{index}/proof",
        ),
        (
            "GET",
            "/citizen/v1/transfers/0/proof".into(),
            "/citizen/v1/transfers/{index}/proof",
        ),
    ];
    // (transfer id, route template, whose token)
    let mut refused: Vec<(String, &str, &str)> = Vec::new();
    for forged in [
        pers_party.as_str(),        // another family's party
        "p-AAAAAAAAAAAAAAAAAAAAAA", // a made-up one
        PER,                        // a person number
        EMMA,                       // her own child's number
    ] {
        for (method, path, route) in &endpoints {
            let rb = if *method == "GET" {
                bru.get(path)
            } else {
                bru.post(path)
                    .json(&serde_json::json!({"dataset": "nav/inntekt"}))
            };
            let reply = send(rb.bearer_auth(&kari).header("Bru-On-Behalf-Of", forged)).await;
            let context = format!("{method} {route} for {forged:?}");
            expect_refused(&reply, 403, "not_represented", &context);
            let tid = reply.problem_transfer_id();
            assert_eq!(
                reply.transfer_id().as_deref(),
                Some(tid.as_str()),
                "{context}: the answer names its record"
            );
            refused.push((tid, route, "kari"));
        }
    }
    // Ola's refusal is his, not Kari's.
    let reply = get_for(&bru, &ola, Some(&pers_party), "/citizen/v1/consents").await;
    expect_refused(&reply, 403, "not_represented", "Ola for Per");
    refused.push((reply.problem_transfer_id(), "/citizen/v1/consents", "ola"));

    let (records, jsonl) = rw.export().await;
    for pid in [PER, EMMA, KARI, OLA] {
        assert!(!jsonl.contains(pid), "a person number in the log: {pid}");
    }
    assert!(
        !jsonl.contains(&pers_party),
        "the forged party's value in the log"
    );
    let mut senders: Vec<(&str, Value)> = Vec::new();
    for (tid, route, who) in &refused {
        let r = find_record(&records, tid, "audit_read")
            .unwrap_or_else(|| panic!("no audit_read record of the refusal at {route}"));
        assert_eq!(r["decision"], "deny", "{r}");
        assert_eq!(r["code"], "not_represented", "{r}");
        assert_eq!(r["status"], 403, "{r}");
        assert_eq!(r["path"], *route, "{r}");
        assert!(r["subject_ref"].is_string(), "the sender's pseudonym: {r}");
        senders.push((who, r["subject_ref"].clone()));
    }
    // Every refusal of Kari's is about Kari (one pseudonym), Ola's about Ola.
    let karis: Vec<&Value> = senders
        .iter()
        .filter(|(w, _)| *w == "kari")
        .map(|(_, s)| s)
        .collect();
    assert!(karis.windows(2).all(|w| w[0] == w[1]), "{karis:?}");
    let olas = &senders.last().unwrap().1;
    assert_ne!(olas, karis[0]);
    // And not Per's: a record about Per (K429 asks for his income) has
    // another pseudonym.
    let about_per = inntekt(&bru, &rw.k429_token(), None, PER, PURPOSE_OMSORG).await;
    let (records, _) = rw.export().await;
    let tid = about_per
        .transfer_id()
        .unwrap_or_else(|| about_per.problem_transfer_id());
    let pers = &find_record(&records, &tid, "decision").unwrap()["subject_ref"];
    assert!(pers.is_string());
    assert_ne!(pers, karis[0], "Kari's refusal is recorded as about Per");
}

/// A refusal without a valid token is no one's: 401, and the forged
/// party's value is never looked up (no record names it).
#[tokio::test]
async fn a_party_without_a_valid_token_is_401() {
    let rw = RepresentWorld::new().await;
    let bru = rw.start().await;
    let reply = send(
        bru.get("/citizen/v1/consents")
            .bearer_auth("not-a-token")
            .header("Bru-On-Behalf-Of", PER),
    )
    .await;
    assert_eq!(reply.status, 401, "{}", reply.text());
    let (_, jsonl) = rw.export().await;
    assert!(!jsonl.contains(PER));
}

/// SPEC 9.3: an ended relation ends at the next call, reading too (not
/// after the registry cache's few seconds).
#[tokio::test]
async fn an_ended_relation_ends_at_the_next_read() {
    let rw = RepresentWorld::new().await;
    let bru = rw.start().await;
    let kari = rw.citizen_token(KARI);
    let party = party_of(&bru, &kari, "Emma Nordmann").await;
    get_for(&bru, &kari, Some(&party), "/citizen/v1/consents")
        .await
        .expect_status(200, "Kari reads Emma's consents");
    get_for(&bru, &kari, Some(&party), "/citizen/v1/transfers")
        .await
        .expect_status(200, "Kari reads Emma's log");

    // Responsibility moves to Ola alone: Kari's very next read is refused.
    rw.registry.end_karis_responsibility(birth_years_ago(12));
    for path in ["/citizen/v1/consents", "/citizen/v1/transfers"] {
        expect_refused(
            &get_for(&bru, &kari, Some(&party), path).await,
            403,
            "not_represented",
            &format!("Kari reads {path} after her responsibility ended"),
        );
    }
    // Ola still reads.
    get_for(
        &bru,
        &rw.citizen_token(OLA),
        Some(&party),
        "/citizen/v1/consents",
    )
    .await
    .expect_status(200, "Ola reads Emma's consents");
}
