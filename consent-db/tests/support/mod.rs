//! What the store's integration tests share: a fresh store URL per test.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;

use sqlx::Connection;

/// `BRU_TEST_STORE=postgres` runs these tests on a fresh PostgreSQL database
/// each (server from `BRU_TEST_POSTGRES_URL`, see scripts/start-postgres).
pub fn test_url(dir: &Path) -> String {
    if std::env::var("BRU_TEST_STORE").as_deref() != Ok("postgres") {
        return format!("sqlite://{}", dir.join("bru.db").display());
    }
    let base = std::env::var("BRU_TEST_POSTGRES_URL")
        .expect("BRU_TEST_STORE=postgres needs BRU_TEST_POSTGRES_URL");
    let name = format!("bru_test_{}", uuid_ish());
    let create = format!("CREATE DATABASE {name}");
    let admin = base.clone();
    // Fixtures are built in sync code inside a runtime: a thread of its own.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::raw_sql(&create).execute(&mut conn).await.unwrap();
        });
    })
    .join()
    .unwrap();
    let (server, _) = base.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

fn uuid_ish() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{nanos}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Holds SQLite's write lock from a connection of its own, as another process could.
pub async fn lock_exclusively(path: &Path) -> sqlx::SqliteConnection {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

pub async fn unlock(mut conn: sqlx::SqliteConnection) {
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}
