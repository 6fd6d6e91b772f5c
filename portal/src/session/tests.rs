#![allow(clippy::unwrap_used)]

use std::time::Duration;

use http::{header, HeaderMap, HeaderValue};

use super::*;

const KARI: &str = "12884513829";

fn sessions() -> Sessions {
    Sessions::new(
        CookieKey::derive(&[7u8; 32]).unwrap(),
        Duration::from_secs(900),
        Duration::from_secs(7200),
    )
}

fn with_cookie(name: &str, value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::COOKIE,
        HeaderValue::from_str(&format!("other=1; {name}={value}; x=y")).unwrap(),
    );
    h
}

fn kari() -> policy::PersonNumber {
    policy::PersonNumber::parse(KARI, true).unwrap()
}

#[test]
fn a_short_key_is_refused() {
    assert!(CookieKey::derive(&[1u8; 31]).is_err());
    assert!(CookieKey::derive(&[1u8; 32]).is_ok());
}

#[test]
fn a_session_round_trips_and_hides_the_person_number() {
    let s = sessions();
    let (session, sealed) = s.start(&kari(), "idporten-loa-substantial", 1000).unwrap();
    assert!(!sealed.contains(KARI));
    assert!(!URL_SAFE_NO_PAD
        .decode(&sealed)
        .unwrap()
        .windows(KARI.len())
        .any(|w| w == KARI.as_bytes()));
    match s.lookup(&with_cookie(SESSION_COOKIE, &sealed), 1001) {
        Lookup::Active {
            session: got,
            refresh,
        } => {
            assert_eq!(got, session);
            assert_eq!(got.pid, KARI);
            // Too soon to rewrite the cookie.
            assert!(refresh.is_none());
        }
        other => panic!("expected a session, got {other:?}"),
    }
    // Debug never shows the number or the CSRF token.
    let debug = format!("{session:?}");
    assert!(!debug.contains(KARI) && !debug.contains(&session.csrf));
}

#[test]
fn sessions_time_out_idle_and_absolute() {
    let s = sessions();
    let (_, sealed) = s.start(&kari(), "idporten-loa-substantial", 1000).unwrap();
    let h = with_cookie(SESSION_COOKIE, &sealed);
    assert!(matches!(s.lookup(&h, 1000 + 900), Lookup::Active { .. }));
    assert_eq!(s.lookup(&h, 1000 + 901), Lookup::Expired);

    // Kept alive by activity, it still ends at the absolute limit.
    let mut value = sealed;
    let mut t = 1000;
    while t < 1000 + 7200 {
        t += 600;
        match s.lookup(&with_cookie(SESSION_COOKIE, &value), t) {
            Lookup::Active { refresh, .. } if t <= 1000 + 7200 => {
                value = refresh.expect("a refreshed cookie after 600 s");
            }
            Lookup::Expired => break,
            other => panic!("at {t}: {other:?}"),
        }
    }
    assert_eq!(
        s.lookup(&with_cookie(SESSION_COOKIE, &value), 1000 + 7201),
        Lookup::Expired
    );
}

#[test]
fn a_forged_or_foreign_cookie_is_no_session() {
    let s = sessions();
    let (_, sealed) = s.start(&kari(), "idporten-loa-substantial", 1000).unwrap();
    // One flipped bit anywhere.
    let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
    for i in [0, NONCE_LEN, bytes.len() - 1] {
        bytes[i] ^= 1;
        let forged = URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(
            s.lookup(&with_cookie(SESSION_COOKIE, &forged), 1001),
            Lookup::None
        );
        bytes[i] ^= 1;
    }
    // Another key.
    let other = Sessions::new(
        CookieKey::derive(&[8u8; 32]).unwrap(),
        Duration::from_secs(900),
        Duration::from_secs(7200),
    );
    assert_eq!(
        other.lookup(&with_cookie(SESSION_COOKIE, &sealed), 1001),
        Lookup::None
    );
    // A login cookie's value does not pass as a session (the name is bound in).
    let login = LoginState::new("/samtykke", 1000).unwrap();
    let login_sealed = s.seal_login(&login).unwrap();
    assert_eq!(
        s.lookup(&with_cookie(SESSION_COOKIE, &login_sealed), 1001),
        Lookup::None
    );
    // Garbage, empty, oversized.
    for junk in ["", "abc", "!!!", &"A".repeat(5000)] {
        assert_eq!(
            s.lookup(&with_cookie(SESSION_COOKIE, junk), 1001),
            Lookup::None
        );
    }
    // A session issued "in the future" was not issued by this clock.
    let (_, future) = s.start(&kari(), "idporten-loa-substantial", 5000).unwrap();
    assert_eq!(
        s.lookup(&with_cookie(SESSION_COOKIE, &future), 1000),
        Lookup::None
    );
}

#[test]
fn csrf_tokens_must_match_exactly() {
    let token = random_token().unwrap();
    assert_eq!(token.len(), 43);
    assert_ne!(token, random_token().unwrap());
    assert!(csrf_ok(&token, Some(&token)));
    assert!(!csrf_ok(&token, None));
    assert!(!csrf_ok(&token, Some("")));
    assert!(!csrf_ok(&token, Some(&token[..42])));
    assert!(!csrf_ok(&token, Some(&format!("{token}x"))));
    assert!(!csrf_ok("", Some("")));
}

#[test]
fn each_login_gets_a_new_csrf_token() {
    let s = sessions();
    let (a, _) = s.start(&kari(), "idporten-loa-substantial", 1000).unwrap();
    let (b, _) = s.start(&kari(), "idporten-loa-substantial", 1000).unwrap();
    assert_ne!(a.csrf, b.csrf);
}

#[test]
fn a_login_state_lives_ten_minutes() {
    let s = sessions();
    let login = LoginState::new("/samtykke/abc", 1000).unwrap();
    let h = with_cookie(LOGIN_COOKIE, &s.seal_login(&login).unwrap());
    assert_eq!(s.login_state(&h, 1000 + LOGIN_TTL_S), Some(login));
    assert_eq!(s.login_state(&h, 1001 + LOGIN_TTL_S), None);
}

#[test]
fn next_is_always_one_of_our_paths() {
    let check = |next: &str, want: &str| assert_eq!(safe_next(next), want, "{next}");
    check("/samtykke", "/samtykke");
    check(
        "/samtykke/0b5e3f4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
        "/samtykke/0b5e3f4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
    );
    check("/innsyn", "/innsyn");
    check("/", "/");
    check("//evil.example/samtykke", "/samtykke");
    check("https://evil.example/", "/samtykke");
    check("/samtykke?x=1", "/samtykke");
    check("/samtykkefoo", "/samtykke");
    check("/\\evil.example", "/samtykke");
    check("/logg-ut", "/samtykke");
    check("", "/samtykke");
}

#[test]
fn cookies_are_host_only_secure_httponly_lax() {
    let v = set_cookie(SESSION_COOKIE, "abc").unwrap();
    let v = v.to_str().unwrap();
    assert!(v.starts_with("__Host-bru-session=abc;"));
    for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(v.contains(attr), "{v} lacks {attr}");
    }
    assert!(!v.contains("Domain"));
    let cleared = clear_cookie(SESSION_COOKIE);
    assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
}
