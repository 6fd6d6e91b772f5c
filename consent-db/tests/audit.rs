//! The store and the audit log against a real SQLite file.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use consent_db::{
    AuditConfig, AuditError, AuditLog, AuditRecord, Basis, NewRecord, RecordFilter, RecordKind,
    Store, StoreConfig, StoreError, Timestamp, Verdict,
};
use sqlx::Connection;
use tempfile::TempDir;

struct Fixture {
    _dir: TempDir,
    path: PathBuf,
    url: String,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bru.db");
        let url = test_url(dir.path());
        Fixture {
            _dir: dir,
            path,
            url,
        }
    }

    async fn store(&self, config: &StoreConfig) -> Store {
        let store = Store::open_with(&self.url, config).await.unwrap();
        store.migrate().await.unwrap();
        store
    }
}

use support::{lock_exclusively, test_url, unlock};

/// True (with the reason printed) when a test that needs the SQLite file
/// itself runs under PostgreSQL.
fn skip_on_postgres(url: &str, why: &str) -> bool {
    if url.starts_with("postgres") {
        eprintln!("skipped on PostgreSQL: {why}");
        return true;
    }
    false
}

fn record(i: usize) -> NewRecord {
    let consumers = ["0192:921429002", "0192:983440002", "0192:971000007"];
    let datasets = [
        ("nav", "inntekt"),
        ("helsenorge", "hjemmetjeneste"),
        ("k429", "sosialtjeneste"),
    ];
    let (provider, dataset) = datasets[i % 3];
    let kind = if i % 4 == 3 {
        RecordKind::Outcome
    } else {
        RecordKind::Decision
    };
    let mut r = NewRecord::new(
        kind,
        format!("t-{i}"),
        "GET",
        format!("/data/{provider}/{dataset}"),
    );
    r.consumer = (i % 7 != 6).then(|| consumers[i % 3].to_owned());
    r.provider = Some(provider.into());
    r.dataset = Some(dataset.into());
    r.purpose = Some("omsorgsbolig-soknad".into());
    r.basis = Some(if i % 3 == 2 {
        Basis::Statutory
    } else {
        Basis::Consent
    });
    r.subject_ref = Some(format!("s-{}", i % 5));
    match kind {
        RecordKind::Outcome => {
            r.status = Some(200);
            r.bytes = Some(i as u64 * 100);
            r.duration_ms = Some(i as u64);
        }
        _ if i.is_multiple_of(2) => r.decision = Some(Verdict::Allow),
        _ => {
            r.decision = Some(Verdict::Deny);
            r.code = Some("consent_required".into());
            r.status = Some(403);
        }
    }
    r
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_get_dense_indexes_matching_the_stored_records() {
    let fx = Fixture::new();
    let store = fx.store(&StoreConfig::default()).await;
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { (i, log.append(record(i)).await) })
        })
        .collect();
    let mut receipts = Vec::new();
    for t in tasks {
        let (i, receipt) = t.await.unwrap();
        receipts.push((i, receipt.unwrap()));
    }

    let indexes: BTreeSet<u64> = receipts.iter().map(|(_, r)| r.index).collect();
    assert_eq!(indexes, (0..200).collect::<BTreeSet<u64>>());
    for (i, receipt) in &receipts {
        let stored = store.records_by_transfer(&format!("t-{i}")).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].index, receipt.index);
        assert_eq!(stored[0].time, receipt.time);
        assert_eq!(
            stored[0],
            AuditRecord::from_new(receipt.index, receipt.time, record(*i))
        );
    }
    assert_eq!(store.record_count().await.unwrap(), 200);

    let all = store.records(&RecordFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.index).collect::<Vec<_>>(),
        (0..200).collect::<Vec<_>>()
    );
    // Time never goes backwards along the log.
    assert!(all.windows(2).all(|w| w[0].time <= w[1].time));

    let stats = log.stats();
    assert_eq!(stats.records, 200);
    assert_eq!(stats.failed_batches, 0);
    assert!(stats.batches < 200, "no group commit happened: {stats:?}");
    assert!(stats.max_batch_size > 1, "{stats:?}");
    check_batch_sizes(&stats);
    log.close().await.unwrap();
}

/// The batch-size histogram agrees with the other counters: one count per
/// committed batch, in a bucket whose bounds hold `records / batches`
/// on average, and the largest batch in the highest bucket used.
fn check_batch_sizes(stats: &consent_db::AuditStats) {
    let sizes = &stats.batch_sizes;
    assert_eq!(sizes.total(), stats.batches, "{stats:?}");
    let (mut least, mut most) = (0u64, 0u64);
    let mut lower = 0;
    let mut highest = None;
    for (i, (bound, n)) in sizes.buckets().enumerate() {
        least += n * (lower + 1);
        most += n * bound.unwrap_or(u64::MAX / 1_000_000);
        lower = bound.unwrap_or(lower);
        if n > 0 {
            highest = Some(i);
        }
    }
    assert!(
        (least..=most).contains(&stats.records),
        "{} records cannot be in batches {sizes:?}",
        stats.records
    );
    if stats.batches > 0 {
        assert_eq!(
            highest,
            Some(consent_db::BatchSizes::bucket(stats.max_batch_size)),
            "{stats:?}"
        );
    }
}

#[tokio::test]
async fn batch_sizes_are_observed_per_committed_batch() {
    let fx = Fixture::new();
    let store = fx.store(&StoreConfig::default()).await;
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    let before = Timestamp::now();
    assert_eq!(log.stats().batch_sizes.total(), 0);
    assert_eq!(log.stats().last_commit_unix_ms, None);

    // One at a time: every batch holds one record.
    for i in 0..5 {
        log.append(record(i)).await.unwrap();
    }
    let stats = log.stats();
    let mut want = [0; consent_db::BATCH_SIZE_BOUNDS.len() + 1];
    want[0] = 5;
    assert_eq!(stats.batch_sizes.counts, want, "{stats:?}");
    assert_eq!((stats.batches, stats.records), (5, 5));
    let last = stats.last_commit_unix_ms.expect("a commit time");
    assert!(
        i128::from(last) >= before.unix_millis(),
        "{last} is before the appends"
    );
    assert!(i128::from(last) <= Timestamp::now().unix_millis());
    // A flush with nothing queued commits no batch and counts nothing.
    log.flush().await.unwrap();
    assert_eq!(log.stats().batch_sizes, stats.batch_sizes);
    log.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_queued_during_a_commit_share_the_next_transaction() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "locks the SQLite file from outside") {
        return;
    }
    let store = fx.store(&StoreConfig::default()).await;
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();

    // The writer's first batch waits for the lock; everything else queues.
    let lock = lock_exclusively(&fx.path).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.append(record(i)).await })
        })
        .collect();
    eventually("the appends to queue", || {
        let s = log.stats();
        s.queued + s.writing == 50
    })
    .await;
    let flush = tokio::spawn({
        let log = log.clone();
        async move { log.flush().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !flush.is_finished(),
        "flush returned before the queue was written"
    );

    unlock(lock).await;
    flush.await.unwrap().unwrap();
    // Flush returned: everything queued before it is committed.
    assert_eq!(store.record_count().await.unwrap(), 50);
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let stats = log.stats();
    assert_eq!(stats.records, 50);
    // The batch that waited for the lock, and everything that queued behind it.
    assert!(stats.batches <= 2, "{stats:?}");
    assert!(stats.max_batch_size >= 25, "{stats:?}");
    check_batch_sizes(&stats);
    // The batch of 25 to 50 records lands in the bucket up to 32 or up to 64.
    assert!(
        stats.batch_sizes.counts[5] + stats.batch_sizes.counts[6] >= 1,
        "{stats:?}"
    );
}

/// `start_on` puts the writer on the runtime it is given (the per-core
/// runtime's first worker, in the gateway): nothing is written until that
/// runtime runs, and then the writer gathers the records of the callers
/// that share its thread into large batches (#21: on a runtime of its own
/// the per-core runtime's batches held about 9 calls, against 60).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_started_on_a_workers_runtime_runs_there_among_its_callers() {
    let fx = Fixture::new();
    let store = fx.store(&StoreConfig::default()).await;
    let worker = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = AuditLog::start_on(store.clone(), AuditConfig::default(), worker.handle());

    // The worker's runtime does not run yet: an append waits.
    let early = tokio::spawn({
        let log = log.clone();
        async move { log.append(record(0)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !early.is_finished(),
        "the writer ran before its runtime did"
    );
    assert_eq!(store.record_count().await.unwrap(), 0);

    // 64 callers on the worker's thread, 20 appends each, one after another.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn({
        let log = log.clone();
        move || {
            worker.block_on(async move {
                let mut callers = tokio::task::JoinSet::new();
                for c in 0..64 {
                    let log = log.clone();
                    callers.spawn(async move {
                        for i in 0..20 {
                            log.append(record(1 + c * 20 + i)).await.unwrap();
                        }
                    });
                }
                callers.join_all().await;
                let _ = done_tx.send(());
                // The writer is a task of this runtime: it runs until the
                // log is closed.
                let _ = stop_rx.await;
            })
        }
    });
    early.await.unwrap().unwrap();
    tokio::time::timeout(Duration::from_secs(120), done_rx)
        .await
        .expect("the callers on the worker finished")
        .unwrap();
    assert_eq!(store.record_count().await.unwrap(), 1 + 64 * 20);
    let stats = log.stats();
    assert_eq!(stats.records, 1 + 64 * 20);
    // Each caller waits for its record before the next, so a batch holds at
    // most 64 (65 with the early one); all 64 share most batches.
    assert!(
        stats.records >= 16 * stats.batches,
        "batches of {} records on average: {stats:?}",
        stats.records / stats.batches.max(1)
    );
    check_batch_sizes(&stats);
    log.close().await.unwrap();
    stop_tx.send(()).unwrap();
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn filters_return_what_they_say() {
    let fx = Fixture::new();
    let store = fx.store(&StoreConfig::default()).await;
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    // One at a time, so that records get different times.
    for i in 0..40 {
        log.append(record(i)).await.unwrap();
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    let all = store.records(&RecordFilter::default()).await.unwrap();
    assert_eq!(all.len(), 40);
    let mid = all[20].time;
    let late = all[30].time;

    async fn check(
        store: &Store,
        all: &[AuditRecord],
        filter: RecordFilter,
        expect: impl Fn(&AuditRecord) -> bool,
    ) {
        let got = store.records(&filter).await.unwrap();
        let want: Vec<_> = all.iter().filter(|r| expect(r)).cloned().collect();
        assert!(
            !want.is_empty() || filter.limit == Some(0),
            "{filter:?} selects nothing"
        );
        assert_eq!(got, want, "{filter:?}");
    }
    let f = RecordFilter::default;
    check(
        &store,
        &all,
        RecordFilter {
            consumer: Some("0192:983440002".into()),
            ..f()
        },
        |r| r.consumer.as_deref() == Some("0192:983440002"),
    )
    .await;
    check(
        &store,
        &all,
        RecordFilter {
            provider: Some("nav".into()),
            dataset: Some("inntekt".into()),
            ..f()
        },
        |r| r.dataset.as_deref() == Some("inntekt"),
    )
    .await;
    check(
        &store,
        &all,
        RecordFilter {
            decision: Some(Verdict::Deny),
            ..f()
        },
        |r| r.decision == Some(Verdict::Deny),
    )
    .await;
    check(
        &store,
        &all,
        RecordFilter {
            kind: Some(RecordKind::Outcome),
            ..f()
        },
        |r| r.kind == RecordKind::Outcome,
    )
    .await;
    check(
        &store,
        &all,
        RecordFilter {
            subject_ref: Some("s-3".into()),
            ..f()
        },
        |r| r.subject_ref.as_deref() == Some("s-3"),
    )
    .await;
    check(
        &store,
        &all,
        RecordFilter {
            since: Some(mid),
            ..f()
        },
        |r| r.time >= mid,
    )
    .await;
    check(
        &store,
        &all,
        RecordFilter {
            until: Some(mid),
            ..f()
        },
        |r| r.time < mid,
    )
    .await;
    check(
        &store,
        &all,
        RecordFilter {
            since: Some(mid),
            until: Some(late),
            ..f()
        },
        |r| r.time >= mid && r.time < late,
    )
    .await;
    check(
        &store,
        &all,
        RecordFilter {
            consumer: Some("0192:921429002".into()),
            decision: Some(Verdict::Allow),
            subject_ref: Some("s-0".into()),
            ..f()
        },
        |r| {
            r.consumer.as_deref() == Some("0192:921429002")
                && r.decision == Some(Verdict::Allow)
                && r.subject_ref.as_deref() == Some("s-0")
        },
    )
    .await;
    check(
        &store,
        &all,
        RecordFilter {
            after_index: Some(35),
            ..f()
        },
        |r| r.index > 35,
    )
    .await;
    check(
        &store,
        &all,
        RecordFilter {
            after_index: Some(u64::MAX),
            limit: Some(0),
            ..f()
        },
        |_| false,
    )
    .await;

    // Paging with the cursor gives every record once, in order.
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .records(&RecordFilter {
                after_index: cursor,
                limit: Some(7),
                ..f()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some(last.index);
        paged.extend(page);
    }
    assert_eq!(paged, all);

    // Export is JSON with every key; it parses back to the same records.
    let json = serde_json::to_string(&all).unwrap();
    assert_eq!(
        serde_json::from_str::<Vec<AuditRecord>>(&json).unwrap(),
        all
    );
    assert!(store
        .records_by_transfer("no-such-transfer")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn reopening_continues_the_index() {
    let fx = Fixture::new();
    let first_times = {
        let store = fx.store(&StoreConfig::default()).await;
        let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
        for i in 0..5 {
            assert_eq!(log.append(record(i)).await.unwrap().index, i as u64);
        }
        log.close().await.unwrap();
        store.close().await;
        5
    };
    let store = fx.store(&StoreConfig::default()).await; // migrating again is a no-op
    assert_eq!(store.record_count().await.unwrap(), first_times);
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    let receipt = log.append(record(5)).await.unwrap();
    assert_eq!(receipt.index, 5);
    let all = store.records(&RecordFilter::default()).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(all[4].time <= all[5].time);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_store_fails_appends_in_bounded_time_and_the_writer_recovers() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "locks the SQLite file from outside") {
        return;
    }
    let config = StoreConfig {
        busy_timeout: Duration::from_millis(200),
        ..StoreConfig::default()
    };
    let store = fx.store(&config).await;
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    assert_eq!(log.append(record(0)).await.unwrap().index, 0);

    let lock = lock_exclusively(&fx.path).await;
    let start = Instant::now();
    let tasks: Vec<_> = (1..6)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.append(record(i)).await })
        })
        .collect();
    for t in tasks {
        let result = t.await.unwrap();
        assert!(
            matches!(result, Err(AuditError::Unavailable(_))),
            "{result:?}"
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
    let stats = log.stats();
    assert!(
        stats.failed_batches >= 1 && stats.failed_records == 5,
        "{stats:?}"
    );

    // The lock goes away; the same writer carries on, with no gap in the log.
    unlock(lock).await;
    assert_eq!(log.append(record(9)).await.unwrap().index, 1);
    assert_eq!(store.record_count().await.unwrap(), 2);
    assert!(store.records_by_transfer("t-1").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_slower_than_the_timeout_fails() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "locks the SQLite file from outside") {
        return;
    }
    let store = fx.store(&StoreConfig::default()).await; // busy_timeout 5 s
    let config = AuditConfig {
        commit_timeout: Duration::from_millis(150),
        ..AuditConfig::default()
    };
    let log = AuditLog::start(store.clone(), config).unwrap();

    let lock = lock_exclusively(&fx.path).await;
    let start = Instant::now();
    let result = log.append(record(0)).await;
    assert!(
        matches!(result, Err(AuditError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    unlock(lock).await;
    assert_eq!(log.append(record(1)).await.unwrap().index, 0);
}

#[tokio::test]
async fn a_closed_log_refuses_at_once() {
    let fx = Fixture::new();
    let store = fx.store(&StoreConfig::default()).await;
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    let other = log.clone();
    let pending = tokio::spawn({
        let log = log.clone();
        async move { log.append(record(0)).await }
    });
    tokio::task::yield_now().await;
    log.close().await.unwrap();
    // Queued before the close (or refused if the close got there first): never lost silently.
    match pending.await.unwrap() {
        Ok(r) => assert_eq!(
            store.records_by_transfer("t-0").await.unwrap()[0].index,
            r.index
        ),
        Err(e) => assert_eq!(e, AuditError::Closed),
    }
    assert!(other.is_closed());
    let refused = tokio::time::timeout(Duration::from_secs(1), other.append(record(1)))
        .await
        .unwrap();
    assert_eq!(refused, Err(AuditError::Closed));
    assert_eq!(other.flush().await, Err(AuditError::Closed));
    assert_eq!(other.close().await, Ok(()));
}

#[tokio::test]
async fn dropping_every_handle_still_writes_what_was_queued() {
    let fx = Fixture::new();
    let store = fx.store(&StoreConfig::default()).await;
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    let append = tokio::spawn({
        let log = log.clone();
        async move { log.append(record(0)).await }
    });
    drop(log);
    assert_eq!(append.await.unwrap().unwrap().index, 0);
    assert_eq!(store.record_count().await.unwrap(), 1);
}

#[test]
fn starting_without_a_runtime_is_an_error_not_a_panic() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fx = Fixture::new();
    let store = rt.block_on(fx.store(&StoreConfig::default()));
    assert!(matches!(
        AuditLog::start(store, AuditConfig::default()),
        Err(AuditError::Start(_))
    ));
}

#[tokio::test]
async fn unknown_urls_are_refused_and_errors_never_show_the_password() {
    // Nothing listens on port 1: the store is unavailable, and says so
    // without the password.
    let config = StoreConfig {
        acquire_timeout: Duration::from_secs(1),
        ..StoreConfig::default()
    };
    let pg = Store::open_with("postgres://bru:secret@127.0.0.1:1/bru", &config)
        .await
        .unwrap_err();
    assert!(matches!(pg, StoreError::Unavailable(_)), "{pg:?}");
    assert!(!pg.to_string().contains("secret"));
    let garbled = Store::open("postgres://bru:secret@[db/bru")
        .await
        .unwrap_err();
    assert!(matches!(garbled, StoreError::InvalidUrl(_)), "{garbled:?}");
    assert!(!garbled.to_string().contains("secret"));
    let bad = Store::open("mysql://bru:secret@db/bru").await.unwrap_err();
    assert!(matches!(bad, StoreError::InvalidUrl(_)), "{bad:?}");
    assert!(!bad.to_string().contains("secret"));
    assert!(matches!(
        Store::open("bru.db").await,
        Err(StoreError::InvalidUrl(_))
    ));
}

#[tokio::test]
async fn the_file_is_created_in_wal_mode() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "checks the SQLite file and its WAL mode") {
        return;
    }
    assert!(!fx.path.exists());
    let store = fx.store(&StoreConfig::default()).await;
    assert!(fx.path.exists());
    assert_eq!(store.backend_name(), "sqlite");
    let mut conn = sqlx::SqliteConnection::connect(&fx.url).await.unwrap();
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn in_memory_stores_work_for_other_crates_tests() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    for i in 0..3 {
        assert_eq!(log.append(record(i)).await.unwrap().index, i as u64);
    }
    assert_eq!(store.record_count().await.unwrap(), 3);
}

#[tokio::test]
async fn records_cannot_be_changed_or_removed() {
    let fx = Fixture::new();
    if skip_on_postgres(
        &fx.url,
        "edits through a raw SQLite connection (PostgreSQL triggers: consent lifecycle tests)",
    ) {
        return;
    }
    let store = fx.store(&StoreConfig::default()).await;
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    log.append(record(0)).await.unwrap();
    let mut conn = sqlx::SqliteConnection::connect(&fx.url).await.unwrap();
    let update = sqlx::query("UPDATE audit_records SET decision = 'deny'")
        .execute(&mut conn)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM audit_records")
        .execute(&mut conn)
        .await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    assert_eq!(store.record_count().await.unwrap(), 1);
}

#[tokio::test]
async fn consents_are_read_back_and_their_subject_is_not_debug_printed() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "writes through a raw SQLite connection") {
        return;
    }
    let store = fx.store(&StoreConfig::default()).await;
    assert_eq!(store.get_consent("c-1").await.unwrap(), None);

    let now = Timestamp::now().to_string();
    let mut conn = sqlx::SqliteConnection::connect(&fx.url).await.unwrap();
    sqlx::query(
        "INSERT INTO consents (id, requester, subject, datasets, purpose, status, valid_to, max_uses, \
         redirect_url, created_at, updated_at) VALUES ('c-1', '0192:921429002', '12884513829', \
         '[\"nav/inntekt\",\"helsenorge/hjemmetjeneste\"]', 'omsorgsbolig-soknad', 'pending', ?, 10, \
         'https://k429.example/back', ?, ?)",
    )
    .bind(&now)
    .bind(&now)
    .bind(&now)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO consent_events (consent_id, seq, type, at) VALUES ('c-1', 0, 'created', ?)",
    )
    .bind(&now)
    .execute(&mut conn)
    .await
    .unwrap();
    // Events belong to a consent (sqlx turns foreign keys on, as the store does).
    let orphan = sqlx::query("INSERT INTO consent_events (consent_id, seq, type, at) VALUES ('c-404', 0, 'created', 'x')")
        .execute(&mut conn)
        .await;
    assert!(orphan.is_err());

    let row = store.get_consent("c-1").await.unwrap().unwrap();
    assert_eq!(row.subject.as_deref(), Some("12884513829"));
    assert_eq!(
        row.datasets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["nav/inntekt", "helsenorge/hjemmetjeneste"]
    );
    assert_eq!(
        (row.uses, row.max_uses, row.supplier.as_deref()),
        (0, Some(10), None)
    );
    assert!(!format!("{row:?}").contains("12884513829"));
}

#[test]
fn both_backends_have_the_same_migrations() {
    let sqlite = sqlx::migrate!("./migrations/sqlite");
    let postgres = sqlx::migrate!("./migrations/postgres");
    let names = |m: &sqlx::migrate::Migrator| {
        m.iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&sqlite), names(&postgres));
}
