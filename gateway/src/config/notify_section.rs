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
            cx.error(at, format!("notify.{what} = {v}; it must be between {lo} and {hi}"));
            default
        }
    };
    let timeout = ranged("timeout_ms", raw.timeout_ms, DEFAULT_TIMEOUT_MS, 100, 60_000);
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
