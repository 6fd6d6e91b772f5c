//! The one place where a refusal or a fault becomes an HTTP status, a problem
//! code and an audit code, so that the three can never disagree.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use policy::DenyCode;

use crate::auth::AuthError;

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

    /// The `application/problem+json` response (RFC 9457).
    pub fn response<B: From<Bytes>>(&self, transfer_id: Option<&str>) -> Response<B> {
        let status = self.status();
        let body = serde_json::json!({
            "type": format!("https://bru.example/problems/{}", self.code()),
            "title": self.title(),
            "status": status.as_u16(),
            "detail": self.detail(),
            "code": self.code(),
            "transfer_id": transfer_id,
        });
        let bytes = Bytes::from(body.to_string());
        let mut response = Response::new(B::from(bytes));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(id) = transfer_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            headers.insert("bru-transfer-id", id);
        }
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
