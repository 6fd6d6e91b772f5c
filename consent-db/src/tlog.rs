//! The transparency log as stored: tree heads, proofs from stored nodes, and
//! signed checkpoints. The tree grows in the same transaction as the records
//! (see `store/tree.rs`), so a committed record is always a leaf.

use crate::error::StoreError;
use crate::merkle::{leaf_hash, Frontier, Hash, NodeId, ProofError};
use crate::record::{NewRecord, Timestamp};

/// The tree over the first `size` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: Hash,
}

/// A signed checkpoint as stored. `note` is the evidence (a C2SP signed
/// note); `size` and `root` repeat what it says, for queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub id: i64,
    pub size: u64,
    pub root: Hash,
    pub note: String,
    pub time: Timestamp,
}

/// A proof could not be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofQueryError {
    /// The request names sizes or indexes the tree does not have (a 400).
    #[error("{0}")]
    OutOfRange(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ProofError> for ProofQueryError {
    fn from(e: ProofError) -> Self {
        ProofQueryError::OutOfRange(e.to_string())
    }
}

/// The tree's right edge after this process's last committed append, so the
/// next append need not read it back. An append uses it only while its size
/// is the log's length: another writer's append (another process on the
/// SQLite file, another replica on the database) makes it stale.
#[derive(Debug, Clone, Default)]
pub(crate) struct FrontierCache(std::sync::Arc<std::sync::Mutex<Option<Frontier>>>);

impl FrontierCache {
    pub(crate) fn get(&self) -> Option<Frontier> {
        self.0.lock().ok().and_then(|f| f.clone())
    }

    /// After a commit: its new right edge, if it grew the tree (a batch of
    /// only refused consent uses leaves the tree as it was).
    pub(crate) fn committed(&self, frontier: Option<Frontier>) {
        if let (Some(frontier), Ok(mut f)) = (frontier, self.0.lock()) {
            *f = Some(frontier);
        }
    }
}

/// A stored tree head beyond the log's length means records were removed:
/// appending would put two records under one leaf index.
pub(crate) fn check_head_within(head_size: u64, first_index: u64) -> Result<(), StoreError> {
    if head_size > first_index {
        return Err(StoreError::Corrupt(format!(
            "the tree covers {head_size} records but only {first_index} exist: records were removed"
        )));
    }
    Ok(())
}

/// Pushes the leaves of `records`, appended at `first_index..` at `time`,
/// onto `frontier`, collecting every node they complete in `nodes`.
pub(crate) fn push_records(
    frontier: &mut Frontier,
    first_index: u64,
    time: Timestamp,
    records: &[NewRecord],
    nodes: &mut Vec<(NodeId, Hash)>,
) -> Result<(), StoreError> {
    for (index, r) in (first_index..).zip(records) {
        let bytes = r
            .leaf_fields(index, time)
            .to_bytes()
            .map_err(|e| StoreError::Db(format!("record {index}: no canonical form: {e}")))?;
        frontier.push(leaf_hash(&bytes), |id, h| nodes.push((id, *h)));
    }
    Ok(())
}
