//! The derived index of the audit log (issue #21, migration 0015): the hot
//! path writes `audit_records` with its primary key only, the indexer copies
//! the filtered columns into `audit_index` behind it, and readers that filter
//! catch it up first.
#![allow(clippy::unwrap_used)]

mod support;

use std::borrow::Cow;

use consent_db::{
    AuditConfig, AuditLog, NewRecord, RecordFilter, RecordKind, Store, StoreConfig, Verdict,
};
use sqlx::Connection;

use support::test_url;

fn record(i: usize) -> NewRecord {
    let mut r = NewRecord::new(
        RecordKind::Decision,
        format!("t-{i}"),
        "GET",
        "/data/nav/inntekt",
    );
    r.consumer = Some(["0192:921429002", "0192:983440002"][i % 2].to_owned());
    r.provider = Some("nav".into());
    r.dataset = Some("nav/inntekt".into());
    r.subject_ref = Some(format!("subject-{}", i % 3));
    r.decision = Some(Verdict::Allow);
    r
}

async fn open(url: &str) -> Store {
    let store = Store::open_with(url, &StoreConfig::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

async fn append(store: &Store, range: std::ops::Range<usize>) {
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    for i in range {
        log.append(record(i)).await.unwrap();
    }
    log.close().await.unwrap();
}

/// Every index in `audit_index`, in order, read on its own connection.
async fn indexed(url: &str) -> Vec<i64> {
    let sql = "SELECT idx FROM audit_index ORDER BY idx";
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
    }
}

fn by_consumer(consumer: &str) -> RecordFilter {
    RecordFilter {
        consumer: Some(consumer.into()),
        ..RecordFilter::default()
    }
}

#[tokio::test]
async fn a_filtered_query_sees_the_records_just_appended() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_url(dir.path());
    let store = open(&url).await;
    append(&store, 0..10).await;
    // Nothing has run the indexer: the records are in the log only.
    assert_eq!(store.index_position().await.unwrap(), 0);
    assert!(indexed(&url).await.is_empty());

    let found = store.records(&by_consumer("0192:983440002")).await.unwrap();
    let indexes: Vec<u64> = found.iter().map(|r| r.index).collect();
    assert_eq!(indexes, [1, 3, 5, 7, 9]);
    assert_eq!(store.index_position().await.unwrap(), 10);

    // Each reader of the derived index catches it up.
    append(&store, 10..13).await;
    let transfer = store.records_by_transfer("t-11").await.unwrap();
    assert_eq!(transfer.len(), 1);
    assert_eq!(transfer[0].index, 11);
    append(&store, 13..16).await;
    let citizen = store
        .citizen_records("subject-2", None, None, 100)
        .await
        .unwrap();
    let indexes: Vec<u64> = citizen.iter().map(|r| r.index).collect();
    assert_eq!(indexes, [2, 5, 8, 11, 14]);
    // The other filters, on the index's columns.
    let allowed = store
        .records(&RecordFilter {
            decision: Some(Verdict::Allow),
            kind: Some(RecordKind::Decision),
            provider: Some("nav".into()),
            dataset: Some("nav/inntekt".into()),
            subject_ref: Some("subject-0".into()),
            after_index: Some(3),
            limit: Some(2),
            ..RecordFilter::default()
        })
        .await
        .unwrap();
    let indexes: Vec<u64> = allowed.iter().map(|r| r.index).collect();
    assert_eq!(indexes, [6, 9]);
    assert_eq!(indexed(&url).await, (0..16).collect::<Vec<i64>>());
}

#[tokio::test]
async fn the_index_position_survives_a_crash_between_append_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_url(dir.path());
    let store = open(&url).await;
    append(&store, 0..5).await;
    assert_eq!(store.index_step(3).await.unwrap(), 3);
    assert_eq!(store.index_position().await.unwrap(), 3);
    append(&store, 5..9).await;
    // The process stops with the log ahead of the index.
    store.close().await;
    drop(store);

    let store = open(&url).await;
    assert_eq!(store.index_position().await.unwrap(), 3);
    assert_eq!(indexed(&url).await, [0, 1, 2]);
    assert_eq!(store.index_step(4).await.unwrap(), 4);
    assert_eq!(store.catch_up_index(9).await.unwrap(), 9);
    // At the log's end a step copies nothing and the position stays.
    assert_eq!(store.index_step(100).await.unwrap(), 0);
    assert_eq!(store.index_position().await.unwrap(), 9);
    // No gap, no duplicate (the primary key would refuse one).
    assert_eq!(indexed(&url).await, (0..9).collect::<Vec<i64>>());
    let all = store.records(&by_consumer("0192:921429002")).await.unwrap();
    let indexes: Vec<u64> = all.iter().map(|r| r.index).collect();
    assert_eq!(indexes, [0, 2, 4, 6, 8]);
}

#[tokio::test]
async fn the_migration_indexes_the_records_written_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_url(dir.path());
    // The schema before 0015, written to by the writer of today (which
    // writes `audit_records` only).
    let before = |m: sqlx::migrate::Migrator| {
        let old: Vec<_> = m
            .migrations
            .iter()
            .filter(|m| m.version < 15)
            .cloned()
            .collect();
        sqlx::migrate::Migrator {
            migrations: Cow::Owned(old),
            ..m
        }
    };
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        before(sqlx::migrate!("./migrations/postgres"))
            .run(&mut c)
            .await
            .unwrap();
    } else {
        let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let mut c = sqlx::SqliteConnection::connect_with(&opts.create_if_missing(true))
            .await
            .unwrap();
        before(sqlx::migrate!("./migrations/sqlite"))
            .run(&mut c)
            .await
            .unwrap();
    }
    let old = Store::open_with(&url, &StoreConfig::default())
        .await
        .unwrap();
    append(&old, 0..7).await;
    old.close().await;

    let store = open(&url).await;
    assert_eq!(indexed(&url).await, (0..7).collect::<Vec<i64>>());
    assert_eq!(store.index_position().await.unwrap(), 7);
    let found = store.records(&by_consumer("0192:921429002")).await.unwrap();
    let indexes: Vec<u64> = found.iter().map(|r| r.index).collect();
    assert_eq!(indexes, [0, 2, 4, 6]);
    // And the indexer goes on from there.
    append(&store, 7..9).await;
    assert_eq!(store.index_step(100).await.unwrap(), 2);
    assert_eq!(indexed(&url).await, (0..9).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_catching_up_at_once_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_url(dir.path());
    let writer = open(&url).await;
    // Two more handles on the same database, as two replicas would have.
    let a = open(&url).await;
    let b = open(&url).await;
    let appending = tokio::spawn({
        let writer = writer.clone();
        async move { append(&writer, 0..60).await }
    });
    let step = |s: Store| async move {
        let mut copied = 0;
        for _ in 0..40 {
            copied += s.index_step(4).await.unwrap();
            tokio::task::yield_now().await;
        }
        copied
    };
    let (ca, cb) = tokio::join!(tokio::spawn(step(a.clone())), tokio::spawn(step(b.clone())));
    appending.await.unwrap();
    let mut copied = ca.unwrap() + cb.unwrap();
    copied += a.index_step(1000).await.unwrap();
    // Every record copied once: no step repeated another's rows (the
    // primary key would have refused them) and none was skipped.
    assert_eq!(copied, 60);
    assert_eq!(b.index_position().await.unwrap(), 60);
    assert_eq!(indexed(&url).await, (0..60).collect::<Vec<i64>>());
}
