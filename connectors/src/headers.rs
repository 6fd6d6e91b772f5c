//! Header hygiene between caller and provider (SPEC section 3, RFC 9110 §7.6.1).
//!
//! A caller must not be able to hand the provider anything Bru vouches for
//! (`Bru-*`), its own credentials, or connection-level headers; a provider
//! must not be able to set cookies on Bru's origin or speak for Bru.

use http::header::{self, HeaderMap, HeaderName};

/// The transfer id Bru gives every call (request to the provider, response to the caller).
pub const BRU_TRANSFER_ID: HeaderName = HeaderName::from_static("bru-transfer-id");
/// The calling organisation, `0192:{orgnr}`.
pub const BRU_CONSUMER: HeaderName = HeaderName::from_static("bru-consumer");
/// The purpose the call is made for.
pub const BRU_PURPOSE: HeaderName = HeaderName::from_static("bru-purpose");
/// `consent` or `statutory`.
pub const BRU_LEGAL_BASIS: HeaderName = HeaderName::from_static("bru-legal-basis");
/// The JWT Bru signs for each forwarded call.
pub const BRU_ASSERTION: HeaderName = HeaderName::from_static("bru-assertion");
/// The caller's consent id; never forwarded.
pub const BRU_CONSENT: HeaderName = HeaderName::from_static("bru-consent");
/// W3C Trace Context; passes through unchanged.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy `Keep-Alive` and
/// `Proxy-Connection`): they describe one connection, not the message.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removed from every request besides the hop-by-hop headers.
const REQUEST_STRIP: [HeaderName; 10] = [
    // The caller's credentials are for Bru, never for the provider.
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    // The client sets Host from the provider's URL.
    header::HOST,
    // The caller's idea of the client address is not to be trusted.
    header::FORWARDED,
    HeaderName::from_static("x-real-ip"),
    // A method override would let a GET that policy allowed become a DELETE.
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-method-override"),
    HeaderName::from_static("x-http-method"),
    // Bru already answered any `100-continue` towards the caller.
    header::EXPECT,
];

/// Removed from every response besides the hop-by-hop headers.
const RESPONSE_STRIP: [HeaderName; 4] = [
    // A provider must not set cookies on Bru's origin.
    header::SET_COOKIE,
    HeaderName::from_static("set-cookie2"),
    // Hop-by-hop in RFC 7230's list: it challenges the connection's proxy.
    header::PROXY_AUTHENTICATE,
    // It would advertise the provider's endpoints as alternatives for Bru's origin.
    header::ALT_SVC,
];

/// Removes from an inbound request everything that must not reach the provider:
/// the caller's credentials (`Authorization`, `Proxy-Authorization`, `Cookie`),
/// every `Bru-*` header (`Bru-Consent` included, and forged `Bru-Assertion`s),
/// method overrides, hop-by-hop headers and whatever `Connection` names,
/// `Host`, `Expect`, and `Forwarded`/`X-Forwarded-*`/`X-Real-IP`.
///
/// `traceparent`, `tracestate` and the end-to-end headers (`Content-Type`,
/// `Content-Length`, `Accept`, …) stay.
pub fn clean_request_headers(headers: &mut HeaderMap) {
    remove_connection_named(headers);
    for name in HOP_BY_HOP.iter().chain(REQUEST_STRIP.iter()) {
        headers.remove(name);
    }
    remove_prefixed(headers, &["bru-", "x-forwarded-"]);
}

/// Removes from a provider's response the hop-by-hop headers (and whatever
/// `Connection` names), `Set-Cookie`, `Proxy-Authenticate`, `Alt-Svc` and any
/// `Bru-*` header: only Bru speaks for Bru, and the gateway adds
/// `Bru-Transfer-Id` itself.
pub fn clean_response_headers(headers: &mut HeaderMap) {
    remove_connection_named(headers);
    for name in HOP_BY_HOP.iter().chain(RESPONSE_STRIP.iter()) {
        headers.remove(name);
    }
    remove_prefixed(headers, &["bru-"]);
}

/// Whether a provider credential may use this header name: not one that the
/// request hygiene strips, other than the credential headers themselves, nor
/// one that frames the body or carries the trace.
pub(crate) fn is_reserved_request_header(name: &HeaderName) -> bool {
    if name == header::AUTHORIZATION || name == header::COOKIE {
        return false;
    }
    HOP_BY_HOP.contains(name)
        || REQUEST_STRIP.contains(name)
        || name == header::CONTENT_LENGTH
        || name == TRACEPARENT
        || name == TRACESTATE
        || name.as_str().starts_with("bru-")
        || name.as_str().starts_with("x-forwarded-")
}

/// Removes the headers a `Connection` header declares hop-by-hop.
fn remove_connection_named(headers: &mut HeaderMap) {
    // Collected first because the map cannot change while its values are borrowed;
    // the Vec only allocates when a token names a real header.
    let mut named: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for token in value.split(',') {
            let token = token.trim();
            // The usual tokens are options, not header names.
            if token.is_empty()
                || token.eq_ignore_ascii_case("close")
                || token.eq_ignore_ascii_case("keep-alive")
            {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                if headers.contains_key(&name) {
                    named.push(name);
                }
            }
        }
    }
    for name in named {
        headers.remove(name);
    }
}

/// Removes every header whose (lower-case) name starts with one of `prefixes`.
fn remove_prefixed(headers: &mut HeaderMap, prefixes: &[&str]) {
    let matches = |name: &HeaderName| prefixes.iter().any(|p| name.as_str().starts_with(p));
    if !headers.keys().any(matches) {
        return;
    }
    let doomed: Vec<HeaderName> = headers.keys().filter(|n| matches(n)).cloned().collect();
    for name in doomed {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests;
