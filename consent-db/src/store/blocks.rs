//! A person's blocks (SPEC 10, migration 0009): of a consumer or of a
//! dataset, kept under the person's keyed pseudonym (`subject_ref`, as on
//! audit records), never the person number. The gateway may decide on
//! blocks it read a little earlier (a short cache); the audit batch that
//! writes the decision reads them again ([`covered`]) and leaves out a
//! decision a block now covers, so a new block holds from the next call on
//! at every replica.

use super::{Conn, Store};
use crate::error::StoreError;
use crate::record::{NewRecord, Timestamp};

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

/// Subjects looked up per statement, far below either database's parameter limit.
const SUBJECT_CHUNK: usize = 256;

/// The positions in `checks` whose record a block of its `subject_ref`
/// covers: one of `consumer` or `dataset` equal to the record's. Read in the
/// caller's transaction (the audit batch), a statement per 256 subjects.
pub(super) async fn covered(
    conn: &mut Conn<'_>,
    records: &[NewRecord],
    checks: &[usize],
) -> Result<Vec<usize>, StoreError> {
    let mut subjects: Vec<&str> = checks
        .iter()
        .filter_map(|&i| records.get(i)?.subject_ref.as_deref())
        .collect();
    subjects.sort_unstable();
    subjects.dedup();
    if subjects.is_empty() {
        return Ok(Vec::new());
    }
    let mut found: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    for chunk in subjects.chunks(SUBJECT_CHUNK) {
        let rows: Vec<(String, Option<String>, Option<String>)> = on_conn!(&mut *conn, c => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT subject_ref, consumer, dataset FROM subject_blocks WHERE subject_ref IN (",
            );
            let mut list = q.separated(", ");
            for subject in chunk {
                list.push_bind(*subject);
            }
            q.push(")");
            q.build_query_as().fetch_all(&mut **c).await?
        });
        found.extend(rows);
    }
    Ok(checks
        .iter()
        .copied()
        .filter(|&i| {
            records.get(i).is_some_and(|r| {
                found.iter().any(|(subject, consumer, dataset)| {
                    r.subject_ref.as_deref() == Some(subject.as_str())
                        && ((consumer.is_some() && *consumer == r.consumer)
                            || (dataset.is_some() && *dataset == r.dataset))
                })
            })
        })
        .collect())
}
