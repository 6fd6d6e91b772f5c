//! Prometheus metrics, served on the ops listener. Labels carry organisation
//! numbers, dataset names, codes, consent event types and issuer names from
//! the config; never a person number, token or consent id.
//!
//! Two kinds: the registry's own metrics, which the request path updates as
//! it goes, and [`Snapshot`] metrics, read at scrape time from counters the
//! rest of Bru keeps anyway (the audit writer's, the store's consent events,
//! the JWKS caches', the checkpointer's), so they cost nothing per call.
//! README.md ("Metrics") lists every name; the names are stable.

use std::collections::BTreeMap;
use std::hash::Hash;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use hashbrown::Equivalent;

use consent_db::{AuditStats, ConsentEventCounts, NewRecord, Verdict};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::app::App;
use crate::auth::JwksRefreshes;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub dataset: String,
    pub consumer: String,
    pub decision: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub dataset: String,
    /// Empty for a complete answer from the provider.
    pub code: String,
}

/// SPEC 10: who passed a person's block, on which dataset (no person, no reason).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BreakGlassLabels {
    pub consumer: String,
    pub dataset: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatasetLabels {
    pub dataset: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    /// A snooping rule of policy's `[snooping]`.
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub provider: String,
    /// `ok`, `http_5xx`, `connect_error`, `timeout`, `tls_error`, …, or for a
    /// call refused before any attempt `circuit_open`, `busy`, `credentials`.
    pub outcome: String,
}

/// [`CallLabels`] as a call has them, borrowed.
#[derive(Hash, Clone, Copy)]
struct CallKey<'a> {
    dataset: &'a str,
    consumer: &'a str,
    decision: &'a str,
    code: &'a str,
}

impl Equivalent<CallLabels> for CallKey<'_> {
    fn equivalent(&self, key: &CallLabels) -> bool {
        self.dataset == key.dataset
            && self.consumer == key.consumer
            && self.decision == key.decision
            && self.code == key.code
    }
}

/// [`OutcomeLabels`], borrowed.
#[derive(Hash, Clone, Copy)]
struct OutcomeKey<'a> {
    dataset: &'a str,
    code: &'a str,
}

impl Equivalent<OutcomeLabels> for OutcomeKey<'_> {
    fn equivalent(&self, key: &OutcomeLabels) -> bool {
        self.dataset == key.dataset && self.code == key.code
    }
}

/// [`DatasetLabels`], borrowed.
#[derive(Hash, Clone, Copy)]
struct DatasetKey<'a> {
    dataset: &'a str,
}

impl Equivalent<DatasetLabels> for DatasetKey<'_> {
    fn equivalent(&self, key: &DatasetLabels) -> bool {
        self.dataset == key.dataset
    }
}

/// [`AttemptLabels`], borrowed.
#[derive(Hash, Clone, Copy)]
struct AttemptKey<'a> {
    provider: &'a str,
    outcome: &'a str,
}

impl Equivalent<AttemptLabels> for AttemptKey<'_> {
    fn equivalent(&self, key: &AttemptLabels) -> bool {
        self.provider == key.provider && self.outcome == key.outcome
    }
}

/// A family's metrics found by borrowed labels. prometheus-client's
/// `Family` looks a metric up by its owned label set, so every call built
/// owned strings to count itself (nine allocations a statutory call, #21).
/// Here a call hashes its `&str`s; only the first call of a label set builds
/// the owned set, and registers it in the family. The label sets are the
/// family's own (datasets, consumers, codes of policy and Bru), so this map
/// holds no more than the family does.
struct Handles<L, M> {
    family: Family<L, M, fn() -> M>,
    found: RwLock<hashbrown::HashMap<L, M>>,
}

impl<L, M> Handles<L, M>
where
    L: Clone + Hash + Eq,
    M: Clone,
{
    fn new(family: Family<L, M, fn() -> M>) -> Self {
        Handles {
            family,
            found: RwLock::new(hashbrown::HashMap::new()),
        }
    }

    /// Runs `f` on the metric of `key`; `labels` builds the owned set the
    /// first time a key is seen.
    fn with<Q>(&self, key: &Q, labels: impl FnOnce() -> L, f: impl FnOnce(&M))
    where
        Q: Hash + Equivalent<L> + ?Sized,
    {
        if let Some(metric) = self
            .found
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
        {
            return f(metric);
        }
        let labels = labels();
        let metric = self.family.get_or_create(&labels).clone();
        f(&metric);
        self.found
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(labels)
            .or_insert(metric);
    }
}

pub struct Metrics {
    registry: Registry,
    calls: Handles<CallLabels, Counter>,
    outcomes: Handles<OutcomeLabels, Counter>,
    call_duration: Histogram,
    provider_duration: Handles<DatasetLabels, Histogram>,
    provider_attempts: Handles<AttemptLabels, Counter>,
    audit_append: Histogram,
    pub audit_failures: Counter,
    pub open_connections: Gauge,
    /// Connections closed at accept: their address was at its cap.
    pub connections_refused: Counter,
    break_glass: Family<BreakGlassLabels, Counter>,
    /// snoop (#20): findings of the snooping rules, by rule.
    audit_alerts: Family<RuleLabels, Counter>,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 100 µs … ~13 s
    exponential_buckets(0.0001, 2.0, 18)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("bru");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "calls",
            "Calls to /data/ by dataset, consumer, decision and code",
            calls.clone(),
        );
        let outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "outcomes",
            "How allowed calls ended, by dataset and code (empty: the provider's answer was delivered)",
            outcomes.clone(),
        );
        let call_duration = Histogram::new(latency_buckets());
        registry.register(
            "call_duration_seconds",
            "Time Bru spent deciding a call",
            call_duration.clone(),
        );
        let provider_duration = Family::<DatasetLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "provider_duration_seconds",
            "Time until the provider's response head",
            provider_duration.clone(),
        );
        let provider_attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "provider_attempts",
            "Attempts to call a provider, by outcome (a call refused before any attempt counts once)",
            provider_attempts.clone(),
        );
        let audit_append = Histogram::new(latency_buckets());
        registry.register(
            "audit_append_seconds",
            "Time to write a record durably",
            audit_append.clone(),
        );
        let audit_failures = Counter::default();
        registry.register(
            "audit_failures",
            "Records that could not be written",
            audit_failures.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "Open connections on the public listener",
            open_connections.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections closed at accept because their client address had max_connections_per_address open",
            connections_refused.clone(),
        );
        let break_glass = Family::<BreakGlassLabels, Counter>::default();
        registry.register(
            "break_glass",
            "Calls that passed a person's block with Bru-Break-Glass (SPEC 10), by consumer and dataset",
            break_glass.clone(),
        );
        let audit_alerts = Family::<RuleLabels, Counter>::default();
        registry.register(
            "audit_alerts",
            "Snooping findings by rule (GET /audit/v1/alerts), found by this process",
            audit_alerts.clone(),
        );
        // Every rule from 0, so increase() sees the first finding.
        for rule in policy::snoop::Rule::ALL {
            drop(audit_alerts.get_or_create(&RuleLabels {
                rule: rule.as_str().to_owned(),
            }));
        }
        Metrics {
            registry,
            break_glass,
            audit_alerts,
            calls: Handles::new(calls),
            outcomes: Handles::new(outcomes),
            call_duration,
            provider_duration: Handles::new(provider_duration),
            provider_attempts: Handles::new(provider_attempts),
            audit_append,
            audit_failures,
            open_connections,
            connections_refused,
        }
    }

    /// One snooping finding of `rule`.
    pub fn observe_alert(&self, rule: &str) {
        self.audit_alerts
            .get_or_create(&RuleLabels {
                rule: rule.to_owned(),
            })
            .inc();
    }

    pub fn observe_call(&self, record: &NewRecord, took: Duration) {
        self.observe_call_as(record, record.decision, took);
    }

    /// [`Metrics::observe_call`] with the decision given apart: an outcome
    /// record's copy of its decision record names the same call but carries
    /// no decision.
    pub fn observe_call_as(&self, record: &NewRecord, decision: Option<Verdict>, took: Duration) {
        let key = CallKey {
            dataset: record.dataset.as_deref().unwrap_or_default(),
            consumer: record.consumer.as_deref().unwrap_or_default(),
            decision: match decision {
                Some(Verdict::Allow) => "allow",
                Some(Verdict::Deny) => "deny",
                None => "",
            },
            code: record.code.as_deref().unwrap_or_default(),
        };
        let labels = || CallLabels {
            dataset: key.dataset.to_owned(),
            consumer: key.consumer.to_owned(),
            decision: key.decision.to_owned(),
            code: key.code.to_owned(),
        };
        self.calls.with(&key, labels, |c| {
            c.inc();
        });
        self.call_duration.observe(took.as_secs_f64());
    }

    /// One call that passed a block with `Bru-Break-Glass`, recorded.
    pub fn observe_break_glass(&self, consumer: &str, dataset: &str) {
        self.break_glass
            .get_or_create(&BreakGlassLabels {
                consumer: consumer.to_owned(),
                dataset: dataset.to_owned(),
            })
            .inc();
    }

    pub fn observe_outcome(&self, record: &NewRecord) {
        let key = OutcomeKey {
            dataset: record.dataset.as_deref().unwrap_or_default(),
            code: record.code.as_deref().unwrap_or_default(),
        };
        let labels = || OutcomeLabels {
            dataset: key.dataset.to_owned(),
            code: key.code.to_owned(),
        };
        self.outcomes.with(&key, labels, |c| {
            c.inc();
        });
    }

    pub fn observe_provider(&self, dataset: &str, took: Duration) {
        let labels = || DatasetLabels {
            dataset: dataset.to_owned(),
        };
        self.provider_duration
            .with(&DatasetKey { dataset }, labels, |h| {
                h.observe(took.as_secs_f64())
            });
    }

    /// Every attempt of one provider call; a call refused before any attempt
    /// (open breaker, concurrency limit, no token) counts once under its reason.
    pub fn observe_attempts(
        &self,
        provider: &str,
        report: &connectors::ForwardReport,
        error: Option<&connectors::UpstreamError>,
    ) {
        let count = |outcome: &str| {
            let labels = || AttemptLabels {
                provider: provider.to_owned(),
                outcome: outcome.to_owned(),
            };
            self.provider_attempts
                .with(&AttemptKey { provider, outcome }, labels, |c| {
                    c.inc();
                });
        };
        if report.attempts.is_empty() {
            if let Some(e) = error {
                count(e.label());
            }
        }
        for attempt in &report.attempts {
            count(attempt.label());
        }
    }

    pub fn observe_audit_append(&self, took: Duration) {
        self.audit_append.observe(took.as_secs_f64());
    }

    /// The registry and the scrape-time `snapshot`, in Prometheus text format.
    pub fn encode_with(&self, snapshot: Snapshot) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut scraped = Registry::with_prefix("bru");
        scraped.register_collector(Box::new(snapshot));
        let mut out = String::new();
        let encoded = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &scraped))
            .and_then(|()| encode_eof(&mut out));
        if encoded.is_err() {
            out.clear();
        }
        out
    }
}

/// What `/metrics` reads from the rest of Bru when it is scraped: counters
/// kept as atomics where the work happens, so the hot paths pay no more.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The audit writer's counters (batches, records, batch sizes, queue).
    pub audit: AuditStats,
    /// Seconds since the writer last committed a batch, if it has.
    pub audit_last_commit_age: Option<f64>,
    /// Records the log holds beyond the derived index's position (two
    /// primary-key reads; `None` when they failed).
    pub audit_index_lag: Option<u64>,
    /// Consent events committed through this process, by type.
    pub consent_events: ConsentEventCounts,
    /// JWKS fetches per configured issuer.
    pub jwks: Vec<JwksRefreshes>,
    /// Seconds since the newest signed checkpoint, if there is one.
    pub checkpoint_age: Option<f64>,
    /// Checkpoints this process signed.
    pub checkpoints_signed: u64,
    /// Seconds since Altinn's consent events feed was last read to its end.
    pub altinn_events_lag: Option<i64>,
    /// Each `[[witness]]`: failures and lag.
    pub witnesses: Vec<crate::witnessing::WitnessReport>,
    /// The notification outbox (SPEC 10): waiting and failing rows (one store
    /// query; `None` when it failed), and what this process delivered.
    pub notifications: Option<consent_db::OutboxCounts>,
    pub notifications_delivered: u64,
}

impl Snapshot {
    /// Reads it from `app`: atomics, and on a replica that does not sign
    /// checkpoints one store query for the newest checkpoint.
    pub async fn read(app: &App) -> Snapshot {
        let audit = app.audit.stats();
        let now_ms = i64::try_from(consent_db::Timestamp::now().unix_millis()).unwrap_or(i64::MAX);
        Snapshot {
            audit_last_commit_age: audit
                .last_commit_unix_ms
                .map(|t| now_ms.saturating_sub(t).max(0) as f64 / 1000.0),
            audit,
            audit_index_lag: app.store.index_lag().await.ok(),
            consent_events: app.store.consent_event_counts(),
            jwks: app.auth.jwks_refreshes(),
            checkpoint_age: app.checkpoints.age(&app.store).await,
            checkpoints_signed: app.checkpoints.signed(),
            altinn_events_lag: app.altinn.events_lag_seconds(),
            witnesses: app.witnesses.reports(),
            // Without a webhook nothing is sent, so nothing is "queued".
            notifications: match app.notify.enabled() {
                true => app
                    .store
                    .outbox_counts(consent_db::Timestamp::now())
                    .await
                    .ok(),
                false => None,
            },
            notifications_delivered: app.notify.delivered(),
        }
    }
}

/// One scrape-time metric: its descriptor (the name without `bru_` and
/// without `_total`), then its samples.
fn describe<'a>(
    encoder: &'a mut DescriptorEncoder,
    name: &'a str,
    help: &str,
    metric_type: MetricType,
) -> Result<prometheus_client::encoding::MetricEncoder<'a>, std::fmt::Error> {
    encoder.encode_descriptor(name, help, None, metric_type)
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let a = &self.audit;

        let mut m = describe(
            &mut encoder,
            "audit_batch_size",
            "Records per committed audit transaction (group commit).",
            MetricType::Histogram,
        )?;
        let buckets: Vec<(f64, u64)> = a
            .batch_sizes
            .buckets()
            .map(|(bound, n)| (bound.map_or(f64::MAX, |b| b as f64), n))
            .collect();
        m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            a.records as f64,
            a.batch_sizes.total(),
            &buckets,
            None,
        )?;

        let m = describe(
            &mut encoder,
            "audit_batches",
            "Committed audit transactions.",
            MetricType::Counter,
        )?;
        ConstCounter::new(a.batches).encode(m)?;
        let m = describe(
            &mut encoder,
            "audit_records",
            "Audit records committed durably by this process.",
            MetricType::Counter,
        )?;
        ConstCounter::new(a.records).encode(m)?;
        let m = describe(
            &mut encoder,
            "audit_later_failures",
            "Records nobody waited for (outcome records, counted refusals) lost with an audit batch that did not commit.",
            MetricType::Counter,
        )?;
        ConstCounter::new(a.failed_later_records).encode(m)?;
        let m = describe(
            &mut encoder,
            "audit_queue_depth",
            "Audit records waiting for the writer.",
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::try_from(a.queued).unwrap_or(i64::MAX)).encode(m)?;
        if let Some(lag) = self.audit_index_lag {
            let m = describe(
                &mut encoder,
                "audit_index_lag_records",
                "Records in the audit log not yet in its derived index (the indexer's lag).",
                MetricType::Gauge,
            )?;
            ConstGauge::new(i64::try_from(lag).unwrap_or(i64::MAX)).encode(m)?;
        }
        if let Some(age) = self.audit_last_commit_age {
            let m = describe(
                &mut encoder,
                "audit_last_commit_age_seconds",
                "Seconds since this process last committed audit records.",
                MetricType::Gauge,
            )?;
            ConstGauge::new(age).encode(m)?;
        }

        if let Some(age) = self.checkpoint_age {
            let m = describe(
                &mut encoder,
                "checkpoint_age_seconds",
                "Seconds since the newest signed checkpoint of the transparency log.",
                MetricType::Gauge,
            )?;
            ConstGauge::new(age).encode(m)?;
        }
        let m = describe(
            &mut encoder,
            "checkpoints_signed",
            "Checkpoints this process signed and stored.",
            MetricType::Counter,
        )?;
        ConstCounter::new(self.checkpoints_signed).encode(m)?;

        let mut m = describe(
            &mut encoder,
            "witness_failures",
            "add-checkpoint calls to a witness that gave no cosignature, by witness name.",
            MetricType::Counter,
        )?;
        for w in &self.witnesses {
            ConstCounter::new(w.failures)
                .encode(m.encode_family(&[("witness", w.name.as_str())])?)?;
        }
        let mut m = describe(
            &mut encoder,
            "witness_lag",
            "Records the newest checkpoint holds beyond the newest one a witness cosigned.",
            MetricType::Gauge,
        )?;
        for w in &self.witnesses {
            ConstGauge::new(i64::try_from(w.lag).unwrap_or(i64::MAX))
                .encode(m.encode_family(&[("witness", w.name.as_str())])?)?;
        }

        if let Some(outbox) = self.notifications {
            let m = describe(
                &mut encoder,
                "notifications_queued",
                "Notifications in the outbox waiting to be delivered (visible now).",
                MetricType::Gauge,
            )?;
            ConstGauge::new(i64::try_from(outbox.queued).unwrap_or(i64::MAX)).encode(m)?;
            let m = describe(
                &mut encoder,
                "notifications_failing",
                "Queued notifications whose last delivery attempt failed.",
                MetricType::Gauge,
            )?;
            ConstGauge::new(i64::try_from(outbox.failing).unwrap_or(i64::MAX)).encode(m)?;
        }
        let m = describe(
            &mut encoder,
            "notifications_delivered",
            "Notifications this process delivered to the notification service (2xx).",
            MetricType::Counter,
        )?;
        ConstCounter::new(self.notifications_delivered).encode(m)?;

        let mut m = describe(
            &mut encoder,
            "consent_events",
            "Consent events committed through this process, by type.",
            MetricType::Counter,
        )?;
        for (kind, n) in self.consent_events.iter() {
            ConstCounter::new(n).encode(m.encode_family(&[("type", kind.as_str())])?)?;
        }

        if let Some(lag) = self.altinn_events_lag {
            let m = describe(
                &mut encoder,
                "altinn_consent_events_lag_seconds",
                "Seconds since Altinn's consent events feed was last read to its end (Altinn's own 5-minute delay comes on top).",
                MetricType::Gauge,
            )?;
            ConstGauge::new(lag).encode(m)?;
        }

        let mut m = describe(
            &mut encoder,
            "jwks_refreshes",
            "JWKS fetches by configured issuer name and result (ok, error).",
            MetricType::Counter,
        )?;
        // By name, so that the label sets stay unique whatever the config says.
        let mut by_issuer = BTreeMap::<&str, (u64, u64)>::new();
        for j in &self.jwks {
            let e = by_issuer.entry(j.issuer.as_str()).or_default();
            e.0 += j.ok;
            e.1 += j.error;
        }
        for (issuer, (ok, error)) in by_issuer {
            for (result, n) in [("ok", ok), ("error", error)] {
                ConstCounter::new(n)
                    .encode(m.encode_family(&[("issuer", issuer), ("result", result)])?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
