//! RFC 8725 and friends: every attack token is answered 401, nothing reaches a
//! provider, and the refusal is recorded as a `deny` decision.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bru_tests::*;
use serde_json::{json, Value};

/// Codes a refused token may carry.
const ANY_401: &[&str] = &[
    "invalid_token",
    "token_expired",
    "untrusted_issuer",
    "wrong_audience",
];

/// Sends attack tokens, then checks providers and audit records.
struct Attacks<'a> {
    world: &'a TestWorld,
    bru: &'a Bru,
    /// (what, transfer id, code)
    refused: Vec<(String, String, String)>,
    /// Requests the providers had before the first attack.
    baseline: (usize, usize),
}

impl<'a> Attacks<'a> {
    fn new(world: &'a TestWorld, bru: &'a Bru) -> Self {
        Attacks {
            world,
            bru,
            refused: Vec::new(),
            baseline: (world.k429.count(), world.nav.count()),
        }
    }

    /// NAV's otherwise valid call with `token`; must be 401 with one of `codes`.
    async fn refuse(&mut self, what: &str, token: &str, codes: &[&str]) {
        let r = send(
            self.bru
                .get("/data/k429/sosialtjeneste")
                .bearer_auth(token)
                .header("Bru-Purpose", PURPOSE_SOSIAL)
                .header("Nav-Personident", KARI),
        )
        .await;
        let code = r.code().unwrap_or_default();
        assert!(
            r.status == 401 && codes.contains(&code.as_str()),
            "{what}: expected 401 with code in {codes:?}, got {} {:?}",
            r.status,
            r.text()
        );
        r.check_problem_shape(what);
        self.refused
            .push((what.to_owned(), r.problem_transfer_id(), code));
    }

    /// Nothing was forwarded, and every refusal has its `deny` decision record.
    async fn finish(self) {
        let after = (self.world.k429.count(), self.world.nav.count());
        assert_eq!(
            after,
            self.baseline,
            "attack tokens reached a provider (k429, nav requests before/after): {:?}",
            self.world
                .k429
                .requests()
                .iter()
                .skip(self.baseline.0)
                .map(|r| format!("{} {}", r.method, r.path))
                .collect::<Vec<_>>()
        );
        let ids: Vec<String> = self.refused.iter().map(|(_, t, _)| t.clone()).collect();
        let records = self
            .world
            .wait_records("a decision record for every refused token", |r| {
                ids.iter().all(|t| find_record(r, t, "decision").is_some())
            })
            .await;
        for (what, tid, code) in &self.refused {
            let rec = find_record(&records, tid, "decision").unwrap();
            assert_eq!(rec["decision"], "deny", "{what}: record {rec}");
            assert_eq!(rec["code"], code.as_str(), "{what}: record {rec}");
        }
    }
}

async fn started() -> (TestWorld, Bru) {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    (world, bru)
}

fn attacker() -> RsaKey {
    RsaKey::pooled(2, "attacker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_tokens_of_each_issuer_pass() {
    // The control for this file: the same calls with honest tokens succeed.
    let (world, bru) = started().await;
    for (what, token) in [
        ("RS256 test-mp", world.mp_token(NAV, SCOPE_SOSIAL)),
        (
            "ES256 test-mp-es",
            world.es(NAV, SCOPE_SOSIAL).sign(&world.es_signer()),
        ),
        (
            "RS256 test-mp-aud",
            world.aud(NAV, SCOPE_SOSIAL).sign(&world.aud_signer()),
        ),
    ] {
        send(
            bru.get("/data/k429/sosialtjeneste")
                .bearer_auth(token)
                .header("Bru-Purpose", PURPOSE_SOSIAL)
                .header("Nav-Personident", KARI),
        )
        .await
        .expect_status(200, what);
    }
    assert_eq!(world.k429.count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alg_none_is_refused() {
    let (world, bru) = started().await;
    let mut a = Attacks::new(&world, &bru);
    for alg in ["none", "None", "NONE", "nOnE"] {
        let jwt = world.mp(NAV, SCOPE_SOSIAL).header("alg", alg);
        let unsigned = jwt.sign(&Signer::Fixed(Vec::new()));
        a.refuse(
            &format!("alg {alg}, empty signature"),
            &unsigned,
            &["invalid_token"],
        )
        .await;
        // `none` with a real RS256 signature attached.
        let signed = jwt.sign(&world.mp_signer());
        a.refuse(
            &format!("alg {alg}, RS256 signature"),
            &signed,
            &["invalid_token"],
        )
        .await;
    }
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_with_the_rsa_public_key_as_secret_is_refused() {
    let (world, bru) = started().await;
    let mut a = Attacks::new(&world, &bru);
    let key = &world.mp_key;
    let spki_pem = key.spki_pem();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("SPKI PEM", spki_pem.clone().into_bytes()),
        (
            "SPKI PEM without final newline",
            spki_pem.trim_end().as_bytes().to_vec(),
        ),
        ("SPKI DER", key.spki_der()),
        ("PKCS#1 PEM", key.pkcs1_pem().into_bytes()),
        ("PKCS#1 DER", key.pkcs1_der()),
        ("JWK JSON", key.jwk().to_string().into_bytes()),
    ];
    for (what, secret) in secrets {
        for alg in ["HS256", "HS384", "HS512"] {
            // HS384/HS512 are signed with SHA-256 here: a lax verifier still must not
            // reach the MAC step with an RSA key.
            let token = world
                .mp(NAV, SCOPE_SOSIAL)
                .header("alg", alg)
                .sign(&Signer::Hmac(secret.clone()));
            a.refuse(
                &format!("{alg} keyed with the {what}"),
                &token,
                &["invalid_token"],
            )
            .await;
        }
    }
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_or_null_signature_is_refused() {
    let (world, bru) = started().await;
    let mut a = Attacks::new(&world, &bru);
    let jwt = world.mp(NAV, SCOPE_SOSIAL);
    let valid = jwt.sign(&world.mp_signer());
    let (h, p, _) = segments(&valid);
    for (what, token) in [
        ("empty signature segment", format!("{h}.{p}.")),
        ("no signature segment", format!("{h}.{p}")),
        (
            "signature of 256 zero bytes",
            format!("{h}.{p}.{}", b64u([0u8; 256])),
        ),
        ("signature of one zero byte", format!("{h}.{p}.AA")),
        ("signature `null`", format!("{h}.{p}.null")),
        ("four segments", format!("{valid}.AA")),
    ] {
        a.refuse(what, &token, &["invalid_token"]).await;
    }
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_zero_signature_is_refused() {
    // CVE-2022-21449 ("psychic signatures"): r = s = 0 must never verify.
    let (world, bru) = started().await;
    let mut a = Attacks::new(&world, &bru);
    let jwt = world.es(NAV, SCOPE_SOSIAL);
    let zero64 = jwt.sign(&Signer::Fixed(vec![0u8; 64]));
    a.refuse(
        "ES256 r = s = 0 (64 zero bytes)",
        &zero64,
        &["invalid_token"],
    )
    .await;
    let der_zero = jwt.sign(&Signer::Fixed(vec![
        0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00,
    ]));
    a.refuse("ES256 r = s = 0 (DER)", &der_zero, &["invalid_token"])
        .await;
    let empty = jwt.sign(&Signer::Fixed(Vec::new()));
    a.refuse("ES256 empty signature", &empty, &["invalid_token"])
        .await;
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_jwk_header_is_ignored() {
    let (world, bru) = started().await;
    let mut a = Attacks::new(&world, &bru);
    let evil = attacker();
    let with_kid = world
        .mp(NAV, SCOPE_SOSIAL)
        .header("jwk", evil.public_members())
        .sign(&Signer::Rsa(evil.clone()));
    a.refuse(
        "jwk header, issuer's kid, attacker's signature",
        &with_kid,
        &["invalid_token"],
    )
    .await;
    let own_kid = world
        .mp(NAV, SCOPE_SOSIAL)
        .header("kid", evil.kid.as_str())
        .header("jwk", evil.jwk())
        .sign(&Signer::Rsa(evil.clone()));
    a.refuse("jwk header with its own kid", &own_kid, &["invalid_token"])
        .await;
    let no_kid = world
        .mp(NAV, SCOPE_SOSIAL)
        .without_header("kid")
        .header("jwk", evil.public_members())
        .sign(&Signer::Rsa(evil));
    a.refuse("jwk header, no kid", &no_kid, &["invalid_token"])
        .await;
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jku_and_x5u_are_never_fetched() {
    let (world, bru) = started().await;
    let trap = Trap::start().await;
    let mut a = Attacks::new(&world, &bru);
    let evil = attacker();
    for (member, path) in [("jku", "/jwks.json"), ("x5u", "/cert.pem")] {
        for (kid_what, kid) in [
            ("unknown kid", evil.kid.clone()),
            ("issuer's kid", world.mp_key.kid.clone()),
        ] {
            let token = world
                .mp(NAV, SCOPE_SOSIAL)
                .header("kid", kid.as_str())
                .header(member, trap.url(path))
                .sign(&Signer::Rsa(evil.clone()));
            a.refuse(
                &format!("{member} header, {kid_what}"),
                &token,
                &["invalid_token"],
            )
            .await;
        }
    }
    // Give a background fetch time to show itself.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        trap.connections(),
        0,
        "Bru connected to a URL taken from a token header"
    );
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kid_injection_is_refused() {
    let (world, bru) = started().await;
    let mut a = Attacks::new(&world, &bru);
    let evil = attacker();
    let cases: Vec<(&str, String, &str, Signer)> = vec![
        (
            "kid ../ to /dev/null, HS256 with empty key",
            "../../../../../../../dev/null".into(),
            "HS256",
            Signer::Hmac(Vec::new()),
        ),
        (
            "kid ../ to /etc/passwd",
            "../../../../../../../etc/passwd".into(),
            "RS256",
            Signer::Rsa(evil.clone()),
        ),
        (
            "kid with SQL quote",
            "x' UNION SELECT 'secret' --".into(),
            "HS256",
            Signer::Hmac(b"secret".to_vec()),
        ),
        (
            "kid with double quote",
            format!("{}\"}}", world.mp_key.kid),
            "RS256",
            Signer::Rsa(evil.clone()),
        ),
        (
            "kid with NUL",
            format!("{}\u{0}", world.mp_key.kid),
            "RS256",
            Signer::Rsa(evil.clone()),
        ),
        (
            "kid as a URL",
            "http://127.0.0.1:1/key".into(),
            "RS256",
            Signer::Rsa(evil),
        ),
    ];
    for (what, kid, alg, signer) in cases {
        let token = world
            .mp(NAV, SCOPE_SOSIAL)
            .header("kid", kid.as_str())
            .header("alg", alg)
            .sign(&signer);
        a.refuse(what, &token, &["invalid_token"]).await;
    }
    // kid of another type.
    let token = world
        .mp(NAV, SCOPE_SOSIAL)
        .header("kid", json!({"$ne": null}))
        .sign(&world.mp_signer());
    a.refuse("kid as an object", &token, &["invalid_token"])
        .await;
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_refreshes_the_jwks_at_most_at_the_configured_rate() {
    let world = TestWorld::builder()
        .jwks_refresh_min_interval_ms(600_000)
        .build()
        .await;
    let bru = world.start().await;
    let mut a = Attacks::new(&world, &bru);
    let evil = attacker();
    for i in 0..50 {
        let token = world
            .mp(NAV, SCOPE_SOSIAL)
            .header("kid", format!("random-{}", uuid::Uuid::new_v4()))
            .sign(&Signer::Rsa(evil.clone()));
        a.refuse(&format!("random kid #{i}"), &token, &["invalid_token"])
            .await;
    }
    let fetches = world.jwks.fetches("mp");
    assert!(
        fetches <= 2,
        "50 tokens with unknown kids caused {fetches} JWKS fetches (at most 2 allowed)"
    );
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_refresh_picks_up_a_rotated_key() {
    let world = TestWorld::builder()
        .jwks_refresh_min_interval_ms(1000)
        .build()
        .await;
    let bru = world.start().await;
    send(world.nav_sosial(&bru, "", KARI))
        .await
        .expect_status(200, "token with the first key");
    let before = world.jwks.fetches("mp");
    assert!(
        before >= 1,
        "Bru must have fetched the JWKS to verify the first token"
    );

    let rotated = RsaKey::pooled(3, "rotated");
    world.jwks.add_key("mp", rotated.jwk());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let token = world
        .mp(NAV, SCOPE_SOSIAL)
        .header("kid", rotated.kid.as_str())
        .sign(&Signer::Rsa(rotated));
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(token)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await
    .expect_status(
        200,
        "token with a key published after start (unknown kid → refresh)",
    );
    assert!(
        world.jwks.fetches("mp") > before,
        "no JWKS refresh happened"
    );
    assert_eq!(world.k429.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_json_members_are_refused() {
    let (world, bru) = started().await;
    let mut a = Attacks::new(&world, &bru);
    let signer = world.mp_signer();
    let t = now();
    let header = json!({"alg": "RS256", "kid": world.mp_key.kid}).to_string();
    let consumer = |org: &str| {
        json!({"authority": "iso6523-actorid-upis", "ID": format!("0192:{org}")}).to_string()
    };
    let payload = |first: &str, second: &str| {
        format!(
            r#"{{"iss":"{ISSUER_MP}","iat":{t},"exp":{},"jti":"{}","client_id":"c","scope":"{SCOPE_SOSIAL}","consumer":{first},"consumer":{second}}}"#,
            t + 300,
            uuid::Uuid::new_v4()
        )
    };
    let snoop_then_nav = raw_token(&header, &payload(&consumer(SNOOP), &consumer(NAV)), &signer);
    a.refuse(
        "two consumer members (Snoop, NAV)",
        &snoop_then_nav,
        &["invalid_token"],
    )
    .await;
    let nav_then_snoop = raw_token(&header, &payload(&consumer(NAV), &consumer(SNOOP)), &signer);
    a.refuse(
        "two consumer members (NAV, Snoop)",
        &nav_then_snoop,
        &["invalid_token"],
    )
    .await;
    let two_exp = format!(
        r#"{{"iss":"{ISSUER_MP}","iat":{t},"exp":{},"exp":{},"jti":"j","client_id":"c","scope":"{SCOPE_SOSIAL}","consumer":{}}}"#,
        t - 3600,
        t + 300,
        consumer(NAV)
    );
    a.refuse(
        "two exp members",
        &raw_token(&header, &two_exp, &signer),
        ANY_401,
    )
    .await;
    let claims = world.mp(NAV, SCOPE_SOSIAL).claims_json();
    let two_alg = format!(
        r#"{{"alg":"none","alg":"RS256","kid":"{}"}}"#,
        world.mp_key.kid
    );
    a.refuse(
        "two alg members in the header",
        &raw_token(&two_alg, &claims, &signer),
        &["invalid_token"],
    )
    .await;
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_payload_is_refused() {
    let (world, bru) = started().await;
    let mut a = Attacks::new(&world, &bru);
    // A real token for a scope NAV may not use here, with the payload swapped
    // for one that has the right scope.
    let real = world.mp_token(NAV, SCOPE_INNTEKT);
    let (h, _, s) = segments(&real);
    let wanted = world.mp(NAV, SCOPE_SOSIAL).claims_json();
    a.refuse(
        "payload swapped, signature kept",
        &format!("{h}.{}.{s}", b64u(&wanted)),
        &["invalid_token"],
    )
    .await;
    // Snoop's token with the consumer changed to NAV.
    let snoop = world.mp_token(SNOOP, SCOPE_SOSIAL);
    let (h, p, s) = segments(&snoop);
    let mut claims: Value = serde_json::from_slice(&b64u_decode(&p)).unwrap();
    claims["consumer"]["ID"] = json!(format!("0192:{NAV}"));
    a.refuse(
        "consumer changed after signing",
        &format!("{h}.{}.{s}", b64u(claims.to_string())),
        &["invalid_token"],
    )
    .await;
    // The header changed after signing.
    let good = world.mp_token(NAV, SCOPE_SOSIAL);
    let (_, p, s) = segments(&good);
    let h2 = b64u(json!({"alg": "RS256", "kid": world.mp_key.kid, "typ": "at+jwt"}).to_string());
    a.refuse(
        "header changed after signing",
        &format!("{h2}.{p}.{s}"),
        &["invalid_token"],
    )
    .await;
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_not_yet_valid_tokens_are_refused() {
    let (world, bru) = started().await;
    let mut a = Attacks::new(&world, &bru);
    let t = now();
    let s = world.mp_signer();
    let expired = world
        .mp(NAV, SCOPE_SOSIAL)
        .claim("iat", t - 1000)
        .claim("exp", t - 600)
        .sign(&s);
    a.refuse("exp ten minutes ago", &expired, &["token_expired"])
        .await;
    let nbf = world
        .mp(NAV, SCOPE_SOSIAL)
        .claim("nbf", t + 3600)
        .claim("exp", t + 7200)
        .sign(&s);
    a.refuse("nbf an hour ahead", &nbf, &["invalid_token"])
        .await;
    let iat = world
        .mp(NAV, SCOPE_SOSIAL)
        .claim("iat", t + 86_400)
        .claim("exp", t + 90_000)
        .sign(&s);
    a.refuse("iat a day ahead", &iat, &["invalid_token"]).await;
    let no_exp = world.mp(NAV, SCOPE_SOSIAL).without_claim("exp").sign(&s);
    a.refuse("no exp", &no_exp, &["invalid_token"]).await;
    let string_exp = world
        .mp(NAV, SCOPE_SOSIAL)
        .claim("exp", (t + 300).to_string())
        .sign(&s);
    a.refuse("exp as a string", &string_exp, &["invalid_token"])
        .await;
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_issuer_and_cross_issuer_keys_are_refused() {
    let (world, bru) = started().await;
    let mut a = Attacks::new(&world, &bru);
    let foreign = world
        .mp(NAV, SCOPE_SOSIAL)
        .claim("iss", "https://evil.example/")
        .sign(&world.mp_signer());
    a.refuse("iss no config names", &foreign, &["untrusted_issuer"])
        .await;
    let near = world
        .mp(NAV, SCOPE_SOSIAL)
        .claim("iss", ISSUER_MP.trim_end_matches('/'))
        .sign(&world.mp_signer());
    a.refuse(
        "iss without the trailing slash",
        &near,
        &["untrusted_issuer"],
    )
    .await;
    let no_iss = world
        .mp(NAV, SCOPE_SOSIAL)
        .without_claim("iss")
        .sign(&world.mp_signer());
    a.refuse("no iss", &no_iss, &["untrusted_issuer", "invalid_token"])
        .await;
    // iss of the ES256 issuer, signed RS256 with test-mp's key: alg not allowed there.
    let rs_as_es = world
        .mp(NAV, SCOPE_SOSIAL)
        .claim("iss", ISSUER_ES)
        .sign(&world.mp_signer());
    a.refuse(
        "test-mp-es iss with an RS256 signature",
        &rs_as_es,
        &["invalid_token"],
    )
    .await;
    // iss of test-mp, signed ES256 with test-mp-es's key.
    let es_as_mp = world
        .es(NAV, SCOPE_SOSIAL)
        .claim("iss", ISSUER_MP)
        .sign(&world.es_signer());
    a.refuse(
        "test-mp iss with an ES256 key of test-mp-es",
        &es_as_mp,
        &["invalid_token"],
    )
    .await;
    // iss of test-mp, signed RS256 by test-mp-aud's key under its kid.
    let aud_as_mp = world
        .mp(NAV, SCOPE_SOSIAL)
        .header("kid", world.aud_key.kid.as_str())
        .sign(&world.aud_signer());
    a.refuse(
        "test-mp iss with test-mp-aud's key",
        &aud_as_mp,
        &["invalid_token"],
    )
    .await;
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_token_is_refused_before_any_key_lookup() {
    let world = TestWorld::builder()
        .max_header_bytes(65_536)
        .jwks_refresh_min_interval_ms(1000)
        .build()
        .await;
    let bru = world.start().await;
    send(world.nav_sosial(&bru, "", KARI))
        .await
        .expect_status(200, "warm-up call");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = world.jwks.fetches("mp");
    let evil = attacker();
    let mut a = Attacks::new(&world, &bru);
    let big = world
        .mp(NAV, SCOPE_SOSIAL)
        .header("kid", format!("big-{}", uuid::Uuid::new_v4()))
        .claim("fyll", "x".repeat(20 * 1024))
        .sign(&Signer::Rsa(evil.clone()));
    assert!(big.len() > 20 * 1024);
    let started = std::time::Instant::now();
    a.refuse(
        "a 20 KB token with an unknown kid",
        &big,
        &["invalid_token"],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(
        world.jwks.fetches("mp"),
        before,
        "a 20 KB token made Bru fetch the JWKS (refused in {took:?})"
    );
    // Control: a small token with an unknown kid does make Bru look (so the
    // assertion above can fail).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let small = world
        .mp(NAV, SCOPE_SOSIAL)
        .header("kid", format!("small-{}", uuid::Uuid::new_v4()))
        .sign(&Signer::Rsa(evil));
    a.refuse(
        "a small token with an unknown kid",
        &small,
        &["invalid_token"],
    )
    .await;
    assert!(
        world.jwks.fetches("mp") > before,
        "control: an unknown kid in a small token should refresh the JWKS"
    );
    a.finish().await;
}
