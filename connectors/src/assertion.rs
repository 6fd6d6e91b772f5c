//! Signing `Bru-Assertion` (SPEC section 12): the same claims, signed per
//! provider with ES256 (the default), EdDSA (Ed25519) or HS256 (a secret
//! shared with that provider only).
//!
//! Every key is parsed once, when Bru starts: building an ECDSA or Ed25519
//! key pair from PKCS#8 runs a pairwise consistency test that cost as much
//! as the signature itself when it was done per call (as
//! `jsonwebtoken::encode` does). The JWS protected header is also built once
//! per key and kept base64url-encoded.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde::Serialize;

/// How long an assertion is valid: long enough for the provider to check it, too short to replay.
pub const ASSERTION_TTL_S: i64 = 60;

/// An HS256 secret shorter than this is refused: RFC 7518 §3.2 asks for a
/// key at least as long as the hash output (256 bits).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// What Bru asserts to the provider about one transfer; the same claims
/// whichever algorithm signs them.
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

#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("the {what} is not a PKCS#8 PEM key")]
    NotPkcs8 { what: &'static str },
    #[error("the {what} is not {expected}")]
    WrongKey {
        what: &'static str,
        expected: &'static str,
    },
    #[error(
        "the HS256 assertion secret is {len} bytes; at least {MIN_HS256_SECRET_BYTES} are required"
    )]
    ShortSecret { len: usize },
    #[error("the claims cannot be serialised: {0}")]
    Claims(#[from] serde_json::Error),
    #[error("the assertion could not be signed")]
    Sign,
}

/// The algorithm a provider's assertions are signed with (`assertion = …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssertionAlgorithm {
    #[default]
    Es256,
    EdDsa,
    Hs256,
}

impl AssertionAlgorithm {
    /// The value of `assertion` in `[upstream.X]`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "es256" => Some(Self::Es256),
            "eddsa" => Some(Self::EdDsa),
            "hs256" => Some(Self::Hs256),
            _ => None,
        }
    }

    /// The JWS `alg` (RFC 7518, RFC 8037).
    pub fn jws_alg(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Hs256 => "HS256",
        }
    }
}

/// The protected header, base64url: `typ`, `alg` and, for the public-key
/// algorithms, the `kid` published in `/.well-known/jwks.json`. HS256 has no
/// `kid`: its key is never published, and a verifier looking one up in the
/// JWKS must find nothing.
fn header_b64(alg: AssertionAlgorithm, kid: Option<&str>) -> String {
    let header = match kid {
        Some(kid) => serde_json::json!({"typ": "JWT", "alg": alg.jws_alg(), "kid": kid}),
        None => serde_json::json!({"typ": "JWT", "alg": alg.jws_alg()}),
    };
    URL_SAFE_NO_PAD.encode(header.to_string())
}

/// `header.payload.signature`, each base64url without padding (RFC 7515).
/// (A thread-local buffer for the claims instead of `to_vec`'s Vec measured
/// no different, 1.15 against 1.15 µs for HS256: bench/README.md.)
fn compact<T: Serialize, S: AsRef<[u8]>>(
    header_b64: &str,
    claims: &T,
    sign: impl FnOnce(&[u8]) -> Result<S, AssertionError>,
) -> Result<String, AssertionError> {
    let payload = serde_json::to_vec(claims)?;
    // 4/3 for base64, plus up to 86 characters for a 64-byte signature.
    let mut jws = String::with_capacity(header_b64.len() + payload.len().div_ceil(3) * 4 + 90);
    jws.push_str(header_b64);
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut jws);
    let signature = sign(jws.as_bytes())?;
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jws);
    Ok(jws)
}

fn pkcs8_der(
    pem: &[u8],
    what: &'static str,
) -> Result<PrivatePkcs8KeyDer<'static>, AssertionError> {
    PrivatePkcs8KeyDer::from_pem_slice(pem).map_err(|_| AssertionError::NotPkcs8 { what })
}

/// The ES256 assertion key (PKCS#8 P-256), parsed once.
pub struct Es256Key {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    header_b64: String,
    x: String,
    y: String,
    kid: String,
}

impl Es256Key {
    pub fn from_pem(pem: &[u8]) -> Result<Self, AssertionError> {
        const WHAT: &str = "assertion key";
        let der = pkcs8_der(pem, WHAT)?;
        let wrong = AssertionError::WrongKey {
            what: WHAT,
            expected: "a P-256 key",
        };
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.secret_pkcs8_der())
                .map_err(|_| wrong)?;
        // Uncompressed point: 0x04 ‖ x ‖ y.
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return Err(AssertionError::WrongKey {
                what: WHAT,
                expected: "an uncompressed P-256 point",
            });
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        let kid = thumbprint_ec(&x, &y);
        Ok(Es256Key {
            header_b64: header_b64(AssertionAlgorithm::Es256, Some(&kid)),
            pair,
            rng: SystemRandom::new(),
            x,
            y,
            kid,
        })
    }

    /// Signs any claims (ES256, `typ` JWT, this key's `kid`), e.g. a consent receipt.
    pub fn sign_claims<T: Serialize>(&self, claims: &T) -> Result<String, AssertionError> {
        compact(&self.header_b64, claims, |input| {
            self.pair
                .sign(&self.rng, input)
                .map_err(|_| AssertionError::Sign)
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (RFC 7517/7518).
    pub fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({"kty": "EC", "crv": "P-256", "x": self.x, "y": self.y,
                           "kid": self.kid, "use": "sig", "alg": "ES256"})
    }
}

/// The EdDSA assertion key (PKCS#8 Ed25519), parsed once.
pub struct Ed25519Key {
    pair: Ed25519KeyPair,
    header_b64: String,
    x: String,
    kid: String,
}

impl Ed25519Key {
    pub fn from_pem(pem: &[u8]) -> Result<Self, AssertionError> {
        const WHAT: &str = "Ed25519 assertion key";
        let der = pkcs8_der(pem, WHAT)?;
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der()).map_err(|_| {
                AssertionError::WrongKey {
                    what: WHAT,
                    expected: "an Ed25519 key",
                }
            })?;
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let kid = thumbprint_okp(&x);
        Ok(Ed25519Key {
            header_b64: header_b64(AssertionAlgorithm::EdDsa, Some(&kid)),
            pair,
            x,
            kid,
        })
    }

    pub fn sign_claims<T: Serialize>(&self, claims: &T) -> Result<String, AssertionError> {
        // Ed25519 is deterministic: no randomness, and it cannot fail.
        compact(&self.header_b64, claims, |input| Ok(self.pair.sign(input)))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The raw public key (32 bytes).
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The public key as an OKP JWK (RFC 8037).
    pub fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": self.x,
                           "kid": self.kid, "use": "sig", "alg": "EdDSA"})
    }
}

/// The HS256 key of one provider: the secret it shares with Bru. Never
/// published, never logged (`Debug` shows no byte of it).
pub struct Hs256Key {
    key: hmac::Key,
    header_b64: String,
}

impl Hs256Key {
    pub fn new(secret: &[u8]) -> Result<Self, AssertionError> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(AssertionError::ShortSecret { len: secret.len() });
        }
        Ok(Hs256Key {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            header_b64: header_b64(AssertionAlgorithm::Hs256, None),
        })
    }

    pub fn sign_claims<T: Serialize>(&self, claims: &T) -> Result<String, AssertionError> {
        compact(&self.header_b64, claims, |input| {
            Ok(hmac::sign(&self.key, input))
        })
    }
}

impl fmt::Debug for Hs256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hs256Key(…)")
    }
}

/// The key one provider's assertions are signed with; cheap to clone.
#[derive(Clone)]
pub enum AssertionKey {
    Es256(Arc<Es256Key>),
    EdDsa(Arc<Ed25519Key>),
    Hs256(Arc<Hs256Key>),
}

impl AssertionKey {
    pub fn algorithm(&self) -> AssertionAlgorithm {
        match self {
            Self::Es256(_) => AssertionAlgorithm::Es256,
            Self::EdDsa(_) => AssertionAlgorithm::EdDsa,
            Self::Hs256(_) => AssertionAlgorithm::Hs256,
        }
    }

    pub fn sign(&self, claims: &AssertionClaims<'_>) -> Result<String, AssertionError> {
        match self {
            Self::Es256(k) => k.sign_claims(claims),
            Self::EdDsa(k) => k.sign_claims(claims),
            Self::Hs256(k) => k.sign_claims(claims),
        }
    }
}

impl fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AssertionKey({})", self.algorithm().jws_alg())
    }
}

/// RFC 7638 thumbprints, so key ids are stable and derived from the key.
pub fn thumbprint_ec(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
}

pub fn thumbprint_okp(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests;
