#![allow(clippy::unwrap_used)]

use std::time::Duration;

use http::{header, HeaderMap, HeaderValue};

use super::*;

const KARI: &str = "12884513829";

/// Sessions over a fresh SQLite store; keep the directory alive.
async fn sessions() -> (tempfile::TempDir, Sessions) {
    let dir = tempfile::tempdir().unwrap();
    let store = consent_db::Store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let s = Sessions::new(
        CookieKey::derive(&[7u8; 32]).unwrap(),
        store,
        Duration::from_secs(900),
        Duration::from_secs(7200),
    );
    (dir, s)
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

#[tokio::test]
async fn a_session_round_trips_and_hides_the_person_number() {
    let (_dir, s) = sessions().await;
    let (session, sealed) = s
        .start(
            &kari(),
            "idporten-loa-substantial",
            Some("id.token.x".into()),
            1000,
        )
        .await
        .unwrap();
    assert!(!sealed.contains(KARI));
    // The store holds the id's hash and the state sealed: no number in clear.
    let h = with_cookie(SESSION_COOKIE, &sealed);
    let id_hash = s.cookie_id_hash(&h).unwrap();
    let row = s.store.portal_session(&id_hash).await.unwrap().unwrap();
    assert!(!row.sealed.contains(KARI) && !row.sealed.contains("id.token.x"));
    assert!(!URL_SAFE_NO_PAD
        .decode(&row.sealed)
        .unwrap()
        .windows(KARI.len())
        .any(|w| w == KARI.as_bytes()));
    match s.lookup(&h, 1001).await {
        Lookup::Active(got) => {
            assert_eq!(got, session);
            assert_eq!(got.pid, KARI);
            assert_eq!(got.id_token.as_deref(), Some("id.token.x"));
        }
        other => panic!("expected a session, got {other:?}"),
    }
    // Debug never shows the number, the CSRF token or the id_token.
    let debug = format!("{session:?}");
    assert!(!debug.contains(KARI) && !debug.contains(&session.csrf) && !debug.contains("id.token"));
}

#[tokio::test]
async fn sessions_time_out_idle_and_absolute() {
    let (_dir, s) = sessions().await;
    let (_, sealed) = s
        .start(&kari(), "idporten-loa-substantial", None, 1000)
        .await
        .unwrap();
    let h = with_cookie(SESSION_COOKIE, &sealed);
    assert!(matches!(s.lookup(&h, 1000 + 900).await, Lookup::Active(_)));
    // Idle for 901 s after the touch at 1900.
    assert_eq!(s.lookup(&h, 1900 + 901).await, Lookup::Expired);
    // A timed-out session is gone from the store: no second chance.
    assert_eq!(s.lookup(&h, 1900 + 10).await, Lookup::None);

    // Kept alive by activity, it still ends at the absolute limit.
    let (_, sealed) = s
        .start(&kari(), "idporten-loa-substantial", None, 1000)
        .await
        .unwrap();
    let h = with_cookie(SESSION_COOKIE, &sealed);
    let mut t = 1000;
    while t + 600 <= 1000 + 7200 {
        t += 600;
        assert!(matches!(s.lookup(&h, t).await, Lookup::Active(_)), "at {t}");
    }
    assert_eq!(s.lookup(&h, 1000 + 7201).await, Lookup::Expired);
}

#[tokio::test]
async fn an_ended_session_is_dead_everywhere() {
    let (_dir, s) = sessions().await;
    let (_, sealed) = s
        .start(&kari(), "idporten-loa-substantial", None, 1000)
        .await
        .unwrap();
    let h = with_cookie(SESSION_COOKIE, &sealed);
    // A second replica over the same store with the same key.
    let other = Sessions::new(
        CookieKey::derive(&[7u8; 32]).unwrap(),
        s.store.clone(),
        Duration::from_secs(900),
        Duration::from_secs(7200),
    );
    assert!(matches!(other.lookup(&h, 1001).await, Lookup::Active(_)));
    s.end(&h).await.unwrap();
    // The same cookie, replayed afterwards, on either replica.
    assert_eq!(s.lookup(&h, 1002).await, Lookup::None);
    assert_eq!(other.lookup(&h, 1002).await, Lookup::None);
}

#[tokio::test]
async fn a_forged_or_foreign_cookie_is_no_session() {
    let (_dir, s) = sessions().await;
    let (_, sealed) = s
        .start(&kari(), "idporten-loa-substantial", None, 1000)
        .await
        .unwrap();
    // One flipped bit anywhere.
    let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
    for i in [0, NONCE_LEN, bytes.len() - 1] {
        bytes[i] ^= 1;
        let forged = URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(
            s.lookup(&with_cookie(SESSION_COOKIE, &forged), 1001).await,
            Lookup::None
        );
        bytes[i] ^= 1;
    }
    // Another key, over the same store.
    let other = Sessions::new(
        CookieKey::derive(&[8u8; 32]).unwrap(),
        s.store.clone(),
        Duration::from_secs(900),
        Duration::from_secs(7200),
    );
    assert_eq!(
        other
            .lookup(&with_cookie(SESSION_COOKIE, &sealed), 1001)
            .await,
        Lookup::None
    );
    // A login cookie's value does not pass as a session (the name is bound in).
    let login = LoginState::new("/samtykke", 1000).unwrap();
    let login_sealed = s.seal_login(&login).unwrap();
    assert_eq!(
        s.lookup(&with_cookie(SESSION_COOKIE, &login_sealed), 1001)
            .await,
        Lookup::None
    );
    // A well-sealed cookie naming a session id that was never issued.
    let made_up = s
        .key
        .seal(
            SESSION_COOKIE,
            &SessionCookie {
                sid: random_token().unwrap(),
            },
        )
        .unwrap();
    assert_eq!(
        s.lookup(&with_cookie(SESSION_COOKIE, &made_up), 1001).await,
        Lookup::None
    );
    // Garbage, empty, oversized.
    for junk in ["", "abc", "!!!", &"A".repeat(5000)] {
        assert_eq!(
            s.lookup(&with_cookie(SESSION_COOKIE, junk), 1001).await,
            Lookup::None
        );
    }
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

#[tokio::test]
async fn each_login_gets_a_new_csrf_token() {
    let (_dir, s) = sessions().await;
    let (a, _) = s
        .start(&kari(), "idporten-loa-substantial", None, 1000)
        .await
        .unwrap();
    let (b, _) = s
        .start(&kari(), "idporten-loa-substantial", None, 1000)
        .await
        .unwrap();
    assert_ne!(a.csrf, b.csrf);
}

#[tokio::test]
async fn a_login_state_lives_ten_minutes() {
    let (_dir, s) = sessions().await;
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
