//! Bru's own keys: the assertion keys that sign `Bru-Assertion` (ES256 by
//! default; EdDSA or a provider's own HS256 secret where its config says so,
//! SPEC section 12), the checkpoint key that signs the transparency log, and
//! the pseudonym key behind `subject_ref`. The public halves of the
//! asymmetric keys are published in `/.well-known/jwks.json`; an HS256
//! secret never is.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use connectors::assertion::{thumbprint_okp, AssertionKey, Ed25519Key, Es256Key, Hs256Key};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde::Serialize;

pub use connectors::assertion::{AssertionClaims, ASSERTION_TTL_S};

use crate::config::{AssertionConfig, Config, KeysConfig};

pub struct Keys {
    pub assertion: AssertionSigner,
    /// The key each provider's `Bru-Assertion` is signed with, parsed once
    /// at start (a provider not here gets the ES256 key).
    provider_assertion: HashMap<String, AssertionKey>,
    pub checkpoint: Ed25519KeyPair,
    pub checkpoint_kid: String,
    pub pseudonym: Pseudonymiser,
    /// Seals FHIR paging links (derived from the pseudonym key).
    pub page_tokens: crate::page_token::PageTokens,
    jwks: serde_json::Value,
}

impl Keys {
    pub fn load(config: &Config) -> Result<Keys, String> {
        let keys = &config.keys;
        let assertion_pem = keys.assertion_key.read_bytes()?;
        let assertion = AssertionSigner::from_pem(&assertion_pem, &config.public_url)?;
        let checkpoint_pem = keys.checkpoint_key.read_bytes()?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(&checkpoint_pem)
            .map_err(|e| format!("the checkpoint key is not a PKCS#8 PEM key: {e}"))?;
        let checkpoint = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der())
            .map_err(|e| format!("the checkpoint key is not an Ed25519 key: {e}"))?;
        let checkpoint_x = URL_SAFE_NO_PAD.encode(checkpoint.public_key().as_ref());
        let checkpoint_kid = thumbprint_okp(&checkpoint_x);
        let pseudonym_secret = keys.pseudonym_key.read_bytes()?;
        let pseudonym = Pseudonymiser::new(&pseudonym_secret)?;
        let page_tokens = crate::page_token::PageTokens::new(&pseudonym_secret)?;

        let eddsa = match &keys.assertion_ed25519_key {
            None => None,
            Some(secret) => {
                let key = Ed25519Key::from_pem(&secret.read_bytes()?).map_err(|e| e.to_string())?;
                // One key, one job: a JWS signed with the checkpoint key
                // would carry the log's signature over bytes Bru did not mean
                // as a checkpoint (and both would share one kid).
                if key.public_key() == checkpoint.public_key().as_ref() {
                    return Err(
                        "the Ed25519 assertion key must not be the checkpoint key".to_owned()
                    );
                }
                Some(Arc::new(key))
            }
        };
        let mut provider_assertion = HashMap::new();
        for (provider, upstream) in &config.upstreams {
            let key = match &upstream.assertion {
                AssertionConfig::Es256 => AssertionKey::Es256(assertion.key.clone()),
                AssertionConfig::EdDsa => match &eddsa {
                    Some(k) => AssertionKey::EdDsa(k.clone()),
                    // `bru check` refuses this; kept as an error, not a panic.
                    None => {
                        return Err(format!(
                            "upstream {provider}: assertion = \"eddsa\" needs [keys] assertion_ed25519_key_file"
                        ))
                    }
                },
                AssertionConfig::Hs256(secret) => {
                    // The provider holds this secret: it must not open
                    // anything else of Bru's.
                    if secret.expose() == pseudonym_secret.as_slice() {
                        return Err(format!(
                            "upstream {provider}: the HS256 assertion secret must not be the pseudonym key"
                        ));
                    }
                    AssertionKey::Hs256(Arc::new(
                        Hs256Key::new(secret.expose())
                            .map_err(|e| format!("upstream {provider}: {e}"))?,
                    ))
                }
            };
            provider_assertion.insert(provider.clone(), key);
        }

        // The checkpoint key stays the first OKP key (docs/audit-log.md), as
        // it was before there could be two.
        let mut published = vec![
            assertion.key.public_jwk(),
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": checkpoint_x,
                "kid": checkpoint_kid, "use": "sig", "alg": "EdDSA"}),
        ];
        if let Some(k) = &eddsa {
            published.push(k.public_jwk());
        }
        let jwks = serde_json::json!({ "keys": published });
        Ok(Keys {
            assertion,
            provider_assertion,
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

    /// Signs a provider's `Bru-Assertion` with the key its config chose.
    pub fn sign_assertion(
        &self,
        provider: &str,
        claims: &AssertionClaims<'_>,
    ) -> Result<String, String> {
        match self.provider_assertion.get(provider) {
            Some(key) => key.sign(claims).map_err(|e| e.to_string()),
            None => self.assertion.sign_claims(claims),
        }
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

/// Bru's ES256 assertion key with its issuer: the default for
/// `Bru-Assertion`, and the key of consent receipts.
pub struct AssertionSigner {
    key: Arc<Es256Key>,
    issuer: String,
}

impl AssertionSigner {
    fn from_pem(pem: &[u8], issuer: &str) -> Result<Self, String> {
        Ok(AssertionSigner {
            key: Arc::new(Es256Key::from_pem(pem).map_err(|e| e.to_string())?),
            issuer: issuer.to_owned(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs any claims with the assertion key (ES256, `typ` JWT, this key's
    /// `kid`), e.g. a consent receipt.
    pub fn sign_claims<T: Serialize>(&self, claims: &T) -> Result<String, String> {
        self.key.sign_claims(claims).map_err(|e| e.to_string())
    }

    /// The key id published in `/.well-known/jwks.json`.
    pub fn kid(&self) -> &str {
        self.key.kid()
    }
}

/// Keyed pseudonyms of person numbers for audit records; in consent-db, so
/// that the citizen portal searches the log with the same pseudonyms.
pub use consent_db::Pseudonymiser;
