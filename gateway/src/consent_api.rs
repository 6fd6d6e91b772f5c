//! The consent broker's requester API (SPEC section 4):
//!
//! - `POST /consent/v1/requests` asks a citizen for consent;
//! - `GET /consent/v1/requests/{id}` shows one request with its events;
//! - `GET /consent/v1/requests?status=&limit=` lists the requester's newest
//!   (with `status`, the newest of that status among the last 500).
//!
//! Bearer token with scope `bru:consent`, for an organisation whose consumer
//! rule says `consent_requester` (`policy::authorize_api`). The requester is
//! the token's consumer; a supplier acting for it (where the policy lists
//! the supplier) reads the same requests. Another organisation's request is
//! 404, as if it did not exist. Every change of state goes through the
//! store's lifecycle (consent-db `consent.rs`).

use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::response::Response;
use bytes::Bytes;
use consent_db::{ConsentEvent, ConsentRow, ConsentState, NewConsent, Timestamp};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use policy::{Api, Caller, ConsentRequest, DatasetRef, PersonNumber};
use serde::Serialize;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::json_api::{self, ApiError, FieldError};
use crate::openapi::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, StoreUnavailable, Unauthorized,
};
use crate::problem::Failure;

/// The members a request may have; any other is refused.
const MEMBERS: [&str; 8] = [
    "subject",
    "datasets",
    "purpose",
    "valid_to",
    "max_uses",
    "frequency",
    "redirect_url",
    "message",
];
const MAX_MESSAGE_CHARS: usize = 500;
const MAX_DATASETS: usize = 32;
const MAX_URL_BYTES: usize = 2048;
const DEFAULT_LIST: u32 = 100;
const MAX_LIST: u32 = 500;

/// The routes, each from its handler's `#[utoipa::path]` (path, method and
/// what the OpenAPI document says of it).
pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read))
        // Larger bodies are refused unread: 413 `request_too_large`.
        .layer(DefaultBodyLimit::max(json_api::MAX_BODY_BYTES))
}

/// `POST /consent/v1/requests`. Only these members; every one is checked
/// (400 `malformed_request` naming it), then the request against policy.
/// Documents the body the handler reads member by member (`MEMBERS`).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "subject": "12884513829",
    "datasets": ["nav/inntekt", "helsenorge/hjemmetjeneste"],
    "purpose": "omsorgsbolig-soknad",
    "valid_to": "2030-12-31T23:59:59Z",
    "max_uses": 10
}))]
#[allow(dead_code)] // a schema only
pub struct ConsentRequestBody {
    /// The citizen's fødselsnummer or D-nummer. Left out, the citizen who
    /// opens `citizen_url` becomes the subject.
    #[schema(pattern = "^[0-9]{11}$")]
    subject: Option<String>,
    /// `provider/dataset` ids; each must allow this requester and purpose under consent.
    #[schema(min_items = 1, max_items = 32, inline)]
    datasets: Vec<DatasetId>,
    /// A purpose id every dataset allows under consent.
    #[schema(min_length = 1)]
    purpose: String,
    /// Until when the consent holds (RFC 3339), in the future and within
    /// what the datasets' policy allows.
    #[schema(format = DateTime)]
    valid_to: String,
    /// How many calls the consent allows; unlimited when left out.
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    max_uses: Option<u64>,
    /// At most `max` calls per rolling `per` (day: 24 h, week: 7 days,
    /// month: 30 days); more are 429 `consent_frequency_exceeded`.
    #[schema(nullable = false)]
    frequency: Option<FrequencyBody>,
    /// Where the portal sends the citizen after answering: https (in the
    /// demo also http://localhost), no credentials.
    #[schema(format = "uri", max_length = 2048)]
    redirect_url: Option<String>,
    /// A message shown to the citizen; no control characters but line breaks.
    #[schema(max_length = 500)]
    message: Option<String>,
}

/// A dataset id, `provider/dataset`.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
#[schema(pattern = "^[^/]+/[^/]+$", example = "nav/inntekt")]
pub struct DatasetId(String);

/// The answer to a new request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentRequestCreated {
    pub id: String,
    #[schema(value_type = ConsentState)]
    pub status: String,
    /// The portal page where the citizen answers (no person number in it).
    #[schema(format = "uri")]
    pub citizen_url: String,
}

/// A consent request as its requester sees it. The subject is not shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentRequestView {
    pub id: String,
    #[schema(value_type = ConsentState)]
    pub status: String,
    #[schema(inline)]
    pub datasets: Vec<DatasetId>,
    pub purpose: String,
    #[schema(format = DateTime)]
    pub valid_to: String,
    pub uses: i64,
    #[schema(required = true)]
    pub max_uses: Option<i64>,
    /// The frequency limit, where the request set one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub frequency: Option<consent_db::Frequency>,
    /// `0192:{orgnr}`.
    pub requester: String,
    /// `0192:{orgnr}` of the vendor that made the request for the requester.
    #[schema(required = true)]
    pub supplier: Option<String>,
    #[schema(required = true)]
    pub redirect_url: Option<String>,
    #[schema(required = true)]
    pub message: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(format = "uri")]
    pub citizen_url: String,
    /// The request's history (Altinn's event types), on the single request only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub events: Option<Vec<ConsentEvent>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentRequestList {
    /// Newest first.
    pub requests: Vec<ConsentRequestView>,
}

/// The caller, if its token is good and policy lets it use this API.
async fn requester(app: &App, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = app.auth.machine(headers.get(header::AUTHORIZATION)).await?;
    policy::authorize_api(&app.policy, &token.caller, Api::ConsentRequester)?;
    Ok(token.caller)
}

/// Ask a citizen for consent.
#[utoipa::path(
    post,
    path = "/consent/v1/requests",
    tag = "consent",
    operation_id = "createConsentRequest",
    security(("maskinporten_consent" = [])),
    request_body(content = ConsentRequestBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The request is created, pending the citizen's answer.",
            body = ConsentRequestCreated,
            headers(("Location" = String, description = "The request's URL"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = requester(&app, &headers).await?;
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(Failure::RequestTooLarge.into())
        }
        Err(_) => return Err(FieldError::new("body", "could not be read").into()),
    };
    let now = OffsetDateTime::now_utc();
    let new = parse_request(&app, &caller, &body, now)?;
    let row = app
        .store
        .create_consent(&new, Timestamp::from_datetime(now))
        .await?;
    tracing::info!(consent_id = %row.id, requester = %row.requester, "consent requested");
    let mut response = json_api::json(
        StatusCode::CREATED,
        &ConsentRequestCreated {
            citizen_url: citizen_url(&app, &row.id),
            id: row.id.clone(),
            status: row.status.to_string(),
        },
    );
    if let Ok(location) = HeaderValue::from_str(&format!("/consent/v1/requests/{}", row.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Where the citizen answers: the portal page of the request. No person
/// number in it, ever: the id is all it needs.
pub fn citizen_url(app: &App, id: &str) -> String {
    format!("{}/samtykke/{id}", app.config.public_url)
}

/// Checks every member of a request, then the request against policy.
fn parse_request(
    app: &App,
    caller: &Caller,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<NewConsent, FieldError> {
    let obj = json_api::json_object(body)?;
    if let Some(unknown) = obj.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
        return Err(FieldError::new(
            unknown,
            "is not a member of a consent request",
        ));
    }
    let subject = match optional(&obj, "subject") {
        None => None,
        Some(Value::String(s)) => Some(
            PersonNumber::parse(s.trim(), app.config.allow_synthetic_ids).map_err(|e| {
                FieldError::new("subject", format!("is not a valid person number: {e}"))
            })?,
        ),
        Some(_) => {
            return Err(FieldError::new(
                "subject",
                "must be a person number as a string",
            ))
        }
    };
    let datasets = parse_datasets(obj.get("datasets"))?;
    let purpose = match obj.get("purpose") {
        Some(Value::String(p)) if !p.is_empty() => p.clone(),
        Some(_) => {
            return Err(FieldError::new(
                "purpose",
                "must be a purpose id as a string",
            ))
        }
        None => return Err(FieldError::new("purpose", "is required")),
    };
    let valid_to = match obj.get("valid_to") {
        Some(Value::String(s)) => OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
            FieldError::new(
                "valid_to",
                "must be an RFC 3339 time, e.g. 2026-12-31T23:59:59Z",
            )
        })?,
        Some(_) => {
            return Err(FieldError::new(
                "valid_to",
                "must be an RFC 3339 time as a string",
            ))
        }
        None => return Err(FieldError::new("valid_to", "is required")),
    };
    let max_uses = match optional(&obj, "max_uses") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(0) | None => {
                return Err(FieldError::new(
                    "max_uses",
                    "must be a whole number of at least 1",
                ))
            }
            Some(n) => {
                Some(u32::try_from(n).map_err(|_| FieldError::new("max_uses", "is too large"))?)
            }
        },
    };
    let frequency = match optional(&obj, "frequency") {
        None => None,
        Some(v) => Some(frequency(v)?),
    };
    let redirect_url = match optional(&obj, "redirect_url") {
        None => None,
        Some(Value::String(u)) => Some(check_redirect(app, u)?),
        Some(_) => return Err(FieldError::new("redirect_url", "must be a URL as a string")),
    };
    let message = match optional(&obj, "message") {
        None => None,
        Some(Value::String(m)) => {
            if m.chars().count() > MAX_MESSAGE_CHARS {
                return Err(FieldError::new(
                    "message",
                    format!("may be at most {MAX_MESSAGE_CHARS} characters"),
                ));
            }
            if m.chars().any(|c| c.is_control() && c != '\n') {
                return Err(FieldError::new(
                    "message",
                    "may not hold control characters other than line breaks",
                ));
            }
            Some(m.clone())
        }
        Some(_) => return Err(FieldError::new("message", "must be a string")),
    };

    policy::check_consent_request(
        &app.policy,
        &ConsentRequest {
            requester: &caller.consumer,
            datasets: &datasets,
            purpose: &purpose,
            valid_to,
            max_uses,
        },
        now,
    )?;
    Ok(NewConsent {
        id: uuid::Uuid::new_v4().to_string(),
        requester: caller.consumer.iso6523(),
        supplier: caller.supplier.as_ref().map(|s| s.iso6523()),
        subject,
        datasets: datasets.clone(),
        purpose,
        valid_to: Timestamp::from_datetime(valid_to),
        max_uses,
        frequency,
        redirect_url,
        message,
    })
}

/// The document's shape of a request's `frequency` (read by [`frequency`]).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // a schema only
struct FrequencyBody {
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    max: u64,
    #[schema(value_type = consent_db::FrequencyPeriod)]
    per: String,
}

/// `{"max": N, "per": "day"|"week"|"month"}` (SPEC 10), nothing else.
fn frequency(v: &Value) -> Result<consent_db::Frequency, FieldError> {
    const SHAPE: &str = r#"must be {"max": N, "per": "day", "week" or "month"} with N at least 1"#;
    let Some(obj) = v.as_object() else {
        return Err(FieldError::new("frequency", SHAPE));
    };
    if obj.len() != 2 {
        return Err(FieldError::new("frequency", SHAPE));
    }
    let max = obj
        .get("max")
        .and_then(Value::as_u64)
        .filter(|&n| n >= 1)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| FieldError::new("frequency", SHAPE))?;
    let per = obj
        .get("per")
        .and_then(Value::as_str)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| FieldError::new("frequency", SHAPE))?;
    Ok(consent_db::Frequency { max, per })
}

/// A member that may be left out or be `null`.
fn optional<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn parse_datasets(value: Option<&Value>) -> Result<Vec<DatasetRef>, FieldError> {
    let field = "datasets";
    let Some(Value::Array(items)) = value else {
        return Err(FieldError::new(
            field,
            "must be an array of dataset ids, e.g. [\"nav/inntekt\"]",
        ));
    };
    if items.len() > MAX_DATASETS {
        return Err(FieldError::new(
            field,
            format!("may name at most {MAX_DATASETS} datasets"),
        ));
    }
    let mut out: Vec<DatasetRef> = Vec::with_capacity(items.len());
    for item in items {
        let Some(s) = item.as_str() else {
            return Err(FieldError::new(field, "must hold dataset ids as strings"));
        };
        let id: DatasetRef = s
            .parse()
            .map_err(|e: policy::DatasetRefError| FieldError::new(field, e.to_string()))?;
        if out.contains(&id) {
            return Err(FieldError::new(field, format!("names {id} twice")));
        }
        out.push(id);
    }
    Ok(out)
}

/// `https://…`; in the demo and in tests also `http://localhost…`. No
/// credentials in it, and no fragment the citizen's browser would hide.
fn check_redirect(app: &App, url: &str) -> Result<String, FieldError> {
    let field = "redirect_url";
    if url.len() > MAX_URL_BYTES {
        return Err(FieldError::new(
            field,
            format!("may be at most {MAX_URL_BYTES} bytes"),
        ));
    }
    let parsed =
        reqwest::Url::parse(url).map_err(|_| FieldError::new(field, "is not an absolute URL"))?;
    let local = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let demo = app.config.allow_synthetic_ids || app.config.issuers.iter().any(|i| i.is_demo());
    match parsed.scheme() {
        "https" => {}
        "http" if local && demo => {}
        _ => return Err(FieldError::new(field, "must be an https URL")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(FieldError::new(field, "must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(FieldError::new(field, "may not hold credentials"));
    }
    Ok(parsed.to_string())
}

/// One request of the caller's organisation, with its events. Another
/// organisation's request is 404, as if it did not exist.
#[utoipa::path(
    get,
    path = "/consent/v1/requests/{id}",
    tag = "consent",
    operation_id = "getConsentRequest",
    security(("maskinporten_consent" = [])),
    params(("id" = String, Path, format = "uuid", description = "The request id (also the consent id of `Bru-Consent`)")),
    responses(
        (status = 200, description = "The request", body = ConsentRequestView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn read(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = requester(&app, &headers).await?;
    const NOT_FOUND: ApiError =
        ApiError::NotFound("There is no consent request with this id for your organisation.");
    if !json_api::is_consent_id(&id) {
        return Err(NOT_FOUND);
    }
    let now = Timestamp::now();
    match app.store.get_consent_with_events(&id, now).await? {
        // Another organisation's request is answered as if it did not exist.
        Some((row, events)) if row.requester == caller.consumer.iso6523() => Ok(json_api::json(
            StatusCode::OK,
            &request_view(&app, &row, Some(&events)),
        )),
        _ => Err(NOT_FOUND),
    }
}

#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only requests in this status (the newest of it among the last 500).
    #[param(value_type = Option<ConsentState>, nullable = false)]
    status: Option<String>,
    /// At most this many requests.
    #[param(minimum = 1, maximum = 500, default = 100, nullable = false)]
    limit: Option<u32>,
}

/// The caller's organisation's newest requests.
#[utoipa::path(
    get,
    path = "/consent/v1/requests",
    tag = "consent",
    operation_id = "listConsentRequests",
    security(("maskinporten_consent" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The requests, newest first", body = ConsentRequestList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let caller = requester(&app, &headers).await?;
    let Ok(Query(query)) = query else {
        return Err(FieldError::new(
            "query",
            "takes status (a consent status) and limit (1 to 500)",
        )
        .into());
    };
    let limit = query.limit.unwrap_or(DEFAULT_LIST);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(FieldError::new("limit", format!("must be between 1 and {MAX_LIST}")).into());
    }
    let status = match query
        .status
        .as_deref()
        .map(str::parse::<consent_db::ConsentStatus>)
    {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(_)) => {
            return Err(FieldError::new(
                "status",
                "must be pending, granted, rejected, revoked or expired",
            )
            .into())
        }
    };
    // With a status filter, look further back so that `limit` still fills.
    let fetch = if status.is_some() { MAX_LIST } else { limit };
    let rows = app
        .store
        .consents_by_requester(&caller.consumer.iso6523(), fetch, Timestamp::now())
        .await?;
    let requests = rows
        .iter()
        .filter(|r| status.is_none_or(|s| r.status == s))
        .take(limit as usize)
        .map(|r| request_view(&app, r, None))
        .collect();
    Ok(json_api::json(
        StatusCode::OK,
        &ConsentRequestList { requests },
    ))
}

/// A request as the requester sees it. The subject is not shown: the
/// requester named it or (for a request without one) has no need to learn
/// it from Bru.
fn request_view(
    app: &App,
    row: &ConsentRow,
    events: Option<&[ConsentEvent]>,
) -> ConsentRequestView {
    ConsentRequestView {
        id: row.id.clone(),
        status: row.status.to_string(),
        datasets: row
            .datasets
            .iter()
            .map(|d| DatasetId(d.to_string()))
            .collect(),
        purpose: row.purpose.clone(),
        valid_to: row.valid_to.to_string(),
        uses: row.uses.into(),
        max_uses: row.max_uses.map(i64::from),
        frequency: row.frequency,
        requester: row.requester.clone(),
        supplier: row.supplier.clone(),
        redirect_url: row.redirect_url.clone(),
        message: row.message.clone(),
        created_at: row.created_at.to_string(),
        updated_at: row.updated_at.to_string(),
        citizen_url: citizen_url(app, &row.id),
        events: events.map(<[ConsentEvent]>::to_vec),
    }
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    /// The documented request body has exactly the members the handler reads.
    #[test]
    fn the_documented_body_is_the_one_read() {
        let schema = serde_json::to_value(super::ConsentRequestBody::schema()).unwrap_or_default();
        let mut documented: Vec<&str> = schema["properties"]
            .as_object()
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        documented.sort_unstable();
        let mut read = super::MEMBERS.to_vec();
        read.sort_unstable();
        assert_eq!(documented, read);
    }
}
