//! Helpers for the unit tests that run on either backend.
#![allow(clippy::unwrap_used)]

use sqlx::{Connection, PgConnection, SqliteConnection};

/// A new, empty database on the server `BRU_TEST_POSTGRES_URL` names; its URL.
pub(crate) async fn fresh_postgres_database() -> String {
    let base = std::env::var("BRU_TEST_POSTGRES_URL")
        .expect("BRU_TEST_STORE=postgres needs BRU_TEST_POSTGRES_URL (scripts/start-postgres)");
    let name = format!(
        "bru_test_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            ^ u128::from(std::process::id()) << 64
    );
    let mut conn = PgConnection::connect(&base).await.unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let (server, _) = base.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

/// Runs `sql` on a connection of its own, past the store (as another writer would).
pub(crate) async fn raw_exec(url: &str, sql: &str) -> Result<(), sqlx::Error> {
    if url.starts_with("postgres") {
        let mut conn = PgConnection::connect(url).await?;
        sqlx::raw_sql(sql).execute(&mut conn).await.map(|_| ())
    } else {
        let mut conn = SqliteConnection::connect(url).await?;
        sqlx::raw_sql(sql).execute(&mut conn).await.map(|_| ())
    }
}

/// The first column of the first row of `sql`, as text.
pub(crate) async fn raw_text(url: &str, sql: &str) -> Result<String, sqlx::Error> {
    if url.starts_with("postgres") {
        let mut conn = PgConnection::connect(url).await?;
        sqlx::query_scalar(sql).fetch_one(&mut conn).await
    } else {
        let mut conn = SqliteConnection::connect(url).await?;
        sqlx::query_scalar(sql).fetch_one(&mut conn).await
    }
}
