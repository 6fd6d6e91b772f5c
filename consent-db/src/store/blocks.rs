//! A person's blocks (SPEC 10, migration 0009): of a consumer or of a
//! dataset, kept under the person's keyed pseudonym (`subject_ref`, as on
//! audit records), never the person number. Read for every call about a
//! person on a blockable dataset, so a new block holds from the next call on
//! at every replica.

use super::Store;
use crate::error::StoreError;
use crate::record::Timestamp;

/// One block as stored: exactly one of `consumer` (`0192:N`) and `dataset`
/// (`provider/dataset`) is set.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Block {
    pub id: String,
    pub consumer: Option<String>,
    pub dataset: Option<String>,
    pub created_at: String,
}

const INSERT: &str = "INSERT INTO subject_blocks (id, subject_ref, consumer, dataset, created_at) \
     VALUES ($1, $2, $3, $4, $5)";
const SELECT: &str = "SELECT id, consumer, dataset, created_at FROM subject_blocks \
     WHERE subject_ref = $1 ORDER BY created_at, id";
const DELETE: &str = "DELETE FROM subject_blocks WHERE subject_ref = $1 AND id = $2";

impl Store {
    /// Stores a block of `subject_ref`'s; `block.id` is a fresh UUID.
    pub async fn add_block(
        &self,
        subject_ref: &str,
        block: &Block,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(INSERT)
                .bind(&block.id)
                .bind(subject_ref)
                .bind(&block.consumer)
                .bind(&block.dataset)
                .bind(now.to_string())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// `subject_ref`'s blocks, oldest first.
    pub async fn blocks(&self, subject_ref: &str) -> Result<Vec<Block>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(SELECT).bind(subject_ref).fetch_all(pool).await?
        }))
    }

    /// Removes one of `subject_ref`'s blocks; false when it has none by that id.
    pub async fn delete_block(&self, subject_ref: &str, id: &str) -> Result<bool, StoreError> {
        let removed = on_pool!(self, pool => {
            sqlx::query(DELETE)
                .bind(subject_ref)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(removed == 1)
    }
}
