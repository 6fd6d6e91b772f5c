//! `/metrics` on the ops listener after real traffic: calls, a consent's
//! whole life, a signed checkpoint, JWKS fetches. The names README.md lists
//! are there with the values the traffic implies, and no label carries a
//! person number, a token or a consent id.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use bru_tests::consent::*;
use bru_tests::*;

/// One sample: name, labels in order, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// The samples of a Prometheus / OpenMetrics text (label values unescaped
/// enough for the checks here: they are plain names and numbers).
fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let value = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
                let labels = split_labels(body)
                    .into_iter()
                    .map(|pair| {
                        let (k, v) = pair
                            .split_once('=')
                            .unwrap_or_else(|| panic!("bad label {pair:?} in {line:?}"));
                        let v = v
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .unwrap_or_else(|| panic!("unquoted label value in {line:?}"));
                        (k.to_owned(), v.to_owned())
                    })
                    .collect();
                (name, labels)
            }
            None => (series, Vec::new()),
        };
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    out
}

/// `a="x",b="y,z"` → [`a="x"`, `b="y,z"`]: commas inside quotes stay.
fn split_labels(body: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < body.len() {
        parts.push(&body[start..]);
    }
    parts
}

struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    async fn take(bru: &Bru) -> Scrape {
        let reply = send(bru.ops_client.get(bru.ops_url("/metrics"))).await;
        reply.expect_status(200, "GET /metrics");
        let text = reply.text();
        let samples = parse(&text);
        Scrape { text, samples }
    }

    /// The value of the one sample `name` with at least `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<_> = self
            .samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
            })
            .collect();
        assert!(
            found.len() <= 1,
            "{name} {labels:?} matches {} series:\n{}",
            found.len(),
            self.text
        );
        found.first().map(|s| s.value)
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{}", self.text))
    }

    /// `bru_consent_events_total` by type.
    fn consent_events(&self) -> BTreeMap<String, f64> {
        self.samples
            .iter()
            .filter(|s| s.name == "bru_consent_events_total")
            .map(|s| {
                assert_eq!(s.labels.len(), 1, "{s:?}");
                assert_eq!(s.labels[0].0, "type", "{s:?}");
                (s.labels[0].1.clone(), s.value)
            })
            .collect()
    }
}

/// Whether `s` holds a run of 11 digits (a person number's shape).
fn has_person_number_shape(s: &str) -> bool {
    let mut run = 0;
    for c in s.chars() {
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 11 {
            return true;
        }
    }
    false
}

/// Scrapes until `ready` holds (the outcome records and the checkpoint come
/// a moment after the answers), or panics after a generous while.
async fn scrape_until(bru: &Bru, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let scrape = Scrape::take(bru).await;
        if ready(&scrape) {
            return scrape;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never saw {what}:\n{}",
            scrape.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_calls_consents_checkpoints_and_jwks() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;

    // Before any traffic: the counters are there at zero, and the
    // configured issuers have their JWKS series.
    let fresh = Scrape::take(&bru).await;
    for kind in [
        "created", "accepted", "rejected", "revoked", "expired", "used", "paused", "resumed",
    ] {
        assert_eq!(
            fresh.get("bru_consent_events_total", &[("type", kind)]),
            0.0,
            "{kind}"
        );
    }
    assert_eq!(
        fresh.get(
            "bru_jwks_refreshes_total",
            &[("issuer", "test-mp"), ("result", "error")]
        ),
        0.0
    );

    // A consent's whole life: created, accepted, used twice, revoked; the
    // next call under it is refused and uses nothing.
    let k429 = cw.k429_token();
    let id = create(&cw, &bru, &request_body(Some(KARI), Some(10))).await;
    citizen_action(&cw, &bru, KARI, &id, "accept")
        .await
        .expect_status(200, "Kari accepts");
    // Allowed calls leave a decision and an outcome record, refusals a decision.
    let (mut allowed, mut denied) = (0u32, 0u32);
    for _ in 0..2 {
        inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
            .await
            .expect_status(200, "a call under the consent");
        allowed += 1;
    }
    citizen_action(&cw, &bru, KARI, &id, "revoke")
        .await
        .expect_status(200, "Kari revokes");
    inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
        .await
        .expect_problem(403, "consent_revoked", "after revoking");
    denied += 1;
    // A statutory call, and a refusal for a consumer with no rights.
    send(cw.nav_sosial(&bru, "", OLA))
        .await
        .expect_status(200, "NAV reads K429's case");
    allowed += 1;
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(cw.mp_token(SNOOP, SCOPE_SOSIAL))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", AISHA),
    )
    .await
    .expect_problem(403, "consumer_not_allowed", "Snoop AS");
    denied += 1;

    // The outcome record is written after the answer, and the checkpoint
    // after that: wait for both (a checkpoint newer than the last commit).
    let calls = allowed + denied;
    let want_records = f64::from(2 * allowed + denied);
    let s = scrape_until(&bru, "every record under a signed checkpoint", |s| {
        let records = s.value("bru_audit_records_total", &[]).unwrap_or(0.0);
        let checkpoint = s.value("bru_checkpoint_age_seconds", &[]);
        let commit = s.value("bru_audit_last_commit_age_seconds", &[]);
        records >= want_records && matches!((checkpoint, commit), (Some(c), Some(r)) if c <= r)
    })
    .await;

    // Consent events, by the names the lifecycle writes.
    let events = s.consent_events();
    let want: BTreeMap<String, f64> = [
        ("created", 1.0),
        ("accepted", 1.0),
        ("rejected", 0.0),
        ("revoked", 1.0),
        ("expired", 0.0),
        ("used", 2.0),
        ("paused", 0.0),
        ("resumed", 0.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(events, want, "{}", s.text);

    // The audit writer: records, batches, and the batch-size histogram
    // (one observation per batch, summing to the records).
    let records = s.get("bru_audit_records_total", &[]);
    let batches = s.get("bru_audit_batches_total", &[]);
    assert!(
        records >= want_records,
        "{records} records for {calls} calls"
    );
    assert!(batches >= 1.0 && batches <= records, "{batches} batches");
    assert_eq!(s.get("bru_audit_batch_size_count", &[]), batches);
    assert_eq!(s.get("bru_audit_batch_size_sum", &[]), records);
    assert_eq!(
        s.get("bru_audit_batch_size_bucket", &[("le", "+Inf")]),
        batches
    );
    let bounds: Vec<f64> = s
        .samples
        .iter()
        .filter(|x| x.name == "bru_audit_batch_size_bucket")
        .map(|x| x.labels[0].1.parse::<f64>().unwrap_or(f64::INFINITY))
        .collect();
    let mut want_bounds: Vec<f64> = (0..13).map(|i| f64::from(1u32 << i)).collect();
    want_bounds.push(f64::INFINITY);
    assert_eq!(
        bounds, want_bounds,
        "batch-size buckets 1, 2, 4, … 4096, +Inf"
    );
    assert!(s.get("bru_audit_queue_depth", &[]) >= 0.0);
    assert!(s.get("bru_audit_last_commit_age_seconds", &[]) >= 0.0);

    // The transparency log: a signed checkpoint, a small non-negative age.
    let age = s.get("bru_checkpoint_age_seconds", &[]);
    assert!(
        (0.0..3600.0).contains(&age),
        "checkpoint age {age} after a checkpoint"
    );
    assert!(s.get("bru_checkpoints_signed_total", &[]) >= 1.0);

    // JWKS: machine and citizen issuers each fetched their keys, labelled
    // by the issuer's name in the config.
    for issuer in ["test-mp", "test-idporten"] {
        assert!(
            s.get(
                "bru_jwks_refreshes_total",
                &[("issuer", issuer), ("result", "ok")]
            ) >= 1.0,
            "{issuer}:\n{}",
            s.text
        );
        assert!(s
            .value(
                "bru_jwks_refreshes_total",
                &[("issuer", issuer), ("result", "error")]
            )
            .is_some());
    }

    // The metrics that were there before keep their names and labels.
    assert_eq!(
        s.get(
            "bru_calls_total",
            &[
                ("dataset", "nav/inntekt"),
                ("consumer", &format!("0192:{K429}")),
                ("decision", "allow"),
                ("code", "")
            ]
        ),
        2.0
    );
    assert_eq!(
        s.get(
            "bru_calls_total",
            &[
                ("dataset", "nav/inntekt"),
                ("decision", "deny"),
                ("code", "consent_revoked")
            ]
        ),
        1.0
    );
    for name in [
        "bru_call_duration_seconds_count",
        "bru_provider_duration_seconds_count",
        "bru_audit_append_seconds_count",
        "bru_open_connections",
    ] {
        assert!(
            s.samples.iter().any(|x| x.name == name),
            "no {name}:\n{}",
            s.text
        );
    }

    // No person number, token or consent id anywhere, least of all in a label.
    for sample in &s.samples {
        for (k, v) in &sample.labels {
            assert!(
                !has_person_number_shape(v),
                "label {k}={v:?} of {} looks like a person number",
                sample.name
            );
            assert!(
                !v.contains(&id),
                "label {k} of {} holds the consent id",
                sample.name
            );
        }
    }
    for secret in PERSONS
        .iter()
        .map(|p| p.to_string())
        .chain([id.clone(), k429.clone()])
    {
        assert!(!s.text.contains(&secret), "{secret:?} is in the metrics");
    }
    // Not even the token's signature or its header.
    for part in k429.split('.') {
        assert!(!s.text.contains(part), "a token part is in the metrics");
    }
}

/// Replicas on one PostgreSQL database (PostgreSQL pass only): one signs
/// checkpoints, every one reports the checkpoint age (the others read it
/// from the store), and each counts the consent events it committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_reports_the_checkpoint_age_and_its_own_events() {
    if world::postgres_url().is_none() {
        eprintln!(
            "SKIPPED: replicas share a PostgreSQL database; run with BRU_TEST_STORE=postgres"
        );
        return;
    }
    let cw = ConsentWorld::new().await;
    let replicas = [cw.start().await, cw.start().await];
    let k429 = cw.k429_token();
    // Created through one replica, accepted and used through the other.
    let id = create(&cw, &replicas[0], &request_body(Some(KARI), None)).await;
    citizen_action(&cw, &replicas[1], KARI, &id, "accept")
        .await
        .expect_status(200, "accept through the other replica");
    for bru in &replicas {
        inntekt(bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
            .await
            .expect_status(200, "a call under the consent");
    }

    let mut scrapes = Vec::new();
    for bru in &replicas {
        scrapes.push(
            scrape_until(bru, "a checkpoint newer than this replica's records", |s| {
                let checkpoint = s.value("bru_checkpoint_age_seconds", &[]);
                let commit = s.value("bru_audit_last_commit_age_seconds", &[]);
                matches!((checkpoint, commit), (Some(c), Some(r)) if c <= r)
            })
            .await,
        );
    }
    let signed: Vec<f64> = scrapes
        .iter()
        .map(|s| s.get("bru_checkpoints_signed_total", &[]))
        .collect();
    assert_eq!(
        signed.iter().filter(|&&n| n > 0.0).count(),
        1,
        "one replica signs: {signed:?}"
    );
    for s in &scrapes {
        let age = s.get("bru_checkpoint_age_seconds", &[]);
        assert!((0.0..3600.0).contains(&age), "checkpoint age {age}");
    }
    let events = |n: usize| scrapes[n].consent_events();
    assert_eq!(events(0)["created"], 1.0);
    assert_eq!(events(1)["created"], 0.0);
    assert_eq!(events(0)["accepted"], 0.0);
    assert_eq!(events(1)["accepted"], 1.0);
    assert_eq!((events(0)["used"], events(1)["used"]), (1.0, 1.0));
}
