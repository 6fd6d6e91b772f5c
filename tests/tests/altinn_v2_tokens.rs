//! Altinn 2's own consent tokens (`iss` `altinn.no`) as a consent basis
//! (SPEC 9.1, "all three token generations"), black-box against the real
//! `bru` on SQLite and (with `BRU_TEST_STORE=postgres`) PostgreSQL.
//!
//! The token is minted here as Altinn 2 mints it, from Altinn's documented
//! example (Altinn/docs `content/utviklingsguider/samtykke/datakilde/bruk-av-token`:
//! header `{"alg": "RS256", "kid", "x5t", "typ": "JWT"}`, claims `Services`,
//! `AuthorizationCode`, `OfferedBy`, `CoveredBy`, `DelegatedDate`,
//! `ValidToDate`, `iss`, `exp`, `nbf`), signed by a key published as a JWK
//! set as Altinn publishes its signing keys. It travels in `AltinnSamtykke`
//! beside the caller's Maskinporten token, as Skatteetaten's APIs take it
//! (Skatteetaten/api-dokumentasjon `docs/om/samtykke.md`, step 7).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use bru_tests::altinn::*;
use bru_tests::*;
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// Where the test Altinn 2 publishes its keys (Altinn's `GET api/metadata/jwk`).
const JWK_PATH: &str = "/api/metadata/jwk";
/// Altinn 2 services (`{serviceCode}_{serviceEditionCode}`) whose migrated
/// resources (`nav_…`) the world's datasets name.
const SERVICE_INNTEKT: &str = "4629_2";
const SERVICE_ONCE: &str = "4631_1";

/// Serves `keys` as a JWK set on 127.0.0.1; the URL of the set.
async fn altinn2_keys(keys: Vec<RsaKey>) -> String {
    let jwks = json!({ "keys": keys.iter().map(RsaKey::jwk).collect::<Vec<_>>() });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(JWK_PATH, get(move || async move { Json(jwks) }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}{JWK_PATH}")
}

/// Altinn 2's signing key in these worlds.
fn altinn2_key() -> RsaKey {
    RsaKey::pooled(1, "altinn2")
}

/// The claims of Altinn's example, for `code` from `offered_by` to
/// `covered_by`, with `services`, valid `valid_for` seconds from now; the
/// token itself lives 30 s, as Altinn 2's do.
fn claims(
    code: &str,
    offered_by: &str,
    covered_by: &str,
    services: &[&str],
    valid_for: i64,
) -> Value {
    let now = now();
    json!({
        "Services": services,
        "AuthorizationCode": code,
        "OfferedBy": offered_by,
        "CoveredBy": covered_by,
        "DelegatedDate": now - 3600,
        "ValidToDate": now + valid_for,
        "iss": "altinn.no",
        "exp": now + 30,
        "nbf": now,
    })
}

fn sign(key: &RsaKey, claims: &Value) -> String {
    Jwt::new(
        json!({"alg": "RS256", "kid": key.kid, "x5t": key.kid, "typ": "JWT"}),
        claims.clone(),
    )
    .sign(&Signer::Rsa(key.clone()))
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A world whose `nav/inntekt-a2` names the migrated resource `nav_4629_2`
/// and whose `nav/inntekt-engang` the one-time `nav_4631_1`; `[altinn]`
/// trusts `keys` as Altinn 2's (none: no `altinn2_jwks_url`).
async fn world(keys: Option<Vec<RsaKey>>) -> (TestWorld, FakeAltinn, Bru) {
    let world = TestWorld::new().await;
    let altinn = FakeAltinn::start().await;
    let extra = match keys {
        Some(keys) => format!("altinn2_jwks_url = \"{}\"\n", altinn2_keys(keys).await),
        None => String::new(),
    };
    altinn_world(&world, &altinn, &extra);
    let path = world.dir.path().join("policy.toml");
    let policy = std::fs::read_to_string(&path).unwrap();
    let once = format!("altinn_resource = \"{RESOURCE_ONCE}\"");
    assert!(policy.contains(&once));
    std::fs::write(
        &path,
        policy.replace(&once, &format!("altinn_resource = \"nav_{SERVICE_ONCE}\"")),
    )
    .unwrap();
    let bru = world.start().await;
    (world, altinn, bru)
}

async fn call(bru: &Bru, dataset: &str, bearer: &str, altinn2: &[&str], subject: &str) -> Reply {
    let mut request = bru
        .get(&format!("/data/nav/{dataset}"))
        .bearer_auth(bearer)
        .header("Bru-Purpose", PURPOSE_OMSORG)
        .header("Nav-Personident", subject);
    for token in altinn2 {
        request = request.header("AltinnSamtykke", *token);
    }
    send(request).await
}

#[tokio::test]
async fn an_altinn_2_consent_token_beside_the_maskinporten_token_is_a_consent_basis() {
    let key = altinn2_key();
    let (world, _altinn, bru) = world(Some(vec![key.clone()])).await;
    world.nav.set_body(income_rows());
    let code = uuid();
    let altinn2 = sign(
        &key,
        &claims(
            &code,
            KARI,
            K429,
            &[SERVICE_INNTEKT, "4629_2_inntektsaar=2023", "4630_2"],
            86_400,
        ),
    );
    let mp = world.mp_token(K429, SCOPE_INNTEKT);
    let reply = call(&bru, "inntekt-a2", &mp, &[&altinn2], KARI).await;
    reply.expect_status(200, "altinn 2 consent");
    // Only the consented income year (the policy's filter key is `INNTEKTSAAR`).
    assert_eq!(
        reply.json(),
        json!([{"aar": 2023, "sum": 430000, "arbeidsgiver": "K429"}])
    );
    let forwarded = world.nav.requests().pop().unwrap();
    assert_eq!(
        forwarded.header("altinnsamtykke"),
        None,
        "the Altinn 2 token is not forwarded"
    );
    let (_, assertion) = peek(forwarded.header("bru-assertion").unwrap());
    assert_eq!(assertion["consent_id"], format!("altinn:{code}"));
    let record = world
        .record(&reply.transfer_id().unwrap(), "decision")
        .await;
    assert_eq!(record["consent_id"], format!("altinn:{code}"));
    assert_eq!(record["decision"], "allow");

    // Through the vendor: the Maskinporten token is K429's, delegated to Omsorgsapp.
    let vendor = world
        .mp(K429, SCOPE_INNTEKT)
        .claim(
            "supplier",
            json!({"authority": "iso6523-actorid-upis", "ID": format!("0192:{OMSORGSAPP}")}),
        )
        .sign(&world.mp_signer());
    call(&bru, "inntekt-a2", &vendor, &[&altinn2], KARI)
        .await
        .expect_status(200, "through the vendor");

    // A service the consent does not grant is not a basis for that dataset;
    // without the Altinn 2 token the dataset needs a consent as always.
    call(&bru, "inntekt-a2", &mp, &[], KARI)
        .await
        .expect_problem(403, "consent_required", "no consent");
}

#[tokio::test]
async fn each_rule_of_an_altinn_2_consent_is_refused_with_its_code() {
    let key = altinn2_key();
    let (world, altinn, bru) = world(Some(vec![key.clone()])).await;
    let mp = world.mp_token(K429, SCOPE_INNTEKT);
    let cases = [
        // CoveredBy is another organisation than the token's consumer.
        (
            claims(&uuid(), KARI, NAV, &[SERVICE_INNTEKT], 86_400),
            "consent_mismatch",
        ),
        // OfferedBy is another person than the call's subject.
        (
            claims(&uuid(), OLA, K429, &[SERVICE_INNTEKT], 86_400),
            "consent_subject_mismatch",
        ),
        // ValidToDate has passed (the token itself is fresh).
        (
            claims(&uuid(), KARI, K429, &[SERVICE_INNTEKT], -60),
            "consent_expired",
        ),
        // The dataset's service is not among Services.
        (
            claims(&uuid(), KARI, K429, &["4630_2"], 86_400),
            "consent_not_found",
        ),
        // An organisation gave it: no person consented.
        (
            claims(&uuid(), K429, K429, &[SERVICE_INNTEKT], 86_400),
            "consent_subject_mismatch",
        ),
    ];
    for (claims, code) in cases {
        let reply = call(&bru, "inntekt-a2", &mp, &[&sign(&key, &claims)], KARI).await;
        reply.expect_problem(403, code, code);
        let record = world.record(&reply.problem_transfer_id(), "decision").await;
        assert_eq!(record["decision"], "deny");
        assert_eq!(record["code"], code);
        assert_eq!(
            record["consent_id"],
            format!("altinn:{}", claims["AuthorizationCode"].as_str().unwrap())
        );
    }

    // The token itself: Altinn 2's signature, its lifetime, its issuer.
    let good = claims(&uuid(), KARI, K429, &[SERVICE_INNTEKT], 86_400);
    let attacker = RsaKey::pooled(2, "altinn2");
    let mut expired = good.clone();
    expired["exp"] = json!(now() - 120);
    expired["nbf"] = json!(now() - 150);
    let mut other_issuer = good.clone();
    other_issuer["iss"] = json!("altinn.example");
    let mut not_altinn2 = good.clone();
    not_altinn2["CoveredBy"] = json!("not an organisation");
    for (token, status, code) in [
        (sign(&attacker, &good), 401, "invalid_token"),
        (sign(&key, &expired), 401, "token_expired"),
        (sign(&key, &other_issuer), 401, "untrusted_issuer"),
        (sign(&key, &not_altinn2), 401, "invalid_token"),
        ("not-a-token".to_owned(), 401, "invalid_token"),
    ] {
        call(&bru, "inntekt-a2", &mp, &[&token], KARI)
            .await
            .expect_problem(status, code, code);
    }
    // Two consents in one call, or the header twice: which one counts is unclear.
    let token = sign(&key, &good);
    call(&bru, "inntekt-a2", &mp, &[&token, &token], KARI)
        .await
        .expect_problem(400, "malformed_request", "header twice");
    let with_consent = token_with_details(
        &world,
        K429,
        SCOPE_INNTEKT,
        json!([consent_detail(
            &uuid(),
            KARI,
            K429,
            RESOURCE_MIGRATED,
            &next_year(),
            json!({})
        )]),
    );
    call(&bru, "inntekt-a2", &with_consent, &[&token], KARI)
        .await
        .expect_problem(400, "malformed_request", "two consents");
    assert_eq!(world.nav.count(), 0, "nothing was forwarded");

    // Revoked in Altinn: refused from the poll after the feed shows it.
    let code = uuid();
    let token = sign(&key, &claims(&code, KARI, K429, &[SERVICE_INNTEKT], 86_400));
    call(&bru, "inntekt-a2", &mp, &[&token], KARI)
        .await
        .expect_status(200, "before revocation");
    altinn.publish(&code, "revoked");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let reply = call(&bru, "inntekt-a2", &mp, &[&token], KARI).await;
        if reply.status == 403 {
            reply.expect_problem(403, "consent_revoked", "after revocation");
            break;
        }
        reply.expect_status(200, "not yet seen");
        assert!(
            tokio::time::Instant::now() < deadline,
            "never refused after the feed showed the revocation"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_one_time_altinn_2_consent_is_used_once_under_concurrency() {
    let key = altinn2_key();
    let (world, _altinn, bru) = world(Some(vec![key.clone()])).await;
    let bru = std::sync::Arc::new(bru);
    let mp = world.mp_token(K429, SCOPE_INNTEKT);
    let token = sign(&key, &claims(&uuid(), KARI, K429, &[SERVICE_ONCE], 86_400));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (bru, mp, token) = (bru.clone(), mp.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            call(&bru, "inntekt-engang", &mp, &[&token], KARI).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let reply = t.await.unwrap();
        if reply.status == 200 {
            ok += 1;
        } else {
            reply.expect_problem(403, "consent_exhausted", "second use");
        }
    }
    assert_eq!(ok, 1, "exactly one call uses a one-time consent");
    assert_eq!(world.nav.count(), 1);
}

#[tokio::test]
async fn without_altinn_2_keys_an_altinn_2_token_is_not_trusted() {
    let key = altinn2_key();
    let (world, _altinn, bru) = world(None).await;
    let mp = world.mp_token(K429, SCOPE_INNTEKT);
    let token = sign(
        &key,
        &claims(&uuid(), KARI, K429, &[SERVICE_INNTEKT], 86_400),
    );
    call(&bru, "inntekt-a2", &mp, &[&token], KARI)
        .await
        .expect_problem(401, "untrusted_issuer", "no altinn2_jwks_url");
    assert_eq!(world.nav.count(), 0);
}
