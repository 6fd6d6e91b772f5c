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
/// W3C Trace Context; passes through when valid, else both are dropped.
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
/// A valid `traceparent` (with its `tracestate`) and the end-to-end headers
/// (`Content-Type`, `Content-Length`, `Accept`, …) stay; an invalid or
/// repeated `traceparent` is dropped with its `tracestate` (W3C Trace
/// Context §3.2: a vendor that cannot parse it must not pass it on).
pub fn clean_request_headers(headers: &mut HeaderMap) {
    remove_connection_named(headers);
    remove_where(headers, |name| {
        HOP_BY_HOP.contains(name)
            || REQUEST_STRIP.contains(name)
            || name.as_str().starts_with("bru-")
            || name.as_str().starts_with("x-forwarded-")
    });
    clean_trace_context(headers);
}

/// Removes every header `doomed` picks, in one pass over the headers the
/// message has. A call carries a handful; looking up each listed name
/// instead hashed 28 names a call (request and response) whether present or
/// not. With the transfer ids' change, the plain-proxy rung fell 1.2–1.6 µs
/// a call (bench/README.md, "#21, session 9").
fn remove_where(headers: &mut HeaderMap, doomed: impl Fn(&HeaderName) -> bool) {
    // Collected first: the map cannot change while its keys are borrowed.
    // An empty collect does not allocate.
    let names: Vec<HeaderName> = headers.keys().filter(|n| doomed(n)).cloned().collect();
    for name in names {
        headers.remove(name);
    }
}

/// Keeps `traceparent`/`tracestate` only when there is exactly one valid
/// `traceparent`; Bru does not start traces of its own, so none is made up.
fn clean_trace_context(headers: &mut HeaderMap) {
    // Most calls carry no trace: a pass over the names, no lookups.
    if !headers.keys().any(|n| n == TRACEPARENT || n == TRACESTATE) {
        return;
    }
    let mut values = headers.get_all(TRACEPARENT).iter();
    let valid = match (values.next(), values.next()) {
        (Some(one), None) => one.to_str().is_ok_and(is_valid_traceparent),
        _ => false,
    };
    if !valid {
        headers.remove(TRACEPARENT);
        headers.remove(TRACESTATE);
    }
}

/// W3C Trace Context `traceparent`: `{version}-{trace-id}-{parent-id}-{flags}`,
/// lower-case hex; version `ff` is invalid, ids of all zeros are invalid.
/// Version `00` is exactly 55 characters; a later version may append
/// `-{more}` after the four fields it shares with `00`.
pub fn is_valid_traceparent(value: &str) -> bool {
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let not_zero = |s: &str| s.bytes().any(|b| b != b'0');
    let (Some(head), Some(tail)) = (value.get(..55), value.get(55..)) else {
        return false;
    };
    let mut fields = head.split('-');
    let (Some(version), Some(trace_id), Some(parent_id), Some(flags), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return false;
    };
    let fields_ok = lower_hex(version, 2)
        && version != "ff"
        && lower_hex(trace_id, 32)
        && not_zero(trace_id)
        && lower_hex(parent_id, 16)
        && not_zero(parent_id)
        && lower_hex(flags, 2);
    let tail_ok = if version == "00" {
        tail.is_empty()
    } else {
        tail.is_empty() || tail.starts_with('-')
    };
    fields_ok && tail_ok
}

/// A header name as CGI, WSGI, Rack and similar servers see it: case
/// folded, and `_` (and `.`, which PHP and some proxies turn into `_`) the
/// same as `-`. `Nav_Personident` and `Nav-Personident` are one
/// `HTTP_NAV_PERSONIDENT` there.
pub fn normalise_header_name(name: &str) -> String {
    name.chars().map(normalise_char).collect()
}

fn normalise_char(c: char) -> char {
    match c {
        '_' | '.' => '-',
        c => c.to_ascii_lowercase(),
    }
}

/// Whether `a` and `b` normalise to the same name ([`normalise_header_name`]),
/// without building either: this runs for every header of every call to a
/// dataset with a subject header.
fn same_normalised(a: &str, b: &str) -> bool {
    a.chars()
        .map(normalise_char)
        .eq(b.chars().map(normalise_char))
}

/// Removes every header whose name normalises to `canonical`'s but is not
/// `canonical` itself (e.g. `Nav_Personident`, `nav.personident` beside
/// `Nav-Personident`): the provider reads the subject Bru checked, no other.
pub fn remove_variants_of(headers: &mut HeaderMap, canonical: &str) {
    // Header names are lower case in the map.
    remove_where(headers, |n| {
        let name = n.as_str();
        !name.eq_ignore_ascii_case(canonical) && same_normalised(name, canonical)
    });
}

/// Whether a `Connection` header names `canonical` (or a variant of it, see
/// [`normalise_header_name`]): the caller asks that the provider not get it.
pub fn connection_names(headers: &HeaderMap, canonical: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| same_normalised(token.trim(), canonical))
}

/// Removes from a provider's response the hop-by-hop headers (and whatever
/// `Connection` names), `Set-Cookie`, `Proxy-Authenticate`, `Alt-Svc` and any
/// `Bru-*` header: only Bru speaks for Bru, and the gateway adds
/// `Bru-Transfer-Id` itself.
pub fn clean_response_headers(headers: &mut HeaderMap) {
    remove_connection_named(headers);
    remove_where(headers, |name| {
        HOP_BY_HOP.contains(name)
            || RESPONSE_STRIP.contains(name)
            || name.as_str().starts_with("bru-")
    });
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

/// End-to-end headers a `Connection` token never removes: they frame and
/// type the body, or carry the trace, and the provider needs them as Bru
/// checked them (issue 15: `Connection` must not undo what Bru relied on).
/// The subject header is dataset-specific: the data plane refuses a
/// `Connection` naming it before anything is counted.
const NEVER_HOP_BY_HOP: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::HOST,
    TRACEPARENT,
    TRACESTATE,
];

/// Removes the headers a `Connection` header declares hop-by-hop, except
/// [`NEVER_HOP_BY_HOP`].
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
                if headers.contains_key(&name) && !NEVER_HOP_BY_HOP.contains(&name) {
                    named.push(name);
                }
            }
        }
    }
    for name in named {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests;
