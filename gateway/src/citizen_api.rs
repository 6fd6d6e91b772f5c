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
use consent_db::{CitizenAction, ConsentError, ConsentRow, EventType, Timestamp};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use policy::{FieldMask, PersonNumber};
use portal::view;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::json_api::{self, ApiError, FieldError, Problem};
use crate::openapi::{BadRequest, Conflict, NotFound, StoreUnavailable, Unauthorized};

const DEFAULT_TRANSFERS: u32 = 100;
const MAX_TRANSFERS: u32 = 500;
const NOT_FOUND: ApiError = ApiError::NotFound("You have no consent with this id.");

/// The routes, each from its handler's `#[utoipa::path]`.
pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(read))
        .routes(routes!(accept))
        .routes(routes!(reject))
        .routes(routes!(revoke))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(list_blocks, create_block))
        .routes(routes!(delete_block))
        .routes(routes!(receipt))
        .routes(routes!(transfers))
        .merge(crate::representation::routes())
        // A refused Bru-On-Behalf-Of is recorded under its route (SPEC 9.3).
        .route_layer(axum::middleware::from_fn(
            crate::representation::remember_route,
        ))
}

/// A consent as its citizen sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CitizenConsent {
    #[serde(flatten)]
    pub consent: view::ConsentView,
    /// Where the signed receipt of this consent is.
    #[schema(format = "uri")]
    pub receipt_url: String,
    /// The consent's history, on a single consent only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub events: Option<Vec<crate::representation::EventView>>,
}

/// The citizen's consents: granted, waiting for an answer, and the rest.
#[derive(Debug, Serialize, ToSchema)]
pub struct CitizenConsents {
    pub active: Vec<CitizenConsent>,
    pub pending: Vec<CitizenConsent>,
    pub past: Vec<CitizenConsent>,
}

/// A consent receipt as JSON (when asked for with `Accept: application/json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptJson {
    /// The receipt as a JWS (compact serialisation).
    #[schema(value_type = Jws)]
    pub receipt: String,
    /// The signing key's `kid` in `/.well-known/jwks.json`.
    pub kid: String,
}

/// One page of the citizen's access log.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferPage {
    pub transfers: Vec<view::TransferView>,
    /// The `cursor` of the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A JWS (RFC 7515) in compact serialisation: the receipt, signed.
#[derive(ToSchema)]
#[schema(pattern = "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$")]
#[allow(dead_code)] // a schema only
struct Jws(String);

/// A consent id in the path.
#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // parameters only
struct ConsentId {
    /// The consent's id.
    #[param(format = "uuid")]
    id: String,
}

/// The person the call is about: the citizen, or whom `Bru-On-Behalf-Of` names (representation.rs).
async fn citizen(app: &App, headers: &HeaderMap) -> Result<PersonNumber, ApiError> {
    Ok(crate::representation::acting(app, headers, false)
        .await?
        .subject)
}

/// My consents.
#[utoipa::path(
    get,
    path = "/citizen/v1/consents",
    tag = "citizen",
    operation_id = "listMyConsents",
    security(("idporten" = [])),
    responses(
        (status = 200, description = "My consents, in three groups", body = CitizenConsents),
        (status = 401, response = Unauthorized),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn list(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let me = citizen(&app, &headers).await?;
    let rows = app.store.consents_by_subject(&me, Timestamp::now()).await?;
    let grouped = view::group(&rows);
    let views = |rows: &[&ConsentRow]| -> Vec<CitizenConsent> {
        rows.iter().map(|r| consent_view(&app, r, None)).collect()
    };
    Ok(json_api::json(
        StatusCode::OK,
        &CitizenConsents {
            active: views(&grouped.active),
            pending: views(&grouped.pending),
            past: views(&grouped.past),
        },
    ))
}

/// One consent: mine, or a request without a subject that I may answer.
#[utoipa::path(
    get,
    path = "/citizen/v1/consents/{id}",
    tag = "citizen",
    operation_id = "getMyConsent",
    security(("idporten" = [])),
    params(ConsentId),
    responses(
        (status = 200, description = "The consent with its events", body = CitizenConsent),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn read(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let me = citizen(&app, &headers).await?;
    if !json_api::is_consent_id(&id) {
        return Err(NOT_FOUND);
    }
    match app
        .store
        .get_consent_with_events(&id, Timestamp::now())
        .await?
    {
        Some((row, events)) if view::visible_to(&row, &me) => {
            let events = crate::representation::events_with_actors(&app, &row.id, &events).await?;
            Ok(json_api::json(
                StatusCode::OK,
                &consent_view(&app, &row, Some(events)),
            ))
        }
        _ => Err(NOT_FOUND),
    }
}

/// Grant a pending consent (a request without a subject becomes mine).
/// Repeating it answers 200 with the consent as it is.
#[utoipa::path(
    post,
    path = "/citizen/v1/consents/{id}/accept",
    tag = "citizen",
    operation_id = "acceptConsent",
    security(("idporten" = [])),
    params(ConsentId),
    responses(
        (status = 200, description = "The consent, now granted", body = CitizenConsent),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn accept(
    state: State<Arc<App>>,
    headers: HeaderMap,
    id: Path<String>,
) -> Result<Response, ApiError> {
    act(state, headers, id, CitizenAction::Accept).await
}

/// Refuse a pending consent. Repeating it answers 200 with the consent as it is.
#[utoipa::path(
    post,
    path = "/citizen/v1/consents/{id}/reject",
    tag = "citizen",
    operation_id = "rejectConsent",
    security(("idporten" = [])),
    params(ConsentId),
    responses(
        (status = 200, description = "The consent, now rejected", body = CitizenConsent),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn reject(
    state: State<Arc<App>>,
    headers: HeaderMap,
    id: Path<String>,
) -> Result<Response, ApiError> {
    act(state, headers, id, CitizenAction::Reject).await
}

/// Withdraw a granted consent, from the next call on. Repeating it answers
/// 200 with the consent as it is.
#[utoipa::path(
    post,
    path = "/citizen/v1/consents/{id}/revoke",
    tag = "citizen",
    operation_id = "revokeConsent",
    security(("idporten" = [])),
    params(ConsentId),
    responses(
        (status = 200, description = "The consent, now revoked", body = CitizenConsent),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn revoke(
    state: State<Arc<App>>,
    headers: HeaderMap,
    id: Path<String>,
) -> Result<Response, ApiError> {
    act(state, headers, id, CitizenAction::Revoke).await
}

// ---- pause and resume (SPEC 10) ------------------------------------------

/// Pause a granted consent: from the next call on, at every replica, a call
/// under it is 403 `consent_paused` until it is resumed. Repeating it
/// answers 200 with the consent as it is.
#[utoipa::path(
    post,
    path = "/citizen/v1/consents/{id}/pause",
    tag = "citizen",
    operation_id = "pauseConsent",
    security(("idporten" = [])),
    params(ConsentId),
    responses(
        (status = 200, description = "The consent, now paused", body = CitizenConsent),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn pause(
    state: State<Arc<App>>,
    headers: HeaderMap,
    id: Path<String>,
) -> Result<Response, ApiError> {
    act(state, headers, id, CitizenAction::Pause).await
}

/// Resume a paused consent: it is granted again, with the uses and validity
/// it had. Repeating it answers 200 with the consent as it is.
#[utoipa::path(
    post,
    path = "/citizen/v1/consents/{id}/resume",
    tag = "citizen",
    operation_id = "resumeConsent",
    security(("idporten" = [])),
    params(ConsentId),
    responses(
        (status = 200, description = "The consent, granted again", body = CitizenConsent),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn resume(
    state: State<Arc<App>>,
    headers: HeaderMap,
    id: Path<String>,
) -> Result<Response, ApiError> {
    act(state, headers, id, CitizenAction::Resume).await
}

// ---- blocks (SPEC 10) -----------------------------------------------------

/// A block of mine: of one organisation or one dataset.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockView {
    pub id: String,
    /// `0192:{orgnr}` of the organisation blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub consumer: Option<String>,
    /// `provider/dataset` of the dataset blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub dataset: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// What to block: exactly one of `consumer` and `dataset`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)] // a schema only; read by `parse_block`
struct BlockBody {
    /// `0192:{orgnr}`: every call about me by this organisation.
    #[schema(nullable = false)]
    consumer: Option<String>,
    /// `provider/dataset`: every call about me to this dataset.
    #[schema(nullable = false)]
    dataset: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct BlockCreated {
    id: String,
}

/// My blocks, oldest first.
#[derive(Debug, Serialize, ToSchema)]
struct BlockList {
    blocks: Vec<BlockView>,
}

/// Block an organisation or a dataset: from the next call on, a call about
/// me that the block covers is 403 `blocked_by_subject` on every dataset
/// whose policy lets blocks apply (`blockable`).
#[utoipa::path(
    post,
    path = "/citizen/v1/blocks",
    tag = "citizen",
    operation_id = "createBlock",
    security(("idporten" = [])),
    request_body(content = BlockBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The block is in force", body = BlockCreated),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn create_block(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let me = citizen(&app, &headers).await?;
    let (consumer, dataset) = parse_block(&app, &body)?;
    let block = consent_db::Block {
        id: uuid::Uuid::new_v4().to_string(),
        consumer,
        dataset,
        created_at: String::new(),
    };
    let subject_ref = app.keys.pseudonym.subject_ref(&me);
    app.store
        .add_block(&subject_ref, &block, Timestamp::now())
        .await?;
    // Not needed for the block to hold (the record's transaction checks),
    // but this replica's next call then reads it at once.
    app.block_cache.forget(&subject_ref);
    tracing::info!(block_id = %block.id, "citizen added a block");
    Ok(json_api::json(
        StatusCode::CREATED,
        &BlockCreated { id: block.id },
    ))
}

/// `{"consumer": "0192:N"}` or `{"dataset": "p/d"}`, naming an organisation
/// or a dataset the policy knows.
fn parse_block(app: &App, body: &[u8]) -> Result<(Option<String>, Option<String>), FieldError> {
    let obj = json_api::json_object(body)?;
    if let Some(extra) = obj.keys().find(|k| *k != "consumer" && *k != "dataset") {
        return Err(FieldError::new(extra, "is not a member of a block"));
    }
    match (obj.get("consumer"), obj.get("dataset")) {
        (Some(Value::String(c)), None) => {
            let org = c
                .strip_prefix("0192:")
                .and_then(|n| policy::OrgNumber::parse(n).ok())
                .ok_or_else(|| {
                    FieldError::new("consumer", "must be 0192: and a valid organisation number")
                })?;
            Ok((Some(org.iso6523()), None))
        }
        (None, Some(Value::String(d))) => {
            let id: policy::DatasetRef = d
                .parse()
                .map_err(|_| FieldError::new("dataset", "must be provider/dataset"))?;
            if app.policy.dataset(&id.provider, &id.dataset).is_none() {
                return Err(FieldError::new("dataset", "names no dataset"));
            }
            Ok((None, Some(id.to_string())))
        }
        (Some(_), Some(_)) => Err(FieldError::new(
            "consumer",
            "and dataset cannot both be given",
        )),
        (Some(_), None) => Err(FieldError::new("consumer", "must be a string")),
        (None, Some(_)) => Err(FieldError::new("dataset", "must be a string")),
        (None, None) => Err(FieldError::new("consumer", "or dataset is required")),
    }
}

/// My blocks.
#[utoipa::path(
    get,
    path = "/citizen/v1/blocks",
    tag = "citizen",
    operation_id = "listBlocks",
    security(("idporten" = [])),
    responses(
        (status = 200, description = "My blocks, oldest first", body = BlockList),
        (status = 401, response = Unauthorized),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn list_blocks(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let me = citizen(&app, &headers).await?;
    let blocks = app
        .store
        .blocks(&app.keys.pseudonym.subject_ref(&me))
        .await?
        .into_iter()
        .map(|b| BlockView {
            id: b.id,
            consumer: b.consumer,
            dataset: b.dataset,
            created_at: b.created_at,
        })
        .collect();
    Ok(json_api::json(StatusCode::OK, &BlockList { blocks }))
}

/// Lift a block of mine, from the next call on.
#[utoipa::path(
    delete,
    path = "/citizen/v1/blocks/{id}",
    tag = "citizen",
    operation_id = "deleteBlock",
    security(("idporten" = [])),
    params(("id" = String, Path, description = "The block's id")),
    responses(
        (status = 204, description = "The block is lifted"),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn delete_block(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let me = citizen(&app, &headers).await?;
    if !json_api::is_consent_id(&id) {
        return Err(NOT_FOUND);
    }
    let subject_ref = app.keys.pseudonym.subject_ref(&me);
    if !app.store.delete_block(&subject_ref, &id).await? {
        return Err(NOT_FOUND);
    }
    app.block_cache.forget(&subject_ref);
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::NO_CONTENT,
    ))
}

/// One citizen action. Repeating one that already took effect (a second
/// click on "revoke") answers 200 with the consent as it is.
async fn act(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    action: CitizenAction,
) -> Result<Response, ApiError> {
    let acting = crate::representation::acting(&app, &headers, true).await?;
    let me = acting.subject.clone();
    if !json_api::is_consent_id(&id) {
        return Err(NOT_FOUND);
    }
    crate::representation::check_decision(&app, &acting, &id).await?;
    let now = Timestamp::now();
    let result = app
        .store
        .citizen_action_by(&id, &me, action, now, acting.action_actor())
        .await;
    let row = match result {
        Ok(row) => {
            tracing::info!(consent_id = %row.id, action = action.as_str(), by = %acting.actor(), "citizen answered a consent");
            row
        }
        Err(ConsentError::NotFound) => return Err(NOT_FOUND),
        Err(ConsentError::InvalidTransition { state, action }) if state == action.outcome().0 => {
            app.store.get_consent_at(&id, now).await?.ok_or(NOT_FOUND)?
        }
        Err(e @ ConsentError::InvalidTransition { state, .. }) => {
            return Err(ApiError::InvalidTransition {
                consent_status: state.as_str().to_owned(),
                detail: format!("{}.", capitalise(&e.to_string())),
            })
        }
        Err(ConsentError::Store(e)) => return Err(ApiError::store(e)),
    };
    let events = app.store.consent_events(&row.id).await?;
    let events = crate::representation::events_with_actors(&app, &row.id, &events).await?;
    Ok(json_api::json(
        StatusCode::OK,
        &consent_view(&app, &row, Some(events)),
    ))
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
fn consent_view(
    app: &App,
    row: &ConsentRow,
    events: Option<Vec<crate::representation::EventView>>,
) -> CitizenConsent {
    CitizenConsent {
        consent: view::consent(&app.policy, row),
        receipt_url: format!(
            "{}/citizen/v1/consents/{}/receipt",
            app.config.public_url, row.id
        ),
        events,
    }
}

// ---- receipt -------------------------------------------------------------

#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReceiptQuery {
    /// The receipt's language: bokmål (the default) or English.
    #[param(value_type = Option<ReceiptLang>, inline, nullable = false)]
    lang: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // a schema only
enum ReceiptLang {
    Nb,
    En,
}

/// My consent's receipt (a consent I granted, now or earlier).
#[utoipa::path(
    get,
    path = "/citizen/v1/consents/{id}/receipt",
    tag = "citizen",
    operation_id = "getConsentReceipt",
    security(("idporten" = [])),
    params(ConsentId, ReceiptQuery),
    responses(
        (status = 200, description = "A Kantara Consent Receipt (v1.1) signed with Bru's assertion key (ES256): \
            a JWS by default, `{\"receipt\", \"kid\"}` when asked for `application/json`",
            content(
                (Jws = "application/jwt"),
                (ReceiptJson = "application/json"),
            )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, description = "`store_unavailable`, or `signing_failed`: the receipt could not be signed; try again",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    )
)]
/// A Kantara Consent Receipt (v1.1) for a consent the citizen granted,
/// signed with Bru's assertion key (ES256; `kid` in `/.well-known/jwks.json`).
/// `application/jwt` by default; `{"receipt": …}` when asked for JSON.
async fn receipt(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<ReceiptQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let me = citizen(&app, &headers).await?;
    let lang = match query.as_ref().map(|q| q.lang.as_deref()) {
        Ok(None | Some("nb")) => "nb",
        Ok(Some("en")) => "en",
        _ => return Err(FieldError::new("lang", "must be nb or en").into()),
    };
    if !json_api::is_consent_id(&id) {
        return Err(NOT_FOUND);
    }
    let (row, events) = match app
        .store
        .get_consent_with_events(&id, Timestamp::now())
        .await?
    {
        Some((row, events)) if row.is_subject(&me) => (row, events),
        _ => return Err(NOT_FOUND),
    };
    // A receipt documents consent given: a request never accepted has none.
    let Some(accepted) = events.iter().find(|e| e.kind == EventType::Accepted) else {
        return Err(ApiError::ConsentNotGranted {
            consent_status: row.status.to_string(),
        });
    };
    let mut claims = receipt_claims(&app, &row, &me, accepted.at, lang);
    // Granted by a representative: the receipt names their role, not their number.
    let actors = app.store.event_actors(&row.id).await?;
    if let Some(rep) = crate::representation::receipt_representative(&actors, &events) {
        claims["collectionMethod"] = json!(
            "Given by a representative in Bru's consent service after logging in with ID-porten"
        );
        claims["representative"] = rep;
    }
    let jws = app
        .keys
        .assertion
        .sign_claims(&claims)
        .map_err(|e| ApiError::SigningFailed(e.into()))?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("application/jwt"));
    if wants_json {
        return Ok(json_api::json(
            StatusCode::OK,
            &ReceiptJson {
                receipt: jws,
                kid: app.keys.assertion.kid().to_owned(),
            },
        ));
    }
    let mut response = Response::new(axum::body::Body::from(jws));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwt"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
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
    let datasets: Vec<String> = row.datasets.iter().map(ToString::to_string).collect();
    let found: Vec<&policy::Dataset> = row
        .datasets
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

#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TransfersQuery {
    /// `next_cursor` of the page before.
    #[param(minimum = 0, maximum = 9223372036854775807_i64, nullable = false)]
    cursor: Option<u64>,
    /// At most this many transfers.
    #[param(minimum = 1, maximum = 500, default = 100, nullable = false)]
    limit: Option<u32>,
}

/// My access log: every decision about me, allowed or refused, oldest first.
#[utoipa::path(
    get,
    path = "/citizen/v1/transfers",
    tag = "citizen",
    operation_id = "listMyTransfers",
    security(("idporten" = [])),
    params(TransfersQuery),
    responses(
        (status = 200, description = "One page of my access log", body = TransferPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = StoreUnavailable),
    )
)]
/// The citizen's access log: every decision record whose `subject_ref` is
/// this citizen's pseudonym, allowed or denied, oldest first, in pages.
async fn transfers(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<TransfersQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let me = citizen(&app, &headers).await?;
    let Ok(Query(query)) = query else {
        return Err(FieldError::new(
            "query",
            "takes cursor (a number from next_cursor) and limit (1 to 500)",
        )
        .into());
    };
    // Indexes are int64, as documented (found by schemathesis: larger ones were taken).
    if query.cursor.is_some_and(|c| i64::try_from(c).is_err()) {
        return Err(FieldError::new("cursor", "is too large").into());
    }
    let limit = query.limit.unwrap_or(DEFAULT_TRANSFERS);
    if !(1..=MAX_TRANSFERS).contains(&limit) {
        return Err(
            FieldError::new("limit", format!("must be between 1 and {MAX_TRANSFERS}")).into(),
        );
    }
    let subject_ref = app.keys.pseudonym.subject_ref(&me);
    let page = view::transfers(&app.store, subject_ref, query.cursor, limit).await?;
    let next_cursor = page.next.map(|i| i.to_string());
    // "Your consent" only for the citizen's own: a consent id a caller sent
    // may be anyone's.
    let own = view::own_consent_ids(&app.store, &me).await?;
    let transfers = page
        .records
        .iter()
        .map(|r| view::transfer(&app.policy, r, &own))
        .collect();
    Ok(json_api::json(
        StatusCode::OK,
        &TransferPage {
            transfers,
            next_cursor,
        },
    ))
}
