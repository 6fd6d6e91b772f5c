//! Provider credentials against real counterparts on loopback: a TLS server
//! that demands a client certificate, and a token endpoint that checks the
//! JWT-bearer grant's signature and claims.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
use connectors::{
    ClientIdentity, CredentialError, Credentials, GrantAlgorithm, GrantError, InvalidUpstream,
    OAuth2Credentials, OAuth2Settings, UpstreamError,
};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::json;
use support::pki::Ca;
use support::token::{Expect, TokenEndpoint};
use support::*;

// ---------------------------------------------------------------- mutual TLS

struct MtlsWorld {
    provider_ca: Ca,
    client_ca: Ca,
    provider: Provider,
    seen: tokio::sync::mpsc::UnboundedReceiver<Seen>,
}

async fn mtls_world() -> MtlsWorld {
    install_crypto();
    let provider_ca = Ca::new("Provider CA");
    let client_ca = Ca::new("Enterprise certificate CA");
    let (handler, seen) = recording(json_ok);
    let provider = start_mtls(handler, &provider_ca.server(), client_ca.der.clone()).await;
    MtlsWorld {
        provider_ca,
        client_ca,
        provider,
        seen,
    }
}

fn mtls_upstream(w: &MtlsWorld, identity: ClientIdentity) -> connectors::Upstream {
    let mut up = upstream(&format!("https://localhost:{}/api", w.provider.addr.port()));
    up.credentials = Credentials::Mtls(identity);
    up.request_timeout = Duration::from_secs(10);
    up
}

#[tokio::test]
async fn mtls_presents_the_client_certificate_and_trusts_only_the_pinned_ca() {
    let mut w = mtls_world().await;
    let client = w.client_ca.client("921429002");
    let identity = ClientIdentity::from_pem(
        client.cert.as_bytes(),
        client.key.as_bytes(),
        w.provider_ca.pem.as_bytes(),
    )
    .unwrap();
    let up = mtls_upstream(&w, identity);
    up.validate().unwrap();
    // The connector's own trust (a throwaway certificate) does not know the
    // provider's CA: only the pinned CA can make this work.
    let connector = connector();
    let response = connector.forward(&up, get("", None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body().collect().await.unwrap();
    let seen = w.seen.recv().await.unwrap();
    assert_eq!(seen.uri.path(), "/api/inntekt");

    // A second call reuses the identity's pool.
    let response = connector.forward(&up, get("", None)).await.unwrap();
    response.into_body().collect().await.unwrap();
    assert_eq!(w.provider.connections(), 1);
}

#[tokio::test]
async fn the_provider_refuses_a_call_without_a_client_certificate() {
    let mut w = mtls_world().await;
    let connector = connector_trusting(w.provider_ca.der.clone());
    let up = upstream(&format!("https://localhost:{}", w.provider.addr.port()));
    let err = connector.forward(&up, get("", None)).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Tls(_)), "{err:?}");
    assert!(w.seen.try_recv().is_err(), "nothing reached the provider");
}

#[tokio::test]
async fn mtls_with_the_wrong_ca_pinned_is_a_tls_error() {
    let mut w = mtls_world().await;
    let client = w.client_ca.client("921429002");
    let stranger = Ca::new("Some other CA");
    let identity = ClientIdentity::from_pem(
        client.cert.as_bytes(),
        client.key.as_bytes(),
        stranger.pem.as_bytes(),
    )
    .unwrap();
    let up = mtls_upstream(&w, identity);
    let err = connector().forward(&up, get("", None)).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Tls(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("TLS handshake") && text.contains("UnknownIssuer"),
        "{text}"
    );
    assert!(w.seen.try_recv().is_err(), "nothing reached the provider");
}

#[tokio::test]
async fn mtls_with_an_expired_client_certificate_is_a_tls_error() {
    let mut w = mtls_world().await;
    let client = w.client_ca.expired_client("921429002");
    let identity = ClientIdentity::from_pem(
        client.cert.as_bytes(),
        client.key.as_bytes(),
        w.provider_ca.pem.as_bytes(),
    )
    .unwrap();
    let up = mtls_upstream(&w, identity);
    let err = connector().forward(&up, get("", None)).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Tls(_)), "{err:?}");
    assert!(err.to_string().contains("CertificateExpired"), "{err}");
    assert!(w.seen.try_recv().is_err(), "nothing reached the provider");
}

#[test]
fn mtls_identity_refuses_bad_files_without_quoting_them() {
    install_crypto();
    let ca = Ca::new("CA");
    let client = ca.client("921429002");
    let other = ca.client("983440002");
    let check = |cert: &str, key: &str, ca_pem: &str| {
        ClientIdentity::from_pem(cert.as_bytes(), key.as_bytes(), ca_pem.as_bytes()).unwrap_err()
    };
    assert!(matches!(
        check("", &client.key, &ca.pem),
        CredentialError::InvalidCertificate(_)
    ));
    assert!(matches!(
        check(&client.cert, "not a key", &ca.pem),
        CredentialError::InvalidKey(_)
    ));
    assert!(matches!(
        check(&client.cert, &client.key, ""),
        CredentialError::InvalidCertificate(_)
    ));
    // The key of another certificate.
    let mismatch = check(&client.cert, &other.key, &ca.pem);
    assert!(matches!(mismatch, CredentialError::Tls(_)), "{mismatch:?}");
    assert!(!mismatch.to_string().contains("PRIVATE KEY"));
}

#[test]
fn mtls_needs_an_https_upstream() {
    install_crypto();
    let ca = Ca::new("CA");
    let client = ca.client("921429002");
    let identity = ClientIdentity::from_pem(
        client.cert.as_bytes(),
        client.key.as_bytes(),
        ca.pem.as_bytes(),
    )
    .unwrap();
    let mut up = upstream("http://127.0.0.1:1");
    up.credentials = Credentials::Mtls(identity);
    assert_eq!(up.validate(), Err(InvalidUpstream::MtlsNeedsHttps));
}

// ---------------------------------------------------------------- OAuth2

const AUD: &str = "https://test.maskinporten.example/";
const CLIENT_ID: &str = "bru-k429-client";
const SCOPE: &str = "nav:inntekt/v1.read";

struct Keys {
    pem: String,
    decoding: DecodingKey,
    alg: Algorithm,
    grant_alg: GrantAlgorithm,
}

fn rsa_keys() -> Keys {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let pkcs8: aws_lc_rs::encoding::Pkcs8V1Der = pair.as_der().unwrap();
    let pem = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .unwrap()
    .serialize_pem();
    Keys {
        pem,
        decoding: DecodingKey::from_rsa_der(pair.public_key().as_ref()),
        alg: Algorithm::RS256,
        grant_alg: GrantAlgorithm::RS256,
    }
}

fn ec_keys() -> Keys {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    Keys {
        pem: key.serialize_pem(),
        decoding: DecodingKey::from_ec_pem(key.public_key_pem().as_bytes()).unwrap(),
        alg: Algorithm::ES256,
        grant_alg: GrantAlgorithm::ES256,
    }
}

async fn token_endpoint(keys: &Keys) -> TokenEndpoint {
    TokenEndpoint::start(Expect {
        alg: keys.alg,
        kid: "bru-grant-key-1".into(),
        key: keys.decoding.clone(),
        aud: AUD.into(),
        iss: CLIENT_ID.into(),
        scope: SCOPE.into(),
    })
    .await
}

fn settings(token_url: &str, keys: &Keys) -> OAuth2Settings {
    OAuth2Settings {
        token_url: token_url.parse().unwrap(),
        audience: AUD.into(),
        client_id: CLIENT_ID.into(),
        scope: SCOPE.into(),
        resource: None,
        kid: Some("bru-grant-key-1".into()),
        algorithm: keys.grant_alg,
    }
}

/// A provider that answers 200 to the tokens in `valid` and 401 to anything
/// else, and records the Authorization headers it got.
fn token_checking_provider(
    valid: Vec<&'static str>,
) -> (Handler, Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let handler: Handler = Arc::new(move |req: Request<Incoming>| {
        let log = log.clone();
        let valid = valid.clone();
        Box::pin(async move {
            let auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            log.lock().unwrap().push(auth.clone());
            let ok = valid.iter().any(|t| auth == format!("Bearer {t}"));
            Response::builder()
                .status(if ok { 200 } else { 401 })
                .body(full("{}"))
                .unwrap()
        })
    });
    (handler, seen)
}

async fn oauth2_round_trip(keys: Keys) {
    install_crypto();
    let endpoint = token_endpoint(&keys).await;
    let (handler, seen) = token_checking_provider(vec!["access-token-1"]);
    let provider = start(handler).await;
    let credentials =
        OAuth2Credentials::new(settings(&endpoint.url(), &keys), keys.pem.as_bytes()).unwrap();
    let mut up = upstream(&format!("http://{}", provider.addr));
    up.credentials = Credentials::OAuth2(credentials.clone());
    let connector = connector();
    for _ in 0..3 {
        let mut req = get("", None);
        // The caller's own token never reaches the provider.
        req.headers
            .insert("authorization", "Bearer caller-token".parse().unwrap());
        let response = connector.forward(&up, req).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(endpoint.refusals(), Vec::<String>::new());
    assert_eq!(endpoint.grants(), 1, "the token is cached");
    assert_eq!(credentials.grants(), 1);
    assert_eq!(*seen.lock().unwrap(), vec!["Bearer access-token-1"; 3]);
    let grant = endpoint.state.lock().unwrap().grants[0].clone();
    assert_eq!(grant["aud"], AUD);
    assert_eq!(grant["iss"], CLIENT_ID);
    assert_eq!(grant["scope"], SCOPE);
}

#[tokio::test]
async fn oauth2_rs256_grant_buys_the_token_the_provider_sees() {
    oauth2_round_trip(rsa_keys()).await;
}

#[tokio::test]
async fn oauth2_es256_grant_buys_the_token_the_provider_sees() {
    oauth2_round_trip(ec_keys()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_token_is_fetched_once_for_concurrent_calls() {
    install_crypto();
    let keys = ec_keys();
    let endpoint = token_endpoint(&keys).await;
    // Slow, so the calls pile up behind the one fetch.
    endpoint.state.lock().unwrap().delay = Duration::from_millis(300);
    let (handler, seen) = token_checking_provider(vec!["access-token-1"]);
    let provider = start(handler).await;
    let mut up = upstream(&format!("http://{}", provider.addr));
    up.credentials = Credentials::OAuth2(
        OAuth2Credentials::new(settings(&endpoint.url(), &keys), keys.pem.as_bytes()).unwrap(),
    );
    let connector = connector();
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let connector = connector.clone();
            let up = up.clone();
            tokio::spawn(async move {
                connector
                    .forward(&up, get("", None))
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        endpoint.grants(),
        1,
        "one grant for sixteen concurrent calls"
    );
    assert_eq!(seen.lock().unwrap().len(), 16);
}

#[tokio::test]
async fn oauth2_token_is_refreshed_before_it_expires_with_a_new_jti() {
    install_crypto();
    let keys = ec_keys();
    let endpoint = token_endpoint(&keys).await;
    // A 1 s token is used for half of its life.
    endpoint.state.lock().unwrap().expires_in = 1;
    let (handler, seen) = token_checking_provider(vec!["access-token-1", "access-token-2"]);
    let provider = start(handler).await;
    let mut up = upstream(&format!("http://{}", provider.addr));
    up.credentials = Credentials::OAuth2(
        OAuth2Credentials::new(settings(&endpoint.url(), &keys), keys.pem.as_bytes()).unwrap(),
    );
    let connector = connector();
    connector.forward(&up, get("", None)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    connector.forward(&up, get("", None)).await.unwrap();
    // The endpoint refuses a jti it saw before; both grants were accepted.
    assert_eq!(endpoint.refusals(), Vec::<String>::new());
    assert_eq!(endpoint.grants(), 2);
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["Bearer access-token-1", "Bearer access-token-2"]
    );
}

#[tokio::test]
async fn a_refused_grant_is_a_clear_error_and_nothing_is_forwarded() {
    install_crypto();
    let keys = ec_keys();
    let endpoint = token_endpoint(&keys).await;
    endpoint.state.lock().unwrap().refuse = Some((
        400,
        json!({"error": "invalid_client", "error_description": "Unknown client\nbru-k429-client"}),
    ));
    let (handler, seen) = token_checking_provider(vec![]);
    let provider = start(handler).await;
    let mut up = upstream(&format!("http://{}", provider.addr));
    up.credentials = Credentials::OAuth2(
        OAuth2Credentials::new(settings(&endpoint.url(), &keys), keys.pem.as_bytes()).unwrap(),
    );
    let (result, report) = connector().forward_reported(&up, get("", None)).await;
    let err = result.unwrap_err();
    match &err {
        UpstreamError::Credentials(GrantError::Refused { status, error, .. }) => {
            assert_eq!(*status, 400);
            assert_eq!(error.as_deref(), Some("invalid_client"));
        }
        other => panic!("expected a refused grant, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "could not obtain an access token for the provider: the token endpoint refused the grant \
         (HTTP 400: invalid_client: Unknown clientbru-k429-client)"
    );
    assert!(!err.is_timeout() && !err.is_caller_fault());
    assert!(report.attempts.is_empty(), "{report:?}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the provider"
    );
}

#[tokio::test]
async fn a_grant_for_the_wrong_audience_is_refused_by_the_endpoint() {
    install_crypto();
    let keys = ec_keys();
    let endpoint = token_endpoint(&keys).await;
    let provider = start(recording(json_ok).0).await;
    let mut wrong = settings(&endpoint.url(), &keys);
    wrong.audience = "https://someone-else.example/".into();
    let mut up = upstream(&format!("http://{}", provider.addr));
    up.credentials =
        Credentials::OAuth2(OAuth2Credentials::new(wrong, keys.pem.as_bytes()).unwrap());
    let err = connector().forward(&up, get("", None)).await.unwrap_err();
    assert!(
        matches!(
            &err,
            UpstreamError::Credentials(GrantError::Refused { status: 400, .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("invalid_grant"), "{err}");
    let refusals = endpoint.refusals();
    assert_eq!(refusals.len(), 1);
    assert!(refusals[0].contains("InvalidAudience"), "{refusals:?}");
    // A grant signed with another key does not verify either.
    let other = ec_keys();
    up.credentials = Credentials::OAuth2(
        OAuth2Credentials::new(settings(&endpoint.url(), &keys), other.pem.as_bytes()).unwrap(),
    );
    connector().forward(&up, get("", None)).await.unwrap_err();
    assert!(
        endpoint.refusals()[1].contains("InvalidSignature"),
        "{:?}",
        endpoint.refusals()
    );
}

#[tokio::test]
async fn a_provider_401_drops_the_cached_token() {
    install_crypto();
    let keys = ec_keys();
    let endpoint = token_endpoint(&keys).await;
    // The provider no longer accepts the first token.
    let (handler, seen) = token_checking_provider(vec!["access-token-2"]);
    let provider = start(handler).await;
    let mut up = upstream(&format!("http://{}", provider.addr));
    up.credentials = Credentials::OAuth2(
        OAuth2Credentials::new(settings(&endpoint.url(), &keys), keys.pem.as_bytes()).unwrap(),
    );
    let connector = connector();
    let first = connector.forward(&up, get("", None)).await.unwrap();
    assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
    let second = connector.forward(&up, get("", None)).await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(endpoint.grants(), 2);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_a_clear_error() {
    install_crypto();
    let keys = ec_keys();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let handler: Handler = Arc::new(move |_req| {
        counter.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { json_ok() })
    });
    let provider = start(handler).await;
    let mut up = upstream(&format!("http://{}", provider.addr));
    up.credentials = Credentials::OAuth2(
        OAuth2Credentials::new(
            settings(&format!("http://{closed}/token"), &keys),
            keys.pem.as_bytes(),
        )
        .unwrap(),
    );
    let err = connector().forward(&up, get("", None)).await.unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Credentials(GrantError::Unreachable(_))),
        "{err:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn oauth2_settings_and_keys_are_checked_at_start() {
    let ec = ec_keys();
    let url = "https://maskinporten.example/token";
    // An EC key for RS256.
    let mut s = settings(url, &ec);
    s.algorithm = GrantAlgorithm::RS256;
    assert!(matches!(
        OAuth2Credentials::new(s, ec.pem.as_bytes()).unwrap_err(),
        CredentialError::InvalidKey(_)
    ));
    let mut s = settings(url, &ec);
    s.client_id = " ".into();
    assert!(matches!(
        OAuth2Credentials::new(s, ec.pem.as_bytes()).unwrap_err(),
        CredentialError::InvalidSetting(_)
    ));
    let mut s = settings(url, &ec);
    s.token_url = "/token".parse().unwrap();
    assert!(matches!(
        OAuth2Credentials::new(s, ec.pem.as_bytes()).unwrap_err(),
        CredentialError::InvalidSetting(_)
    ));
    assert!(matches!(
        OAuth2Credentials::new(settings(url, &ec), b"garbage").unwrap_err(),
        CredentialError::InvalidKey(_)
    ));
    // Debug never shows the key.
    let ok = OAuth2Credentials::new(settings(url, &ec), ec.pem.as_bytes()).unwrap();
    let shown = format!("{:?}", Credentials::OAuth2(ok));
    assert!(
        !shown.contains("PRIVATE") && shown.contains(CLIENT_ID),
        "{shown}"
    );
}
