//! Altinn as the tests meet it (SPEC 9): a fake Altinn (the XACML JSON
//! authorize endpoint and the enterprise consent events feed, in Altinn's
//! documented formats), tokens minted as Maskinporten mints them, and a
//! world whose policy names Altinn resources.
//!
//! Token shapes are copied from Digdir's and Altinn's documentation, not from
//! Bru's code:
//! - consent: Altinn/altinn-studio-docs
//!   `content/authorization/guides/resource-owner/consent/validate-concent/_index.en.md`
//!   (the Smartbank token from TT02) and felleslosninger/docs
//!   `_docs/Maskinporten/maskinporten_func_samtykke.md` (the response table);
//! - system user: Altinn/altinn-studio-docs
//!   `content/authorization/guides/system-vendor/system-user/usetoken`
//!   (`systemuser_id` an array, `systemuser_org`, `system_id`; `consumer` the vendor);
//! - pid: felleslosninger/docs `_docs/Maskinporten/maskinporten_func_pid_restricted_tokens.md`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::*;

/// The Altinn resource of `nav/inntekt` in the Altinn worlds.
pub const RESOURCE_INNTEKT: &str = "nav-inntekt";
/// A one-time consent resource (`nav/inntekt-engang`).
pub const RESOURCE_ONCE: &str = "nav-inntekt-engang";
/// A migrated Altinn 2 service (`nav/inntekt-a2`): `{org}_{serviceCode}_{serviceEditionCode}`.
pub const RESOURCE_MIGRATED: &str = "nav_4629_2";
/// The path of the events feed on the fake Altinn.
pub const EVENTS_PATH: &str = "/accessmanagement/api/v1/enterprise/consentrequests/events";
pub const AUTHORIZE_PATH: &str = "/authorization/api/v1/authorize";
/// The token Bru presents to the feed in these worlds.
pub const EVENTS_TOKEN: &str = "events-token-of-k429";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One question the PDP was asked: (system user, resource, action, party).
pub type PdpKey = (String, String, String, String);

#[derive(Default)]
struct AltinnState {
    /// (system user, resource, party) that Altinn permits.
    permits: Mutex<HashSet<(String, String, String)>>,
    asked: Mutex<Vec<PdpKey>>,
    pdp_down: AtomicBool,
    /// `(consentRequestId, eventType, changedDate)`, oldest first.
    events: Mutex<Vec<(String, String, String)>>,
    feed_down: AtomicBool,
    /// The continuation tokens the feed was asked with (`None`: from the start).
    feed_reads: Mutex<Vec<Option<String>>>,
    feed_unauthorised: AtomicUsize,
    /// When set, `links.next` points at this origin instead of the feed's own.
    next_origin: Mutex<Option<String>>,
}

/// A fake Altinn on 127.0.0.1 (plain HTTP).
#[derive(Clone)]
pub struct FakeAltinn {
    pub addr: SocketAddr,
    state: Arc<AltinnState>,
}

impl FakeAltinn {
    pub async fn start() -> FakeAltinn {
        let state = Arc::new(AltinnState::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .route(AUTHORIZE_PATH, post(authorize))
            .route(EVENTS_PATH, get(events))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeAltinn { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Altinn permits `system_user` to use `resource` for `party`.
    pub fn permit(&self, system_user: &str, resource: &str, party: &str) {
        lock(&self.state.permits).insert((system_user.into(), resource.into(), party.into()));
    }

    /// The system user is deleted in Altinn (every right gone).
    pub fn delete_system_user(&self, system_user: &str) {
        lock(&self.state.permits).retain(|(s, _, _)| s != system_user);
    }

    /// Every question the PDP was asked, in order.
    pub fn asked(&self) -> Vec<PdpKey> {
        lock(&self.state.asked).clone()
    }

    pub fn set_pdp_down(&self, down: bool) {
        self.state.pdp_down.store(down, Ordering::SeqCst);
    }

    /// Appends an event to the feed (`revoked`, `deleted`, `accepted`, …).
    pub fn publish(&self, consent_id: &str, event: &str) {
        let at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format");
        lock(&self.state.events).push((consent_id.into(), event.into(), at));
    }

    pub fn set_feed_down(&self, down: bool) {
        self.state.feed_down.store(down, Ordering::SeqCst);
    }

    /// The continuation tokens of every read of the feed.
    pub fn feed_reads(&self) -> Vec<Option<String>> {
        lock(&self.state.feed_reads).clone()
    }

    /// The feed's `next` links point at `origin` (`http://host:port`) from now on.
    pub fn set_next_origin(&self, origin: &str) {
        *lock(&self.state.next_origin) = Some(origin.to_owned());
    }

    pub fn feed_unauthorised(&self) -> usize {
        self.state.feed_unauthorised.load(Ordering::SeqCst)
    }
}

/// Altinn's XACML JSON authorize: `{"Request": {AccessSubject, Action, Resource}}`
/// → `{"Response": [{"Decision"}]}` (Altinn/altinn-authorization-tmp
/// `…/testData/buildAuthorizeBody.js`).
async fn authorize(State(state): State<Arc<AltinnState>>, body: Bytes) -> Response {
    if state.pdp_down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let attr = |category: &str, id: &str| -> String {
        v["Request"][category]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["Attribute"].as_array().cloned().unwrap_or_default())
            .find(|a| a["AttributeId"] == id)
            .and_then(|a| a["Value"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let su = attr("AccessSubject", "urn:altinn:systemuser:uuid");
    let action = attr("Action", "urn:oasis:names:tc:xacml:1.0:action:action-id");
    let resource = attr("Resource", "urn:altinn:resource");
    let party = attr("Resource", "urn:altinn:organization:identifier-no");
    lock(&state.asked).push((su.clone(), resource.clone(), action, party.clone()));
    let permit = lock(&state.permits).contains(&(su, resource, party));
    Json(json!({"Response": [{"Decision": if permit { "Permit" } else { "NotApplicable" }}]}))
        .into_response()
}

/// The events feed: pages of 2, oldest first, `links.next` with a
/// `continuationToken` (here the index of the next event, base64 as Altinn's is opaque).
async fn events(
    State(state): State<Arc<AltinnState>>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {EVENTS_TOKEN}"))
    {
        state.feed_unauthorised.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let token = q.get("continuationToken").cloned();
    lock(&state.feed_reads).push(token.clone());
    if state.feed_down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let from: usize = token
        .as_deref()
        .map(|t| String::from_utf8(b64u_decode(t)).unwrap_or_default())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let all = lock(&state.events).clone();
    let page: Vec<Value> = all
        .iter()
        .skip(from)
        .take(2)
        .map(|(id, kind, at)| json!({"consentRequestId": id, "eventType": kind, "changedDate": at}))
        .collect();
    let next = from + page.len();
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let origin = lock(&state.next_origin)
        .clone()
        .unwrap_or_else(|| format!("http://{host}"));
    Json(json!({
        "links": { "next": format!("{origin}{EVENTS_PATH}?continuationToken={}", b64u(next.to_string())) },
        "data": page,
    }))
    .into_response()
}

/// `world`'s policy with Altinn resources: `nav/inntekt` names
/// [`RESOURCE_INNTEKT`] with `metadata_filter = { inntektsaar = "aar" }`,
/// `nav/inntekt-engang` the one-time [`RESOURCE_ONCE`], `nav/inntekt-a2`
/// the migrated [`RESOURCE_MIGRATED`] (filter key written `INNTEKTSAAR`);
/// K429 (with Omsorgsapp as supplier) may use all three; `k429/sosialtjeneste`
/// names no resource. The config gains `[altinn]` pointing at `altinn`.
pub fn altinn_world(world: &TestWorld, altinn: &FakeAltinn, extra_altinn: &str) {
    let policy = crate::world::POLICY
        .replacen(
            "scope = \"nav:inntekt.read\"\nsubject = { header = \"Nav-Personident\" }\n\n  [[dataset.purpose]]\n  id = \"omsorgsbolig-soknad\"\n  minimise = { json_fields = [\"aar\", \"sum\"] }\n",
            &format!(
                "scope = \"nav:inntekt.read\"\nsubject = {{ header = \"Nav-Personident\" }}\naltinn_resource = \"{RESOURCE_INNTEKT}\"\n\n  [[dataset.purpose]]\n  id = \"omsorgsbolig-soknad\"\n  minimise = {{ json_fields = [\"aar\", \"sum\"] }}\n  metadata_filter = {{ inntektsaar = \"aar\" }}\n{}{}",
                extra_dataset("inntekt-engang", RESOURCE_ONCE, "altinn_one_time = true\n", ""),
                extra_dataset("inntekt-a2", RESOURCE_MIGRATED, "", "  metadata_filter = { INNTEKTSAAR = \"aar\" }\n"),
            ),
            1,
        )
        .replacen(
            "  [[consumer.dataset]]\n  id = \"nav/inntekt\"\n",
            "  [[consumer.dataset]]\n  id = \"nav/inntekt\"\n\n  [[consumer.dataset]]\n  id = \"nav/inntekt-engang\"\n\n  [[consumer.dataset]]\n  id = \"nav/inntekt-a2\"\n",
            1,
        );
    assert!(policy.contains(RESOURCE_MIGRATED) && policy.contains("nav/inntekt-a2\""));
    // A consent world extended the policy (helsenorge): extend this one too.
    let path = world.dir.path().join("policy.toml");
    let current = std::fs::read_to_string(&path).expect("read policy");
    let policy = if current == crate::world::POLICY {
        policy
    } else {
        crate::consent::extend_policy(&policy)
    };
    std::fs::write(world.dir.path().join("policy.toml"), policy).expect("write policy");
    std::fs::write(world.dir.path().join("altinn-events.token"), EVENTS_TOKEN).expect("token");
    let mut config = std::fs::read_to_string(&world.config_path).expect("read config");
    config.push_str(&format!(
        "\n[altinn]\nevents_url = \"{}\"\nevents_token_file = \"altinn-events.token\"\npoll_interval_seconds = 1\npdp_url = \"{}\"\n{extra_altinn}",
        altinn.url(EVENTS_PATH),
        altinn.url(AUTHORIZE_PATH),
    ));
    std::fs::write(&world.config_path, config).expect("write config");
}

fn extra_dataset(id: &str, resource: &str, extra: &str, purpose_extra: &str) -> String {
    format!(
        "\n[[dataset]]\nprovider = \"nav\"\nid = \"{id}\"\ntitle = {{ nb = \"Inntekt\", en = \"Income\" }}\n\
         description = {{ nb = \"Inntekt.\", en = \"Income.\" }}\nbasis = \"consent\"\nscope = \"nav:inntekt.read\"\n\
         subject = {{ header = \"Nav-Personident\" }}\naltinn_resource = \"{resource}\"\n{extra}\n\
         \x20 [[dataset.purpose]]\n  id = \"omsorgsbolig-soknad\"\n{purpose_extra}"
    )
}

/// One `urn:altinn:consent` entry of `authorization_details` as Maskinporten
/// writes it (the Smartbank example's members and formats), from `person`
/// to `to` for `resource`, valid until `valid_to` (RFC 3339), with `metadata`.
pub fn consent_detail(
    id: &str,
    person: &str,
    to: &str,
    resource: &str,
    valid_to: &str,
    metadata: Value,
) -> Value {
    json!({
        "type": "urn:altinn:consent",
        "id": id,
        "from": format!("urn:altinn:person:identifier-no:{person}"),
        "to": { "authority": "iso6523-actorid-upis", "ID": format!("0192:{to}") },
        "consented": "2026-11-30T07:57:30.409251+00:00",
        "validTo": valid_to,
        "consentRights": [{
            "action": ["consent"],
            "resource": [{ "type": "urn:altinn:resource", "value": resource }],
            "metadata": metadata
        }]
    })
}

/// A validity a year ahead, as Altinn writes it.
pub fn next_year() -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(365))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// A Maskinporten token for `consumer` carrying `details` as its
/// `authorization_details`, with Digdir's 120 s lifetime.
pub fn token_with_details(
    world: &TestWorld,
    consumer: &str,
    scope: &str,
    details: Value,
) -> String {
    let now = now();
    world
        .mp(consumer, scope)
        .claim("authorization_details", details)
        .claim("iat", now)
        .claim("exp", now + 120)
        .claim("client_amr", "private_key_jwt")
        .sign(&world.mp_signer())
}

/// A system user token: the vendor `vendor` calls as system user `id` of `org`.
pub fn system_user_token(
    world: &TestWorld,
    vendor: &str,
    id: &str,
    org: &str,
    scope: &str,
) -> String {
    token_with_details(
        world,
        vendor,
        scope,
        json!([{
            "type": "urn:altinn:systemuser",
            "systemuser_id": [id],
            "systemuser_org": { "authority": "iso6523-actorid-upis", "ID": format!("0192:{org}") },
            "system_id": format!("{vendor}_omsorgsapp")
        }]),
    )
}

/// Income rows for three years, as a provider's array of rows.
pub fn income_rows() -> Value {
    json!([
        {"aar": 2022, "sum": 410000, "arbeidsgiver": "K429"},
        {"aar": 2023, "sum": 430000, "arbeidsgiver": "K429"},
        {"aar": 2024, "sum": 450000, "arbeidsgiver": "K429"}
    ])
}
