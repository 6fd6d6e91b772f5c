//! The store's errors. sqlx's error type stays inside this crate (only
//! `consent-db` touches sqlx), so the public errors carry messages.

use thiserror::Error;

/// A store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The URL names a backend this build cannot use yet.
    #[error("unsupported store: {0}")]
    Unsupported(String),
    /// The URL is not `sqlite://…` or `postgres://…`.
    #[error("invalid store URL: {0}")]
    InvalidUrl(String),
    /// The database is there but cannot take the operation now (locked, busy,
    /// pool exhausted, I/O): worth retrying later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Db(String),
    /// The connection would not be protected as configured (plain TCP to
    /// another machine without `[store] tls`, or a failed TLS handshake).
    #[error("store connection refused: {0}")]
    Insecure(String),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(String),
    /// A stored value does not parse (e.g. an unknown `kind`): someone wrote
    /// the database behind the store's back.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) if is_busy(db.code().as_deref()) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Db(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e.to_string())
    }
}

/// SQLite's SQLITE_BUSY (5) and SQLITE_LOCKED (6), extended codes included;
/// PostgreSQL's lock_not_available and serialization/deadlock failures.
fn is_busy(code: Option<&str>) -> bool {
    match code {
        Some("55P03" | "40001" | "40P01") => true,
        Some(c) => c.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6)),
        None => false,
    }
}

/// Appending to the audit log failed. The gateway answers every one of these
/// with 503 `audit_unavailable` and forwards nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuditError {
    /// The batch holding this record did not commit (store busy, locked, full,
    /// or the commit took longer than the configured timeout). The record is
    /// not known to be durable.
    #[error("audit store unavailable: {0}")]
    Unavailable(String),
    /// The batch failed for another database reason.
    #[error("audit store error: {0}")]
    Db(String),
    /// The log was closed, or its writer task is gone.
    #[error("audit log is closed")]
    Closed,
    /// The log could not start (e.g. no Tokio runtime).
    #[error("audit log cannot start: {0}")]
    Start(String),
    /// The record was to take one use of its consent in the same
    /// transaction, and the consent could not give one (revoked, expired or
    /// used up since it was read). The record was not written.
    #[error("the consent could not take a use; the record was not written")]
    ConsentNotUsable,
    /// The record was appended with [`crate::Conditions::unblocked`], and a
    /// block of its subject's now covers its consumer or dataset (written
    /// since the caller read the blocks, perhaps by another replica). The
    /// record was not written.
    #[error("a block of the subject's covers this call; the record was not written")]
    SubjectBlocked,
}

impl From<StoreError> for AuditError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => AuditError::Unavailable(m),
            other => AuditError::Db(other.to_string()),
        }
    }
}
