//! Keyed pseudonyms of person numbers: the `subject_ref` of audit records.
//! The gateway writes them, the citizen's access log searches by them, so
//! both take them from here.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use policy::PersonNumber;

/// The same person always gets the same `subject_ref`, and without the key
/// nobody can tell who it is.
#[derive(Clone)]
pub struct Pseudonymiser {
    key: hmac::Key,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymiser(..)")
    }
}

impl Pseudonymiser {
    pub fn new(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < 32 {
            return Err("the pseudonym key must be at least 32 bytes".into());
        }
        Ok(Pseudonymiser {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// HMAC-SHA256 of the number, base64url without padding.
    pub fn subject_ref(&self, person: &PersonNumber) -> String {
        let tag = hmac::sign(&self.key, person.expose().as_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// The opaque id a representative uses for the person they act for
    /// (`Bru-On-Behalf-Of`, SPEC 9.3): a keyed pseudonym under its own
    /// label, so it cannot be matched with a record's `subject_ref`.
    pub fn party_ref(&self, person: &PersonNumber) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"bru-party\0");
        ctx.update(person.expose().as_bytes());
        let tag = ctx.sign();
        format!("p-{}", URL_SAFE_NO_PAD.encode(&tag.as_ref()[..16]))
    }
}
