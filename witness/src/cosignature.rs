//! C2SP tlog-cosignature v1 with Ed25519 (c2sp.org/tlog-cosignature):
//!
//! ```text
//! — <cosigner name> base64(key id ‖ u64 big-endian timestamp ‖ signature)
//! ```
//!
//! over the message `cosignature/v1\ntime <timestamp>\n<checkpoint body>`.
//! The key id is SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4], and the
//! verifier key `name+<hex key id>+base64(0x04 ‖ public key)`.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The signature type byte of an Ed25519 cosignature (tlog-cosignature).
pub const COSIGNATURE_TYPE: u8 = 0x04;
/// Key id (4) + timestamp (8) + Ed25519 signature (64).
const BLOB_LEN: usize = 4 + 8 + 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    #[error("the cosigner key is malformed: {0}")]
    BadKey(&'static str),
    #[error("the note holds no cosignature by {0}")]
    Missing(String),
    #[error("the cosignature by {0} does not verify")]
    BadSignature(String),
    #[error("the cosignature is malformed: {0}")]
    Malformed(&'static str),
}

/// A witness as a log or a verifier knows it: its name and public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigner {
    pub name: String,
    pub public_key: [u8; 32],
}

fn check_name(name: &str) -> Result<(), CosignatureError> {
    if name.is_empty()
        || name.contains('+')
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(CosignatureError::BadKey(
            "a key name is not empty and has no space or '+'",
        ));
    }
    Ok(())
}

impl Cosigner {
    pub fn new(name: &str, public_key: [u8; 32]) -> Result<Cosigner, CosignatureError> {
        check_name(name)?;
        Ok(Cosigner {
            name: name.to_owned(),
            public_key,
        })
    }

    /// SHA-256(name ‖ 0x0A ‖ 0x04 ‖ key)[:4].
    pub fn key_id(&self) -> [u8; 4] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(self.name.as_bytes());
        ctx.update(&[0x0a, COSIGNATURE_TYPE]);
        ctx.update(&self.public_key);
        let d = ctx.finish();
        let mut id = [0u8; 4];
        id.copy_from_slice(&d.as_ref()[..4]);
        id
    }

    /// The C2SP verifier key (vkey) string.
    pub fn verifier_key(&self) -> String {
        let id: String = self.key_id().iter().map(|b| format!("{b:02x}")).collect();
        let mut typed = vec![COSIGNATURE_TYPE];
        typed.extend_from_slice(&self.public_key);
        format!("{}+{id}+{}", self.name, STANDARD.encode(typed))
    }

    /// Parses a verifier key of type 0x04 and checks its key id.
    pub fn parse_verifier_key(vkey: &str) -> Result<Cosigner, CosignatureError> {
        // The base64 may itself hold a '+': split at the first two only.
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CosignatureError::BadKey("a verifier key is name+keyid+key"));
        };
        let typed = STANDARD
            .decode(key)
            .map_err(|_| CosignatureError::BadKey("the key is not base64"))?;
        let public_key: [u8; 32] = match typed.split_first() {
            Some((&COSIGNATURE_TYPE, rest)) => rest
                .try_into()
                .map_err(|_| CosignatureError::BadKey("an Ed25519 key is 32 bytes"))?,
            _ => {
                return Err(CosignatureError::BadKey(
                    "not an Ed25519 cosignature key (type 0x04)",
                ))
            }
        };
        let cosigner = Cosigner::new(name, public_key)?;
        let expected: String = cosigner
            .key_id()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if id != expected {
            return Err(CosignatureError::BadKey(
                "the key id does not match the key",
            ));
        }
        Ok(cosigner)
    }

    /// Verifies this cosigner's cosignature among `lines` (note signature
    /// lines, each ending in a newline) over the checkpoint `body`, and
    /// returns its timestamp. Lines by other keys are ignored.
    pub fn verify(&self, body: &str, lines: &str) -> Result<u64, CosignatureError> {
        let id = self.key_id();
        let mut found = false;
        for line in lines.lines() {
            let Some((name, blob)) = line
                .strip_prefix("\u{2014} ")
                .and_then(|rest| rest.split_once(' '))
            else {
                continue;
            };
            if name != self.name {
                continue;
            }
            let Ok(blob) = STANDARD.decode(blob) else {
                continue;
            };
            if blob.len() != BLOB_LEN || blob[..4] != id {
                continue;
            }
            found = true;
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&blob[4..12]);
            let timestamp = u64::from_be_bytes(ts);
            let message = signed_message(body, timestamp);
            if UnparsedPublicKey::new(&ED25519, &self.public_key)
                .verify(message.as_bytes(), &blob[12..])
                .is_ok()
            {
                return Ok(timestamp);
            }
        }
        if found {
            Err(CosignatureError::BadSignature(self.name.clone()))
        } else {
            Err(CosignatureError::Missing(self.name.clone()))
        }
    }
}

/// The message a v1 cosignature signs.
pub fn signed_message(body: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{body}")
}

/// Cosigns the checkpoint `body` (its note text, ending in a newline) as
/// `name` at `timestamp` (POSIX seconds): one signature line with its newline.
pub fn cosign(
    name: &str,
    key: &Ed25519KeyPair,
    body: &str,
    timestamp: u64,
) -> Result<String, CosignatureError> {
    check_name(name)?;
    if timestamp > i64::MAX as u64 {
        return Err(CosignatureError::Malformed("the timestamp exceeds 2^63-1"));
    }
    let public_key: [u8; 32] = key
        .public_key()
        .as_ref()
        .try_into()
        .map_err(|_| CosignatureError::BadKey("an Ed25519 key is 32 bytes"))?;
    let cosigner = Cosigner::new(name, public_key)?;
    let signature = key.sign(signed_message(body, timestamp).as_bytes());
    let mut blob = Vec::with_capacity(BLOB_LEN);
    blob.extend_from_slice(&cosigner.key_id());
    blob.extend_from_slice(&timestamp.to_be_bytes());
    blob.extend_from_slice(signature.as_ref());
    Ok(format!("\u{2014} {name} {}\n", STANDARD.encode(blob)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("key");
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key")
    }

    const BODY: &str = "example.com/log\n3\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn a_cosignature_verifies_and_carries_its_time() {
        let k = key();
        let line = cosign("w.example/1", &k, BODY, 1_679_315_147).expect("cosign");
        let pk: [u8; 32] = k.public_key().as_ref().try_into().expect("32");
        let c = Cosigner::new("w.example/1", pk).expect("name");
        assert_eq!(c.verify(BODY, &line), Ok(1_679_315_147));
        let other = BODY.replace("\n3\n", "\n4\n");
        assert_eq!(
            c.verify(&other, &line),
            Err(CosignatureError::BadSignature("w.example/1".into()))
        );
        let parsed = Cosigner::parse_verifier_key(&c.verifier_key()).expect("vkey");
        assert_eq!(parsed, c);
    }

    #[test]
    fn the_key_id_follows_the_spec() {
        // SHA-256("n" ‖ 0x0A ‖ 0x04 ‖ 32 zero bytes)[:4], computed apart.
        let c = Cosigner::new("n", [0; 32]).expect("name");
        let mut m = b"n\n\x04".to_vec();
        m.extend_from_slice(&[0; 32]);
        let d = digest::digest(&digest::SHA256, &m);
        assert_eq!(c.key_id(), d.as_ref()[..4]);
        assert!(Cosigner::parse_verifier_key(
            "n+00000000+BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        )
        .is_err());
    }
}
