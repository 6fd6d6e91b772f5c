//! Keys and JWTs built by hand, so that a test can put anything in a header,
//! a payload or a signature (RFC 8725 attack tokens included).

use std::sync::{Arc, Mutex, OnceLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair as _, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// base64url without padding, as JOSE uses it.
pub fn b64u(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
pub fn b64u_decode(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("not base64url: {s:?}: {e}"))
}

/// PEM armour around DER.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// RSA key material, generated once per test process and shared (generation
/// is slow on a small machine). Index 0: the Maskinporten test issuer, 1: the
/// audience issuer, 2: an attacker, 3: a rotated key.
fn rsa_pair(index: usize) -> Arc<RsaKeyPair> {
    static POOL: OnceLock<Mutex<Vec<Arc<RsaKeyPair>>>> = OnceLock::new();
    let pool = POOL.get_or_init(|| Mutex::new(Vec::new()));
    let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
    while pool.len() <= index {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("generate RSA key");
        pool.push(Arc::new(pair));
    }
    Arc::clone(&pool[index])
}

/// An RSA signing key with a `kid`.
#[derive(Clone)]
pub struct RsaKey {
    pair: Arc<RsaKeyPair>,
    pub kid: String,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaKey({})", self.kid)
    }
}

impl RsaKey {
    /// Key material number `index` of the shared pool, under a fresh kid.
    pub fn pooled(index: usize, kid_prefix: &str) -> Self {
        RsaKey {
            pair: rsa_pair(index),
            kid: format!("{kid_prefix}-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The public key as a JWK (`kty` RSA).
    pub fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": b64u(public.modulus().big_endian_without_leading_zero()),
            "e": b64u(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// Public JWK members only (`n`, `e`, `kty`), as an attacker would embed them.
    pub fn public_members(&self) -> Value {
        let mut jwk = self.jwk();
        if let Some(o) = jwk.as_object_mut() {
            o.remove("use");
            o.remove("alg");
        }
        jwk
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig)
            .expect("RSA sign");
        sig
    }

    /// SubjectPublicKeyInfo DER (what `-----BEGIN PUBLIC KEY-----` holds).
    pub fn spki_der(&self) -> Vec<u8> {
        self.pair
            .public_key()
            .as_der()
            .expect("SPKI DER")
            .as_ref()
            .to_vec()
    }

    pub fn spki_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki_der())
    }

    /// PKCS#1 `RSAPublicKey` DER.
    pub fn pkcs1_der(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    pub fn pkcs1_pem(&self) -> String {
        pem("RSA PUBLIC KEY", &self.pkcs1_der())
    }

    /// PKCS#8 private key PEM.
    pub fn pkcs8_pem(&self) -> String {
        let der: aws_lc_rs::encoding::Pkcs8V1Der = self.pair.as_der().expect("PKCS#8");
        pem("PRIVATE KEY", der.as_ref())
    }
}

/// A P-256 signing key with a `kid`.
#[derive(Clone)]
pub struct EcKey {
    pair: Arc<EcdsaKeyPair>,
    pub kid: String,
}

impl std::fmt::Debug for EcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EcKey({})", self.kid)
    }
}

impl EcKey {
    pub fn generate(kid_prefix: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key");
        EcKey {
            pair: Arc::new(pair),
            kid: format!("{kid_prefix}-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    pub fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        assert_eq!(point.len(), 65, "uncompressed P-256 point");
        json!({
            "kty": "EC",
            "crv": "P-256",
            "use": "sig",
            "alg": "ES256",
            "kid": self.kid,
            "x": b64u(&point[1..33]),
            "y": b64u(&point[33..65]),
        })
    }

    /// ECDSA P-256 SHA-256, fixed-length `r ‖ s` as JWS wants it.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.pair
            .sign(&SystemRandom::new(), msg)
            .expect("ECDSA sign")
            .as_ref()
            .to_vec()
    }
}

/// How a [`Jwt`] gets its signature.
#[derive(Clone, Debug)]
pub enum Signer {
    Rsa(RsaKey),
    Ec(EcKey),
    /// HMAC-SHA256 with these bytes as the secret.
    Hmac(Vec<u8>),
    /// These exact signature bytes (empty for none).
    Fixed(Vec<u8>),
}

impl Signer {
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            Signer::Rsa(k) => k.sign(msg),
            Signer::Ec(k) => k.sign(msg),
            Signer::Hmac(secret) => {
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
                aws_lc_rs::hmac::sign(&key, msg).as_ref().to_vec()
            }
            Signer::Fixed(sig) => sig.clone(),
        }
    }
}

/// A JWT under construction: header and claims as JSON objects.
#[derive(Clone, Debug)]
pub struct Jwt {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

impl Jwt {
    pub fn new(header: Value, claims: Value) -> Self {
        let header = header.as_object().cloned().unwrap_or_default();
        let claims = claims.as_object().cloned().unwrap_or_default();
        Jwt { header, claims }
    }

    /// Sets a header member.
    pub fn header(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.header.insert(key.to_owned(), value.into());
        self
    }

    /// Removes a header member.
    pub fn without_header(mut self, key: &str) -> Self {
        self.header.remove(key);
        self
    }

    /// Sets a claim.
    pub fn claim(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(key.to_owned(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without_claim(mut self, key: &str) -> Self {
        self.claims.remove(key);
        self
    }

    pub fn header_json(&self) -> String {
        Value::Object(self.header.clone()).to_string()
    }

    pub fn claims_json(&self) -> String {
        Value::Object(self.claims.clone()).to_string()
    }

    /// Signs `b64u(header).b64u(claims)` with `signer`.
    pub fn sign(&self, signer: &Signer) -> String {
        raw_token(&self.header_json(), &self.claims_json(), signer)
    }
}

/// A compact JWS from raw header and payload text, signed by `signer`.
pub fn raw_token(header_json: &str, payload_json: &str, signer: &Signer) -> String {
    let input = format!("{}.{}", b64u(header_json), b64u(payload_json));
    let sig = signer.sign(input.as_bytes());
    format!("{input}.{}", b64u(sig))
}

/// Splits a compact JWS into its three segments.
pub fn segments(token: &str) -> (String, String, String) {
    let mut it = token.splitn(3, '.');
    let h = it.next().unwrap_or_default().to_owned();
    let p = it.next().unwrap_or_default().to_owned();
    let s = it.next().unwrap_or_default().to_owned();
    (h, p, s)
}

/// The decoded JSON of a token's header and payload (no verification).
pub fn peek(token: &str) -> (Value, Value) {
    let (h, p, _) = segments(token);
    let header = serde_json::from_slice(&b64u_decode(&h)).expect("header JSON");
    let payload = serde_json::from_slice(&b64u_decode(&p)).expect("payload JSON");
    (header, payload)
}

/// Maskinporten-style claims for `org` with `scope`, issued by `iss`.
pub fn maskinporten_claims(iss: &str, org: &str, scope: &str) -> Value {
    let now = now();
    json!({
        "iss": iss,
        "iat": now,
        "exp": now + 300,
        "jti": uuid::Uuid::new_v4().to_string(),
        "client_id": format!("client-{org}"),
        "scope": scope,
        "token_type": "Bearer",
        "consumer": {
            "authority": "iso6523-actorid-upis",
            "ID": format!("0192:{org}"),
        },
    })
}
