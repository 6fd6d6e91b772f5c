//! [`Store`]: one handle over whichever database the URL names.
//!
//! The backends are an enum rather than a trait object: there are exactly
//! two, every method is async (no `async_trait` boxing needed), and a match
//! per method keeps the dispatch in one readable place. A PostgreSQL backend
//! slots in as a `Backend::Postgres` variant with its own module, mirroring
//! `sqlite.rs`, and its migrations are already in `migrations/postgres`.

use std::time::Duration;

use crate::consent::ConsentRow;
use crate::error::StoreError;
use crate::record::{AuditRecord, NewRecord, RecordFilter, Timestamp};
use crate::sqlite::SqliteStore;

/// How to connect. The defaults suit the gateway; tests shorten the timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// How long a statement waits for a lock another connection holds
    /// (SQLite `busy_timeout`) before the operation fails as unavailable.
    pub busy_timeout: Duration,
    /// How long to wait for a free pooled connection.
    pub acquire_timeout: Duration,
    pub max_connections: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            max_connections: 8,
        }
    }
}

/// The result of committing one batch: the records got the indexes
/// `first_index..first_index + n`, all with the same `time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchCommit {
    pub first_index: u64,
    pub time: Timestamp,
}

/// A cloneable handle over a connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqliteStore),
}

impl Store {
    /// Opens `sqlite://path` (created if missing) or, later, `postgres://…`,
    /// with the default [`StoreConfig`]. Does not migrate: see [`Store::migrate`].
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_with(url, &StoreConfig::default()).await
    }

    pub async fn open_with(url: &str, config: &StoreConfig) -> Result<Store, StoreError> {
        let backend = match scheme(url) {
            Some("sqlite") => Backend::Sqlite(SqliteStore::open(url, config).await?),
            Some("postgres" | "postgresql") => {
                return Err(StoreError::Unsupported(
                    "PostgreSQL is not implemented yet; use sqlite://".into(),
                ))
            }
            // The URL may hold a password: name only the scheme.
            Some(other) => {
                return Err(StoreError::InvalidUrl(format!(
                    "unknown scheme {other:?}; expected sqlite:// or postgres://"
                )))
            }
            None => {
                return Err(StoreError::InvalidUrl(
                    "expected sqlite://path or postgres://…".into(),
                ))
            }
        };
        Ok(Store { backend })
    }

    /// Applies the embedded migrations that are not yet applied.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.migrate().await,
        }
    }

    /// `"sqlite"` or `"postgres"`, for logs and metrics.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
        }
    }

    /// Records matching `filter`, in index order.
    pub async fn records(&self, filter: &RecordFilter) -> Result<Vec<AuditRecord>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.records(filter).await,
        }
    }

    /// How many records the log holds; also the index the next record gets.
    pub async fn record_count(&self) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.record_count().await,
        }
    }

    /// The records of one transfer (its decision, then its outcome), in index order.
    pub async fn records_by_transfer(
        &self,
        transfer_id: &str,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.records_by_transfer(transfer_id).await,
        }
    }

    pub async fn get_consent(&self, id: &str) -> Result<Option<ConsentRow>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.get_consent(id).await,
        }
    }

    /// Closes the pool; waits for checked-out connections to come back.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(s) => s.close().await,
        }
    }

    /// Writes `records` in one transaction with the next indexes, and commits.
    /// Only the [`crate::AuditLog`] writer calls this, so that commits are
    /// batched; the index is read inside the transaction, so the log stays
    /// dense even with several writers (processes or replicas).
    pub(crate) async fn append_batch(
        &self,
        records: &[NewRecord],
    ) -> Result<BatchCommit, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.append_batch(records).await,
        }
    }
}

fn scheme(url: &str) -> Option<&str> {
    url.split_once(':').map(|(s, _)| s)
}
