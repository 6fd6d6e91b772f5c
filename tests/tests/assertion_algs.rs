//! SPEC section 12: a provider's `Bru-Assertion` is signed with ES256 (the
//! default), EdDSA or HS256, as its `[upstream.X] assertion` says. The
//! provider (the test's own upstream) verifies what it received with an
//! independent implementation (the `jsonwebtoken` crate): the public keys
//! fetched from `/.well-known/jwks.json` over HTTPS, the HS256 secret from the
//! file both sides share. The claims are the same whichever algorithm signs.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bru_tests::*;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

const ED25519_KEY_LINE: &str = "assertion_ed25519_key_file = \"keys/assertion-ed25519.pem\"\n";
const SECRET_FILE: &str = "keys/k429-assertion.secret";

/// A world whose `[upstream.k429]` gets `settings` (TOML lines), with the
/// Ed25519 assertion key configured and a 48-byte shared secret in
/// `SECRET_FILE`. Returns the world and the secret.
async fn world_with(settings: &str) -> (TestWorld, Vec<u8>) {
    let world = TestWorld::new().await;
    let keys = world.dir.path().join("keys");
    std::fs::write(keys.join("assertion-ed25519.pem"), pki::ed25519_pkcs8_pem()).unwrap();
    let mut secret = vec![0u8; 48];
    aws_lc_rs::rand::fill(&mut secret).unwrap();
    std::fs::write(world.dir.path().join(SECRET_FILE), &secret).unwrap();
    edit_config(&world, |text| {
        with_k429(
            &text.replacen(
                "assertion_key_file = \"keys/assertion.pem\"\n",
                &format!("assertion_key_file = \"keys/assertion.pem\"\n{ED25519_KEY_LINE}"),
                1,
            ),
            settings,
        )
    });
    (world, secret)
}

fn with_k429(text: &str, settings: &str) -> String {
    let changed = text.replacen(
        "[upstream.k429]\n",
        &format!("[upstream.k429]\n{settings}\n"),
        1,
    );
    assert_ne!(changed, text, "the world's config has [upstream.k429]");
    changed
}

fn edit_config(world: &TestWorld, edit: impl FnOnce(&str) -> String) {
    let text = std::fs::read_to_string(&world.config_path).unwrap();
    let new = edit(&text);
    std::fs::write(&world.config_path, new).unwrap();
}

/// NAV's statutory call to k429; the transfer id and the assertion k429 received.
async fn call_k429(world: &TestWorld, bru: &Bru) -> (String, String) {
    let r = send(world.nav_sosial(bru, "", KARI)).await;
    r.expect_status(200, "NAV's statutory call");
    let tid = r.transfer_id().expect("Bru-Transfer-Id");
    let reqs = world.k429.requests();
    assert_eq!(reqs.len(), 1, "one call forwarded");
    let assertions = reqs[0].header_all("bru-assertion");
    assert_eq!(assertions.len(), 1, "one Bru-Assertion: {assertions:?}");
    (tid, assertions[0].to_owned())
}

async fn jwks(bru: &Bru) -> Value {
    let r = send(bru.get("/.well-known/jwks.json")).await;
    r.expect_status(200, "GET /.well-known/jwks.json");
    r.json()
}

/// What the provider does with a public-key assertion: the key named by
/// `kid` in Bru's JWKS, the algorithm pinned to what that key says.
fn verify_with_jwks(jwks: &Value, assertion: &str, alg: Algorithm) -> Value {
    let header = jsonwebtoken::decode_header(assertion).expect("a JWS header");
    assert_eq!(header.alg, alg, "the header's alg");
    let kid = header.kid.expect("a public-key assertion names its kid");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("no key {kid} in {jwks}"));
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone()).unwrap();
    let decoding = DecodingKey::from_jwk(&jwk).unwrap();
    jsonwebtoken::decode::<Value>(assertion, &decoding, &validation(alg))
        .unwrap_or_else(|e| panic!("the assertion does not verify with {key}: {e}"))
        .claims
}

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    // The provider's own organisation number is the audience.
    v.set_audience(&[format!("0192:{K429}")]);
    v.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    v.leeway = 5;
    v
}

/// The claims every algorithm carries for NAV's statutory call about Kari.
fn check_claims(claims: &Value, tid: &str) {
    assert_eq!(claims["iss"], "https://localhost:8443", "{claims}");
    assert_eq!(claims["aud"], format!("0192:{K429}"), "{claims}");
    assert_eq!(claims["jti"], tid, "{claims}");
    assert_eq!(claims["transfer_id"], tid, "{claims}");
    assert!(org_matches(&claims["consumer"], NAV), "{claims}");
    assert_eq!(claims["dataset"], "k429/sosialtjeneste", "{claims}");
    assert_eq!(claims["purpose"], PURPOSE_SOSIAL, "{claims}");
    assert_eq!(claims["basis"], "statutory", "{claims}");
    assert_eq!(claims["subject"], KARI, "{claims}");
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 60, "{claims}");
    let mut names: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "aud",
            "basis",
            "consent_id",
            "consumer",
            "dataset",
            "exp",
            "iat",
            "iss",
            "jti",
            "legal_ref",
            "purpose",
            "subject",
            "supplier",
            "transfer_id"
        ],
        "the same claim names for every algorithm"
    );
}

/// Bru's JWKS: asymmetric public keys only, each with its `alg`, so a
/// verifier can pin the algorithm per key (no "oct" key a verifier could
/// take as an HMAC secret, no private member).
fn check_jwks_is_public_only(jwks: &Value, secret: &[u8]) {
    let text = jwks.to_string();
    for k in jwks["keys"].as_array().unwrap() {
        match (k["kty"].as_str(), k["alg"].as_str()) {
            (Some("EC"), Some("ES256")) => assert_eq!(k["crv"], "P-256", "{k}"),
            (Some("OKP"), Some("EdDSA")) => assert_eq!(k["crv"], "Ed25519", "{k}"),
            _ => panic!("a key that is not an ES256 or EdDSA public key: {k}"),
        }
        for private in ["d", "k", "p", "q", "dp", "dq", "qi"] {
            assert!(k.get(private).is_none(), "{private} published: {k}");
        }
        assert!(k["kid"].as_str().is_some_and(|s| !s.is_empty()), "{k}");
    }
    for encoded in [
        URL_SAFE_NO_PAD.encode(secret),
        STANDARD.encode(secret),
        secret
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    ] {
        assert!(!text.contains(&encoded), "the HS256 secret is in the JWKS");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_is_the_default_and_verifies_with_the_jwks() {
    let (world, secret) = world_with("").await;
    let bru = world.start().await;
    let (tid, assertion) = call_k429(&world, &bru).await;
    let jwks = jwks(&bru).await;
    let claims = verify_with_jwks(&jwks, &assertion, Algorithm::ES256);
    check_claims(&claims, &tid);
    check_jwks_is_public_only(&jwks, &secret);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eddsa_verifies_with_the_ed25519_key_in_the_jwks() {
    let (world, secret) = world_with("assertion = \"eddsa\"").await;
    let bru = world.start().await;
    let (tid, assertion) = call_k429(&world, &bru).await;
    let jwks = jwks(&bru).await;
    let claims = verify_with_jwks(&jwks, &assertion, Algorithm::EdDSA);
    check_claims(&claims, &tid);
    check_jwks_is_public_only(&jwks, &secret);

    // Three keys: ES256, the Ed25519 assertion key and the checkpoint key,
    // and the assertion's kid is not the checkpoint key's.
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3, "{jwks}");
    let okp: Vec<&Value> = keys.iter().filter(|k| k["kty"] == "OKP").collect();
    assert_eq!(okp.len(), 2, "{jwks}");
    assert_ne!(okp[0]["kid"], okp[1]["kid"], "{jwks}");
    assert_ne!(okp[0]["x"], okp[1]["x"], "{jwks}");
    // The checkpoint key stays the first OKP key, as verifiers written
    // before there were two expect; the assertion names the second.
    let kid = jsonwebtoken::decode_header(&assertion)
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(okp[1]["kid"], kid.as_str(), "{jwks}");
    let checkpoint = send(bru.get("/audit/v1/checkpoint/key")).await;
    checkpoint.expect_status(200, "GET /audit/v1/checkpoint/key");
    let vkey = checkpoint.text();
    // name+keyhash+base64(key): the key's standard base64 may itself hold a
    // `+` (a random key about every other time), so split at the first two.
    let raw = STANDARD
        .decode(vkey.trim().splitn(3, '+').nth(2).unwrap())
        .unwrap();
    assert_eq!(raw[0], 1, "{vkey}");
    assert_eq!(
        URL_SAFE_NO_PAD.encode(&raw[1..]),
        okp[0]["x"].as_str().unwrap(),
        "the first OKP key is the checkpoint key ({vkey})"
    );
    // The ES256 key would not verify it: the kid pins the key, and the key its alg.
    let es = keys.iter().find(|k| k["kty"] == "EC").unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(es.clone()).unwrap();
    assert!(jsonwebtoken::decode::<Value>(
        &assertion,
        &DecodingKey::from_jwk(&jwk).unwrap(),
        &validation(Algorithm::ES256)
    )
    .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_verifies_with_the_shared_secret_only() {
    let (world, secret) = world_with(&format!(
        "assertion = \"hs256\"\nassertion_secret_file = \"{SECRET_FILE}\""
    ))
    .await;
    let bru = world.start().await;
    let (tid, assertion) = call_k429(&world, &bru).await;
    let header = jsonwebtoken::decode_header(&assertion).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    assert_eq!(
        header.kid, None,
        "an HS256 assertion names no kid: nothing in the JWKS may be taken for its key"
    );
    let claims = jsonwebtoken::decode::<Value>(
        &assertion,
        &DecodingKey::from_secret(&secret),
        &validation(Algorithm::HS256),
    )
    .unwrap_or_else(|e| panic!("does not verify with the shared secret: {e}"))
    .claims;
    check_claims(&claims, &tid);

    let jwks = jwks(&bru).await;
    check_jwks_is_public_only(&jwks, &secret);
    // Without eddsa configured for anyone, the Ed25519 assertion key is
    // still published (a provider can fetch it before switching).
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 3, "{jwks}");

    // Key confusion: nothing published verifies the HS256 assertion, neither
    // as the asymmetric key it is nor as an HMAC secret (a verifier that
    // took the JWK's bytes for one).
    for k in jwks["keys"].as_array().unwrap() {
        for material in ["x", "y"] {
            if let Some(bytes) = k[material]
                .as_str()
                .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
            {
                assert!(jsonwebtoken::decode::<Value>(
                    &assertion,
                    &DecodingKey::from_secret(&bytes),
                    &validation(Algorithm::HS256)
                )
                .is_err());
            }
        }
        assert!(jsonwebtoken::decode::<Value>(
            &assertion,
            &DecodingKey::from_secret(k.to_string().as_bytes()),
            &validation(Algorithm::HS256)
        )
        .is_err());
    }
}

// ---- bru check and bru serve refuse bad combinations ------------------------

fn bru_check(world: &TestWorld) -> (bool, String) {
    let out = Command::new(bru_bin())
        .args(["check", "--config"])
        .arg(&world.config_path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bru_check_refuses_bad_assertion_settings() {
    let (world, secret) = world_with("").await;
    let (ok, out) = bru_check(&world);
    assert!(ok, "the world with an Ed25519 key is valid: {out}");
    let good = std::fs::read_to_string(&world.config_path).unwrap();
    let dir = world.dir.path();
    std::fs::write(dir.join("keys/short.secret"), [7u8; 31]).unwrap();
    std::fs::write(dir.join("keys/exact.secret"), [7u8; 32]).unwrap();
    std::fs::write(dir.join("keys/copy.secret"), &secret).unwrap();

    let hs = |file: &str| format!("assertion = \"hs256\"\nassertion_secret_file = \"{file}\"");
    let cases: Vec<(String, String, &str)> = vec![
        (
            with_k429(&good, "assertion = \"hs256\""),
            "hs256 without a secret".into(),
            "needs assertion_secret_file",
        ),
        (
            with_k429(&good, &hs("keys/short.secret")),
            "a 31-byte secret".into(),
            "31 bytes; at least 32",
        ),
        (
            with_k429(&good, &hs("keys/missing.secret")),
            "a missing secret file".into(),
            "cannot read",
        ),
        (
            with_k429(&good, "assertion = \"rs256\""),
            "an unknown algorithm".into(),
            "is not \"es256\", \"eddsa\" or \"hs256\"",
        ),
        (
            with_k429(
                &good,
                "assertion = \"HS256\"\nassertion_secret_file = \"keys/exact.secret\"",
            ),
            "the JWS name instead of the config's".into(),
            "is not \"es256\"",
        ),
        (
            with_k429(
                &good,
                &format!("assertion = \"es256\"\nassertion_secret_file = \"{SECRET_FILE}\""),
            ),
            "a secret for a public-key algorithm".into(),
            "only for assertion = \"hs256\"",
        ),
        (
            with_k429(&good, "assertion = \"eddsa\"").replacen(ED25519_KEY_LINE, "", 1),
            "eddsa without the Ed25519 key".into(),
            "needs [keys] assertion_ed25519_key_file",
        ),
        (
            with_k429(&good, &hs(SECRET_FILE)).replacen(
                "[upstream.nav]\n",
                &format!("[upstream.nav]\n{}\n", hs("keys/copy.secret")),
                1,
            ),
            "one secret for two providers".into(),
            "a secret is shared with one provider only",
        ),
    ];
    for (text, what, says) in cases {
        assert_ne!(text, good, "{what}: the config was changed");
        std::fs::write(&world.config_path, &text).unwrap();
        let (ok, out) = bru_check(&world);
        assert!(!ok, "{what} was accepted: {out}");
        assert!(out.contains(says), "{what}: expected {says:?}, got {out}");
        assert!(out.contains("bru.toml:"), "{what}: names the file: {out}");
        // The secret's bytes never appear in a message.
        assert!(
            !out.contains(&URL_SAFE_NO_PAD.encode(&secret)) && !out.contains("\u{7}\u{7}\u{7}"),
            "{what}: {out}"
        );
    }

    // A secret of exactly 32 bytes is enough.
    std::fs::write(
        &world.config_path,
        with_k429(&good, &hs("keys/exact.secret")),
    )
    .unwrap();
    let (ok, out) = bru_check(&world);
    assert!(ok, "a 32-byte secret is refused: {out}");
    std::fs::write(&world.config_path, good).unwrap();
}

/// `bru serve` with the config as it is; its exit status and output, or
/// `None` when it is still running after `wait` (then it was stopped).
fn serve_exit(world: &TestWorld, wait: Duration) -> Option<(bool, String)> {
    let mut child = Command::new(bru_bin())
        .args(["serve", "--config"])
        .arg(&world.config_path)
        .current_dir(world.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < wait {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            return Some((
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bru_serve_refuses_keys_that_would_do_two_jobs() {
    // The Ed25519 assertion key may not be the checkpoint key.
    let (world, _) = world_with("assertion = \"eddsa\"").await;
    let keys = world.dir.path().join("keys");
    std::fs::copy(
        keys.join("checkpoint.pem"),
        keys.join("assertion-ed25519.pem"),
    )
    .unwrap();
    let exit = serve_exit(&world, Duration::from_secs(60));
    let (ok, out) = exit.expect("bru serve started with the checkpoint key as assertion key");
    assert!(!ok, "{out}");
    assert!(out.contains("must not be the checkpoint key"), "{out}");

    // An HS256 secret (held by the provider) may not be the pseudonym key.
    let (world, _) =
        world_with("assertion = \"hs256\"\nassertion_secret_file = \"keys/pseudonym.key\"").await;
    let exit = serve_exit(&world, Duration::from_secs(60));
    let (ok, out) = exit.expect("bru serve started with the pseudonym key shared with a provider");
    assert!(!ok, "{out}");
    assert!(out.contains("must not be the pseudonym key"), "{out}");
}
