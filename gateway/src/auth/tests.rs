#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn duplicate_members_are_found_at_any_depth() {
    assert!(!has_duplicate_keys(br#"{"a":1,"b":{"c":2}}"#));
    assert!(has_duplicate_keys(br#"{"a":1,"a":2}"#));
    assert!(has_duplicate_keys(br#"{"a":{"c":1,"c":2}}"#));
    assert!(has_duplicate_keys(br#"{"a":[{"c":1,"c":2}]}"#));
    assert!(has_duplicate_keys(br#"{"a":1,"\u0061":2}"#));
    assert!(has_duplicate_keys(b"not json"));
}

#[test]
fn only_exact_algorithm_names_are_accepted() {
    for bad in ["none", "None", "NONE", "HS256", "rs256", "", "RS256 "] {
        assert!(accepted_algorithm(bad).is_none(), "{bad}");
    }
    assert_eq!(accepted_algorithm("RS256"), Some(Algorithm::RS256));
}

#[test]
fn key_ids_are_plain() {
    assert!(valid_kid("abc-123_X.y="));
    for bad in [
        "../../etc/passwd",
        "a\"b",
        "a'b",
        "",
        "a/b",
        "a b",
        "..",
        &"k".repeat(300),
    ] {
        assert!(!valid_kid(bad), "{bad}");
    }
}

#[test]
fn bearer_header() {
    let h = http::HeaderValue::from_static("Bearer abc");
    assert_eq!(bearer(Some(&h)).unwrap(), "abc");
    let h = http::HeaderValue::from_static("bearer abc");
    assert_eq!(bearer(Some(&h)).unwrap(), "abc");
    assert_eq!(bearer(None), Err(AuthError::MissingToken));
    let h = http::HeaderValue::from_static("Basic abc");
    assert!(matches!(bearer(Some(&h)), Err(AuthError::InvalidToken(_))));
}

fn token_for(org: &str) -> MachineToken {
    MachineToken {
        caller: Caller {
            consumer: OrgNumber::parse(org).unwrap(),
            supplier: None,
            client_id: "c".into(),
            scopes: vec!["s".into()],
        },
        altinn: Default::default(),
    }
}

#[test]
fn verified_tokens_are_served_until_they_expire() {
    let cache = VerifiedTokens {
        map: std::sync::RwLock::new(std::collections::HashMap::new()),
    };
    let key = VerifiedTokens::key("header.payload.signature");
    assert_ne!(key, VerifiedTokens::key("header.payload.signaturE"));
    cache.insert(key, token_for("983440002"), 1_000, 900);
    assert_eq!(
        cache.get(&key, 999).unwrap().caller.consumer.as_str(),
        "983440002"
    );
    assert!(
        cache.get(&key, 1_000).is_none(),
        "not at or after valid_until"
    );
    assert!(cache.get(&VerifiedTokens::key("other"), 999).is_none());
}

#[test]
fn verified_tokens_stay_bounded() {
    let cache = VerifiedTokens {
        map: std::sync::RwLock::new(std::collections::HashMap::new()),
    };
    for i in 0..VERIFIED_TOKENS_CAPACITY + 10 {
        cache.insert(
            VerifiedTokens::key(&i.to_string()),
            token_for("983440002"),
            2_000,
            1_000,
        );
    }
    assert!(cache.map.read().unwrap().len() <= VERIFIED_TOKENS_CAPACITY);
}
