//! How Bru authenticates itself to a provider.
//!
//! Values are turned into header values once, when the configuration is
//! loaded, so a forwarded call only clones a reference-counted value. Every
//! secret is marked sensitive (HTTP/2 never puts it in the HPACK table) and
//! none of the types here print a secret in `Debug` or in an error.

use std::fmt;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::headers;
use crate::mtls::ClientIdentity;
use crate::oauth2::OAuth2Credentials;

/// The credentials Bru presents to one provider.
///
/// `None`, `Bearer` and `Header` are static headers. `Mtls` is a client
/// certificate, which needs a TLS configuration and so a connection pool of
/// its own. `OAuth2` fetches an access token with a JWT-bearer grant and
/// caches it per provider.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Credentials {
    /// The provider needs nothing from Bru beyond the `Bru-*` headers.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(BearerToken),
    /// One header with a secret value, e.g. `X-Api-Key`.
    Header {
        name: HeaderName,
        value: HeaderValue,
    },
    /// Mutual TLS with a client certificate; the provider's CA is pinned.
    Mtls(ClientIdentity),
    /// `Authorization: Bearer <access token>` from a token endpoint.
    OAuth2(OAuth2Credentials),
}

impl Credentials {
    /// `Authorization: Bearer <token>`; the token must be a valid header value.
    pub fn bearer(token: &str) -> Result<Credentials, CredentialError> {
        BearerToken::new(token).map(Credentials::Bearer)
    }

    /// A secret header. Refuses names that Bru strips or sets itself
    /// (hop-by-hop headers, `Host`, `Bru-*`, `Forwarded`…), because the
    /// provider would otherwise receive something other than what the
    /// configuration says.
    pub fn header(name: &str, value: &str) -> Result<Credentials, CredentialError> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| CredentialError::InvalidHeaderName)?;
        if headers::is_reserved_request_header(&name) {
            return Err(CredentialError::ReservedHeaderName);
        }
        let mut value =
            HeaderValue::from_str(value.trim()).map_err(|_| CredentialError::InvalidHeaderValue)?;
        if value.is_empty() {
            return Err(CredentialError::InvalidHeaderValue);
        }
        value.set_sensitive(true);
        Ok(Credentials::Header { name, value })
    }

    /// Adds the credentials to an outbound request, replacing any header of
    /// the same name.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        match self {
            Credentials::None => {}
            Credentials::Bearer(token) => {
                headers.insert(header::AUTHORIZATION, token.0.clone());
            }
            Credentials::Header { name, value } => {
                // The variant's fields are public, so the flag may be missing.
                let mut value = value.clone();
                value.set_sensitive(true);
                headers.insert(name.clone(), value);
            }
            // The TLS layer carries it.
            Credentials::Mtls(_) => {}
            // Set per call by the connector, which fetches the token.
            Credentials::OAuth2(_) => {}
        }
    }

    /// The client identity whose connection pool this provider needs, if any.
    pub(crate) fn identity(&self) -> Option<&ClientIdentity> {
        match self {
            Credentials::Mtls(identity) => Some(identity),
            _ => None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credentials::Header { name, .. } => write!(f, "Header({name}: <redacted>)"),
            Credentials::Mtls(identity) => write!(f, "Mtls({identity:?})"),
            Credentials::OAuth2(oauth2) => write!(f, "OAuth2({oauth2:?})"),
        }
    }
}

/// A bearer token, kept as the ready `Authorization` value `Bearer <token>`.
#[derive(Clone)]
pub struct BearerToken(HeaderValue);

impl BearerToken {
    pub fn new(token: &str) -> Result<BearerToken, CredentialError> {
        let token = token.trim();
        // RFC 6750 token68: no whitespace inside, not empty.
        if token.is_empty() || token.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(CredentialError::InvalidBearerToken);
        }
        let mut value =
            HeaderValue::from_maybe_shared(bytes::Bytes::from(format!("Bearer {token}")))
                .map_err(|_| CredentialError::InvalidBearerToken)?;
        value.set_sensitive(true);
        Ok(BearerToken(value))
    }

    /// The ready `Authorization` value, marked sensitive.
    pub(crate) fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Why credentials from the configuration cannot be used. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    #[error("the bearer token is empty or contains characters not allowed in a header")]
    InvalidBearerToken,
    #[error("the credential header name is not a valid header name")]
    InvalidHeaderName,
    #[error("the credential header name is one Bru removes or sets itself")]
    ReservedHeaderName,
    #[error("the credential header value is empty or contains characters not allowed in a header")]
    InvalidHeaderValue,
    #[error("certificate: {0}")]
    InvalidCertificate(&'static str),
    #[error("private key: {0}")]
    InvalidKey(&'static str),
    #[error("TLS client configuration: {0}")]
    Tls(String),
    #[error("{0}")]
    InvalidSetting(&'static str),
}

#[cfg(test)]
mod tests;
