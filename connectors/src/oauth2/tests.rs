use super::*;

#[test]
fn refresh_margin_is_ten_percent_at_least_ten_seconds_at_most_half() {
    let m = |s: u64| refresh_margin(Duration::from_secs(s));
    assert_eq!(m(3600), Duration::from_secs(360));
    assert_eq!(m(120), Duration::from_secs(12));
    assert_eq!(m(60), Duration::from_secs(10));
    assert_eq!(m(5), Duration::from_millis(2500));
    assert_eq!(m(0), Duration::ZERO);
}

#[test]
fn refusals_read_well_and_are_cleaned() {
    let e = GrantError::Refused {
        status: 400,
        error: Some("invalid_grant".into()),
        description: Some(clean("bad\nsignature\u{7}", 200)),
    };
    assert_eq!(
        e.to_string(),
        "the token endpoint refused the grant (HTTP 400: invalid_grant: badsignature)"
    );
    let bare = GrantError::Refused {
        status: 503,
        error: None,
        description: None,
    };
    assert_eq!(
        bare.to_string(),
        "the token endpoint refused the grant (HTTP 503)"
    );
    assert_eq!(clean(&"x".repeat(500), 200).len(), 200);
}
