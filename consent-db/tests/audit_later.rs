//! Records nobody waits for (`AuditLog::append_later`: outcome records) ride
//! in the next commit somebody waits for, and are never dropped on the way.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use consent_db::{AuditConfig, AuditLog, LaterError, NewRecord, RecordKind, Store, StoreConfig};
use tempfile::TempDir;

async fn store(dir: &TempDir) -> Store {
    let store = Store::open_with(&support::test_url(dir.path()), &StoreConfig::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

fn lingering(linger: Duration) -> AuditConfig {
    AuditConfig {
        later_linger: linger,
        ..AuditConfig::default()
    }
}

fn record(kind: RecordKind, i: usize) -> NewRecord {
    let mut r = NewRecord::new(kind, format!("t-{i}"), "GET", "/data/nav/inntekt");
    r.provider = Some("nav".into());
    r.dataset = Some("inntekt".into());
    if kind == RecordKind::Outcome {
        r.status = Some(200);
        r.bytes = Some(10);
        r.duration_ms = Some(1);
    }
    r
}

async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_later_record_rides_in_the_next_commit_somebody_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let log = AuditLog::start(store.clone(), lingering(Duration::from_secs(3600))).unwrap();
    log.append_later(record(RecordKind::Outcome, 0)).unwrap();
    log.append_later(record(RecordKind::Outcome, 1)).unwrap();
    // The writer holds them for a record somebody waits for.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.record_count().await.unwrap(), 0);
    assert_eq!(log.stats().batches, 0);

    let receipt = log.append(record(RecordKind::Decision, 2)).await.unwrap();
    assert_eq!(receipt.index, 2, "queued in order, after the two outcomes");
    assert_eq!(store.record_count().await.unwrap(), 3);
    let stats = log.stats();
    assert_eq!((stats.batches, stats.records), (1, 3), "{stats:?}");
    let ids: Vec<String> = store
        .records(&consent_db::RecordFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.transfer_id)
        .collect();
    assert_eq!(ids, ["t-0", "t-1", "t-2"]);
}

#[tokio::test]
async fn a_lone_later_record_is_written_after_the_linger() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let log = AuditLog::start(store.clone(), lingering(Duration::from_millis(50))).unwrap();
    log.append_later(record(RecordKind::Outcome, 0)).unwrap();
    eventually("the lone record to commit", async || {
        store.record_count().await.unwrap() == 1
    })
    .await;
    assert_eq!(log.stats().batches, 1);
}

#[tokio::test]
async fn flush_and_close_write_later_records_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let log = AuditLog::start(store.clone(), lingering(Duration::from_secs(3600))).unwrap();
    log.append_later(record(RecordKind::Outcome, 0)).unwrap();
    log.flush().await.unwrap();
    assert_eq!(store.record_count().await.unwrap(), 1);

    log.append_later(record(RecordKind::Outcome, 1)).unwrap();
    log.append_later(record(RecordKind::Outcome, 2)).unwrap();
    log.close().await.unwrap();
    assert_eq!(store.record_count().await.unwrap(), 3);
    assert!(matches!(
        log.append_later(record(RecordKind::Outcome, 3)),
        Err(LaterError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_gives_the_record_back_and_it_is_written_when_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let url = support::test_url(dir.path());
    if url.starts_with("postgres") {
        eprintln!("skipped on PostgreSQL: locks the SQLite file from outside");
        return;
    }
    let store = store(&dir).await;
    let config = AuditConfig {
        queue_capacity: 1,
        ..lingering(Duration::from_secs(3600))
    };
    let log = AuditLog::start(store.clone(), config).unwrap();
    // The writer takes a decision and then waits for the write lock.
    let lock = support::lock_exclusively(&dir.path().join("bru.db")).await;
    let decision = tokio::spawn({
        let log = log.clone();
        async move { log.append(record(RecordKind::Decision, 0)).await }
    });
    eventually("the writer to hold the decision", async || {
        log.stats().writing == 1
    })
    .await;
    log.append_later(record(RecordKind::Outcome, 1)).unwrap();
    let back = match log.append_later(record(RecordKind::Outcome, 2)) {
        Err(LaterError::Full(record)) => *record,
        other => panic!("a full queue must give the record back: {other:?}"),
    };
    assert_eq!(back.transfer_id, "t-2");
    let waiting = tokio::spawn({
        let log = log.clone();
        async move { log.append_later_when_room(back).await }
    });

    support::unlock(lock).await;
    decision.await.unwrap().unwrap();
    waiting.await.unwrap().unwrap();
    log.flush().await.unwrap();
    assert_eq!(store.record_count().await.unwrap(), 3);
}

/// The appender's commits never checkpoint the WAL (that would stall the
/// decisions of the next batch); the log's checkpoint task copies it into
/// the database file beside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_beside_the_appender() {
    let dir = tempfile::tempdir().unwrap();
    let url = support::test_url(dir.path());
    if url.starts_with("postgres") {
        eprintln!("skipped on PostgreSQL: the server checkpoints");
        return;
    }
    let store = store(&dir).await;
    let db = dir.path().join("bru.db");
    let wal = dir.path().join("bru.db-wal");
    let before = std::fs::metadata(&db).unwrap().len();
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    for chunk in 0..20 {
        let appends: Vec<_> = (0..100)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move {
                    log.append(record(RecordKind::Decision, chunk * 100 + i))
                        .await
                })
            })
            .collect();
        for a in appends {
            a.await.unwrap().unwrap();
        }
    }
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    eventually("the records to reach the database file", async || {
        std::fs::metadata(&db).unwrap().len() > before
    })
    .await;
    log.close().await.unwrap();
}
