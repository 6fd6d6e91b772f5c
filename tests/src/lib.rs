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
