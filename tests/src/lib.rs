//! Black-box test harness for Bru: starts the real `bru` binary with real TLS,
//! a JWKS server and provider servers run by the test, and talks to it over
//! HTTPS (reqwest, or raw bytes over tokio-rustls).
//!
//! A test builds a [`TestWorld`] (temp dir, CA, keys, config, policy, JWKS
//! server, providers), starts [`Bru`] from it, mints tokens with the world's
//! keys or by hand ([`jwt`]), calls `/data/…`, and checks replies, what the
//! providers received, and the audit records (`bru audit export`).
#![allow(clippy::unwrap_used)]

pub mod altinn;
pub mod bru;
pub mod connectors;
pub mod consent;
pub mod demo;
pub mod jwt;
pub mod pg_tls;
pub mod pki;
pub mod represent;
pub mod servers;
pub mod transparency;
pub mod world;

pub use bru::{audit_export, bru_bin, send, spawn_bru, Bru, RawExchange, Reply};
pub use jwt::{b64u, b64u_decode, now, peek, raw_token, segments, EcKey, Jwt, RsaKey, Signer};
pub use servers::{JwksServer, Provider, Recorded, Trap};
pub use world::{find_record, TestWorld, WorldBuilder, AUDIENCE, ISSUER_AUD, ISSUER_ES, ISSUER_MP};

/// Demo organisations (SPEC section 8).
pub const K429: &str = "921429002";
pub const NAV: &str = "983440002";
pub const HELSENORGE: &str = "916542003";
pub const OMSORGSAPP: &str = "999000428";
pub const SNOOP: &str = "971000007";
/// A valid organisation number that no policy names.
pub const UNLISTED_ORG: &str = "920000002";

/// Demo persons (synthetic, month + 80).
pub const KARI: &str = "12884513829";
pub const OLA: &str = "03839113713";
pub const AISHA: &str = "24916214088";
pub const EMMA: &str = "07831453839";
pub const PER: &str = "15895013789";
/// Every demo person.
pub const PERSONS: [&str; 5] = [KARI, OLA, AISHA, EMMA, PER];
/// Kari's number with a wrong second control digit.
pub const BAD_CONTROL_DIGITS: &str = "12884513828";

pub const SCOPE_SOSIAL: &str = "k429:sosialtjeneste.read";
pub const SCOPE_SAK: &str = "k429:sak.read";
pub const SCOPE_INNTEKT: &str = "nav:inntekt.read";

pub const PURPOSE_SOSIAL: &str = "sosialhjelp-saksbehandling";
pub const PURPOSE_OMSORG: &str = "omsorgsbolig-soknad";
pub const PURPOSE_TILSYN: &str = "tilsyn";

/// Installs the aws-lc-rs rustls provider once per process.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// Whether an organisation claim (`"0192:N"`, `"N"` or `{"ID": "0192:N"}`) names `org`.
pub fn org_matches(value: &serde_json::Value, org: &str) -> bool {
    let iso = format!("0192:{org}");
    match value {
        serde_json::Value::String(s) => *s == iso || s == org,
        serde_json::Value::Object(o) => o
            .get("ID")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|s| s == iso),
        _ => false,
    }
}

#[cfg(test)]
mod selftest;

// ---- an independent check: is there a person number in this text? --------

/// Both mod-11 control digits of a Norwegian person number, written here
/// again (not Bru's code) so that the test checks Bru, not itself.
fn control_digits_valid(d: &[u32]) -> bool {
    let k = |digits: &[u32], weights: &[u32]| {
        let sum: u32 = digits.iter().zip(weights).map(|(d, w)| d * w).sum();
        match 11 - sum % 11 {
            11 => Some(0),
            10 => None,
            c => Some(c),
        }
    };
    k(&d[..9], &[3, 7, 6, 1, 8, 9, 4, 5, 2]) == Some(d[9])
        && k(&d[..10], &[5, 4, 3, 2, 7, 6, 5, 4, 3, 2]) == Some(d[10])
}

/// Every 11 digits in a row in `text` (inside longer runs too) that pass
/// both control digits: what a person number leaked into a text looks like.
/// Eleven digits that fail them are not one, such as the last group of a
/// UUID (a consent id), which is all decimal digits about once in a hundred.
pub fn person_numbers(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for run in text.split(|c: char| !c.is_ascii_digit()) {
        let d: Vec<u32> = run.bytes().map(|b| u32::from(b - b'0')).collect();
        for w in d.windows(11) {
            if control_digits_valid(w) {
                found.push(w.iter().map(|d| char::from(b'0' + *d as u8)).collect());
            }
        }
    }
    found
}
