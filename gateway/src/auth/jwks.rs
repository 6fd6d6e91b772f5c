//! The JWKS cache of one issuer: fetched over HTTP(S), kept in memory,
//! refreshed on an unknown `kid` at most once per configured interval, so that
//! a flood of tokens with random `kid`s cannot hammer the issuer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::config::IssuerConfig;

/// Cheap to share: the refresh runs in a task of its own that holds a clone,
/// so a caller that goes away mid-fetch (an HTTP/2 reset, a closed
/// connection) cannot cancel it half-way and leave the interval spent with no
/// keys fetched, which would lock every caller out until the next refresh.
pub struct JwksCache {
    inner: Arc<Inner>,
}

struct Inner {
    /// The issuer's name in the config: the metrics label.
    name: String,
    url: String,
    http: reqwest::Client,
    min_interval: Duration,
    keys: RwLock<HashMap<String, CachedKey>>,
    /// Serialises fetches and remembers when the last one started.
    fetch: tokio::sync::Mutex<Option<Instant>>,
    /// Fetches that brought a JWKS, and fetches that failed.
    refreshed: AtomicU64,
    failed: AtomicU64,
}

/// The JWKS fetches of one issuer since start, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksRefreshes {
    /// The issuer's `name` in the config.
    pub issuer: String,
    pub ok: u64,
    pub error: u64,
}

#[derive(Clone)]
struct CachedKey {
    key: DecodingKey,
    /// The key's own `alg`, when the JWKS names one.
    alg: Option<Algorithm>,
}

impl JwksCache {
    pub fn new(config: &IssuerConfig) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            // A JWKS is small; never follow a redirect to somewhere else.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                format!("issuer {}: cannot read {}: {e}", config.name, ca.display())
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                format!(
                    "issuer {}: {} is not a PEM certificate: {e}",
                    config.name,
                    ca.display()
                )
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| format!("issuer {}: HTTP client: {e}", config.name))?;
        Ok(JwksCache {
            inner: Arc::new(Inner {
                name: config.name.clone(),
                url: config.jwks_url.clone(),
                http,
                min_interval: config.jwks_refresh_min_interval,
                keys: RwLock::new(HashMap::new()),
                fetch: tokio::sync::Mutex::new(None),
                refreshed: AtomicU64::new(0),
                failed: AtomicU64::new(0),
            }),
        })
    }

    /// The key with this `kid`, usable with `alg`; fetches the JWKS when the
    /// kid is unknown and the last fetch is older than the minimum interval.
    pub async fn key(&self, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
        if let Some(found) = self.inner.cached(kid, alg) {
            return found;
        }
        let inner = Arc::clone(&self.inner);
        let kid = kid.to_owned();
        tokio::spawn(async move { inner.refresh_for(&kid, alg).await })
            .await
            .ok()
            .flatten()
    }

    /// How many fetches succeeded and failed since start.
    pub fn refreshes(&self) -> JwksRefreshes {
        JwksRefreshes {
            issuer: self.inner.name.clone(),
            ok: self.inner.refreshed.load(Ordering::Relaxed),
            error: self.inner.failed.load(Ordering::Relaxed),
        }
    }
}

impl Inner {
    async fn refresh_for(&self, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
        let mut last = self.fetch.lock().await;
        // Another task may have fetched while we waited.
        if let Some(found) = self.cached(kid, alg) {
            return found;
        }
        if last.is_some_and(|t| t.elapsed() < self.min_interval) {
            return None;
        }
        *last = Some(Instant::now());
        match self.fetch_set().await {
            Ok(keys) => {
                if let Ok(mut map) = self.keys.write() {
                    *map = keys;
                }
                self.refreshed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(url = %self.url, error = %e, "JWKS fetch failed");
                // A failed fetch may be retried after a second, not after the
                // whole interval: one slow answer must not lock callers out.
                let retry_in = Duration::from_secs(1).min(self.min_interval);
                *last = Instant::now().checked_sub(self.min_interval.saturating_sub(retry_in));
            }
        }
        drop(last);
        self.cached(kid, alg).flatten()
    }

    /// `Some(None)`: the kid is known but not for this algorithm.
    fn cached(&self, kid: &str, alg: Algorithm) -> Option<Option<DecodingKey>> {
        let map = self.keys.read().ok()?;
        let k = map.get(kid)?;
        Some(match k.alg {
            Some(a) if a != alg => None,
            _ => Some(k.key.clone()),
        })
    }

    async fn fetch_set(&self) -> Result<HashMap<String, CachedKey>, String> {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        if bytes.len() > 256 * 1024 {
            return Err("the JWKS is larger than 256 KiB".into());
        }
        let set: JwkSet = serde_json::from_slice(&bytes).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            if let Some((kid, key)) = usable(jwk) {
                keys.insert(kid, key);
            }
        }
        tracing::info!(url = %self.url, keys = keys.len(), "JWKS fetched");
        Ok(keys)
    }
}

/// Keys without a kid, or marked for encryption, are skipped.
fn usable(jwk: &Jwk) -> Option<(String, CachedKey)> {
    let kid = jwk.common.key_id.clone()?;
    if matches!(
        jwk.common.public_key_use,
        Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
    ) {
        return None;
    }
    let alg = jwk
        .common
        .key_algorithm
        .and_then(|a| a.to_string().parse::<Algorithm>().ok());
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, CachedKey { key, alg }))
}
