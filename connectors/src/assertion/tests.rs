#![allow(clippy::unwrap_used)]

use super::*;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ED25519};

fn claims() -> AssertionClaims<'static> {
    AssertionClaims {
        iss: "https://bru.example",
        aud: "0192:974760673",
        iat: 1_900_000_000,
        exp: 1_900_000_060,
        jti: "t-1",
        transfer_id: "t-1",
        consumer: "0192:889640782",
        supplier: None,
        dataset: "k429/sosialtjeneste",
        purpose: Some("sosialhjelp-saksbehandling"),
        basis: "statutory",
        legal_ref: Some("sosialtjenesteloven § 43"),
        consent_id: None,
        subject: None,
    }
}

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.validate_aud = false;
    v.validate_exp = false;
    v.required_spec_claims.clear();
    v
}

fn jwk_key(jwk: serde_json::Value) -> DecodingKey {
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk).unwrap();
    DecodingKey::from_jwk(&jwk).unwrap()
}

fn es256() -> Es256Key {
    let pem = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .serialize_pem();
    Es256Key::from_pem(pem.as_bytes()).unwrap()
}

fn ed25519() -> Ed25519Key {
    let pem = KeyPair::generate_for(&PKCS_ED25519)
        .unwrap()
        .serialize_pem();
    Ed25519Key::from_pem(pem.as_bytes()).unwrap()
}

const SECRET: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

#[test]
fn the_three_algorithms_sign_the_same_claims_and_verify_independently() {
    let es = es256();
    let ed = ed25519();
    let es_jwk = es.public_jwk();
    let ed_jwk = ed.public_jwk();
    let cases = [
        (
            AssertionKey::Es256(Arc::new(es)),
            Algorithm::ES256,
            jwk_key(es_jwk.clone()),
            Some(es_jwk["kid"].clone()),
        ),
        (
            AssertionKey::EdDsa(Arc::new(ed)),
            Algorithm::EdDSA,
            jwk_key(ed_jwk.clone()),
            Some(ed_jwk["kid"].clone()),
        ),
        (
            AssertionKey::Hs256(Arc::new(Hs256Key::new(SECRET).unwrap())),
            Algorithm::HS256,
            DecodingKey::from_secret(SECRET),
            None,
        ),
    ];
    let expected = serde_json::to_value(claims()).unwrap();
    for (key, alg, decoding, kid) in cases {
        let jws = key.sign(&claims()).unwrap();
        let header = decode_header(&jws).unwrap();
        assert_eq!(header.alg, alg, "{key:?}");
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(
            header.kid.map(serde_json::Value::String),
            kid,
            "{key:?}: kid"
        );
        let got = decode::<serde_json::Value>(&jws, &decoding, &validation(alg))
            .unwrap_or_else(|e| panic!("{key:?} does not verify: {e}"))
            .claims;
        assert_eq!(got, expected, "{key:?}: the claims");
    }
}

#[test]
fn a_tampered_assertion_does_not_verify() {
    let key = AssertionKey::Hs256(Arc::new(Hs256Key::new(SECRET).unwrap()));
    let jws = key.sign(&claims()).unwrap();
    let other = b"fedcba9876543210fedcba9876543210";
    assert!(decode::<serde_json::Value>(
        &jws,
        &DecodingKey::from_secret(other),
        &validation(Algorithm::HS256)
    )
    .is_err());
    let ed = ed25519();
    let jwk = ed.public_jwk();
    let jws = ed.sign_claims(&claims()).unwrap();
    let (head, sig) = jws.rsplit_once('.').unwrap();
    let (header, _) = head.split_once('.').unwrap();
    let mut forged_claims = serde_json::to_value(claims()).unwrap();
    forged_claims["consumer"] = "0192:999999999".into();
    let forged = format!(
        "{header}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(forged_claims.to_string())
    );
    assert!(
        decode::<serde_json::Value>(&forged, &jwk_key(jwk), &validation(Algorithm::EdDSA)).is_err()
    );
}

#[test]
fn a_short_hs256_secret_is_refused() {
    let err = Hs256Key::new(&SECRET[..31]).unwrap_err();
    assert!(
        matches!(err, AssertionError::ShortSecret { len: 31 }),
        "{err}"
    );
    assert!(err.to_string().contains("at least 32"), "{err}");
}

#[test]
fn keys_of_the_wrong_type_are_refused() {
    let p256 = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .serialize_pem();
    let ed = KeyPair::generate_for(&PKCS_ED25519)
        .unwrap()
        .serialize_pem();
    assert!(Ed25519Key::from_pem(p256.as_bytes()).is_err());
    assert!(Es256Key::from_pem(ed.as_bytes()).is_err());
    assert!(matches!(
        Es256Key::from_pem(b"no pem"),
        Err(AssertionError::NotPkcs8 { .. })
    ));
}

#[test]
fn debug_shows_no_secret() {
    let key = AssertionKey::Hs256(Arc::new(Hs256Key::new(SECRET).unwrap()));
    let shown = format!("{key:?} {:?}", Hs256Key::new(SECRET).unwrap());
    assert!(!shown.contains("0123"), "{shown}");
    assert!(shown.contains("HS256"), "{shown}");
}
