#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};

use super::*;
use crate::config::SecretSource;

const KARI: &str = "12884513829";
const ISS: &str = "https://idp.example";
const CLIENT: &str = "bru-portal";

/// An ES256 key with its public JWK.
struct Key {
    encoding: EncodingKey,
    jwk: Value,
}

impl Key {
    fn new(kid: &str) -> Key {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Key {
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
        }
    }

    fn sign(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    fn es256(&self, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = self.jwk["kid"].as_str().map(str::to_owned);
        self.sign(h, claims)
    }
}

fn set(keys: &[&Key]) -> JwkSet {
    serde_json::from_value(
        json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }),
    )
    .unwrap()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn claims(iss: &str, nonce: &str) -> Value {
    let now = now();
    json!({
        "iss": iss, "sub": "pairwise-sub", "aud": CLIENT, "exp": now + 120, "iat": now,
        "nonce": nonce, "acr": "idporten-loa-substantial", "pid": KARI,
    })
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[test]
fn pkce_s256_matches_rfc_7636() {
    // RFC 7636, Appendix B.
    assert_eq!(
        code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    // Our verifiers: 43 characters of base64url, 256 bits, fresh every time.
    let a = crate::session::random_token().unwrap();
    let b = crate::session::random_token().unwrap();
    assert_eq!(a.len(), 43);
    assert!(a
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    assert_ne!(a, b);
    assert_ne!(code_challenge(&a), code_challenge(&b));
}

#[test]
fn signatures_are_checked_against_the_issuers_keys() {
    let key = Key::new("k1");
    let other = Key::new("k1");
    let good = key.es256(&claims(ISS, "n"));
    let claims_ok = verify_signature(&good, &set(&[&key])).unwrap();
    assert_eq!(claims_ok.pid.as_deref(), Some(KARI));

    let check = |token: &str, jwks: &JwkSet, want: &str| {
        assert_eq!(
            verify_signature(token, jwks).unwrap_err(),
            OidcError::InvalidIdToken(match want {
                "sig" => "the signature does not verify",
                "kid" => "the signing key is unknown",
                "alg" => "the algorithm is not accepted",
                "header" => "the header is malformed",
                "own" => "the token names its own key",
                other => panic!("{other}"),
            }),
            "{want}"
        );
    };
    // Signed by another key under the same kid.
    check(&good, &set(&[&other]), "sig");
    // A kid the JWKS does not have.
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("k2".into());
    check(&key.sign(h, &claims(ISS, "n")), &set(&[&key]), "kid");
    // Changed claims under the original signature.
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&claims("https://evil.example", "n")),
        parts[2]
    );
    check(&tampered, &set(&[&key]), "sig");
    // alg none, and HMAC keyed with anything.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "k1"})),
        parts[1]
    );
    check(&none, &set(&[&key]), "header");
    let hs = jsonwebtoken::encode(
        &Header {
            kid: Some("k1".into()),
            ..Header::new(Algorithm::HS256)
        },
        &claims(ISS, "n"),
        &EncodingKey::from_secret(b"client-secret"),
    )
    .unwrap();
    check(&hs, &set(&[&key]), "alg");
    // Keys the token brings along are never trusted.
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("k1".into());
    h.jku = Some("https://evil.example/jwks".into());
    check(&key.sign(h, &claims(ISS, "n")), &set(&[&key]), "own");
    // Without a kid, only a one-key set is unambiguous.
    let no_kid = key.sign(Header::new(Algorithm::ES256), &claims(ISS, "n"));
    assert!(verify_signature(&no_kid, &set(&[&key])).is_ok());
    check(&no_kid, &set(&[&key, &Key::new("k9")]), "kid");
}

#[test]
fn claims_are_checked_as_oidc_core_says() {
    let expected = Expected {
        issuer: ISS,
        client_id: CLIENT,
        nonce: "the-nonce",
        allow_synthetic_ids: true,
        sub_as_pid: false,
    };
    let check = |patch: Value, want: Result<&str, OidcError>| {
        let mut c = claims(ISS, "the-nonce");
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        let parsed: IdTokenClaims = serde_json::from_value(c).unwrap();
        let got = check_claims(&parsed, &expected, now());
        match want {
            Ok(pid) => assert_eq!(got.unwrap().pid.expose(), pid, "{patch}"),
            Err(e) => assert_eq!(got.unwrap_err(), e, "{patch}"),
        }
    };
    let bad = OidcError::InvalidIdToken;
    check(json!({}), Ok(KARI));
    check(json!({"acr": "idporten-loa-high"}), Ok(KARI));
    check(json!({"aud": [CLIENT, "other"], "azp": CLIENT}), Ok(KARI));
    check(
        json!({"iss": "https://idp.example/"}),
        Err(bad("iss is not the configured issuer")),
    );
    check(
        json!({"aud": "someone-else"}),
        Err(bad("aud does not name this client")),
    );
    check(
        json!({"aud": [CLIENT, "other"]}),
        Err(bad("azp does not name this client")),
    );
    check(
        json!({"azp": "other"}),
        Err(bad("azp does not name this client")),
    );
    check(
        json!({"exp": now() - 31}),
        Err(bad("the id_token has expired")),
    );
    check(json!({"exp": now() - 10}), Ok(KARI));
    check(
        json!({"iat": now() + 120}),
        Err(bad("the id_token is issued in the future")),
    );
    check(
        json!({"nonce": "another"}),
        Err(bad("the nonce does not match")),
    );
    check(json!({"nonce": null}), Err(bad("the nonce does not match")));
    check(json!({"nonce": ""}), Err(bad("the nonce does not match")));
    check(
        json!({"acr": "idporten-loa-low"}),
        Err(OidcError::InsufficientAcr),
    );
    check(json!({"acr": "Level4"}), Err(OidcError::InsufficientAcr));
    check(json!({"acr": null}), Err(OidcError::InsufficientAcr));
    check(json!({"pid": null}), Err(bad("the pid claim is missing")));
    check(
        json!({"pid": "12884513828"}),
        Err(bad("pid is not a valid person number")),
    );

    // `sub` stands in for `pid` only when configured.
    let parsed: IdTokenClaims = serde_json::from_value(json!({
        "iss": ISS, "sub": KARI, "aud": CLIENT, "exp": now() + 60, "iat": now(),
        "nonce": "the-nonce", "acr": "idporten-loa-substantial",
    }))
    .unwrap();
    assert!(check_claims(&parsed, &expected, now()).is_err());
    let with_sub = Expected {
        sub_as_pid: true,
        ..expected
    };
    assert_eq!(
        check_claims(&parsed, &with_sub, now())
            .unwrap()
            .pid
            .expose(),
        KARI
    );
    // Synthetic numbers only where the config allows them.
    let real_only = Expected {
        allow_synthetic_ids: false,
        sub_as_pid: false,
        ..with_sub
    };
    let synthetic: IdTokenClaims = serde_json::from_value(claims(ISS, "the-nonce")).unwrap();
    assert!(check_claims(&synthetic, &real_only, now()).is_err());
}

/// A minimal OpenID provider on loopback: discovery, JWKS and a token
/// endpoint that checks the client, the code and the PKCE verifier.
struct MockProvider {
    issuer: String,
    key: Arc<Key>,
    /// The (challenge, nonce) of the last authorization request, set by the test.
    expect: Arc<Mutex<(String, String)>>,
}

async fn start_provider() -> MockProvider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let key = Arc::new(Key::new("mock"));
    let expect = Arc::new(Mutex::new((String::new(), String::new())));
    let discovery = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "end_session_endpoint": format!("{issuer}/session/end"),
        "code_challenge_methods_supported": ["S256"],
    });
    let jwks = json!({ "keys": [key.jwk.clone()] });
    let (k, e, iss) = (key.clone(), expect.clone(), issuer.clone());
    let token = move |headers: http::HeaderMap, body: String| {
        let (k, e, iss) = (k.clone(), e.clone(), iss.clone());
        async move {
            let form: std::collections::HashMap<String, String> = body
                .split('&')
                .filter_map(|p| p.split_once('='))
                .map(|(a, b)| (a.to_owned(), b.replace("%2F", "/").replace("%3A", ":")))
                .collect();
            let basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("bru-portal:s3cret")
            );
            let (challenge, nonce) = e.lock().unwrap().clone();
            let ok = headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some(basic.as_str())
                && form.get("grant_type").map(String::as_str) == Some("authorization_code")
                && form.get("code").map(String::as_str) == Some("good-code")
                && form
                    .get("code_verifier")
                    .is_some_and(|v| code_challenge(v) == challenge);
            if !ok {
                return (
                    http::StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": "invalid_grant"})),
                );
            }
            let now = now();
            let id_token = k.es256(&json!({
                "iss": iss, "sub": "s", "aud": CLIENT, "exp": now + 60, "iat": now,
                "nonce": nonce, "acr": "idporten-loa-substantial", "pid": KARI,
            }));
            (
                http::StatusCode::OK,
                axum::Json(
                    json!({"id_token": id_token, "access_token": "at", "token_type": "Bearer"}),
                ),
            )
        }
    };
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(discovery) }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || async move { axum::Json(jwks) }),
        )
        .route("/token", axum::routing::post(token));
    tokio::spawn(async move { axum::serve(listener, app).await });
    MockProvider {
        issuer,
        key,
        expect,
    }
}

fn client_for(issuer: &str, secret_file: &std::path::Path) -> OidcClient {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    OidcClient::new(OidcConfig {
        issuer: issuer.to_owned(),
        client_id: CLIENT.to_owned(),
        client_secret: SecretSource::File(secret_file.to_path_buf()),
        client_auth: ClientAuth::Basic,
        redirect_url: "https://localhost:8443/innlogging/callback".to_owned(),
        scope: "openid profile".to_owned(),
        acr_values: "idporten-loa-substantial".to_owned(),
        ca_file: None,
        sub_as_pid: false,
    })
    .unwrap()
}

#[tokio::test]
async fn the_code_flow_with_pkce_ends_in_a_verified_citizen() {
    let provider = start_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let client = client_for(&provider.issuer, &secret);

    let login = LoginState::new("/samtykke", now()).unwrap();
    let url = reqwest::Url::parse(&client.authorization_url(&login, "nb").await.unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(url.path(), "/authorize");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT);
    assert_eq!(q["state"], login.state);
    assert_eq!(q["nonce"], login.nonce);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"], code_challenge(&login.verifier));
    assert_eq!(q["acr_values"], "idporten-loa-substantial");
    // The verifier itself never leaves Bru.
    assert!(!url.as_str().contains(&login.verifier));

    *provider.expect.lock().unwrap() = (q["code_challenge"].clone(), login.nonce.clone());
    let (citizen, id_token) = client.finish("good-code", &login, true).await.unwrap();
    assert_eq!(citizen.pid.expose(), KARI);
    assert_eq!(citizen.acr, "idporten-loa-substantial");

    // RP-initiated logout: the provider's end_session_endpoint, with the
    // id_token as hint and where to come back.
    let logout = client
        .logout_url(Some(&id_token), "https://bru.example/?utlogget=1", "nb")
        .await
        .unwrap()
        .unwrap();
    let logout = reqwest::Url::parse(&logout).unwrap();
    let q: std::collections::HashMap<_, _> = logout.query_pairs().into_owned().collect();
    assert_eq!(logout.path(), "/session/end");
    assert_eq!(q["id_token_hint"], id_token);
    assert_eq!(
        q["post_logout_redirect_uri"],
        "https://bru.example/?utlogget=1"
    );
    assert_eq!(q["client_id"], CLIENT);

    // A wrong code, or another login's verifier, is refused by the provider.
    assert!(matches!(
        client.finish("bad-code", &login, true).await,
        Err(OidcError::Unavailable(_))
    ));
    let other = LoginState::new("/samtykke", now()).unwrap();
    assert!(client.finish("good-code", &other, true).await.is_err());
    // Another login's nonce in the token: the provider signs the expected
    // nonce, this login has another one.
    let replay = LoginState {
        verifier: login.verifier.clone(),
        ..other
    };
    assert_eq!(
        client.finish("good-code", &replay, true).await.unwrap_err(),
        OidcError::InvalidIdToken("the nonce does not match")
    );
    drop(provider.key);
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let provider = start_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret").unwrap();
    // Same server, but configured with a different spelling of the issuer.
    let client = client_for(&format!("{}/", provider.issuer), &secret);
    let login = LoginState::new("/", now()).unwrap();
    assert!(matches!(
        client.authorization_url(&login, "nb").await,
        Err(OidcError::Protocol(_))
    ));
}
