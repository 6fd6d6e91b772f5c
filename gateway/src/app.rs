//! The shared state of one running Bru: what every request handler reads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use consent_db::{AuditLog, NewRecord, Store};
use policy::{Consent, ConsentFact, ConsentStatus, OrgNumber, Policy};
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::config::{Config, CredentialsConfig};
use crate::keys::Keys;
use crate::metrics::Metrics;

pub struct App {
    pub config: Config,
    pub policy: Policy,
    pub auth: Authenticator,
    pub keys: Keys,
    pub store: Store,
    pub audit: AuditLog,
    pub connector: connectors::Connector,
    pub upstreams: HashMap<String, connectors::Upstream>,
    pub metrics: Metrics,
    pub rate_limiter: crate::ratelimit::RateLimiter,
    /// Refusals that cost nothing to send, counted into one record per
    /// source and interval (`refusals.rs`).
    pub refusals: crate::refusals::RefusalCounter,
    /// The citizen portal, once mounted: its session also opens a citizen's own proofs.
    pub portal: std::sync::OnceLock<Arc<portal::Portal>>,
    /// Outcome records still on their way to the log; shutdown waits for them.
    background: TaskTracker,
    /// False after an audit write failed, until one succeeds again (`/readyz`).
    audit_healthy: AtomicBool,
    /// The store write probe behind `/readyz`.
    pub readiness: crate::transparency::Readiness,
    /// What the checkpointer did, for `/metrics`.
    pub checkpoints: crate::transparency::CheckpointStatus,
    /// The `[[witness]]`es and how far each has cosigned (`witnessing.rs`).
    pub witnesses: crate::witnessing::Witnesses,
    /// Granted consents as last read, so that a call under consent needs no
    /// read of the store. It can be stale without harm: the use a decision
    /// takes is counted in the decision record's own transaction, only if the
    /// consent is still granted, unexpired and has uses left (see
    /// [`App::record_decision`]); when that fails the call is decided again
    /// on a fresh read, which replaces the entry. Refusals never come from it.
    consent_cache: ReadCache<Consent>,
    /// Each subject's blocks as last read (by pseudonym), so that a call on a
    /// blockable dataset needs no read of the store (#21: that read was 8 %
    /// of a consent call). It can be stale without harm, as the consents'
    /// cache: a decision made on it is written only if no block covers it in
    /// the decision record's own transaction (`Conditions::unblocked`), else
    /// decided again on a fresh read; a refusal is never decided on it.
    pub block_cache: ReadCache<Vec<consent_db::Block>>,
    /// Altinn's decision point and events feed (`altinn_pep.rs`).
    pub altinn: crate::altinn_pep::AltinnState,
    /// Who may act for whom: the registry client and its short cache (SPEC 9.3).
    pub representation: Arc<crate::representation::Representation>,
    /// Notification delivery: its client and what it last did (`notify_delivery.rs`).
    pub notify: crate::notify_delivery::Deliverer,
    /// Wakes the snoop follower when a record was appended (`snoop.rs`).
    pub snoop_wake: tokio::sync::Notify,
}

/// Why a decision under consent was not recorded.
pub enum ConsentRecordError {
    /// The consent could not give the use (it changed since it was read).
    ConsentChanged,
    /// A block of the subject's now covers the call (it was written since
    /// the blocks were read).
    Blocked,
    /// The log did not take the record.
    Unavailable,
}

/// A bounded map of facts as last read from the store, by key, each good
/// for [`ReadCache::TTL`]: granted consents by id ([`App::consent_cache`]),
/// a subject's blocks by pseudonym ([`App::block_cache`]). Stale entries do
/// no harm because the decision record's transaction checks them again.
pub struct ReadCache<V> {
    entries: std::sync::Mutex<HashMap<String, (V, Instant)>>,
}

impl<V> Default for ReadCache<V> {
    fn default() -> Self {
        ReadCache {
            entries: Default::default(),
        }
    }
}

impl<V: Clone> ReadCache<V> {
    /// Long enough to serve a burst of calls, short enough that a fact
    /// changed on another replica is re-read soon even if nobody calls.
    const TTL: std::time::Duration = std::time::Duration::from_secs(30);
    /// Memory stays bounded: past this many, the map starts over.
    const CAPACITY: usize = 100_000;

    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (value, at) = entries.get(key)?;
        (at.elapsed() < Self::TTL).then(|| value.clone())
    }

    pub fn put(&self, key: &str, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
            entries.insert(key.to_owned(), (value, Instant::now()));
        }
    }

    /// After this process changed the fact, or the record's transaction
    /// found it changed.
    pub fn forget(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

pub struct AppParts {
    pub config: Config,
    pub policy: Policy,
    pub auth: Authenticator,
    pub keys: Keys,
    pub store: Store,
    pub audit: AuditLog,
    pub connector: connectors::Connector,
    pub metrics: Metrics,
}

impl App {
    pub fn new(parts: AppParts) -> Result<App, String> {
        crate::problem::set_public_url(&parts.config.public_url);
        let mut upstreams = HashMap::new();
        let registry_name = crate::representation::REGISTRY.to_owned();
        let registry = parts.config.registry.iter().map(|r| (&registry_name, r));
        for (id, up) in parts.config.upstreams.iter().chain(registry) {
            let credentials = match &up.credentials {
                CredentialsConfig::None => connectors::Credentials::None,
                CredentialsConfig::Bearer(secret) => connectors::Credentials::bearer(
                    &secret
                        .read_string()
                        .map_err(|e| format!("upstream {id}: {e}"))?,
                )
                .map_err(|e| format!("upstream {id}: {e}"))?,
                CredentialsConfig::Header { name, value } => connectors::Credentials::header(
                    name,
                    &value
                        .read_string()
                        .map_err(|e| format!("upstream {id}: {e}"))?,
                )
                .map_err(|e| format!("upstream {id}: {e}"))?,
                CredentialsConfig::Mtls { cert, key, ca_file } => {
                    let read = |s: &crate::config::Secret| {
                        s.read_bytes().map_err(|e| format!("upstream {id}: {e}"))
                    };
                    let ca = std::fs::read(ca_file).map_err(|e| {
                        format!("upstream {id}: cannot read {}: {e}", ca_file.display())
                    })?;
                    let identity =
                        connectors::ClientIdentity::from_pem(&read(cert)?, &read(key)?, &ca)
                            .map_err(|e| format!("upstream {id}: mtls: {e}"))?;
                    connectors::Credentials::Mtls(identity)
                }
                CredentialsConfig::OAuth2 { settings, key } => {
                    let key = key
                        .read_bytes()
                        .map_err(|e| format!("upstream {id}: {e}"))?;
                    let oauth2 = connectors::OAuth2Credentials::new(settings.clone(), &key)
                        .map_err(|e| format!("upstream {id}: oauth2: {e}"))?;
                    connectors::Credentials::OAuth2(oauth2)
                }
            };
            let upstream = connectors::Upstream {
                base_url: up.url.clone(),
                connect_timeout: up.connect_timeout,
                request_timeout: up.request_timeout,
                max_response_bytes: up.max_response_bytes,
                credentials,
                resilience: connectors::Resilience::new(up.resilience.clone()),
            };
            upstream
                .validate()
                .map_err(|e| format!("upstream {id}: {e}"))?;
            upstreams.insert(id.clone(), upstream);
        }
        let representation = Arc::new(crate::representation::Representation::new(
            upstreams.remove(&registry_name),
            parts.connector.clone(),
            parts.keys.pseudonym.clone(),
            parts.config.allow_synthetic_ids,
        ));
        let rate_limiter =
            crate::ratelimit::RateLimiter::new(parts.config.server.unauthenticated_rate_limit);
        let altinn = crate::altinn_pep::AltinnState::new(
            &parts.config.altinn,
            parts.config.allow_synthetic_ids,
        )?;
        let witnesses = crate::witnessing::Witnesses::new(&parts.config.witnesses)?;
        let notify = crate::notify_delivery::Deliverer::new(&parts.config.notify)?;
        Ok(App {
            notify,
            witnesses,
            config: parts.config,
            policy: parts.policy,
            auth: parts.auth,
            keys: parts.keys,
            store: parts.store,
            audit: parts.audit,
            connector: parts.connector,
            upstreams,
            rate_limiter,
            refusals: Default::default(),
            portal: std::sync::OnceLock::new(),
            metrics: parts.metrics,
            background: TaskTracker::new(),
            audit_healthy: AtomicBool::new(true),
            readiness: crate::transparency::Readiness::new(),
            checkpoints: crate::transparency::CheckpointStatus::default(),
            consent_cache: ReadCache::default(),
            block_cache: ReadCache::default(),
            altinn,
            representation,
            snoop_wake: tokio::sync::Notify::new(),
        })
    }

    /// Writes a record durably within the configured time, or fails.
    pub async fn record(&self, record: NewRecord) -> Result<(), ()> {
        self.append_durably(record, consent_db::Conditions::default())
            .await
            .map_err(|_| ())
    }

    /// Writes a decision durably with `conditions` checked in its own
    /// transaction (a use of its consent; no block of its subject's), or
    /// not at all. When one failed, the pipeline reads that fact again,
    /// which also refreshes its cache entry.
    pub async fn record_decision(
        &self,
        record: NewRecord,
        conditions: consent_db::Conditions,
    ) -> Result<(), ConsentRecordError> {
        self.append_durably(record, conditions).await
    }

    async fn append_durably(
        &self,
        record: NewRecord,
        conditions: consent_db::Conditions,
    ) -> Result<(), ConsentRecordError> {
        // Benchmarks only: measures Bru without its log (the config refuses
        // `audit = "noop"` in builds without the feature).
        #[cfg(feature = "bench")]
        if self.config.store.audit_noop {
            return Ok(());
        }
        let started = Instant::now();
        let append = self.audit.append_on(record, conditions);
        let result = tokio::time::timeout(self.config.store.audit_write_timeout, append).await;
        self.metrics.observe_audit_append(started.elapsed());
        match result {
            Ok(Ok(_)) => {
                self.audit_healthy.store(true, Ordering::Relaxed);
                self.snoop_wake.notify_one();
                Ok(())
            }
            Ok(Err(consent_db::AuditError::ConsentNotUsable)) => {
                Err(ConsentRecordError::ConsentChanged)
            }
            Ok(Err(consent_db::AuditError::SubjectBlocked)) => Err(ConsentRecordError::Blocked),
            Ok(Err(e)) => {
                self.audit_failed(&e.to_string());
                Err(ConsentRecordError::Unavailable)
            }
            Err(_) => {
                self.audit_failed("timed out");
                Err(ConsentRecordError::Unavailable)
            }
        }
    }

    fn audit_failed(&self, why: &str) {
        if self.audit_healthy.swap(false, Ordering::Relaxed) {
            tracing::error!(
                error = why,
                "audit record could not be written; refusing calls until it can"
            );
        }
        self.metrics.audit_failures.inc();
    }

    /// For outcome records: the caller already has its answer; the record
    /// still must not be lost, so shutdown waits for these.
    pub fn record_in_background(self: &Arc<Self>, record: NewRecord) {
        if record.kind == consent_db::RecordKind::Outcome {
            self.metrics.observe_outcome(&record);
        }
        #[cfg(feature = "bench")]
        if self.config.store.audit_noop {
            return;
        }
        // Queued without waiting for its commit: it rides in the next batch
        // a decision record waits for (AuditConfig::later_linger). A full
        // queue is back-pressure: a task waits for room, and shutdown waits
        // for that task.
        let record = match self.audit.append_later(record) {
            Ok(()) => return,
            Err(consent_db::LaterError::Full(record)) => *record,
            Err(consent_db::LaterError::Closed) => {
                self.audit_failed("outcome record not written: the audit log is closed");
                return;
            }
        };
        let app = Arc::clone(self);
        self.background.spawn(async move {
            if let Err(e) = app.audit.append_later_when_room(record).await {
                app.audit_failed(&format!(
                    "outcome record not written: {}",
                    crate::api_error::Chain(&e)
                ));
            }
        });
    }

    /// A fresh write probe succeeded: the store takes writes again, even if
    /// no record has been written since the last failure.
    pub fn store_writable_again(&self) {
        if !self.audit_healthy.swap(true, Ordering::Relaxed) {
            tracing::info!("the store takes writes again");
        }
    }

    pub fn audit_healthy(&self) -> bool {
        self.audit_healthy.load(Ordering::Relaxed) && !self.audit.is_closed()
    }

    /// A granted consent from the cache, if it holds one; see [`App::consent_cache`].
    pub fn cached_consent_fact(&self, id: &str) -> Option<ConsentFact> {
        self.consent_cache.get(id).map(ConsentFact::Found)
    }

    /// The consent behind a `Bru-Consent` id, as a fact for `policy::decide`,
    /// read from the store. A granted consent past `valid_to` is recorded as
    /// expired on this read. Granted ones are remembered for the next call.
    pub async fn consent_fact(
        &self,
        id: &str,
        now: time::OffsetDateTime,
    ) -> Result<ConsentFact, consent_db::StoreError> {
        // Ids are ours (UUIDs); anything else cannot exist, and is not looked up.
        if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Ok(ConsentFact::NotFound);
        }
        let Some(row) = self
            .store
            .get_consent_at(id, consent_db::Timestamp::from_datetime(now))
            .await?
        else {
            return Ok(ConsentFact::NotFound);
        };
        Ok(match consent_view(&row, self.config.allow_synthetic_ids) {
            Some(mut view) => {
                // SPEC 10: the uses in the consent's period, for the decision.
                if let Some(f) = row.frequency {
                    let at = consent_db::Timestamp::from_datetime(now);
                    let period = self.store.consent_uses_in_period(id, f.per, at).await?;
                    view.frequency = Some(policy::FrequencyWindow {
                        max: f.max,
                        used: period.used,
                        frees_at: period.oldest.map(|t| t.as_datetime() + f.per.duration()),
                    });
                }
                if view.status == ConsentStatus::Granted {
                    self.consent_cache.put(&view.id, view.clone());
                } else {
                    self.consent_cache.forget(id);
                }
                ConsentFact::Found(view)
            }
            None => ConsentFact::NotFound,
        })
    }

    /// Writes the records of refusals counted since the last time
    /// (`refusals.rs`); the calls were answered already.
    pub fn record_counted_refusals(self: &Arc<Self>) {
        for record in self.refusals.take() {
            self.record_in_background(record);
        }
    }

    /// Stops accepting background work and waits until every record is written.
    pub async fn drain_records(self: &Arc<Self>) {
        self.record_counted_refusals();
        self.background.close();
        self.background.wait().await;
        if let Err(e) = self.audit.close().await {
            tracing::error!(error = %e, "audit log did not close cleanly");
        }
    }
}

fn consent_view(row: &consent_db::ConsentRow, allow_synthetic: bool) -> Option<Consent> {
    Some(Consent {
        id: row.id.clone(),
        requester: OrgNumber::parse(
            row.requester
                .strip_prefix("0192:")
                .unwrap_or(&row.requester),
        )
        .ok()?,
        subject: row
            .subject
            .as_deref()
            .and_then(|s| policy::PersonNumber::parse(s, allow_synthetic).ok()),
        datasets: row.datasets.clone(),
        purpose: row.purpose.clone(),
        status: row.status,
        valid_to: row.valid_to.as_datetime(),
        uses: row.uses,
        max_uses: row.max_uses,
        frequency: None,
    })
}
