//! Issue 15, "nothing a caller writes reaches a citizen", through the
//! citizen's JSON API (`/citizen/v1/transfers`): purposes by their policy
//! title only, an unknown purpose as such without its text, "your consent"
//! only for the citizen's own consent, and a refusal reason that follows
//! the refusal code.
#![allow(clippy::unwrap_used)]

use bru_tests::consent::*;
use bru_tests::*;
use serde_json::Value;

const CALLER_TEXT: &str = "Ring-815-00000-for-aa-stoppe-innkreving";

async fn transfers(bru: &Bru, cw: &ConsentWorld, pid: &str) -> (Vec<Value>, String) {
    let reply = send(
        bru.get("/citizen/v1/transfers")
            .bearer_auth(cw.citizen_token(pid)),
    )
    .await;
    reply.expect_status(200, "the citizen's access log");
    let text = reply.text();
    let transfers = reply.json()["transfers"].as_array().unwrap().clone();
    (transfers, text)
}

fn by_code<'a>(transfers: &'a [Value], code: &str) -> &'a Value {
    transfers
        .iter()
        .find(|t| t["code"] == code)
        .unwrap_or_else(|| panic!("no transfer refused as {code}: {transfers:?}"))
}

#[tokio::test]
async fn a_citizen_sees_policy_words_and_only_their_own_consent() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let k429 = cw.mp_token(K429, SCOPE_INNTEKT);

    // Kari's consent and Ola's, both granted.
    let karis = create(&cw, &bru, &request_body(Some(KARI), None)).await;
    citizen_action(&cw, &bru, KARI, &karis, "accept")
        .await
        .expect_status(200, "Kari accepts");
    let olas = create(&cw, &bru, &request_body(Some(OLA), None)).await;
    citizen_action(&cw, &bru, OLA, &olas, "accept")
        .await
        .expect_status(200, "Ola accepts");

    // Snoop AS, with no rights, writes its own words as the purpose.
    inntekt(
        &bru,
        &cw.mp_token(SNOOP, SCOPE_INNTEKT),
        None,
        KARI,
        CALLER_TEXT,
    )
    .await
    .expect_problem(403, "consumer_not_allowed", "Snoop about Kari");
    // K429 with a purpose the dataset does not allow, and without the scope.
    inntekt(&bru, &k429, Some(&karis), KARI, PURPOSE_SOSIAL)
        .await
        .expect_problem(403, "purpose_not_allowed", "a wrong purpose");
    inntekt(
        &bru,
        &cw.mp_token(K429, "bru:consent"),
        Some(&karis),
        KARI,
        PURPOSE_OMSORG,
    )
    .await
    .expect_problem(403, "insufficient_scope", "no nav:inntekt.read");
    // Kari's consent id, sent in a call about Ola; then Ola's own.
    inntekt(&bru, &k429, Some(&karis), OLA, PURPOSE_OMSORG)
        .await
        .expect_problem(403, "consent_subject_mismatch", "Kari's consent about Ola");
    inntekt(&bru, &k429, Some(&olas), OLA, PURPOSE_OMSORG)
        .await
        .expect_status(200, "Ola's consent about Ola");

    let (kari_log, kari_text) = transfers(&bru, &cw, KARI).await;
    // The caller's words are nowhere in what Kari is given.
    assert!(!kari_text.contains(CALLER_TEXT), "{kari_text}");
    assert!(!kari_text.contains("Ring-815"), "{kari_text}");
    let snoop = by_code(&kari_log, "consumer_not_allowed");
    assert_eq!(snoop["purpose"]["known"], false, "{snoop}");
    assert!(snoop["purpose"]["id"].is_null(), "{snoop}");
    assert_eq!(
        snoop["purpose"]["title"]["nb"],
        "ukjent formål (oppgitt av virksomheten)"
    );
    assert_eq!(
        snoop["purpose"]["title"]["en"],
        "unknown purpose (stated by the organisation)"
    );
    assert!(snoop.get("path").is_none(), "no caller path: {snoop}");
    assert_eq!(
        snoop["reason"]["en"],
        "The organisation is not allowed to fetch this information."
    );

    // A known purpose by its policy title.
    let wrong = by_code(&kari_log, "purpose_not_allowed");
    assert_eq!(wrong["purpose"]["known"], true);
    assert_eq!(wrong["purpose"]["id"], PURPOSE_SOSIAL);
    assert!(wrong["purpose"]["title"]["nb"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    // The reason follows the code: not "not allowed" for a wrong purpose or a missing scope.
    assert_eq!(
        wrong["reason"]["en"],
        "The purpose the organisation gave is not allowed for this information."
    );
    assert_eq!(
        wrong["reason"]["nb"],
        "Formålet virksomheten oppga, er ikke tillatt for disse opplysningene."
    );
    let scope = by_code(&kari_log, "insufficient_scope");
    assert_eq!(
        scope["reason"]["en"],
        "The organisation lacked the access needed for this information."
    );
    // Kari's own consent, referred to in a call about her, is hers.
    assert_eq!(wrong["consent"], "yours");
    assert_eq!(wrong["consent_id"], karis.as_str());

    // In Ola's log, Kari's consent id is neither "his consent" nor shown.
    let (ola_log, ola_text) = transfers(&bru, &cw, OLA).await;
    let mismatch = by_code(&ola_log, "consent_subject_mismatch");
    assert_eq!(mismatch["consent"], "not_yours", "{mismatch}");
    assert!(mismatch["consent_id"].is_null(), "{mismatch}");
    assert!(!ola_text.contains(&karis), "{ola_text}");
    assert_eq!(
        mismatch["reason"]["en"],
        "The consent was about another person."
    );
    let allowed = ola_log
        .iter()
        .find(|t| t["decision"] == "allow")
        .expect("Ola's allowed transfer");
    assert_eq!(allowed["consent"], "yours");
    assert_eq!(allowed["consent_id"], olas.as_str());
    assert!(allowed["reason"].is_null());
    assert_eq!(allowed["purpose"]["title"]["nb"], "Søknad om omsorgsbolig");
}
