//! Sessions and the login in progress.
//!
//! A session lives server-side, in the store (consent-db's
//! `portal_sessions`), so every replica agrees, idle and absolute timeouts
//! are enforced where the citizen cannot change them, and a logout ends the
//! session for good: a copied cookie is dead after it. The cookie holds only
//! the session's random id; the store holds the id's SHA-256 and the
//! session's state (person number, acr, CSRF token, id_token) sealed.
//! Sealing is AES-256-GCM (aws-lc-rs) under a key derived from
//! `[portal] session_key` with HKDF, with the cookie's name (or the
//! session's row) as associated data: a login cookie cannot pass for a
//! session. The login in progress stays in a sealed cookie of its own.
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
/// A session's idle clock is moved in the store at most this often.
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

/// A logged-in citizen: the session's state, kept in the store sealed
/// under the portal's key (so the store never holds the person number in
/// clear), with the times the store keeps beside it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The person number (never logged; sealed wherever it is kept).
    pub pid: String,
    pub acr: String,
    /// The synchronizer token every form of this session carries.
    pub csrf: String,
    /// The provider's id_token, for `id_token_hint` at logout (OpenID
    /// Connect RP-Initiated Logout 1.0); none after a demo login.
    #[serde(default)]
    pub id_token: Option<String>,
    /// The login's `authorization_details` (ID-porten fullmakt), sealed like the rest.
    #[serde(default)]
    pub authorization_details: Vec<serde_json::Value>,
    /// Unix seconds of the login: the absolute timeout counts from here.
    #[serde(skip)]
    pub login_at: i64,
    /// Unix seconds of the last request: the idle timeout counts from here.
    #[serde(skip)]
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

/// What the session cookie holds: the session's id, sealed (so a cookie
/// cannot be made up, and a guessed id is not enough).
#[derive(Serialize, Deserialize)]
struct SessionCookie {
    sid: String,
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
    Active(Session),
    /// There was a session, but it timed out: tell the citizen why.
    Expired,
    /// No cookie, a cookie that is not ours, or a session that was ended.
    None,
    /// The store could not be asked: neither logged in nor out.
    Unavailable,
}

/// Issues, reads, times out and ends sessions, kept server-side in the
/// store so every replica agrees and a logout is final.
pub struct Sessions {
    key: CookieKey,
    store: consent_db::Store,
    idle_s: i64,
    absolute_s: i64,
}

impl Sessions {
    pub fn new(
        key: CookieKey,
        store: consent_db::Store,
        idle: std::time::Duration,
        absolute: std::time::Duration,
    ) -> Self {
        let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Sessions {
            key,
            store,
            idle_s: secs(idle),
            absolute_s: secs(absolute),
        }
    }

    pub fn key(&self) -> &CookieKey {
        &self.key
    }

    /// A new session for a citizen who just logged in, with a new CSRF
    /// token; the cookie value to set. Sessions timed out by now are
    /// deleted on the way (a few rows, on the indexes).
    pub async fn start(
        &self,
        pid: &policy::PersonNumber,
        acr: &str,
        id_token: Option<String>,
        now: i64,
    ) -> Result<(Session, String), PortalError> {
        self.start_with(pid, acr, id_token, Vec::new(), now).await
    }

    /// [`Sessions::start`], keeping the login's `authorization_details`.
    pub async fn start_with(
        &self,
        pid: &policy::PersonNumber,
        acr: &str,
        id_token: Option<String>,
        authorization_details: Vec<serde_json::Value>,
        now: i64,
    ) -> Result<(Session, String), PortalError> {
        let session = Session {
            pid: pid.expose().to_owned(),
            acr: acr.to_owned(),
            csrf: random_token()?,
            id_token,
            authorization_details,
            login_at: now,
            seen_at: now,
        };
        let sid = random_token()?;
        let id_hash = id_hash(&sid);
        let row = consent_db::PortalSession {
            sealed: self.key.seal(&state_name(&id_hash), &session)?,
            id_hash,
            login_at: now,
            seen_at: now,
        };
        if let Err(e) = self
            .store
            .purge_portal_sessions(now - self.idle_s, now - self.absolute_s)
            .await
        {
            tracing::warn!(error = %e, "could not purge timed-out portal sessions");
        }
        self.store
            .create_portal_session(&row)
            .await
            .map_err(PortalError::Store)?;
        let cookie = self.key.seal(SESSION_COOKIE, &SessionCookie { sid })?;
        Ok((session, cookie))
    }

    /// The session of a request, timed out by the idle and absolute limits
    /// (a timed-out session is deleted); its idle clock moves on.
    pub async fn lookup(&self, headers: &HeaderMap, now: i64) -> Lookup {
        let Some(id_hash) = self.cookie_id_hash(headers) else {
            return Lookup::None;
        };
        let row = match self.store.portal_session(&id_hash).await {
            Ok(Some(row)) => row,
            Ok(None) => return Lookup::None,
            Err(e) => {
                tracing::error!(error = %e, "the portal could not read its sessions");
                return Lookup::Unavailable;
            }
        };
        if now - row.login_at > self.absolute_s || now - row.seen_at > self.idle_s {
            if let Err(e) = self.store.delete_portal_session(&id_hash).await {
                tracing::warn!(error = %e, "could not delete a timed-out portal session");
            }
            return Lookup::Expired;
        }
        let Some(mut session) = self.key.open::<Session>(&state_name(&id_hash), &row.sealed) else {
            return Lookup::None;
        };
        session.login_at = row.login_at;
        session.seen_at = row.seen_at;
        if now - row.seen_at >= TOUCH_AFTER_S {
            match self.store.touch_portal_session(&id_hash, now).await {
                Ok(()) => session.seen_at = now,
                Err(e) => tracing::warn!(error = %e, "could not touch a portal session"),
            }
        }
        Lookup::Active(session)
    }

    /// Ends the request's session in the store: its cookie is dead from now
    /// on, on every replica.
    pub async fn end(&self, headers: &HeaderMap) -> Result<(), PortalError> {
        match self.cookie_id_hash(headers) {
            Some(id_hash) => self
                .store
                .delete_portal_session(&id_hash)
                .await
                .map(|_| ())
                .map_err(PortalError::Store),
            None => Ok(()),
        }
    }

    fn cookie_id_hash(&self, headers: &HeaderMap) -> Option<String> {
        let value = cookie(headers, SESSION_COOKIE)?;
        let c: SessionCookie = self.key.open(SESSION_COOKIE, value)?;
        Some(id_hash(&c.sid))
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

/// The store's key of a session: hex SHA-256 of its id, so the table alone
/// gives no cookie.
fn id_hash(sid: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, sid.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The associated data of a session's sealed state: bound to its row, so a
/// sealed state moved to another row does not open.
fn state_name(id_hash: &str) -> String {
    format!("bru-session-state {id_hash}")
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
