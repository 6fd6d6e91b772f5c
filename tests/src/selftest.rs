//! Tests of the harness itself (no `bru` needed): tokens verify with an
//! independent JOSE library, the PKI works for a TLS server, the servers
//! record and count, and the raw response parser handles chunked bodies.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bru::{https_client, parse_responses, raw_tls, send, tls_config};
use crate::jwt::{maskinporten_claims, EcKey, Jwt, RsaKey, Signer};
use crate::pki::{pem_blocks, Pki};
use crate::servers::{JwksServer, Provider};

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.validate_aud = false;
    v
}

#[test]
fn rs256_and_es256_tokens_verify_with_their_jwks() {
    crate::init();
    let rsa = RsaKey::pooled(0, "t");
    let token = Jwt::new(
        serde_json::json!({"alg": "RS256", "kid": rsa.kid}),
        maskinporten_claims("https://iss/", crate::NAV, "a b"),
    )
    .sign(&Signer::Rsa(rsa.clone()));
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(rsa.jwk()).unwrap();
    let claims = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_jwk(&jwk).unwrap(),
        &validation(Algorithm::RS256),
    )
    .expect("RS256 verifies")
    .claims;
    assert_eq!(claims["consumer"]["ID"], "0192:983440002");

    let other = RsaKey::pooled(2, "x");
    let forged = Jwt::new(
        serde_json::json!({"alg": "RS256", "kid": rsa.kid}),
        maskinporten_claims("https://iss/", crate::NAV, "a"),
    )
    .sign(&Signer::Rsa(other));
    assert!(jsonwebtoken::decode::<Value>(
        &forged,
        &DecodingKey::from_jwk(&jwk).unwrap(),
        &validation(Algorithm::RS256)
    )
    .is_err());

    let ec = EcKey::generate("e");
    let token = Jwt::new(
        serde_json::json!({"alg": "ES256", "kid": ec.kid}),
        maskinporten_claims("https://iss/", crate::NAV, "a"),
    )
    .sign(&Signer::Ec(ec.clone()));
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(ec.jwk()).unwrap();
    jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_jwk(&jwk).unwrap(),
        &validation(Algorithm::ES256),
    )
    .expect("ES256 verifies");

    // HS256 keyed with the public PEM is a real MAC with that secret.
    let pem = rsa.spki_pem();
    let hs = Jwt::new(
        serde_json::json!({"alg": "HS256"}),
        maskinporten_claims("https://iss/", crate::NAV, "a"),
    )
    .sign(&Signer::Hmac(pem.clone().into_bytes()));
    jsonwebtoken::decode::<Value>(
        &hs,
        &DecodingKey::from_secret(pem.as_bytes()),
        &validation(Algorithm::HS256),
    )
    .expect("HS256 verifies");
    assert_eq!(pem_blocks(&pem, "PUBLIC KEY")[0], rsa.spki_der());
    assert!(DecodingKey::from_rsa_pem(pem.as_bytes()).is_ok());
}

#[test]
fn parses_chunked_and_pipelined_responses() {
    let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\nHTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\nno";
    let r = parse_responses(raw);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].status, 200);
    assert_eq!(r[0].body, b"abcde");
    assert_eq!(r[0].header("x-a"), Some("b"));
    assert_eq!(r[1].status, 400);
    assert_eq!(r[1].body, b"no");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_count_and_record() {
    crate::init();
    let jwks = JwksServer::start().await;
    jwks.set_keys("mp", vec![serde_json::json!({"kid": "a"})]);
    let client = crate::bru::http_client();
    let r = send(client.get(jwks.url("mp"))).await;
    assert_eq!(r.json()["keys"][0]["kid"], "a");
    assert_eq!(send(client.get(jwks.url("zz"))).await.status, 404);
    assert_eq!(jwks.fetches("mp"), 1);

    let p = Provider::start("k429").await;
    let r = send(
        client
            .post(format!("{}/sosialtjeneste/a?x=1", p.url()))
            .header("X-T", "1")
            .body("hei"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["path"], "/sosialtjeneste/a");
    let recs = p.requests();
    assert_eq!(recs[0].method, "POST");
    assert_eq!(recs[0].query.as_deref(), Some("x=1"));
    assert_eq!(recs[0].header("x-t"), Some("1"));
    assert_eq!(recs[0].body, b"hei");
    p.wait_for(1, Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pki_serves_tls_for_localhost_and_127_0_0_1() {
    crate::init();
    let pki = Pki::generate();
    let certs = pem_blocks(&pki.cert_pem, "CERTIFICATE")
        .into_iter()
        .map(rustls_pki_types::CertificateDer::from)
        .collect::<Vec<_>>();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(
        pem_blocks(&pki.key_pem, "PRIVATE KEY").remove(0).into(),
    );
    let cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    let client = https_client(&pki.ca_pem);
    let r = send(client.get(format!("https://localhost:{}/", addr.port()))).await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let ex = raw_tls(
        tls_config(&pki.ca_pem),
        addr,
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(ex.first().status, 200);
    // An untrusting client fails.
    let other = Pki::generate();
    let c2 = https_client(&other.ca_pem);
    assert!(c2
        .get(format!("https://localhost:{}/", addr.port()))
        .send()
        .await
        .is_err());
}
