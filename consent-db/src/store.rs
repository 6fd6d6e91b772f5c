//! [`Store`]: one handle over whichever database the URL names.
//!
//! The backends are an enum rather than a trait object: there are exactly
//! two, every method is async (no `async_trait` boxing needed), and a match
//! per method keeps the dispatch in one readable place. `postgres.rs`
//! mirrors `sqlite.rs` statement for statement.

use std::time::Duration;

use crate::consent::{
    CitizenAction, ConsentError, ConsentEvent, ConsentEventCounts, ConsentRow, NewConsent,
    UseOutcome,
};
use crate::error::StoreError;
use crate::merkle::Hash;
use crate::postgres::PgStore;
use crate::record::{AuditRecord, NewRecord, RecordFilter, Timestamp};
use crate::sqlite::SqliteStore;
use crate::tlog::{ProofQueryError, StoredCheckpoint, TreeHead};
use policy::PersonNumber;

mod portal_sessions;
mod witness;
pub use portal_sessions::PortalSession;

/// How to connect. The defaults suit the gateway; tests shorten the timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// How long a statement waits for a lock another connection holds
    /// (SQLite `busy_timeout`) before the operation fails as unavailable.
    pub busy_timeout: Duration,
    /// How long to wait for a free pooled connection.
    pub acquire_timeout: Duration,
    pub max_connections: u32,
    /// Whether a commit waits for the disk (SQLite `synchronous=FULL`,
    /// PostgreSQL `synchronous_commit=on`). Only benchmarks turn it off, to
    /// price durability; a record committed without it is not evidence.
    pub synchronous: bool,
    /// Whether appends grow the Merkle tree. Only benchmarks turn it off, to
    /// price the tree; such a log cannot be verified.
    pub tree: bool,
    /// TLS to PostgreSQL (ignored for SQLite).
    pub postgres_tls: crate::postgres::PgTls,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            max_connections: 8,
            synchronous: true,
            tree: true,
            postgres_tls: crate::postgres::PgTls::Unset,
        }
    }
}

/// The result of committing one batch: the records written got the indexes
/// `first_index..`, in order, all with the same `time`; the records at the
/// positions in `refused` were not written, because their consent could not
/// take the use they asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchCommit {
    pub first_index: u64,
    pub time: Timestamp,
    pub refused: Vec<usize>,
}

/// The records of a batch without those at the `refused` positions (whose
/// consent could not give a use); borrowed when none was refused.
pub(crate) fn without_refused<'a>(
    records: &'a [NewRecord],
    refused: &[usize],
) -> std::borrow::Cow<'a, [NewRecord]> {
    if refused.is_empty() {
        return std::borrow::Cow::Borrowed(records);
    }
    std::borrow::Cow::Owned(
        records
            .iter()
            .enumerate()
            .filter(|(i, _)| !refused.contains(i))
            .map(|(_, r)| r.clone())
            .collect(),
    )
}

/// A cloneable handle over a connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Opens `sqlite://path` (created if missing) or `postgres://…`,
    /// with the default [`StoreConfig`]. Does not migrate: see [`Store::migrate`].
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_with(url, &StoreConfig::default()).await
    }

    pub async fn open_with(url: &str, config: &StoreConfig) -> Result<Store, StoreError> {
        let backend = match scheme(url) {
            Some("sqlite") => Backend::Sqlite(SqliteStore::open(url, config).await?),
            Some("postgres" | "postgresql") => Backend::Postgres(PgStore::open(url, config).await?),
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
            Backend::Postgres(s) => s.migrate().await,
        }
    }

    /// `"sqlite"` or `"postgres"`, for logs and metrics.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Records matching `filter`, in index order.
    pub async fn records(&self, filter: &RecordFilter) -> Result<Vec<AuditRecord>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.records(filter).await,
            Backend::Postgres(s) => s.records(filter).await,
        }
    }

    /// How many records the log holds; also the index the next record gets.
    pub async fn record_count(&self) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.record_count().await,
            Backend::Postgres(s) => s.record_count().await,
        }
    }

    /// The records of one transfer (its decision, then its outcome), in index order.
    pub async fn records_by_transfer(
        &self,
        transfer_id: &str,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.records_by_transfer(transfer_id).await,
            Backend::Postgres(s) => s.records_by_transfer(transfer_id).await,
        }
    }

    /// The consent by id, as of now (see [`Store::get_consent_at`]).
    pub async fn get_consent(&self, id: &str) -> Result<Option<ConsentRow>, StoreError> {
        self.get_consent_at(id, Timestamp::now()).await
    }

    // ---- consents: the lifecycle of consent.rs, and the only way to change one.

    /// Stores a new request as `pending`, with its `created` event.
    pub async fn create_consent(
        &self,
        new: &NewConsent,
        now: Timestamp,
    ) -> Result<ConsentRow, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.create_consent(new, now).await,
            Backend::Postgres(s) => s.create_consent(new, now).await,
        }
    }

    /// The consent by id. A pending or granted consent past `valid_to`
    /// becomes `expired` (with its event) on this read.
    pub async fn get_consent_at(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<ConsentRow>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.get_consent_at(id, now).await,
            Backend::Postgres(s) => s.get_consent_at(id, now).await,
        }
    }

    /// The consent and its events in order, from one snapshot (expired first if due).
    pub async fn get_consent_with_events(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<(ConsentRow, Vec<ConsentEvent>)>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.consent_with_events(id, now).await,
            Backend::Postgres(s) => s.consent_with_events(id, now).await,
        }
    }

    /// A consent's events in order (empty for an unknown id).
    pub async fn consent_events(&self, id: &str) -> Result<Vec<ConsentEvent>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.consent_events(id).await,
            Backend::Postgres(s) => s.consent_events(id).await,
        }
    }

    /// The consents about `subject`, newest first (expired first where due).
    pub async fn consents_by_subject(
        &self,
        subject: &PersonNumber,
        now: Timestamp,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.consents_by_subject(subject, now).await,
            Backend::Postgres(s) => s.consents_by_subject(subject, now).await,
        }
    }

    /// The newest `limit` consents that `requester` (`0192:N`) asked for.
    pub async fn consents_by_requester(
        &self,
        requester: &str,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.consents_by_requester(requester, limit, now).await,
            Backend::Postgres(s) => s.consents_by_requester(requester, limit, now).await,
        }
    }

    /// The consent events committed through this handle and its clones since
    /// the store was opened, by type (every change above writes one; a lazy
    /// expiry on a read counts too). Atomics only: cheap enough for every
    /// metrics scrape. Another process or replica on the same database counts
    /// its own.
    pub fn consent_event_counts(&self) -> ConsentEventCounts {
        match &self.backend {
            Backend::Sqlite(s) => s.events.snapshot(),
            Backend::Postgres(s) => s.events.snapshot(),
        }
    }

    /// The citizen accepts, rejects or revokes (see [`crate::next_state`]).
    /// A consent about another person is [`ConsentError::NotFound`]; one made
    /// without a subject becomes the citizen's.
    pub async fn citizen_action(
        &self,
        id: &str,
        citizen: &PersonNumber,
        action: CitizenAction,
        now: Timestamp,
    ) -> Result<ConsentRow, ConsentError> {
        match &self.backend {
            Backend::Sqlite(s) => s.citizen_action(id, citizen, action, now).await,
            Backend::Postgres(s) => s.citizen_action(id, citizen, action, now).await,
        }
    }

    pub async fn accept_consent(
        &self,
        id: &str,
        citizen: &PersonNumber,
        now: Timestamp,
    ) -> Result<ConsentRow, ConsentError> {
        self.citizen_action(id, citizen, CitizenAction::Accept, now)
            .await
    }

    pub async fn reject_consent(
        &self,
        id: &str,
        citizen: &PersonNumber,
        now: Timestamp,
    ) -> Result<ConsentRow, ConsentError> {
        self.citizen_action(id, citizen, CitizenAction::Reject, now)
            .await
    }

    pub async fn revoke_consent(
        &self,
        id: &str,
        citizen: &PersonNumber,
        now: Timestamp,
    ) -> Result<ConsentRow, ConsentError> {
        self.citizen_action(id, citizen, CitizenAction::Revoke, now)
            .await
    }

    /// Counts one use, atomically: only if the consent is granted, `now` is
    /// before `valid_to` and uses are left; with its `used` event.
    pub async fn use_consent(&self, id: &str, now: Timestamp) -> Result<UseOutcome, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.use_consent(id, now).await,
            Backend::Postgres(s) => s.use_consent(id, now).await,
        }
    }

    // ---- the transparency log (see tlog.rs) --------------------------------

    /// The latest tree head: the tree over every committed record.
    pub async fn tree_head(&self) -> Result<TreeHead, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.tree_head().await,
            Backend::Postgres(s) => s.tree_head().await,
        }
    }

    /// The RFC 9162 inclusion proof of leaf `index` in the tree of `size`
    /// leaves; out of range unless `index < size <= tree size`.
    pub async fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, ProofQueryError> {
        match &self.backend {
            Backend::Sqlite(s) => s.inclusion_proof(index, size).await,
            Backend::Postgres(s) => s.inclusion_proof(index, size).await,
        }
    }

    /// The RFC 9162 consistency proof from the tree of `from` leaves to the
    /// tree of `to`; out of range unless `1 <= from <= to <= tree size`.
    pub async fn consistency_proof(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, ProofQueryError> {
        match &self.backend {
            Backend::Sqlite(s) => s.consistency_proof(from, to).await,
            Backend::Postgres(s) => s.consistency_proof(from, to).await,
        }
    }

    /// The root of the tree of the first `size` records.
    pub async fn root_at(&self, size: u64) -> Result<Hash, ProofQueryError> {
        match &self.backend {
            Backend::Sqlite(s) => s.root_at(size).await,
            Backend::Postgres(s) => s.root_at(size).await,
        }
    }

    /// One record by index.
    pub async fn record_at(&self, index: u64) -> Result<Option<AuditRecord>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.record_at(index).await,
            Backend::Postgres(s) => s.record_at(index).await,
        }
    }

    /// Stores a signed checkpoint of the tree head (`size`, `root`).
    pub async fn add_checkpoint(
        &self,
        size: u64,
        root: &Hash,
        note: &str,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.add_checkpoint(size, root, note, Timestamp::now()).await,
            Backend::Postgres(s) => s.add_checkpoint(size, root, note, Timestamp::now()).await,
        }
    }

    /// The checkpoint of the largest tree (the latest one signed at that size).
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.latest_checkpoint().await,
            Backend::Postgres(s) => s.latest_checkpoint().await,
        }
    }

    /// Checkpoints in (size, id) order after `after`: pages for a verifier.
    pub async fn checkpoints_after(
        &self,
        after: Option<(u64, i64)>,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.checkpoints_after(after, limit).await,
            Backend::Postgres(s) => s.checkpoints_after(after, limit).await,
        }
    }

    /// Whether this process should sign checkpoints now. With several
    /// replicas on one PostgreSQL database only one does: the holder of a
    /// session-level advisory lock, which passes to another replica within
    /// one call of its when the holder's session ends. SQLite: always true.
    pub async fn try_become_checkpointer(&self) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(true),
            Backend::Postgres(s) => s.try_become_checkpointer().await,
        }
    }

    /// The readiness probe: a tiny write in its own transaction. `Ok` means
    /// the store takes writes now.
    pub async fn heartbeat(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.heartbeat().await,
            Backend::Postgres(s) => s.heartbeat().await,
        }
    }

    pub(crate) async fn heads_after(
        &self,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<TreeHead>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.heads_after(after, limit).await,
            Backend::Postgres(s) => s.heads_after(after, limit).await,
        }
    }

    pub(crate) async fn records_with_leaves(
        &self,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(AuditRecord, Option<Hash>)>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.records_with_leaves(after, limit).await,
            Backend::Postgres(s) => s.records_with_leaves(after, limit).await,
        }
    }

    pub(crate) async fn nodes_in_range(
        &self,
        level: u8,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Hash)>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.nodes_in_range(level, from, to).await,
            Backend::Postgres(s) => s.nodes_in_range(level, from, to).await,
        }
    }

    /// Closes the pool; waits for checked-out connections to come back.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(s) => s.close().await,
            Backend::Postgres(s) => s.close().await,
        }
    }

    /// Writes `records` in one transaction with the next indexes, and commits.
    /// Only the [`crate::AuditLog`] writer calls this, so that commits are
    /// batched; the index is read inside the transaction, so the log stays
    /// dense even with several writers (processes or replicas).
    ///
    /// The records at the positions in `consent_uses` each take one use of
    /// their `consent_id` first, in the same transaction (with its `used`
    /// event); one whose consent cannot give it is left out. So a decision
    /// under consent is in the log exactly when its use was counted.
    pub(crate) async fn append_batch(
        &self,
        records: &[NewRecord],
        consent_uses: &[usize],
    ) -> Result<BatchCommit, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.append_batch(records, consent_uses).await,
            Backend::Postgres(s) => s.append_batch(records, consent_uses).await,
        }
    }
}

fn scheme(url: &str) -> Option<&str> {
    url.split_once(':').map(|(s, _)| s)
}
