//! Altinn consents' state (migration 0006), on SQLite and (with
//! `BRU_TEST_STORE=postgres`) PostgreSQL.
#![allow(clippy::unwrap_used)]

mod support;

use consent_db::{AltinnConsentEnded, AltinnConsentState, Store};

use support::test_url;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&test_url(dir.path())).await.unwrap();
    store.migrate().await.unwrap();
    (dir, store)
}

const ID: &str = "93413201-b7e8-4ec3-a899-580fc02c6aeb";

#[tokio::test]
async fn a_one_time_use_is_taken_exactly_once_in_parallel() {
    let (_dir, store) = store().await;
    assert_eq!(
        store.altinn_consent_state(ID).await.unwrap(),
        AltinnConsentState::default()
    );
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .use_altinn_consent_once(ID, &format!("t{i}"), "2026-12-04T12:00:00Z")
                .await
                .unwrap()
        }));
    }
    let mut taken = 0;
    for t in tasks {
        taken += usize::from(t.await.unwrap());
    }
    assert_eq!(taken, 1);
    assert!(store.altinn_consent_state(ID).await.unwrap().used);
}

#[tokio::test]
async fn ended_consents_and_the_cursor_move_together() {
    let (_dir, store) = store().await;
    assert_eq!(store.altinn_feed_cursor("f").await.unwrap(), None);
    let ended = vec![AltinnConsentEnded {
        consent_id: ID.into(),
        event: "revoked".into(),
        changed_at: "2026-12-04T12:00:00Z".into(),
    }];
    store
        .apply_altinn_events(
            "f",
            &ended,
            Some("https://a/next?c=1"),
            "2026-12-04T12:00:01Z",
        )
        .await
        .unwrap();
    // The same page again (a restart before the next poll): idempotent.
    store
        .apply_altinn_events(
            "f",
            &ended,
            Some("https://a/next?c=2"),
            "2026-12-04T12:00:02Z",
        )
        .await
        .unwrap();
    let state = store.altinn_consent_state(ID).await.unwrap();
    assert_eq!(state.ended.as_deref(), Some("revoked"));
    assert!(!state.used);
    assert_eq!(
        store.altinn_feed_cursor("f").await.unwrap().as_deref(),
        Some("https://a/next?c=2")
    );
    // An event the schema does not know is refused, and nothing of its page is kept.
    let bad = vec![AltinnConsentEnded {
        consent_id: "other".into(),
        event: "used".into(),
        changed_at: "2026-12-04T12:00:00Z".into(),
    }];
    assert!(store
        .apply_altinn_events(
            "f",
            &bad,
            Some("https://a/next?c=3"),
            "2026-12-04T12:00:03Z"
        )
        .await
        .is_err());
    assert_eq!(
        store.altinn_feed_cursor("f").await.unwrap().as_deref(),
        Some("https://a/next?c=2")
    );
}

/// A one-time Altinn consent's use is taken in its decision record's batch
/// transaction (like Bru's own consents): of 20 parallel decisions under it,
/// exactly one record is written, with the use; the rest are answered
/// `ConsentNotUsable` and leave nothing. Without the use in the batch, the
/// `altinn:` id would be looked up among Bru's consents and every record
/// refused.
#[tokio::test]
async fn a_one_time_use_rides_in_its_decision_records_transaction() {
    use consent_db::{AuditConfig, AuditError, AuditLog, NewRecord, RecordKind};
    let (_dir, store) = store().await;
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = NewRecord::new(
                RecordKind::Decision,
                format!("t-{i}"),
                "GET",
                "/data/nav/inntekt",
            );
            r.consent_id = Some(format!("altinn:{ID}"));
            log.append_using_consent(r).await
        }));
    }
    let (mut written, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => written += 1,
            Err(AuditError::ConsentNotUsable) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((written, refused), (1, 19));
    log.close().await.unwrap();
    assert_eq!(store.record_count().await.unwrap(), 1);
    assert!(store.altinn_consent_state(ID).await.unwrap().used);
}
