//! `[altinn]`: where Bru reads Altinn's consent events feed and asks
//! Altinn's decision point about system users (SPEC 9.1, 9.2).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Ctx, Secret};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAltinn {
    events_url: Option<String>,
    events_token_file: Option<String>,
    events_token_env: Option<String>,
    poll_interval_seconds: Option<u64>,
    pdp_url: Option<String>,
    pdp_cache_seconds: Option<u64>,
    pdp_timeout_ms: Option<u64>,
    ca_file: Option<String>,
    altinn2_jwks_url: Option<String>,
    altinn2_issuer: Option<String>,
}

/// The `[altinn]` section; all off without it.
#[derive(Debug, Clone)]
pub struct AltinnConfig {
    /// The consent events feed (`…/enterprise/consentrequests/events`); no
    /// poller without it.
    pub events_url: Option<String>,
    /// A Maskinporten token of the operating organisation, for the feed.
    pub events_token: Option<Secret>,
    /// How often the feed is read.
    pub poll_interval: Duration,
    /// Altinn's XACML JSON authorize endpoint; without it no system user is allowed.
    pub pdp_url: Option<String>,
    /// How long a PDP decision is reused, keyed by system user, resource,
    /// action and party. The revocation bound for system users.
    pub pdp_cache: Duration,
    pub pdp_timeout: Duration,
    /// A CA to trust for both (besides the system's roots).
    pub ca_file: Option<PathBuf>,
    /// Altinn 2's consent-token signing keys as a JWK set (Altinn/docs
    /// `…/samtykke/datakilde/bruk-av-token`: "JSON Web Keys og well-known
    /// endepunkter"); without it an `AltinnSamtykke` token is refused.
    pub altinn2_jwks_url: Option<String>,
    /// The `iss` of Altinn 2 consent tokens (`altinn.no`, as Altinn's example).
    pub altinn2_issuer: String,
}

impl Default for AltinnConfig {
    fn default() -> Self {
        AltinnConfig {
            events_url: None,
            events_token: None,
            poll_interval: Duration::from_secs(DEFAULT_POLL_S),
            pdp_url: None,
            pdp_cache: Duration::from_secs(DEFAULT_PDP_CACHE_S),
            pdp_timeout: Duration::from_millis(DEFAULT_PDP_TIMEOUT_MS),
            ca_file: None,
            altinn2_jwks_url: None,
            altinn2_issuer: DEFAULT_ALTINN2_ISSUER.to_owned(),
        }
    }
}

/// The `iss` of Altinn 2's consent tokens (Altinn/docs, "Informasjon om token": `"iss": "altinn.no"`).
const DEFAULT_ALTINN2_ISSUER: &str = "altinn.no";

const DEFAULT_POLL_S: u64 = 10;
const DEFAULT_PDP_CACHE_S: u64 = 10;
const DEFAULT_PDP_TIMEOUT_MS: u64 = 2000;
/// A cached Permit outlives a deleted system user by at most this much.
const MAX_PDP_CACHE_S: u64 = 300;

pub(super) fn parse(cx: &mut Ctx<'_>, at: usize, raw: &RawAltinn) -> AltinnConfig {
    let url = |cx: &mut Ctx<'_>, what: &str, u: &Option<String>| -> Option<String> {
        let u = u.as_ref()?;
        match reqwest::Url::parse(u) {
            Ok(parsed) if parsed.scheme() == "https" || parsed.scheme() == "http" => {
                Some(u.clone())
            }
            _ => {
                cx.error(at, format!("altinn.{what} is not an http(s) URL"));
                None
            }
        }
    };
    let events_url = url(cx, "events_url", &raw.events_url);
    let pdp_url = url(cx, "pdp_url", &raw.pdp_url);
    let altinn2_jwks_url = url(cx, "altinn2_jwks_url", &raw.altinn2_jwks_url);
    let altinn2_issuer = match raw.altinn2_issuer.as_deref() {
        None => DEFAULT_ALTINN2_ISSUER.to_owned(),
        Some(i) if !i.trim().is_empty() && i.len() <= 256 && i.trim() == i => {
            if altinn2_jwks_url.is_none() {
                cx.error(
                    at,
                    "altinn.altinn2_issuer is set but altinn.altinn2_jwks_url is not (where are its keys?)",
                );
            }
            i.to_owned()
        }
        Some(_) => {
            cx.error(
                at,
                "altinn.altinn2_issuer must be the iss of Altinn 2's consent tokens, e.g. \"altinn.no\"",
            );
            DEFAULT_ALTINN2_ISSUER.to_owned()
        }
    };
    let events_token = match (&raw.events_token_file, &raw.events_token_env) {
        (None, None) => None,
        (f, e) => cx.secret(at, "altinn.events_token", f.as_ref(), e.as_ref()),
    };
    if events_url.is_some() && events_token.is_none() {
        cx.error(
            at,
            "altinn.events_url needs events_token_file or events_token_env (the feed answers the authenticated organisation only)",
        );
    }
    let poll_interval = match raw.poll_interval_seconds {
        None => DEFAULT_POLL_S,
        Some(s) if (1..=3600).contains(&s) => s,
        Some(s) => {
            cx.error(
                at,
                format!("altinn.poll_interval_seconds = {s}; it must be between 1 and 3600"),
            );
            DEFAULT_POLL_S
        }
    };
    let pdp_cache = match raw.pdp_cache_seconds {
        None => DEFAULT_PDP_CACHE_S,
        Some(s) if s <= MAX_PDP_CACHE_S => s,
        Some(s) => {
            cx.error(
                at,
                format!("altinn.pdp_cache_seconds = {s}; at most {MAX_PDP_CACHE_S} (a deleted system user keeps its cached Permit this long)"),
            );
            DEFAULT_PDP_CACHE_S
        }
    };
    let pdp_timeout = match raw.pdp_timeout_ms {
        None => DEFAULT_PDP_TIMEOUT_MS,
        Some(ms) if (1..=30_000).contains(&ms) => ms,
        Some(ms) => {
            cx.error(
                at,
                format!("altinn.pdp_timeout_ms = {ms}; it must be between 1 and 30000"),
            );
            DEFAULT_PDP_TIMEOUT_MS
        }
    };
    AltinnConfig {
        events_url,
        events_token,
        poll_interval: Duration::from_secs(poll_interval),
        pdp_url,
        pdp_cache: Duration::from_secs(pdp_cache),
        pdp_timeout: Duration::from_millis(pdp_timeout),
        ca_file: raw.ca_file.as_ref().map(|f| cx.path(f)),
        altinn2_jwks_url,
        altinn2_issuer,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::Config;

    const BASE: &str = r#"
policy = "policy.toml"
public_url = "https://localhost:8443"

[server]
listen = "127.0.0.1:8443"
ops_listen = "127.0.0.1:9090"
tls_cert = "tls/cert.pem"
tls_key = "tls/key.pem"

[store]
url = "sqlite://bru.db"

[keys]
pseudonym_key_file = "keys/pseudonym.key"
assertion_key_file = "keys/assertion.pem"
checkpoint_key_env = "BRU_CHECKPOINT_KEY"

[[issuer]]
name = "mp"
kind = "maskinporten"
issuer = "https://mp.example/"
jwks_url = "https://mp.example/jwks"
"#;

    fn parse(altinn: &str) -> Result<Config, Vec<String>> {
        Config::parse(
            Path::new("/etc/bru/bru.toml"),
            &format!("{BASE}\n[altinn]\n{altinn}"),
        )
        .map_err(|e| e.into_iter().map(|e| e.message).collect())
    }

    #[test]
    fn altinn_section_defaults_and_values() {
        let none = Config::parse(Path::new("/etc/bru/bru.toml"), BASE).unwrap();
        assert_eq!(none.altinn.pdp_url, None);
        assert_eq!(none.altinn.pdp_cache, Duration::from_secs(10));
        let c = parse(
            "events_url = \"https://platform.altinn.no/accessmanagement/api/v1/enterprise/consentrequests/events\"\n\
             events_token_file = \"keys/altinn.token\"\npoll_interval_seconds = 30\n\
             pdp_url = \"https://platform.altinn.no/authorization/api/v1/authorize\"\npdp_cache_seconds = 5\n",
        )
        .unwrap();
        assert_eq!(c.altinn.poll_interval, Duration::from_secs(30));
        assert_eq!(c.altinn.pdp_cache, Duration::from_secs(5));
        assert!(c.altinn.events_token.is_some());
        assert_eq!(c.altinn.altinn2_jwks_url, None);
        assert_eq!(c.altinn.altinn2_issuer, "altinn.no");
        let c = parse("altinn2_jwks_url = \"https://www.altinn.no/api/metadata/jwk\"\n").unwrap();
        assert_eq!(
            c.altinn.altinn2_jwks_url.as_deref(),
            Some("https://www.altinn.no/api/metadata/jwk")
        );
    }

    #[test]
    fn altinn_section_errors() {
        for (text, needle) in [
            (
                "events_url = \"https://a/events\"\n",
                "needs events_token_file",
            ),
            (
                "pdp_url = \"ftp://a\"\n",
                "altinn.pdp_url is not an http(s) URL",
            ),
            ("pdp_cache_seconds = 301\n", "at most 300"),
            ("poll_interval_seconds = 0\n", "between 1 and 3600"),
            ("pdp_timeout_ms = 0\n", "between 1 and 30000"),
            (
                "events_token_file = \"a\"\nevents_token_env = \"B\"\n",
                "not both",
            ),
            ("pdp = \"x\"\n", "unknown field"),
            (
                "altinn2_jwks_url = \"altinn.no/jwk\"\n",
                "altinn.altinn2_jwks_url is not an http(s) URL",
            ),
            (
                "altinn2_issuer = \"altinn.no\"\n",
                "altinn2_jwks_url is not",
            ),
            (
                "altinn2_jwks_url = \"https://a/jwk\"\naltinn2_issuer = \" \"\n",
                "altinn.altinn2_issuer must be",
            ),
        ] {
            let errors = parse(text).unwrap_err();
            assert!(
                errors.iter().any(|e| e.contains(needle)),
                "{text}: {errors:?}"
            );
        }
    }
}
