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
        }
    }
}

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
    }
}
