//! The one place where a refusal or a fault becomes an HTTP status, a problem
//! code and an audit code, so that the three can never disagree.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use policy::{DenyCode, SubjectLocation};
use serde::Serialize;

use crate::auth::AuthError;

/// Problem details (RFC 9457): the body of every refusal or fault Bru
/// answers with, as `application/problem+json`, on the data plane and the APIs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "https://bru.kommune.example/problems/missing_token",
    "title": "The access token was not accepted",
    "status": 401,
    "detail": "No bearer token was sent.",
    "code": "missing_token",
    "transfer_id": null
}))]
pub struct Problem {
    /// `{public_url}/problems/{code}`: a page on Bru saying what the code
    /// means and what to do.
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
    /// `not_found`, `method_not_allowed`, `store_unavailable`,
    /// `invalid_transition`, `consent_not_granted`, `signing_failed`,
    /// `internal_error`; see `api_error.rs`).
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
            kind: type_url(code),
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
        let mut bytes = serde_json::to_vec(self).unwrap_or_default();
        bytes.push(b'\n');
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
            headers.insert(connectors::BRU_TRANSFER_ID, id);
        }
        response
    }
}

/// Bru's public URL, set once at start (`public_url`), under which
/// `/problems/{code}` is served.
static PUBLIC_URL: OnceLock<String> = OnceLock::new();

/// Sets the base of problem `type` URIs; the first call wins (one Bru per process).
pub fn set_public_url(public_url: &str) {
    let _ = PUBLIC_URL.set(public_url.trim_end_matches('/').to_owned());
}

/// The `type` of problem `code`: its page on Bru. Before `set_public_url`
/// (unit tests) a relative reference, which RFC 9457 allows.
pub fn type_url(code: &str) -> String {
    match PUBLIC_URL.get() {
        Some(base) => format!("{base}/problems/{code}"),
        None => format!("/problems/{code}"),
    }
}

/// What Bru knows about a refused call that helps the caller fix it. Holds
/// nothing the caller sent (no person number, token or secret).
#[derive(Debug, Clone, Default)]
pub struct RefusalContext {
    /// Where the dataset expects its subject.
    pub subject_location: Option<SubjectLocation>,
    /// The scope the dataset requires.
    pub scope: Option<String>,
    /// The purposes the caller may use; only for a caller policy names on
    /// the dataset (a stranger does not learn them).
    pub allowed_purposes: Option<Vec<String>>,
    /// Token endpoints Bru knows of (the demo issuers it serves itself).
    pub token_endpoints: Vec<String>,
}

impl RefusalContext {
    /// What policy and config say about the call `record` describes that
    /// helps with `failure`: the consumer, supplier and dataset Bru already
    /// resolved (none before it authenticated the caller and found the
    /// dataset). Only what the failure's detail uses is looked up, so the
    /// refusals a flood is made of (no token, over a rate) cost nothing here.
    pub fn of(
        app: &crate::app::App,
        record: &consent_db::NewRecord,
        failure: &Failure,
    ) -> RefusalContext {
        match failure {
            Failure::Auth(crate::auth::AuthError::TokenExpired) => RefusalContext {
                token_endpoints: demo_token_endpoints(&app.config),
                ..RefusalContext::default()
            },
            Failure::Denied(_) => Self::of_dataset(app, record),
            _ => RefusalContext::default(),
        }
    }

    fn of_dataset(app: &crate::app::App, record: &consent_db::NewRecord) -> RefusalContext {
        let Some(dataset) = record
            .provider
            .as_deref()
            .zip(record.dataset.as_deref())
            .and_then(|(provider, id)| {
                let name = id.strip_prefix(provider)?.strip_prefix('/')?;
                app.policy.dataset(provider, name)
            })
        else {
            return RefusalContext::default();
        };
        let consumer = record
            .consumer
            .as_deref()
            .and_then(|c| policy::OrgNumber::parse_iso6523(c).ok());
        let supplier = match record.supplier.as_deref() {
            None => Ok(None),
            Some(s) => policy::OrgNumber::parse_iso6523(s).map(Some),
        };
        // Purposes are told only to a caller policy names on the dataset.
        let allowed_purposes = match (consumer, supplier) {
            (Some(consumer), Ok(supplier)) => {
                policy::allowed_purposes(&app.policy, &consumer, supplier.as_ref(), dataset)
                    .map(|purposes| purposes.into_iter().map(str::to_owned).collect())
            }
            _ => None,
        };
        RefusalContext {
            subject_location: dataset.subject.clone(),
            scope: Some(dataset.scope.clone()),
            allowed_purposes,
            token_endpoints: Vec::new(),
        }
    }
}

/// Token endpoints Bru knows of: only the issuers it serves itself (demo
/// mode) are known to have theirs at `{issuer}/token`.
fn demo_token_endpoints(config: &crate::config::Config) -> Vec<String> {
    let demo = format!("{}/demo/", config.public_url);
    config
        .issuers
        .iter()
        .filter(|i| i.kind == crate::config::IssuerKind::Maskinporten)
        .filter(|i| i.issuer.starts_with(&demo))
        .map(|i| format!("{}/token", i.issuer))
        .collect()
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
    RateLimited {
        retry_after_s: u64,
    },
    /// SPEC 10: the consent's uses in its period are spent; a use frees in
    /// `retry_after_s` (429 with `Retry-After`).
    ConsentFrequencyExceeded {
        retry_after_s: u64,
    },
    UpstreamError(String),
    UpstreamTimeout,
    AuditUnavailable,
    /// SPEC 9.2: pid-restricted tokens, system users, Altinn's decision point.
    Altinn(crate::altinn_pep::Refusal),
}

impl Failure {
    pub fn party(&self) -> Party {
        match self {
            Failure::UpstreamError(_) | Failure::UpstreamTimeout => Party::Provider,
            Failure::AuditUnavailable => Party::Bru,
            Failure::Altinn(r) if r.status().is_server_error() => Party::Bru,
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
                DenyCode::ConsentFrequencyExceeded => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::FORBIDDEN,
            },
            Failure::UnknownDataset => StatusCode::NOT_FOUND,
            Failure::MalformedRequest(_) => StatusCode::BAD_REQUEST,
            Failure::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Failure::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Failure::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Failure::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Failure::ConsentFrequencyExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Failure::UpstreamError(_) => StatusCode::BAD_GATEWAY,
            Failure::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Failure::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Failure::Altinn(r) => r.status(),
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
            Failure::ConsentFrequencyExceeded { .. } => "consent_frequency_exceeded",
            Failure::UpstreamError(_) => "upstream_error",
            Failure::UpstreamTimeout => "upstream_timeout",
            Failure::AuditUnavailable => "audit_unavailable",
            Failure::Altinn(r) => r.code(),
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
                DenyCode::ConsentPaused => "The consent is paused",
                DenyCode::ConsentExpired => "The consent has expired",
                DenyCode::ConsentExhausted => "The consent has been used up",
                DenyCode::ConsentFrequencyExceeded => {
                    "The consent's uses for this period are spent"
                }
                DenyCode::ConsentMismatch => "The consent does not cover this call",
                DenyCode::ConsentSubjectMismatch => "The consent is for another person",
                DenyCode::BlockedBySubject => "The person has blocked this",
            },
            Failure::UnknownDataset => "No such dataset",
            Failure::MalformedRequest(_) => "Malformed request",
            Failure::RequestTooLarge => "The request body is too large",
            Failure::HeadersTooLarge => "The request headers are too large",
            Failure::BodyTimeout => "The request body stopped arriving",
            Failure::RateLimited { .. } => "Too many calls",
            Failure::ConsentFrequencyExceeded { .. } => {
                "The consent's uses for this period are spent"
            }
            Failure::UpstreamError(_) => "The provider failed",
            Failure::UpstreamTimeout => "The provider did not answer in time",
            Failure::AuditUnavailable => "The transfer could not be recorded, so it was not made",
            Failure::Altinn(r) => r.title(),
        }
    }

    /// A sentence for the caller (never a token, a person number or a secret);
    /// the detail with what the call's context adds: where the subject goes,
    /// which scope or purposes, where a new token comes from.
    pub fn detail_in(&self, cx: &RefusalContext) -> String {
        let location = cx
            .subject_location
            .as_ref()
            .map(subject_location_words)
            .unwrap_or_else(|| "where the dataset expects it".to_owned());
        let purposes = || match &cx.allowed_purposes {
            Some(list) if !list.is_empty() => format!(
                " Your organisation may use this dataset for: {}.",
                list.join(", ")
            ),
            _ => String::new(),
        };
        match self {
            Failure::Auth(crate::auth::AuthError::TokenExpired) => {
                let renew = match cx.token_endpoints.as_slice() {
                    [] => "Ask your Maskinporten client for a new token".to_owned(),
                    [one] => format!("Get a new token from {one}"),
                    many => format!("Get a new token from one of {}", many.join(", ")),
                };
                format!("The token has expired. {renew} and repeat the call.")
            }
            Failure::Auth(crate::auth::AuthError::MissingToken) => {
                "No bearer token was sent. Send Authorization: Bearer <token>, a token from Maskinporten with the dataset's scope.".into()
            }
            Failure::Auth(crate::auth::AuthError::WrongAudience) => {
                "The token is meant for another audience (or names none). Request it with Bru's audience as the resource.".into()
            }
            Failure::Auth(crate::auth::AuthError::UntrustedIssuer) => {
                "The token's issuer is not trusted here. Use a token from the Maskinporten environment this Bru trusts.".into()
            }
            Failure::Auth(e) => format!("{e} Get a fresh token and send it unchanged."),
            Failure::Denied(code) => match code {
                DenyCode::PurposeRequired => format!(
                    "This dataset holds personal data: send the purpose of the call in the Bru-Purpose header.{}",
                    purposes()
                ),
                DenyCode::PurposeNotAllowed => format!(
                    "The purpose in Bru-Purpose is not allowed for this dataset and organisation.{}",
                    purposes()
                ),
                DenyCode::SubjectMissing => {
                    format!("Send the person number the call is about in {location}.")
                }
                DenyCode::InvalidSubject => format!(
                    "The person number in {location} is not valid: it must be 11 digits with a valid date and two matching control digits (modulus 11). Check it for typing errors."
                ),
                DenyCode::InsufficientScope => match &cx.scope {
                    Some(scope) => format!(
                        "The token lacks the scope {scope}. Request a token with that scope."
                    ),
                    None => "The token lacks the dataset's scope. Request a token with it.".into(),
                },
                DenyCode::ConsumerNotAllowed => "Policy does not let this organisation (or its supplier) use this dataset. Ask the dataset's provider for access.".into(),
                DenyCode::ConsentRequired => {
                    "This dataset needs the citizen's consent: send the consent id in the Bru-Consent header (consent requests are made through /consent/v1/requests).".into()
                }
                DenyCode::ConsentNotFound => {
                    "No consent has the id in Bru-Consent. Send the id Bru returned for the consent request.".into()
                }
                DenyCode::ConsentRevoked => {
                    "The citizen revoked this consent. Ask for a new consent if the need remains.".into()
                }
                DenyCode::ConsentPaused => {
                    "The citizen has paused this consent. It can be used again once the citizen resumes it.".into()
                }
                DenyCode::ConsentExpired => "This consent has expired. Ask the citizen for a new one.".into(),
                DenyCode::ConsentExhausted => {
                    "This consent has been used as many times as it allows. Ask the citizen for a new one.".into()
                }
                DenyCode::ConsentFrequencyExceeded => {
                    "The citizen allowed this consent only so many uses per period, and they are spent. Wait until a use frees.".into()
                }
                DenyCode::ConsentMismatch => {
                    "This consent was given for another organisation, dataset or purpose. Send the consent for this call's dataset and purpose.".into()
                }
                DenyCode::ConsentSubjectMismatch => {
                    "This consent is for another person than the call's subject. Send the consent the subject gave.".into()
                }
                DenyCode::BlockedBySubject => {
                    "The person this call is about has blocked your organisation or this dataset.".into()
                }
            },
            Failure::UnknownDataset => "No dataset has this provider and name. The catalog at /catalog/v1/datasets lists the datasets.".into(),
            Failure::MalformedRequest(why) => {
                let mut why = (*why).to_owned();
                if !why.ends_with('.') {
                    why.push('.');
                }
                why
            }
            Failure::RequestTooLarge => "The request body is larger than Bru accepts. Send a smaller body.".into(),
            Failure::HeadersTooLarge => "The request headers are too many or too large. Send fewer or smaller headers.".into(),
            Failure::BodyTimeout => "The request body stopped arriving before it was complete. Send the whole body promptly after the headers, as long as its Content-Length says.".into(),
            Failure::UpstreamError(why) => {
                format!("The provider could not be reached or answered wrongly: {why}. Try again later.")
            }
            Failure::UpstreamTimeout => "The provider did not answer in time. Try again later.".into(),
            Failure::RateLimited { retry_after_s } => format!("Too many calls. Try again in {retry_after_s} s."),
            Failure::ConsentFrequencyExceeded { retry_after_s } => format!("The citizen allowed this consent only so many uses per period, and they are spent. A use frees in {retry_after_s} s."),
            Failure::AuditUnavailable => "Bru could not record the transfer, so it did not make it. Try again shortly.".into(),
            Failure::Altinn(r) => r.detail().into(),
        }
    }

    /// The problem details object of this failure, without the call's context.
    #[cfg(test)]
    pub fn problem(&self, transfer_id: Option<&str>) -> Problem {
        self.problem_in(transfer_id, &RefusalContext::default())
    }

    pub(crate) fn problem_in(&self, transfer_id: Option<&str>, cx: &RefusalContext) -> Problem {
        Problem {
            transfer_id: transfer_id.map(str::to_owned),
            ..Problem::new(
                self.status(),
                self.code(),
                self.title(),
                &self.detail_in(cx),
            )
        }
    }

    /// The `application/problem+json` response (RFC 9457).
    pub fn response<B: From<Bytes>>(&self, transfer_id: Option<&str>) -> Response<B> {
        self.response_in(transfer_id, &RefusalContext::default())
    }

    /// The response, its detail helped by what Bru knows of the call.
    pub fn response_in<B: From<Bytes>>(
        &self,
        transfer_id: Option<&str>,
        cx: &RefusalContext,
    ) -> Response<B> {
        let mut response = self.problem_in(transfer_id, cx).response();
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
            Failure::RateLimited { retry_after_s }
            | Failure::ConsentFrequencyExceeded { retry_after_s } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            Failure::AuditUnavailable
            | Failure::Altinn(crate::altinn_pep::Refusal::DecisionPointUnavailable) => {
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

/// `the Nav-Personident header`, … in words for a caller.
fn subject_location_words(location: &SubjectLocation) -> String {
    match location {
        SubjectLocation::Header(h) => format!("the {h} header"),
        SubjectLocation::Query(q) => format!("the query parameter {q}"),
        // Segments count from 0 after /data/{provider}/{dataset}/.
        SubjectLocation::PathSegment(n) => format!(
            "path segment {} after /data/{{provider}}/{{dataset}}/",
            n + 1
        ),
        SubjectLocation::JsonBody(p) => format!("the JSON body field {p}"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthError;

    fn cx(purposes: Option<&[&str]>) -> RefusalContext {
        RefusalContext {
            subject_location: Some(SubjectLocation::Header("Nav-Personident".into())),
            scope: Some("k429:sosialtjeneste.read".into()),
            allowed_purposes: purposes.map(|p| p.iter().map(|s| s.to_string()).collect()),
            token_endpoints: vec![],
        }
    }

    #[test]
    fn every_data_plane_code_has_a_detail_beyond_its_title_and_a_page() {
        let mut failures: Vec<Failure> = vec![
            Failure::Auth(AuthError::MissingToken),
            Failure::Auth(AuthError::InvalidToken("the signature does not verify")),
            Failure::Auth(AuthError::TokenExpired),
            Failure::Auth(AuthError::UntrustedIssuer),
            Failure::Auth(AuthError::WrongAudience),
            Failure::UnknownDataset,
            Failure::MalformedRequest("the path has an empty segment"),
            Failure::RequestTooLarge,
            Failure::HeadersTooLarge,
            Failure::RateLimited { retry_after_s: 3 },
            Failure::ConsentFrequencyExceeded {
                retry_after_s: 3600,
            },
            Failure::UpstreamError("connection refused".into()),
            Failure::UpstreamTimeout,
            Failure::AuditUnavailable,
        ];
        for code in [
            DenyCode::PurposeRequired,
            DenyCode::SubjectMissing,
            DenyCode::InvalidSubject,
            DenyCode::InsufficientScope,
            DenyCode::ConsumerNotAllowed,
            DenyCode::PurposeNotAllowed,
            DenyCode::ConsentRequired,
            DenyCode::ConsentNotFound,
            DenyCode::ConsentRevoked,
            DenyCode::ConsentPaused,
            DenyCode::ConsentExpired,
            DenyCode::ConsentExhausted,
            DenyCode::ConsentFrequencyExceeded,
            DenyCode::ConsentMismatch,
            DenyCode::ConsentSubjectMismatch,
            DenyCode::BlockedBySubject,
        ] {
            failures.push(Failure::Denied(code));
        }
        for f in failures {
            let detail = f.detail_in(&cx(Some(&["a"])));
            assert_ne!(detail.trim_end_matches('.'), f.title(), "{}", f.code());
            assert!(detail.ends_with('.'), "{}: {detail}", f.code());
            assert!(
                crate::problem_pages::page(f.code()).is_some(),
                "{} has no page",
                f.code()
            );
        }
    }

    #[test]
    fn subject_details_name_the_location() {
        let mut c = cx(None);
        for (location, words) in [
            (
                SubjectLocation::Header("Nav-Personident".into()),
                "the Nav-Personident header",
            ),
            (
                SubjectLocation::Query("patient".into()),
                "the query parameter patient",
            ),
            (SubjectLocation::PathSegment(0), "path segment 1 after"),
            (
                SubjectLocation::JsonBody("/person/id".into()),
                "the JSON body field /person/id",
            ),
        ] {
            c.subject_location = Some(location);
            let d = Failure::Denied(DenyCode::SubjectMissing).detail_in(&c);
            assert!(d.contains(words), "{d}");
        }
        let d = Failure::Denied(DenyCode::InvalidSubject).detail_in(&cx(None));
        assert!(
            d.contains("control digits") && d.contains("Nav-Personident"),
            "{d}"
        );
    }

    #[test]
    fn purposes_only_for_a_caller_policy_names() {
        let allowed = cx(Some(&["sosialhjelp-saksbehandling", "tilsyn"]));
        for code in [DenyCode::PurposeRequired, DenyCode::PurposeNotAllowed] {
            let d = Failure::Denied(code).detail_in(&allowed);
            assert!(d.contains("sosialhjelp-saksbehandling, tilsyn"), "{d}");
            let d = Failure::Denied(code).detail_in(&cx(None));
            assert!(!d.contains("sosialhjelp"), "{d}");
            assert!(!d.contains("may use this dataset for"), "{d}");
        }
    }

    #[test]
    fn expiry_and_scope_say_what_to_do() {
        let d = Failure::Auth(AuthError::TokenExpired).detail_in(&cx(None));
        assert!(
            d.contains("Ask your Maskinporten client for a new token"),
            "{d}"
        );
        let mut c = cx(None);
        c.token_endpoints = vec!["https://localhost:8443/demo/maskinporten/token".into()];
        let d = Failure::Auth(AuthError::TokenExpired).detail_in(&c);
        assert!(
            d.contains("from https://localhost:8443/demo/maskinporten/token"),
            "{d}"
        );
        let d = Failure::Denied(DenyCode::InsufficientScope).detail_in(&cx(None));
        assert!(d.contains("k429:sosialtjeneste.read"), "{d}");
        let d = Failure::Denied(DenyCode::ConsentRequired).detail_in(&cx(None));
        assert!(d.contains("Bru-Consent"), "{d}");
    }

    #[test]
    fn problem_bodies_end_with_a_newline_and_type_is_the_page() {
        let response: Response<Bytes> = Failure::UnknownDataset.response(None);
        let body = response.body();
        assert_eq!(body.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        assert!(
            v["type"]
                .as_str()
                .unwrap_or_default()
                .ends_with("/problems/unknown_dataset"),
            "{v}"
        );
    }
}
