//! The portal's server-side sessions, on SQLite and (with `BRU_TEST_STORE=postgres`) PostgreSQL.
#![allow(clippy::unwrap_used)]

mod support;

use consent_db::{PortalSession, Store};

use support::test_url;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&test_url(dir.path())).await.unwrap();
    store.migrate().await.unwrap();
    (dir, store)
}

fn session(id: &str, login_at: i64, seen_at: i64) -> PortalSession {
    PortalSession {
        id_hash: id.to_owned(),
        sealed: format!("sealed-{id}"),
        login_at,
        seen_at,
    }
}

#[tokio::test]
async fn a_session_is_created_read_touched_and_ended() {
    let (_dir, store) = store().await;
    assert_eq!(store.portal_session("a").await.unwrap(), None);
    store
        .create_portal_session(&session("a", 100, 100))
        .await
        .unwrap();
    store
        .create_portal_session(&session("b", 100, 100))
        .await
        .unwrap();
    // The same id twice is refused (ids are random; a clash is a bug).
    assert!(store
        .create_portal_session(&session("a", 1, 1))
        .await
        .is_err());
    assert_eq!(
        store.portal_session("a").await.unwrap(),
        Some(session("a", 100, 100))
    );
    store.touch_portal_session("a", 160).await.unwrap();
    // An older touch (another replica, a moment late) never moves it back.
    store.touch_portal_session("a", 130).await.unwrap();
    assert_eq!(
        store.portal_session("a").await.unwrap().unwrap().seen_at,
        160
    );
    // Ending one leaves the other.
    assert!(store.delete_portal_session("a").await.unwrap());
    assert!(!store.delete_portal_session("a").await.unwrap());
    assert_eq!(store.portal_session("a").await.unwrap(), None);
    assert!(store.portal_session("b").await.unwrap().is_some());
}

#[tokio::test]
async fn timed_out_sessions_are_purged() {
    let (_dir, store) = store().await;
    store
        .create_portal_session(&session("idle", 1000, 1000))
        .await
        .unwrap();
    store
        .create_portal_session(&session("old", 10, 5000))
        .await
        .unwrap();
    store
        .create_portal_session(&session("live", 1000, 5000))
        .await
        .unwrap();
    // Idle before 2000, or logged in before 100.
    assert_eq!(store.purge_portal_sessions(2000, 100).await.unwrap(), 2);
    assert!(store.portal_session("idle").await.unwrap().is_none());
    assert!(store.portal_session("old").await.unwrap().is_none());
    assert!(store.portal_session("live").await.unwrap().is_some());
}

#[tokio::test]
async fn two_handles_on_one_database_agree() {
    // Two replicas: a logout through one ends the session for the other.
    let dir = tempfile::tempdir().unwrap();
    let url = test_url(dir.path());
    let one = Store::open(&url).await.unwrap();
    one.migrate().await.unwrap();
    let two = Store::open(&url).await.unwrap();
    one.create_portal_session(&session("s", 1, 1))
        .await
        .unwrap();
    assert!(two.portal_session("s").await.unwrap().is_some());
    assert!(two.delete_portal_session("s").await.unwrap());
    assert!(one.portal_session("s").await.unwrap().is_none());
}
