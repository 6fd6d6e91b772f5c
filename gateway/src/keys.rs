//! Bru's own keys: the assertion key that signs `Bru-Assertion`, the
//! checkpoint key that signs the transparency log, and the pseudonym key
//! behind `subject_ref`. Their public halves are published in
//! `/.well-known/jwks.json`.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde::Serialize;

use crate::config::KeysConfig;

pub struct Keys {
    pub assertion: AssertionSigner,
    pub checkpoint: Ed25519KeyPair,
    pub checkpoint_kid: String,
    pub pseudonym: Pseudonymiser,
    /// Seals FHIR paging links (derived from the pseudonym key).
    pub page_tokens: crate::page_token::PageTokens,
    jwks: serde_json::Value,
}

impl Keys {
    pub fn load(config: &KeysConfig, issuer: &str) -> Result<Keys, String> {
        let assertion_pem = config.assertion_key.read_bytes()?;
        let assertion = AssertionSigner::from_pem(&assertion_pem, issuer)?;
        let checkpoint_pem = config.checkpoint_key.read_bytes()?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(&checkpoint_pem)
            .map_err(|e| format!("the checkpoint key is not a PKCS#8 PEM key: {e}"))?;
        let checkpoint = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der())
            .map_err(|e| format!("the checkpoint key is not an Ed25519 key: {e}"))?;
        let checkpoint_x = URL_SAFE_NO_PAD.encode(checkpoint.public_key().as_ref());
        let checkpoint_kid = thumbprint_okp(&checkpoint_x);
        let pseudonym_secret = config.pseudonym_key.read_bytes()?;
        let pseudonym = Pseudonymiser::new(&pseudonym_secret)?;
        let page_tokens = crate::page_token::PageTokens::new(&pseudonym_secret)?;
        let jwks = serde_json::json!({
            "keys": [
                assertion.public_jwk(),
                {"kty": "OKP", "crv": "Ed25519", "x": checkpoint_x, "kid": checkpoint_kid, "use": "sig", "alg": "EdDSA"},
            ]
        });
        Ok(Keys {
            assertion,
            checkpoint,
            checkpoint_kid,
            pseudonym,
            page_tokens,
            jwks,
        })
    }

    /// The public keys as a JWK set.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }
}

/// The public half of the configured checkpoint key, without loading the
/// other keys (for `bru audit verify`).
pub fn checkpoint_public_key(config: &KeysConfig) -> Result<[u8; 32], String> {
    let pem = config.checkpoint_key.read_bytes()?;
    let der = PrivatePkcs8KeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("the checkpoint key is not a PKCS#8 PEM key: {e}"))?;
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der())
        .map_err(|e| format!("the checkpoint key is not an Ed25519 key: {e}"))?;
    pair.public_key()
        .as_ref()
        .try_into()
        .map_err(|_| "the checkpoint key is not 32 bytes".to_owned())
}

/// Signs the short-lived `Bru-Assertion` a provider can verify.
pub struct AssertionSigner {
    /// Parsed once: building the key pair from PKCS#8 runs a pairwise
    /// consistency test, which cost as much as the signature itself when it
    /// was done per call (as `jsonwebtoken::encode` does).
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    /// The JWS protected header, base64url, the same for every assertion.
    header_b64: String,
    x: String,
    y: String,
    kid: String,
    issuer: String,
}

/// What Bru asserts to the provider about one transfer.
#[derive(Serialize)]
pub struct AssertionClaims<'a> {
    pub iss: &'a str,
    pub aud: &'a str,
    pub iat: i64,
    pub exp: i64,
    pub jti: &'a str,
    pub transfer_id: &'a str,
    pub consumer: &'a str,
    pub supplier: Option<&'a str>,
    pub dataset: &'a str,
    pub purpose: Option<&'a str>,
    pub basis: &'a str,
    pub legal_ref: Option<&'a str>,
    pub consent_id: Option<&'a str>,
    pub subject: Option<&'a str>,
}

/// How long an assertion is valid: long enough for the provider to check it, too short to replay.
pub const ASSERTION_TTL_S: i64 = 60;

impl AssertionSigner {
    fn from_pem(pem: &[u8], issuer: &str) -> Result<Self, String> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem)
            .map_err(|e| format!("the assertion key is not a PKCS#8 PEM key: {e}"))?;
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.secret_pkcs8_der())
                .map_err(|e| format!("the assertion key is not a P-256 key: {e}"))?;
        // Uncompressed point: 0x04 ‖ x ‖ y.
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return Err("the assertion key's public point is not uncompressed P-256".into());
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        let kid = thumbprint_ec(&x, &y);
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "kid": kid});
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        Ok(AssertionSigner {
            pair,
            rng: SystemRandom::new(),
            header_b64,
            x,
            y,
            kid,
            issuer: issuer.to_owned(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn sign(&self, claims: &AssertionClaims<'_>) -> Result<String, String> {
        self.sign_claims(claims)
    }

    /// Signs any claims with the assertion key (ES256, `typ` JWT, this key's
    /// `kid`), e.g. a consent receipt.
    pub fn sign_claims<T: Serialize>(&self, claims: &T) -> Result<String, String> {
        let payload = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        // header.payload.signature, each base64url without padding (RFC 7515).
        let mut jws = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 100);
        jws.push_str(&self.header_b64);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jws);
        let signature = self
            .pair
            .sign(&self.rng, jws.as_bytes())
            .map_err(|_| "the assertion could not be signed".to_owned())?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jws);
        Ok(jws)
    }

    /// The key id published in `/.well-known/jwks.json`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({"kty": "EC", "crv": "P-256", "x": self.x, "y": self.y, "kid": self.kid, "use": "sig", "alg": "ES256"})
    }
}

/// Keyed pseudonyms of person numbers for audit records; in consent-db, so
/// that the citizen portal searches the log with the same pseudonyms.
pub use consent_db::Pseudonymiser;

/// RFC 7638 thumbprints, so key ids are stable and derived from the key.
fn thumbprint_ec(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
}

fn thumbprint_okp(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
}
