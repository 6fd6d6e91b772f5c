//! A break-glass call's reason is the caller's own text (SPEC 10,
//! `Bru-Break-Glass: <reason>`). Citizens see only what Bru or the policy
//! says, never what a caller wrote: the notice of the call, in the inbox
//! API, the portal's `/varsler` (and `/innsyn`) and the CloudEvent sent to
//! the operator's notification service, says in Bru's words that emergency
//! access was used, by whom, to what and when, and never carries the
//! reason. The reason stays in the audit record, for the security team
//! (`GET /audit/v1/records`). Each test fails if the reason reaches a
//! citizen anywhere, or if it is missing from the audit record.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use bru_tests::consent::*;
use bru_tests::demo;
use bru_tests::*;
use serde_json::{json, Value};

/// What the nurse writes: markup, and a name no one but the caller gave.
const REASON: &str = "Akutt <script>alert(1)</script> naboen Trygve Fjellstad-Ødegård ringte";

/// Pieces of [`REASON`] that must not appear in anything a citizen gets,
/// however it is escaped (JSON, HTML).
const TELLTALES: [&str; 5] = ["Fjellstad", "Trygve", "alert(1)", "&lt;script", "naboen"];

fn assert_no_reason(what: &str, text: &str) {
    for t in TELLTALES {
        assert!(
            !text.contains(t),
            "{what} holds the caller's reason ({t:?}):\n{text}"
        );
    }
}

/// A notification receiver that takes every event.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(bodies.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, bodies }
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

async fn hook(State(bodies): State<Arc<Mutex<Vec<String>>>>, body: String) -> StatusCode {
    bodies.lock().unwrap().push(body);
    StatusCode::NO_CONTENT
}

/// The consent world with `break_glass = true` on `helsenorge/hjemmetjeneste`,
/// K429 an audit reader, and notifications sent to `receiver`.
async fn glass_world(receiver: &Receiver) -> ConsentWorld {
    let cw = ConsentWorld::new().await;
    let path = cw.dir.path().join("policy.toml");
    // K429 (the first consent requester) may also read the audit API.
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "consent_requester = true\n",
        "consent_requester = true\naudit_reader = true\n",
        1,
    );
    let mut policy: toml::Table = text.parse().unwrap();
    policy["dataset"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|d| d["id"].as_str() == Some("hjemmetjeneste"))
        .unwrap()
        .as_table_mut()
        .unwrap()
        .insert("break_glass".into(), true.into());
    std::fs::write(&path, toml::to_string(&policy).unwrap()).unwrap();
    cw.helsenorge.set_body(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": {"resourceType": "CarePlan", "id": "cp1", "status": "active",
            "intent": "plan", "title": "Hjemmesykepleie"}}]
    }));
    let mut config = std::fs::read_to_string(&cw.config_path).unwrap();
    config.push_str(&format!(
        "\n[notify]\nwebhook_url = \"http://{}/hook\"\ntimeout_ms = 1000\nmax_backoff_ms = 1000\n",
        receiver.addr
    ));
    std::fs::write(&cw.config_path, config).unwrap();
    cw
}

/// Kari's break-glass notice from `GET /citizen/v1/notifications`, once the
/// log's follower has made it; with the whole page's text.
async fn break_glass_notice(bru: &Bru, citizen: &str) -> (Value, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let inbox = send(
            bru.get("/citizen/v1/notifications?limit=200")
                .bearer_auth(citizen),
        )
        .await;
        inbox.expect_status(200, "Kari's inbox");
        let page = inbox.json();
        if let Some(n) = page["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["kind"] == "break_glass")
        {
            return (n.clone(), inbox.text());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no break-glass notice in the inbox: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The decision record of `transfer_id` from the audit API, as `token`.
async fn audited(bru: &Bru, token: &str, transfer_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let reply = send(
            bru.get("/audit/v1/records?kind=decision&limit=500")
                .bearer_auth(token),
        )
        .await;
        reply.expect_status(200, "GET /audit/v1/records");
        if let Some(r) = reply.json()["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["transfer_id"] == transfer_id)
        {
            return r.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the audit API lacks {transfer_id}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Bru's own words for a break-glass notice, in both languages.
fn assert_bru_s_words(notice: &Value) {
    assert_eq!(notice["kind"], "break_glass", "{notice}");
    let nb = notice["text"]["nb"].as_str().unwrap();
    let en = notice["text"]["en"].as_str().unwrap();
    assert!(nb.contains("brukte nødtilgang"), "{nb}");
    assert!(nb.contains("kl. "), "when, in Norwegian: {nb}");
    assert!(nb.contains("blir kontrollert"), "{nb}");
    assert!(en.contains("used emergency access (break-glass)"), "{en}");
    assert!(en.contains("will be reviewed"), "{en}");
    assert_eq!(notice["organisation"]["org"], K429, "{notice}");
    assert_eq!(
        notice["datasets"][0]["id"], "helsenorge/hjemmetjeneste",
        "{notice}"
    );
    assert!(notice.get("reason").is_none(), "{notice}");
}

/// Kari blocks K429 on home care; K429 then reads her home-care data under
/// `consent` with break-glass and [`REASON`], and gets it.
async fn block_then_break_glass(bru: &Bru, kari: &str, k429: &str, consent: &str) -> Reply {
    send(
        bru.post("/citizen/v1/blocks")
            .bearer_auth(kari)
            .json(&json!({"consumer": format!("0192:{K429}")})),
    )
    .await
    .expect_status(201, "Kari blocks K429");
    let reply = send(
        bru.get(&format!("/data/helsenorge/hjemmetjeneste?patient={KARI}"))
            .bearer_auth(k429)
            .header("Bru-Purpose", PURPOSE_OMSORG)
            .header("Bru-Consent", consent)
            .header("Bru-Break-Glass", REASON),
    )
    .await;
    reply.expect_status(200, "break-glass passes the block");
    reply
}

/// Inbox and webhook: the notice is Bru's, the reason only in the audit record.
#[tokio::test]
async fn a_break_glass_notice_never_carries_the_callers_reason() {
    let receiver = Receiver::start().await;
    let cw = glass_world(&receiver).await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    let consent = granted(&cw, &bru, KARI, None).await;
    let reply = block_then_break_glass(&bru, &cw.citizen_token(KARI), &k429, &consent).await;
    let transfer = reply.transfer_id().unwrap();

    // The security team has the reason, exactly as the caller gave it.
    let record = audited(&bru, &cw.mp_token(K429, "bru:audit"), &transfer).await;
    assert_eq!(record["break_glass"], REASON, "{record}");

    // Kari's inbox tells her in Bru's words; no part of the reason.
    let (notice, page) = break_glass_notice(&bru, &cw.citizen_token(KARI)).await;
    assert_bru_s_words(&notice);
    assert_no_reason("the inbox", &page);

    // The operator's notification service gets the same notice.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let event = loop {
        let found = receiver.bodies().into_iter().find_map(|b| {
            let v: Value = serde_json::from_str(&b).ok()?;
            (v["type"] == "no.bru.break_glass").then_some(v)
        });
        if let Some(e) = found {
            break e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no break-glass event delivered: {:?}\n{}",
            receiver.bodies(),
            bru.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_bru_s_words(&event["data"]);
    for body in receiver.bodies() {
        assert_no_reason("a CloudEvent", &body);
    }
}

// ---- the portal, in `bru demo` -------------------------------------------------

/// The session cookie (`name=value`) `name` in a reply's `Set-Cookie`s.
fn set_cookie(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v)
        .find(|v| v.starts_with(&format!("{name}=")) && !v.contains("Max-Age=0"))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// Logs `pid` in through the demo's person picker, as a browser does; the
/// portal session's cookie.
async fn portal_login(bru: &Bru, pid: &str) -> String {
    let picker = send(bru.get("/demo/idporten/login?neste=/varsler")).await;
    picker.expect_status(200, "the demo's person picker");
    let login = set_cookie(&picker, "__Host-bru-login").expect("the login cookie");
    let body = picker.text();
    let at = body.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    let csrf = body[at..].split('"').next().unwrap().to_owned();
    let reply = send(
        bru.post("/demo/idporten/login")
            .header("cookie", login)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}&pid={pid}")),
    )
    .await;
    assert_eq!(reply.status, 303, "login: {}", reply.text());
    set_cookie(&reply, "__Host-bru-session").expect("the session cookie")
}

/// `/varsler` and `/innsyn` in both languages: Bru's words, never the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_shows_a_break_glass_in_bru_s_words_only() {
    let (_dir, mut bru) = demo::start("bru-glass-words-").await;

    let k429 = demo::machine_token(&bru, K429, "helsenorge:hjemmetjeneste.read bru:consent").await;
    let kari = demo::citizen_token(&bru, json!({"pid": KARI})).await;

    let consent = demo::granted_consent(
        &bru,
        &k429,
        &kari,
        KARI,
        &["helsenorge/hjemmetjeneste"],
        PURPOSE_OMSORG,
    )
    .await;
    let reply = block_then_break_glass(&bru, &kari, &k429, &consent).await;
    let transfer = reply.transfer_id().unwrap();

    let audit = demo::machine_token(&bru, K429, "bru:audit").await;
    let record = audited(&bru, &audit, &transfer).await;
    assert_eq!(record["break_glass"], REASON, "{record}");
    // The notice exists (made by the log's follower) before the pages are read.
    let (notice, page) = break_glass_notice(&bru, &kari).await;
    assert_bru_s_words(&notice);
    assert_no_reason("the inbox", &page);

    let session = portal_login(&bru, KARI).await;
    for (path, says) in [
        ("/varsler?lang=nb", "brukte nødtilgang"),
        ("/varsler?lang=en", "used emergency access (break-glass)"),
        ("/innsyn?lang=nb", "Hjemmetjenester"),
        ("/innsyn?lang=en", "Home care services"),
    ] {
        let page = send(bru.get(path).header("cookie", &session)).await;
        page.expect_status(200, path);
        let html = page.text();
        assert!(html.contains(says), "{path} lacks {says:?}:\n{html}");
        assert_no_reason(path, &html);
    }

    bru.sigterm();
    bru.wait_exit(Duration::from_secs(30)).await;
}
