//! SPEC section 3: every status and code that applies without a consent broker,
//! and the four places a dataset's subject can be (header, query, path, JSON body).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bru_tests::*;
use serde_json::json;

async fn started() -> (TestWorld, Bru) {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    (world, bru)
}

/// Both providers must have received nothing.
fn untouched(world: &TestWorld, context: &str) {
    world.k429.assert_untouched(context);
    world.nav.assert_untouched(context);
}

// ---------------------------------------------------------------- 401

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_token_is_401() {
    let (world, bru) = started().await;
    let r = send(
        bru.get("/data/k429/sosialtjeneste")
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await;
    r.expect_problem(401, "missing_token", "no Authorization header");
    let r = send(
        bru.get("/data/k429/sosialtjeneste")
            .header("Authorization", "Basic dXNlcjpwYXNz")
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await;
    assert_eq!(r.status, 401, "Basic credentials: {}", r.text());
    r.check_problem_shape("Basic credentials");
    untouched(&world, "missing token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_token_is_401() {
    let (world, bru) = started().await;
    for (what, token) in [
        ("not a JWT", "not-a-jwt".to_owned()),
        ("three garbage segments", "abc.def.ghi".to_owned()),
        (
            "signed by a key the issuer does not have, under its kid",
            world
                .mp(NAV, SCOPE_SOSIAL)
                .sign(&Signer::Rsa(RsaKey::pooled(2, "attacker"))),
        ),
    ] {
        let r = send(
            bru.get("/data/k429/sosialtjeneste")
                .bearer_auth(&token)
                .header("Bru-Purpose", PURPOSE_SOSIAL)
                .header("Nav-Personident", KARI),
        )
        .await;
        r.expect_problem(401, "invalid_token", what);
    }
    untouched(&world, "invalid token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expired_is_401() {
    let (world, bru) = started().await;
    let t = now();
    let token = world
        .mp(NAV, SCOPE_SOSIAL)
        .claim("iat", t - 3700)
        .claim("exp", t - 3600)
        .sign(&world.mp_signer());
    let r = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(&token)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await;
    r.expect_problem(401, "token_expired", "exp an hour ago");
    untouched(&world, "expired token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_issuer_is_401() {
    let (world, bru) = started().await;
    let token = world
        .mp(NAV, SCOPE_SOSIAL)
        .claim("iss", "https://evil.example/")
        .sign(&world.mp_signer());
    let r = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(&token)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await;
    r.expect_problem(401, "untrusted_issuer", "iss not in the config");
    untouched(&world, "untrusted issuer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_audience_is_401() {
    let (world, bru) = started().await;
    let call = |token: String| {
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(token)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI)
    };
    // Control: the right audience passes.
    let ok = send(call(world.aud(NAV, SCOPE_SOSIAL).sign(&world.aud_signer()))).await;
    ok.expect_status(200, "token with the configured audience");
    assert_eq!(world.k429.count(), 1);

    let wrong = send(call(
        world
            .aud(NAV, SCOPE_SOSIAL)
            .claim("aud", "https://other.example/")
            .sign(&world.aud_signer()),
    ))
    .await;
    wrong.expect_problem(401, "wrong_audience", "aud of another service");

    let list = send(call(
        world
            .aud(NAV, SCOPE_SOSIAL)
            .claim("aud", json!(["https://other.example/"]))
            .sign(&world.aud_signer()),
    ))
    .await;
    list.expect_problem(401, "wrong_audience", "aud list without Bru");

    let missing = send(call(
        world
            .aud(NAV, SCOPE_SOSIAL)
            .without_claim("aud")
            .sign(&world.aud_signer()),
    ))
    .await;
    assert_eq!(
        missing.status,
        401,
        "no aud where one is required: {}",
        missing.text()
    );
    missing.check_problem_shape("no aud");
    assert_eq!(
        world.k429.count(),
        1,
        "only the control call may reach the provider"
    );
}

// ---------------------------------------------------------------- 403

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_scope_is_403() {
    let (world, bru) = started().await;
    for scope in [
        SCOPE_INNTEKT,
        "k429:sosialtjeneste.readx",
        "k429:sosialtjeneste",
        "",
    ] {
        let r = send(
            bru.get("/data/k429/sosialtjeneste")
                .bearer_auth(world.mp_token(NAV, scope))
                .header("Bru-Purpose", PURPOSE_SOSIAL)
                .header("Nav-Personident", KARI),
        )
        .await;
        r.expect_problem(403, "insufficient_scope", &format!("scope {scope:?}"));
    }
    untouched(&world, "insufficient scope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_not_allowed_is_403() {
    let (world, bru) = started().await;
    for (who, org) in [
        ("Snoop AS", SNOOP),
        ("an organisation no policy names", UNLISTED_ORG),
    ] {
        let r = send(
            bru.get("/data/k429/sosialtjeneste")
                .bearer_auth(world.mp_token(org, SCOPE_SOSIAL))
                .header("Bru-Purpose", PURPOSE_SOSIAL)
                .header("Nav-Personident", KARI),
        )
        .await;
        r.expect_problem(403, "consumer_not_allowed", who);
    }
    // NAV may not use a dataset it is not listed for, even with the scope.
    let r = send(
        bru.get("/data/nav/inntekt")
            .bearer_auth(world.mp_token(NAV, SCOPE_INNTEKT))
            .header("Bru-Purpose", PURPOSE_OMSORG)
            .header("Nav-Personident", KARI),
    )
    .await;
    r.expect_problem(403, "consumer_not_allowed", "NAV on nav/inntekt");
    untouched(&world, "consumer not allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supplier_the_policy_does_not_name_is_403() {
    let (world, bru) = started().await;
    let call = |supplier: &str| {
        let token = world
            .mp(K429, SCOPE_SOSIAL)
            .claim(
                "supplier",
                json!({"authority": "iso6523-actorid-upis", "ID": format!("0192:{supplier}")}),
            )
            .sign(&world.mp_signer());
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(token)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI)
    };
    // Control: K429's named supplier passes.
    send(call(OMSORGSAPP))
        .await
        .expect_status(200, "K429 through Omsorgsapp");
    assert_eq!(world.k429.count(), 1);
    for supplier in [SNOOP, UNLISTED_ORG, NAV] {
        send(call(supplier)).await.expect_problem(
            403,
            "consumer_not_allowed",
            &format!("K429 through supplier {supplier}"),
        );
    }
    assert_eq!(
        world.k429.count(),
        1,
        "no call through an unnamed supplier may be forwarded"
    );
    world.nav.assert_untouched("supplier");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purpose_not_allowed_is_403() {
    let (world, bru) = started().await;
    for (why, purpose) in [
        ("a purpose of another dataset", PURPOSE_OMSORG),
        (
            "a purpose of the dataset that NAV's rule leaves out",
            PURPOSE_TILSYN,
        ),
        ("a purpose no policy names", "markedsforing"),
    ] {
        let r = send(
            bru.get("/data/k429/sosialtjeneste")
                .bearer_auth(world.mp_token(NAV, SCOPE_SOSIAL))
                .header("Bru-Purpose", purpose)
                .header("Nav-Personident", KARI),
        )
        .await;
        r.expect_problem(403, "purpose_not_allowed", why);
    }
    untouched(&world, "purpose not allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_required_is_403() {
    let (world, bru) = started().await;
    let r = send(
        bru.get("/data/nav/inntekt")
            .bearer_auth(world.mp_token(K429, SCOPE_INNTEKT))
            .header("Bru-Purpose", PURPOSE_OMSORG)
            .header("Nav-Personident", KARI),
    )
    .await;
    r.expect_problem(
        403,
        "consent_required",
        "consent dataset without Bru-Consent",
    );
    untouched(&world, "consent required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_not_found_is_403() {
    let (world, bru) = started().await;
    let r = send(
        bru.get("/data/nav/inntekt")
            .bearer_auth(world.mp_token(K429, SCOPE_INNTEKT))
            .header("Bru-Purpose", PURPOSE_OMSORG)
            .header("Bru-Consent", uuid::Uuid::new_v4().to_string())
            .header("Nav-Personident", KARI),
    )
    .await;
    r.expect_problem(403, "consent_not_found", "unknown consent id");
    untouched(&world, "consent not found");
}

// ---------------------------------------------------------------- 400 / 404

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purpose_required_is_400() {
    let (world, bru) = started().await;
    let r = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(world.mp_token(NAV, SCOPE_SOSIAL))
            .header("Nav-Personident", KARI),
    )
    .await;
    r.expect_problem(400, "purpose_required", "no Bru-Purpose");
    let r = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(world.mp_token(NAV, SCOPE_SOSIAL))
            .header("Bru-Purpose", "")
            .header("Nav-Personident", KARI),
    )
    .await;
    r.expect_problem(400, "purpose_required", "empty Bru-Purpose");
    untouched(&world, "purpose required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_dataset_is_404() {
    let (world, bru) = started().await;
    for path in [
        "/data/k429/finnes-ikke",
        "/data/ukjent/sosialtjeneste",
        "/data/k429/SOSIALTJENESTE",
    ] {
        let r = send(
            bru.get(path)
                .bearer_auth(world.mp_token(NAV, SCOPE_SOSIAL))
                .header("Bru-Purpose", PURPOSE_SOSIAL)
                .header("Nav-Personident", KARI),
        )
        .await;
        r.expect_problem(404, "unknown_dataset", path);
    }
    untouched(&world, "unknown dataset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_body_is_400_malformed_request() {
    let (world, bru) = started().await;
    let r = send(
        bru.post("/data/k429/sak-json")
            .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Content-Type", "application/json")
            .body(r#"{"person": {"id": "12884513829""#),
    )
    .await;
    r.expect_problem(400, "malformed_request", "truncated JSON body");
    untouched(&world, "malformed request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_subject_or_purpose_is_400_malformed_request() {
    // Parameter pollution: Bru must not check one value and forward another.
    let (world, bru) = started().await;
    let header_twice = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(world.mp_token(NAV, SCOPE_SOSIAL))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI)
            .header("Nav-Personident", OLA),
    )
    .await;
    header_twice.expect_problem(400, "malformed_request", "two Nav-Personident headers");
    let query_twice = send(
        bru.get(&format!("/data/k429/sak-query?fnr={KARI}&fnr={OLA}"))
            .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL),
    )
    .await;
    query_twice.expect_problem(400, "malformed_request", "two fnr parameters");
    let purpose_twice = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(world.mp_token(NAV, SCOPE_SOSIAL))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Bru-Purpose", PURPOSE_TILSYN)
            .header("Nav-Personident", KARI),
    )
    .await;
    purpose_twice.expect_problem(400, "malformed_request", "two Bru-Purpose headers");
    untouched(&world, "repeated subject or purpose");
}

// ---------------------------------------------------------------- 413 / 431

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_too_large_is_413() {
    let world = TestWorld::builder().max_body_bytes(1024).build().await;
    let bru = world.start().await;
    let body = json!({"person": {"id": KARI}, "fyll": "x".repeat(4096)}).to_string();
    let r = send(
        bru.post("/data/k429/sak-json")
            .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Content-Type", "application/json")
            .body(body),
    )
    .await;
    r.expect_problem(413, "request_too_large", "4 KB body over a 1 KB limit");
    untouched(&world, "request too large");
    // Control: a small body passes.
    let r = send(
        bru.post("/data/k429/sak-json")
            .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Content-Type", "application/json")
            .body(json!({"person": {"id": KARI}}).to_string()),
    )
    .await;
    r.expect_status(200, "small body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_too_large_chunked_is_413() {
    let world = TestWorld::builder().max_body_bytes(1024).build().await;
    let bru = world.start().await;
    let token = world.mp_token(NAV, SCOPE_SAK);
    let body = json!({"person": {"id": KARI}, "fyll": "x".repeat(4096)}).to_string();
    let mut chunked = String::new();
    for part in body.as_bytes().chunks(500) {
        chunked.push_str(&format!("{:x}\r\n", part.len()));
        chunked.push_str(std::str::from_utf8(part).unwrap());
        chunked.push_str("\r\n");
    }
    chunked.push_str("0\r\n\r\n");
    let req = format!(
        "POST /data/k429/sak-json HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Bru-Purpose: {PURPOSE_SOSIAL}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunked}"
    );
    let ex = bru.raw(req.as_bytes()).await;
    ex.first().expect_problem(
        413,
        "request_too_large",
        "4 KB chunked body over a 1 KB limit",
    );
    let complete: Vec<_> = world
        .k429
        .requests()
        .into_iter()
        .filter(|r| r.body.len() > 1024)
        .collect();
    assert!(
        complete.is_empty(),
        "the provider received a body over max_body_bytes: {} bytes",
        complete[0].body.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_too_large_is_431() {
    let world = TestWorld::builder().max_header_bytes(8192).build().await;
    let bru = world.start().await;
    let r = send(
        world
            .nav_sosial(&bru, "", KARI)
            .header("X-Fyll", "x".repeat(12_000)),
    )
    .await;
    r.expect_problem(431, "headers_too_large", "12 KB header over an 8 KB limit");
    untouched(&world, "headers too large");
}

// ---------------------------------------------------------------- 502 / 504

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_error_is_502() {
    let world = TestWorld::builder().closed_upstream("k429").build().await;
    let bru = world.start().await;
    let r = send(world.nav_sosial(&bru, "", KARI)).await;
    r.expect_problem(502, "upstream_error", "provider port closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_timeout_is_504() {
    let world = TestWorld::builder().request_timeout_ms(1000).build().await;
    world.k429.set_delay(Duration::from_secs(8));
    let bru = world.start().await;
    let r = send(world.nav_sosial(&bru, "", KARI)).await;
    r.expect_problem(
        504,
        "upstream_timeout",
        "provider slower than request_timeout_ms",
    );
    assert_eq!(world.k429.count(), 1, "the call was forwarded once");
}

// ---------------------------------------------------------------- subjects

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_in_header() {
    let (world, bru) = started().await;
    let ok = send(world.nav_sosial(&bru, "", KARI)).await;
    ok.expect_status(200, "valid subject in Nav-Personident");
    let reqs = world.k429.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].header("nav-personident"), Some(KARI));

    let missing = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(world.mp_token(NAV, SCOPE_SOSIAL))
            .header("Bru-Purpose", PURPOSE_SOSIAL),
    )
    .await;
    missing.expect_problem(400, "subject_missing", "no Nav-Personident");
    for bad in [
        BAD_CONTROL_DIGITS,
        "1288451382",
        "128845138290",
        "1288451382x",
    ] {
        send(world.nav_sosial(&bru, "", bad)).await.expect_problem(
            400,
            "invalid_subject",
            &format!("Nav-Personident {bad}"),
        );
    }
    assert_eq!(world.k429.count(), 1, "only the valid call is forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_in_query() {
    let (world, bru) = started().await;
    let call = |query: &str| {
        bru.get(&format!("/data/k429/sak-query{query}"))
            .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
    };
    send(call(&format!("?fnr={KARI}&aar=2024")))
        .await
        .expect_status(200, "valid subject in ?fnr");
    let reqs = world.k429.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/sak-query");
    let q = reqs[0].query.clone().unwrap_or_default();
    assert!(
        q.split('&').any(|p| p == format!("fnr={KARI}")) && q.split('&').any(|p| p == "aar=2024"),
        "provider query {q:?}"
    );

    send(call("?aar=2024"))
        .await
        .expect_problem(400, "subject_missing", "no fnr parameter");
    send(call(&format!("?fnr={BAD_CONTROL_DIGITS}")))
        .await
        .expect_problem(400, "invalid_subject", "fnr with bad control digits");
    assert_eq!(world.k429.count(), 1, "only the valid call is forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_in_path_segment() {
    let (world, bru) = started().await;
    let call = |rest: &str| {
        bru.get(&format!("/data/k429/sak-path{rest}"))
            .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
    };
    send(call(&format!("/{KARI}/vedtak")))
        .await
        .expect_status(200, "valid subject as path segment 0");
    let reqs = world.k429.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, format!("/sak-path/{KARI}/vedtak"));

    send(call(""))
        .await
        .expect_problem(400, "subject_missing", "no path segment");
    send(call(&format!("/{BAD_CONTROL_DIGITS}/vedtak")))
        .await
        .expect_problem(400, "invalid_subject", "segment with bad control digits");
    assert_eq!(world.k429.count(), 1, "only the valid call is forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_in_json_body() {
    let (world, bru) = started().await;
    let call = |body: serde_json::Value| {
        bru.post("/data/k429/sak-json")
            .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Content-Type", "application/json")
            .body(body.to_string())
    };
    let body = json!({"person": {"id": KARI}, "sak": 17});
    send(call(body.clone()))
        .await
        .expect_status(200, "valid subject at /person/id");
    let reqs = world.k429.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/sak-json");
    let got: serde_json::Value = serde_json::from_slice(&reqs[0].body).expect("provider got JSON");
    assert_eq!(got, body, "the body reaches the provider unchanged");

    send(call(json!({"person": {}, "sak": 17})))
        .await
        .expect_problem(400, "subject_missing", "no /person/id");
    send(call(json!({"id": KARI}))).await.expect_problem(
        400,
        "subject_missing",
        "subject at another pointer",
    );
    send(call(json!({"person": {"id": BAD_CONTROL_DIGITS}})))
        .await
        .expect_problem(400, "invalid_subject", "bad control digits at /person/id");
    assert_eq!(world.k429.count(), 1, "only the valid call is forwarded");
}
