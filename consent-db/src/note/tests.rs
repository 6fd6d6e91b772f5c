#![allow(clippy::unwrap_used)]

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::*;

/// golang.org/x/mod/sumdb/note's example key and note (note_test.go).
const PETER_SKEY_SEED: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_NOTE_SIG: &str =
    "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

fn peter() -> Ed25519KeyPair {
    let typed = STANDARD.decode(PETER_SKEY_SEED).unwrap();
    assert_eq!(typed[0], 0x01);
    Ed25519KeyPair::from_seed_unchecked(&typed[1..]).unwrap()
}

fn key() -> Ed25519KeyPair {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn public(key: &Ed25519KeyPair) -> [u8; 32] {
    key.public_key().as_ref().try_into().unwrap()
}

#[test]
fn matches_the_go_note_package_byte_for_byte() {
    let key = peter();
    assert_eq!(
        verifier_key("PeterNeumann", key.public_key().as_ref()),
        PETER_VKEY
    );
    let note = sign_note("PeterNeumann", PETER_TEXT, &key).unwrap();
    assert_eq!(note, format!("{PETER_TEXT}\n{PETER_NOTE_SIG}"));
    let (name, pk) = parse_verifier_key(PETER_VKEY).unwrap();
    assert_eq!(name, "PeterNeumann");
    assert_eq!(open_note(&note, &name, &pk).unwrap(), PETER_TEXT);
    let forged = note.replace("cryptography", "cryptographY");
    assert_eq!(
        open_note(&forged, &name, &pk),
        Err(NoteError::BadSignature("PeterNeumann".into()))
    );
}

#[test]
fn verifier_keys_with_a_plus_in_their_base64_parse() {
    // transparency-dev/formats' test key; its base64 holds a '+'.
    let (name, _) =
        parse_verifier_key("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6").unwrap();
    assert_eq!(name, "TEST");
    assert!(
        parse_verifier_key("TEST+7997405d+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6").is_err()
    );
    assert!(parse_verifier_key("PeterNeumann").is_err());
}

#[test]
fn checkpoints_round_trip_and_have_the_c2sp_shape() {
    let key = key();
    let cp = Checkpoint {
        origin: origin_for("https://localhost:8443"),
        size: 42,
        root: crate::merkle::leaf_hash(b"x"),
    };
    assert_eq!(cp.origin, "localhost:8443/bru-log");
    let note = sign(&cp, &key).unwrap();
    let mut lines = note.split('\n');
    assert_eq!(lines.next(), Some("localhost:8443/bru-log"));
    assert_eq!(lines.next(), Some("42"));
    assert_eq!(lines.next(), Some(STANDARD.encode(cp.root).as_str()));
    assert_eq!(lines.next(), Some(""));
    let sig = lines.next().unwrap();
    assert!(sig.starts_with("\u{2014} localhost:8443/bru-log "), "{sig}");
    let blob = STANDARD.decode(sig.rsplit(' ').next().unwrap()).unwrap();
    assert_eq!(blob.len(), 4 + 64);
    assert_eq!(blob[..4], key_id(&cp.origin, key.public_key().as_ref()));
    assert_eq!(lines.next(), Some(""));
    assert_eq!(lines.next(), None);
    assert_eq!(open(&note, &public(&key)).unwrap(), cp);
}

#[test]
fn tampered_or_foreign_checkpoints_are_refused() {
    let key = key();
    let pk = public(&key);
    let cp = Checkpoint {
        origin: "bru.example/bru-log".into(),
        size: 7,
        root: [3u8; 32],
    };
    let note = sign(&cp, &key).unwrap();
    // Another size, same signature.
    assert!(matches!(
        open(&note.replacen("\n7\n", "\n8\n", 1), &pk),
        Err(NoteError::BadSignature(_))
    ));
    // Signed by another key.
    let other = sign(&cp, &self::key()).unwrap();
    // (its key id differs, so it is not even a candidate)
    assert!(matches!(open(&other, &pk), Err(NoteError::NoSignature(_))));
    // A signature line under another name is ignored, so none is left.
    let renamed = note.replace(
        "\u{2014} bru.example/bru-log ",
        "\u{2014} evil.example/bru-log ",
    );
    assert!(matches!(
        open(&renamed, &pk),
        Err(NoteError::NoSignature(_))
    ));
    // A flipped bit in the signature.
    let sig_at = note.rfind(' ').unwrap() + 10;
    let mut bytes = note.clone().into_bytes();
    bytes[sig_at] = if bytes[sig_at] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).unwrap();
    assert!(open(&flipped, &pk).is_err());
    // Shapes that are not checkpoints.
    for bad in [
        "",
        "no blank line\n",
        "a\n1\nAAAA\n\n\u{2014} a AAAAAAAA\n",
        "a b\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u{2014} a AAAAAAAA\n",
        "a\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u{2014} a AAAAAAAA\n",
        "a\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next\n\n\u{2014} a AAAAAAAA\n",
        "a\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n- a AAAAAAAA\n",
    ] {
        assert!(open(bad, &pk).is_err(), "{bad:?}");
    }
}
