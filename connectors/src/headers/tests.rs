#![allow(clippy::unwrap_used)]

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::*;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    m
}

fn names(m: &HeaderMap) -> Vec<String> {
    let mut v: Vec<String> = m.keys().map(|k| k.as_str().to_owned()).collect();
    v.sort();
    v
}

/// Cleans `input` with `clean` and compares the header names that remain.
fn check(clean: fn(&mut HeaderMap), input: &[(&str, &str)], expected: &[&str]) {
    let mut m = map(input);
    clean(&mut m);
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(names(&m), expected, "input: {input:?}");
}

#[test]
fn request_strips_credentials_and_bru_headers() {
    check(
        clean_request_headers,
        &[
            ("Authorization", "Bearer caller-token"),
            ("Proxy-Authorization", "Basic x"),
            ("Cookie", "a=b"),
            ("Bru-Consent", "c-1"),
            ("Bru-Assertion", "forged"),
            ("Bru-Consumer", "0192:971000007"),
            ("Bru-Purpose", "x"),
            ("BRU-Transfer-Id", "x"),
            ("bru-anything-new", "x"),
            ("Accept", "application/json"),
            ("Nav-Personident", "12884513829"),
        ],
        &["accept", "nav-personident"],
    );
}

#[test]
fn request_strips_method_overrides() {
    check(
        clean_request_headers,
        &[
            ("X-HTTP-Method-Override", "DELETE"),
            ("X-Method-Override", "DELETE"),
            ("X-HTTP-Method", "DELETE"),
            ("Content-Type", "application/json"),
        ],
        &["content-type"],
    );
}

#[test]
fn request_strips_hop_by_hop_and_connection_named() {
    check(
        clean_request_headers,
        &[
            ("Connection", "keep-alive, X-Secret-Hop, close"),
            ("Connection", "x-other-hop"),
            ("X-Secret-Hop", "1"),
            ("X-Other-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Trailer", "Expires"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "websocket"),
            ("Host", "bru.example"),
            ("Expect", "100-continue"),
            ("Content-Length", "12"),
        ],
        &["content-length"],
    );
}

#[test]
fn request_strips_forwarding_headers() {
    check(
        clean_request_headers,
        &[
            ("Forwarded", "for=1.2.3.4"),
            ("X-Forwarded-For", "1.2.3.4"),
            ("X-Forwarded-Host", "evil"),
            ("X-Forwarded-Proto", "http"),
            ("X-Real-IP", "1.2.3.4"),
            ("X-Request-Id", "r1"),
        ],
        &["x-request-id"],
    );
}

#[test]
fn request_keeps_trace_context_unchanged() {
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut m = map(&[("traceparent", tp), ("tracestate", "a=1,b=2")]);
    clean_request_headers(&mut m);
    assert_eq!(m.get(TRACEPARENT).unwrap(), tp);
    assert_eq!(m.get(TRACESTATE).unwrap(), "a=1,b=2");
}

#[test]
fn request_removes_every_value_of_a_repeated_header() {
    check(
        clean_request_headers,
        &[
            ("Authorization", "Bearer a"),
            ("Authorization", "Bearer b"),
            ("Bru-Assertion", "x"),
            ("Bru-Assertion", "y"),
        ],
        &[],
    );
}

#[test]
fn connection_naming_an_end_to_end_header_removes_it() {
    // RFC 9110 §7.6.1: the sender declared it hop-by-hop for this connection.
    check(
        clean_request_headers,
        &[("Connection", "Accept"), ("Accept", "*/*")],
        &[],
    );
}

#[test]
fn connection_with_garbage_tokens_is_harmless() {
    check(
        clean_request_headers,
        &[("Connection", " , ,bad header name,\t"), ("Accept", "*/*")],
        &["accept"],
    );
}

#[test]
fn response_strips_hop_by_hop_cookies_and_bru() {
    check(
        clean_response_headers,
        &[
            ("Connection", "x-provider-hop"),
            ("X-Provider-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("Trailer", "x"),
            ("Upgrade", "h2c"),
            ("Proxy-Authenticate", "Basic"),
            ("Set-Cookie", "session=abc"),
            ("Set-Cookie", "other=def"),
            ("Alt-Svc", "h3=\":443\""),
            ("Bru-Transfer-Id", "forged"),
            ("Content-Type", "application/json"),
            ("Content-Length", "42"),
            ("Cache-Control", "no-store"),
            ("ETag", "\"1\""),
        ],
        &["cache-control", "content-length", "content-type", "etag"],
    );
}

#[test]
fn empty_maps_stay_empty() {
    check(clean_request_headers, &[], &[]);
    check(clean_response_headers, &[], &[]);
}

#[test]
fn reserved_names_for_credentials() {
    for name in [
        "host",
        "connection",
        "bru-assertion",
        "x-forwarded-for",
        "content-length",
        "traceparent",
        "x-http-method-override",
    ] {
        let name = HeaderName::from_static(name);
        assert!(is_reserved_request_header(&name), "{name}");
    }
    for name in ["authorization", "cookie", "x-api-key", "nav-consumer-token"] {
        let name = HeaderName::from_static(name);
        assert!(!is_reserved_request_header(&name), "{name}");
    }
}

#[test]
fn connection_never_removes_what_frames_or_traces_the_body() {
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    check(
        clean_request_headers,
        &[
            (
                "Connection",
                "Content-Type, content-length, Traceparent, tracestate, X-Hop",
            ),
            ("Content-Type", "application/json"),
            ("Content-Length", "2"),
            ("traceparent", tp),
            ("tracestate", "a=1"),
            ("X-Hop", "1"),
        ],
        &[
            "content-length",
            "content-type",
            "traceparent",
            "tracestate",
        ],
    );
}

#[test]
fn header_names_normalise_as_cgi_reads_them() {
    for variant in [
        "Nav-Personident",
        "nav_personident",
        "NAV.PERSONIDENT",
        "Nav_Personident",
    ] {
        assert_eq!(
            normalise_header_name(variant),
            "nav-personident",
            "{variant}"
        );
    }
    assert_ne!(normalise_header_name("Nav-Personidents"), "nav-personident");
}

#[test]
fn variants_of_the_subject_header_are_removed_and_the_subject_stays() {
    let mut m = map(&[
        ("Nav-Personident", "12884513829"),
        ("Nav_Personident", "03839113713"),
        ("nav.personident", "03839113713"),
        ("Nav-Personident-Extra", "x"),
    ]);
    remove_variants_of(&mut m, "Nav-Personident");
    assert_eq!(names(&m), ["nav-personident", "nav-personident-extra"]);
    assert_eq!(m.get("nav-personident").unwrap(), "12884513829");
}

#[test]
fn connection_naming_the_subject_header_is_seen() {
    let m = map(&[("Connection", "close, Nav_Personident")]);
    assert!(connection_names(&m, "Nav-Personident"));
    let m = map(&[("Connection", "close, keep-alive")]);
    assert!(!connection_names(&m, "Nav-Personident"));
}

#[test]
fn traceparent_follows_w3c_trace_context() {
    let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert!(is_valid_traceparent(good));
    // A later version may append fields after the four of version 00.
    assert!(is_valid_traceparent(
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"
    ));
    for bad in [
        "",
        "garbage",
        // upper-case hex
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        // version ff
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        // all-zero trace id, all-zero parent id
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        // version 00 with more after it
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        // a short field
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01x",
        // not hex
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        // non-ASCII where the 55th byte falls inside a character
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0é",
    ] {
        assert!(!is_valid_traceparent(bad), "{bad}");
    }
}

#[test]
fn an_invalid_or_repeated_traceparent_is_dropped_with_its_tracestate() {
    let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    check(
        clean_request_headers,
        &[
            ("traceparent", "00-zz-xx-01"),
            ("tracestate", "a=1"),
            ("Accept", "*/*"),
        ],
        &["accept"],
    );
    check(
        clean_request_headers,
        &[
            ("traceparent", good),
            ("traceparent", good),
            ("tracestate", "a=1"),
        ],
        &[],
    );
    check(clean_request_headers, &[("tracestate", "a=1")], &[]);
}
