#![allow(clippy::unwrap_used)]

use super::*;

fn check_path(path: &str, expected: Result<(&str, &str, &str), &str>) {
    let got = parse_path(path)
        .map(|r| {
            // The provider is sent the rest from this offset of the path.
            assert_eq!(path.get(r.rest_at()..).unwrap_or(""), r.rest, "{path}");
            (r.provider, r.dataset, r.rest)
        })
        .map_err(|f| f.code());
    assert_eq!(got, expected, "{path}");
}

#[test]
fn paths_are_checked_before_routing() {
    check_path(
        "/data/k429/sosialtjeneste",
        Ok(("k429", "sosialtjeneste", "")),
    );
    check_path(
        "/data/k429/sosialtjeneste/",
        Ok(("k429", "sosialtjeneste", "")),
    );
    check_path(
        "/data/k429/sosialtjeneste/a/b",
        Ok(("k429", "sosialtjeneste", "a/b")),
    );
    check_path(
        "/data/k429/sosialtjeneste/a%20b",
        Ok(("k429", "sosialtjeneste", "a%20b")),
    );
    check_path(
        "/data/k429/sosialtjeneste/a/b/",
        Ok(("k429", "sosialtjeneste", "a/b/")),
    );
    check_path("/data/k429/", Err("malformed_request"));
    check_path(
        "/data/k429/sosialtjeneste/a/",
        Ok(("k429", "sosialtjeneste", "a/")),
    );
    check_path("/data/k429/../nav/inntekt", Err("malformed_request"));
    check_path("/data/k429/%2e%2e/nav/inntekt", Err("malformed_request"));
    check_path("/data/k429/%2E%2E/nav/inntekt", Err("malformed_request"));
    check_path("/data/k429/sosialtjeneste/./x", Err("malformed_request"));
    check_path("/data//k429/sosialtjeneste", Err("malformed_request"));
    check_path("/data/k429//sosialtjeneste", Err("malformed_request"));
    check_path("/data/k429/sosialtjeneste//x", Err("malformed_request"));
    check_path("/data/k429%2Fsosialtjeneste", Err("malformed_request"));
    check_path("/data/k429/sosialtjeneste/a%2fb", Err("malformed_request"));
    check_path("/data/k429/sosialtjeneste/a%5cb", Err("malformed_request"));
    check_path("/data/k429/sosialtjeneste;v=1", Err("malformed_request"));
    check_path("/data/k429;x/sosialtjeneste", Err("malformed_request"));
    check_path("/data/k429/sosialtjeneste/%00", Err("malformed_request"));
    check_path("/data/k429/sosialtjeneste/%ff", Err("malformed_request"));
    check_path("/data/K429/sosialtjeneste", Err("unknown_dataset"));
    check_path("/data/k429", Err("malformed_request"));
    check_path("/data/", Err("malformed_request"));
    check_path("/other", Err("malformed_request"));
}

#[test]
fn subject_in_path_is_hidden_in_the_record() {
    let route = parse_path("/data/p/d/persons/12884513829/cases").unwrap();
    assert_eq!(
        route.path_with_subject_hidden(1),
        "/data/p/d/persons/{subject}/cases"
    );
}

#[test]
fn query_parameters() {
    assert_eq!(
        query_param(Some("patient=123&x=1"), "patient")
            .unwrap()
            .as_deref(),
        Some("123")
    );
    assert_eq!(
        query_param(Some("x=1&pati%65nt=12%33"), "patient")
            .unwrap()
            .as_deref(),
        Some("123")
    );
    assert_eq!(query_param(Some("x=1"), "patient").unwrap(), None);
    assert_eq!(query_param(None, "patient").unwrap(), None);
    assert_eq!(query_param(Some("patient="), "patient").unwrap(), None);
    assert!(query_param(Some("patient=1&patient=2"), "patient").is_err());
}

#[test]
fn json_body_subjects() {
    let body = br#"{"person": {"id": "12884513829"}, "n": 5}"#;
    assert_eq!(
        json_subject(body, "/person/id").unwrap().as_deref(),
        Some("12884513829")
    );
    assert_eq!(json_subject(body, "/n").unwrap().as_deref(), Some("5"));
    assert_eq!(json_subject(body, "/missing").unwrap(), None);
    assert_eq!(
        json_subject(b"not json", "/person/id").unwrap_err().code(),
        "malformed_request"
    );
    assert_eq!(
        json_subject(br#"{"person": {"id": "1"#, "/person/id")
            .unwrap_err()
            .code(),
        "malformed_request"
    );
}

#[test]
fn repeated_fact_headers_are_refused() {
    let mut headers = HeaderMap::new();
    headers.append("bru-purpose", HeaderValue::from_static("a"));
    assert_eq!(header_str(&headers, "bru-purpose").unwrap(), Some("a"));
    headers.append("bru-purpose", HeaderValue::from_static("b"));
    assert!(header_str(&headers, "bru-purpose").is_err());
    headers.append("content-length", HeaderValue::from_static("5"));
    headers.append("content-length", HeaderValue::from_static("6"));
    assert!(content_length(&headers).is_err());
}

#[test]
fn ambiguous_subject_queries_are_refused() {
    for query in [
        // the attack run's: a parser splitting on ';' reads Ola's number
        "patient=12884513829&y=1;patient=03839113713",
        "patient=12884513829;x=1",
        // names another parser reads as the subject parameter
        "patient=12884513829&Patient=03839113713",
        "patient=12884513829&PATIENT=03839113713",
        "patient=12884513829&patient[]=03839113713",
        "patient=12884513829&pa%74ient=03839113713",
        "Patient=03839113713",
    ] {
        assert!(
            matches!(
                query_param(Some(query), "patient"),
                Err(Failure::MalformedRequest(_))
            ),
            "{query}"
        );
    }
    // PHP reads `patient.id` as `patient_id`.
    assert!(query_param(Some("patient_id=1&patient.id=2"), "patient_id").is_err());
    // Names that only share a prefix are other parameters.
    assert_eq!(
        query_param(Some("patient=123&patient_id=4&patients=5"), "patient")
            .unwrap()
            .as_deref(),
        Some("123")
    );
}

#[test]
fn subject_header_variants_are_removed_and_connection_cannot_strip_it() {
    let mut headers = HeaderMap::new();
    headers.insert("nav-personident", HeaderValue::from_static("12884513829"));
    headers.insert("nav_personident", HeaderValue::from_static("03839113713"));
    headers.insert("nav.personident", HeaderValue::from_static("03839113713"));
    guard_subject_header(&mut headers, "Nav-Personident").unwrap();
    assert_eq!(headers.len(), 1);
    assert_eq!(
        header_str(&headers, "Nav-Personident").unwrap(),
        Some("12884513829")
    );

    let mut headers = HeaderMap::new();
    headers.insert("nav-personident", HeaderValue::from_static("12884513829"));
    headers.insert("connection", HeaderValue::from_static("Nav-Personident"));
    assert!(guard_subject_header(&mut headers, "Nav-Personident").is_err());
}
