//! The one error type of Bru's JSON APIs (consent, citizen, audit, the
//! router's own 404 and 405): every handler returns `Result<_, ApiError>`,
//! and its one `IntoResponse` answers with the data plane's problem body
//! (`problem.rs::Problem`: `type` `{public_url}/problems/{code}`,
//! `application/problem+json`, `Cache-Control: no-store`). Refusals the
//! data plane has too (a token, policy, a malformed or too large request,
//! the log) are a `Failure` inside, so their statuses, codes and headers are
//! the data plane's. A cause is kept for the log, never put in the body.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use policy::DenyCode;

use crate::auth::AuthError;
use crate::json_api::FieldError;
use crate::problem::{Failure, Problem};

/// Why a store, a signer or a serialiser failed: for the log only.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Every way a use of a JSON API ends without its answer.
#[derive(Debug)]
pub enum ApiError {
    /// A refusal or fault the data plane has too, answered as it answers it.
    Failure(Failure),
    /// 400 `malformed_request`, naming the request member or query parameter.
    Field(FieldError),
    /// 404 `not_found`: nothing there for this caller (another's is answered
    /// as if it did not exist).
    NotFound(&'static str),
    /// 405 `method_not_allowed`: the path exists, the method does not
    /// (the router's; `Allow` is added by the router).
    MethodNotAllowed,
    /// 403 `consumer_not_allowed`: a supplier the policy does not name in
    /// `audit_suppliers` for the organisation it acts for.
    SupplierNotNamed,
    /// 409 `invalid_transition`: the consent's state does not allow the action.
    InvalidTransition {
        consent_status: String,
        detail: String,
    },
    /// 409 `consent_not_granted`: a receipt of a consent never granted.
    ConsentNotGranted { consent_status: String },
    /// 403 `not_represented`: `Bru-On-Behalf-Of` names no one I may act for
    /// (one answer whatever it held, so it tells nothing of who exists).
    NotRepresented,
    /// 403 `representation_not_allowed`: the dataset's policy does not let
    /// this relation decide; the reason (from `policy::represent`) as detail.
    RepresentationNotAllowed(String),
    /// 503 `registry_unavailable`: the registry of parental responsibility failed.
    RegistryUnavailable(Cause),
    /// 503 `store_unavailable`: the consent store failed; try again.
    StoreUnavailable(Cause),
    /// 503 `audit_unavailable`: the audit log could not be read.
    AuditUnreadable(Cause),
    /// 503 `signing_failed`: a receipt could not be signed.
    SigningFailed(Cause),
    /// 500 `internal_error`: Bru could not write its answer.
    Internal(Cause),
    /// Any of these, answered with the transfer id of the use's record.
    Recorded {
        error: Box<ApiError>,
        transfer_id: String,
    },
}

const SUPPLIER_NOT_NAMED: &str = "A supplier acting for an organisation reads the audit API \
     only where that organisation's consumer rule in the policy names it in audit_suppliers; \
     this one does not. The organisation's own token (without supplier) may read it.";

impl ApiError {
    /// The store failed (`store_unavailable`).
    pub fn store(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::StoreUnavailable(Box::new(e))
    }

    /// The audit log could not be read (`audit_unavailable`).
    pub fn audit_log(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::AuditUnreadable(Box::new(e))
    }

    /// This error, answered with `transfer_id` (body and `Bru-Transfer-Id`).
    pub fn recorded(self, transfer_id: &str) -> ApiError {
        match self {
            ApiError::Recorded { error, .. } => ApiError::Recorded {
                error,
                transfer_id: transfer_id.to_owned(),
            },
            error => ApiError::Recorded {
                error: Box::new(error),
                transfer_id: transfer_id.to_owned(),
            },
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Failure(f) => f.status(),
            ApiError::Field(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::SupplierNotNamed
            | ApiError::NotRepresented
            | ApiError::RepresentationNotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::InvalidTransition { .. } | ApiError::ConsentNotGranted { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::StoreUnavailable(_)
            | ApiError::RegistryUnavailable(_)
            | ApiError::AuditUnreadable(_)
            | ApiError::SigningFailed(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Recorded { error, .. } => error.status(),
        }
    }

    /// The stable problem code (SPEC section 3, and the APIs' own codes);
    /// also the `audit_read` record's `code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Failure(f) => f.code(),
            ApiError::Field(_) => "malformed_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::SupplierNotNamed => "consumer_not_allowed",
            ApiError::InvalidTransition { .. } => "invalid_transition",
            ApiError::ConsentNotGranted { .. } => "consent_not_granted",
            ApiError::NotRepresented => "not_represented",
            ApiError::RepresentationNotAllowed(_) => "representation_not_allowed",
            ApiError::RegistryUnavailable(_) => "registry_unavailable",
            ApiError::StoreUnavailable(_) => "store_unavailable",
            ApiError::AuditUnreadable(_) => "audit_unavailable",
            ApiError::SigningFailed(_) => "signing_failed",
            ApiError::Internal(_) => "internal_error",
            ApiError::Recorded { error, .. } => error.code(),
        }
    }

    /// The cause, if any, for the log.
    fn cause(&self) -> Option<&Cause> {
        match self {
            ApiError::StoreUnavailable(c)
            | ApiError::RegistryUnavailable(c)
            | ApiError::AuditUnreadable(c)
            | ApiError::SigningFailed(c)
            | ApiError::Internal(c) => Some(c),
            ApiError::Recorded { error, .. } => error.cause(),
            _ => None,
        }
    }

    /// The problem body (not for `Failure`, which builds its own).
    fn problem(&self) -> Problem {
        let new =
            |title: &str, detail: &str| Problem::new(self.status(), self.code(), title, detail);
        match self {
            ApiError::Field(e) => Problem {
                field: Some(e.field.clone()),
                ..new("Malformed request", &format!("{}: {}", e.field, e.message))
            },
            ApiError::NotFound(detail) => new("Not found", detail),
            ApiError::MethodNotAllowed => new(
                "Method not allowed",
                "This path does not take this method; the Allow header lists the ones it takes.",
            ),
            ApiError::SupplierNotNamed => new(
                "This supplier may not read the audit log",
                SUPPLIER_NOT_NAMED,
            ),
            ApiError::InvalidTransition {
                consent_status,
                detail,
            } => Problem {
                consent_status: Some(consent_status.clone()),
                ..new("The consent is not in a state that allows this", detail)
            },
            ApiError::ConsentNotGranted { consent_status } => Problem {
                consent_status: Some(consent_status.clone()),
                ..new(
                    "This consent was never granted",
                    "A receipt is issued for a consent you have granted.",
                )
            },
            ApiError::NotRepresented => new(
                "You cannot act for this party",
                "Bru-On-Behalf-Of names no one you may act for. GET /citizen/v1/represented lists whom you may represent.",
            ),
            ApiError::RepresentationNotAllowed(reason) => new(
                "You cannot decide this consent for the person you represent",
                reason,
            ),
            ApiError::RegistryUnavailable(_) => new(
                "The registry is unavailable",
                "Bru could not ask the population registry whom you may act for. Try again shortly.",
            ),
            ApiError::StoreUnavailable(_) => new(
                "Bru's store is unavailable",
                "Bru could not read or write its store. Try again shortly.",
            ),
            ApiError::AuditUnreadable(_) => {
                Failure::AuditUnavailable.problem_in(None, &Default::default())
            }
            ApiError::SigningFailed(_) => {
                new("The receipt could not be signed", "Try again shortly.")
            }
            ApiError::Internal(_) => new("Internal error", "The answer could not be written."),
            ApiError::Failure(f) => f.problem_in(None, &Default::default()),
            ApiError::Recorded { error, .. } => error.problem(),
        }
    }

    /// The `application/problem+json` answer; its cause goes to the log.
    pub fn response(&self, transfer_id: Option<&str>) -> Response {
        if let Some(cause) = self.cause() {
            tracing::error!(code = self.code(), error = %Chain(cause.as_ref()), "an API call failed");
        }
        match self {
            ApiError::Recorded { error, transfer_id } => error.response(Some(transfer_id)),
            ApiError::Failure(f) => f.response(transfer_id),
            ApiError::AuditUnreadable(_) => Failure::AuditUnavailable.response(transfer_id),
            _ => {
                let mut response: Response = Problem {
                    transfer_id: transfer_id.map(str::to_owned),
                    ..self.problem()
                }
                .response();
                if self.status() == StatusCode::SERVICE_UNAVAILABLE {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                response
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.response(None)
    }
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> Self {
        ApiError::Failure(f)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Failure(Failure::Auth(e))
    }
}

impl From<DenyCode> for ApiError {
    fn from(code: DenyCode) -> Self {
        ApiError::Failure(Failure::Denied(code))
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Field(e)
    }
}

impl From<policy::ConsentRequestError> for ApiError {
    fn from(e: policy::ConsentRequestError) -> Self {
        ApiError::Field(e.into())
    }
}

/// The consent store failed: `store_unavailable` (the audit API maps its
/// store's failures to `audit_unavailable` explicitly, with `audit_log`).
impl From<consent_db::StoreError> for ApiError {
    fn from(e: consent_db::StoreError) -> Self {
        ApiError::store(e)
    }
}

/// An error and its sources, `outer: inner: …`, for the log.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

/// The router's answer to a path it does not have.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("There is nothing at this path.")
}

/// The router's answer to a method a path does not take: its bare 405
/// becomes the problem, `Allow` kept. (A middleware, because
/// `method_not_allowed_fallback` does not reach routes under a layer.)
pub async fn method_not_allowed(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let mut problem = ApiError::MethodNotAllowed.into_response();
    if let Some(allow) = response.headers().get(header::ALLOW) {
        problem.headers_mut().insert(header::ALLOW, allow.clone());
    }
    problem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_code_has_a_page_and_the_problem_media_type() {
        let errors = vec![
            ApiError::Field(FieldError::new("limit", "must be between 1 and 500")),
            ApiError::NotFound("nothing"),
            ApiError::MethodNotAllowed,
            ApiError::SupplierNotNamed,
            ApiError::NotRepresented,
            ApiError::RepresentationNotAllowed("a parent decides health data until 16".into()),
            ApiError::RegistryUnavailable(Box::new(std::io::Error::other("registry"))),
            ApiError::InvalidTransition {
                consent_status: "revoked".into(),
                detail: "A revoked consent cannot be revoked.".into(),
            },
            ApiError::ConsentNotGranted {
                consent_status: "pending".into(),
            },
            ApiError::store(std::io::Error::other("disk")),
            ApiError::audit_log(std::io::Error::other("disk")),
            ApiError::SigningFailed(Box::new(std::io::Error::other("key"))),
            ApiError::Internal(Box::new(std::io::Error::other("serde"))),
            ApiError::Failure(Failure::RequestTooLarge),
            ApiError::from(AuthError::MissingToken),
        ];
        for e in errors {
            let code = e.code();
            let status = e.status();
            assert!(
                crate::problem_pages::page(code).is_some(),
                "{code} has no page"
            );
            let response = e.response(None);
            assert_eq!(response.status(), status, "{code}");
            assert_eq!(
                response.headers().get(header::CONTENT_TYPE),
                Some(&HeaderValue::from_static("application/problem+json")),
                "{code}"
            );
            assert_eq!(
                response.headers().get(header::CACHE_CONTROL),
                Some(&HeaderValue::from_static("no-store")),
                "{code}"
            );
            if status == StatusCode::SERVICE_UNAVAILABLE {
                assert!(
                    response.headers().contains_key(header::RETRY_AFTER),
                    "{code}"
                );
            }
        }
    }

    #[test]
    fn a_cause_never_reaches_the_body() {
        let e = ApiError::store(std::io::Error::other("secret-db-host:5432 refused"));
        let problem = e.problem();
        let text = serde_json::to_string(&problem).unwrap_or_default();
        assert!(!text.contains("secret-db-host"), "{text}");
        assert_eq!(problem.code, "store_unavailable");
        assert!(problem.kind.ends_with("/problems/store_unavailable"));
    }

    #[test]
    fn a_recorded_error_carries_its_transfer_id() {
        let e = ApiError::NotFound("nothing").recorded("0190-abc");
        assert_eq!(e.code(), "not_found");
        let response = e.response(None);
        assert_eq!(
            response.headers().get("bru-transfer-id"),
            Some(&HeaderValue::from_static("0190-abc"))
        );
    }

    #[test]
    fn the_chain_names_every_source() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(Chain(&e).to_string(), "outer: inner");
    }
}

#[cfg(test)]
mod router_tests {
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_bare_405_becomes_the_problem() {
        let router: axum::Router<std::sync::Arc<String>> =
            axum::Router::new().route("/x", get(|| async { "x" }));
        let router = router
            .with_state(std::sync::Arc::new(String::new()))
            .merge(axum::Router::new().route("/y", get(|| async { "y" })))
            .fallback(super::not_found)
            .layer(axum::middleware::map_response(super::method_not_allowed));
        let req = http::Request::builder()
            .method("PUT")
            .uri("/x")
            .body(axum::body::Body::empty())
            .unwrap_or_default();
        let response = router.oneshot(req).await.unwrap_or_else(|e| match e {});
        assert_eq!(response.status(), http::StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            response.headers().get(http::header::CONTENT_TYPE),
            Some(&http::HeaderValue::from_static("application/problem+json"))
        );
        assert!(response.headers().contains_key(http::header::ALLOW));
    }
}
