//! Sessions and the login in progress, each in one encrypted cookie.
//!
//! Bru runs as several stateless replicas, so a session lives in the
//! citizen's browser: AES-256-GCM (aws-lc-rs) under a key derived from
//! `[portal] session_key` with HKDF, the cookie's name as associated data
//! (a login cookie cannot pass for a session). The citizen can neither read
//! the person number in it nor change anything without the tag failing.
//!
//! The CSRF token is a synchronizer token kept inside the session: every
//! form carries it, and a POST whose token differs from the session's is
//! refused. A new login makes a new token.
//!
//! Cookies are `__Host-` prefixed (Secure, Path=/, no Domain), `HttpOnly`
//! and `SameSite=Lax`: Lax, because the provider's redirect back to the
//! callback is a cross-site top-level navigation that must carry the login
//! cookie.

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::{constant_time, hkdf};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{header, HeaderMap, HeaderValue};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::PortalError;

pub const SESSION_COOKIE: &str = "__Host-bru-session";
pub const LOGIN_COOKIE: &str = "__Host-bru-login";
pub const LANG_COOKIE: &str = "__Host-bru-lang";

/// The shortest session key accepted.
pub const MIN_KEY_BYTES: usize = 32;
/// How long a login may take from the click to the callback.
pub const LOGIN_TTL_S: i64 = 10 * 60;
/// A session's cookie is rewritten (its idle clock reset) at most this often.
const TOUCH_AFTER_S: i64 = 15;
/// Larger cookie values are not even decoded.
const MAX_COOKIE_BYTES: usize = 4096;

/// Seals and opens cookie values.
pub struct CookieKey {
    key: RandomizedNonceKey,
}

impl CookieKey {
    /// Derives the AES-256-GCM key from the configured secret (≥ 32 bytes).
    pub fn derive(secret: &[u8]) -> Result<CookieKey, PortalError> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(PortalError::Config(format!(
                "the portal session key must be at least {MIN_KEY_BYTES} bytes"
            )));
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"bru portal cookies").extract(secret);
        let info: [&[u8]; 1] = [b"aes-256-gcm v1"];
        let okm = prk
            .expand(&info, hkdf::HKDF_SHA256)
            .map_err(|_| PortalError::Crypto("HKDF expand"))?;
        let mut key = [0u8; 32];
        okm.fill(&mut key)
            .map_err(|_| PortalError::Crypto("HKDF fill"))?;
        let key = RandomizedNonceKey::new(&AES_256_GCM, &key)
            .map_err(|_| PortalError::Crypto("AES-GCM key"))?;
        Ok(CookieKey { key })
    }

    /// `base64url(nonce ‖ ciphertext ‖ tag)` of `value` as JSON, bound to `name`.
    pub fn seal<T: Serialize>(&self, name: &str, value: &T) -> Result<String, PortalError> {
        let mut data =
            serde_json::to_vec(value).map_err(|_| PortalError::Crypto("cookie serialisation"))?;
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(name.as_bytes()), &mut data)
            .map_err(|_| PortalError::Crypto("AES-GCM seal"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + data.len());
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&data);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// The value sealed under `name`, or `None` for anything else (forged,
    /// truncated, from another key or another cookie).
    pub fn open<T: DeserializeOwned>(&self, name: &str, sealed: &str) -> Option<T> {
        if sealed.len() > MAX_COOKIE_BYTES {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut data)
            .ok()?;
        serde_json::from_slice(plain).ok()
    }
}

/// A logged-in citizen.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The person number (never logged; only ever inside the sealed cookie).
    pub pid: String,
    pub acr: String,
    /// The synchronizer token every form of this session carries.
    pub csrf: String,
    /// Unix seconds of the login: the absolute timeout counts from here.
    pub login_at: i64,
    /// Unix seconds of the last request: the idle timeout counts from here.
    pub seen_at: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("acr", &self.acr)
            .field("login_at", &self.login_at)
            .field("seen_at", &self.seen_at)
            .finish_non_exhaustive()
    }
}

/// A login between the click and the provider's callback.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// OAuth `state`; also the CSRF token of the demo person picker.
    pub state: String,
    pub nonce: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// Where to go after the login: one of the portal's own paths.
    pub next: String,
    pub created_at: i64,
}

impl std::fmt::Debug for LoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginState")
            .field("next", &self.next)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl LoginState {
    pub fn new(next: &str, now: i64) -> Result<LoginState, PortalError> {
        Ok(LoginState {
            state: random_token()?,
            nonce: random_token()?,
            verifier: random_token()?,
            next: safe_next(next).to_owned(),
            created_at: now,
        })
    }

    pub fn is_fresh(&self, now: i64) -> bool {
        self.created_at <= now + 60 && now - self.created_at <= LOGIN_TTL_S
    }
}

/// What the session cookie of a request says.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Valid; `refresh` is the cookie to send back when its idle clock was reset.
    Active {
        session: Session,
        refresh: Option<String>,
    },
    /// There was a session, but it timed out: tell the citizen why.
    Expired,
    None,
}

/// Issues, reads and times out sessions.
pub struct Sessions {
    key: CookieKey,
    idle_s: i64,
    absolute_s: i64,
}

impl Sessions {
    pub fn new(key: CookieKey, idle: std::time::Duration, absolute: std::time::Duration) -> Self {
        let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Sessions {
            key,
            idle_s: secs(idle),
            absolute_s: secs(absolute),
        }
    }

    pub fn key(&self) -> &CookieKey {
        &self.key
    }

    /// A new session for a citizen who just logged in, with a new CSRF token.
    pub fn start(
        &self,
        pid: &policy::PersonNumber,
        acr: &str,
        now: i64,
    ) -> Result<(Session, String), PortalError> {
        let session = Session {
            pid: pid.expose().to_owned(),
            acr: acr.to_owned(),
            csrf: random_token()?,
            login_at: now,
            seen_at: now,
        };
        let sealed = self.key.seal(SESSION_COOKIE, &session)?;
        Ok((session, sealed))
    }

    /// The session of a request, timed out by the idle and absolute limits.
    pub fn lookup(&self, headers: &HeaderMap, now: i64) -> Lookup {
        let Some(value) = cookie(headers, SESSION_COOKIE) else {
            return Lookup::None;
        };
        let Some(mut session) = self.key.open::<Session>(SESSION_COOKIE, value) else {
            return Lookup::None;
        };
        // A clock far ahead of ours was not set by us.
        if session.login_at > now + 60 || session.seen_at > now + 60 {
            return Lookup::None;
        }
        if now - session.login_at > self.absolute_s || now - session.seen_at > self.idle_s {
            return Lookup::Expired;
        }
        let refresh = if now - session.seen_at >= TOUCH_AFTER_S {
            session.seen_at = now;
            self.key.seal(SESSION_COOKIE, &session).ok()
        } else {
            None
        };
        Lookup::Active { session, refresh }
    }

    /// The login in progress of this browser, if any and still fresh.
    pub fn login_state(&self, headers: &HeaderMap, now: i64) -> Option<LoginState> {
        let value = cookie(headers, LOGIN_COOKIE)?;
        let state: LoginState = self.key.open(LOGIN_COOKIE, value)?;
        state.is_fresh(now).then_some(state)
    }

    pub fn seal_login(&self, state: &LoginState) -> Result<String, PortalError> {
        self.key.seal(LOGIN_COOKIE, state)
    }
}

/// Whether a form's token is the session's, in constant time.
pub fn csrf_ok(expected: &str, submitted: Option<&str>) -> bool {
    match submitted {
        Some(s) if !expected.is_empty() => {
            constant_time::verify_slices_are_equal(expected.as_bytes(), s.as_bytes()).is_ok()
        }
        _ => false,
    }
}

/// 256 random bits, base64url.
pub fn random_token() -> Result<String, PortalError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| PortalError::Crypto("random"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The first cookie called `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// `Set-Cookie` for a value that lives as long as the browser session.
pub fn set_cookie(name: &str, value: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax"
    ))
    .ok()
}

/// `Set-Cookie` that keeps the value for `max_age_s` seconds.
pub fn set_lasting_cookie(name: &str, value: &str, max_age_s: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age_s}"
    ))
    .ok()
}

/// `Set-Cookie` that deletes the cookie.
pub fn clear_cookie(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("__Host-bru-session=; Path=/; Max-Age=0"))
}

/// `next` if it is one of the portal's own paths, else `/samtykke`: a login
/// never sends the citizen anywhere else (no open redirect).
pub fn safe_next(next: &str) -> &str {
    let own = ["/samtykke", "/innsyn", "/"];
    let ok = next.len() <= 200
        && next.starts_with('/')
        && !next.starts_with("//")
        && next
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-'))
        && own
            .iter()
            .any(|p| next == *p || (p.len() > 1 && next.starts_with(&format!("{p}/"))));
    if ok {
        next
    } else {
        "/samtykke"
    }
}

#[cfg(test)]
mod tests;
