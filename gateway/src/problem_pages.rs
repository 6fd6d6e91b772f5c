//! `GET /problems/{code}`: the page a problem's `type` URI names, one per
//! stable code (SPEC section 3 and the APIs' own codes), so that a developer
//! who follows the link learns what the code means and what to do.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// What each code means, when it happens and what to do (English).
/// `(code, status, meaning, what to do)`.
pub const PAGES: &[(&str, u16, &str, &str)] = &[
    ("purpose_required", 400, "The dataset holds personal data, and the call did not name its purpose.", "Send the purpose in the Bru-Purpose header, one of the purposes policy lets your organisation use for this dataset (the catalog at /catalog/v1/datasets lists each dataset's purposes)."),
    ("subject_missing", 400, "The call did not say whom it is about where the dataset expects the subject.", "Send the person number in the header, query parameter, path segment or JSON body field the dataset names (the detail of the problem says which)."),
    ("invalid_subject", 400, "The subject is not a valid fødselsnummer or D-nummer: wrong length, not digits, an impossible date or a failed control digit.", "Check the number for typing errors; a person number has 11 digits, the last two are control digits (modulus 11)."),
    ("malformed_request", 400, "The request could not be understood: a bad path, header, query, body or a member of a JSON request.", "Read the detail (and the field member, when present) and correct the request."),
    ("missing_token", 401, "No bearer token was sent.", "Get an access token from Maskinporten with the dataset's scope and send it as Authorization: Bearer <token>."),
    ("invalid_token", 401, "The token could not be verified: malformed, wrong signature, unknown key, algorithm not accepted or a claim missing.", "Get a fresh token from your Maskinporten client and send it unchanged."),
    ("token_expired", 401, "The token's exp has passed. Maskinporten tokens live for a few minutes.", "Ask your Maskinporten client for a new token (its token endpoint) and repeat the call."),
    ("untrusted_issuer", 401, "The token's issuer is not one Bru trusts.", "Use a token from the Maskinporten environment this Bru trusts."),
    ("wrong_audience", 401, "The token was issued for another resource server (its aud does not name Bru), or names no audience.", "Request the token with Bru's audience as the resource parameter."),
    ("insufficient_scope", 403, "The token lacks the scope the dataset requires.", "Request a token that carries the dataset's scope (the detail names it)."),
    ("consumer_not_allowed", 403, "Policy does not let this organisation (or this supplier acting for it) use the dataset.", "Ask the dataset's provider for access; it is granted in Bru's policy."),
    ("purpose_not_allowed", 403, "The purpose named in Bru-Purpose is not one this organisation may use the dataset for.", "Use one of the purposes policy allows you (the detail lists them when you may use the dataset)."),
    ("consent_required", 403, "The dataset is shared only with the citizen's consent, and the call named none.", "Send the id of a granted consent in the Bru-Consent header (create a consent request through /consent/v1/requests)."),
    ("consent_not_found", 403, "No consent has the id sent in Bru-Consent.", "Check the consent id; use the id Bru returned when the consent request was made."),
    ("consent_revoked", 403, "The citizen revoked the consent.", "Stop using this consent; ask the citizen for a new one if the need remains."),
    ("consent_paused", 403, "The citizen has paused the consent: it stays granted, but may not be used until the citizen resumes it.", "Stop calling under this consent; it works again once the citizen resumes it (from the portal or Min side)."),
    ("consent_expired", 403, "The consent's validity has ended.", "Ask the citizen for a new consent."),
    ("consent_exhausted", 403, "The consent has been used as many times as it allows.", "Ask the citizen for a new consent."),
    ("consent_frequency_exceeded", 429, "The consent allows only so many uses per day, week or month (its frequency), and this period's are spent. Periods are rolling: a use frees one period after it was made.", "Wait the number of seconds in Retry-After, then try again."),
    ("consent_mismatch", 403, "The consent was given for another organisation, dataset or purpose than this call's.", "Send the consent given for this dataset and purpose, to your organisation."),
    ("consent_subject_mismatch", 403, "The consent is for another person than the call's subject.", "Send the consent the subject of this call gave."),
    ("blocked_by_subject", 403, "The person the call is about has blocked the calling organisation or this dataset (SPEC 10), and the dataset's policy lets blocks apply (blockable).", "Do not call about this person; where the dataset allows break-glass and it is an emergency, send Bru-Break-Glass with the reason."),
    ("unknown_dataset", 404, "No dataset in policy has this provider and name.", "Check the path /data/{provider}/{dataset}/…; the catalog at /catalog/v1/datasets lists the datasets."),
    ("not_found", 404, "There is nothing at this path, or no such resource (consent, consent request, record).", "Check the path and the id."),
    ("method_not_allowed", 405, "The path exists but does not take this method.", "Use one of the methods the Allow header lists."),
    ("request_too_large", 413, "The request body is larger than Bru accepts.", "Send a smaller body."),
    ("headers_too_large", 431, "The request headers are too many or too large.", "Send fewer or smaller headers."),
    ("body_timeout", 408, "The request body stopped arriving: no part of it came within the body read timeout (60 s unless the operator set another).", "Send the whole body promptly after the headers; check the Content-Length you send."),
    ("rate_limited", 429, "Too many calls: the organisation's rate for this dataset, or too many failed attempts from one address.", "Wait the number of seconds in Retry-After, then try again."),
    ("upstream_error", 502, "The provider could not be reached or answered wrongly.", "Try again later; if it persists, contact the provider."),
    ("upstream_timeout", 504, "The provider did not answer in time.", "Try again later; if it persists, contact the provider."),
    ("audit_unavailable", 503, "Bru could not record the transfer, so it did not make it: Bru never forwards what it could not record.", "Try again shortly (Retry-After)."),
    ("store_unavailable", 503, "Bru could not read or write its store.", "Try again shortly (Retry-After)."),
    ("invalid_transition", 409, "The consent or consent request is not in a state that allows this change (e.g. revoking a revoked consent).", "Read its current status (the consent_status member) and act on that."),
    ("consent_not_granted", 409, "The consent is not granted, so there is nothing to do with it yet.", "Wait until the citizen has granted the consent."),
    ("signing_failed", 503, "Bru could not sign a consent receipt.", "Try again after Retry-After; if it persists, tell Bru's operators."),
    ("subject_not_permitted", 403, "The token is a pid-restricted Maskinporten token (its pid claim names one person), and the call is about another person.", "Get a token for the person this call is about; a pid-restricted token serves one person only."),
    ("system_user_not_authorized", 403, "The token is an Altinn system user's, and Altinn's decision point does not permit that system user to use this dataset (its Altinn resource) for its organisation.", "Ask the organisation to grant the system user the dataset's resource in Altinn, or use a system user that has it."),
    ("altinn_unavailable", 503, "Altinn's decision point could not be asked about a system user's call; Bru never allows what it could not ask about.", "Try again shortly (Retry-After)."),
    ("not_represented", 403, "Bru-On-Behalf-Of names no one the logged-in person may act for (a party from another family, an unknown id, or a person number).", "Use a party from GET /citizen/v1/represented; the answer is the same whatever the header held."),
    ("representation_not_allowed", 403, "The logged-in person represents this person, but the dataset's policy does not let that relation decide this consent (a young person's own voice from the policy's age, or a fullmakt without the dataset's role).", "The represented person decides this consent themself, or a representative with the role the dataset's policy names."),
    ("registry_unavailable", 503, "Bru could not ask the population registry whom the logged-in person may act for.", "Try again shortly (Retry-After)."),
    ("internal_error", 500, "Bru could not write its answer.", "Try again; if it persists, tell Bru's operators."),
];

/// The page of `code`, if it is a code of Bru's.
pub fn page(code: &str) -> Option<&'static (&'static str, u16, &'static str, &'static str)> {
    PAGES.iter().find(|p| p.0 == code)
}

/// `GET /problems/{code}`: a small HTML page, or 404 for a code Bru has not.
pub async fn problem_page(Path(code): Path<String>) -> Response {
    let Some((code, status, meaning, todo)) = page(&code) else {
        return crate::api_error::ApiError::NotFound("Bru has no problem code by that name.")
            .into_response();
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{code} – Bru</title></head><body><main>\
<h1><code>{code}</code></h1><p>HTTP status {status}.</p>\
<h2>What it means</h2><p>{meaning}</p><h2>What to do</h2><p>{todo}</p>\
<p>Every problem Bru answers with is <code>application/problem+json</code> (RFC 9457); \
its <code>detail</code> says more about the call, and <code>transfer_id</code> names \
the call in Bru's audit log.</p></main></body></html>\n"
    );
    let mut response = (StatusCode::OK, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_of_spec_section_3_has_a_page() {
        for code in [
            "purpose_required",
            "subject_missing",
            "invalid_subject",
            "malformed_request",
            "missing_token",
            "invalid_token",
            "token_expired",
            "untrusted_issuer",
            "wrong_audience",
            "insufficient_scope",
            "consumer_not_allowed",
            "purpose_not_allowed",
            "consent_required",
            "consent_not_found",
            "consent_revoked",
            "consent_paused",
            "consent_frequency_exceeded",
            "blocked_by_subject",
            "consent_expired",
            "consent_exhausted",
            "consent_mismatch",
            "consent_subject_mismatch",
            "unknown_dataset",
            "request_too_large",
            "headers_too_large",
            "body_timeout",
            "rate_limited",
            "upstream_error",
            "upstream_timeout",
            "audit_unavailable",
            "not_found",
            "store_unavailable",
            "invalid_transition",
            "consent_not_granted",
            "signing_failed",
            "internal_error",
        ] {
            assert!(page(code).is_some(), "{code} has no page");
        }
        assert!(page("no_such_code").is_none());
    }
}
