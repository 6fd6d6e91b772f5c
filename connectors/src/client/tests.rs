#![allow(clippy::unwrap_used)]

use super::*;

fn uri(base: &str, dataset: &str, rest: &str, query: Option<&str>) -> Result<String, String> {
    target_uri(&base.parse().unwrap(), dataset, rest, query)
        .map(|u| u.to_string())
        .map_err(|e| e.to_string())
}

fn check(base: &str, dataset: &str, rest: &str, query: Option<&str>, expected: &str) {
    assert_eq!(
        uri(base, dataset, rest, query).as_deref(),
        Ok(expected),
        "{base} {dataset} {rest:?} {query:?}"
    );
}

fn refused(dataset: &str, rest: &str, query: Option<&str>) {
    let got = uri("https://nav.example/api", dataset, rest, query);
    assert!(got.is_err(), "{dataset} {rest:?} {query:?} gave {got:?}");
}

#[test]
fn maps_dataset_rest_and_query() {
    check(
        "http://127.0.0.1:8091",
        "inntekt",
        "",
        None,
        "http://127.0.0.1:8091/inntekt",
    );
    check(
        "http://127.0.0.1:8091/",
        "inntekt",
        "2025/maaned",
        Some("fom=2025-01&tom=2025-12"),
        "http://127.0.0.1:8091/inntekt/2025/maaned?fom=2025-01&tom=2025-12",
    );
    check(
        "https://nav.example/api/v1/",
        "inntekt",
        "a",
        None,
        "https://nav.example/api/v1/inntekt/a",
    );
    check(
        "https://nav.example/api",
        "inntekt",
        "a/",
        Some(""),
        "https://nav.example/api/inntekt/a/",
    );
    check(
        "https://nav.example",
        "inntekt",
        "/a",
        None,
        "https://nav.example/inntekt/a",
    );
    check(
        "https://hn.example/fhir",
        "hjemmetjeneste",
        "CarePlan",
        Some("patient=12884513829&_count=10"),
        "https://hn.example/fhir/hjemmetjeneste/CarePlan?patient=12884513829&_count=10",
    );
    check(
        "https://nav.example",
        "inntekt",
        "a%20b/..c/c..",
        None,
        "https://nav.example/inntekt/a%20b/..c/c..",
    );
}

#[test]
fn refuses_paths_that_leave_the_dataset() {
    refused("inntekt", "..", None);
    refused("inntekt", "a/../../admin", None);
    refused("inntekt", "./a", None);
    refused("inntekt", "%2e%2E/admin", None);
    refused("inntekt", ".%2e/admin", None);
    refused("inntekt", "a%2f..%2fadmin", None);
    refused("inntekt", "a%5C..", None);
    refused("inntekt", "a\\..", None);
    refused("inntekt", "a?b=c", None);
    refused("inntekt", "a#frag", None);
    refused("inntekt", "a b", None);
    refused("inntekt", "a", Some("x=1#frag"));
    refused("inntekt", "a", Some("x= 1"));
    refused("", "a", None);
    refused("..", "", None);
    refused("inn/tekt", "", None);
}

#[test]
fn dot_segments() {
    for s in [".", "..", "%2e", "%2E%2e", ".%2e"] {
        assert!(is_dot_segment(s), "{s}");
    }
    for s in ["", "...", "a", ".a", "%2e%2e%2e", "%2", "%2f"] {
        assert!(!is_dot_segment(s), "{s}");
    }
}

fn bru<'a>() -> BruHeaders<'a> {
    BruHeaders {
        transfer_id: "01890f5e-0000-7000-8000-000000000001",
        consumer: "0192:921429002",
        purpose: Some("omsorgsbolig-soknad"),
        legal_basis: "consent",
        assertion: "eyJ.a.b",
    }
}

#[test]
fn bru_headers_are_set_and_replace_forgeries() {
    let mut h = HeaderMap::new();
    h.append(
        headers::BRU_CONSUMER,
        HeaderValue::from_static("0192:971000007"),
    );
    h.append(
        headers::BRU_CONSUMER,
        HeaderValue::from_static("0192:971000008"),
    );
    bru().apply(&mut h).unwrap();
    assert_eq!(
        h.get(headers::BRU_TRANSFER_ID).unwrap(),
        "01890f5e-0000-7000-8000-000000000001"
    );
    assert_eq!(h.get_all(headers::BRU_CONSUMER).iter().count(), 1);
    assert_eq!(h.get(headers::BRU_CONSUMER).unwrap(), "0192:921429002");
    assert_eq!(h.get(headers::BRU_PURPOSE).unwrap(), "omsorgsbolig-soknad");
    assert_eq!(h.get(headers::BRU_LEGAL_BASIS).unwrap(), "consent");
    let assertion = h.get(headers::BRU_ASSERTION).unwrap();
    assert_eq!(assertion, "eyJ.a.b");
    assert!(assertion.is_sensitive());
}

#[test]
fn bru_headers_without_purpose() {
    let mut h = HeaderMap::new();
    BruHeaders {
        purpose: None,
        ..bru()
    }
    .apply(&mut h)
    .unwrap();
    assert!(h.get(headers::BRU_PURPOSE).is_none());
}

#[test]
fn bru_header_values_are_checked() {
    let mut h = HeaderMap::new();
    let err = BruHeaders {
        purpose: Some("evil\r\nX-Injected: 1"),
        ..bru()
    }
    .apply(&mut h)
    .unwrap_err();
    assert!(matches!(err, UpstreamError::InvalidRequest(_)));
    assert!(err.is_caller_fault());
    assert!(!err.to_string().contains("evil"), "{err}");
}

fn upstream(url: &str) -> Upstream {
    Upstream {
        base_url: url.parse().unwrap(),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        max_response_bytes: 1024,
        credentials: Credentials::None,
        resilience: Resilience::default(),
    }
}

#[test]
fn validates_upstream_urls() {
    assert_eq!(upstream("https://nav.example/api").validate(), Ok(()));
    assert_eq!(upstream("http://127.0.0.1:8091").validate(), Ok(()));
    assert_eq!(
        upstream("ftp://nav.example").validate(),
        Err(InvalidUpstream::Scheme)
    );
    assert_eq!(
        upstream("/relative").validate(),
        Err(InvalidUpstream::Scheme)
    );
    assert_eq!(
        upstream("https://user:pw@nav.example").validate(),
        Err(InvalidUpstream::UserInfo)
    );
    assert_eq!(
        upstream("https://nav.example/api?key=1").validate(),
        Err(InvalidUpstream::Query)
    );
    let mut zero = upstream("https://nav.example");
    zero.request_timeout = Duration::ZERO;
    assert_eq!(zero.validate(), Err(InvalidUpstream::ZeroTimeout));
}

#[test]
fn only_connect_failures_and_timeouts_are_retried() {
    let d = Duration::from_millis(1);
    for e in [
        UpstreamError::Connect("refused".into()),
        UpstreamError::ConnectTimeout(d),
        UpstreamError::Timeout(d),
    ] {
        assert!(e.is_retryable(), "{e}");
        assert!(e.is_provider_failure(), "{e}");
    }
    for e in [
        UpstreamError::Tls("UnknownIssuer".into()),
        UpstreamError::Protocol("closed".into()),
    ] {
        assert!(!e.is_retryable(), "{e}");
        assert!(e.is_provider_failure(), "{e}");
    }
    for e in [
        UpstreamError::TooLarge {
            declared: 2,
            limit: 1,
        },
        UpstreamError::RequestBody("gone".into()),
        UpstreamError::RequestTooLarge,
        UpstreamError::InvalidRequest("x"),
        UpstreamError::CircuitOpen { retry_in: d },
        UpstreamError::Busy { limit: 1 },
        UpstreamError::Credentials(GrantError::Timeout(d)),
    ] {
        assert!(!e.is_retryable(), "{e}");
        assert!(!e.is_provider_failure(), "{e}");
    }
}

#[test]
fn only_idempotent_methods_are_replayed() {
    for m in [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::PUT,
        Method::DELETE,
    ] {
        assert!(is_idempotent(&m), "{m}");
    }
    for m in [Method::POST, Method::PATCH, Method::TRACE, Method::CONNECT] {
        assert!(!is_idempotent(&m), "{m}");
    }
}

#[test]
fn attempt_labels() {
    assert_eq!(AttemptOutcome::Response(200).label(), "ok");
    assert_eq!(AttemptOutcome::Response(404).label(), "ok");
    assert_eq!(AttemptOutcome::Response(503).label(), "http_5xx");
    assert_eq!(
        AttemptOutcome::Failed("connect_error").label(),
        "connect_error"
    );
}

#[test]
fn timeouts_map_to_504_and_the_rest_to_502() {
    let d = Duration::from_millis(1500);
    assert!(UpstreamError::Timeout(d).is_timeout());
    assert!(UpstreamError::ConnectTimeout(d).is_timeout());
    for e in [
        UpstreamError::Connect("refused".into()),
        UpstreamError::Protocol("closed".into()),
        UpstreamError::TooLarge {
            declared: 2,
            limit: 1,
        },
    ] {
        assert!(!e.is_timeout(), "{e}");
        assert!(!e.is_caller_fault(), "{e}");
    }
    assert_eq!(
        UpstreamError::Timeout(d).to_string(),
        "the provider did not answer within 1500 ms"
    );
}

#[test]
fn custom_trust_must_not_be_empty() {
    let err = Connector::new(ConnectorConfig {
        trust: TrustAnchors::Custom(Vec::new()),
        ..ConnectorConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, ConnectorError::NoTrustAnchors(_)));
}

#[test]
fn custom_trust_refuses_garbage() {
    let err = Connector::new(ConnectorConfig {
        trust: TrustAnchors::Custom(vec![CertificateDer::from(vec![1u8, 2, 3])]),
        ..ConnectorConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, ConnectorError::InvalidTrustAnchor(_)));
}
