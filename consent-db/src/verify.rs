//! `bru audit verify`: recomputes the transparency log from the records as
//! stored and checks it against everything the store claims about it — the
//! leaf and interior nodes, every tree head, every signed checkpoint.
//!
//! Constant memory: records, heads and checkpoints are read in pages in tree
//! order, and the tree is kept only as its right-edge [`Frontier`].

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::error::StoreError;
use crate::merkle::{Frontier, Hash, NodeId};
use crate::note;
use crate::record::AuditRecord;
use crate::store::Store;
use crate::tlog::{StoredCheckpoint, TreeHead};

/// Records, heads or checkpoints read per query.
const PAGE: u32 = 1000;

/// What an intact log looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    pub records: u64,
    pub root: Hash,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// The size of the largest signed checkpoint.
    pub signed_size: Option<u64>,
    /// Stored tree heads checked.
    pub heads: u64,
}

impl fmt::Display for VerifySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "intact: {} records, root {}, {} signed checkpoints verified",
            self.records,
            STANDARD.encode(self.root),
            self.checkpoints
        )?;
        match self.signed_size {
            Some(s) if s < self.records => write!(
                f,
                " (the latest at size {s}; {} newer records not signed yet)",
                self.records - s
            ),
            Some(s) => write!(f, " (the latest at size {s})"),
            None => write!(f, " (none signed yet)"),
        }
    }
}

/// The log does not match what was committed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tampering {
    /// The first record index known to be wrong, when one can be named.
    pub index: Option<u64>,
    pub reason: String,
}

impl fmt::Display for Tampering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "first bad index {i}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the log is tampered: {0}")]
    Tampered(Tampering),
    #[error("cannot read the log: {0}")]
    Store(#[from] StoreError),
}

fn tampered<T>(index: Option<u64>, reason: impl Into<String>) -> Result<T, VerifyError> {
    Err(VerifyError::Tampered(Tampering {
        index,
        reason: reason.into(),
    }))
}

/// Reads pages of one kind of row in tree order.
struct Pages<T> {
    buffer: VecDeque<T>,
    done: bool,
}

impl<T> Pages<T> {
    fn new() -> Self {
        Pages {
            buffer: VecDeque::new(),
            done: false,
        }
    }
}

/// Verifies the whole log; `progress` is told how many records are done.
/// `checkpoint_key` is the Ed25519 public key that signs checkpoints.
pub async fn verify(
    store: &Store,
    checkpoint_key: &[u8; 32],
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<VerifySummary, VerifyError> {
    let mut v = Verifier {
        store,
        key: checkpoint_key,
        frontier: Frontier::new(),
        heads: Pages::new(),
        checkpoints: Pages::new(),
        last_head: None,
        last_checkpoint: None,
        summary: VerifySummary {
            records: 0,
            root: crate::merkle::empty_root(),
            checkpoints: 0,
            signed_size: None,
            heads: 0,
        },
        last_good_signed: 0,
    };
    v.check_at_size().await?;
    let mut after = None;
    loop {
        let page = store.records_with_leaves(after, PAGE).await?;
        if page.is_empty() {
            break;
        }
        let mut interior = Vec::new();
        for (record, stored) in page {
            let i = v.frontier.size();
            if record.index != i {
                let gap = match i.checked_sub(1) {
                    Some(prev) => format!("the indexes jump from {prev} to {}", record.index),
                    None => format!("the log starts at index {}", record.index),
                };
                return tampered(
                    Some(i),
                    format!("record {i} is missing: {gap} (a record was deleted)"),
                );
            }
            let leaf = match record.leaf_hash() {
                Ok(h) => h,
                Err(e) => {
                    return tampered(Some(i), format!("the record has no canonical form ({e})"))
                }
            };
            match stored {
                Some(s) if s == leaf => {}
                Some(s) => return Err(v.explain_leaf(i, &s).await),
                None => {
                    let tree = store.tree_head().await?;
                    return if i < tree.size {
                        tampered(Some(i), "the tree state has no leaf for this record (the tree state was damaged)")
                    } else {
                        tampered(
                            Some(i),
                            format!(
                                "the record is not in the tree (which ends at {}): it was inserted behind the log's back",
                                tree.size
                            ),
                        )
                    };
                }
            }
            v.frontier.push(leaf, |id, h| {
                if id.level > 0 {
                    interior.push((id, *h));
                }
            });
            after = Some(i);
            v.check_at_size().await?;
        }
        v.check_interior(&interior).await?;
        progress(v.frontier.size());
    }
    v.check_end().await?;
    v.summary.records = v.frontier.size();
    v.summary.root = v.frontier.root();
    Ok(v.summary)
}

struct Verifier<'a> {
    store: &'a Store,
    key: &'a [u8; 32],
    frontier: Frontier,
    heads: Pages<TreeHead>,
    checkpoints: Pages<StoredCheckpoint>,
    last_head: Option<u64>,
    last_checkpoint: Option<(u64, i64)>,
    summary: VerifySummary,
    /// The size of the last checkpoint whose root matched.
    last_good_signed: u64,
}

impl Verifier<'_> {
    async fn next_head(&mut self) -> Result<Option<TreeHead>, StoreError> {
        if self.heads.buffer.is_empty() && !self.heads.done {
            let page = self.store.heads_after(self.last_head, PAGE).await?;
            self.heads.done = page.len() < PAGE as usize;
            if let Some(last) = page.last() {
                self.last_head = Some(last.size);
            }
            self.heads.buffer.extend(page);
        }
        Ok(self.heads.buffer.front().copied())
    }

    async fn next_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, StoreError> {
        if self.checkpoints.buffer.is_empty() && !self.checkpoints.done {
            let page = self
                .store
                .checkpoints_after(self.last_checkpoint, PAGE)
                .await?;
            self.checkpoints.done = page.len() < PAGE as usize;
            if let Some(last) = page.last() {
                self.last_checkpoint = Some((last.size, last.id));
            }
            self.checkpoints.buffer.extend(page);
        }
        // A clone: notes are short, and the caller needs `self` mutably.
        Ok(self.checkpoints.buffer.front().cloned())
    }

    /// Checks every stored head and checkpoint of the tree's current size.
    async fn check_at_size(&mut self) -> Result<(), VerifyError> {
        let size = self.frontier.size();
        let root = self.frontier.root();
        while let Some(head) = self.next_head().await? {
            if head.size != size {
                break;
            }
            if head.root != root {
                return tampered(
                    None,
                    format!(
                        "the stored tree head at size {size} differs from the root the records give \
                         (the tree state was changed)"
                    ),
                );
            }
            self.summary.heads += 1;
            self.heads.buffer.pop_front();
        }
        while let Some(cp) = self.next_checkpoint().await? {
            if cp.size != size {
                break;
            }
            let signed = match note::open(&cp.note, self.key) {
                Ok(c) => c,
                Err(e) => {
                    return tampered(
                        None,
                        format!(
                            "checkpoint {} (tree size {size}) is not signed by the checkpoint key: {e} \
                             (the checkpoint was forged or altered)",
                            cp.id
                        ),
                    )
                }
            };
            if signed.size != size || signed.root != cp.root {
                return tampered(
                    None,
                    format!(
                        "checkpoint {} is stored as size {size} but its signed note says size {} \
                         (the checkpoint was altered)",
                        cp.id, signed.size
                    ),
                );
            }
            if signed.root != root {
                return tampered(
                    None,
                    format!(
                        "checkpoint {} was signed over another root than the records give at tree size {size}: \
                         a record at index {}..{} was changed, removed, inserted or reordered \
                         (and the tree state rewritten to match)",
                        cp.id,
                        self.last_good_signed,
                        size.saturating_sub(1)
                    ),
                );
            }
            self.last_good_signed = size;
            self.summary.checkpoints += 1;
            self.summary.signed_size = Some(size);
            self.checkpoints.buffer.pop_front();
        }
        Ok(())
    }

    /// Compares the interior nodes the records complete with the stored ones.
    async fn check_interior(&self, nodes: &[(NodeId, Hash)]) -> Result<(), VerifyError> {
        let mut by_level: BTreeMap<u8, Vec<(u64, Hash)>> = BTreeMap::new();
        for (id, h) in nodes {
            by_level.entry(id.level).or_default().push((id.index, *h));
        }
        for (level, computed) in by_level {
            let (Some(first), Some(last)) = (computed.first(), computed.last()) else {
                continue;
            };
            let stored = self.store.nodes_in_range(level, first.0, last.0).await?;
            let mut stored = stored.into_iter().peekable();
            for (index, hash) in computed {
                let id = NodeId::new(level, index);
                while stored.next_if(|(i, _)| *i < index).is_some() {}
                match stored.next_if(|(i, _)| *i == index) {
                    Some((_, s)) if s == hash => {}
                    found => {
                        let what = if found.is_some() {
                            "differs from"
                        } else {
                            "is missing for"
                        };
                        return tampered(
                            Some(id.first_leaf()),
                            format!(
                                "the stored tree node (level {level}, index {index}) {what} records {}..{} \
                                 (the tree state was changed)",
                                id.first_leaf(),
                                id.end() - 1
                            ),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// After the last record: nothing may claim a larger tree.
    async fn check_end(&mut self) -> Result<(), VerifyError> {
        let n = self.frontier.size();
        // A live log may have grown since the last page was read: a newer
        // head or checkpoint then covers records that exist, not removed ones.
        if self.store.record_count().await? > n {
            return Ok(());
        }
        if let Some(cp) = self.next_checkpoint().await? {
            return tampered(
                Some(n),
                format!(
                    "checkpoint {} was signed at tree size {} but the log ends after {n} records: \
                     records from index {n} on were removed (truncated)",
                    cp.id, cp.size
                ),
            );
        }
        if let Some(head) = self.next_head().await? {
            return tampered(
                Some(n),
                format!(
                    "the tree state covers {} records but the log ends after {n}: \
                     records from index {n} on were removed (truncated)",
                    head.size
                ),
            );
        }
        Ok(())
    }

    /// Names what happened to record `i`, whose hash differs from the leaf
    /// the log committed to (`stored`).
    async fn explain_leaf(&self, i: u64, stored: &Hash) -> VerifyError {
        match self.explanation(i, stored).await {
            Ok(reason) => VerifyError::Tampered(Tampering {
                index: Some(i),
                reason,
            }),
            Err(e) => VerifyError::Store(e),
        }
    }

    async fn explanation(&self, i: u64, stored: &Hash) -> Result<String, StoreError> {
        // A record's bytes include its index, so a moved record is found by
        // hashing it as if it stood at the index in question.
        let leaf_as = |r: &AuditRecord, index: u64| {
            let mut moved = r.clone();
            moved.index = index;
            moved.leaf_hash().ok()
        };
        let Some(here) = self.store.record_at(i).await? else {
            return Ok("the record was changed".to_owned());
        };
        if let Some(next) = self.store.record_at(i + 1).await? {
            if leaf_as(&next, i).as_ref() == Some(stored) {
                return Ok(format!(
                    "a record was inserted at index {i}: the record the log committed at {i} now follows it"
                ));
            }
        }
        let stored_next = self.store.nodes_in_range(0, i + 1, i + 1).await?;
        if let Some((_, s)) = stored_next.first() {
            if leaf_as(&here, i + 1).as_ref() == Some(s) {
                return Ok(format!(
                    "the record the log committed at index {i} was removed and later records moved down"
                ));
            }
        }
        // Is the record committed at `i` elsewhere? Scan on: this runs once,
        // on the failure path.
        let mut after = Some(i + 1);
        loop {
            let page = self.store.records_with_leaves(after, PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.index);
            for (record, leaf) in &page {
                if leaf_as(record, i).as_ref() == Some(stored) {
                    let j = record.index;
                    let swapped = leaf.is_some() && leaf_as(&here, j) == *leaf;
                    return Ok(format!(
                        "records were reordered: the record the log committed at index {i} is now at index {j}{}",
                        if swapped { " (the two were swapped)" } else { "" }
                    ));
                }
            }
        }
        Ok(
            "the record was changed: it no longer hashes to the leaf the log committed to"
                .to_owned(),
        )
    }
}
