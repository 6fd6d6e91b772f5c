//! One demo issuer's RSA signing key: what its JWKS publishes, its `iss`,
//! signing, and verifying its own tokens. Shared by the demo issuers
//! (`issuers.rs`) and the demo Altinn (`altinn.rs`), which signs its Altinn 2
//! consent tokens with a key of its own and checks the others' tokens.

use std::path::Path;

use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{json, Value};

use crate::DemoError;

/// One issuer's signing key, with what its JWKS publishes and its `iss`.
#[derive(Clone)]
pub struct IssuerKey {
    key: EncodingKey,
    kid: String,
    jwk: Jwk,
    issuer: String,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl IssuerKey {
    /// An RS256 issuer from its PKCS#8 (or PKCS#1) RSA private key in PEM.
    pub fn from_pem(key_pem: &str, issuer: impl Into<String>) -> Result<Self, DemoError> {
        let key = EncodingKey::from_rsa_pem(key_pem.as_bytes())?;
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)?;
        // The kid is the key's RFC 7638 thumbprint: stable across restarts, and
        // a new key (a deleted key file) gets a new kid, which makes the
        // gateway refresh its JWKS cache instead of failing on a stale key.
        let kid = jwk.thumbprint(ThumbprintHash::SHA256);
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(IssuerKey {
            key,
            kid,
            jwk,
            issuer: issuer.into(),
        })
    }

    pub(crate) fn from_file(path: &Path, issuer: &str) -> Result<Self, DemoError> {
        let pem = std::fs::read_to_string(path).map_err(DemoError::io(path))?;
        IssuerKey::from_pem(&pem, issuer).map_err(|e| DemoError::Key {
            path: path.to_path_buf(),
            why: e.to_string(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The `iss` of this issuer's tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The JWK set with this issuer's one public key.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    pub(crate) fn sign(&self, claims: &Value) -> Result<String, DemoError> {
        sign_with(&self.key, &self.kid, claims)
    }

    /// Signs with `x5t` beside `kid`, as Altinn 2 heads its consent tokens
    /// (Altinn/docs, "Informasjon om token": both name the signing key).
    pub(crate) fn sign_with_x5t(&self, claims: &Value) -> Result<String, DemoError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        header.x5t = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.key)?)
    }
}

impl IssuerKey {
    /// The claims of a token this issuer signed (RS256, its `iss`, not
    /// expired); `None` for anything else. The audience is not checked: the
    /// demo's own endpoints are not any token's audience.
    pub(crate) fn verify(&self, token: &str) -> Option<Value> {
        let key = DecodingKey::from_jwk(&self.jwk).ok()?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.validate_aud = false;
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .ok()
            .map(|d| d.claims)
    }
}

pub(crate) fn sign_with(key: &EncodingKey, kid: &str, claims: &Value) -> Result<String, DemoError> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    Ok(jsonwebtoken::encode(&header, claims, key)?)
}
