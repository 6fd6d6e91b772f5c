//! `[portal]` in `bru.toml`: the OpenID provider the portal logs citizens in
//! with, and its sessions. The gateway's config parser hands the section to
//! [`PortalConfig::from_raw`], which returns each problem as one message.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The section as written (see docs/config.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPortalConfig {
    /// The OpenID provider; discovery at `{issuer}/.well-known/openid-configuration`.
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<String>,
    pub client_secret_env: Option<String>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    pub token_endpoint_auth: Option<String>,
    /// Where the provider sends the citizen back; `{public_url}/innlogging/callback` unless set.
    pub redirect_url: Option<String>,
    pub scope: Option<String>,
    /// `acr_values` asked for; the id_token must in any case carry at least
    /// `idporten-loa-substantial`.
    pub acr_values: Option<String>,
    /// Extra CA for the provider's HTTPS endpoints.
    pub ca_file: Option<String>,
    /// Take `sub` as the person number when the id_token has no `pid`.
    #[serde(default)]
    pub sub_as_pid: bool,
    pub session_key_file: Option<String>,
    pub session_key_env: Option<String>,
    pub idle_timeout_s: Option<u64>,
    pub absolute_timeout_s: Option<u64>,
}

/// Where a secret comes from; read at start-up, never logged.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "file {}", p.display()),
            SecretSource::Env(v) => write!(f, "env {v}"),
        }
    }
}

impl SecretSource {
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            SecretSource::File(p) => {
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            }
            SecretSource::Env(v) => std::env::var(v)
                .map(String::into_bytes)
                .map_err(|_| format!("environment variable {v} is not set")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 section 2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

/// Login with an OpenID provider (ID-porten or any OIDC provider).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// Exactly as the provider's discovery document and `iss` spell it.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretSource,
    pub client_auth: ClientAuth,
    pub redirect_url: String,
    pub scope: String,
    pub acr_values: String,
    pub ca_file: Option<PathBuf>,
    pub sub_as_pid: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalConfig {
    /// `None`: no OpenID login; only `bru demo` (with its person picker) runs so.
    pub oidc: Option<OidcConfig>,
    /// At least 32 bytes; the session and login cookies' keys derive from it.
    pub session_key: SecretSource,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
}

/// The path the provider sends the citizen back to.
pub const CALLBACK_PATH: &str = "/innlogging/callback";

const DEFAULT_IDLE_S: u64 = 15 * 60;
const DEFAULT_ABSOLUTE_S: u64 = 2 * 60 * 60;
const DEFAULT_SCOPE: &str = "openid profile";
pub const DEFAULT_ACR: &str = "idporten-loa-substantial";

impl PortalConfig {
    /// Validates the section; `dir` is the config file's directory (relative
    /// paths start there), `public_url` Bru's own.
    pub fn from_raw(
        raw: &RawPortalConfig,
        dir: &Path,
        public_url: &str,
    ) -> Result<PortalConfig, Vec<String>> {
        let mut errors = Vec::new();
        let session_key = secret(
            &mut errors,
            dir,
            "portal.session_key",
            raw.session_key_file.as_deref(),
            raw.session_key_env.as_deref(),
        );
        let idle = raw.idle_timeout_s.unwrap_or(DEFAULT_IDLE_S);
        let absolute = raw.absolute_timeout_s.unwrap_or(DEFAULT_ABSOLUTE_S);
        if !(60..=24 * 3600).contains(&idle) {
            errors.push("portal.idle_timeout_s must be 60..=86400".to_owned());
        }
        if !(60..=7 * 24 * 3600).contains(&absolute) {
            errors.push("portal.absolute_timeout_s must be 60..=604800".to_owned());
        }
        if idle > absolute {
            errors.push("portal.idle_timeout_s must not be longer than absolute_timeout_s".into());
        }
        let oidc = oidc(&mut errors, raw, dir, public_url);
        match session_key {
            Some(session_key) if errors.is_empty() => Ok(PortalConfig {
                oidc,
                session_key,
                idle_timeout: Duration::from_secs(idle),
                absolute_timeout: Duration::from_secs(absolute),
            }),
            _ => Err(errors),
        }
    }
}

fn oidc(
    errors: &mut Vec<String>,
    raw: &RawPortalConfig,
    dir: &Path,
    public_url: &str,
) -> Option<OidcConfig> {
    let Some(issuer) = raw.issuer.as_deref() else {
        let stray = [
            ("client_id", raw.client_id.is_some()),
            ("client_secret_file", raw.client_secret_file.is_some()),
            ("client_secret_env", raw.client_secret_env.is_some()),
            ("redirect_url", raw.redirect_url.is_some()),
            ("token_endpoint_auth", raw.token_endpoint_auth.is_some()),
        ];
        for (name, set) in stray {
            if set {
                errors.push(format!("portal.{name} needs portal.issuer"));
            }
        }
        return None;
    };
    if !is_allowed_url(issuer) {
        errors.push(
            "portal.issuer must be an https URL (http only on loopback, for tests)".to_owned(),
        );
    }
    let client_id = match raw.client_id.as_deref() {
        Some(id) if !id.trim().is_empty() => Some(id.to_owned()),
        _ => {
            errors.push("portal.client_id is required with portal.issuer".to_owned());
            None
        }
    };
    let client_secret = secret(
        errors,
        dir,
        "portal.client_secret",
        raw.client_secret_file.as_deref(),
        raw.client_secret_env.as_deref(),
    );
    let client_auth = match raw.token_endpoint_auth.as_deref() {
        None | Some("client_secret_basic") => ClientAuth::Basic,
        Some("client_secret_post") => ClientAuth::Post,
        Some(_) => {
            errors.push(
                "portal.token_endpoint_auth must be client_secret_basic or client_secret_post"
                    .to_owned(),
            );
            ClientAuth::Basic
        }
    };
    let redirect_url = raw
        .redirect_url
        .clone()
        .unwrap_or_else(|| format!("{}{CALLBACK_PATH}", public_url.trim_end_matches('/')));
    match reqwest::Url::parse(&redirect_url) {
        Ok(u) if u.path() == CALLBACK_PATH && is_allowed_url(&redirect_url) => {}
        _ => errors.push(format!(
            "portal.redirect_url must be an https URL whose path is {CALLBACK_PATH}"
        )),
    }
    let scope = raw
        .scope
        .clone()
        .unwrap_or_else(|| DEFAULT_SCOPE.to_owned());
    if !scope.split(' ').any(|s| s == "openid") {
        errors.push("portal.scope must include openid".to_owned());
    }
    let (client_id, client_secret) = (client_id?, client_secret?);
    Some(OidcConfig {
        issuer: issuer.to_owned(),
        client_id,
        client_secret,
        client_auth,
        redirect_url,
        scope,
        acr_values: raw
            .acr_values
            .clone()
            .unwrap_or_else(|| DEFAULT_ACR.to_owned()),
        ca_file: raw.ca_file.as_deref().map(|p| dir.join(p)),
        sub_as_pid: raw.sub_as_pid,
    })
}

fn secret(
    errors: &mut Vec<String>,
    dir: &Path,
    what: &str,
    file: Option<&str>,
    env: Option<&str>,
) -> Option<SecretSource> {
    match (file, env) {
        (Some(f), None) => Some(SecretSource::File(dir.join(f))),
        (None, Some(e)) => Some(SecretSource::Env(e.to_owned())),
        (Some(_), Some(_)) => {
            errors.push(format!(
                "{what}: give either {what}_file or {what}_env, not both"
            ));
            None
        }
        (None, None) => {
            errors.push(format!("{what}_file or {what}_env is required"));
            None
        }
    }
}

/// `https://…`, or `http://` to a loopback host (a provider run by a test).
pub fn is_allowed_url(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    if !u.username().is_empty() || u.password().is_some() || u.host_str().is_none() {
        return false;
    }
    match u.scheme() {
        "https" => true,
        "http" => matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
