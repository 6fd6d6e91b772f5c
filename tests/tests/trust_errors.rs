//! Issue 15, what an agency developer meets first: problem details that say
//! what to do, problem `type` URIs that resolve to a page on Bru, JSON answers
//! that end with a newline, demo tokens that last a walkthrough, and a demo
//! issuer whose tokens must name Bru as their audience.
#![allow(clippy::unwrap_used)]

use bru_tests::*;
use serde_json::{json, Value};

/// Every code of SPEC section 3 and the JSON APIs' own codes.
const CODES: [&str; 32] = [
    "purpose_required",
    "subject_missing",
    "invalid_subject",
    "malformed_request",
    "missing_token",
    "invalid_token",
    "token_expired",
    "untrusted_issuer",
    "wrong_audience",
    "insufficient_scope",
    "consumer_not_allowed",
    "purpose_not_allowed",
    "consent_required",
    "consent_not_found",
    "consent_revoked",
    "consent_expired",
    "consent_exhausted",
    "consent_mismatch",
    "consent_subject_mismatch",
    "unknown_dataset",
    "request_too_large",
    "headers_too_large",
    "rate_limited",
    "upstream_error",
    "upstream_timeout",
    "audit_unavailable",
    "not_found",
    "store_unavailable",
    "invalid_transition",
    "consent_not_granted",
    "signing_failed",
    "internal_error",
];

fn detail(problem: &Value) -> String {
    problem["detail"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_missing_names_where_the_dataset_expects_the_subject() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    let nav = world.mp_token(NAV, &format!("{SCOPE_SOSIAL} {SCOPE_SAK}"));
    for (path, method_json, expected) in [
        ("/data/k429/sosialtjeneste", false, "Nav-Personident header"),
        ("/data/k429/sak-query", false, "query parameter fnr"),
        ("/data/k429/sak-path", false, "path segment 1"),
        ("/data/k429/sak-json", true, "JSON body field /person/id"),
    ] {
        let rb = if method_json {
            bru.post(path).json(&json!({"other": 1}))
        } else {
            bru.get(path)
        };
        let r = send(rb.bearer_auth(&nav).header("Bru-Purpose", PURPOSE_SOSIAL)).await;
        let p = r.expect_problem(400, "subject_missing", path);
        assert!(
            detail(&p).contains(expected),
            "{path}: the detail must name {expected:?}: {p}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_subject_says_control_digit_and_never_echoes_the_number() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    let r = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(world.mp_token(NAV, SCOPE_SOSIAL))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", BAD_CONTROL_DIGITS),
    )
    .await;
    let p = r.expect_problem(400, "invalid_subject", "a failed control digit");
    let d = detail(&p);
    assert!(d.contains("control digit"), "{d}");
    assert!(d.contains("Nav-Personident"), "{d}");
    assert!(!r.text().contains(BAD_CONTROL_DIGITS), "{}", r.text());
    assert!(!r.text().contains(&BAD_CONTROL_DIGITS[..6]), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_purposes_are_told_to_an_allowed_caller_and_not_to_a_stranger() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    let call = |token: String, purpose: Option<&'static str>| {
        let mut rb = bru
            .get("/data/k429/sosialtjeneste")
            .bearer_auth(token)
            .header("Nav-Personident", KARI);
        if let Some(p) = purpose {
            rb = rb.header("Bru-Purpose", p);
        }
        send(rb)
    };
    // NAV may use the dataset for sosialhjelp-saksbehandling only (its rule
    // narrows the dataset's two purposes).
    let r = call(world.mp_token(NAV, SCOPE_SOSIAL), None).await;
    let d = detail(&r.expect_problem(400, "purpose_required", "NAV without a purpose"));
    assert!(d.contains("Bru-Purpose"), "{d}");
    assert!(d.contains(PURPOSE_SOSIAL), "{d}");
    assert!(!d.contains(PURPOSE_TILSYN), "NAV may not use tilsyn: {d}");

    let r = call(world.mp_token(NAV, SCOPE_SOSIAL), Some(PURPOSE_TILSYN)).await;
    let d = detail(&r.expect_problem(403, "purpose_not_allowed", "NAV with tilsyn"));
    assert!(d.contains(PURPOSE_SOSIAL), "{d}");

    // K429's rule names no purposes: both of the dataset's.
    let r = call(world.mp_token(K429, SCOPE_SOSIAL), Some(PURPOSE_OMSORG)).await;
    let d = detail(&r.expect_problem(403, "purpose_not_allowed", "K429 with omsorg"));
    assert!(
        d.contains(PURPOSE_SOSIAL) && d.contains(PURPOSE_TILSYN),
        "{d}"
    );

    // Snoop is named on no dataset: it learns no purposes.
    let r = call(world.mp_token(SNOOP, SCOPE_SOSIAL), None).await;
    let text = r.text();
    r.expect_problem(400, "purpose_required", "Snoop without a purpose");
    assert!(
        !text.contains(PURPOSE_SOSIAL) && !text.contains(PURPOSE_TILSYN),
        "a stranger must not learn the purposes: {text}"
    );
    let r = call(world.mp_token(SNOOP, SCOPE_SOSIAL), Some("gjetning")).await;
    let text = r.text();
    assert_eq!(r.status, 403, "{text}");
    assert!(
        !text.contains(PURPOSE_SOSIAL) && !text.contains(PURPOSE_TILSYN),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_consent_and_expiry_details_say_what_to_do() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    let r = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await;
    let d = detail(&r.expect_problem(403, "insufficient_scope", "wrong scope"));
    assert!(d.contains(SCOPE_SOSIAL), "the needed scope is named: {d}");

    let r = send(
        bru.get("/data/nav/inntekt")
            .bearer_auth(world.mp_token(K429, SCOPE_INNTEKT))
            .header("Bru-Purpose", PURPOSE_OMSORG)
            .header("Nav-Personident", KARI),
    )
    .await;
    let d = detail(&r.expect_problem(403, "consent_required", "no consent"));
    assert!(d.contains("Bru-Consent"), "{d}");

    let t = now();
    let expired = world
        .mp(NAV, SCOPE_SOSIAL)
        .claim("iat", t - 3700)
        .claim("exp", t - 3600)
        .sign(&world.mp_signer());
    let r = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(&expired)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await;
    let d = detail(&r.expect_problem(401, "token_expired", "expired"));
    assert!(d.contains("expired") && d.contains("new token"), "{d}");
    assert!(!r.text().contains(&expired), "the token is not echoed");

    // Every data-plane problem's detail is more than its title.
    for p in [
        send(
            bru.get("/data/k429/finnes-ikke")
                .bearer_auth(world.mp_token(NAV, SCOPE_SOSIAL)),
        )
        .await
        .expect_problem(404, "unknown_dataset", "unknown dataset"),
        send(bru.get("/data/k429/sosialtjeneste"))
            .await
            .expect_problem(401, "missing_token", "no token"),
    ] {
        assert_ne!(
            p["detail"].as_str().unwrap().trim_end_matches('.'),
            p["title"].as_str().unwrap(),
            "{p}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problem_types_resolve_to_a_page_on_bru() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    // The type of a real problem is Bru's own URL.
    let r = send(bru.get("/data/k429/sosialtjeneste")).await;
    let p = r.expect_problem(401, "missing_token", "no token");
    let kind = p["type"].as_str().unwrap().to_owned();
    // The world's bru.toml says public_url = "https://localhost:8443"; the
    // test reaches the same Bru on its own port.
    assert_eq!(kind, "https://localhost:8443/problems/missing_token");
    let path = kind.strip_prefix("https://localhost:8443").unwrap();
    let page = send(bru.get(path)).await;
    page.expect_status(200, &kind);
    assert!(page.text().contains("missing_token"), "{}", page.text());

    // The router's 404 too.
    let r = send(bru.get("/finnes/ikke")).await;
    r.expect_status(404, "no route");
    let p = r.json();
    assert_eq!(p["code"], "not_found", "{p}");
    assert_eq!(
        p["type"], "https://localhost:8443/problems/not_found",
        "{p}"
    );

    for code in CODES {
        let r = send(bru.get(&format!("/problems/{code}"))).await;
        r.expect_status(200, code);
        assert!(
            r.header("content-type")
                .unwrap_or_default()
                .starts_with("text/html"),
            "{code}: {:?}",
            r.header("content-type")
        );
        assert!(r.text().contains(code), "{code}: the page names its code");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{code}"
        );
        assert!(
            r.header("content-security-policy")
                .unwrap_or_default()
                .contains("default-src 'none'"),
            "{code}"
        );
    }
    let r = send(bru.get("/problems/no_such_code")).await;
    r.expect_status(404, "an unknown code");
    assert_eq!(r.json()["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_answers_end_with_a_newline() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    let replies = [
        (
            "data-plane problem",
            send(bru.get("/data/k429/sosialtjeneste")).await,
        ),
        ("router 404", send(bru.get("/finnes/ikke")).await),
        ("jwks", send(bru.get("/.well-known/jwks.json")).await),
        ("openapi", send(bru.get("/openapi.json")).await),
        ("catalog", send(bru.get("/catalog/v1/datasets")).await),
        (
            "consent API problem",
            send(bru.post("/consent/v1/requests").json(&json!({}))).await,
        ),
        (
            "audit API answer",
            send(
                bru.get("/audit/v1/records")
                    .bearer_auth(world.mp_token(NAV, "bru:audit")),
            )
            .await,
        ),
    ];
    for (what, r) in replies {
        let _: Value = r.json();
        assert_eq!(r.body.last(), Some(&b'\n'), "{what}: {:?}", r.text());
        assert_ne!(
            r.body.get(r.body.len().saturating_sub(2)),
            Some(&b'\n'),
            "{what}: exactly one newline"
        );
    }
}

// ---------------------------------------------------------------- the demo

async fn demo() -> (tempfile::TempDir, Bru) {
    bru_tests::demo::start_on_sqlite("bru-demo-").await
}

async fn demo_token(bru: &Bru, request: Value) -> (Value, String) {
    let r = send(bru.post("/demo/maskinporten/token").json(&request)).await;
    r.expect_status(200, "POST /demo/maskinporten/token");
    assert_eq!(
        r.body.last(),
        Some(&b'\n'),
        "the token answer ends with a newline"
    );
    let body = r.json();
    let token = body["access_token"].as_str().unwrap().to_owned();
    (body, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_tokens_last_a_walkthrough_and_must_name_bru_as_audience() {
    let (dir, bru) = demo().await;
    let sosial = |t: &str| {
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(t)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI)
    };

    let (body, token) = demo_token(&bru, json!({"org": NAV, "scope": SCOPE_SOSIAL})).await;
    assert_eq!(body["expires_in"], 3600, "{body}");
    let (_, claims) = peek(&token);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    let aud = claims["aud"].as_str().expect("aud").to_owned();
    send(sosial(&token))
        .await
        .expect_status(200, "Bru's audience");

    let toml = std::fs::read_to_string(dir.path().join("bru.toml")).unwrap();
    assert!(toml.contains(&format!("audience = \"{aud}\"")), "{toml}");

    // A token Maskinporten minted for another resource server.
    let (_, other) = demo_token(
        &bru,
        json!({"org": NAV, "scope": SCOPE_SOSIAL, "resource": "https://other-api.example/"}),
    )
    .await;
    send(sosial(&other)).await.expect_problem(
        401,
        "wrong_audience",
        "a token for another audience",
    );

    // Signed with the demo key but naming no audience at all.
    let (header, claims) = peek(&token);
    let key_pem = std::fs::read(dir.path().join("demo-maskinporten-key.pem")).unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&key_pem).unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = header["kid"].as_str().map(str::to_owned);
    let mut no_aud = claims.clone();
    no_aud.as_object_mut().unwrap().remove("aud");
    no_aud["jti"] = json!(uuid::Uuid::new_v4().to_string());
    let minted = jsonwebtoken::encode(&h, &no_aud, &key).unwrap();
    send(sosial(&minted))
        .await
        .expect_problem(401, "wrong_audience", "a token without aud");

    // An hour-long token issued 50 minutes ago: older than Bru's 5-minute
    // cache of verified tokens, so what a cached token meets when its entry
    // expires, a full verification, still accepts it.
    let mut old = claims.clone();
    let t = now();
    old["iat"] = json!(t - 3000);
    old["exp"] = json!(t + 600);
    old["jti"] = json!(uuid::Uuid::new_v4().to_string());
    let minted = jsonwebtoken::encode(&h, &old, &key).unwrap();
    send(sosial(&minted))
        .await
        .expect_status(200, "a long-lived token verified after 50 minutes");

    // An expired demo token: the detail names the demo token endpoint.
    let mut expired = claims.clone();
    let t = now();
    expired["iat"] = json!(t - 7300);
    expired["exp"] = json!(t - 7200);
    expired["jti"] = json!(uuid::Uuid::new_v4().to_string());
    let minted = jsonwebtoken::encode(&h, &expired, &key).unwrap();
    let p =
        send(sosial(&minted))
            .await
            .expect_problem(401, "token_expired", "an expired demo token");
    assert!(
        detail(&p).contains("/demo/maskinporten/token"),
        "where to get a new token: {p}"
    );
}
