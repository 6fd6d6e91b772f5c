//! OpenID Connect login: the authorization code flow with PKCE (S256),
//! `state` and `nonce`, against the configured issuer (ID-porten in
//! production; any OpenID provider).
//!
//! The discovery document and the JWKS are fetched when first needed and
//! cached (discovery for an hour; the JWKS until a token names an unknown
//! `kid`, refetched at most every ten seconds). The id_token is checked as
//! OpenID Connect Core 3.1.3.7 says: signature by the issuer's key with an
//! asymmetric algorithm, `iss`, `aud` (and `azp`), `exp`, `iat`, `nonce`; then
//! `acr` at least `idporten-loa-substantial` and the person in `pid`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::{constant_time, digest};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::{is_allowed_url, ClientAuth, OidcConfig};
use crate::error::{OidcError, PortalError};
use crate::session::LoginState;

const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
const JWKS_MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Clock skew allowed on `exp` and `iat`.
pub const LEEWAY_S: u64 = 30;
/// Nothing the provider sends us is anywhere near this large.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// ID-porten's levels, lowest first.
const ACR_LEVELS: [&str; 3] = [
    "idporten-loa-low",
    "idporten-loa-substantial",
    "idporten-loa-high",
];

/// A PKCE pair (RFC 7636): the verifier stays in the login cookie, the
/// challenge goes to the provider.
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref())
}

/// The provider's discovery document: the members the portal uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
    /// OpenID Connect RP-Initiated Logout 1.0: where to end the citizen's
    /// session at the provider too.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

impl Metadata {
    /// The checks of OpenID Connect Discovery 4.3, and S256 where the
    /// provider lists its PKCE methods.
    fn check(&self, issuer: &str) -> Result<(), OidcError> {
        if self.issuer != issuer {
            return Err(OidcError::Protocol(
                "the discovery document names another issuer".into(),
            ));
        }
        for (name, url) in [
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
            ("jwks_uri", &self.jwks_uri),
        ] {
            if !is_allowed_url(url) {
                return Err(OidcError::Protocol(format!("{name} is not an https URL")));
            }
        }
        if let Some(url) = &self.end_session_endpoint {
            if !is_allowed_url(url) {
                return Err(OidcError::Protocol(
                    "end_session_endpoint is not an https URL".into(),
                ));
            }
        }
        if let Some(methods) = &self.code_challenge_methods_supported {
            if !methods.iter().any(|m| m == "S256") {
                return Err(OidcError::Protocol(
                    "the provider does not support PKCE with S256".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The person an id_token is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citizen {
    pub pid: policy::PersonNumber,
    pub acr: String,
    /// ID-porten's RAR (`idporten:fullmakt` after a fullmakt login), as sent.
    pub authorization_details: Vec<serde_json::Value>,
}

/// `aud` is a string or an array of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, id: &str) -> bool {
        match self {
            Audience::One(a) => a == id,
            Audience::Many(all) => all.iter().any(|a| a == id),
        }
    }

    fn len(&self) -> usize {
        match self {
            Audience::One(_) => 1,
            Audience::Many(all) => all.len(),
        }
    }
}

/// The id_token claims the portal reads.
#[derive(Debug, Clone, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub azp: Option<String>,
    #[serde(default)]
    pub acr: Option<String>,
    #[serde(default)]
    pub pid: Option<String>,
    /// ID-porten puts `idporten:fullmakt` here too (oidc_auth_fullmakt).
    #[serde(default)]
    pub authorization_details: Vec<serde_json::Value>,
}

/// What the claims must say, beyond what the signature check covered.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub allow_synthetic_ids: bool,
    pub sub_as_pid: bool,
}

/// Checks verified claims and picks the person; `now` in Unix seconds.
pub fn check_claims(
    claims: &IdTokenClaims,
    expected: &Expected<'_>,
    now: i64,
) -> Result<Citizen, OidcError> {
    let leeway = LEEWAY_S as i64;
    if claims.iss != expected.issuer {
        return Err(OidcError::InvalidIdToken(
            "iss is not the configured issuer",
        ));
    }
    if !claims.aud.contains(expected.client_id) {
        return Err(OidcError::InvalidIdToken("aud does not name this client"));
    }
    // With several audiences, azp must name us (OIDC Core 3.1.3.7, 4 and 5).
    if (claims.aud.len() > 1 || claims.azp.is_some())
        && claims.azp.as_deref() != Some(expected.client_id)
    {
        return Err(OidcError::InvalidIdToken("azp does not name this client"));
    }
    if claims.exp + leeway < now {
        return Err(OidcError::InvalidIdToken("the id_token has expired"));
    }
    if claims.iat > now + leeway {
        return Err(OidcError::InvalidIdToken(
            "the id_token is issued in the future",
        ));
    }
    let nonce = claims.nonce.as_deref().unwrap_or_default();
    if nonce.is_empty()
        || constant_time::verify_slices_are_equal(nonce.as_bytes(), expected.nonce.as_bytes())
            .is_err()
    {
        return Err(OidcError::InvalidIdToken("the nonce does not match"));
    }
    let acr = claims.acr.clone().unwrap_or_default();
    if ACR_LEVELS
        .iter()
        .position(|l| *l == acr)
        .is_none_or(|l| l < 1)
    {
        return Err(OidcError::InsufficientAcr);
    }
    let person = match (&claims.pid, expected.sub_as_pid) {
        (Some(pid), _) => pid.as_str(),
        (None, true) => claims.sub.as_str(),
        (None, false) => return Err(OidcError::InvalidIdToken("the pid claim is missing")),
    };
    let pid = policy::PersonNumber::parse(person, expected.allow_synthetic_ids)
        .map_err(|_| OidcError::InvalidIdToken("pid is not a valid person number"))?;
    Ok(Citizen {
        pid,
        acr,
        authorization_details: claims.authorization_details.clone(),
    })
}

/// Only asymmetric algorithms: an HMAC "signature" could be made by anyone
/// holding the client secret, and `none` by anyone at all.
fn accepted(alg: Algorithm) -> bool {
    matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
            | Algorithm::EdDSA
    )
}

/// Verifies the id_token's signature with a key of `jwks` and returns its
/// claims (not yet checked beyond the signature: see [`check_claims`]).
pub fn verify_signature(id_token: &str, jwks: &JwkSet) -> Result<IdTokenClaims, OidcError> {
    let header = jsonwebtoken::decode_header(id_token)
        .map_err(|_| OidcError::InvalidIdToken("the header is malformed"))?;
    if !accepted(header.alg) {
        return Err(OidcError::InvalidIdToken("the algorithm is not accepted"));
    }
    // Keys named by the token itself are never trusted.
    if header.jku.is_some() || header.jwk.is_some() || header.x5u.is_some() || header.x5c.is_some()
    {
        return Err(OidcError::InvalidIdToken("the token names its own key"));
    }
    if header.crit.is_some() {
        return Err(OidcError::InvalidIdToken(
            "critical header extensions are not supported",
        ));
    }
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        // Without a kid, only an unambiguous set will do.
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or(OidcError::InvalidIdToken("the signing key is unknown"))?;
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|_| OidcError::InvalidIdToken("the signing key is unusable"))?;
    let mut validation = Validation::new(header.alg);
    // The claims are checked by check_claims, against our own clock and rules.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<IdTokenClaims>(id_token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                OidcError::InvalidIdToken("the signature does not verify")
            }
            jsonwebtoken::errors::ErrorKind::Json(_) => {
                OidcError::InvalidIdToken("the claims are malformed")
            }
            _ => OidcError::InvalidIdToken("the id_token could not be verified"),
        })
}

/// The portal's client of one OpenID provider.
pub struct OidcClient {
    config: OidcConfig,
    secret: String,
    http: reqwest::Client,
    metadata: Mutex<Option<(Arc<Metadata>, Instant)>>,
    jwks: Mutex<Option<(Arc<JwkSet>, Instant)>>,
}

impl OidcClient {
    /// Reads the client secret and builds the HTTP client; contacts nobody.
    pub fn new(config: OidcConfig) -> Result<OidcClient, PortalError> {
        let secret = config.client_secret.read().map_err(PortalError::Config)?;
        let secret = String::from_utf8(secret)
            .map_err(|_| PortalError::Config("the portal client secret is not UTF-8".into()))?
            .trim()
            .to_owned();
        if secret.is_empty() {
            return Err(PortalError::Config(
                "the portal client secret is empty".into(),
            ));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            // Every endpoint comes from discovery; a redirect would be somewhere else.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| PortalError::Config(format!("cannot read {}: {e}", ca.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                PortalError::Config(format!("{} is not a PEM certificate: {e}", ca.display()))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| PortalError::Config(format!("the portal's HTTP client: {e}")))?;
        Ok(OidcClient {
            config,
            secret,
            http,
            metadata: Mutex::new(None),
            jwks: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let response = self
            .http
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(e.without_url().to_string()))?;
        read_json(response).await
    }

    /// The discovery document, fetched when missing or older than an hour
    /// (an old one is kept while the provider cannot be reached).
    pub async fn metadata(&self) -> Result<Arc<Metadata>, OidcError> {
        let mut cached = self.metadata.lock().await;
        if let Some((m, at)) = cached.as_ref() {
            if at.elapsed() < DISCOVERY_TTL {
                return Ok(m.clone());
            }
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        match self.get_json::<Metadata>(&url).await {
            Ok(m) => {
                m.check(&self.config.issuer)?;
                let m = Arc::new(m);
                *cached = Some((m.clone(), Instant::now()));
                Ok(m)
            }
            Err(e) => match cached.as_ref() {
                Some((m, _)) => {
                    tracing::warn!(error = %e, "OpenID discovery failed; using the cached document");
                    Ok(m.clone())
                }
                None => Err(e),
            },
        }
    }

    async fn jwks(&self, refresh: bool) -> Result<Arc<JwkSet>, OidcError> {
        let mut cached = self.jwks.lock().await;
        if let Some((set, at)) = cached.as_ref() {
            if !refresh || at.elapsed() < JWKS_MIN_INTERVAL {
                return Ok(set.clone());
            }
        }
        let uri = self.metadata().await?.jwks_uri.clone();
        let set: JwkSet = self.get_json(&uri).await?;
        let set = Arc::new(set);
        *cached = Some((set.clone(), Instant::now()));
        Ok(set)
    }

    /// Where to send the browser to log in.
    pub async fn authorization_url(
        &self,
        login: &LoginState,
        ui_locale: &str,
    ) -> Result<String, OidcError> {
        let metadata = self.metadata().await?;
        let mut url = reqwest::Url::parse(&metadata.authorization_endpoint)
            .map_err(|_| OidcError::Protocol("authorization_endpoint is not a URL".into()))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.config.redirect_url)
            .append_pair("scope", &self.config.scope)
            .append_pair("state", &login.state)
            .append_pair("nonce", &login.nonce)
            .append_pair("code_challenge", &code_challenge(&login.verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("acr_values", &self.config.acr_values)
            .append_pair("ui_locales", ui_locale);
        Ok(url.into())
    }

    /// Where to send the browser to end its session at the provider
    /// (RP-Initiated Logout 1.0, section 2), or `None` when the provider
    /// names no `end_session_endpoint`.
    pub async fn logout_url(
        &self,
        id_token: Option<&str>,
        post_logout_redirect_uri: &str,
        ui_locale: &str,
    ) -> Result<Option<String>, OidcError> {
        let metadata = self.metadata().await?;
        let Some(endpoint) = metadata.end_session_endpoint.as_deref() else {
            return Ok(None);
        };
        let mut url = reqwest::Url::parse(endpoint)
            .map_err(|_| OidcError::Protocol("end_session_endpoint is not a URL".into()))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(hint) = id_token {
                q.append_pair("id_token_hint", hint);
            }
            q.append_pair("client_id", &self.config.client_id)
                .append_pair("post_logout_redirect_uri", post_logout_redirect_uri)
                .append_pair("ui_locales", ui_locale);
        }
        Ok(Some(url.into()))
    }

    /// Exchanges the code (with the PKCE verifier) and verifies the id_token;
    /// the citizen, and the id_token as issued (the `id_token_hint` of a logout).
    pub async fn finish(
        &self,
        code: &str,
        login: &LoginState,
        allow_synthetic_ids: bool,
    ) -> Result<(Citizen, String), OidcError> {
        let metadata = self.metadata().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.config.redirect_url.as_str()),
            ("code_verifier", login.verifier.as_str()),
        ];
        let mut request = self.http.post(&metadata.token_endpoint);
        match self.config.client_auth {
            ClientAuth::Basic => {
                // RFC 6749 2.3.1: both parts form-encoded before Basic.
                request = request.basic_auth(
                    form_encode(&self.config.client_id),
                    Some(form_encode(&self.secret)),
                );
            }
            ClientAuth::Post => {
                form.push(("client_id", self.config.client_id.as_str()));
                form.push(("client_secret", self.secret.as_str()));
            }
        }
        let response = request
            .header(http::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(e.without_url().to_string()))?;
        #[derive(Deserialize)]
        struct TokenResponse {
            id_token: Option<String>,
        }
        let tokens: TokenResponse = read_json(response).await?;
        let id_token = tokens
            .id_token
            .ok_or_else(|| OidcError::Protocol("the token response has no id_token".into()))?;
        let claims = match verify_signature(&id_token, &*self.jwks(false).await?) {
            // A key rotated since the JWKS was cached: fetch it once more.
            Err(OidcError::InvalidIdToken("the signing key is unknown")) => {
                verify_signature(&id_token, &*self.jwks(true).await?)?
            }
            other => other?,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let citizen = check_claims(
            &claims,
            &Expected {
                issuer: &self.config.issuer,
                client_id: &self.config.client_id,
                nonce: &login.nonce,
                allow_synthetic_ids,
                sub_as_pid: self.config.sub_as_pid,
            },
            now,
        )?;
        Ok((citizen, id_token))
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, OidcError> {
    let status = response.status();
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(OidcError::Protocol("the response is too large".into()));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| OidcError::Unavailable(e.without_url().to_string()))?;
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(OidcError::Protocol("the response is too large".into()));
    }
    if !status.is_success() {
        // An OAuth error names itself in `error`; nothing else of the body is repeated.
        let error = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(short))
            .unwrap_or_default();
        return Err(OidcError::Unavailable(format!("status {status} {error}")));
    }
    serde_json::from_slice(&body)
        .map_err(|_| OidcError::Protocol("the response is not the JSON expected".into()))
}

/// At most 64 printable ASCII characters of a provider's error code.
pub fn short(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect()
}

/// application/x-www-form-urlencoded, as RFC 6749 asks for Basic credentials.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests;
