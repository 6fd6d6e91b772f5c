//! SPEC section 4 end to end: K429 asks Kari for consent, Kari grants it
//! through the citizen API, K429 (and its supplier) fetch NAV income and
//! helsenorge home care under it, minimised; Kari reads her access log and
//! her signed receipt, revokes, and the very next call is refused. No person
//! number reaches bru's logs or the audit records.
#![allow(clippy::unwrap_used)]

use bru_tests::consent::*;
use bru_tests::*;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

/// NAV-like provider JSON, as the demo's NAV answers (SPEC section 8): one
/// row per year, with the person, employers and benefits around `aar`/`sum`.
fn nav_answer() -> Value {
    json!([
        {
            "aar": 2024,
            "sum": 480000,
            "inntektsmottaker": {"personident": KARI, "navn": "Kari Nordmann"},
            "arbeidsgivere": [{"orgnr": "974760673", "navn": "Sykehuset", "sum": 400000}],
            "ytelser": [{"type": "uforetrygd", "beloep": 80000}],
            "merknad": "kun for saksbehandler"
        },
        {
            "aar": 2023,
            "sum": 450000,
            "arbeidsgivere": [{"orgnr": "974760673", "navn": "Sykehuset", "sum": 450000}]
        }
    ])
}

/// A FHIR searchset with a Patient, two CarePlans, a Condition and an Observation.
fn fhir_answer() -> Value {
    let entry = |resource: Value| json!({ "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()), "resource": resource });
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 5,
        "entry": [
            entry(json!({"resourceType": "Patient", "id": "p1",
                "identifier": [{"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": KARI}],
                "name": [{"family": "Nordmann", "given": ["Kari"]}]})),
            entry(json!({"resourceType": "CarePlan", "id": "cp1", "status": "active", "intent": "plan",
                "title": "Hjemmesykepleie", "subject": {"reference": "Patient/p1"}})),
            entry(json!({"resourceType": "Condition", "id": "c1", "code": {"text": "Diabetes type 2"},
                "subject": {"reference": "Patient/p1"}})),
            entry(json!({"resourceType": "CarePlan", "id": "cp2", "status": "active", "intent": "plan",
                "title": "Praktisk bistand", "subject": {"reference": "Patient/p1"}})),
            entry(json!({"resourceType": "Observation", "id": "o1", "status": "final",
                "code": {"text": "HbA1c"}, "subject": {"reference": "Patient/p1"}})),
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omsorgsbolig_story_end_to_end() {
    // Debug logging, so that the check below covers as much as bru ever logs.
    let cw = ConsentWorld::with(TestWorld::builder().env("RUST_LOG", "debug")).await;
    cw.nav.set_body(nav_answer());
    cw.helsenorge.set_body(fhir_answer());
    let bru = cw.start().await;
    let k429 = cw.k429_token();

    // K429 asks Kari.
    let reply = post_request(&bru, &k429, &request_body(Some(KARI), Some(10))).await;
    reply.expect_status(201, "K429 asks for consent");
    let created = reply.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "a consent id is a UUID: {id}"
    );
    assert_eq!(created["status"], "pending");
    let citizen_url = created["citizen_url"].as_str().unwrap();
    assert_eq!(citizen_url, format!("https://localhost:8443/samtykke/{id}"));
    assert!(PERSONS.iter().all(|p| !citizen_url.contains(p)));
    assert_eq!(
        reply.header("location"),
        Some(format!("/consent/v1/requests/{id}").as_str())
    );

    let request = get_request(&bru, &k429, &id).await;
    request.expect_status(200, "K429 reads its request");
    let request = request.json();
    assert_eq!(request["status"], "pending");
    assert_eq!(
        request["datasets"],
        json!(["nav/inntekt", "helsenorge/hjemmetjeneste"])
    );
    assert_eq!(request["purpose"], PURPOSE_OMSORG);
    assert_eq!(
        (request["uses"].as_u64(), request["max_uses"].as_u64()),
        (Some(0), Some(10))
    );
    assert_eq!(event_types(&bru, &k429, &id).await, ["created"]);
    let valid_to = request["valid_to"].as_str().unwrap().to_owned();

    // Until Kari answers, the consent is not there to use.
    inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
        .await
        .expect_problem(403, "consent_required", "a pending consent");
    cw.nav.assert_untouched("before Kari's consent");

    // Kari sees the request, in plain terms, and grants it.
    let kari = cw.citizen_token(KARI);
    let mine = send(bru.get("/citizen/v1/consents").bearer_auth(&kari)).await;
    mine.expect_status(200, "Kari lists her consents");
    let mine = mine.json();
    let pending = &mine["pending"];
    assert_eq!(pending.as_array().unwrap().len(), 1, "{mine}");
    let shown = &pending[0];
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(
        shown["requester"],
        json!({"org": K429, "name": "K429 kommune"})
    );
    assert_eq!(shown["purpose"]["title"]["nb"], "Søknad om omsorgsbolig");
    assert_eq!(shown["datasets"][0]["title"]["nb"], "Inntekt");
    assert_eq!(shown["datasets"][0]["provider"]["name"], "NAV (test)");
    assert_eq!(shown["datasets"][1]["title"]["en"], "Home care");
    assert_eq!(shown["datasets"][1]["provider"]["org"], HELSENORGE);
    assert_eq!(shown["valid_to"], valid_to.as_str());
    assert!(mine["active"].as_array().unwrap().is_empty());

    let accepted = citizen_action(&cw, &bru, KARI, &id, "accept").await;
    accepted.expect_status(200, "Kari accepts");
    assert_eq!(accepted.json()["status"], "granted");

    // K429 fetches NAV income: only each row's aar and sum survive (not the
    // employers' nested `sum`: masks are paths from the root).
    let income = inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG).await;
    income.expect_status(200, "K429 reads NAV income under consent");
    assert_eq!(
        income.json(),
        json!([{"aar": 2024, "sum": 480000}, {"aar": 2023, "sum": 450000}])
    );
    let seen = cw.nav.requests().pop().unwrap();
    assert_eq!(seen.header("nav-personident"), Some(KARI));
    assert_eq!(
        seen.header("bru-consent"),
        None,
        "Bru-Consent is not forwarded"
    );
    assert_eq!(seen.header("bru-legal-basis"), Some("consent"));
    let (_, assertion) = peek(seen.header("bru-assertion").unwrap());
    assert_eq!(assertion["consent_id"], id.as_str());

    // ... and helsenorge home care: only the CarePlans.
    let care = hjemmetjeneste(&bru, &k429, &id, KARI).await;
    care.expect_status(200, "K429 reads home care under consent");
    let bundle = care.json();
    let entries = bundle["entry"].as_array().unwrap();
    let types: Vec<&str> = entries
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["CarePlan", "CarePlan"], "{bundle}");
    assert_eq!(bundle["total"], 2);
    assert!(!care.text().contains(KARI) && !care.text().contains("Diabetes"));
    assert_eq!(
        cw.helsenorge.requests().pop().unwrap().query.as_deref(),
        Some(format!("patient={KARI}").as_str())
    );

    // Omsorgsapp AS, acting for K429 as the policy allows, uses the same consent.
    inntekt(
        &bru,
        &cw.omsorgsapp_token(),
        Some(&id),
        KARI,
        PURPOSE_OMSORG,
    )
    .await
    .expect_status(200, "K429's supplier under K429's consent");

    // Kari's access log shows every decision about her, allowed or denied.
    let log = send(bru.get("/citizen/v1/transfers").bearer_auth(&kari)).await;
    log.expect_status(200, "Kari reads her transfers");
    let log = log.json();
    let transfers = log["transfers"].as_array().unwrap();
    assert_eq!(transfers.len(), 4, "{log}");
    assert_eq!(transfers[0]["decision"], "deny");
    assert_eq!(transfers[0]["code"], "consent_required");
    for t in &transfers[1..] {
        assert_eq!(t["decision"], "allow", "{t}");
        assert_eq!(t["consent_id"], id.as_str());
        assert_eq!(t["basis"], "consent");
        assert_eq!(
            t["organisation"],
            json!({"org": K429, "name": "K429 kommune"})
        );
        assert_eq!(t["purpose"]["id"], PURPOSE_OMSORG);
        assert!(t["time"].is_string() && t["transfer_id"].is_string());
    }
    assert_eq!(transfers[1]["dataset"]["id"], "nav/inntekt");
    assert_eq!(transfers[1]["dataset"]["provider"]["name"], "NAV (test)");
    assert_eq!(transfers[2]["dataset"]["id"], "helsenorge/hjemmetjeneste");
    assert_eq!(
        transfers[2]["dataset"]["provider"]["name"],
        "Helsenorge (test)"
    );
    assert_eq!(
        transfers[3]["supplier"],
        json!({"org": OMSORGSAPP, "name": "Omsorgsapp AS"})
    );
    assert!(log["next_cursor"].is_null());
    // Ola's log has none of it.
    let ola_log = send(
        bru.get("/citizen/v1/transfers")
            .bearer_auth(cw.citizen_token(OLA)),
    )
    .await;
    assert_eq!(ola_log.json()["transfers"], json!([]));

    // The receipt verifies with the gateway's published key alone.
    let receipt = send(
        bru.get(&format!("/citizen/v1/consents/{id}/receipt"))
            .bearer_auth(&kari),
    )
    .await;
    receipt.expect_status(200, "Kari's receipt");
    assert_eq!(receipt.header("content-type"), Some("application/jwt"));
    let jwks = send(bru.get("/.well-known/jwks.json")).await.json();
    let (header, claims) = verify_receipt(&receipt.text(), &jwks);
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(claims["version"], "KI-CR-v1.1.0");
    assert_eq!(claims["jurisdiction"], "NO");
    assert_eq!(claims["language"], "nb");
    assert_eq!(claims["piiPrincipalId"], KARI);
    assert_eq!(claims["piiControllers"][0]["piiController"], "K429 kommune");
    assert!(claims["consentReceiptID"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert!(claims["consentTimestamp"]
        .as_i64()
        .is_some_and(|t| (now() - t).abs() < 600));
    assert!(claims["collectionMethod"].is_string() && claims["policyUrl"].is_string());
    assert_eq!(claims["publicKey"]["kid"], header["kid"]);
    let purpose = &claims["services"][0]["purposes"][0];
    assert_eq!(purpose["consentType"], "EXPLICIT");
    assert_eq!(purpose["purposeCategory"], json!([PURPOSE_OMSORG]));
    assert_eq!(
        purpose["piiCategory"],
        json!(["nav/inntekt", "helsenorge/hjemmetjeneste"])
    );
    assert_eq!(purpose["termination"], valid_to.as_str());
    // Home care is health data: a special category.
    assert_eq!(claims["sensitive"], true);
    assert_eq!(claims["spiCat"], json!(["health"]));
    assert_eq!(claims["consent_id"], id.as_str());
    // A changed receipt does not verify: the check above can fail.
    let (h, _, sig) = segments(&receipt.text());
    let mut forged = claims.clone();
    forged["piiPrincipalId"] = json!(OLA);
    let forged = format!("{h}.{}.{sig}", b64u(forged.to_string()));
    assert!(
        try_verify_receipt(&forged, &jwks).is_err(),
        "a forged receipt verified"
    );

    // Kari revokes; the very next call is refused.
    let revoked = citizen_action(&cw, &bru, KARI, &id, "revoke").await;
    revoked.expect_status(200, "Kari revokes");
    assert_eq!(revoked.json()["status"], "revoked");
    let calls_before = cw.nav.count();
    inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
        .await
        .expect_problem(403, "consent_revoked", "the call right after revoking");
    assert_eq!(
        cw.nav.count(),
        calls_before,
        "nothing forwarded after revoking"
    );

    // Every transition left its event; the uses are counted.
    let request = get_request(&bru, &k429, &id).await.json();
    assert_eq!(request["status"], "revoked");
    assert_eq!(request["uses"], 3);
    let events: Vec<&str> = request["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["created", "accepted", "used", "used", "used", "revoked"]
    );
    assert!(request["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["at"].as_str().is_some_and(|at| at.ends_with('Z'))));

    let past = send(bru.get("/citizen/v1/consents").bearer_auth(&kari))
        .await
        .json();
    assert_eq!(past["past"][0]["id"], id.as_str());
    assert_eq!(past["past"][0]["status"], "revoked");

    // The refusal is in Kari's log too.
    let log = send(bru.get("/citizen/v1/transfers").bearer_auth(&kari))
        .await
        .json();
    let last = log["transfers"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(
        (last["decision"].as_str(), last["code"].as_str()),
        (Some("deny"), Some("consent_revoked"))
    );

    // No person number in the audit records or bru's own output.
    let records = cw
        .wait_records("outcome records of the allowed calls", |r| {
            r.iter().filter(|r| r["kind"] == "outcome").count() >= 3
        })
        .await;
    let (_, raw) = cw.export().await;
    for p in PERSONS {
        assert!(!raw.contains(p), "a person number is in the audit export");
    }
    assert!(records
        .iter()
        .filter(|r| r["kind"] == "decision")
        .all(|r| r["subject_ref"].is_string()));
    let logs = bru.logs();
    assert!(
        logs.contains("DEBUG") || logs.contains("debug"),
        "debug logging is on"
    );
    for p in PERSONS {
        assert!(!logs.contains(p), "a person number is in bru's logs");
    }
}

/// Verifies a receipt with jsonwebtoken and the JWK whose `kid` the receipt names.
fn try_verify_receipt(jws: &str, jwks: &Value) -> Result<(Value, Value), String> {
    let header = jsonwebtoken::decode_header(jws).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
        .ok_or("kid not in the JWKS")?;
    let jwk: Jwk = serde_json::from_value(jwk.clone()).map_err(|e| e.to_string())?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_required_spec_claims::<&str>(&[]);
    validation.validate_exp = false;
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Value>(jws, &key, &validation).map_err(|e| e.to_string())?;
    let (header_json, _) = peek(jws);
    Ok((header_json, data.claims))
}

fn verify_receipt(jws: &str, jwks: &Value) -> (Value, Value) {
    try_verify_receipt(jws, jwks).unwrap_or_else(|e| panic!("the receipt does not verify: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_subject_becomes_the_accepting_citizens() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    let id = create(&cw, &bru, &request_body(None, None)).await;

    // Anyone with the link may open it while nobody has answered.
    for pid in [KARI, OLA] {
        let shown = send(
            bru.get(&format!("/citizen/v1/consents/{id}"))
                .bearer_auth(cw.citizen_token(pid)),
        )
        .await;
        shown.expect_status(200, "an open request");
        assert_eq!(shown.json()["status"], "pending");
    }

    citizen_action(&cw, &bru, KARI, &id, "accept")
        .await
        .expect_status(200, "Kari takes the open request");
    // Now it is Kari's: Ola neither sees nor touches it.
    let ola_view = send(
        bru.get(&format!("/citizen/v1/consents/{id}"))
            .bearer_auth(cw.citizen_token(OLA)),
    )
    .await;
    ola_view.expect_status(404, "Ola opens Kari's consent");
    assert_eq!(ola_view.code().as_deref(), Some("not_found"));
    for action in ["revoke", "accept", "reject"] {
        citizen_action(&cw, &bru, OLA, &id, action)
            .await
            .expect_status(404, "Ola acts on Kari's consent");
    }
    let mine = send(
        bru.get("/citizen/v1/consents")
            .bearer_auth(cw.citizen_token(KARI)),
    )
    .await
    .json();
    assert_eq!(mine["active"][0]["id"], id.as_str());

    // NAV's demo answers with a top-level array: it stays one, minimised.
    cw.nav.set_body(json!([
        {"aar": 2024, "sum": 331100, "arbeidsgivere": [{"orgnr": "974760673", "beloep": 331100}]},
        {"aar": 2025, "sum": 283400, "inntektsmottaker": {"personident": KARI}}
    ]));
    let income = inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG).await;
    income.expect_status(200, "K429 under the consent Kari took");
    assert_eq!(
        income.json(),
        json!([{"aar": 2024, "sum": 331100}, {"aar": 2025, "sum": 283400}])
    );
    inntekt(&bru, &k429, Some(&id), OLA, PURPOSE_OMSORG)
        .await
        .expect_problem(403, "consent_subject_mismatch", "the consent used for Ola");
    assert_eq!(
        event_types(&bru, &k429, &id).await,
        ["created", "accepted", "used"]
    );
}
