//! HTTPS providers: certificate checking, and HTTP/2 when ALPN offers it.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use connectors::UpstreamError;
use http::Version;
use http_body_util::BodyExt;
use support::*;

#[tokio::test]
async fn https_provider_gets_http2_with_clean_headers() {
    install_crypto();
    let tls = tls_identity();
    let (handler, mut seen) = recording(json_ok);
    let provider = start_tls(handler, &tls).await;
    let connector = connector_trusting(tls.cert.clone());
    let up = upstream(&format!("https://localhost:{}/fhir", provider.addr.port()));

    let mut req = get("CarePlan", Some("patient=12884513829"));
    req.headers
        .insert("authorization", "Bearer caller".parse().unwrap());
    req.headers
        .insert("connection", "keep-alive".parse().unwrap());
    req.headers.insert("host", "bru.example".parse().unwrap());
    let response = connector.forward(&up, req).await.unwrap();
    // The gateway relays on its own connection, whatever the provider spoke.
    assert_eq!(response.version(), Version::HTTP_11);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"ok":true}"#);

    let seen = seen.recv().await.unwrap();
    assert_eq!(seen.version, Version::HTTP_2);
    assert_eq!(
        seen.uri.path_and_query().unwrap().as_str(),
        "/fhir/inntekt/CarePlan?patient=12884513829"
    );
    assert_eq!(
        seen.uri.authority().unwrap().as_str(),
        format!("localhost:{}", provider.addr.port())
    );
    assert!(seen.headers.get("authorization").is_none());
    assert!(seen.headers.get("connection").is_none());
    assert!(seen.headers.get("host").is_none());
    assert_eq!(seen.headers.get("bru-consumer").unwrap(), BRU.consumer);
}

#[tokio::test]
async fn http2_calls_share_one_connection() {
    install_crypto();
    let tls = tls_identity();
    let (handler, _seen) = recording(json_ok);
    let provider = start_tls(handler, &tls).await;
    let connector = connector_trusting(tls.cert.clone());
    let up = upstream(&format!("https://localhost:{}", provider.addr.port()));
    // Warm the pool, then run calls concurrently over the one h2 connection.
    connector
        .forward(&up, get("", None))
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
    let calls = (0..8).map(|_| {
        let connector = connector.clone();
        let up = up.clone();
        tokio::spawn(async move {
            let response = connector.forward(&up, get("", None)).await.unwrap();
            response.into_body().collect().await.unwrap();
        })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap();
    }
    assert_eq!(provider.connections(), 1);
}

#[tokio::test]
async fn untrusted_certificate_is_a_tls_error() {
    install_crypto();
    let tls = tls_identity();
    let (handler, _seen) = recording(json_ok);
    let provider = start_tls(handler, &tls).await;
    // Trusts some other certificate, not the provider's.
    let connector = connector();
    let mut up = upstream(&format!("https://localhost:{}", provider.addr.port()));
    up.request_timeout = Duration::from_secs(5);
    let err = connector.forward(&up, get("", None)).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Tls(_)), "{err:?}");
    assert!(!err.is_timeout());
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test]
async fn wrong_host_name_is_a_tls_error() {
    install_crypto();
    let tls = tls_identity();
    let (handler, _seen) = recording(json_ok);
    let provider = start_tls(handler, &tls).await;
    let connector = connector_trusting(tls.cert.clone());
    // The certificate is for `localhost`, not for the IP address.
    let up = upstream(&format!("https://{}", provider.addr));
    let err = connector.forward(&up, get("", None)).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Tls(_)), "{err:?}");
}
