//! The audit log's derived index (issue #21; migration 0015). A batch of
//! records is the hot path's only durable write, and it inserts into
//! `audit_records` with its primary key only: the columns the audit API and
//! the citizen's views filter on (time, transfer, subject, consumer,
//! provider/dataset, kind, decision, disclose_at) are copied into
//! `audit_index` by the "indexer", a follower of the log ([`super::followers`]).
//!
//! One step copies the records after its position in one native
//! `INSERT … SELECT` and advances the position in the same transaction, so a
//! crash repeats no work and loses none, and replicas take turns on the
//! follower's row lock. The gateway runs steps in the background; a reader
//! that filters on these columns first catches the index up to the log's end
//! as it knows it ([`Store::catch_up_index`]), so it sees its own writes.

use super::followers::{advance_follower, lock_follower};
use super::{Conn, Store};
use crate::error::StoreError;

/// The follower's name in `log_followers`.
pub const INDEX_FOLLOWER: &str = "indexer";

/// Records per step: a step holds SQLite's write lock, and this process's
/// turn to write (the appender waits behind it), for a millisecond or two;
/// steps follow each other at once while behind, so the appender's batches
/// come between them.
pub const INDEX_STEP: u32 = 500;

/// The columns of `audit_index`, named as in `audit_records`.
const INDEX_COLUMNS: &str =
    "idx, time, transfer_id, kind, consumer, provider, dataset, subject_ref, decision, disclose_at";

impl Store {
    /// One step of the indexer: the records at its position and after (at
    /// most `limit`) copied into `audit_index`, and its position advanced
    /// past them, in one write transaction. Returns how many it copied (0:
    /// the index is at the log's end).
    pub async fn index_step(&self, limit: u32) -> Result<u64, StoreError> {
        Ok(self.index_step_at(limit).await?.0)
    }

    /// [`Store::index_step`], also returning the position after the step.
    async fn index_step_at(&self, limit: u32) -> Result<(u64, u64), StoreError> {
        let sql = format!(
            "INSERT INTO audit_index ({INDEX_COLUMNS}) SELECT {INDEX_COLUMNS} FROM audit_records \
             WHERE idx >= $1 AND idx < $2 ORDER BY idx"
        );
        let mut tx = self.begin_derived().await?;
        let mut conn = tx.conn();
        let position = lock_follower(&mut conn, INDEX_FOLLOWER).await?;
        let from = i64::try_from(position)
            .map_err(|_| StoreError::Corrupt(format!("indexer position {position}")))?;
        let to = from.saturating_add(i64::from(limit.max(1)));
        let rows = on_conn!(&mut conn, c => {
            sqlx::query(&sql).bind(from).bind(to).execute(&mut **c).await?.rows_affected()
        });
        // Indexes are dense and appended in order under the sequencer, so
        // the rows copied are exactly `position..position + rows`.
        let next = position + rows;
        if rows > 0 {
            advance_follower(&mut conn, INDEX_FOLLOWER, next).await?;
        }
        tx.commit().await?;
        Ok((rows, next))
    }

    /// How many records `audit_index` holds: the index of the next record
    /// the indexer copies.
    pub async fn index_position(&self) -> Result<u64, StoreError> {
        self.follower_position(INDEX_FOLLOWER).await
    }

    /// Records in the log that `audit_index` does not hold yet (two
    /// primary-key reads; no write lock): the indexer's lag.
    pub async fn index_lag(&self) -> Result<u64, StoreError> {
        let records = self.record_count().await?;
        let done = self.index_position().await?;
        Ok(records.saturating_sub(done))
    }

    /// Runs indexer steps until `audit_index` holds every record below
    /// `head` (a log size the caller has read), so a query on it sees them.
    /// If another replica holds the indexer's row, this waits for it as any
    /// step would. Returns the position reached.
    pub async fn catch_up_index(&self, head: u64) -> Result<u64, StoreError> {
        let mut position = self.index_position().await?;
        while position < head {
            let (rows, next) = self.index_step_at(INDEX_STEP).await?;
            position = next;
            if rows == 0 {
                // Nothing more to copy: the log ends here.
                break;
            }
        }
        Ok(position)
    }

    /// Catches the index up to the log's end as it is now: what a query on
    /// `audit_index` runs first.
    pub(crate) async fn index_for_read(&self) -> Result<(), StoreError> {
        let head = self.record_count().await?;
        self.catch_up_index(head).await?;
        Ok(())
    }
}
