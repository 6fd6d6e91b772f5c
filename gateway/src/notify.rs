//! The citizen's notifications as JSON (SPEC 10):
//!
//! - `GET|PUT /citizen/v1/notifications/settings`: `{"transfers": "all" |
//!   "denied" | "none", "consent_events": bool}`; without a stored choice
//!   every transfer and every consent event (a break-glass call is always
//!   notified). Kept under the person's keyed pseudonym, never the number.
//! - `GET /citizen/v1/notifications?cursor=&limit=`: mine, newest first.
//!
//! Like the other citizen endpoints, `Bru-On-Behalf-Of` acts for a person
//! the caller represents (representation.rs). Delivery to the operator's
//! notification service is `notify_delivery.rs`.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use consent_db::{InboxCursor, NotificationSettings, Timestamp, TransferNotices};
use http::{HeaderMap, StatusCode};
use portal::notify::NotificationView;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::json_api::{self, ApiError, FieldError};
use crate::openapi::{BadRequest, Forbidden, StoreUnavailable, Unauthorized};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(inbox))
        .routes(routes!(get_settings, put_settings))
}

/// My notification settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SettingsView {
    /// Which transfers about me are notified: every one, only refused ones, or none.
    #[schema(pattern = "^(all|denied|none)$")]
    pub transfers: String,
    /// Whether changes to my consents (a new request, an answer, an expiry
    /// soon) are notified.
    pub consent_events: bool,
}

impl From<NotificationSettings> for SettingsView {
    fn from(s: NotificationSettings) -> Self {
        SettingsView {
            transfers: s.transfers.as_str().to_owned(),
            consent_events: s.consent_events,
        }
    }
}

/// One page of my notifications.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    pub notifications: Vec<NotificationView>,
    /// The `cursor` of the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// `next_cursor` of the page before.
    cursor: Option<String>,
    /// At most this many (1 to 200; 50 when left out).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// The person the call is about, and their pseudonym.
async fn me(app: &App, headers: &HeaderMap) -> Result<(policy::PersonNumber, String), ApiError> {
    let subject = crate::representation::acting(app, headers, false)
        .await?
        .subject;
    let subject_ref = app.keys.pseudonym.subject_ref(&subject);
    Ok((subject, subject_ref))
}

/// My notifications, newest first.
#[utoipa::path(
    get,
    path = "/citizen/v1/notifications",
    tag = "citizen",
    operation_id = "listMyNotifications",
    security(("idporten" = [])),
    params(
        InboxQuery,
        ("Bru-On-Behalf-Of" = Option<String>, Header, description = "Act for this party (a `party` from `GET /citizen/v1/represented`), SPEC 9.3."),
    ),
    responses(
        (status = 200, description = "One page of my notifications: transfers about me (after any disclosure delay, as my settings choose), consent requests waiting for me, consents about to expire within 7 days, and every break-glass call", body = NotificationPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn inbox(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<InboxQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (subject, subject_ref) = me(&app, &headers).await?;
    let Ok(Query(query)) = query else {
        return Err(FieldError::new(
            "query",
            "takes cursor (from next_cursor) and limit (1 to 200)",
        )
        .into());
    };
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(FieldError::new("limit", format!("must be between 1 and {MAX_LIMIT}")).into());
    }
    let cursor = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            InboxCursor::decode(c)
                .ok_or_else(|| FieldError::new("cursor", "is not one Bru gave"))?,
        ),
    };
    let page = page(&app, &subject, &subject_ref, cursor.as_ref(), limit).await?;
    Ok(json_api::json(StatusCode::OK, &page))
}

/// One page of `subject`'s inbox (shared with the portal's page).
pub async fn page(
    app: &App,
    subject: &policy::PersonNumber,
    subject_ref: &str,
    cursor: Option<&InboxCursor>,
    limit: u32,
) -> Result<NotificationPage, consent_db::StoreError> {
    let now = Timestamp::now();
    // Consents about to expire are looked for on every page too, so the
    // inbox does not wait for the background sweep.
    app.store
        .queue_expiring_consents(now, crate::notify_delivery::EXPIRING_WITHIN, Some(subject))
        .await?;
    let settings = app.store.notification_settings(subject_ref).await?;
    let mut rows = app
        .store
        .inbox(
            subject_ref,
            subject,
            settings,
            now,
            cursor,
            limit.saturating_add(1),
        )
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|n| {
            InboxCursor {
                at: n.at.to_string(),
                id: n.id.clone(),
            }
            .encode()
        })
    } else {
        None
    };
    Ok(NotificationPage {
        notifications: rows
            .iter()
            .map(|n| portal::notify::notification(&app.policy, n))
            .collect(),
        next_cursor,
    })
}

/// My notification settings.
#[utoipa::path(
    get,
    path = "/citizen/v1/notifications/settings",
    tag = "citizen",
    operation_id = "getMyNotificationSettings",
    security(("idporten" = [])),
    params(
        ("Bru-On-Behalf-Of" = Option<String>, Header, description = "Act for this party (a `party` from `GET /citizen/v1/represented`), SPEC 9.3."),
    ),
    responses(
        (status = 200, description = "My settings; every transfer and consent event when I chose nothing", body = SettingsView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn get_settings(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, subject_ref) = me(&app, &headers).await?;
    let settings = app.store.notification_settings(&subject_ref).await?;
    Ok(json_api::json(
        StatusCode::OK,
        &SettingsView::from(settings),
    ))
}

/// Choose what I am notified of. A break-glass call is always notified.
#[utoipa::path(
    put,
    path = "/citizen/v1/notifications/settings",
    tag = "citizen",
    operation_id = "putMyNotificationSettings",
    security(("idporten" = [])),
    params(
        ("Bru-On-Behalf-Of" = Option<String>, Header, description = "Act for this party (a `party` from `GET /citizen/v1/represented`), SPEC 9.3."),
    ),
    request_body(content = SettingsView, content_type = "application/json"),
    responses(
        (status = 200, description = "The settings as stored", body = SettingsView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn put_settings(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (_, subject_ref) = me(&app, &headers).await?;
    let settings = parse_settings(&body)?;
    app.store
        .set_notification_settings(&subject_ref, settings, Timestamp::now())
        .await?;
    tracing::info!("citizen changed notification settings");
    Ok(json_api::json(
        StatusCode::OK,
        &SettingsView::from(settings),
    ))
}

/// Both members, nothing else.
pub fn parse_settings(body: &[u8]) -> Result<NotificationSettings, FieldError> {
    let obj = json_api::json_object(body)?;
    if let Some(extra) = obj
        .keys()
        .find(|k| *k != "transfers" && *k != "consent_events")
    {
        return Err(FieldError::new(extra, "is not a notification setting"));
    }
    let transfers = match obj.get("transfers") {
        Some(Value::String(s)) => TransferNotices::parse(s)
            .ok_or_else(|| FieldError::new("transfers", "must be all, denied or none"))?,
        Some(_) => return Err(FieldError::new("transfers", "must be all, denied or none")),
        None => return Err(FieldError::new("transfers", "is required")),
    };
    let consent_events = match obj.get("consent_events") {
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(FieldError::new("consent_events", "must be true or false")),
        None => return Err(FieldError::new("consent_events", "is required")),
    };
    Ok(NotificationSettings {
        transfers,
        consent_events,
    })
}
