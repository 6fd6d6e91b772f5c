//! The shared state of one running Bru: what every request handler reads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use consent_db::{AuditLog, NewRecord, Store};
use http::Response;
use policy::{ConsentFact, ConsentStatus, ConsentView, DatasetRef, OrgNumber, Policy};
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::config::{Config, CredentialsConfig};
use crate::keys::Keys;
use crate::metrics::Metrics;
use crate::problem::Failure;

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
    /// Outcome records still on their way to the log; shutdown waits for them.
    background: TaskTracker,
    /// False after an audit write failed, until one succeeds again (`/readyz`).
    audit_healthy: AtomicBool,
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
        let mut upstreams = HashMap::new();
        for (id, up) in &parts.config.upstreams {
            let credentials = match &up.credentials {
                CredentialsConfig::None => connectors::Credentials::None,
                CredentialsConfig::Bearer(secret) => {
                    connectors::Credentials::bearer(&secret.read_string().map_err(|e| format!("upstream {id}: {e}"))?)
                        .map_err(|e| format!("upstream {id}: {e}"))?
                }
                CredentialsConfig::Header { name, value } => connectors::Credentials::header(
                    name,
                    &value.read_string().map_err(|e| format!("upstream {id}: {e}"))?,
                )
                .map_err(|e| format!("upstream {id}: {e}"))?,
            };
            let upstream = connectors::Upstream {
                base_url: up.url.clone(),
                connect_timeout: up.connect_timeout,
                request_timeout: up.request_timeout,
                max_response_bytes: up.max_response_bytes,
                credentials,
            };
            upstream.validate().map_err(|e| format!("upstream {id}: {e}"))?;
            upstreams.insert(id.clone(), upstream);
        }
        Ok(App {
            config: parts.config,
            policy: parts.policy,
            auth: parts.auth,
            keys: parts.keys,
            store: parts.store,
            audit: parts.audit,
            connector: parts.connector,
            upstreams,
            metrics: parts.metrics,
            background: TaskTracker::new(),
            audit_healthy: AtomicBool::new(true),
        })
    }

    /// Writes a record durably within the configured time, or fails.
    pub async fn record(&self, record: NewRecord) -> Result<(), ()> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.config.store.audit_write_timeout, self.audit.append(record)).await;
        self.metrics.observe_audit_append(started.elapsed());
        match result {
            Ok(Ok(_)) => {
                self.audit_healthy.store(true, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(e)) => {
                self.audit_failed(&e.to_string());
                Err(())
            }
            Err(_) => {
                self.audit_failed("timed out");
                Err(())
            }
        }
    }

    fn audit_failed(&self, why: &str) {
        if self.audit_healthy.swap(false, Ordering::Relaxed) {
            tracing::error!(error = why, "audit record could not be written; refusing calls until it can");
        }
        self.metrics.audit_failures.inc();
    }

    /// For outcome records: the caller already has its answer; the record
    /// still must not be lost, so shutdown waits for these.
    pub fn record_in_background(self: &Arc<Self>, record: NewRecord) {
        let app = Arc::clone(self);
        self.background.spawn(async move {
            if app.audit.append(record).await.is_err() {
                app.audit_failed("outcome record not written");
            }
        });
    }

    /// Answers a failure after the decision was recorded, with its outcome record.
    pub async fn finish_with_failure(
        self: &Arc<Self>,
        mut outcome: NewRecord,
        started: Instant,
        transfer_id: &str,
        failure: Failure,
    ) -> Response<Body> {
        outcome.status = Some(failure.status().as_u16());
        outcome.code = Some(failure.code().to_owned());
        outcome.bytes = Some(0);
        outcome.duration_ms = Some(started.elapsed().as_millis().try_into().unwrap_or(u64::MAX));
        self.record_in_background(outcome);
        failure.response(Some(transfer_id))
    }

    pub fn audit_healthy(&self) -> bool {
        self.audit_healthy.load(Ordering::Relaxed) && !self.audit.is_closed()
    }

    /// The consent behind a `Bru-Consent` id, as a fact for `policy::decide`.
    pub async fn consent_fact(&self, id: &str) -> Result<ConsentFact, consent_db::StoreError> {
        // Ids are ours (UUIDs); anything else cannot exist, and is not looked up.
        if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Ok(ConsentFact::NotFound);
        }
        let Some(row) = self.store.get_consent(id).await? else {
            return Ok(ConsentFact::NotFound);
        };
        Ok(match consent_view(&row, self.config.allow_synthetic_ids) {
            Some(view) => ConsentFact::Found(view),
            None => ConsentFact::NotFound,
        })
    }

    /// Stops accepting background work and waits until every record is written.
    pub async fn drain_records(&self) {
        self.background.close();
        self.background.wait().await;
        if let Err(e) = self.audit.close().await {
            tracing::error!(error = %e, "audit log did not close cleanly");
        }
    }
}

fn consent_view(row: &consent_db::ConsentRow, allow_synthetic: bool) -> Option<ConsentView> {
    let status = match row.status.as_str() {
        "pending" => ConsentStatus::Pending,
        "granted" => ConsentStatus::Granted,
        "rejected" => ConsentStatus::Rejected,
        "revoked" => ConsentStatus::Revoked,
        "expired" => ConsentStatus::Expired,
        _ => return None,
    };
    let datasets = row
        .dataset_list()
        .ok()?
        .iter()
        .filter_map(|d| d.split_once('/').map(|(p, s)| DatasetRef { provider: p.to_owned(), dataset: s.to_owned() }))
        .collect();
    Some(ConsentView {
        id: row.id.clone(),
        requester: OrgNumber::parse(row.requester.strip_prefix("0192:").unwrap_or(&row.requester)).ok()?,
        subject: row.subject.as_deref().and_then(|s| policy::PersonNumber::parse(s, allow_synthetic).ok()),
        datasets,
        purpose: row.purpose.clone(),
        status,
        valid_to: time::OffsetDateTime::parse(&row.valid_to, &time::format_description::well_known::Rfc3339).ok()?,
        uses: u32::try_from(row.uses).unwrap_or(u32::MAX),
        max_uses: row.max_uses.and_then(|m| u32::try_from(m).ok()),
    })
}
