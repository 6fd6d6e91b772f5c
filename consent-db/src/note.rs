//! Checkpoints as C2SP signed notes (c2sp.org/signed-note,
//! c2sp.org/tlog-checkpoint), signed with Ed25519:
//!
//! ```text
//! <origin>
//! <tree size>
//! <base64 root hash>
//!
//! — <key name> <base64(key id ‖ signature)>
//! ```
//!
//! The key name is the origin, and the key id is the first four bytes of
//! SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key).

use aws_lc_rs::digest;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::merkle::Hash;

/// The C2SP signature type byte of Ed25519.
const ED25519_TYPE: u8 = 0x01;
/// Notes are short; anything larger is not ours.
const MAX_NOTE_BYTES: usize = 16 * 1024;

/// A tree head as a checkpoint states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// A note is malformed or its signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("the note is malformed: {0}")]
    Malformed(&'static str),
    #[error("the origin {0:?} cannot be a key name (empty, or has a space or a '+')")]
    BadOrigin(String),
    #[error("the note has no signature by the checkpoint key ({0})")]
    NoSignature(String),
    #[error("the signature by {0} does not verify")]
    BadSignature(String),
}

impl Checkpoint {
    /// The note text (what is signed): three lines, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Parses the note text of a checkpoint (extension lines are refused:
    /// Bru writes none).
    pub fn parse_body(text: &str) -> Result<Checkpoint, NoteError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(NoteError::Malformed("the text does not end in a newline"))?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root), None) =
            (lines.next(), lines.next(), lines.next(), lines.next())
        else {
            return Err(NoteError::Malformed("a checkpoint has exactly three lines"));
        };
        check_key_name(origin)?;
        // Decimal without leading zeros, as tlog-checkpoint requires.
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(NoteError::Malformed(
                "the tree size is not a decimal number",
            ));
        }
        let size = size
            .parse()
            .map_err(|_| NoteError::Malformed("the tree size is too large"))?;
        let root: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(NoteError::Malformed(
                "the root hash is not 32 bytes of base64",
            ))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

fn check_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty()
        || name.contains('+')
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(NoteError::BadOrigin(name.chars().take(80).collect()));
    }
    Ok(())
}

/// The C2SP key id of an Ed25519 key under `name`.
pub fn key_id(name: &str, public_key: &[u8]) -> [u8; 4] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(name.as_bytes());
    ctx.update(&[0x0a, ED25519_TYPE]);
    ctx.update(public_key);
    let d = ctx.finish();
    let mut id = [0u8; 4];
    id.copy_from_slice(&d.as_ref()[..4]);
    id
}

/// The verifier key string (`<name>+<hex key id>+<base64(0x01 ‖ key)>`) that
/// note tools such as golang.org/x/mod/sumdb/note take.
pub fn verifier_key(name: &str, public_key: &[u8]) -> String {
    let id: String = key_id(name, public_key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut typed = vec![ED25519_TYPE];
    typed.extend_from_slice(public_key);
    format!("{name}+{id}+{}", STANDARD.encode(typed))
}

/// Parses a verifier key string: the key name and the 32-byte public key.
pub fn parse_verifier_key(vkey: &str) -> Result<(String, [u8; 32]), NoteError> {
    // The base64 of the key may itself hold a '+': split at the first two only.
    let mut parts = vkey.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::Malformed("a verifier key is name+keyid+key"));
    };
    check_key_name(name)?;
    let typed = STANDARD
        .decode(key)
        .map_err(|_| NoteError::Malformed("the verifier key is not base64"))?;
    let public_key: [u8; 32] = match typed.split_first() {
        Some((&ED25519_TYPE, rest)) => rest
            .try_into()
            .map_err(|_| NoteError::Malformed("an Ed25519 key is 32 bytes"))?,
        _ => {
            return Err(NoteError::Malformed(
                "the verifier key is not an Ed25519 key",
            ))
        }
    };
    let expected: String = key_id(name, &public_key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if id != expected {
        return Err(NoteError::Malformed(
            "the verifier key's id does not match its key",
        ));
    }
    Ok((name.to_owned(), public_key))
}

/// Signs `checkpoint` with `key` under the key name `checkpoint.origin`.
pub fn sign(checkpoint: &Checkpoint, key: &Ed25519KeyPair) -> Result<String, NoteError> {
    sign_note(&checkpoint.origin, &checkpoint.body(), key)
}

/// Parses a signed checkpoint and verifies its signature by `public_key`
/// under the key name of its own origin.
pub fn open(note: &str, public_key: &[u8; 32]) -> Result<Checkpoint, NoteError> {
    let (text, _) = split_note(note)?;
    let checkpoint = Checkpoint::parse_body(text)?;
    open_note(note, &checkpoint.origin, public_key)?;
    Ok(checkpoint)
}

/// Signs any note text (ending in a newline) with `key` under `name`.
pub fn sign_note(name: &str, text: &str, key: &Ed25519KeyPair) -> Result<String, NoteError> {
    check_key_name(name)?;
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("the text does not end in a newline"));
    }
    let signature = key.sign(text.as_bytes());
    let mut blob = key_id(name, key.public_key().as_ref()).to_vec();
    blob.extend_from_slice(signature.as_ref());
    Ok(format!(
        "{text}\n\u{2014} {name} {}\n",
        STANDARD.encode(blob)
    ))
}

/// The note's text and its signature lines (without the blank line between).
fn split_note(note: &str) -> Result<(&str, &str), NoteError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(NoteError::Malformed("the note is too large"));
    }
    if note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::Malformed("the note holds a control character"));
    }
    // The text ends at the last blank line; signature lines follow it.
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    Ok((&note[..=split], &note[split + 2..]))
}

/// Verifies that `note` carries a good signature by `public_key` under
/// `name`, and returns its text. Signatures by other keys are ignored, as
/// the note format asks; a note without a good one is refused.
pub fn open_note<'n>(
    note: &'n str,
    name: &str,
    public_key: &[u8; 32],
) -> Result<&'n str, NoteError> {
    let (text, signatures) = split_note(note)?;
    let id = key_id(name, public_key);
    let lines = signatures.strip_suffix('\n').ok_or(NoteError::Malformed(
        "the signatures do not end in a newline",
    ))?;
    let mut ours = None;
    for line in lines.split('\n') {
        let rest = line.strip_prefix("\u{2014} ").ok_or(NoteError::Malformed(
            "a signature line starts with an em dash",
        ))?;
        let (signer, blob) = rest.split_once(' ').ok_or(NoteError::Malformed(
            "a signature line is name and signature",
        ))?;
        let blob = STANDARD
            .decode(blob)
            .map_err(|_| NoteError::Malformed("a signature is not base64"))?;
        if blob.len() < 4 {
            return Err(NoteError::Malformed(
                "a signature is shorter than its key id",
            ));
        }
        if signer == name && blob[..4] == id {
            ours = Some(blob);
        }
    }
    let blob = ours.ok_or_else(|| NoteError::NoSignature(name.to_owned()))?;
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(text.as_bytes(), &blob[4..])
        .map_err(|_| NoteError::BadSignature(name.to_owned()))?;
    Ok(text)
}

/// The checkpoint origin (and key name) of a gateway at `public_url`: its
/// host and path without the scheme, then `/bru-log`.
pub fn origin_for(public_url: &str) -> String {
    let rest = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest);
    format!("{}/bru-log", rest.trim_end_matches('/'))
}

#[cfg(test)]
mod tests;
