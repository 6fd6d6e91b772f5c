//! Prometheus metrics, served on the ops listener. Labels carry organisation
//! numbers, dataset names and codes; never a person number, token or consent id.

use std::time::Duration;

use consent_db::{NewRecord, Verdict};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatasetLabels {
    pub dataset: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub provider: String,
    /// `ok`, `http_5xx`, `connect_error`, `timeout`, `tls_error`, …, or for a
    /// call refused before any attempt `circuit_open`, `busy`, `credentials`.
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    outcomes: Family<OutcomeLabels, Counter>,
    call_duration: Histogram,
    provider_duration: Family<DatasetLabels, Histogram>,
    provider_attempts: Family<AttemptLabels, Counter>,
    audit_append: Histogram,
    pub audit_failures: Counter,
    pub open_connections: Gauge,
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
        Metrics {
            registry,
            calls,
            outcomes,
            call_duration,
            provider_duration,
            provider_attempts,
            audit_append,
            audit_failures,
            open_connections,
        }
    }

    pub fn observe_call(&self, record: &NewRecord, took: Duration) {
        let labels = CallLabels {
            dataset: record.dataset.clone().unwrap_or_default(),
            consumer: record.consumer.clone().unwrap_or_default(),
            decision: match record.decision {
                Some(Verdict::Allow) => "allow",
                Some(Verdict::Deny) => "deny",
                None => "",
            }
            .to_owned(),
            code: record.code.clone().unwrap_or_default(),
        };
        self.calls.get_or_create(&labels).inc();
        self.call_duration.observe(took.as_secs_f64());
    }

    pub fn observe_outcome(&self, record: &NewRecord) {
        let labels = OutcomeLabels {
            dataset: record.dataset.clone().unwrap_or_default(),
            code: record.code.clone().unwrap_or_default(),
        };
        self.outcomes.get_or_create(&labels).inc();
    }

    pub fn observe_provider(&self, dataset: &str, took: Duration) {
        self.provider_duration
            .get_or_create(&DatasetLabels {
                dataset: dataset.to_owned(),
            })
            .observe(took.as_secs_f64());
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
            self.provider_attempts
                .get_or_create(&AttemptLabels {
                    provider: provider.to_owned(),
                    outcome: outcome.to_owned(),
                })
                .inc();
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

    /// The registry in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
