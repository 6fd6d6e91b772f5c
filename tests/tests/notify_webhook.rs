//! Notifications delivered to the operator's notification service (SPEC
//! 10): CloudEvents 1.0 structured JSON from a durable outbox, at least
//! once, retried with back-off. A receiver that is down for a while gets
//! everything once it is back; `kill -9` of Bru mid-delivery loses nothing
//! (the restarted process sends what was leased when its lease runs out);
//! no event carries a person number. Both stores.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use bru_tests::consent::*;
use bru_tests::*;
use serde_json::Value;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// 503 to everything.
    Down,
    /// Holds every request without answering.
    Hang,
    Up,
}

#[derive(Default)]
struct Seen {
    mode: Option<Mode>,
    /// Requests that arrived, whatever the answer.
    attempts: usize,
    /// Bodies answered 200, with their Authorization header.
    delivered: Vec<(Value, String, Option<String>)>,
}

#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl Receiver {
    async fn start(mode: Mode) -> Receiver {
        let seen = Arc::new(Mutex::new(Seen {
            mode: Some(mode),
            ..Seen::default()
        }));
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn set(&self, mode: Mode) {
        self.seen.lock().unwrap().mode = Some(mode);
    }

    fn attempts(&self) -> usize {
        self.seen.lock().unwrap().attempts
    }

    fn delivered_ids(&self) -> BTreeSet<String> {
        self.seen
            .lock()
            .unwrap()
            .delivered
            .iter()
            .map(|(v, _, _)| v["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn delivered(&self) -> Vec<(Value, String, Option<String>)> {
        self.seen.lock().unwrap().delivered.clone()
    }
}

async fn hook(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let mode = {
        let mut s = seen.lock().unwrap();
        s.attempts += 1;
        s.mode
    };
    match mode {
        Some(Mode::Up) => {
            let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            seen.lock().unwrap().delivered.push((value, body, auth));
            StatusCode::NO_CONTENT
        }
        Some(Mode::Hang) => {
            tokio::time::sleep(Duration::from_secs(600)).await;
            StatusCode::OK
        }
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

const TOKEN: &str = "notify-secret-token-1";

async fn world(receiver: &Receiver) -> ConsentWorld {
    let cw = ConsentWorld::with(TestWorld::builder().env("BRU_TEST_NOTIFY_TOKEN", TOKEN)).await;
    let mut config = std::fs::read_to_string(&cw.config_path).unwrap();
    config.push_str(&format!(
        "\n[notify]\nwebhook_url = \"{}\"\nauth_token_env = \"BRU_TEST_NOTIFY_TOKEN\"\n\
         timeout_ms = 1000\nmax_backoff_ms = 1000\n",
        receiver.url()
    ));
    std::fs::write(&cw.config_path, config).unwrap();
    cw
}

/// Every id in Kari's inbox (all kinds; the default settings show them all).
async fn inbox_ids(cw: &ConsentWorld, bru: &Bru, pid: &str) -> BTreeSet<String> {
    let reply = send(
        bru.get("/citizen/v1/notifications?limit=200")
            .bearer_auth(cw.citizen_token(pid)),
    )
    .await;
    reply.expect_status(200, "inbox");
    reply.json()["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Some notifications about Kari: a request and its answer, three transfers.
async fn activity(cw: &ConsentWorld, bru: &Bru) -> BTreeSet<String> {
    let kari = granted(cw, bru, KARI, None).await;
    for n in 0..3 {
        inntekt(bru, &cw.k429_token(), Some(&kari), KARI, PURPOSE_OMSORG)
            .await
            .expect_status(200, &format!("transfer {n}"));
    }
    // The follower has made the transfers' notifications: 2 consent events,
    // 3 transfers, 1 consent about to expire.
    for _ in 0..200 {
        let ids = inbox_ids(cw, bru, KARI).await;
        if ids.len() >= 6 {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the inbox has {:?}", inbox_ids(cw, bru, KARI).await);
}

async fn wait_delivered(receiver: &Receiver, want: &BTreeSet<String>, bru: &Bru) {
    for _ in 0..600 {
        if receiver.delivered_ids().is_superset(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "delivered {:?}, wanted {want:?}; logs:\n{}",
        receiver.delivered_ids(),
        bru.logs()
    );
}

async fn metric(bru: &Bru, name: &str) -> Option<f64> {
    let text = send(bru.ops_client.get(bru.ops_url("/metrics")))
        .await
        .text();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Each body is a CloudEvent with what a receiver needs and no person number.
fn check_events(receiver: &Receiver) {
    for (event, raw, auth) in receiver.delivered() {
        assert_eq!(auth.as_deref(), Some(&*format!("Bearer {TOKEN}")));
        assert_eq!(event["specversion"], "1.0", "{event}");
        assert_eq!(event["datacontenttype"], "application/json");
        assert!(event["source"]
            .as_str()
            .unwrap()
            .ends_with("/citizen/v1/notifications"));
        assert!(
            event["type"].as_str().unwrap().starts_with("no.bru."),
            "{event}"
        );
        assert!(event["time"].as_str().unwrap().ends_with('Z'));
        assert!(!event["data"]["party"].as_str().unwrap().is_empty());
        assert!(event["data"]["text"]["nb"].is_string());
        assert!(!raw.contains(KARI), "{raw}");
        // A person number's shape (both control digits), not any 11 digits:
        // a consent id's last group is all digits once in a hundred.
        assert!(person_numbers(&raw).is_empty(), "a person number in {raw}");
    }
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_everything_when_it_is_back() {
    let receiver = Receiver::start(Mode::Down).await;
    let cw = world(&receiver).await;
    let bru = cw.start().await;
    let want = activity(&cw, &bru).await;
    // Tried and refused: failing, queued, and Bru stays ready with the detail.
    for _ in 0..300 {
        if metric(&bru, "bru_notifications_failing")
            .await
            .unwrap_or(0.0)
            > 0.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(metric(&bru, "bru_notifications_failing").await.unwrap() > 0.0);
    assert!(metric(&bru, "bru_notifications_queued").await.unwrap() >= want.len() as f64);
    let ready = send(bru.ops_client.get(bru.ops_url("/readyz"))).await;
    ready.expect_status(200, "/readyz while the receiver is down");
    assert!(
        ready.text().contains("notifications: failing (HTTP 503)"),
        "{}",
        ready.text()
    );
    assert!(receiver.delivered_ids().is_empty());

    receiver.set(Mode::Up);
    wait_delivered(&receiver, &want, &bru).await;
    check_events(&receiver);
    let all = receiver.delivered();
    let kari_party = all[0].0["data"]["party"].clone();
    // One person, one party, the same for every kind of notification.
    assert!(all.iter().all(|(e, _, _)| e["data"]["party"] == kari_party));
    let types: BTreeSet<String> = all
        .iter()
        .map(|(e, _, _)| e["type"].as_str().unwrap().to_owned())
        .collect();
    for t in [
        "no.bru.transfer",
        "no.bru.consent.created",
        "no.bru.consent.accepted",
        "no.bru.consent.expiring",
    ] {
        assert!(types.contains(t), "{t} in {types:?}");
    }
    assert!(
        metric(&bru, "bru_notifications_delivered_total")
            .await
            .unwrap()
            >= want.len() as f64
    );
    for _ in 0..100 {
        if metric(&bru, "bru_notifications_queued").await == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&bru, "bru_notifications_queued").await, Some(0.0));
    assert_eq!(metric(&bru, "bru_notifications_failing").await, Some(0.0));
}

#[tokio::test]
async fn kill_9_mid_delivery_loses_nothing() {
    let receiver = Receiver::start(Mode::Hang).await;
    let cw = world(&receiver).await;
    let bru = cw.start().await;
    let want = activity(&cw, &bru).await;
    // Bru is sending (the receiver holds the requests): kill it there.
    for _ in 0..300 {
        if receiver.attempts() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(receiver.attempts() > 0, "nothing was sent");
    drop(bru); // SIGKILL
    receiver.set(Mode::Up);
    let bru = cw.start().await;
    wait_delivered(&receiver, &want, &bru).await;
    check_events(&receiver);
    // At least once, and every id the same notification each time it came.
    let mut by_id = std::collections::BTreeMap::<String, Value>::new();
    for (event, _, _) in receiver.delivered() {
        let id = event["id"].as_str().unwrap().to_owned();
        if let Some(before) = by_id.insert(id, event.clone()) {
            assert_eq!(before["type"], event["type"]);
            assert_eq!(before["data"], event["data"]);
        }
    }
}
