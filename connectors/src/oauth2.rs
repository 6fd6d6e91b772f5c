//! Bru as an OAuth2 client of a Maskinporten-style token endpoint: a
//! JWT-bearer grant (RFC 7523) signed with Bru's key buys an access token,
//! which is cached until shortly before it expires and refreshed once for
//! all the calls that need it at the same time.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use http::header::{self, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};

use crate::body::collect_limited;
use crate::client::{describe, HttpClient, RequestBody};
use crate::credentials::{BearerToken, CredentialError};

/// The longest a grant may live (Maskinporten's limit).
pub const GRANT_LIFETIME_S: u64 = 120;
/// A token endpoint's answer larger than this is not a token response.
const MAX_TOKEN_RESPONSE_BYTES: u64 = 64 * 1024;
/// Assumed lifetime when the endpoint does not say (`expires_in` is optional in RFC 6749).
const DEFAULT_EXPIRES_IN_S: u64 = 60;

/// The algorithm of the grant's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantAlgorithm {
    RS256,
    ES256,
}

impl GrantAlgorithm {
    fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            GrantAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            GrantAlgorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

/// What the grant says and where it goes.
#[derive(Debug, Clone)]
pub struct OAuth2Settings {
    /// The token endpoint, e.g. `https://maskinporten.no/token`.
    pub token_url: Uri,
    /// The grant's `aud`: the authorization server's identifier, e.g. `https://maskinporten.no/`.
    pub audience: String,
    /// The grant's `iss`: Bru's client id at the authorization server.
    pub client_id: String,
    /// Space-separated scopes to ask for.
    pub scope: String,
    /// An optional `resource` claim (an audience-restricted token).
    pub resource: Option<String>,
    /// The `kid` header naming Bru's key as registered with the server.
    pub kid: Option<String>,
    pub algorithm: GrantAlgorithm,
}

/// Why no access token could be had. Display is safe to log: it never holds
/// the grant, the token or the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    #[error("the token endpoint refused the grant (HTTP {status}{})", describe_refusal(.error, .description))]
    Refused {
        status: u16,
        error: Option<String>,
        description: Option<String>,
    },
    #[error("the token endpoint could not be reached: {0}")]
    Unreachable(String),
    #[error("the token endpoint did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("the token endpoint's answer is not a usable token response: {0}")]
    InvalidResponse(&'static str),
    #[error("Bru could not sign the grant: {0}")]
    Sign(String),
}

fn describe_refusal(error: &Option<String>, description: &Option<String>) -> String {
    match (error, description) {
        (Some(e), Some(d)) => format!(": {e}: {d}"),
        (Some(e), None) => format!(": {e}"),
        (None, Some(d)) => format!(": {d}"),
        (None, None) => String::new(),
    }
}

/// OAuth2 credentials of one provider. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct OAuth2Credentials {
    inner: Arc<Inner>,
}

struct Inner {
    settings: OAuth2Settings,
    key: jsonwebtoken::EncodingKey,
    state: Mutex<State>,
}

type Fetch = Shared<BoxFuture<'static, Result<CachedToken, GrantError>>>;

#[derive(Default)]
struct State {
    token: Option<CachedToken>,
    inflight: Option<Fetch>,
    grants: u64,
}

#[derive(Clone)]
struct CachedToken {
    /// `Bearer <token>`, marked sensitive.
    value: HeaderValue,
    refresh_at: Instant,
}

impl fmt::Debug for OAuth2Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Credentials")
            .field("token_url", &self.inner.settings.token_url)
            .field("client_id", &self.inner.settings.client_id)
            .field("scope", &self.inner.settings.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct GrantClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<&'a str>,
    iat: u64,
    exp: u64,
    jti: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: Option<String>,
    error_description: Option<String>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl OAuth2Credentials {
    /// `key_pem`: Bru's private key for the grant, PKCS#8 PEM (RSA for
    /// RS256, P-256 for ES256). The key is tried once here, so a wrong key
    /// fails at start, not at the first call.
    pub fn new(
        settings: OAuth2Settings,
        key_pem: &[u8],
    ) -> Result<OAuth2Credentials, CredentialError> {
        if !matches!(settings.token_url.scheme_str(), Some("http" | "https"))
            || settings.token_url.host().is_none()
        {
            return Err(CredentialError::InvalidSetting(
                "token_url must be an absolute http(s) URL",
            ));
        }
        if settings.client_id.trim().is_empty() {
            return Err(CredentialError::InvalidSetting(
                "client_id must not be empty",
            ));
        }
        if settings.audience.trim().is_empty() {
            return Err(CredentialError::InvalidSetting(
                "audience must not be empty",
            ));
        }
        if settings.scope.trim().is_empty() {
            return Err(CredentialError::InvalidSetting("scope must not be empty"));
        }
        let key = match settings.algorithm {
            GrantAlgorithm::RS256 => jsonwebtoken::EncodingKey::from_rsa_pem(key_pem),
            GrantAlgorithm::ES256 => jsonwebtoken::EncodingKey::from_ec_pem(key_pem),
        }
        .map_err(|_| {
            CredentialError::InvalidKey(
                "the grant key is not a PEM private key of the algorithm's type",
            )
        })?;
        let credentials = OAuth2Credentials {
            inner: Arc::new(Inner {
                settings,
                key,
                state: Mutex::new(State::default()),
            }),
        };
        credentials.inner.sign().map_err(|_| {
            CredentialError::InvalidKey("the grant key cannot sign with the configured algorithm")
        })?;
        Ok(credentials)
    }

    pub fn settings(&self) -> &OAuth2Settings {
        &self.inner.settings
    }

    /// How many grants were sent to the token endpoint so far.
    pub fn grants(&self) -> u64 {
        lock(&self.inner.state).grants
    }

    /// `Bearer <access token>` for a call: the cached token while it is
    /// fresh, else one fetch shared by every call that asks meanwhile.
    pub(crate) async fn authorization(
        &self,
        client: &HttpClient,
        timeout: Duration,
    ) -> Result<HeaderValue, GrantError> {
        let fetch = {
            let mut state = lock(&self.inner.state);
            if let Some(token) = &state.token {
                if Instant::now() < token.refresh_at {
                    return Ok(token.value.clone());
                }
            }
            match &state.inflight {
                Some(fetch) => fetch.clone(),
                None => {
                    state.grants += 1;
                    let fetch = fetch(Arc::clone(&self.inner), client.clone(), timeout)
                        .boxed()
                        .shared();
                    state.inflight = Some(fetch.clone());
                    fetch
                }
            }
        };
        let result = fetch.clone().await;
        let mut state = lock(&self.inner.state);
        // The first caller back clears the fetch; a failure is not cached,
        // so the next call tries again.
        if state.inflight.as_ref().is_some_and(|f| f.ptr_eq(&fetch)) {
            state.inflight = None;
            if let Ok(token) = &result {
                state.token = Some(token.clone());
            }
        }
        result.map(|t| t.value)
    }

    /// Forgets the cached token if it is `used` (the provider refused it).
    pub(crate) fn invalidate(&self, used: &HeaderValue) {
        let mut state = lock(&self.inner.state);
        if state.token.as_ref().is_some_and(|t| t.value == used) {
            state.token = None;
        }
    }
}

impl Inner {
    /// A fresh grant: `iat` now, `exp` 120 s later, a random `jti`.
    fn sign(&self) -> Result<String, GrantError> {
        let s = &self.settings;
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| GrantError::Sign("the system clock is before 1970".into()))?
            .as_secs();
        let claims = GrantClaims {
            aud: &s.audience,
            iss: &s.client_id,
            scope: &s.scope,
            resource: s.resource.as_deref(),
            iat,
            exp: iat + GRANT_LIFETIME_S,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = jsonwebtoken::Header::new(s.algorithm.jwt());
        header.kid = s.kid.clone();
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| GrantError::Sign(e.to_string()))
    }
}

async fn fetch(
    inner: Arc<Inner>,
    client: HttpClient,
    timeout: Duration,
) -> Result<CachedToken, GrantError> {
    let started = Instant::now();
    let assertion = inner.sign()?;
    // The grant is base64url and dots: nothing to escape.
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    );
    let body: RequestBody = Full::new(Bytes::from(form))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut request = Request::new(body);
    *request.method_mut() = Method::POST;
    *request.uri_mut() = inner.settings.token_url.clone();
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));

    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| GrantError::Unreachable(describe(&e)))?;
        let status = response.status();
        let body = collect_limited(response.into_body(), MAX_TOKEN_RESPONSE_BYTES)
            .await
            .map_err(|_| {
                GrantError::InvalidResponse("the body could not be read or is too large")
            })?;
        Ok::<_, GrantError>((status, body))
    };
    let (status, body) = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| GrantError::Timeout(timeout))??;

    if !status.is_success() {
        let parsed: Option<ErrorResponse> = serde_json::from_slice(&body).ok();
        let (error, description) = match parsed {
            Some(e) => (
                e.error.map(|s| clean(&s, 64)),
                e.error_description.map(|s| clean(&s, 200)),
            ),
            None => (None, None),
        };
        return Err(GrantError::Refused {
            status: status.as_u16(),
            error,
            description,
        });
    }
    let response: TokenResponse = serde_json::from_slice(&body)
        .map_err(|_| GrantError::InvalidResponse("not JSON with an access_token"))?;
    if response
        .token_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
    {
        return Err(GrantError::InvalidResponse("the token_type is not Bearer"));
    }
    let token = BearerToken::new(&response.access_token)
        .map_err(|_| GrantError::InvalidResponse("the access_token cannot be sent in a header"))?;
    let lifetime = Duration::from_secs(response.expires_in.unwrap_or(DEFAULT_EXPIRES_IN_S));
    Ok(CachedToken {
        value: token.header_value(),
        refresh_at: started + lifetime.saturating_sub(refresh_margin(lifetime)),
    })
}

/// How long before expiry a token is refreshed: 10 % of its lifetime, at
/// least 10 s, but never more than half of it (a 5 s token is used for 2.5 s).
pub(crate) fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10)
        .max(Duration::from_secs(10))
        .min(lifetime / 2)
}

/// Text from the token endpoint, fit for a log line and a problem detail.
fn clean(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

#[cfg(test)]
mod tests;
