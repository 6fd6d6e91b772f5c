//! The one place where a refusal or a fault becomes an HTTP status, a problem
//! code and an audit code, so that the three can never disagree.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use policy::DenyCode;
use serde::Serialize;

use crate::auth::AuthError;

/// Problem details (RFC 9457): the body of every refusal or fault Bru
/// answers with, as `application/problem+json`, on the data plane and the APIs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "https://bru.example/problems/missing_token",
    "title": "The access token was not accepted",
    "status": 401,
    "detail": "No bearer token was sent.",
    "code": "missing_token",
    "transfer_id": null
}))]
pub struct Problem {
    /// `https://bru.example/problems/{code}`.
    #[serde(rename = "type")]
    #[schema(format = "uri")]
    pub kind: String,
    pub title: String,
    /// The HTTP status, repeated.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// A sentence for the caller; never holds a person number, a token or a secret.
    pub detail: String,
    /// The stable problem code (SPEC section 3, and the APIs' own codes:
    /// `not_found`, `store_unavailable`, `invalid_transition`,
    /// `consent_not_granted`, `signing_failed`).
    pub code: String,
    /// The transfer id of a call through `/data/` or of a use of the audit
    /// API (also in the `Bru-Transfer-Id` header); null otherwise.
    #[schema(required = true)]
    pub transfer_id: Option<String>,
    /// The request member or query parameter at fault (400 from the consent API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The consent's status when it does not allow what was asked (409).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_status: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, title: &str, detail: &str) -> Problem {
        Problem {
            kind: format!("https://bru.example/problems/{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.to_owned(),
            code: code.to_owned(),
            transfer_id: None,
            field: None,
            consent_status: None,
        }
    }

    /// The `application/problem+json` response, never cached; with
    /// `Bru-Transfer-Id` when there is a transfer id.
    pub fn response<B: From<Bytes>>(&self) -> Response<B> {
        // A struct of strings and integers always serialises.
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        let mut response = Response::new(B::from(Bytes::from(bytes)));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(id) = self
            .transfer_id
            .as_deref()
            .and_then(|id| HeaderValue::from_str(id).ok())
        {
            headers.insert("bru-transfer-id", id);
        }
        response
    }
}

/// Who failed: what the status class and the audit record need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The caller sent something Bru refuses (4xx).
    Caller,
    /// The provider failed (502/504).
    Provider,
    /// Bru itself could not do its part (503).
    Bru,
}

/// Every way a call through Bru can end without the provider's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Auth(AuthError),
    Denied(DenyCode),
    UnknownDataset,
    MalformedRequest(&'static str),
    RequestTooLarge,
    HeadersTooLarge,
    BodyTimeout,
    RateLimited { retry_after_s: u64 },
    UpstreamError(String),
    UpstreamTimeout,
    AuditUnavailable,
}

impl Failure {
    pub fn party(&self) -> Party {
        match self {
            Failure::UpstreamError(_) | Failure::UpstreamTimeout => Party::Provider,
            Failure::AuditUnavailable => Party::Bru,
            _ => Party::Caller,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Failure::Auth(_) => StatusCode::UNAUTHORIZED,
            Failure::Denied(code) => match code {
                DenyCode::PurposeRequired | DenyCode::SubjectMissing | DenyCode::InvalidSubject => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::FORBIDDEN,
            },
            Failure::UnknownDataset => StatusCode::NOT_FOUND,
            Failure::MalformedRequest(_) => StatusCode::BAD_REQUEST,
            Failure::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Failure::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Failure::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Failure::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Failure::UpstreamError(_) => StatusCode::BAD_GATEWAY,
            Failure::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Failure::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable problem code of SPEC section 3; also the audit record's `code`.
    pub fn code(&self) -> &'static str {
        match self {
            Failure::Auth(e) => e.code(),
            Failure::Denied(code) => code.as_str(),
            Failure::UnknownDataset => "unknown_dataset",
            Failure::MalformedRequest(_) => "malformed_request",
            Failure::RequestTooLarge => "request_too_large",
            Failure::HeadersTooLarge => "headers_too_large",
            Failure::BodyTimeout => "body_timeout",
            Failure::RateLimited { .. } => "rate_limited",
            Failure::UpstreamError(_) => "upstream_error",
            Failure::UpstreamTimeout => "upstream_timeout",
            Failure::AuditUnavailable => "audit_unavailable",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Failure::Auth(_) => "The access token was not accepted",
            Failure::Denied(code) => match code {
                DenyCode::PurposeRequired => "A purpose is required",
                DenyCode::SubjectMissing => "The request does not say whom it is about",
                DenyCode::InvalidSubject => "The subject is not a valid person number",
                DenyCode::InsufficientScope => "The token lacks the dataset's scope",
                DenyCode::ConsumerNotAllowed => "This organisation may not use this dataset",
                DenyCode::PurposeNotAllowed => "This purpose is not allowed for this dataset",
                DenyCode::ConsentRequired => "This dataset needs the citizen's consent",
                DenyCode::ConsentNotFound => "No such consent",
                DenyCode::ConsentRevoked => "The consent has been revoked",
                DenyCode::ConsentExpired => "The consent has expired",
                DenyCode::ConsentExhausted => "The consent has been used up",
                DenyCode::ConsentMismatch => "The consent does not cover this call",
                DenyCode::ConsentSubjectMismatch => "The consent is for another person",
            },
            Failure::UnknownDataset => "No such dataset",
            Failure::MalformedRequest(_) => "Malformed request",
            Failure::RequestTooLarge => "The request body is too large",
            Failure::HeadersTooLarge => "The request headers are too large",
            Failure::BodyTimeout => "The request body stopped arriving",
            Failure::RateLimited { .. } => "Too many calls",
            Failure::UpstreamError(_) => "The provider failed",
            Failure::UpstreamTimeout => "The provider did not answer in time",
            Failure::AuditUnavailable => "The transfer could not be recorded, so it was not made",
        }
    }

    /// A sentence for the caller. Never holds a token, a person number or a secret.
    fn detail(&self) -> String {
        match self {
            Failure::Auth(e) => e.to_string(),
            Failure::Denied(code) => match code {
                DenyCode::PurposeRequired => {
                    "Send the purpose of the call in the Bru-Purpose header.".into()
                }
                DenyCode::ConsentRequired => {
                    "Send the consent id in the Bru-Consent header.".into()
                }
                _ => format!("{}.", self.title()),
            },
            Failure::MalformedRequest(why) => (*why).to_owned(),
            Failure::UpstreamError(why) => {
                format!("The provider could not be reached or answered wrongly: {why}")
            }
            Failure::RateLimited { retry_after_s } => format!("Try again in {retry_after_s} s."),
            _ => format!("{}.", self.title()),
        }
    }

    /// The problem details object of this failure.
    pub fn problem(&self, transfer_id: Option<&str>) -> Problem {
        Problem {
            transfer_id: transfer_id.map(str::to_owned),
            ..Problem::new(self.status(), self.code(), self.title(), &self.detail())
        }
    }

    /// The `application/problem+json` response (RFC 9457).
    pub fn response<B: From<Bytes>>(&self, transfer_id: Option<&str>) -> Response<B> {
        let mut response = self.problem(transfer_id).response();
        let headers = response.headers_mut();
        match self {
            Failure::Auth(e) => {
                let challenge = format!("Bearer realm=\"bru\", error=\"{}\"", e.bearer_error());
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            Failure::Denied(DenyCode::InsufficientScope) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"bru\", error=\"insufficient_scope\""),
                );
            }
            Failure::RateLimited { retry_after_s } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            Failure::AuditUnavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

impl Failure {
    /// A call to the provider that did not bring back a response head.
    pub fn from_upstream(e: &connectors::UpstreamError) -> Failure {
        use connectors::UpstreamError as E;
        match e {
            E::RequestTooLarge => Failure::RequestTooLarge,
            E::InvalidRequest(why) => Failure::MalformedRequest(why),
            _ if e.is_caller_fault() => {
                Failure::MalformedRequest("the request body could not be read")
            }
            _ if e.is_timeout() => Failure::UpstreamTimeout,
            // An open circuit breaker, a full concurrency limit and a refused
            // token grant all answer for a provider that cannot be used now:
            // 502 like any provider fault, the reason in the detail.
            _ => Failure::UpstreamError(e.to_string()),
        }
    }
}

impl From<AuthError> for Failure {
    fn from(e: AuthError) -> Self {
        Failure::Auth(e)
    }
}

impl From<DenyCode> for Failure {
    fn from(code: DenyCode) -> Self {
        Failure::Denied(code)
    }
}
