#![allow(clippy::unwrap_used)]

//! The portal's routes end to end, in process: sessions, CSRF, headers,
//! language, and consent answers through the store's lifecycle.

use axum::body::Body;
use http::{Request, StatusCode};
use tower::ServiceExt;

use super::*;

const KARI: &str = "12884513829";
const OLA: &str = "03839113713";

const POLICY: &str = r#"
[[organisation]]
org = "921429002"
name = "K429 kommune"

[[organisation]]
org = "983440002"
name = "NAV (test)"

[[purpose]]
id = "omsorgsbolig-soknad"
title = { nb = "Søknad om omsorgsbolig", en = "Application for sheltered housing" }
description = { nb = "Kommunen fyller ut søknaden.", en = "The municipality pre-fills the application." }

[[provider]]
id = "nav"
org = "983440002"

[[dataset]]
provider = "nav"
id = "inntekt"
title = { nb = "Inntekt", en = "Income" }
description = { nb = "Inntekten din.", en = "Your income." }
basis = "consent"
scope = "nav:inntekt.read"
subject = { header = "Nav-Personident" }

  [[dataset.purpose]]
  id = "omsorgsbolig-soknad"

[[consumer]]
org = "921429002"
consent_requester = true

  [[consumer.dataset]]
  id = "nav/inntekt"
"#;

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    router: Router,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("bru.db").display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    std::fs::write(dir.path().join("session.key"), [9u8; 32]).unwrap();
    let config = PortalConfig {
        oidc: None,
        session_key: config::SecretSource::File(dir.path().join("session.key")),
        idle_timeout: std::time::Duration::from_secs(900),
        absolute_timeout: std::time::Duration::from_secs(7200),
    };
    let deps = PortalDeps {
        store: store.clone(),
        policy: policy::parse_policy("policy.toml", POLICY).unwrap(),
        pseudonyms: Pseudonymiser::new(&[3u8; 32]).unwrap(),
        public_url: "https://localhost:8443".to_owned(),
        allow_synthetic_ids: true,
        representation: None,
    };
    let portal = Portal::new(&config, deps).unwrap().with_demo_login(vec![
        DemoPerson {
            pid: KARI.into(),
            name: "Kari Nordmann".into(),
        },
        DemoPerson {
            pid: OLA.into(),
            name: "Ola Nordmann".into(),
        },
    ]);
    World {
        _dir: dir,
        store,
        router: Arc::new(portal).router(),
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// `name=value` of the cookie this reply sets.
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")) && !v.contains("Max-Age=0"))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned)
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").unwrap() + 19;
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

impl World {
    async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn get(&self, path: &str, cookies: &[&str]) -> Reply {
        let mut req = Request::get(path);
        if !cookies.is_empty() {
            req = req.header(header::COOKIE, cookies.join("; "));
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, path: &str, cookies: &[&str], form: &str, origin: Option<&str>) -> Reply {
        let mut req =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if !cookies.is_empty() {
            req = req.header(header::COOKIE, cookies.join("; "));
        }
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        self.send(req.body(Body::from(form.to_owned())).unwrap())
            .await
    }

    /// Logs in through the demo picker; the session cookie.
    async fn login(&self, pid: &str) -> String {
        let picker = self.get("/demo/idporten/login?neste=/samtykke", &[]).await;
        assert_eq!(picker.status, StatusCode::OK);
        let login = picker.cookie(session::LOGIN_COOKIE).unwrap();
        let reply = self
            .post(
                "/demo/idporten/login",
                &[&login],
                &format!("csrf={}&pid={pid}", picker.csrf()),
                Some("https://localhost:8443"),
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        assert_eq!(reply.header("location"), "/samtykke");
        reply.cookie(session::SESSION_COOKIE).unwrap()
    }

    async fn request(&self, subject: Option<&str>) -> String {
        let id = uuid_like();
        let new = consent_db::NewConsent {
            id: id.clone(),
            requester: "0192:921429002".into(),
            supplier: None,
            subject: subject.map(|s| PersonNumber::parse(s, true).unwrap()),
            datasets: vec!["nav/inntekt".parse().unwrap()],
            purpose: "omsorgsbolig-soknad".into(),
            valid_to: Timestamp::parse("2026-12-23T12:00:00Z").unwrap(),
            max_uses: Some(10),
            frequency: None,
            redirect_url: None,
            message: Some("Hei Kari".into()),
        };
        self.store
            .create_consent(&new, Timestamp::parse("2026-01-01T00:00:00Z").unwrap())
            .await
            .unwrap();
        id
    }

    async fn status(&self, id: &str) -> String {
        self.store
            .get_consent(id)
            .await
            .unwrap()
            .unwrap()
            .status
            .to_string()
    }
}

fn uuid_like() -> String {
    let t = session::random_token().unwrap();
    let hex: String = t
        .bytes()
        .map(|b| format!("{:x}", b % 16))
        .take(32)
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[tokio::test]
async fn every_page_has_the_security_headers() {
    let w = world().await;
    for path in [
        "/",
        "/samtykke",
        "/innsyn",
        "/logg-inn",
        "/demo/idporten/login",
        "/static/portal.css",
    ] {
        let r = w.get(path, &[]).await;
        let csp = r.header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
            "script-src 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(r.header("referrer-policy"), "no-referrer", "{path}");
        if path != "/static/portal.css" {
            assert_eq!(r.header("cache-control"), "no-store", "{path}");
        }
    }
    let css = w.get("/static/portal.css", &[]).await;
    assert!(css.header("content-type").starts_with("text/css"));
    // No inline style or script anywhere: the CSP would block them.
    let home = w.get("/", &[]).await;
    assert!(!home.body.contains("<script") && !home.body.contains("style="));
    assert!(home.body.starts_with("<!DOCTYPE html><html lang=\"nb\">"));
}

#[tokio::test]
async fn pages_need_a_login_and_the_demo_picker_gives_one() {
    let w = world().await;
    let r = w.get("/samtykke", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/logg-inn?neste=/samtykke");
    let r = w.get("/logg-inn?neste=/innsyn", &[]).await;
    assert_eq!(r.header("location"), "/demo/idporten/login?neste=/innsyn");

    let session = w.login(KARI).await;
    let r = w.get("/samtykke", &[&session]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Mine samtykker"));
    assert!(
        !r.body.contains(KARI),
        "the person number is not shown back"
    );
    let r = w.get("/innsyn", &[&session]).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn the_picker_takes_only_demo_persons_and_its_own_form() {
    let w = world().await;
    let picker = w.get("/demo/idporten/login", &[]).await;
    let login = picker.cookie(session::LOGIN_COOKIE).unwrap();
    let csrf = picker.csrf();
    // Someone else's valid number is not a demo person.
    let r = w
        .post(
            "/demo/idporten/login",
            &[&login],
            &format!("csrf={csrf}&pid=24916214088"),
            None,
        )
        .await;
    assert!(r.cookie(session::SESSION_COOKIE).is_none());
    // No token, a wrong token, no login cookie, another origin.
    for (cookies, form, origin) in [
        (vec![login.as_str()], format!("pid={KARI}"), None),
        (
            vec![login.as_str()],
            format!("csrf=x{csrf}&pid={KARI}"),
            None,
        ),
        (vec![], format!("csrf={csrf}&pid={KARI}"), None),
        (
            vec![login.as_str()],
            format!("csrf={csrf}&pid={KARI}"),
            Some("https://evil.example"),
        ),
    ] {
        let r = w
            .post("/demo/idporten/login", &cookies, &form, origin)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{form} {origin:?}");
        assert!(r.cookie(session::SESSION_COOKIE).is_none());
    }
}

#[tokio::test]
async fn answers_need_the_sessions_csrf_token() {
    let w = world().await;
    let id = w.request(Some(KARI)).await;
    let session = w.login(KARI).await;
    let page = w.get(&format!("/samtykke/{id}"), &[&session]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("K429 kommune ber om lov til å hente inntekt fra NAV (test) til søknad om omsorgsbolig. Samtykket gjelder til 23. desember 2026."), "{}", page.body);
    let csrf = page.csrf();
    let path = format!("/samtykke/{id}");

    // Another session's token, no token, a foreign origin: nothing changes.
    let other = w.login(KARI).await;
    let other_csrf = w.get(&path, &[&other]).await.csrf();
    assert_ne!(other_csrf, csrf);
    for (form, origin) in [
        (format!("action=accept&csrf={other_csrf}"), None),
        ("action=accept".to_owned(), None),
        (
            format!("action=accept&csrf={csrf}"),
            Some("https://evil.example"),
        ),
    ] {
        let r = w.post(&path, &[&session], &form, origin).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{form}");
    }
    assert_eq!(w.status(&id).await, "pending");

    let r = w
        .post(
            &path,
            &[&session],
            &format!("action=accept&csrf={csrf}"),
            Some("https://localhost:8443"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), format!("{path}?utfort=accept"));
    assert_eq!(w.status(&id).await, "granted");
    // A second click is harmless.
    let r = w
        .post(
            &path,
            &[&session],
            &format!("action=accept&csrf={csrf}"),
            None,
        )
        .await;
    assert_eq!(r.header("location"), format!("{path}?utfort=accept"));
    // Rejecting a granted consent is not a transition: it says so.
    let r = w
        .post(
            &path,
            &[&session],
            &format!("action=reject&csrf={csrf}"),
            None,
        )
        .await;
    assert_eq!(r.header("location"), format!("{path}?utfort=conflict"));
    let r = w
        .post(
            &path,
            &[&session],
            &format!("action=revoke&csrf={csrf}"),
            None,
        )
        .await;
    assert_eq!(r.header("location"), format!("{path}?utfort=revoke"));
    assert_eq!(w.status(&id).await, "revoked");
    let page = w.get(&format!("{path}?utfort=revoke"), &[&session]).await;
    assert!(page.body.contains("Samtykket er trukket tilbake"));
}

#[tokio::test]
async fn another_persons_consent_is_not_found() {
    let w = world().await;
    let id = w.request(Some(KARI)).await;
    let ola = w.login(OLA).await;
    let path = format!("/samtykke/{id}");
    let r = w.get(&path, &[&ola]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let csrf = w.get("/samtykke", &[&ola]).await.csrf();
    let r = w
        .post(&path, &[&ola], &format!("action=accept&csrf={csrf}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(w.status(&id).await, "pending");
    // A request without a subject is an invitation: whoever answers owns it.
    let open = w.request(None).await;
    let r = w
        .post(
            &format!("/samtykke/{open}"),
            &[&ola],
            &format!("action=accept&csrf={csrf}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let row = w.store.get_consent(&open).await.unwrap().unwrap();
    assert_eq!(row.subject.as_deref(), Some(OLA));
}

#[tokio::test]
async fn logout_needs_the_token_and_ends_the_session() {
    let w = world().await;
    let session = w.login(KARI).await;
    let csrf = w.get("/samtykke", &[&session]).await.csrf();
    let r = w.post("/logg-ut", &[&session], "csrf=wrong", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = w
        .post("/logg-ut", &[&session], &format!("csrf={csrf}"), None)
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let cleared = r.headers.get_all(header::SET_COOKIE).iter().any(|v| {
        v.to_str().unwrap().starts_with("__Host-bru-session=;")
            && v.to_str().unwrap().contains("Max-Age=0")
    });
    assert!(cleared);
    // Without an OpenID provider (the demo), straight back home.
    assert_eq!(r.header("location"), "/?utlogget=1");
    // The old cookie, replayed (a stolen copy), is no session any more.
    let r = w.get("/samtykke", &[&session]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.header("location").starts_with("/logg-inn"));
    let id = w.request(Some(KARI)).await;
    let r = w
        .post(
            &format!("/samtykke/{id}"),
            &[&session],
            &format!("action=accept&csrf={csrf}"),
            None,
        )
        .await;
    assert!(r.header("location").starts_with("/logg-inn"));
    assert_eq!(w.status(&id).await, "pending");
}

/// Writes decision records about `pid`, one per `(purpose, consent, code)`;
/// `code: None` is an allowed call.
async fn decisions(w: &World, pid: &str, calls: &[(Option<&str>, Option<&str>, Option<&str>)]) {
    let log =
        consent_db::AuditLog::start(w.store.clone(), consent_db::AuditConfig::default()).unwrap();
    let subject_ref = Pseudonymiser::new(&[3u8; 32])
        .unwrap()
        .subject_ref(&PersonNumber::parse(pid, true).unwrap());
    for (i, (purpose, consent, code)) in calls.iter().enumerate() {
        let mut r = consent_db::NewRecord::new(
            consent_db::RecordKind::Decision,
            format!("t{i}"),
            "GET",
            "/data/nav/inntekt",
        );
        r.consumer = Some("0192:921429002".into());
        r.provider = Some("nav".into());
        r.dataset = Some("inntekt".into());
        r.purpose = purpose.map(str::to_owned);
        r.basis = Some(consent_db::Basis::Consent);
        r.consent_id = consent.map(str::to_owned);
        r.subject_ref = Some(subject_ref.clone());
        r.decision = Some(if code.is_some() {
            consent_db::Verdict::Deny
        } else {
            consent_db::Verdict::Allow
        });
        r.code = code.map(str::to_owned);
        log.append(r).await.unwrap();
    }
}

#[tokio::test]
async fn the_access_log_shows_only_what_policy_and_bru_vouch_for() {
    let w = world().await;
    let karis = w.request(Some(KARI)).await;
    let olas = w.request(Some(OLA)).await;
    let caller_text = "Ring-815-00000-for-aa-stoppe-innkreving";
    decisions(
        &w,
        OLA,
        &[
            // Kari's consent id, sent by a caller about Ola.
            (
                Some("omsorgsbolig-soknad"),
                Some(&karis),
                Some("consent_subject_mismatch"),
            ),
            (Some(caller_text), None, Some("purpose_not_allowed")),
            (
                Some("omsorgsbolig-soknad"),
                None,
                Some("insufficient_scope"),
            ),
            (Some("omsorgsbolig-soknad"), Some(&olas), None),
        ],
    )
    .await;
    let session = w.login(OLA).await;
    let r = w.get("/innsyn", &[&session]).await;
    assert_eq!(r.status, StatusCode::OK);
    // The purpose by its policy title; the caller's text nowhere.
    assert!(r.body.contains("Søknad om omsorgsbolig"));
    assert!(!r.body.contains(caller_text) && !r.body.contains("Ring-815"));
    assert!(r.body.contains("ukjent formål (oppgitt av virksomheten)"));
    // "Your consent" and its link only for Ola's own consent.
    assert_eq!(r.body.matches("Ditt samtykke").count(), 1);
    assert!(r.body.contains(&format!("href=\"/samtykke/{olas}\"")));
    assert!(!r.body.contains(&karis));
    assert!(r
        .body
        .contains("Samtykke som virksomheten viste til, men som ikke er ditt"));
    // Each refusal explained by its own code.
    assert!(r
        .body
        .contains("Formålet virksomheten oppga, er ikke tillatt"));
    assert!(r.body.contains("Virksomheten manglet tilgangen"));
    assert!(r.body.contains("Samtykket gjaldt en annen person."));
    assert!(!r.body.contains("ikke hadde lov"));
    // In English too.
    let r = w.get("/innsyn?lang=en", &[&session]).await;
    assert!(r
        .body
        .contains("unknown purpose (stated by the organisation)"));
    assert!(r
        .body
        .contains("The purpose the organisation gave is not allowed"));
}

#[tokio::test]
async fn the_access_log_is_paged_newest_first() {
    let w = world().await;
    let calls: Vec<_> = (0..45)
        .map(|_| (Some("omsorgsbolig-soknad"), None, Some("consent_required")))
        .collect();
    decisions(&w, KARI, &calls).await;
    let session = w.login(KARI).await;
    let r = w.get("/innsyn", &[&session]).await;
    assert!(r.body.contains("Viser 1–20 av 45"), "{}", r.body);
    assert_eq!(r.body.matches("<li class=\"card\"").count(), 20);
    // Newest first: the last record (index 44) leads page 1.
    let first = r.body.find("/innsyn/44/bevis").unwrap();
    let later = r.body.find("/innsyn/43/bevis").unwrap();
    assert!(first < later);
    assert!(!r.body.contains("/innsyn/24/bevis"));
    assert!(r.body.contains("aria-label=\"Sider\""));
    assert!(r.body.contains("href=\"/innsyn?side=2\" rel=\"next\""));
    let r = w.get("/innsyn?side=3", &[&session]).await;
    assert!(r.body.contains("Viser 41–45 av 45"));
    assert!(r.body.contains("/innsyn/0/bevis") && !r.body.contains("/innsyn/5/bevis"));
    assert!(r.body.contains("href=\"/innsyn?side=2\" rel=\"prev\""));
    assert!(r.body.contains("aria-current=\"page\""));
    // Nonsense pages are page 1.
    let r = w.get("/innsyn?side=x", &[&session]).await;
    assert!(r.body.contains("Viser 1–20 av 45"));
}

#[tokio::test]
async fn the_proof_page_explains_and_offers_the_raw_proof() {
    let w = world().await;
    decisions(&w, KARI, &[(Some("omsorgsbolig-soknad"), None, None)]).await;
    decisions(&w, OLA, &[(Some("omsorgsbolig-soknad"), None, None)]).await;
    let session = w.login(KARI).await;
    // Not under a checkpoint yet: said so.
    let r = w.get("/innsyn/0/bevis", &[&session]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("ikke har signert et sjekkpunkt"));
    let head = w.store.tree_head().await.unwrap();
    w.store
        .add_checkpoint(head.size, &head.root, "bru.example/log\n2\nroot\n\n— sig\n")
        .await
        .unwrap();
    let r = w.get("/innsyn/0/bevis", &[&session]).await;
    assert!(
        r.body.contains("Hendelsen er nummer 0 i loggen"),
        "{}",
        r.body
    );
    assert!(r.body.contains("bru.example/log"));
    assert!(r
        .body
        .contains("Bru har kontrollert beviset mot sjekkpunktet: det stemmer."));
    assert!(r
        .body
        .contains("href=\"/citizen/v1/transfers/0/proof\" download=\"bru-bevis-0.json\""));
    assert!(r.body.contains("RFC 9162"));
    // Ola's record is not Kari's to see.
    let r = w.get("/innsyn/1/bevis", &[&session]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = w
        .get("/innsyn/99999999999999999999/bevis", &[&session])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn language_follows_the_switch_cookie_and_browser() {
    let w = world().await;
    let r = w.get("/?lang=en", &[]).await;
    assert!(r.body.contains("<html lang=\"en\">"));
    assert!(r.body.contains("Log in with ID-porten"));
    let lang = r.cookie(session::LANG_COOKIE).unwrap();
    assert_eq!(lang, "__Host-bru-lang=en");
    let r = w.get("/", &[&lang]).await;
    assert!(r.body.contains("<html lang=\"en\">"));
    let req = Request::get("/")
        .header(header::ACCEPT_LANGUAGE, "en-GB,en;q=0.9")
        .body(Body::empty())
        .unwrap();
    assert!(w.send(req).await.body.contains("<html lang=\"en\">"));
    let r = w.get("/", &[]).await;
    assert!(r.body.contains("<html lang=\"nb\">") && r.body.contains("Logg inn med ID-porten"));
    // The switch links to the other language.
    assert!(r
        .body
        .contains("href=\"/?lang=en\" lang=\"en\" hreflang=\"en\""));
}

#[tokio::test]
async fn without_demo_persons_there_is_no_picker() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("bru.db").display()))
        .await
        .unwrap();
    std::fs::write(dir.path().join("k"), [1u8; 40]).unwrap();
    let config = PortalConfig {
        oidc: None,
        session_key: config::SecretSource::File(dir.path().join("k")),
        idle_timeout: std::time::Duration::from_secs(900),
        absolute_timeout: std::time::Duration::from_secs(7200),
    };
    let deps = PortalDeps {
        store,
        policy: policy::parse_policy("policy.toml", POLICY).unwrap(),
        pseudonyms: Pseudonymiser::new(&[3u8; 32]).unwrap(),
        public_url: "https://bru.example".into(),
        allow_synthetic_ids: false,
        representation: None,
    };
    let router = Arc::new(Portal::new(&config, deps).unwrap()).router();
    let r = router
        .clone()
        .oneshot(
            Request::get("/demo/idporten/login")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_timed_out_session_is_explained_and_cleared() {
    let w = world().await;
    // A session made with the portal's key and store, its last request 16 minutes ago.
    let sessions = Sessions::new(
        session::CookieKey::derive(&[9u8; 32]).unwrap(),
        w.store.clone(),
        std::time::Duration::from_secs(900),
        std::time::Duration::from_secs(7200),
    );
    let kari = PersonNumber::parse(KARI, true).unwrap();
    let (old, sealed) = sessions
        .start(&kari, "idporten-loa-substantial", None, now() - 16 * 60)
        .await
        .unwrap();
    let cookie = format!("{}={sealed}", session::SESSION_COOKIE);
    let r = w.get("/samtykke", &[&cookie]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Du ble logget ut fordi det gikk lang tid"));
    assert!(r.body.contains("href=\"/logg-inn?neste=/samtykke\""));
    let cleared = r.headers.get_all(header::SET_COOKIE).iter().any(|v| {
        let v = v.to_str().unwrap();
        v.starts_with("__Host-bru-session=;") && v.contains("Max-Age=0")
    });
    assert!(cleared);
    // Nothing can be changed with it either.
    let id = w.request(Some(KARI)).await;
    let r = w
        .post(
            &format!("/samtykke/{id}"),
            &[&cookie],
            &format!("action=accept&csrf={}", old.csrf),
            None,
        )
        .await;
    // The timed-out session was deleted when it was found: now it is no
    // session at all, and the answer is the way to log in.
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.header("location").starts_with("/logg-inn"));
    assert_eq!(w.status(&id).await, "pending");
    // The same session a minute old is fine.
    let (_, fresh) = sessions
        .start(&kari, "idporten-loa-substantial", None, now() - 60)
        .await
        .unwrap();
    let r = w
        .get(
            "/samtykke",
            &[&format!("{}={fresh}", session::SESSION_COOKIE)],
        )
        .await;
    assert!(r.body.contains("<h1>Mine samtykker</h1>"));
}

mod protect;
