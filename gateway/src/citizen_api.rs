//! The citizen's side of the consent broker as JSON (SPEC section 4), for
//! Bru's portal and other front ends (Min side, helsenorge):
//!
//! - `GET /citizen/v1/consents`: mine, as `active`, `pending` and `past`;
//! - `GET /citizen/v1/consents/{id}`: one request, mine or not yet anyone's;
//! - `POST /citizen/v1/consents/{id}/accept|reject|revoke`: one call each;
//! - `GET /citizen/v1/consents/{id}/receipt`: a signed consent receipt (JWS);
//! - `GET /citizen/v1/transfers?cursor=&limit=`: every decision about me.
//!
//! Bearer: an ID-porten-style token; its `pid` is the citizen. A consent
//! about another person is 404, as if it did not exist. A request made
//! without a subject can be opened by whoever has its link, and becomes the
//! consent of the citizen who answers it.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use consent_db::{CitizenAction, ConsentError, ConsentEvent, ConsentRow, EventType, Timestamp};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use policy::{FieldMask, PersonNumber};
use portal::view;
use serde_json::{json, Value};

use crate::app::App;
use crate::json_api::{self, FieldError};
use crate::problem::Failure;

const DEFAULT_TRANSFERS: u32 = 100;
const MAX_TRANSFERS: u32 = 500;
const NOT_FOUND: &str = "You have no consent with this id.";

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/citizen/v1/consents", get(list))
        .route("/citizen/v1/consents/{id}", get(read))
        .route("/citizen/v1/consents/{id}/accept", post(accept))
        .route("/citizen/v1/consents/{id}/reject", post(reject))
        .route("/citizen/v1/consents/{id}/revoke", post(revoke))
        .route("/citizen/v1/consents/{id}/receipt", get(receipt))
        .route("/citizen/v1/transfers", get(transfers))
}

async fn citizen(app: &App, headers: &HeaderMap) -> Result<PersonNumber, Response> {
    match app.auth.citizen(headers.get(header::AUTHORIZATION)).await {
        Ok(token) => Ok(token.pid),
        Err(e) => Err(Failure::Auth(e).response(None)),
    }
}

async fn list(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let me = match citizen(&app, &headers).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let rows = match app.store.consents_by_subject(&me, Timestamp::now()).await {
        Ok(rows) => rows,
        Err(e) => return json_api::store_unavailable(&e),
    };
    let grouped = view::group(&rows);
    let json_of = |rows: &[&ConsentRow]| -> Vec<Value> {
        rows.iter().map(|r| consent_json(&app, r, None)).collect()
    };
    let (active, pending, past) = (
        json_of(&grouped.active),
        json_of(&grouped.pending),
        json_of(&grouped.past),
    );
    json_api::json(
        StatusCode::OK,
        &json!({ "active": active, "pending": pending, "past": past }),
    )
}

async fn read(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let me = match citizen(&app, &headers).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    if !json_api::is_consent_id(&id) {
        return json_api::not_found(NOT_FOUND);
    }
    match app
        .store
        .get_consent_with_events(&id, Timestamp::now())
        .await
    {
        Ok(Some((row, events))) if view::visible_to(&row, &me) => {
            json_api::json(StatusCode::OK, &consent_json(&app, &row, Some(&events)))
        }
        Ok(_) => json_api::not_found(NOT_FOUND),
        Err(e) => json_api::store_unavailable(&e),
    }
}

async fn accept(state: State<Arc<App>>, headers: HeaderMap, id: Path<String>) -> Response {
    act(state, headers, id, CitizenAction::Accept).await
}

async fn reject(state: State<Arc<App>>, headers: HeaderMap, id: Path<String>) -> Response {
    act(state, headers, id, CitizenAction::Reject).await
}

async fn revoke(state: State<Arc<App>>, headers: HeaderMap, id: Path<String>) -> Response {
    act(state, headers, id, CitizenAction::Revoke).await
}

/// One citizen action. Repeating one that already took effect (a second
/// click on "revoke") answers 200 with the consent as it is.
async fn act(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    action: CitizenAction,
) -> Response {
    let me = match citizen(&app, &headers).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    if !json_api::is_consent_id(&id) {
        return json_api::not_found(NOT_FOUND);
    }
    let now = Timestamp::now();
    let result = app.store.citizen_action(&id, &me, action, now).await;
    let row = match result {
        Ok(row) => {
            tracing::info!(consent_id = %row.id, action = action.as_str(), "citizen answered a consent");
            row
        }
        Err(ConsentError::NotFound) => return json_api::not_found(NOT_FOUND),
        Err(ConsentError::InvalidTransition { state, action }) if state == action.outcome().0 => {
            match app.store.get_consent_at(&id, now).await {
                Ok(Some(row)) => row,
                Ok(None) => return json_api::not_found(NOT_FOUND),
                Err(e) => return json_api::store_unavailable(&e),
            }
        }
        Err(e @ ConsentError::InvalidTransition { state, .. }) => {
            return json_api::problem(
                StatusCode::CONFLICT,
                "invalid_transition",
                "The consent is not in a state that allows this",
                &format!("{}.", capitalise(&e.to_string())),
                json!({ "consent_status": state.as_str() }),
            )
        }
        Err(ConsentError::Store(e)) => return json_api::store_unavailable(&e),
    };
    let events = match app.store.consent_events(&row.id).await {
        Ok(events) => events,
        Err(e) => return json_api::store_unavailable(&e),
    };
    json_api::json(StatusCode::OK, &consent_json(&app, &row, Some(&events)))
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A consent as its citizen sees it (`portal::view`, which the portal's
/// pages show too), with its receipt's URL and, when asked, its events.
fn consent_json(app: &App, row: &ConsentRow, events: Option<&[ConsentEvent]>) -> Value {
    let mut v = json!(view::consent(&app.policy, row));
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "receipt_url".into(),
            json!(format!(
                "{}/citizen/v1/consents/{}/receipt",
                app.config.public_url, row.id
            )),
        );
        if let Some(events) = events {
            obj.insert("events".into(), json!(events));
        }
    }
    v
}

// ---- receipt -------------------------------------------------------------

#[derive(serde::Deserialize)]
struct ReceiptQuery {
    lang: Option<String>,
}

/// A Kantara Consent Receipt (v1.1) for a consent the citizen granted,
/// signed with Bru's assertion key (ES256; `kid` in `/.well-known/jwks.json`).
/// `application/jwt` by default; `{"receipt": …}` when asked for JSON.
async fn receipt(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<ReceiptQuery>, QueryRejection>,
) -> Response {
    let me = match citizen(&app, &headers).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let lang = match query.as_ref().map(|q| q.lang.as_deref()) {
        Ok(None | Some("nb")) => "nb",
        Ok(Some("en")) => "en",
        _ => return FieldError::new("lang", "must be nb or en").response(),
    };
    if !json_api::is_consent_id(&id) {
        return json_api::not_found(NOT_FOUND);
    }
    let (row, events) = match app
        .store
        .get_consent_with_events(&id, Timestamp::now())
        .await
    {
        Ok(Some((row, events))) if row.is_subject(&me) => (row, events),
        Ok(_) => return json_api::not_found(NOT_FOUND),
        Err(e) => return json_api::store_unavailable(&e),
    };
    // A receipt documents consent given: a request never accepted has none.
    let Some(accepted) = events.iter().find(|e| e.kind == EventType::Accepted) else {
        return json_api::problem(
            StatusCode::CONFLICT,
            "consent_not_granted",
            "This consent was never granted",
            "A receipt is issued for a consent you have granted.",
            json!({ "consent_status": row.status }),
        );
    };
    let claims = receipt_claims(&app, &row, &me, accepted.at, lang);
    let jws = match app.keys.assertion.sign_claims(&claims) {
        Ok(jws) => jws,
        Err(e) => {
            tracing::error!(error = %e, "cannot sign a consent receipt");
            return json_api::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "signing_failed",
                "The receipt could not be signed",
                "Try again shortly.",
                Value::Null,
            );
        }
    };
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("application/jwt"));
    if wants_json {
        return json_api::json(
            StatusCode::OK,
            &json!({ "receipt": jws, "kid": app.keys.assertion.kid() }),
        );
    }
    let mut response = Response::new(axum::body::Body::from(jws));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwt"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn receipt_claims(
    app: &App,
    row: &ConsentRow,
    me: &PersonNumber,
    accepted: Timestamp,
    lang: &str,
) -> Value {
    let policy = &app.policy;
    let pick = |t: &policy::Text| {
        if lang == "en" {
            t.en.clone()
        } else {
            t.nb.clone()
        }
    };
    let datasets = row.dataset_list().unwrap_or_default();
    let refs: Vec<policy::DatasetRef> = datasets.iter().filter_map(|d| d.parse().ok()).collect();
    let found: Vec<&policy::Dataset> = refs
        .iter()
        .filter_map(|r| policy.dataset(&r.provider, &r.dataset))
        .collect();
    let purpose = policy.purposes.get(&row.purpose);
    let purpose_title = purpose
        .map(|p| pick(&p.title))
        .unwrap_or_else(|| row.purpose.clone());
    let purpose_text = purpose.map(|p| pick(&p.description)).unwrap_or_default();
    let org_name = |iso: &str| -> String {
        let digits = iso.strip_prefix("0192:").unwrap_or(iso);
        policy::OrgNumber::parse(digits)
            .ok()
            .and_then(|o| policy.organisation_name(&o).map(str::to_owned))
            .unwrap_or_else(|| digits.to_owned())
    };
    let mut providers: Vec<String> = found
        .iter()
        .filter_map(|d| policy.providers.get(&d.id.provider))
        .map(|p| org_name(p.org.as_str()))
        .collect();
    providers.dedup();
    // FHIR is the health-care exchange standard: a dataset minimised as FHIR
    // is health data, a special category (GDPR art. 9).
    let health = found.iter().any(|d| {
        d.purposes
            .iter()
            .any(|p| matches!(p.mask, FieldMask::FhirResourceTypes(_)))
    });
    let mut controllers = vec![json!({
        "piiController": org_name(&row.requester),
        "onBehalf": false,
        "org": row.requester,
    })];
    if let Some(supplier) = &row.supplier {
        controllers.push(
            json!({ "piiController": org_name(supplier), "onBehalf": true, "org": supplier }),
        );
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let receipt_id = uuid::Uuid::new_v4().to_string();
    let public_key = app
        .keys
        .jwks()
        .get("keys")
        .and_then(Value::as_array)
        .and_then(|keys| {
            keys.iter()
                .find(|k| k.get("kid").and_then(Value::as_str) == Some(app.keys.assertion.kid()))
        })
        .cloned();
    json!({
        "iss": app.keys.assertion.issuer(),
        "iat": now,
        "jti": receipt_id,
        "version": "KI-CR-v1.1.0",
        "jurisdiction": "NO",
        "consentTimestamp": accepted.as_datetime().unix_timestamp(),
        "collectionMethod": "Given by the citizen in Bru's consent service after logging in with ID-porten",
        "consentReceiptID": receipt_id,
        "publicKey": public_key,
        "language": lang,
        "piiPrincipalId": me.expose(),
        "piiControllers": controllers,
        "policyUrl": format!("{}/catalog/v1/datasets", app.config.public_url),
        "services": [{
            "service": purpose_title,
            "purposes": [{
                "purpose": if purpose_text.is_empty() { purpose_title.clone() } else { purpose_text },
                "purposeCategory": [row.purpose],
                "consentType": "EXPLICIT",
                "piiCategory": datasets,
                "primaryPurpose": true,
                "termination": row.valid_to,
                "thirdPartyDisclosure": true,
                "thirdPartyName": providers.join(", "),
            }],
        }],
        "sensitive": health,
        "spiCat": if health { vec!["health"] } else { Vec::new() },
        // Bru's own members: which consent, and where it stands now.
        "consent_id": row.id,
        "consent_status": row.status,
        "max_uses": row.max_uses,
    })
}

// ---- transfers -------------------------------------------------------------

#[derive(serde::Deserialize)]
struct TransfersQuery {
    cursor: Option<u64>,
    limit: Option<u32>,
}

/// The citizen's access log: every decision record whose `subject_ref` is
/// this citizen's pseudonym, allowed or denied, oldest first, in pages.
async fn transfers(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<TransfersQuery>, QueryRejection>,
) -> Response {
    let me = match citizen(&app, &headers).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let Ok(Query(query)) = query else {
        return FieldError::new(
            "query",
            "takes cursor (a number from next_cursor) and limit (1 to 500)",
        )
        .response();
    };
    let limit = query.limit.unwrap_or(DEFAULT_TRANSFERS);
    if !(1..=MAX_TRANSFERS).contains(&limit) {
        return FieldError::new("limit", format!("must be between 1 and {MAX_TRANSFERS}"))
            .response();
    }
    let subject_ref = app.keys.pseudonym.subject_ref(&me);
    let page = match view::transfers(&app.store, subject_ref, query.cursor, limit).await {
        Ok(page) => page,
        Err(e) => return json_api::store_unavailable(&e),
    };
    let next_cursor = page.next.map(|i| i.to_string());
    let transfers: Vec<view::TransferView> = page
        .records
        .iter()
        .map(|r| view::transfer(&app.policy, r))
        .collect();
    json_api::json(
        StatusCode::OK,
        &json!({ "transfers": transfers, "next_cursor": next_cursor }),
    )
}
