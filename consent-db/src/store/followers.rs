//! Followers of the log (migration 0010): work derived from the records
//! after they are written (notifications, snooping findings), each with its
//! position persisted. A follower reads the records after its position,
//! writes what it derives and advances its position in one transaction, so a
//! crash repeats no work and loses none; the row lock makes replicas that
//! run the same follower take turns instead of doing the work twice.

use super::{Conn, Store};
use crate::error::StoreError;
use crate::record::Timestamp;

const POSITION: &str = "SELECT position FROM log_followers WHERE name = $1";
const ENSURE: &str = "INSERT INTO log_followers (name, position, updated_at) \
     VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING";
const SET: &str = "UPDATE log_followers SET position = $2, updated_at = $3 WHERE name = $1";

impl Store {
    /// How many records the follower `name` has done (the index of the next
    /// record it reads); 0 for a follower that never ran.
    pub async fn follower_position(&self, name: &str) -> Result<u64, StoreError> {
        let position: Option<i64> = on_pool!(self, pool => {
            sqlx::query_scalar(POSITION).bind(name).fetch_optional(pool).await?
        });
        to_position(position.unwrap_or(0))
    }
}

/// Inside a follower's write transaction: its position, with its row locked
/// until the transaction ends (created at 0 on first use).
pub(crate) async fn lock_follower(conn: &mut Conn<'_>, name: &str) -> Result<u64, StoreError> {
    let now = Timestamp::now().to_string();
    let lock = format!("{POSITION}{}", conn.lock_row());
    let position: i64 = on_conn!(conn, c => {
        sqlx::query(ENSURE).bind(name).bind(&now).execute(&mut **c).await?;
        sqlx::query_scalar(&lock).bind(name).fetch_one(&mut **c).await?
    });
    to_position(position)
}

/// Inside the same transaction as [`lock_follower`]: the follower has done
/// every record below `position`.
pub(crate) async fn advance_follower(
    conn: &mut Conn<'_>,
    name: &str,
    position: u64,
) -> Result<(), StoreError> {
    let now = Timestamp::now().to_string();
    let position = i64::try_from(position)
        .map_err(|_| StoreError::Db(format!("follower position {position} is too large")))?;
    on_conn!(conn, c => {
        sqlx::query(SET).bind(name).bind(position).bind(&now).execute(&mut **c).await?;
    });
    Ok(())
}

/// Inside a follower's write transaction: the window of log indexes
/// `[position, to)` its step covers, at most `limit` long and ending at the
/// log's end as read here, so a record committed after this read falls in
/// the next window and is never skipped; `None` when nothing follows
/// `position`.
pub(crate) async fn window(
    conn: &mut Conn<'_>,
    position: u64,
    limit: u32,
) -> Result<Option<(i64, i64)>, StoreError> {
    let from = i64::try_from(position)
        .map_err(|_| StoreError::Corrupt(format!("follower position {position}")))?;
    let head = super::records::last_record(conn)
        .await?
        .map_or(0, |(last, _)| last + 1);
    let to = head.min(from.saturating_add(i64::from(limit.max(1))));
    Ok((to > from).then_some((from, to)))
}

fn to_position(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("follower position {n}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::store::{Store, StoreConfig};

    /// A migrated SQLite store in `dir` with `config`; `None` when the suite
    /// runs on PostgreSQL (the server checkpoints it, and its writers take no
    /// turns in the process).
    async fn sqlite_store(dir: &tempfile::TempDir, config: &StoreConfig) -> Option<Store> {
        if std::env::var("BRU_TEST_STORE").as_deref() == Ok("postgres") {
            return None;
        }
        let url = format!("sqlite://{}", dir.path().join("bru.db").display());
        let store = Store::open_with(&url, config).await.unwrap();
        store.migrate().await.unwrap();
        Some(store)
    }

    #[tokio::test]
    async fn a_position_is_kept_per_follower_and_only_with_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let url = match std::env::var("BRU_TEST_STORE").as_deref() {
            Ok("postgres") => crate::test_support::fresh_postgres_database().await,
            _ => format!("sqlite://{}", dir.path().join("bru.db").display()),
        };
        let store = Store::open_with(&url, &StoreConfig::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        assert_eq!(store.follower_position("notify").await.unwrap(), 0);

        let mut tx = store.begin_write().await.unwrap();
        assert_eq!(
            super::lock_follower(&mut tx.conn(), "notify")
                .await
                .unwrap(),
            0
        );
        super::advance_follower(&mut tx.conn(), "notify", 7)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.follower_position("notify").await.unwrap(), 7);
        assert_eq!(store.follower_position("snoop").await.unwrap(), 0);

        // Dropped without commit: the position stays where it was.
        let mut tx = store.begin_write().await.unwrap();
        assert_eq!(
            super::lock_follower(&mut tx.conn(), "notify")
                .await
                .unwrap(),
            7
        );
        super::advance_follower(&mut tx.conn(), "notify", 9)
            .await
            .unwrap();
        drop(tx);
        assert_eq!(store.follower_position("notify").await.unwrap(), 7);
    }

    /// What a transaction's commit waits for: SQLite's `synchronous` (2
    /// FULL, 1 NORMAL) or PostgreSQL's `synchronous_commit`, as text.
    async fn durability(tx: &mut crate::store::Tx<'_>) -> String {
        match tx.conn() {
            crate::store::Conn::Sqlite(c) => {
                let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
                    .fetch_one(&mut *c)
                    .await
                    .unwrap();
                level.to_string()
            }
            crate::store::Conn::Postgres(c) => sqlx::query_scalar("SHOW synchronous_commit")
                .fetch_one(&mut *c)
                .await
                .unwrap(),
        }
    }

    /// A follower's commit does not wait for the disk; every other write's
    /// does, before and after one (the setting does not leak into the
    /// connection a later write gets).
    #[tokio::test]
    async fn derived_writes_do_not_wait_for_the_disk_and_other_writes_still_do() {
        let dir = tempfile::tempdir().unwrap();
        let postgres = std::env::var("BRU_TEST_STORE").as_deref() == Ok("postgres");
        let url = if postgres {
            crate::test_support::fresh_postgres_database().await
        } else {
            format!("sqlite://{}", dir.path().join("bru.db").display())
        };
        let config = StoreConfig {
            max_connections: 1,
            ..StoreConfig::default()
        };
        let store = Store::open_with(&url, &config).await.unwrap();
        store.migrate().await.unwrap();
        let (waits, does_not) = if postgres { ("on", "off") } else { ("2", "1") };
        for _ in 0..2 {
            let mut tx = store.begin_write().await.unwrap();
            assert_eq!(durability(&mut tx).await, waits);
            tx.commit().await.unwrap();
            let mut tx = store.begin_derived().await.unwrap();
            assert_eq!(durability(&mut tx).await, does_not);
            super::lock_follower(&mut tx.conn(), "notify")
                .await
                .unwrap();
            super::advance_follower(&mut tx.conn(), "notify", 3)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        // A commit without the wait is a commit all the same.
        assert_eq!(store.follower_position("notify").await.unwrap(), 3);
        let mut tx = store.begin_write().await.unwrap();
        assert_eq!(durability(&mut tx).await, waits);
        drop(tx);
    }

    /// On SQLite a follower's commit checkpoints the WAL once it passes
    /// 1,000 pages (SQLite's default), as every write but the appender's
    /// does: the audit log's checkpoint task alone, beside an appender that
    /// never stops, let the WAL grow to 200 MB in 8 s (sqlite.rs).
    #[tokio::test]
    async fn a_followers_commit_still_checkpoints_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let Some(store) = sqlite_store(&dir, &StoreConfig::default()).await else {
            return; // the server checkpoints PostgreSQL
        };
        async fn pages(tx: &mut crate::store::Tx<'_>) -> i64 {
            let crate::store::Conn::Sqlite(c) = tx.conn() else {
                unreachable!("a SQLite store")
            };
            sqlx::query_scalar("PRAGMA wal_autocheckpoint")
                .fetch_one(&mut *c)
                .await
                .unwrap()
        }
        let mut tx = store.begin_derived().await.unwrap();
        assert_eq!(pages(&mut tx).await, 1000);
        tx.commit().await.unwrap();
        // The appender's own connection is the one that leaves it to others.
        let mut appender = store.appender().await.unwrap();
        let (mut batch, _) = appender.begin_batch().await.unwrap();
        let crate::store::Conn::Sqlite(c) = batch.conn().unwrap() else {
            unreachable!("a SQLite store")
        };
        let appenders: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        assert_eq!(appenders, 0);
    }

    /// With nothing following the log (the followers stalled), the WAL
    /// still starts again once it is past its bound while the log is
    /// written without a pause: the checkpoint past the bound takes the
    /// process's turn to write, so no batch adds frames while it copies
    /// (sqlite.rs `checkpoint_within`). The WAL file keeps the largest size
    /// it ever had, so its size at the end bounds it for the whole test.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wal_past_its_bound_starts_again_though_nothing_follows_the_log() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let Some(store) = sqlite_store(&dir, &StoreConfig::default()).await else {
            return; // the server checkpoints PostgreSQL
        };
        let crate::store::Backend::Sqlite(sqlite) = &store.backend else {
            unreachable!("a SQLite store")
        };
        let log = crate::AuditLog::start(store.clone(), crate::AuditConfig::default()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..32)
            .map(|w| {
                let (log, stop) = (log.clone(), Arc::clone(&stop));
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let mut r = crate::NewRecord::new(
                            crate::RecordKind::Decision,
                            format!("t-{w}-{n}"),
                            "GET",
                            "/data/nav/inntekt",
                        );
                        r.consumer = Some("0192:921429002".into());
                        log.append(r).await.unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        // 200 pages of 4 KiB: 0.8 MB.
        const BOUND: i64 = 200;
        for _ in 0..150 {
            sqlite.checkpoint_within(BOUND).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let mut appended = 0;
        for w in writers {
            appended += w.await.unwrap();
        }
        assert!(
            appended > 2_000,
            "{appended} records: too few to grow the WAL"
        );
        let wal = std::fs::metadata(dir.path().join("bru.db-wal"))
            .unwrap()
            .len();
        assert!(
            wal < 4 << 20,
            "the WAL grew to {wal} bytes for {appended} records"
        );
    }

    /// Writers of one process take turns (sqlite.rs `gate`); a write begun
    /// while the same task holds one still ends, refused after the busy
    /// timeout as before the turns, instead of waiting for itself forever.
    #[tokio::test]
    async fn a_nested_write_is_refused_after_the_busy_timeout_not_stuck() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            busy_timeout: std::time::Duration::from_millis(200),
            ..StoreConfig::default()
        };
        let Some(store) = sqlite_store(&dir, &config).await else {
            return; // PostgreSQL's writers do not take turns in the process
        };
        let held = store.begin_write().await.unwrap();
        let nested = tokio::time::timeout(std::time::Duration::from_secs(30), store.begin_write())
            .await
            .expect("a nested write must not wait for itself");
        assert!(nested.is_err(), "the database is locked by the held write");
        drop(held);
        // Once the held write is gone, writes take their turn again.
        store.begin_write().await.unwrap().commit().await.unwrap();
    }
}
