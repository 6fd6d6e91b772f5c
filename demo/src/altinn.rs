//! The demo's Altinn (SPEC 9.4), in Altinn's own formats, in memory: consent
//! requests (Altinn's enterprise consent request), the citizen's accept,
//! reject and revoke, the enterprise consent events feed (without Altinn's
//! 5-minute delay), the XACML JSON decision point, and system users. The demo
//! Maskinporten uses it to put `authorization_details` into tokens.
//!
//! Formats: Altinn/altinn-studio-docs `…/system-vendor/consent/request`
//! (request and response), `…/system-vendor/consent/events` (the feed),
//! `…/resource-owner/system-user` (the PDP); the `altinn` crate reads them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::issuers::DemoIssuers;

/// Omsorgsapp AS's system in the demo, and its system user at K429 for both
/// consent datasets' resources.
pub const OMSORGSAPP_SYSTEM_ID: &str = "omsorgsapp";
pub const OMSORGSAPP_SYSTEM_USER: &str = "0a1b2c3d-4e5f-4a6b-8c7d-921429000428";
pub const RESOURCE_INNTEKT: &str = "nav-inntekt";
pub const RESOURCE_HJEMMETJENESTE: &str = "helsenorge-hjemmetjeneste";
const K429: &str = "921429002";
/// Events per page of the feed, as Altinn's.
const PAGE: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Accepted,
    Rejected,
    Revoked,
}

#[derive(Debug, Clone)]
struct ConsentRequest {
    from_pid: String,
    to: String,
    valid_to: OffsetDateTime,
    consented: Option<OffsetDateTime>,
    rights: Value,
    status: Status,
}

#[derive(Debug, Clone)]
struct SystemUser {
    system_id: String,
    org: String,
    rights: Vec<String>,
}

#[derive(Debug, Default)]
struct Data {
    requests: BTreeMap<String, ConsentRequest>,
    /// (consentRequestId, eventType, changedDate), oldest first.
    events: Vec<(String, &'static str, OffsetDateTime)>,
    system_users: BTreeMap<String, SystemUser>,
}

/// The demo Altinn's state; cheap to clone.
#[derive(Debug, Clone)]
pub struct DemoAltinn {
    data: Arc<Mutex<Data>>,
}

impl Default for DemoAltinn {
    /// With Omsorgsapp's system user at K429 (SPEC 9.4's demo relations).
    fn default() -> Self {
        let mut data = Data::default();
        data.system_users.insert(
            OMSORGSAPP_SYSTEM_USER.to_owned(),
            SystemUser {
                system_id: OMSORGSAPP_SYSTEM_ID.to_owned(),
                org: K429.to_owned(),
                rights: vec![RESOURCE_INNTEKT.into(), RESOURCE_HJEMMETJENESTE.into()],
            },
        );
        DemoAltinn {
            data: Arc::new(Mutex::new(data)),
        }
    }
}

impl DemoAltinn {
    fn lock(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
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

/// The demo Altinn's routes under `/demo/altinn/` (state: the issuers, whose
/// keys verify the citizen and whose Maskinporten reads the consents).
pub fn router() -> Router<DemoIssuers> {
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
}

fn answer(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{v}\n"),
    )
        .into_response()
}

fn bad(detail: &str) -> Response {
    let body = json!({
        "type": "/problems/malformed_request",
        "title": "Malformed request",
        "status": 400,
        "detail": detail,
        "code": "malformed_request",
    });
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/problem+json")],
        format!("{body}\n"),
    )
        .into_response()
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

/// `POST /demo/altinn/consentrequests`, as Altinn's enterprise consent request.
async fn create_request(State(issuers): State<DemoIssuers>, body: Bytes) -> Response {
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
        let altinn = issuers.altinn();
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
    }
    let public = issuers
        .maskinporten()
        .issuer()
        .strip_suffix("/demo/maskinporten")
        .unwrap_or_default()
        .to_owned();
    answer(
        StatusCode::CREATED,
        &json!({
            "id": id,
            "from": v["from"],
            "to": format!("urn:altinn:organization:identifier-no:{to}"),
            "requiredDelegator": null,
            "handledBy": null,
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
            "viewUri": format!("{public}/demo/altinn/consentrequests/{id}/accept"),
        }),
    )
}

/// The citizen's `pid` from a demo ID-porten token, verified.
fn citizen(issuers: &DemoIssuers, headers: &HeaderMap) -> Option<String> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let ip = issuers.idporten();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(ip.jwks()["keys"][0].clone()).ok()?;
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[ip.issuer()]);
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation).ok()?;
    data.claims["pid"].as_str().map(str::to_owned)
}

/// `POST /demo/altinn/consentrequests/{id}/accept|reject|revoke` with the
/// citizen's demo ID-porten token (the citizen the request is `from`).
async fn citizen_action(
    State(issuers): State<DemoIssuers>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(pid) = citizen(&issuers, &headers) else {
        return answer(
            StatusCode::UNAUTHORIZED,
            &json!({"detail": "Send the citizen's demo ID-porten token (POST /demo/idporten/token)."}),
        );
    };
    let altinn = issuers.altinn();
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
    data.events.push((id.clone(), event, now));
    answer(StatusCode::OK, &json!({"id": id, "status": event}))
}

/// `GET /demo/altinn/consentrequests/events`: Altinn's feed, oldest first,
/// pages of 100, `links.next` with a `continuationToken`; no 5-minute delay.
async fn events(
    State(issuers): State<DemoIssuers>,
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
    let altinn = issuers.altinn();
    let data = altinn.lock();
    let page: Vec<Value> = data
        .events
        .iter()
        .skip(from)
        .take(PAGE)
        .map(|(id, kind, at)| {
            json!({
                "consentRequestId": id,
                "eventType": kind,
                "changedDate": at.format(&Rfc3339).unwrap_or_default(),
            })
        })
        .collect();
    let next = from + page.len();
    let base = issuers
        .maskinporten()
        .issuer()
        .strip_suffix("/demo/maskinporten")
        .unwrap_or_default()
        .to_owned();
    answer(
        StatusCode::OK,
        &json!({
            "links": { "next": format!("{base}/demo/altinn/consentrequests/events?continuationToken={}", b64.encode(next.to_string())) },
            "data": page,
        }),
    )
}

/// `POST /demo/altinn/authorize`: the decision point, XACML JSON. Permit when
/// the system user exists, belongs to the party and holds the resource.
async fn authorize(State(issuers): State<DemoIssuers>, body: Bytes) -> Response {
    let request = match serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| altinn::xacml::AuthorizeRequest::from_json(&v).ok())
    {
        Some(r) => r,
        None => return bad("Send an XACML JSON request (AccessSubject, Action, Resource)."),
    };
    let altinn = issuers.altinn();
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
async fn create_system_user(State(issuers): State<DemoIssuers>, body: Bytes) -> Response {
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
    issuers.altinn().lock().system_users.insert(
        id.clone(),
        SystemUser {
            system_id: system_id.to_owned(),
            org: org.to_owned(),
            rights,
        },
    );
    answer(StatusCode::CREATED, &json!({ "id": id }))
}

/// `DELETE /demo/altinn/systemusers/{id}`: the organisation deletes its system user.
async fn delete_system_user(
    State(issuers): State<DemoIssuers>,
    Path(id): Path<String>,
) -> Response {
    match issuers
        .altinn()
        .lock()
        .system_users
        .remove(&id.to_ascii_lowercase())
    {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => answer(
            StatusCode::NOT_FOUND,
            &json!({"detail": "no such system user"}),
        ),
    }
}
