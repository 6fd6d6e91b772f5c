//! The scrape-time metrics as Prometheus reads them.
#![allow(clippy::unwrap_used)]

use super::*;

/// The sample lines of `text` whose metric name (before `{` or a space) is `name`.
fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .collect()
}

fn snapshot() -> Snapshot {
    let mut audit = AuditStats {
        batches: 4,
        records: 1 + 3 + 3 + 5000,
        queued: 7,
        ..AuditStats::default()
    };
    for n in [1, 3, 3, 5000] {
        audit.batch_sizes.counts[consent_db::BatchSizes::bucket(n)] += 1;
    }
    Snapshot {
        altinn_events_lag: None,
        audit,
        audit_last_commit_age: Some(0.25),
        audit_index_lag: Some(12),
        consent_events: ConsentEventCounts::default(),
        jwks: vec![
            JwksRefreshes {
                issuer: "maskinporten".into(),
                ok: 2,
                error: 1,
            },
            JwksRefreshes {
                issuer: "idporten".into(),
                ok: 1,
                error: 0,
            },
        ],
        checkpoint_age: Some(1.5),
        checkpoints_signed: 3,
        witnesses: Vec::new(),
        notifications: Some(consent_db::OutboxCounts {
            queued: 4,
            failing: 2,
        }),
        notifications_delivered: 9,
    }
}

#[test]
fn the_snapshot_is_encoded_under_stable_names() {
    let text = Metrics::new().encode_with(snapshot());
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");

    let check = |name: &str, want: &[&str]| {
        assert_eq!(samples(&text, name), want, "{name} in\n{text}");
    };
    check("bru_audit_batches_total", &["bru_audit_batches_total 4"]);
    check("bru_audit_records_total", &["bru_audit_records_total 5007"]);
    check("bru_audit_queue_depth", &["bru_audit_queue_depth 7"]);
    check(
        "bru_audit_index_lag_records",
        &["bru_audit_index_lag_records 12"],
    );
    check(
        "bru_audit_last_commit_age_seconds",
        &["bru_audit_last_commit_age_seconds 0.25"],
    );
    check(
        "bru_audit_batch_size_count",
        &["bru_audit_batch_size_count 4"],
    );
    check(
        "bru_audit_batch_size_sum",
        &["bru_audit_batch_size_sum 5007.0"],
    );
    let buckets = samples(&text, "bru_audit_batch_size_bucket");
    assert_eq!(buckets.len(), 14, "{text}");
    assert_eq!(buckets[0], r#"bru_audit_batch_size_bucket{le="1.0"} 1"#);
    assert_eq!(buckets[1], r#"bru_audit_batch_size_bucket{le="2.0"} 1"#);
    assert_eq!(buckets[2], r#"bru_audit_batch_size_bucket{le="4.0"} 3"#);
    assert_eq!(buckets[12], r#"bru_audit_batch_size_bucket{le="4096.0"} 3"#);
    assert_eq!(buckets[13], r#"bru_audit_batch_size_bucket{le="+Inf"} 4"#);

    check(
        "bru_checkpoint_age_seconds",
        &["bru_checkpoint_age_seconds 1.5"],
    );
    check(
        "bru_checkpoints_signed_total",
        &["bru_checkpoints_signed_total 3"],
    );
    check("bru_notifications_queued", &["bru_notifications_queued 4"]);
    check(
        "bru_notifications_failing",
        &["bru_notifications_failing 2"],
    );
    check(
        "bru_notifications_delivered_total",
        &["bru_notifications_delivered_total 9"],
    );
    check(
        "bru_consent_events_total",
        &[
            r#"bru_consent_events_total{type="created"} 0"#,
            r#"bru_consent_events_total{type="accepted"} 0"#,
            r#"bru_consent_events_total{type="rejected"} 0"#,
            r#"bru_consent_events_total{type="revoked"} 0"#,
            r#"bru_consent_events_total{type="expired"} 0"#,
            r#"bru_consent_events_total{type="used"} 0"#,
            r#"bru_consent_events_total{type="paused"} 0"#,
            r#"bru_consent_events_total{type="resumed"} 0"#,
        ],
    );
    check(
        "bru_jwks_refreshes_total",
        &[
            r#"bru_jwks_refreshes_total{issuer="idporten",result="ok"} 1"#,
            r#"bru_jwks_refreshes_total{issuer="idporten",result="error"} 0"#,
            r#"bru_jwks_refreshes_total{issuer="maskinporten",result="ok"} 2"#,
            r#"bru_jwks_refreshes_total{issuer="maskinporten",result="error"} 1"#,
        ],
    );
    for (name, kind) in [
        ("bru_audit_batch_size", "histogram"),
        ("bru_audit_batches", "counter"),
        ("bru_audit_queue_depth", "gauge"),
        ("bru_audit_index_lag_records", "gauge"),
        ("bru_checkpoint_age_seconds", "gauge"),
        ("bru_consent_events", "counter"),
        ("bru_jwks_refreshes", "counter"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "no TYPE line for {name}:\n{text}"
        );
    }
    // The registry's own metrics are still there, unchanged.
    assert!(text.contains("# TYPE bru_calls counter\n"), "{text}");
    assert!(
        text.contains("# TYPE bru_open_connections gauge\n"),
        "{text}"
    );
}

#[test]
fn what_is_not_known_yet_is_left_out_not_zero() {
    let text = Metrics::new().encode_with(Snapshot::default());
    // No checkpoint yet: an age of 0 would claim a fresh one.
    assert!(
        samples(&text, "bru_checkpoint_age_seconds").is_empty(),
        "{text}"
    );
    assert!(
        samples(&text, "bru_audit_last_commit_age_seconds").is_empty(),
        "{text}"
    );
    // Counters start at zero, so rates work from the first scrape.
    assert_eq!(
        samples(&text, "bru_audit_records_total"),
        ["bru_audit_records_total 0"]
    );
    assert_eq!(samples(&text, "bru_consent_events_total").len(), 8);
    assert!(samples(&text, "bru_jwks_refreshes_total").is_empty());
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn duplicate_issuer_names_make_one_series() {
    let mut s = snapshot();
    s.jwks.push(JwksRefreshes {
        issuer: "maskinporten".into(),
        ok: 5,
        error: 0,
    });
    let text = Metrics::new().encode_with(s);
    assert!(
        text.contains(r#"bru_jwks_refreshes_total{issuer="maskinporten",result="ok"} 7"#),
        "{text}"
    );
}

#[test]
fn calls_are_counted_under_their_labels_found_by_borrowed_keys() {
    let metrics = Metrics::new();
    let call = |dataset: &str, consumer: &str, decision, code: Option<&str>| {
        let mut record = NewRecord::new(consent_db::RecordKind::Decision, "t", "GET", "/data/");
        record.dataset = Some(dataset.to_owned());
        record.consumer = Some(consumer.to_owned());
        record.decision = decision;
        record.code = code.map(str::to_owned);
        record
    };
    let allowed = call("nav/inntekt", "0192:921429002", Some(Verdict::Allow), None);
    let denied = call(
        "nav/inntekt",
        "0192:921429002",
        Some(Verdict::Deny),
        Some("consent_required"),
    );
    // Labels that differ only where one field ends and the next begins.
    let shifted = call("nav/inntek", "t0192:921429002", Some(Verdict::Allow), None);
    for record in [&allowed, &allowed, &denied, &shifted, &allowed] {
        metrics.observe_call(record, Duration::from_millis(1));
    }
    metrics.observe_outcome(&allowed);
    metrics.observe_outcome(&allowed);
    metrics.observe_provider("nav/inntekt", Duration::from_millis(2));
    metrics.observe_provider("nav/inntekt", Duration::from_millis(3));
    let report = connectors::ForwardReport {
        attempts: vec![connectors::AttemptOutcome::Response(200)],
        breaker: connectors::BreakerState::Closed,
    };
    metrics.observe_attempts("nav", &report, None);
    metrics.observe_attempts("nav", &report, None);

    let text = metrics.encode_with(snapshot());
    let mut calls = samples(&text, "bru_calls_total");
    calls.sort_unstable();
    assert_eq!(
        calls,
        [
            r#"bru_calls_total{dataset="nav/inntek",consumer="t0192:921429002",decision="allow",code=""} 1"#,
            r#"bru_calls_total{dataset="nav/inntekt",consumer="0192:921429002",decision="allow",code=""} 3"#,
            r#"bru_calls_total{dataset="nav/inntekt",consumer="0192:921429002",decision="deny",code="consent_required"} 1"#,
        ],
        "{text}"
    );
    assert_eq!(
        samples(&text, "bru_outcomes_total"),
        [r#"bru_outcomes_total{dataset="nav/inntekt",code=""} 2"#],
        "{text}"
    );
    assert_eq!(
        samples(&text, "bru_provider_duration_seconds_count"),
        [r#"bru_provider_duration_seconds_count{dataset="nav/inntekt"} 2"#],
        "{text}"
    );
    assert_eq!(
        samples(&text, "bru_provider_attempts_total"),
        [r#"bru_provider_attempts_total{provider="nav",outcome="ok"} 2"#],
        "{text}"
    );
}

/// What the borrowed keys must keep for a hash map to find the owned labels:
/// the same hash for the same labels, and equivalence field by field.
#[test]
fn borrowed_keys_hash_and_compare_as_their_labels() {
    use std::hash::BuildHasher;
    let hasher = std::hash::RandomState::new();
    let labels = CallLabels {
        dataset: "nav/inntekt".into(),
        consumer: "0192:921429002".into(),
        decision: "allow".into(),
        code: String::new(),
    };
    let key = CallKey {
        dataset: "nav/inntekt",
        consumer: "0192:921429002",
        decision: "allow",
        code: "",
    };
    assert_eq!(hasher.hash_one(key), hasher.hash_one(&labels));
    assert!(key.equivalent(&labels));
    for other in [
        CallKey {
            dataset: "nav/x",
            ..key
        },
        CallKey {
            consumer: "0192:1",
            ..key
        },
        CallKey {
            decision: "deny",
            ..key
        },
        CallKey { code: "c", ..key },
    ] {
        assert!(!other.equivalent(&labels));
    }

    let outcome = OutcomeLabels {
        dataset: "nav/inntekt".into(),
        code: "client_closed".into(),
    };
    let key = OutcomeKey {
        dataset: "nav/inntekt",
        code: "client_closed",
    };
    assert_eq!(hasher.hash_one(key), hasher.hash_one(&outcome));
    assert!(key.equivalent(&outcome));
    assert!(!OutcomeKey { code: "", ..key }.equivalent(&outcome));
    assert!(!OutcomeKey {
        dataset: "nav/y",
        ..key
    }
    .equivalent(&outcome));

    let dataset = DatasetLabels {
        dataset: "nav/inntekt".into(),
    };
    let key = DatasetKey {
        dataset: "nav/inntekt",
    };
    assert_eq!(hasher.hash_one(key), hasher.hash_one(&dataset));
    assert!(key.equivalent(&dataset));
    assert!(!DatasetKey { dataset: "nav" }.equivalent(&dataset));

    let attempt = AttemptLabels {
        provider: "nav".into(),
        outcome: "ok".into(),
    };
    let key = AttemptKey {
        provider: "nav",
        outcome: "ok",
    };
    assert_eq!(hasher.hash_one(key), hasher.hash_one(&attempt));
    assert!(key.equivalent(&attempt));
    assert!(!AttemptKey {
        outcome: "timeout",
        ..key
    }
    .equivalent(&attempt));
    assert!(!AttemptKey {
        provider: "k429",
        ..key
    }
    .equivalent(&attempt));
}
