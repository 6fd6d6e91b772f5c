//! The requester and citizen APIs at their edges: who may call them, every
//! field of a request validated (400 naming the field), listings, paging,
//! idempotent citizen answers, refused transitions and receipts.
#![allow(clippy::unwrap_used)]

use bru_tests::consent::*;
use bru_tests::*;
use serde_json::{json, Value};

/// Asserts a 400 `malformed_request` naming `field`, without echoing a person number.
fn expect_field(reply: &Reply, field: &str, context: &str) {
    assert_eq!(
        (reply.status, reply.code().as_deref()),
        (400, Some("malformed_request")),
        "{context}: {}",
        reply.text()
    );
    assert!(reply
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/problem+json")));
    let body = reply.json();
    assert_eq!(body["field"], field, "{context}: {body}");
    assert!(
        body["detail"].as_str().unwrap().contains(field),
        "{context}: the detail names the field: {body}"
    );
    for p in PERSONS.iter().chain([&BAD_CONTROL_DIGITS]) {
        assert!(
            !reply.text().contains(p),
            "{context}: a person number is echoed"
        );
    }
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

fn without(mut body: Value, key: &str) -> Value {
    body.as_object_mut().unwrap().remove(key);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_field_is_validated() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    let good = request_body(Some(KARI), Some(10));
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "bad control digits",
            with(good.clone(), "subject", json!(BAD_CONTROL_DIGITS)),
            "subject",
        ),
        (
            "a number, not a string",
            with(good.clone(), "subject", json!(12884513829u64)),
            "subject",
        ),
        (
            "too short",
            with(good.clone(), "subject", json!("1288451382")),
            "subject",
        ),
        ("no datasets", without(good.clone(), "datasets"), "datasets"),
        (
            "empty datasets",
            with(good.clone(), "datasets", json!([])),
            "datasets",
        ),
        (
            "not provider/dataset",
            with(good.clone(), "datasets", json!(["inntekt"])),
            "datasets",
        ),
        (
            "unknown dataset",
            with(good.clone(), "datasets", json!(["nav/ukjent"])),
            "datasets",
        ),
        (
            "statutory dataset",
            with(good.clone(), "datasets", json!(["k429/sosialtjeneste"])),
            "datasets",
        ),
        (
            "dataset twice",
            with(
                good.clone(),
                "datasets",
                json!(["nav/inntekt", "nav/inntekt"]),
            ),
            "datasets",
        ),
        (
            "datasets not an array",
            with(good.clone(), "datasets", json!("nav/inntekt")),
            "datasets",
        ),
        ("no purpose", without(good.clone(), "purpose"), "purpose"),
        (
            "unknown purpose",
            with(good.clone(), "purpose", json!("markedsforing")),
            "purpose",
        ),
        (
            "purpose not for the dataset",
            with(good.clone(), "purpose", json!(PURPOSE_SOSIAL)),
            "purpose",
        ),
        // tilsyn is allowed on nav/inntekt but not on helsenorge/hjemmetjeneste.
        (
            "purpose not for every dataset",
            with(good.clone(), "purpose", json!(PURPOSE_TILSYN)),
            "purpose",
        ),
        ("no valid_to", without(good.clone(), "valid_to"), "valid_to"),
        (
            "valid_to in the past",
            with(good.clone(), "valid_to", json!(in_secs(-60))),
            "valid_to",
        ),
        (
            "valid_to not RFC 3339",
            with(good.clone(), "valid_to", json!("31.12.2030")),
            "valid_to",
        ),
        // helsenorge/hjemmetjeneste allows at most 30 days.
        (
            "valid_to beyond the policy",
            with(good.clone(), "valid_to", json!(in_secs(31 * 86_400))),
            "valid_to",
        ),
        (
            "max_uses 0",
            with(good.clone(), "max_uses", json!(0)),
            "max_uses",
        ),
        (
            "max_uses negative",
            with(good.clone(), "max_uses", json!(-1)),
            "max_uses",
        ),
        (
            "max_uses a fraction",
            with(good.clone(), "max_uses", json!(1.5)),
            "max_uses",
        ),
        (
            "max_uses text",
            with(good.clone(), "max_uses", json!("ten")),
            "max_uses",
        ),
        (
            "redirect over http",
            with(good.clone(), "redirect_url", json!("http://k429.example/")),
            "redirect_url",
        ),
        (
            "redirect not a URL",
            with(good.clone(), "redirect_url", json!("k429.example")),
            "redirect_url",
        ),
        (
            "redirect javascript",
            with(good.clone(), "redirect_url", json!("javascript:alert(1)")),
            "redirect_url",
        ),
        (
            "redirect with credentials",
            with(
                good.clone(),
                "redirect_url",
                json!("https://u:p@k429.example/"),
            ),
            "redirect_url",
        ),
        (
            "message too long",
            with(good.clone(), "message", json!("x".repeat(501))),
            "message",
        ),
        (
            "message not text",
            with(good.clone(), "message", json!(["hei"])),
            "message",
        ),
        (
            "unknown member",
            with(good.clone(), "callback", json!("https://k429.example")),
            "callback",
        ),
    ];
    for (context, body, field) in &cases {
        let reply = post_request(&bru, &k429, body).await;
        expect_field(&reply, field, context);
    }
    for (context, raw) in [
        ("not JSON", "{"),
        ("an array", "[]"),
        ("a member twice", r#"{"purpose": "a", "purpose": "b"}"#),
    ] {
        let reply = send(
            bru.post("/consent/v1/requests")
                .bearer_auth(&k429)
                .header("content-type", "application/json")
                .body(raw),
        )
        .await;
        expect_field(&reply, "body", context);
    }
    // The other requester may ask only for what it may use.
    let reply = post_request(&bru, &cw.other_requester_token(), &good).await;
    expect_field(&reply, "datasets", "a dataset the requester may not use");
    // Nothing of the refused requests was stored.
    let listed = send(bru.get("/consent/v1/requests").bearer_auth(&k429))
        .await
        .json();
    assert_eq!(listed["requests"], json!([]));

    // The edges that are fine: 500 characters, 365 days for NAV alone, a
    // localhost redirect in a world with synthetic ids (demo and tests),
    // no max_uses (unlimited), no subject, null for optional members.
    let fine = [
        with(good.clone(), "message", json!("ø".repeat(500))),
        json!({"datasets": ["nav/inntekt"], "purpose": PURPOSE_OMSORG, "valid_to": in_secs(364 * 86_400)}),
        with(
            good.clone(),
            "redirect_url",
            json!("http://localhost:3000/ferdig"),
        ),
        without(good.clone(), "max_uses"),
        with(
            with(without(good.clone(), "subject"), "message", Value::Null),
            "max_uses",
            Value::Null,
        ),
    ];
    for body in &fine {
        post_request(&bru, &k429, body)
            .await
            .expect_status(201, &format!("a good request {body}"));
    }
    let listed = send(
        bru.get("/consent/v1/requests?status=pending&limit=2")
            .bearer_auth(&k429),
    )
    .await;
    listed.expect_status(200, "list");
    assert_eq!(listed.json()["requests"].as_array().unwrap().len(), 2);
    let bad_limit = send(bru.get("/consent/v1/requests?limit=0").bearer_auth(&k429)).await;
    expect_field(&bad_limit, "limit", "limit 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_consent_requesters_and_citizens_get_in() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let body = request_body(Some(KARI), None);

    let reply = send(bru.post("/consent/v1/requests").json(&body)).await;
    assert_eq!(
        (reply.status, reply.code().as_deref()),
        (401, Some("missing_token"))
    );
    assert!(reply
        .header("www-authenticate")
        .is_some_and(|w| w.starts_with("Bearer")));
    let cases = [
        (cw.mp_token(K429, SCOPE_INNTEKT), 403, "insufficient_scope"),
        (cw.mp_token(NAV, SCOPE_CONSENT), 403, "consumer_not_allowed"),
        (
            cw.mp_token(SNOOP, SCOPE_CONSENT),
            403,
            "consumer_not_allowed",
        ),
        (
            cw.supplier_token(K429, SNOOP, SCOPE_CONSENT),
            403,
            "consumer_not_allowed",
        ),
        // A citizen's token is not a machine token.
        (cw.citizen_token(KARI), 401, "untrusted_issuer"),
    ];
    for (token, status, code) in &cases {
        let reply = post_request(&bru, token, &body).await;
        assert_eq!(
            (reply.status, reply.code().as_deref()),
            (*status, Some(*code)),
            "{}",
            reply.text()
        );
    }
    // K429's supplier may ask on K429's behalf.
    let reply = post_request(&bru, &cw.omsorgsapp_token(), &body).await;
    reply.expect_status(201, "the named supplier asks for K429");
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    let request = get_request(&bru, &cw.k429_token(), &id).await.json();
    assert_eq!(request["requester"], format!("0192:{K429}"));
    assert_eq!(request["supplier"], format!("0192:{OMSORGSAPP}"));

    // The citizen API wants an ID-porten login at substantial level.
    let low = cw
        .citizen_jwt(KARI)
        .claim("acr", "idporten-loa-low")
        .sign(&Signer::Ec(cw.idp_key.clone()));
    let no_pid = cw
        .citizen_jwt(KARI)
        .without_claim("pid")
        .sign(&Signer::Ec(cw.idp_key.clone()));
    let bad_pid = cw
        .citizen_jwt(BAD_CONTROL_DIGITS)
        .sign(&Signer::Ec(cw.idp_key.clone()));
    for (token, code) in [
        (None, "missing_token"),
        (Some(cw.k429_token()), "untrusted_issuer"),
        (Some(low), "invalid_token"),
        (Some(no_pid), "invalid_token"),
        (Some(bad_pid), "invalid_token"),
    ] {
        for path in ["/citizen/v1/consents", "/citizen/v1/transfers"] {
            let mut rb = bru.get(path);
            if let Some(t) = &token {
                rb = rb.bearer_auth(t);
            }
            let reply = send(rb).await;
            assert_eq!(
                (reply.status, reply.code().as_deref()),
                (401, Some(code)),
                "{path}: {}",
                reply.text()
            );
        }
        let mut rb = bru.post(&format!("/citizen/v1/consents/{id}/accept"));
        if let Some(t) = &token {
            rb = rb.bearer_auth(t);
        }
        assert_eq!(send(rb).await.status, 401);
    }
    assert_eq!(
        get_request(&bru, &cw.k429_token(), &id).await.json()["status"],
        "pending"
    );

    // Unknown and malformed ids are simply not found.
    for id in [
        uuid::Uuid::new_v4().to_string(),
        "x".into(),
        "%2e%2e".into(),
    ] {
        assert_eq!(get_request(&bru, &cw.k429_token(), &id).await.status, 404);
        assert_eq!(
            citizen_action(&cw, &bru, KARI, &id, "accept").await.status,
            404
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn citizen_answers_lists_receipts_and_paging() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    let kari = cw.citizen_token(KARI);

    let active = granted(&cw, &bru, KARI, None).await;
    let pending = create(&cw, &bru, &request_body(Some(KARI), None)).await;
    let rejected = create(&cw, &bru, &request_body(Some(KARI), None)).await;
    citizen_action(&cw, &bru, KARI, &rejected, "reject")
        .await
        .expect_status(200, "reject");
    let olas = granted(&cw, &bru, OLA, None).await;

    let mine = send(bru.get("/citizen/v1/consents").bearer_auth(&kari))
        .await
        .json();
    let ids = |group: &str| -> Vec<String> {
        mine[group]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids("active"), [active.as_str()]);
    assert_eq!(ids("pending"), [pending.as_str()]);
    assert_eq!(ids("past"), [rejected.as_str()]);
    assert!(
        !mine.to_string().contains(&olas),
        "Ola's consent is not in Kari's list"
    );

    // Answering twice is harmless; a contradicting answer is a conflict.
    let again = citizen_action(&cw, &bru, KARI, &rejected, "reject").await;
    again.expect_status(200, "reject twice");
    let conflicts = [
        (&pending, "revoke", "pending"),
        (&rejected, "accept", "rejected"),
        (&active, "reject", "granted"),
    ];
    for (id, action, status) in conflicts {
        let reply = citizen_action(&cw, &bru, KARI, id, action).await;
        assert_eq!(
            (reply.status, reply.code().as_deref()),
            (409, Some("invalid_transition")),
            "{action}"
        );
        assert_eq!(reply.json()["consent_status"], status);
    }
    citizen_action(&cw, &bru, KARI, &active, "revoke")
        .await
        .expect_status(200, "revoke");
    let twice = citizen_action(&cw, &bru, KARI, &active, "revoke").await;
    twice.expect_status(200, "revoke twice");
    assert_eq!(twice.json()["status"], "revoked");
    assert_eq!(
        event_types(&bru, &k429, &active).await,
        ["created", "accepted", "revoked"]
    );

    // A receipt exists for a consent that was granted, also after revoking
    // (it documents what was given), in English on request, or as JSON.
    let receipt = |id: &str, query: &str| {
        send(
            bru.get(&format!("/citizen/v1/consents/{id}/receipt{query}"))
                .bearer_auth(&kari),
        )
    };
    let r = receipt(&active, "?lang=en").await;
    r.expect_status(200, "receipt of a revoked consent");
    let (_, claims) = peek(&r.text());
    assert_eq!(claims["language"], "en");
    assert_eq!(claims["consent_status"], "revoked");
    assert_eq!(
        claims["services"][0]["service"],
        "Application for sheltered housing"
    );
    for id in [&pending, &rejected] {
        let r = receipt(id, "").await;
        assert_eq!(
            (r.status, r.code().as_deref()),
            (409, Some("consent_not_granted"))
        );
    }
    let as_json = send(
        bru.get(&format!("/citizen/v1/consents/{olas}/receipt"))
            .bearer_auth(cw.citizen_token(OLA))
            .header("accept", "application/json"),
    )
    .await;
    as_json.expect_status(200, "receipt as JSON");
    let (_, claims) = peek(as_json.json()["receipt"].as_str().unwrap());
    assert_eq!(claims["piiPrincipalId"], OLA);
    assert_eq!(receipt(&active, "?lang=de").await.status, 400);

    // Paging through the access log: five calls, two at a time.
    let ola_consent = &olas;
    for _ in 0..5 {
        inntekt(&bru, &k429, Some(ola_consent), OLA, PURPOSE_OMSORG)
            .await
            .expect_status(200, "a call about Ola");
    }
    let ola = cw.citizen_token(OLA);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/citizen/v1/transfers?limit=2&cursor={c}"),
            None => "/citizen/v1/transfers?limit=2".into(),
        };
        let page = send(bru.get(&path).bearer_auth(&ola)).await;
        page.expect_status(200, "a page of transfers");
        let page = page.json();
        let transfers = page["transfers"].as_array().unwrap();
        assert!(transfers.len() <= 2);
        seen.extend(transfers.iter().map(|t| t["index"].as_u64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(seen.len() <= 5, "paging does not end");
    }
    assert_eq!(seen.len(), 5);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "in log order: {seen:?}"
    );
    let bad = send(bru.get("/citizen/v1/transfers?limit=501").bearer_auth(&ola)).await;
    assert_eq!(
        (bad.status, bad.code().as_deref()),
        (400, Some("malformed_request"))
    );
}
