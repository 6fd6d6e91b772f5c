//! Authentication of callers: Maskinporten-style machine tokens and
//! ID-porten-style citizen tokens, verified against each trusted issuer's JWKS.
//!
//! The token is taken apart by hand first, so that everything RFC 8725 warns
//! about (`none`, HMAC with a public key, `jku`/`x5u`/`jwk` headers, odd `kid`s,
//! duplicate claims, oversized tokens) is refused before any key is looked up
//! or any cryptography runs. Only then does jsonwebtoken verify the signature.

mod jwks;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use thiserror::Error;

use crate::config::{IssuerConfig, IssuerKind};
pub use jwks::{JwksCache, JwksRefreshes};
use policy::{Caller, OrgNumber};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("No bearer token was sent.")]
    MissingToken,
    #[error("The token is not valid: {0}.")]
    InvalidToken(&'static str),
    #[error("The token has expired.")]
    TokenExpired,
    #[error("The token's issuer is not trusted here.")]
    UntrustedIssuer,
    #[error("The token is meant for another audience.")]
    WrongAudience,
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::InvalidToken(_) => "invalid_token",
            AuthError::TokenExpired => "token_expired",
            AuthError::UntrustedIssuer => "untrusted_issuer",
            AuthError::WrongAudience => "wrong_audience",
        }
    }

    /// RFC 6750 error for `WWW-Authenticate`.
    pub fn bearer_error(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "invalid_request",
            _ => "invalid_token",
        }
    }
}

/// A verified machine caller.
#[derive(Debug, Clone)]
pub struct MachineToken {
    pub caller: Caller,
    /// Altinn's `authorization_details` (consent, system user) and
    /// Maskinporten's `pid` (SPEC 9); see `altinn_pep.rs`.
    pub altinn: crate::altinn_pep::TokenGrants,
}

/// A verified citizen.
#[derive(Debug, Clone)]
pub struct CitizenToken {
    pub pid: policy::PersonNumber,
    /// The token's RAR `authorization_details` (ID-porten: `idporten:fullmakt`), read by `representation.rs`.
    pub authorization_details: Vec<serde_json::Value>,
}

/// Trusted issuers and their key caches.
pub struct Authenticator {
    issuers: Vec<TrustedIssuer>,
    /// The largest token any issuer accepts; larger ones are refused unread.
    max_token_bytes: usize,
    allow_synthetic_ids: bool,
    /// Machine tokens already verified, so a caller that reuses its token (as
    /// Maskinporten clients do for its lifetime) costs one hash, not an RSA check.
    verified: VerifiedTokens,
}

/// Verified machine tokens by the SHA-256 of the token, until they expire.
struct VerifiedTokens {
    map: std::sync::RwLock<std::collections::HashMap<[u8; 32], (MachineToken, i64)>>,
}

/// Enough for every client of a large county; beyond it, expired entries go first.
const VERIFIED_TOKENS_CAPACITY: usize = 10_000;
/// A cached verification is trusted at most this long, even for long-lived tokens,
/// so a key withdrawn from the issuer's JWKS stops working soon after.
const VERIFIED_TOKENS_MAX_AGE_S: i64 = 300;

impl VerifiedTokens {
    fn key(token: &str) -> [u8; 32] {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        key
    }

    fn get(&self, key: &[u8; 32], now: i64) -> Option<MachineToken> {
        let map = self.map.read().ok()?;
        let (token, valid_until) = map.get(key)?;
        (now < *valid_until).then(|| token.clone())
    }

    fn insert(&self, key: [u8; 32], token: MachineToken, valid_until: i64, now: i64) {
        let Ok(mut map) = self.map.write() else {
            return;
        };
        if map.len() >= VERIFIED_TOKENS_CAPACITY {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= VERIFIED_TOKENS_CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (token, valid_until));
    }
}

struct TrustedIssuer {
    config: IssuerConfig,
    jwks: JwksCache,
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    // Any of these in a token means "fetch or trust a key I name": never.
    jku: Option<serde::de::IgnoredAny>,
    x5u: Option<serde::de::IgnoredAny>,
    jwk: Option<serde::de::IgnoredAny>,
    x5c: Option<serde::de::IgnoredAny>,
    crit: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct IssOnly {
    iss: Option<String>,
}

#[derive(Deserialize)]
struct MachineClaims {
    consumer: Option<OrgClaim>,
    supplier: Option<OrgClaim>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    #[serde(default)]
    authorization_details: Option<serde_json::Value>,
    #[serde(default)]
    pid: Option<String>,
}

#[derive(Deserialize)]
struct OrgClaim {
    authority: Option<String>,
    #[serde(rename = "ID")]
    id: String,
}

#[derive(Deserialize)]
struct CitizenClaims {
    #[serde(default)]
    authorization_details: Vec<serde_json::Value>,
    pid: Option<String>,
    acr: Option<String>,
    iat: Option<i64>,
}

/// ID-porten's levels, lowest first.
const ACR_LEVELS: [&str; 3] = [
    "idporten-loa-low",
    "idporten-loa-substantial",
    "idporten-loa-high",
];

impl Authenticator {
    pub fn new(issuers: &[IssuerConfig], allow_synthetic_ids: bool) -> Result<Self, String> {
        let mut out = Vec::new();
        for config in issuers {
            out.push(TrustedIssuer {
                jwks: JwksCache::new(config)?,
                config: config.clone(),
            });
        }
        let max_token_bytes = issuers
            .iter()
            .map(|i| i.max_token_bytes)
            .max()
            .unwrap_or(8192);
        Ok(Authenticator {
            issuers: out,
            max_token_bytes,
            allow_synthetic_ids,
            verified: VerifiedTokens {
                map: std::sync::RwLock::new(std::collections::HashMap::new()),
            },
        })
    }

    /// The JWKS fetches of every configured issuer since start, in config
    /// order, for metrics (labelled by the issuer's name, never by a token).
    pub fn jwks_refreshes(&self) -> Vec<JwksRefreshes> {
        self.issuers.iter().map(|i| i.jwks.refreshes()).collect()
    }

    /// A machine token verified before and not yet expired: a hash lookup, no cryptography.
    pub fn cached_machine(
        &self,
        authorization: Option<&http::HeaderValue>,
    ) -> Option<MachineToken> {
        let token = bearer(authorization).ok()?;
        if token.len() > self.max_token_bytes {
            return None;
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.verified.get(&VerifiedTokens::key(token), now)
    }

    /// Verifies a machine caller's `Authorization` header.
    pub async fn machine(
        &self,
        authorization: Option<&http::HeaderValue>,
    ) -> Result<MachineToken, AuthError> {
        let token = bearer(authorization)?;
        if token.len() > self.max_token_bytes {
            return Err(AuthError::InvalidToken("the token is too large"));
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let cache_key = VerifiedTokens::key(token);
        if let Some(hit) = self.verified.get(&cache_key, now) {
            return Ok(hit);
        }
        let (issuer, payload) = self.verify(token, IssuerKind::Maskinporten).await?;
        let claims: MachineClaims = serde_json::from_slice(&payload)
            .map_err(|_| AuthError::InvalidToken("the claims are malformed"))?;
        check_iat(claims.iat, issuer.config.leeway)?;
        let consumer = claims
            .consumer
            .ok_or(AuthError::InvalidToken("the consumer claim is missing"))?;
        let consumer = org(&consumer)?;
        let supplier = claims.supplier.as_ref().map(org).transpose()?;
        let scopes = claims
            .scope
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let altinn = crate::altinn_pep::TokenGrants::from_claims(
            claims.authorization_details.as_ref(),
            claims.pid.as_deref(),
            self.allow_synthetic_ids,
        )?;
        let verified = MachineToken {
            caller: Caller {
                consumer,
                supplier,
                client_id: claims.client_id.unwrap_or_default(),
                scopes,
            },
            altinn,
        };
        // `exp` is required and was checked with the issuer's leeway.
        if let Some(exp) = claims.exp {
            let valid_until =
                (exp + issuer.config.leeway.as_secs() as i64).min(now + VERIFIED_TOKENS_MAX_AGE_S);
            self.verified
                .insert(cache_key, verified.clone(), valid_until, now);
        }
        Ok(verified)
    }

    /// Verifies a citizen's `Authorization` header (ID-porten-style token).
    pub async fn citizen(
        &self,
        authorization: Option<&http::HeaderValue>,
    ) -> Result<CitizenToken, AuthError> {
        let token = bearer(authorization)?;
        let (issuer, payload) = self.verify(token, IssuerKind::Idporten).await?;
        let claims: CitizenClaims = serde_json::from_slice(&payload)
            .map_err(|_| AuthError::InvalidToken("the claims are malformed"))?;
        check_iat(claims.iat, issuer.config.leeway)?;
        let acr = claims.acr.unwrap_or_default();
        let level = ACR_LEVELS.iter().position(|l| *l == acr);
        if level.is_none_or(|l| l < 1) {
            return Err(AuthError::InvalidToken(
                "the login level (acr) is below idporten-loa-substantial",
            ));
        }
        let pid = claims
            .pid
            .ok_or(AuthError::InvalidToken("the pid claim is missing"))?;
        let pid = policy::PersonNumber::parse(&pid, self.allow_synthetic_ids)
            .map_err(|_| AuthError::InvalidToken("the pid claim is not a valid person number"))?;
        Ok(CitizenToken {
            pid,
            authorization_details: claims.authorization_details,
        })
    }

    /// Verifies a token of one of this authenticator's (Maskinporten-kind)
    /// issuers that travels beside the caller's own, and returns its claims:
    /// an Altinn 2 consent token (`altinn_pep.rs`), with every check above.
    pub async fn accompanying_claims(&self, token: &str) -> Result<serde_json::Value, AuthError> {
        let (_, payload) = self.verify(token, IssuerKind::Maskinporten).await?;
        serde_json::from_slice(&payload)
            .map_err(|_| AuthError::InvalidToken("the claims are malformed"))
    }

    /// Checks the token's shape, picks its issuer, verifies the signature and
    /// the time claims; returns the payload bytes (already checked for
    /// duplicate keys).
    async fn verify(
        &self,
        token: &str,
        kind: IssuerKind,
    ) -> Result<(&TrustedIssuer, Vec<u8>), AuthError> {
        if token.len() > self.max_token_bytes {
            return Err(AuthError::InvalidToken("the token is too large"));
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::InvalidToken("a token has three parts"));
        };
        if signature_b64.is_empty() {
            return Err(AuthError::InvalidToken("the token is unsigned"));
        }
        let header_bytes = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| AuthError::InvalidToken("the header is not base64url"))?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| AuthError::InvalidToken("the payload is not base64url"))?;
        if has_duplicate_keys(&header_bytes) || has_duplicate_keys(&payload) {
            return Err(AuthError::InvalidToken(
                "the token is not JSON or repeats a member",
            ));
        }
        let header: JoseHeader = serde_json::from_slice(&header_bytes)
            .map_err(|_| AuthError::InvalidToken("the header is malformed"))?;
        if header.jku.is_some()
            || header.x5u.is_some()
            || header.jwk.is_some()
            || header.x5c.is_some()
        {
            return Err(AuthError::InvalidToken(
                "keys named in the token are never trusted",
            ));
        }
        if header.crit.is_some() {
            return Err(AuthError::InvalidToken(
                "critical header extensions are not supported",
            ));
        }
        if header
            .typ
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("JWT") && !t.eq_ignore_ascii_case("at+jwt"))
        {
            return Err(AuthError::InvalidToken("the token type is not a JWT"));
        }
        let alg = accepted_algorithm(&header.alg)
            .ok_or(AuthError::InvalidToken("the algorithm is not accepted"))?;
        let kid = header
            .kid
            .ok_or(AuthError::InvalidToken("the key id (kid) is missing"))?;
        if !valid_kid(&kid) {
            return Err(AuthError::InvalidToken("the key id (kid) is malformed"));
        }

        let iss: IssOnly = serde_json::from_slice(&payload)
            .map_err(|_| AuthError::InvalidToken("the claims are malformed"))?;
        let iss = iss
            .iss
            .ok_or(AuthError::InvalidToken("the iss claim is missing"))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.config.issuer == iss && i.config.kind == kind)
            .ok_or(AuthError::UntrustedIssuer)?;
        if token.len() > issuer.config.max_token_bytes {
            return Err(AuthError::InvalidToken("the token is too large"));
        }
        if !issuer.config.algorithms.contains(&alg) {
            return Err(AuthError::InvalidToken(
                "the algorithm is not accepted for this issuer",
            ));
        }
        let key = issuer
            .jwks
            .key(&kid, alg)
            .await
            .ok_or(AuthError::InvalidToken("the signing key is unknown"))?;

        let mut validation = Validation::new(alg);
        validation.leeway = issuer.config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer.config.issuer.as_str()]);
        match &issuer.config.audience {
            Some(aud) => {
                // A configured audience is required, not merely checked when present.
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
                validation.set_audience(&[aud.as_str()]);
            }
            None => {
                validation.set_required_spec_claims(&["exp", "iss"]);
                validation.validate_aud = false;
            }
        }
        match jsonwebtoken::decode::<serde::de::IgnoredAny>(token, &key, &validation) {
            Ok(_) => Ok((issuer, payload)),
            Err(e) => {
                use jsonwebtoken::errors::ErrorKind as K;
                Err(match e.kind() {
                    K::ExpiredSignature => AuthError::TokenExpired,
                    K::InvalidAudience => AuthError::WrongAudience,
                    K::InvalidIssuer => AuthError::UntrustedIssuer,
                    K::ImmatureSignature => AuthError::InvalidToken("the token is not yet valid"),
                    K::InvalidSignature => AuthError::InvalidToken("the signature does not verify"),
                    K::MissingRequiredClaim(claim) if claim == "aud" => AuthError::WrongAudience,
                    K::MissingRequiredClaim(_) => {
                        AuthError::InvalidToken("a required claim is missing")
                    }
                    _ => AuthError::InvalidToken("the token could not be verified"),
                })
            }
        }
    }
}

fn bearer(authorization: Option<&http::HeaderValue>) -> Result<&str, AuthError> {
    let value = authorization.ok_or(AuthError::MissingToken)?;
    let value = value
        .to_str()
        .map_err(|_| AuthError::InvalidToken("the Authorization header is not text"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(AuthError::InvalidToken("use the Bearer scheme"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::InvalidToken("use the Bearer scheme"));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token)
}

fn org(claim: &OrgClaim) -> Result<OrgNumber, AuthError> {
    if claim
        .authority
        .as_deref()
        .is_some_and(|a| a != "iso6523-actorid-upis")
    {
        return Err(AuthError::InvalidToken(
            "the organisation authority is not iso6523-actorid-upis",
        ));
    }
    OrgNumber::parse_iso6523(&claim.id)
        .map_err(|_| AuthError::InvalidToken("the organisation number is not valid"))
}

/// An `iat` far in the future means a clock or a forger we should not trust.
fn check_iat(iat: Option<i64>, leeway: Duration) -> Result<(), AuthError> {
    if let Some(iat) = iat {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if iat > now + leeway.as_secs() as i64 {
            return Err(AuthError::InvalidToken("the token is not yet valid"));
        }
    }
    Ok(())
}

/// Exact, case-sensitive names only: `none`, `None`, `HS256` and friends never pass.
fn accepted_algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// A `kid` is only ever a lookup key, but one with slashes, quotes or control
/// characters is a probe, not a key id.
fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 256
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'=' | b'+'))
        && !kid.contains("..")
}

/// True when any JSON object in `bytes` names a member twice (RFC 8725 §3.1
/// style parser differentials: one parser takes the first, another the last).
pub fn has_duplicate_keys(bytes: &[u8]) -> bool {
    struct Check;
    impl<'de> serde::de::DeserializeSeed<'de> for Check {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(Check)
        }
    }
    impl<'de> serde::de::Visitor<'de> for Check {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if !seen.insert(key.into_owned()) {
                    return Err(serde::de::Error::custom("duplicate member"));
                }
                map.next_value_seed(Check)?;
            }
            Ok(())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Check)?.is_some() {}
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde::de::DeserializeSeed::deserialize(Check, &mut de).is_err()
}

#[cfg(test)]
mod tests;
