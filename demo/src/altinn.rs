//! The demo's Altinn (SPEC 9.4), in Altinn's own formats: consent requests
//! (Altinn's enterprise consent request, with the requester's Maskinporten
//! token), the citizen's accept, reject and revoke, the enterprise consent
//! events feed (without Altinn's 5-minute delay), the XACML JSON decision
//! point, system users, and Altinn 2's consent tokens (signed with the demo
//! Altinn's own key, its JWK set published). The demo Maskinporten uses it to
//! put `authorization_details` into tokens.
//!
//! Its state (requests, their states, the events feed, system users) lives in
//! `DIR/demo-altinn.json`, rewritten after every change, so a restarted
//! `bru demo` keeps it and Bru's feed cursor (an index into the events) stays
//! valid.
//!
//! Formats: Altinn/altinn-studio-docs `…/system-vendor/consent/request`
//! (request and response), `…/system-vendor/consent/events` (the feed),
//! `…/resource-owner/system-user` (the PDP); Altinn/docs
//! `…/samtykke/datakilde/bruk-av-token` (Altinn 2's token) and
//! `…/samtykke/datakonsument/hente-token` (fetching it); the `altinn` crate
//! reads them.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::issuer_key::IssuerKey;
use crate::DemoError;

/// Omsorgsapp AS's system in the demo, and its system user at K429 for both
/// consent datasets' resources.
pub const OMSORGSAPP_SYSTEM_ID: &str = "omsorgsapp";
pub const OMSORGSAPP_SYSTEM_USER: &str = "0a1b2c3d-4e5f-4a6b-8c7d-921429000428";
pub const RESOURCE_INNTEKT: &str = "nav-inntekt";
pub const RESOURCE_HJEMMETJENESTE: &str = "helsenorge-hjemmetjeneste";
const K429: &str = "921429002";
/// Events per page of the feed, as Altinn's.
const PAGE: usize = 100;
/// The demo Altinn's state in the demo's directory.
const STATE_FILE: &str = "demo-altinn.json";
/// The scope Altinn's enterprise consent request API requires
/// (altinn-studio-docs `…/system-vendor/consent/request`, "Prerequisites").
const SCOPE_REQUEST: &str = "altinn:consentrequests.write";
/// The scope for fetching an Altinn 2 consent token with a Maskinporten token
/// (DSOP's integration guide for the Altinn 2 consent solution).
const SCOPE_TOKENS: &str = "altinn:consenttokens";
/// Altinn 2 consent tokens live 30 s (Altinn/docs `…/datakonsument/hente-token`).
const ALTINN2_TOKEN_LIFETIME_S: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Pending,
    Accepted,
    Rejected,
    Revoked,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ConsentRequest {
    from_pid: String,
    to: String,
    #[serde(with = "time::serde::rfc3339")]
    valid_to: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    consented: Option<OffsetDateTime>,
    rights: Value,
    status: Status,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SystemUser {
    system_id: String,
    org: String,
    rights: Vec<String>,
}

/// One event of the feed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Event {
    consent_request_id: String,
    event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    changed: OffsetDateTime,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Data {
    requests: BTreeMap<String, ConsentRequest>,
    /// Oldest first; the feed's continuation token is an index into it.
    events: Vec<Event>,
    system_users: BTreeMap<String, SystemUser>,
}

impl Data {
    /// A new demo Altinn: Omsorgsapp's system user at K429 (SPEC 9.4's demo relations).
    fn new() -> Data {
        let mut data = Data::default();
        data.system_users.insert(
            OMSORGSAPP_SYSTEM_USER.to_owned(),
            SystemUser {
                system_id: OMSORGSAPP_SYSTEM_ID.to_owned(),
                org: K429.to_owned(),
                rights: vec![RESOURCE_INNTEKT.into(), RESOURCE_HJEMMETJENESTE.into()],
            },
        );
        data
    }
}

/// The demo Altinn; cheap to clone.
#[derive(Debug, Clone)]
pub struct DemoAltinn {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    data: Mutex<Data>,
    /// `DIR/demo-altinn.json`.
    file: PathBuf,
    /// Signs Altinn 2 consent tokens; its JWK set at `/demo/altinn/api/metadata/jwk`.
    signing: IssuerKey,
    /// Verify the requester's and the citizen's tokens.
    maskinporten: IssuerKey,
    idporten: IssuerKey,
}

/// The `iss` of the demo Altinn's Altinn 2 consent tokens, under Bru's public
/// URL (real ones say `altinn.no`; the demo's `bru.toml` names this one).
pub fn altinn2_issuer(public_url: &str) -> String {
    format!("{public_url}/demo/altinn")
}

impl DemoAltinn {
    /// The demo Altinn of the demo in `dir`: its state from
    /// `DIR/demo-altinn.json` when a previous run left one, else a new one
    /// (written at once).
    pub fn load(
        dir: &FsPath,
        signing: IssuerKey,
        maskinporten: IssuerKey,
        idporten: IssuerKey,
    ) -> Result<DemoAltinn, DemoError> {
        let file = dir.join(STATE_FILE);
        let data = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice::<Data>(&bytes).map_err(|e| DemoError::State {
                path: file.clone(),
                why: format!("not the demo Altinn's state ({e}); move it away to start afresh"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Data::new(),
            Err(e) => return Err(DemoError::io(&file)(e)),
        };
        let altinn = DemoAltinn {
            inner: Arc::new(Inner {
                data: Mutex::new(data),
                file,
                signing,
                maskinporten,
                idporten,
            }),
        };
        altinn.save(&altinn.lock())?;
        Ok(altinn)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Data> {
        self.inner.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the state, whole and atomically, while the caller holds the lock
    /// (so writes land in the order of the changes). Owner-only: it holds
    /// person numbers.
    fn save(&self, data: &Data) -> Result<(), DemoError> {
        let bytes = serde_json::to_vec_pretty(data).map_err(|e| DemoError::State {
            path: self.inner.file.clone(),
            why: e.to_string(),
        })?;
        write_private(&self.inner.file, &bytes)
    }

    /// After a change: saved, or a 500 that says the change may not last.
    fn saved(&self, data: &Data) -> Result<(), Box<Response>> {
        self.save(data).map_err(|e| {
            tracing::error!(error = %e, "the demo Altinn could not save its state");
            Box::new(problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "The demo Altinn could not save",
                "The change was made but not saved; it is lost when the demo stops.",
            ))
        })
    }

    /// Bru's public URL, under which the demo Altinn is served (the demo
    /// Maskinporten's `iss` is `{public_url}/demo/maskinporten`).
    fn public_url(&self) -> &str {
        let mp = self.inner.maskinporten.issuer();
        mp.strip_suffix("/demo/maskinporten").unwrap_or(mp)
    }

    /// What the demo Maskinporten adds to a token for `org` (the client's
    /// organisation): the consent's or the system user's
    /// `authorization_details`, and `pid`. An error says what is wrong.
    pub fn extend_claims(
        &self,
        org: &str,
        altinn_consent: Option<&str>,
        systemuser_org: Option<&str>,
        system_id: Option<&str>,
        pid: Option<&str>,
        claims: &mut Value,
    ) -> Result<(), String> {
        let mut details = Vec::new();
        if let Some(id) = altinn_consent {
            let data = self.lock();
            let r = data
                .requests
                .get(&id.to_ascii_lowercase())
                .ok_or("altinn_consent: no consent request has this id")?;
            if r.status != Status::Accepted {
                return Err("altinn_consent: the consent is not accepted (or was revoked)".into());
            }
            // Maskinporten issues a consent token only to the organisation it
            // was given to, or to its vendor acting as that organisation's
            // system user ("consent on behalf of others").
            if r.to != org && systemuser_org != Some(r.to.as_str()) {
                return Err("altinn_consent: the consent was given to another organisation".into());
            }
            if r.valid_to <= OffsetDateTime::now_utc() {
                return Err("altinn_consent: the consent has expired".into());
            }
            details.push(json!({
                "type": "urn:altinn:consent",
                "id": id.to_ascii_lowercase(),
                "from": format!("urn:altinn:person:identifier-no:{}", r.from_pid),
                "to": { "authority": "iso6523-actorid-upis", "ID": format!("0192:{}", r.to) },
                "consented": r.consented.and_then(|t| t.format(&Rfc3339).ok()),
                "validTo": r.valid_to.format(&Rfc3339).unwrap_or_default(),
                "consentRights": r.rights,
            }));
        }
        match (systemuser_org, system_id) {
            (None, None) => {}
            (Some(customer), Some(system)) => {
                let data = self.lock();
                let (id, _) = data
                    .system_users
                    .iter()
                    .find(|(_, su)| su.org == customer && su.system_id == system)
                    .ok_or("systemuser_org: the organisation has no system user of this system")?;
                details.push(json!({
                    "type": "urn:altinn:systemuser",
                    "systemuser_id": [id],
                    "systemuser_org": { "authority": "iso6523-actorid-upis", "ID": format!("0192:{customer}") },
                    "system_id": system,
                }));
            }
            _ => return Err("systemuser_org and system_id go together".into()),
        }
        if !details.is_empty() {
            claims["authorization_details"] = Value::Array(details);
        }
        if let Some(pid) = pid {
            policy::PersonNumber::parse(pid, true).map_err(|e| format!("pid: {e}"))?;
            claims["pid"] = json!(pid);
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, readable
/// by the owner only: a crash leaves the old state or the new, never half.
fn write_private(path: &FsPath, bytes: &[u8]) -> Result<(), DemoError> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(DemoError::io(&tmp))?;
    file.write_all(bytes).map_err(DemoError::io(&tmp))?;
    file.sync_all().map_err(DemoError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(DemoError::io(path))
}

/// The demo Altinn's routes under `/demo/altinn/`.
pub fn router(altinn: DemoAltinn) -> Router {
    Router::new()
        .route("/demo/altinn/consentrequests", post(create_request))
        .route("/demo/altinn/consentrequests/events", get(events))
        .route(
            "/demo/altinn/consentrequests/{id}/{action}",
            post(citizen_action),
        )
        .route("/demo/altinn/authorize", post(authorize))
        .route("/demo/altinn/systemusers", post(create_system_user))
        .route("/demo/altinn/systemusers/{id}", delete(delete_system_user))
        .route("/demo/altinn/api/authorization/token", get(altinn2_token))
        .route("/demo/altinn/api/metadata/jwk", get(altinn2_jwks))
        .with_state(altinn)
}

fn answer(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{v}\n"),
    )
        .into_response()
}

/// RFC 9457 problem details, shaped like the gateway's own.
fn problem(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    let body = json!({
        "type": format!("/problems/{code}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        format!("{body}\n"),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        let error = if code == "missing_token" {
            "Bearer error=\"invalid_request\""
        } else {
            "Bearer error=\"invalid_token\""
        };
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static(error),
        );
    }
    response
}

fn bad(detail: &str) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "malformed_request",
        "Malformed request",
        detail,
    )
}

fn org_of(v: &Value) -> Option<String> {
    let n = match v {
        Value::String(s) => s.strip_prefix("urn:altinn:organization:identifier-no:")?,
        Value::Object(_) => v.get("ID")?.as_str()?.strip_prefix("0192:")?,
        _ => return None,
    };
    policy::OrgNumber::parse(n)
        .ok()
        .map(|o| o.as_str().to_owned())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The organisation a Maskinporten token speaks for, and its vendor.
struct Enterprise {
    consumer: String,
    supplier: Option<String>,
}

/// The caller's demo Maskinporten token, verified like any other (its
/// signature, `iss`, `exp`), with `scope` among its scopes. With Maskinporten
/// delegation a vendor's token names the customer as `consumer` and itself as
/// `supplier` (Altinn's "consent on behalf of others": `consumer_org` in the
/// vendor's grant): the consumer is whom the call is for.
fn enterprise(
    altinn: &DemoAltinn,
    headers: &HeaderMap,
    scope: &str,
) -> Result<Enterprise, Box<Response>> {
    let Some(token) = bearer(headers) else {
        return Err(Box::new(problem(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "A Maskinporten token is required",
            &format!("Send the requester's Maskinporten token with scope {scope} (POST /demo/maskinporten/token)."),
        )));
    };
    let Some(claims) = altinn.inner.maskinporten.verify(token) else {
        return Err(Box::new(problem(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The access token was not accepted",
            "The token is not a valid, unexpired token of the demo Maskinporten.",
        )));
    };
    let scopes = claims["scope"].as_str().unwrap_or_default();
    if !scopes.split(' ').any(|s| s == scope) {
        return Err(Box::new(problem(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "The token lacks the scope",
            &format!("This API needs the scope {scope}."),
        )));
    }
    let Some(consumer) = org_of(&claims["consumer"]) else {
        return Err(Box::new(problem(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The access token was not accepted",
            "The token names no consumer organisation.",
        )));
    };
    Ok(Enterprise {
        consumer,
        supplier: org_of(&claims["supplier"]),
    })
}

/// `POST /demo/altinn/consentrequests`, as Altinn's enterprise consent
/// request: the requester's Maskinporten token (scope
/// `altinn:consentrequests.write`), and `to` is the token's consumer.
async fn create_request(
    State(altinn): State<DemoAltinn>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let requester = match enterprise(&altinn, &headers, SCOPE_REQUEST) {
        Ok(r) => r,
        Err(refusal) => return *refusal,
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return bad("Send Altinn's consent request: {\"id\", \"from\", \"to\", \"validTo\", \"consentRights\"}.");
    };
    let id = match v["id"].as_str().map(str::to_ascii_lowercase) {
        Some(id) if uuid::Uuid::parse_str(&id).is_ok() => id,
        _ => return bad("id: a UUID chosen by the requester."),
    };
    let from_pid = match v["from"]
        .as_str()
        .and_then(|f| f.strip_prefix("urn:altinn:person:identifier-no:"))
    {
        Some(p) if policy::PersonNumber::parse(p, true).is_ok() => p.to_owned(),
        _ => return bad("from: urn:altinn:person:identifier-no:<fødselsnummer>."),
    };
    let Some(to) = org_of(&v["to"]) else {
        return bad("to: urn:altinn:organization:identifier-no:<orgnr>.");
    };
    if to != requester.consumer {
        return problem(
            StatusCode::FORBIDDEN,
            "consumer_not_allowed",
            "Not your consent to ask for",
            "to must be the organisation the Maskinporten token is for (its consumer); a vendor asks with a token delegated by that organisation.",
        );
    }
    let valid_to = match v["validTo"]
        .as_str()
        .map(|s| OffsetDateTime::parse(s, &Rfc3339))
    {
        Some(Ok(t)) if t > OffsetDateTime::now_utc() => t,
        _ => return bad("validTo: an RFC 3339 time in the future."),
    };
    let rights = v["consentRights"].clone();
    let resources_ok = rights.as_array().is_some_and(|a| {
        !a.is_empty()
            && a.iter().all(|r| {
                r["resource"]
                    .as_array()
                    .is_some_and(|res| res.iter().all(|x| x["value"].is_string()))
            })
    });
    if !resources_ok {
        return bad("consentRights: [{\"action\": [\"consent\"], \"resource\": [{\"type\": \"urn:altinn:resource\", \"value\"}], \"metadata\": {…}}].");
    }
    let now = OffsetDateTime::now_utc();
    {
        let mut data = altinn.lock();
        if data.requests.contains_key(&id) {
            return answer(
                StatusCode::CONFLICT,
                &json!({"detail": "a consent request with this id exists"}),
            );
        }
        data.requests.insert(
            id.clone(),
            ConsentRequest {
                from_pid: from_pid.clone(),
                to: to.clone(),
                valid_to,
                consented: None,
                rights: rights.clone(),
                status: Status::Pending,
            },
        );
        if let Err(refusal) = altinn.saved(&data) {
            return *refusal;
        }
    }
    let handled_by = requester
        .supplier
        .as_ref()
        .map(|s| format!("urn:altinn:organization:identifier-no:{s}"));
    answer(
        StatusCode::CREATED,
        &json!({
            "id": id,
            "from": v["from"],
            "to": format!("urn:altinn:organization:identifier-no:{to}"),
            "requiredDelegator": null,
            "handledBy": handled_by,
            "validTo": v["validTo"],
            "consentRights": rights,
            "requestMessage": v.get("requestMessage"),
            "consentRequestEvents": [{
                "consentEventID": uuid::Uuid::now_v7().to_string(),
                "created": now.format(&Rfc3339).unwrap_or_default(),
                "performedBy": format!("urn:altinn:organization:identifier-no:{to}"),
                "eventType": "Created",
                "consentRequestID": id,
            }],
            "redirectUrl": v.get("redirectUrl"),
            // Where the citizen answers: here, with the demo ID-porten token.
            "viewUri": format!("{}/demo/altinn/consentrequests/{id}/accept", altinn.public_url()),
        }),
    )
}

/// `POST /demo/altinn/consentrequests/{id}/accept|reject|revoke` with the
/// citizen's demo ID-porten token (the citizen the request is `from`).
async fn citizen_action(
    State(altinn): State<DemoAltinn>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(pid) = bearer(&headers)
        .and_then(|t| altinn.inner.idporten.verify(t))
        .and_then(|c| c["pid"].as_str().map(str::to_owned))
    else {
        return answer(
            StatusCode::UNAUTHORIZED,
            &json!({"detail": "Send the citizen's demo ID-porten token (POST /demo/idporten/token)."}),
        );
    };
    let mut data = altinn.lock();
    let id = id.to_ascii_lowercase();
    let Some(request) = data.requests.get_mut(&id) else {
        return answer(
            StatusCode::NOT_FOUND,
            &json!({"detail": "no such consent request"}),
        );
    };
    if request.from_pid != pid {
        return answer(
            StatusCode::NOT_FOUND,
            &json!({"detail": "no such consent request"}),
        );
    }
    let now = OffsetDateTime::now_utc();
    let (next, event) = match (action.as_str(), request.status) {
        ("accept", Status::Pending) => (Status::Accepted, "accepted"),
        ("reject", Status::Pending) => (Status::Rejected, "rejected"),
        ("revoke", Status::Accepted) => (Status::Revoked, "revoked"),
        ("accept" | "reject" | "revoke", _) => {
            return answer(
                StatusCode::CONFLICT,
                &json!({"detail": "not possible in the request's status"}),
            )
        }
        _ => {
            return answer(
                StatusCode::NOT_FOUND,
                &json!({"detail": "accept, reject or revoke"}),
            )
        }
    };
    request.status = next;
    if next == Status::Accepted {
        request.consented = Some(now);
    }
    data.events.push(Event {
        consent_request_id: id.clone(),
        event_type: event.to_owned(),
        changed: now,
    });
    if let Err(refusal) = altinn.saved(&data) {
        return *refusal;
    }
    answer(StatusCode::OK, &json!({"id": id, "status": event}))
}

/// `GET /demo/altinn/consentrequests/events`: Altinn's feed, oldest first,
/// pages of 100, `links.next` with a `continuationToken`; no 5-minute delay.
async fn events(
    State(altinn): State<DemoAltinn>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if headers.get(header::AUTHORIZATION).is_none() {
        return answer(
            StatusCode::UNAUTHORIZED,
            &json!({"detail": "a bearer token is required"}),
        );
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let from: usize = q
        .get("continuationToken")
        .and_then(|t| b64.decode(t).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let data = altinn.lock();
    let page: Vec<Value> = data
        .events
        .iter()
        .skip(from)
        .take(PAGE)
        .map(|e| {
            json!({
                "consentRequestId": e.consent_request_id,
                "eventType": e.event_type,
                "changedDate": e.changed.format(&Rfc3339).unwrap_or_default(),
            })
        })
        .collect();
    let next = from + page.len();
    answer(
        StatusCode::OK,
        &json!({
            "links": { "next": format!("{}/demo/altinn/consentrequests/events?continuationToken={}", altinn.public_url(), b64.encode(next.to_string())) },
            "data": page,
        }),
    )
}

/// `POST /demo/altinn/authorize`: the decision point, XACML JSON. Permit when
/// the system user exists, belongs to the party and holds the resource.
async fn authorize(State(altinn): State<DemoAltinn>, body: Bytes) -> Response {
    let request = match serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| altinn::xacml::AuthorizeRequest::from_json(&v).ok())
    {
        Some(r) => r,
        None => return bad("Send an XACML JSON request (AccessSubject, Action, Resource)."),
    };
    let permit = altinn
        .lock()
        .system_users
        .get(&request.system_user.to_ascii_lowercase())
        .is_some_and(|su| su.org == request.party && su.rights.contains(&request.resource));
    let decision = if permit {
        altinn::xacml::PdpDecision::Permit
    } else {
        altinn::xacml::PdpDecision::NotPermit
    };
    answer(StatusCode::OK, &altinn::xacml::response_json(decision))
}

/// `POST /demo/altinn/systemusers` `{"system_id", "systemuser_org", "rights": ["<resource>"]}` → `{"id"}`.
async fn create_system_user(State(altinn): State<DemoAltinn>, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return bad("Send {\"system_id\", \"systemuser_org\", \"rights\": [\"<resource>\"]}.");
    };
    let (Some(system_id), Some(org)) = (v["system_id"].as_str(), v["systemuser_org"].as_str())
    else {
        return bad("system_id and systemuser_org (an organisation number) are required.");
    };
    if policy::OrgNumber::parse(org).is_err() {
        return bad("systemuser_org: an organisation number.");
    }
    let rights: Vec<String> = v["rights"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let id = uuid::Uuid::new_v4().to_string();
    let mut data = altinn.lock();
    data.system_users.insert(
        id.clone(),
        SystemUser {
            system_id: system_id.to_owned(),
            org: org.to_owned(),
            rights,
        },
    );
    if let Err(refusal) = altinn.saved(&data) {
        return *refusal;
    }
    answer(StatusCode::CREATED, &json!({ "id": id }))
}

/// `DELETE /demo/altinn/systemusers/{id}`: the organisation deletes its system user.
async fn delete_system_user(State(altinn): State<DemoAltinn>, Path(id): Path<String>) -> Response {
    let mut data = altinn.lock();
    match data.system_users.remove(&id.to_ascii_lowercase()) {
        Some(_) => match altinn.saved(&data) {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(refusal) => *refusal,
        },
        None => answer(
            StatusCode::NOT_FOUND,
            &json!({"detail": "no such system user"}),
        ),
    }
}

/// `GET /demo/altinn/api/authorization/token?authcode={id}`: an Altinn 2
/// consent token for an accepted consent, as Altinn 2 hands it out (Altinn/docs
/// `…/datakonsument/hente-token`: the authorization code in, the signed JWT
/// out as text; 403 when the caller may not have it). The caller authenticates
/// with a Maskinporten token (scope `altinn:consenttokens`) for the
/// organisation the consent was given to (or its vendor, delegated; then
/// `HandledBy`). Altinn 2 tokens carry Altinn 2 services, so only consents
/// to migrated resources (`{org}_{serviceCode}_{serviceEditionCode}`) have one.
async fn altinn2_token(
    State(altinn): State<DemoAltinn>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let caller = match enterprise(&altinn, &headers, SCOPE_TOKENS) {
        Ok(c) => c,
        Err(refusal) => return *refusal,
    };
    let Some(code) = q.get("authcode").map(|c| c.to_ascii_lowercase()) else {
        return bad("authcode: the consent request's id.");
    };
    let not_yours = || {
        problem(
            StatusCode::FORBIDDEN,
            "consent_not_found",
            "No such consent",
            "The authorization code is unknown, not accepted, expired, or not given to the token's organisation.",
        )
    };
    let claims = {
        let data = altinn.lock();
        let Some(r) = data.requests.get(&code) else {
            return not_yours();
        };
        let now = OffsetDateTime::now_utc();
        if r.status != Status::Accepted || r.to != caller.consumer || r.valid_to <= now {
            return not_yours();
        }
        let Some(services) = altinn2_services(&r.rights) else {
            return bad("This consent's resources are Altinn 3 resources; an Altinn 2 token carries Altinn 2 services, so only consents to migrated resources ({org}_{serviceCode}_{serviceEditionCode}) have one.");
        };
        let now = now.unix_timestamp();
        let mut claims = json!({
            "Services": services,
            "AuthorizationCode": code,
            "OfferedBy": r.from_pid,
            "CoveredBy": r.to,
            "DelegatedDate": r.consented.map(|t| t.unix_timestamp()),
            "ValidToDate": r.valid_to.unix_timestamp(),
            "iss": altinn.inner.signing.issuer(),
            "exp": now + ALTINN2_TOKEN_LIFETIME_S,
            "nbf": now,
        });
        if let Some(vendor) = &caller.supplier {
            claims["HandledBy"] = json!(vendor);
        }
        claims
    };
    match altinn.inner.signing.sign_with_x5t(&claims) {
        Ok(token) => (
            [
                (header::CONTENT_TYPE, "text/plain"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            token,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "the demo Altinn could not sign a token");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "The demo Altinn failed",
                "The demo Altinn could not sign the token.",
            )
        }
    }
}

/// A consent's rights as Altinn 2 `Services`: `{code}_{edition}` for each
/// migrated resource, and `{code}_{edition}_{key}={value}` for its metadata
/// (Altinn/docs, "Informasjon om token"). `None` when a resource is not a
/// migrated one.
fn altinn2_services(rights: &Value) -> Option<Vec<String>> {
    let mut services = Vec::new();
    for right in rights.as_array()? {
        for resource in right["resource"].as_array()? {
            let id = resource["value"].as_str()?;
            if !altinn::consent::is_migrated_resource(id) {
                return None;
            }
            let (_, service) = id.split_once('_')?;
            services.push(service.to_owned());
            let metadata = right
                .get("metadata")
                .or_else(|| right.get("metaData"))
                .and_then(Value::as_object);
            for (k, v) in metadata.into_iter().flatten() {
                let v = v
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string());
                services.push(format!("{service}_{k}={v}"));
            }
        }
    }
    (!services.is_empty()).then_some(services)
}

/// `GET /demo/altinn/api/metadata/jwk`: the demo Altinn's signing key as a JWK
/// set, where Altinn publishes its own (Altinn/docs, "JSON Web Keys og
/// well-known endepunkter"); Bru reads it as `[altinn] altinn2_jwks_url`.
async fn altinn2_jwks(State(altinn): State<DemoAltinn>) -> Response {
    answer(StatusCode::OK, &altinn.inner.signing.jwks())
}
