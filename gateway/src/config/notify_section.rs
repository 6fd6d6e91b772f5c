//! `[notify]`: where Bru sends citizens' notifications (SPEC 10): the
//! operator's notification service, as CloudEvents 1.0 structured JSON.
//! Without `webhook_url` nothing is sent; the inbox works either way, and
//! what is queued meanwhile is sent once a URL is configured.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Ctx, Secret};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawNotify {
    webhook_url: Option<String>,
    auth_token_file: Option<String>,
    auth_token_env: Option<String>,
    timeout_ms: Option<u64>,
    max_backoff_ms: Option<u64>,
    ca_file: Option<String>,
}

/// The `[notify]` section; no delivery without it.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// The notification service's endpoint; each event is one `POST`.
    pub webhook_url: Option<String>,
    /// Sent as `Authorization: Bearer …` when set.
    pub auth_token: Option<Secret>,
    /// One attempt's limit (connect and answer).
    pub timeout: Duration,
    /// The longest wait between two attempts at one notification.
    pub max_backoff: Duration,
    /// A CA to trust for the webhook (besides the system's roots).
    pub ca_file: Option<PathBuf>,
}

const DEFAULT_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_MAX_BACKOFF_MS: u64 = 300_000;

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            webhook_url: None,
            auth_token: None,
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
            max_backoff: Duration::from_millis(DEFAULT_MAX_BACKOFF_MS),
            ca_file: None,
        }
    }
}

pub(super) fn parse(cx: &mut Ctx<'_>, at: usize, raw: &RawNotify) -> NotifyConfig {
    let webhook_url = raw.webhook_url.as_ref().and_then(|u| match reqwest::Url::parse(u) {
        Ok(p) if p.scheme() == "https" || p.scheme() == "http" => {
            if !p.username().is_empty() || p.password().is_some() {
                cx.error(at, "notify.webhook_url must not carry credentials; use auth_token_file or auth_token_env");
                None
            } else {
                Some(u.clone())
            }
        }
        _ => {
            cx.error(at, "notify.webhook_url is not an http(s) URL");
            None
        }
    });
    let auth_token = match (&raw.auth_token_file, &raw.auth_token_env) {
        (None, None) => None,
        (f, e) => cx.secret(at, "notify.auth_token", f.as_ref(), e.as_ref()),
    };
    let mut ranged = |what: &str, v: Option<u64>, default: u64, lo: u64, hi: u64| match v {
        None => default,
        Some(v) if (lo..=hi).contains(&v) => v,
        Some(v) => {
            cx.error(
                at,
                format!("notify.{what} = {v}; it must be between {lo} and {hi}"),
            );
            default
        }
    };
    let timeout = ranged(
        "timeout_ms",
        raw.timeout_ms,
        DEFAULT_TIMEOUT_MS,
        100,
        60_000,
    );
    let max_backoff = ranged(
        "max_backoff_ms",
        raw.max_backoff_ms,
        DEFAULT_MAX_BACKOFF_MS,
        100,
        86_400_000,
    );
    NotifyConfig {
        webhook_url,
        auth_token,
        timeout: Duration::from_millis(timeout),
        max_backoff: Duration::from_millis(max_backoff),
        ca_file: raw.ca_file.as_ref().map(|f| cx.path(f)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::Path;

    use super::super::Config;

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

    fn parse(extra: &str) -> Result<Config, Vec<super::super::ConfigError>> {
        Config::parse(Path::new("/etc/bru/bru.toml"), &format!("{BASE}{extra}"))
    }

    #[test]
    fn without_the_section_nothing_is_sent() {
        let c = parse("").unwrap();
        assert!(c.notify.webhook_url.is_none());
        assert_eq!(c.notify.timeout.as_millis(), 5000);
    }

    #[test]
    fn the_section_is_read_and_checked() {
        let c = parse(
            "\n[notify]\nwebhook_url = \"https://varsel.example/bru\"\nauth_token_env = \"T\"\n\
             timeout_ms = 800\nmax_backoff_ms = 60000\nca_file = \"ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(
            c.notify.webhook_url.as_deref(),
            Some("https://varsel.example/bru")
        );
        assert_eq!(c.notify.timeout.as_millis(), 800);
        assert_eq!(c.notify.max_backoff.as_secs(), 60);
        assert_eq!(c.notify.ca_file.unwrap(), Path::new("/etc/bru/ca.pem"));
        for (bad, needle) in [
            ("webhook_url = \"ftp://x\"", "not an http(s) URL"),
            (
                "webhook_url = \"https://u:p@x.example/\"",
                "must not carry credentials",
            ),
            ("timeout_ms = 0", "timeout_ms = 0"),
            ("max_backoff_ms = 1", "max_backoff_ms = 1"),
            (
                "auth_token_file = \"a\"\nauth_token_env = \"b\"",
                "notify.auth_token",
            ),
            ("retries = 3", "unknown field"),
        ] {
            let errors = parse(&format!("\n[notify]\n{bad}\n")).unwrap_err();
            assert!(
                errors.iter().any(|e| e.message.contains(needle)),
                "{bad}: {errors:?}"
            );
        }
    }
}
