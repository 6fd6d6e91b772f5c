//! The OpenAPI 3.1 document of Bru's JSON APIs, served at `/openapi.json`:
//! the consent requester API, the citizen API, the audit API, the catalog
//! and the JWKS. It is generated from the code: each handler's
//! `#[utoipa::path]` says its path, method, parameters, security and every
//! status it answers with, and `utoipa_axum` registers the route from that
//! same attribute, so a route and its documentation cannot differ. The
//! schemas are the types the handlers serialise (`ToSchema`). A unit test
//! compares the document with the routes the router holds.
//!
//! The data plane (`/data/…`) is not in it: its requests and responses are
//! the providers' own.

use std::sync::{Arc, LazyLock};

use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};
use utoipa_axum::router::OpenApiRouter;

use crate::app::App;
use crate::problem::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Bru",
        description = "Bru's JSON APIs beside the data plane: the consent broker's requester \
            API (SPEC section 4), the citizen's consents and access log, the audit API and \
            transparency log proofs (section 5), the dataset catalog and Bru's keys. Errors are \
            `application/problem+json` (RFC 9457) with a stable `code`.",
        license(name = "EUPL-1.2", identifier = "EUPL-1.2"),
    ),
    modifiers(&SecuritySchemes),
    components(
        schemas(Problem),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            PayloadTooLarge,
            StoreUnavailable,
            AuditUnavailable
        )
    ),
    tags(
        (name = "consent", description = "The consent broker's requester API: ask a citizen for consent, follow the request. Maskinporten token with scope `bru:consent`."),
        (name = "citizen", description = "A citizen's consents and access log, for Bru's portal and other front ends (Min side, helsenorge). ID-porten token."),
        (name = "audit", description = "The audit log and its transparency log: records, signed checkpoints, proofs. Maskinporten token with scope `bru:audit`; every use is itself recorded."),
        (name = "catalog", description = "What Bru shares, on which legal basis, for which purposes. Public."),
        (name = "meta", description = "Bru's public keys and this document. Public."),
    )
)]
struct ApiDoc;

/// The document, once; `/openapi.json` serves it.
static JSON: LazyLock<String> = LazyLock::new(|| {
    let (_, doc) = api();
    let mut doc = match serde_json::to_value(doc) {
        Ok(doc) => doc,
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document does not serialise");
            return String::from("{}");
        }
    };
    // The audit API reads an empty filter (`?since=&until=`, as SPEC section 5
    // writes it) as no filter; utoipa has no `allowEmptyValue` to say so.
    allow_empty_values(
        &mut doc,
        "/audit/v1/records",
        &crate::audit_api::RECORDS_PARAMS,
    );
    // The snooping findings read their filters the same way (schemathesis
    // found `since=` answered 200 while the document said date-time).
    allow_empty_values(
        &mut doc,
        "/audit/v1/alerts",
        &crate::audit_api::ALERTS_PARAMS,
    );
    crate::representation::document_on_behalf_of(&mut doc);
    doc.to_string()
});

/// Marks the named query parameters of `GET path` `allowEmptyValue`.
fn allow_empty_values(doc: &mut serde_json::Value, path: &str, names: &[&str]) {
    let parameters = doc
        .pointer_mut(&format!(
            "/paths/{}/get/parameters",
            path.replace('/', "~1")
        ))
        .and_then(serde_json::Value::as_array_mut);
    for parameter in parameters.into_iter().flatten() {
        let named = parameter["name"]
            .as_str()
            .is_some_and(|n| names.contains(&n));
        if let (true, Some(p)) = (
            named && parameter["in"] == "query",
            parameter.as_object_mut(),
        ) {
            p.insert("allowEmptyValue".into(), serde_json::Value::Bool(true));
        }
    }
}

/// The documented routes of the public listener and their document.
pub fn api() -> (Router<Arc<App>>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::routes::documented())
        .merge(crate::consent_api::routes())
        .merge(crate::citizen_api::routes())
        .merge(crate::citizen_export::routes())
        .merge(crate::notify::routes())
        .merge(crate::audit_api::routes())
        .merge(crate::catalog::routes())
        .split_for_parts()
}

/// The document as JSON.
pub fn json() -> &'static str {
    &JSON
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "maskinporten_consent",
            bearer(
                "A Maskinporten-style access token (RS256 by default) from an issuer in \
                 Bru's config, with scope `bru:consent`, for an organisation whose consumer \
                 rule in the policy says `consent_requester`. The requester is the token's \
                 `consumer`; a `supplier` acts for it where the policy lists the supplier.",
            ),
        );
        components.add_security_scheme(
            "maskinporten_audit",
            bearer(
                "A Maskinporten-style access token with scope `bru:audit`, for an \
                 organisation whose consumer rule in the policy says `audit_reader` \
                 (a supplier acting for it only where the rule names it in `audit_suppliers`).",
            ),
        );
        components.add_security_scheme(
            "idporten",
            bearer(
                "An ID-porten-style access token: `pid` is the citizen, `acr` at least \
                 `idporten-loa-substantial`.",
            ),
        );
        components.add_security_scheme(
            "portal_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                portal::session::SESSION_COOKIE,
                "The citizen portal's session (after logging in at `/logg-inn`); used \
                 only when no `Authorization` header is sent.",
            ))),
        );
    }
}

// ---- the problem responses the APIs share ---------------------------------

/// The request is malformed: `malformed_request` (`field` names the member
/// or parameter at fault, where the API knows it), `invalid_subject` (not a
/// valid person number).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)] // a response only
pub struct BadRequest(Problem);

/// The token was not accepted: `missing_token`, `invalid_token`,
/// `token_expired`, `untrusted_issuer`, `wrong_audience`.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"bru\", error=\"…\"` (RFC 6750)"))
)]
#[allow(dead_code)] // a response only
pub struct Unauthorized(Problem);

/// Refused by policy: `insufficient_scope` (the token lacks the API's
/// scope), `consumer_not_allowed` (the organisation, or the supplier acting
/// for it, may not use this API).
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "With `insufficient_scope`: `Bearer realm=\"bru\", error=\"insufficient_scope\"`"))
)]
#[allow(dead_code)] // a response only
pub struct Forbidden(Problem);

/// `not_found`: there is no such thing for this caller (another
/// organisation's or person's is answered the same way).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)] // a response only
pub struct NotFound(Problem);

/// The consent's state does not allow this: `invalid_transition`, or
/// `consent_not_granted` for the receipt of a consent never granted;
/// `consent_status` says the state.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)] // a response only
pub struct Conflict(Problem);

/// `request_too_large`: the body is larger than 64 KiB.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)] // a response only
pub struct PayloadTooLarge(Problem);

/// `store_unavailable`: Bru could not read or write its store; try again.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u32, description = "Seconds"))
)]
#[allow(dead_code)] // a response only
pub struct StoreUnavailable(Problem);

/// `audit_unavailable`: the use could not be recorded, so it was not
/// answered, or the log could not be read; try again.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u32, description = "Seconds"))
)]
#[allow(dead_code)] // a response only
pub struct AuditUnavailable(Problem);

#[cfg(test)]
mod tests;
