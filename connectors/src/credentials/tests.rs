#![allow(clippy::unwrap_used)]

use http::header::{self, HeaderMap};

use super::*;

#[test]
fn bearer_sets_authorization_marked_sensitive() {
    let creds = Credentials::bearer("  s3cret-token  ").unwrap();
    let mut h = HeaderMap::new();
    h.insert(
        header::AUTHORIZATION,
        "Bearer someone-else".parse().unwrap(),
    );
    creds.apply(&mut h);
    let v = h.get(header::AUTHORIZATION).unwrap();
    assert_eq!(v, "Bearer s3cret-token");
    assert!(v.is_sensitive());
    assert_eq!(h.get_all(header::AUTHORIZATION).iter().count(), 1);
}

#[test]
fn bearer_refuses_bad_tokens() {
    for t in ["", "   ", "two words", "line\nbreak", "nul\0"] {
        assert_eq!(
            Credentials::bearer(t).unwrap_err(),
            CredentialError::InvalidBearerToken,
            "{t:?}"
        );
    }
}

#[test]
fn header_credential_is_sensitive_and_replaces() {
    let creds = Credentials::header("X-Api-Key", "k3y").unwrap();
    let mut h = HeaderMap::new();
    h.insert("x-api-key", "caller".parse().unwrap());
    creds.apply(&mut h);
    let v = h.get("x-api-key").unwrap();
    assert_eq!(v, "k3y");
    assert!(v.is_sensitive());
}

#[test]
fn header_credential_built_by_hand_is_still_sent_sensitive() {
    let creds = Credentials::Header {
        name: HeaderName::from_static("x-api-key"),
        value: HeaderValue::from_static("k3y"),
    };
    let mut h = HeaderMap::new();
    creds.apply(&mut h);
    assert!(h.get("x-api-key").unwrap().is_sensitive());
}

#[test]
fn header_credential_refuses_reserved_and_invalid() {
    assert_eq!(
        Credentials::header("Bru-Assertion", "x").unwrap_err(),
        CredentialError::ReservedHeaderName
    );
    assert_eq!(
        Credentials::header("Host", "x").unwrap_err(),
        CredentialError::ReservedHeaderName
    );
    assert_eq!(
        Credentials::header("bad name", "x").unwrap_err(),
        CredentialError::InvalidHeaderName
    );
    assert_eq!(
        Credentials::header("X-Api-Key", "").unwrap_err(),
        CredentialError::InvalidHeaderValue
    );
    assert_eq!(
        Credentials::header("X-Api-Key", "a\nb").unwrap_err(),
        CredentialError::InvalidHeaderValue
    );
    // A provider may want its own Authorization scheme.
    assert!(Credentials::header("Authorization", "Basic dTpw").is_ok());
}

#[test]
fn none_adds_nothing() {
    let mut h = HeaderMap::new();
    Credentials::None.apply(&mut h);
    assert!(h.is_empty());
}

#[test]
fn debug_never_shows_secrets() {
    let bearer = format!("{:?}", Credentials::bearer("s3cret").unwrap());
    let header = format!("{:?}", Credentials::header("X-Api-Key", "k3y").unwrap());
    assert!(!bearer.contains("s3cret"), "{bearer}");
    assert!(!header.contains("k3y"), "{header}");
    assert!(header.contains("x-api-key"), "{header}");
}
