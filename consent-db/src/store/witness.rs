//! Witnesses' cosignatures of checkpoints (migration 0007, SPEC section 11).
//!
//! Only the replica that signs checkpoints asks witnesses; every replica
//! serves what is stored here beside the checkpoint.

use super::Store;
use crate::error::StoreError;

// SQLite and PostgreSQL both take `$n` parameters; one text serves both.
const INSERT: &str = "INSERT INTO witness_cosignatures (witness, size, line, cosigned_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (witness, size) DO NOTHING";
const FOR_SIZE: &str =
    "SELECT witness, line FROM witness_cosignatures WHERE size = $1 ORDER BY witness";
const NEWEST: &str = "SELECT MAX(size) FROM witness_cosignatures WHERE witness = $1";

fn to_i64(size: u64) -> Result<i64, StoreError> {
    i64::try_from(size).map_err(|_| StoreError::Db("a tree size beyond 2^63".into()))
}

impl Store {
    /// Keeps `line`, the cosignature by `witness` (its verifier key) of the
    /// checkpoint of `size`. A second one for the same pair is ignored.
    pub async fn add_cosignature(
        &self,
        witness: &str,
        size: u64,
        line: &str,
        cosigned_at_unix: i64,
    ) -> Result<(), StoreError> {
        let size = to_i64(size)?;
        on_pool!(self, pool => {
            sqlx::query(INSERT)
                .bind(witness)
                .bind(size)
                .bind(line)
                .bind(cosigned_at_unix)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The cosignatures of the checkpoint of `size`: (witness, line) pairs.
    pub async fn cosignatures(&self, size: u64) -> Result<Vec<(String, String)>, StoreError> {
        let size = to_i64(size)?;
        Ok(on_pool!(self, pool => {
            sqlx::query_as(FOR_SIZE).bind(size).fetch_all(pool).await?
        }))
    }

    /// The newest checkpoint size `witness` cosigned, if any.
    pub async fn cosigned_size(&self, witness: &str) -> Result<Option<u64>, StoreError> {
        let newest: Option<i64> = on_pool!(self, pool => {
            sqlx::query_scalar(NEWEST).bind(witness).fetch_one(pool).await?
        });
        Ok(newest.and_then(|s| u64::try_from(s).ok()))
    }
}

impl Store {
    /// The hashes of the perfect subtrees at `level` with indexes
    /// `first..first + count` that exist (a tile: at most 256), read as the
    /// tree's own proofs are (store/tree.rs, `nodes_in_range`).
    pub async fn subtree_hashes(
        &self,
        level: u8,
        first: u64,
        count: u64,
    ) -> Result<Vec<crate::merkle::Hash>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let last = first.saturating_add(count - 1);
        let nodes = self.nodes_in_range(level, first, last).await?;
        Ok(nodes.into_iter().map(|(_, hash)| hash).collect())
    }
}
