//! Page tokens: what Bru writes into a FHIR paging link instead of the
//! provider's path and query (which name the patient). A token is the
//! provider's path-and-query under the dataset and an expiry, sealed with
//! AES-256-GCM-SIV under a key derived from the pseudonym key, with the
//! consumer, supplier and dataset as associated data. So a token opens
//! only for the caller and dataset it was written for, only until it
//! expires, and on any replica (they share the pseudonym key; no state).
//! GCM-SIV keeps a repeated random nonce from revealing more than that two
//! tokens are equal.
//!
//! A call with `?bru_page={token}` is checked, recorded and forwarded as
//! the call the token holds: the subject is read from the restored query.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM_SIV, NONCE_LEN};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// How long a paging link works: a client pages through a search within
/// minutes; an hour is what FHIR servers commonly keep a search's pages.
pub const LIFETIME_S: u64 = 3600;

/// The longest path-and-query a token holds (larger links are removed): a
/// token is about 4/3 of it, and the link must fit a header block.
const MAX_TARGET_BYTES: usize = 4096;

/// Domain separation of the derived key.
const KEY_LABEL: &[u8] = b"bru fhir page token v1";
const VERSION: u8 = 1;

pub struct PageTokens {
    key: LessSafeKey,
    rng: SystemRandom,
}

/// Why a page token was not accepted; the caller is told only that it was not.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageTokenError {
    #[error("not a page token")]
    Malformed,
    #[error("the page token was written for another caller or dataset, or altered")]
    NotOpened,
    #[error("the page token has expired")]
    Expired,
}

/// Who a token is for: consumer, supplier and dataset of the call whose
/// answer held the link.
pub fn binding(consumer: &str, supplier: Option<&str>, dataset: &str) -> String {
    format!("{consumer}\n{}\n{dataset}", supplier.unwrap_or("-"))
}

impl PageTokens {
    /// The key is HMAC-SHA256(pseudonym key, label): every replica derives
    /// the same, and it is no use for pseudonyms.
    pub fn new(pseudonym_secret: &[u8]) -> Result<PageTokens, String> {
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, pseudonym_secret),
            KEY_LABEL,
        );
        let key = UnboundKey::new(&AES_256_GCM_SIV, derived.as_ref())
            .map_err(|_| "cannot make the page token key".to_owned())?;
        Ok(PageTokens {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// Seals `target` (path and query under the dataset) for `binding` until `now + LIFETIME_S`.
    pub fn seal(&self, binding: &str, target: &str, now: u64) -> Option<String> {
        if target.len() > MAX_TARGET_BYTES {
            return None;
        }
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut data = Vec::with_capacity(8 + target.len() + 16);
        data.extend_from_slice(&(now + LIFETIME_S).to_be_bytes());
        data.extend_from_slice(target.as_bytes());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(binding)),
                &mut data,
            )
            .ok()?;
        let mut token = Vec::with_capacity(1 + NONCE_LEN + data.len());
        token.push(VERSION);
        token.extend_from_slice(&nonce);
        token.extend_from_slice(&data);
        Some(URL_SAFE_NO_PAD.encode(token))
    }

    /// The path-and-query a token holds, if it is for `binding` and unexpired.
    pub fn open(&self, binding: &str, token: &str, now: u64) -> Result<String, PageTokenError> {
        if token.len() > MAX_TARGET_BYTES * 2 {
            return Err(PageTokenError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| PageTokenError::Malformed)?;
        let (version, rest) = raw.split_first().ok_or(PageTokenError::Malformed)?;
        if *version != VERSION || rest.len() < NONCE_LEN + 8 + 16 {
            return Err(PageTokenError::Malformed);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| PageTokenError::Malformed)?;
        let mut data = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad(binding)), &mut data)
            .map_err(|_| PageTokenError::NotOpened)?;
        let (expiry, target) = plain.split_at(8);
        let expiry = u64::from_be_bytes(expiry.try_into().map_err(|_| PageTokenError::Malformed)?);
        if now >= expiry {
            return Err(PageTokenError::Expired);
        }
        String::from_utf8(target.to_vec()).map_err(|_| PageTokenError::Malformed)
    }
}

fn aad(binding: &str) -> Vec<u8> {
    let mut aad = KEY_LABEL.to_vec();
    aad.push(0);
    aad.extend_from_slice(binding.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> PageTokens {
        PageTokens::new(&[7u8; 32]).unwrap_or_else(|e| panic!("{e}"))
    }

    const TARGET: &str = "?patient=12884513829&_page=2";

    #[test]
    fn a_token_opens_for_its_caller_and_dataset_until_it_expires() {
        let t = tokens();
        let me = binding("0192:921429002", None, "fhir/careplan");
        let token = t.seal(&me, TARGET, 1000).unwrap_or_default();
        assert!(!token.contains("12884513829"), "{token}");
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(t.open(&me, &token, 1000).as_deref(), Ok(TARGET));
        assert_eq!(
            t.open(&me, &token, 1000 + LIFETIME_S),
            Err(PageTokenError::Expired)
        );
        for other in [
            binding("0192:971000007", None, "fhir/careplan"),
            binding("0192:921429002", Some("0192:999000428"), "fhir/careplan"),
            binding("0192:921429002", None, "fhir/plain"),
        ] {
            assert_eq!(t.open(&other, &token, 1000), Err(PageTokenError::NotOpened));
        }
        // Another key (another Bru) cannot open it; an altered token neither.
        let other = PageTokens::new(&[8u8; 32]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            other.open(&me, &token, 1000),
            Err(PageTokenError::NotOpened)
        );
        let mut altered = token.into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap_or_default();
        assert!(t.open(&me, &altered, 1000).is_err());
        assert_eq!(t.open(&me, "", 1000), Err(PageTokenError::Malformed));
        assert_eq!(t.open(&me, "!!", 1000), Err(PageTokenError::Malformed));
    }

    #[test]
    fn oversized_targets_are_not_sealed() {
        let t = tokens();
        assert!(t.seal("b", &"x".repeat(MAX_TARGET_BYTES + 1), 0).is_none());
    }
}
