//! What the provider receives (headers, Bru-Assertion), what the caller gets
//! back (transfer id, minimised JSON), what the audit records say, and what
//! never shows up in records or logs (person numbers, tokens).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bru_tests::*;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const LEGAL_REF: &str = "sosialtjenesteloven § 43 (illustrativ)";

async fn started() -> (TestWorld, Bru) {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    (world, bru)
}

/// Verifies a `Bru-Assertion` with the key from `/.well-known/jwks.json`; returns its claims.
async fn verify_assertion(bru: &Bru, assertion: &str) -> Value {
    let jwks = send(bru.get("/.well-known/jwks.json")).await;
    jwks.expect_status(200, "GET /.well-known/jwks.json");
    let jwks = jwks.json();
    let header = jsonwebtoken::decode_header(assertion).expect("assertion header");
    assert_eq!(header.alg, Algorithm::ES256, "Bru-Assertion must be ES256");
    let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
    let key = keys
        .iter()
        .find(|k| match &header.kid {
            Some(kid) => k["kid"] == kid.as_str(),
            None => k["kty"] == "EC",
        })
        .unwrap_or_else(|| panic!("no key for the assertion (kid {:?}) in {jwks}", header.kid));
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(key.clone()).unwrap_or_else(|e| panic!("not a JWK ({e}): {key}"));
    let dk = DecodingKey::from_jwk(&jwk).expect("decoding key");
    let mut v = Validation::new(Algorithm::ES256);
    v.validate_aud = false;
    v.leeway = 60;
    v.set_required_spec_claims(&["exp"]);
    jsonwebtoken::decode::<Value>(assertion, &dk, &v)
        .unwrap_or_else(|e| panic!("Bru-Assertion does not verify with the published JWKS: {e}"))
        .claims
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_receives_the_contracted_request() {
    let (world, bru) = started().await;
    let token = world.mp_token(NAV, SCOPE_SOSIAL);
    let r = send(
        bru.get("/data/k429/sosialtjeneste/a/b?x=1")
            .bearer_auth(&token)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI)
            .header("traceparent", TRACEPARENT)
            .header("Bru-Assertion", "forged.assertion.value")
            .header("Bru-Consumer", format!("0192:{SNOOP}"))
            .header("Bru-Legal-Basis", "consent")
            .header("Bru-Transfer-Id", "forged-transfer-id"),
    )
    .await;
    r.expect_status(200, "NAV's statutory call");
    let tid = r
        .transfer_id()
        .expect("the response carries Bru-Transfer-Id");
    assert_ne!(tid, "forged-transfer-id");
    assert_eq!(
        r.json(),
        json!({"provider": "k429", "path": "/sosialtjeneste/a/b", "aar": 2024, "sum": 480000,
               "merknad": "kun for saksbehandler"}),
        "an unminimised dataset returns the provider's document as is"
    );

    let reqs = world.k429.requests();
    assert_eq!(reqs.len(), 1, "one call forwarded");
    let rec = &reqs[0];
    // Collect every deviation, so one run reports them all.
    let mut wrong: Vec<String> = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            wrong.push(what);
        }
    };
    check(rec.method == "GET", format!("method {}", rec.method));
    check(
        rec.path == "/sosialtjeneste/a/b",
        format!("path {}", rec.path),
    );
    check(
        rec.query.as_deref() == Some("x=1"),
        format!("query {:?}", rec.query),
    );
    check(
        rec.header("authorization").is_none(),
        "the caller's Authorization was forwarded".into(),
    );
    check(
        rec.header_all("bru-transfer-id") == vec![tid.as_str()],
        format!(
            "Bru-Transfer-Id {:?} (response: {tid})",
            rec.header_all("bru-transfer-id")
        ),
    );
    let consumer = format!("0192:{NAV}");
    check(
        rec.header_all("bru-consumer") == vec![consumer.as_str()],
        format!(
            "Bru-Consumer {:?} (caller sent 0192:{SNOOP})",
            rec.header_all("bru-consumer")
        ),
    );
    check(
        rec.header_all("bru-purpose") == vec![PURPOSE_SOSIAL],
        format!("Bru-Purpose {:?}", rec.header_all("bru-purpose")),
    );
    check(
        rec.header_all("bru-legal-basis") == vec!["statutory"],
        format!(
            "Bru-Legal-Basis {:?} (caller sent consent)",
            rec.header_all("bru-legal-basis")
        ),
    );
    check(
        rec.header_all("traceparent") == vec![TRACEPARENT],
        format!("traceparent {:?}", rec.header_all("traceparent")),
    );
    check(
        rec.header_all("nav-personident") == vec![KARI],
        "the subject header did not reach the provider as sent".into(),
    );
    let assertions = rec.header_all("bru-assertion");
    check(
        assertions.len() == 1 && assertions[0] != "forged.assertion.value",
        format!(
            "Bru-Assertion: {} value(s), caller's forged one forwarded: {}",
            assertions.len(),
            assertions.contains(&"forged.assertion.value")
        ),
    );
    assert!(
        wrong.is_empty(),
        "the provider received a request that breaks SPEC section 3:\n  {}",
        wrong.join("\n  ")
    );
    world.nav.assert_untouched("k429 call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bru_assertion_verifies_and_states_the_decision() {
    let (world, bru) = started().await;
    let r = send(world.nav_sosial(&bru, "", KARI)).await;
    r.expect_status(200, "NAV's statutory call");
    let tid = r.transfer_id().expect("Bru-Transfer-Id");
    let reqs = world.k429.requests();
    let assertion = reqs[0]
        .header("bru-assertion")
        .expect("Bru-Assertion")
        .to_owned();
    let claims = verify_assertion(&bru, &assertion).await;
    assert_eq!(claims["transfer_id"], tid.as_str(), "{claims}");
    assert!(org_matches(&claims["consumer"], NAV), "consumer: {claims}");
    assert!(
        claims.get("supplier").is_none_or(Value::is_null),
        "no supplier on a direct call: {claims}"
    );
    assert_eq!(claims["dataset"], "k429/sosialtjeneste", "{claims}");
    assert_eq!(claims["purpose"], PURPOSE_SOSIAL, "{claims}");
    assert_eq!(claims["basis"], "statutory", "{claims}");
    assert!(
        claims.get("consent_id").is_none_or(Value::is_null),
        "no consent on a statutory call: {claims}"
    );
    assert_eq!(claims["subject"], KARI, "{claims}");
    assert!(
        claims["iss"].as_str().is_some_and(|s| !s.is_empty()),
        "iss: {claims}"
    );
    let iat = claims["iat"].as_i64().expect("iat");
    let exp = claims["exp"].as_i64().expect("exp");
    let t = now();
    assert!(iat <= t + 60 && iat >= t - 600, "iat {iat} vs now {t}");
    assert!(exp > t, "exp {exp} is past");
    assert!(
        exp - iat <= 600,
        "a short-lived assertion: exp - iat = {}",
        exp - iat
    );

    // Through a supplier: the assertion names it.
    let token = world
        .mp(K429, SCOPE_SOSIAL)
        .claim(
            "supplier",
            json!({"authority": "iso6523-actorid-upis", "ID": format!("0192:{OMSORGSAPP}")}),
        )
        .sign(&world.mp_signer());
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(token)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", OLA),
    )
    .await
    .expect_status(200, "K429 through Omsorgsapp");
    let reqs = world.k429.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[1].header_all("bru-consumer"),
        vec![format!("0192:{K429}").as_str()]
    );
    let claims = verify_assertion(
        &bru,
        reqs[1].header("bru-assertion").expect("Bru-Assertion"),
    )
    .await;
    assert!(org_matches(&claims["consumer"], K429), "consumer: {claims}");
    assert!(
        org_matches(&claims["supplier"], OMSORGSAPP),
        "supplier: {claims}"
    );
    assert_eq!(claims["subject"], OLA, "{claims}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_publishes_assertion_and_checkpoint_keys_only_public() {
    let (_world, bru) = started().await;
    let r = send(bru.get("/.well-known/jwks.json")).await;
    r.expect_status(200, "GET /.well-known/jwks.json");
    let jwks = r.json();
    let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
    assert!(
        keys.iter().any(|k| k["kty"] == "EC" && k["crv"] == "P-256"),
        "no P-256 assertion key in {jwks}"
    );
    assert!(
        keys.iter()
            .any(|k| k["kty"] == "OKP" && k["crv"] == "Ed25519"),
        "no Ed25519 checkpoint key in {jwks}"
    );
    for k in &keys {
        assert!(
            k.get("d").is_none(),
            "a private key member is published: {k}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_is_minimised_for_the_purpose() {
    let (world, bru) = started().await;
    let call = || {
        bru.get("/data/k429/minimert")
            .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI)
    };
    // The mask's paths (`aar`, `sum`) name the root's members, kept whole;
    // the same names nested under other members are removed with them.
    world.k429.set_body(json!({
        "aar": 2024, "sum": 480000, "navn": "Kari Nordmann", "fnr": KARI,
        "detaljer": {"aar": 2023, "skjult": true},
        "adresse": {"gate": "Storgata 1", "postnr": "0101"},
        "inntekt": [{"aar": 2025, "sum": 512000, "arbeidsgivere": [{"org": K429, "navn": "K429"}]}]
    }));
    let r = send(call()).await;
    r.expect_status(200, "minimised object");
    assert_eq!(r.json(), json!({"aar": 2024, "sum": 480000}));
    for leaked in [
        KARI,
        "Kari Nordmann",
        "skjult",
        "Storgata",
        K429,
        "2023",
        "512000",
    ] {
        assert!(
            !r.text().contains(leaked),
            "a removed value leaked ({leaked}): {}",
            r.text()
        );
    }

    world.k429.set_body(json!([
        {"aar": 2023, "sum": 1, "arbeidsgiver": "K429"},
        {"aar": 2024, "sum": 2, "fnr": KARI}
    ]));
    let r = send(call()).await;
    r.expect_status(200, "minimised array");
    assert_eq!(
        r.json(),
        json!([{"aar": 2023, "sum": 1}, {"aar": 2024, "sum": 2}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_call_records_decision_and_outcome() {
    let (world, bru) = started().await;
    let r = send(world.nav_sosial(&bru, "/saker?aar=2024", KARI)).await;
    r.expect_status(200, "NAV's statutory call");
    let tid = r.transfer_id().expect("Bru-Transfer-Id");
    let records = world
        .wait_records("decision and outcome of the call", |recs| {
            find_record(recs, &tid, "decision").is_some()
                && find_record(recs, &tid, "outcome").is_some()
        })
        .await;
    let decision = find_record(&records, &tid, "decision").unwrap();
    assert_eq!(decision["decision"], "allow", "{decision}");
    assert!(
        org_matches(&decision["consumer"], NAV),
        "consumer: {decision}"
    );
    assert_eq!(decision["dataset"], "k429/sosialtjeneste", "{decision}");
    assert_eq!(decision["purpose"], PURPOSE_SOSIAL, "{decision}");
    assert_eq!(decision["basis"], "statutory", "{decision}");
    assert_eq!(decision["legal_ref"], LEGAL_REF, "{decision}");
    assert_eq!(decision["method"], "GET", "{decision}");
    assert!(decision["index"].is_u64(), "index: {decision}");
    assert!(decision["time"].is_string(), "time: {decision}");
    let sref = decision["subject_ref"].as_str().unwrap_or_default();
    assert!(
        !sref.is_empty() && !sref.contains(KARI),
        "subject_ref: {decision}"
    );

    let outcome = find_record(&records, &tid, "outcome").unwrap();
    assert_eq!(outcome["status"], 200, "{outcome}");
    assert_eq!(
        outcome["bytes"].as_u64(),
        Some(r.body.len() as u64),
        "outcome bytes must be the response body size: {outcome}"
    );
    assert!(outcome["duration_ms"].is_u64(), "duration_ms: {outcome}");
    assert!(
        outcome["index"].as_u64() > decision["index"].as_u64(),
        "the outcome comes after the decision"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_call_records_a_deny_decision_with_its_code() {
    let (world, bru) = started().await;
    let snoop = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(world.mp_token(SNOOP, SCOPE_SOSIAL))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await;
    snoop.expect_problem(403, "consumer_not_allowed", "Snoop");
    let no_purpose = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(world.mp_token(NAV, SCOPE_SOSIAL))
            .header("Nav-Personident", KARI),
    )
    .await;
    no_purpose.expect_problem(400, "purpose_required", "no purpose");
    let no_token = send(bru.get("/data/k429/sosialtjeneste")).await;
    no_token.expect_problem(401, "missing_token", "no token");
    let cases = [
        (snoop.problem_transfer_id(), "consumer_not_allowed"),
        (no_purpose.problem_transfer_id(), "purpose_required"),
        (no_token.problem_transfer_id(), "missing_token"),
    ];
    let records = world
        .wait_records("the three deny decisions", |recs| {
            cases
                .iter()
                .all(|(t, _)| find_record(recs, t, "decision").is_some())
        })
        .await;
    for (tid, code) in &cases {
        let rec = find_record(&records, tid, "decision").unwrap();
        assert_eq!(rec["decision"], "deny", "{rec}");
        assert_eq!(rec["code"], *code, "{rec}");
    }
    let snoop_rec = find_record(&records, &cases[0].0, "decision").unwrap();
    assert!(
        org_matches(&snoop_rec["consumer"], SNOOP),
        "consumer: {snoop_rec}"
    );
    assert_eq!(snoop_rec["dataset"], "k429/sosialtjeneste", "{snoop_rec}");
    world.k429.assert_untouched("denied calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_never_hold_the_person_number() {
    let (world, bru) = started().await;
    let mut tids = Vec::new();
    let r = send(world.nav_sosial(&bru, "", KARI)).await;
    r.expect_status(200, "header subject");
    tids.push(r.transfer_id().unwrap());
    let r = send(
        bru.get(&format!("/data/k429/sak-query?fnr={OLA}"))
            .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL),
    )
    .await;
    r.expect_status(200, "query subject");
    tids.push(r.transfer_id().unwrap());
    let r = send(
        bru.get(&format!("/data/k429/sak-path/{EMMA}/vedtak"))
            .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL),
    )
    .await;
    r.expect_status(200, "path subject");
    let path_tid = r.transfer_id().unwrap();
    tids.push(path_tid.clone());
    let r = send(
        bru.post("/data/k429/sak-json")
            .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Content-Type", "application/json")
            .body(json!({"person": {"id": PER}}).to_string()),
    )
    .await;
    r.expect_status(200, "JSON subject");
    tids.push(r.transfer_id().unwrap());
    let r = send(
        bru.get(&format!("/data/k429/sak-path/{AISHA}/vedtak"))
            .bearer_auth(world.mp_token(SNOOP, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL),
    )
    .await;
    assert_eq!(r.status, 403, "Snoop: {}", r.text());
    tids.push(r.problem_transfer_id());

    let records = world
        .wait_records("records of all five calls", |recs| {
            tids.iter()
                .all(|t| find_record(recs, t, "decision").is_some())
                && tids[..4]
                    .iter()
                    .all(|t| find_record(recs, t, "outcome").is_some())
        })
        .await;
    let (_, raw) = world.export().await;
    for p in PERSONS {
        assert!(
            !raw.contains(p),
            "a person number ({p}) is in the audit export:\n{raw}"
        );
    }
    let path_rec = find_record(&records, &path_tid, "decision").unwrap();
    let path = path_rec["path"].as_str().unwrap_or_default();
    assert!(
        path.contains("{subject}") && path.contains("vedtak"),
        "the path names the subject as {{subject}}: {path_rec}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_ref_is_a_stable_pseudonym() {
    let (world, bru) = started().await;
    let kari1 = send(world.nav_sosial(&bru, "", KARI)).await;
    kari1.expect_status(200, "Kari, header");
    let kari2 = send(
        bru.get(&format!("/data/k429/sak-query?fnr={KARI}"))
            .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL),
    )
    .await;
    kari2.expect_status(200, "Kari, query");
    let ola = send(world.nav_sosial(&bru, "", OLA)).await;
    ola.expect_status(200, "Ola, header");
    let ids = [
        kari1.transfer_id().unwrap(),
        kari2.transfer_id().unwrap(),
        ola.transfer_id().unwrap(),
    ];
    let records = world
        .wait_records("three decisions", |recs| {
            ids.iter()
                .all(|t| find_record(recs, t, "decision").is_some())
        })
        .await;
    let sref = |t: &str| {
        find_record(&records, t, "decision").unwrap()["subject_ref"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let (k1, k2, o) = (sref(&ids[0]), sref(&ids[1]), sref(&ids[2]));
    assert!(!k1.is_empty() && !o.is_empty(), "subject_ref missing");
    assert_eq!(
        k1, k2,
        "the same person gets the same subject_ref across datasets"
    );
    assert_ne!(k1, o, "different persons get different subject_refs");
    assert_ne!(k1, KARI);
    assert!(
        !k1.contains(KARI) && !o.contains(OLA),
        "subject_ref contains the number"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_hold_no_person_number_or_token() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    calls_then_check_logs(&world, &bru).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_hold_no_person_number_or_token() {
    let world = TestWorld::builder().env("RUST_LOG", "debug").build().await;
    let bru = world.start().await;
    calls_then_check_logs(&world, &bru).await;
}

/// Allowed, denied and failing calls with every kind of subject; then no
/// person number and no token may be in bru's stdout or stderr.
async fn calls_then_check_logs(world: &TestWorld, bru: &Bru) {
    let mut tokens = Vec::new();
    // Allowed calls with the subject in every place.
    for p in [KARI, OLA] {
        let t = world.mp_token(NAV, SCOPE_SOSIAL);
        tokens.push(t.clone());
        send(
            bru.get("/data/k429/sosialtjeneste")
                .bearer_auth(&t)
                .header("Bru-Purpose", PURPOSE_SOSIAL)
                .header("Nav-Personident", p),
        )
        .await
        .expect_status(200, "header subject");
    }
    let t = world.mp_token(NAV, SCOPE_SAK);
    tokens.push(t.clone());
    for (method, path, body) in [
        ("GET", format!("/data/k429/sak-query?fnr={EMMA}"), None),
        ("GET", format!("/data/k429/sak-path/{PER}/vedtak"), None),
        (
            "POST",
            "/data/k429/sak-json".to_owned(),
            Some(json!({"person": {"id": AISHA}}).to_string()),
        ),
    ] {
        let mut rb = bru
            .client
            .request(method.parse().unwrap(), bru.url(&path))
            .bearer_auth(&t)
            .header("Bru-Purpose", PURPOSE_SOSIAL);
        if let Some(b) = body {
            rb = rb.header("Content-Type", "application/json").body(b);
        }
        send(rb).await.expect_status(200, &path);
    }
    // Denied and failing calls.
    let snoop = world.mp_token(SNOOP, SCOPE_SOSIAL);
    tokens.push(snoop.clone());
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(&snoop)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await;
    let expired = world
        .mp(NAV, SCOPE_SOSIAL)
        .claim("exp", now() - 3600)
        .sign(&world.mp_signer());
    tokens.push(expired.clone());
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(&expired)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", OLA),
    )
    .await;
    let forged = world
        .mp(NAV, SCOPE_SOSIAL)
        .sign(&Signer::Rsa(RsaKey::pooled(2, "attacker")));
    tokens.push(forged.clone());
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(&forged)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", EMMA),
    )
    .await;
    send(world.nav_sosial(bru, "", BAD_CONTROL_DIGITS)).await;
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(world.mp_token(NAV, SCOPE_SOSIAL))
            .header("Bru-Purpose", "markedsforing")
            .header("Nav-Personident", PER),
    )
    .await;
    // Let the records and any late log lines land.
    world
        .wait_records("at least ten decisions", |r| {
            r.iter().filter(|x| x["kind"] == "decision").count() >= 10
        })
        .await;
    let logs = bru.logs();
    for p in PERSONS.iter().chain([&BAD_CONTROL_DIGITS]) {
        assert!(
            !logs.contains(p),
            "bru's output contains the subject {p}:\n{logs}"
        );
    }
    for t in &tokens {
        let (_, payload, sig) = segments(t);
        assert!(
            !logs.contains(t.as_str()),
            "bru's output contains a whole token:\n{logs}"
        );
        assert!(
            !logs.contains(&payload),
            "bru's output contains a token payload:\n{logs}"
        );
        assert!(
            !logs.contains(&sig),
            "bru's output contains a token signature:\n{logs}"
        );
    }
}

/// A caller that goes away while Bru waits for the provider still leaves an
/// outcome record: every allowed decision has one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_gone_mid_call_leaves_an_outcome_record() {
    let (world, bru) = started().await;
    world.k429.set_delay(Duration::from_secs(3));
    let gave_up = world
        .nav_sosial(&bru, "", KARI)
        .timeout(Duration::from_millis(700))
        .send()
        .await;
    assert!(
        gave_up.is_err(),
        "the client gave up before the provider answered"
    );
    let records = world
        .wait_records("an outcome record with code client_closed", |records| {
            records
                .iter()
                .any(|r| r["kind"] == "outcome" && r["code"] == "client_closed")
        })
        .await;
    let outcome = records
        .iter()
        .find(|r| r["kind"] == "outcome" && r["code"] == "client_closed")
        .unwrap();
    let decision = records
        .iter()
        .find(|r| r["kind"] == "decision" && r["transfer_id"] == outcome["transfer_id"])
        .expect("the outcome belongs to a recorded decision");
    assert_eq!(decision["decision"], "allow");
    assert_eq!(outcome["bytes"], 0);
    assert!(
        outcome["status"].is_null(),
        "no provider status was seen: {outcome}"
    );
}
