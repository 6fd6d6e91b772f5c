//! The audit appender's batch: one transaction that takes the sequencer,
//! counts the consent uses, inserts the records and grows the tree.

use std::sync::OnceLock;

use super::records;
use super::{altinn, blocks, consents, tree, BatchTx, Store};
use crate::consent::EventTally;
use crate::error::StoreError;
use crate::merkle::Frontier;
use crate::record::{NewRecord, Timestamp};

/// The result of committing one batch: the records written got the indexes
/// `first_index..`, in order, all with the same `time`; the records at the
/// positions in `refused` were not written, because their consent could not
/// take the use they asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchCommit {
    pub first_index: u64,
    pub time: Timestamp,
    pub refused: Vec<usize>,
    /// The records at these positions were not written either: a block of
    /// their subject's covers them (they asked for the check).
    pub blocked: Vec<usize>,
}

/// The records of a batch without those at the `refused` positions (whose
/// consent could not give a use, or which a block covers).
fn without_refused(records: &[NewRecord], refused: &[usize]) -> Vec<NewRecord> {
    records
        .iter()
        .enumerate()
        .filter(|(i, _)| !refused.contains(i))
        .map(|(_, r)| r.clone())
        .collect()
}

impl Store {
    /// Writes `records` in one transaction with the next indexes, and commits.
    /// The records' texts are moved into the statements: the batch is
    /// spent, whether it commits or not.
    /// Only the [`crate::AuditLog`] writer calls this, so that commits are
    /// batched; the index is read inside the transaction, under the
    /// sequencer, so the log stays dense even with several writers
    /// (processes or replicas).
    ///
    /// The records at the positions in `consent_uses` each take one use of
    /// their `consent_id` first, in the same transaction (with its `used`
    /// event); one whose consent cannot give it is left out. So a decision
    /// under consent is in the log exactly when its use was counted.
    ///
    /// The records at the positions in `block_checks` are written only if
    /// no block of their subject's covers their consumer or dataset, read in
    /// the same transaction (one statement for the batch): a decision made
    /// on cached blocks is never written once a block covers it.
    pub(crate) async fn append_batch(
        &self,
        records: &mut [NewRecord],
        consent_uses: &[usize],
        block_checks: &[usize],
    ) -> Result<BatchCommit, StoreError> {
        let cached = self.frontier.get();
        let mut appender = self.appender().await?;
        let result = self
            .append_in(&mut appender, records, consent_uses, block_checks, cached)
            .await;
        if result.is_err() {
            appender.discard();
        }
        let (commit, frontier, tally) = result?;
        self.frontier.committed(frontier);
        self.events.committed(&tally);
        Ok(commit)
    }

    async fn append_in(
        &self,
        appender: &mut super::Appender<'_>,
        all_records: &mut [NewRecord],
        consent_uses: &[usize],
        block_checks: &[usize],
        cached: Option<Frontier>,
    ) -> Result<(BatchCommit, Option<Frontier>, EventTally), StoreError> {
        // The sequencer is taken and the log's end read in one step (one
        // round trip on SQLite).
        let (mut tx, last) = appender.begin_batch().await?;
        let mut conn = tx.conn()?;
        // Time is taken under the lock and never goes backwards along the
        // log, even if the clock does: `since`/`until` then cut the log into
        // index ranges.
        let now = Timestamp::now();
        let (first_index, time) = match last {
            None => (0, now),
            Some((idx, t)) => {
                let prev = Timestamp::parse(&t)
                    .map_err(|e| StoreError::Corrupt(format!("record {idx}: time: {e}")))?;
                (idx + 1, now.max(prev))
            }
        };
        // Uses first: a record whose consent cannot give one is not written.
        // A consent's uses in the batch are taken together, in record order
        // (the first ones get what is left); an Altinn one-time consent's one
        // use, like Bru's own, here under the sequencer, in the records'
        // transaction (SPEC 9.1).
        // Blocks first: a blocked record takes no use.
        let blocked = blocks::covered(&mut conn, all_records, block_checks).await?;
        let mut refused = Vec::new();
        let mut tally = EventTally::default();
        let mut wanted: Vec<(&str, Vec<usize>)> = Vec::new();
        for &i in consent_uses.iter().filter(|i| !blocked.contains(i)) {
            let record = all_records.get(i);
            let id = record
                .and_then(|r| r.consent_id.as_deref())
                .ok_or_else(|| StoreError::Db(format!("record {i} of the batch has no consent")))?;
            match id.strip_prefix(altinn::CONSENT_PREFIX) {
                Some(uuid) => {
                    let transfer = record.map(|r| r.transfer_id.as_str()).unwrap_or_default();
                    if !altinn::take_use(&mut conn, uuid, transfer, time).await? {
                        refused.push(i);
                    }
                }
                None => match wanted.iter_mut().find(|(c, _)| *c == id) {
                    Some((_, positions)) => positions.push(i),
                    None => wanted.push((id, vec![i])),
                },
            }
        }
        for (id, positions) in &wanted {
            let taken =
                consents::take_uses(&mut conn, &mut tally, id, positions.len(), time).await?;
            refused.extend(positions.iter().skip(taken));
        }
        refused.sort_unstable();
        let left_out: Vec<usize> = if blocked.is_empty() {
            refused.clone()
        } else {
            let mut all = [refused.as_slice(), blocked.as_slice()].concat();
            all.sort_unstable();
            all
        };
        let mut kept;
        let records: &mut [NewRecord] = if left_out.is_empty() {
            all_records
        } else {
            kept = without_refused(all_records, &left_out);
            &mut kept
        };
        let first = u64::try_from(first_index)
            .map_err(|_| StoreError::Corrupt(format!("negative index {first_index}")))?;
        // The leaves and the new tree head commit with the records, or not at all.
        // A batch whose every consent refused its use has no leaves to add.
        let grown = match self.tree && !records.is_empty() {
            true => Some(tree::grow_tree(&mut conn, first, time, &*records, cached).await?),
            false => None,
        };
        let tree_write = grown.as_ref().map(tree::Grown::write).transpose()?;
        finish_batch(tx, first_index, &time.to_rfc3339(), records, tree_write).await?;
        let frontier = grown.map(|g| g.frontier);
        Ok((
            BatchCommit {
                first_index: first,
                time,
                refused,
                blocked,
            },
            frontier,
            tally,
        ))
    }
}

/// Writes a batch's `records` (at `first_index..`, all at `time`), its
/// tree's new nodes and head, and commits. On SQLite's own appender
/// connection the last records chunk, the nodes, the head and `COMMIT` go
/// in one text (`sqlite::Batch`): a batch whose records make one chunk (a
/// power of two up to 256) writes and commits in one round trip.
async fn finish_batch(
    tx: BatchTx<'_>,
    first_index: i64,
    time: &str,
    records: &mut [NewRecord],
    tree: Option<tree::TreeWrite<'_>>,
) -> Result<(), StoreError> {
    let mut batch = match tx {
        BatchTx::Sqlite(batch) => batch,
        BatchTx::Tx(mut tx) => {
            let mut conn = tx.conn();
            records::insert_records(&mut conn, first_index, time, records).await?;
            if let Some(t) = &tree {
                conn.insert_nodes(t.nodes).await?;
                tree::insert_head(&mut conn, t.size, &t.root, time).await?;
            }
            return tx.commit().await;
        }
    };
    let mut index = first_index;
    let at = records::parse_time(time)?;
    let mut parts: Vec<(u32, &mut [NewRecord])> = records::chunks(records).collect();
    let last = parts.pop();
    for (k, chunk) in parts {
        let mut query = sqlx::query(records::insert_sql_anonymous(k));
        records::bind_rows!(query, chunk, index, time, &at);
        query.execute(batch.conn()?).await?;
    }
    let tree_params = tree
        .as_ref()
        .map(|t| Ok::<_, StoreError>((crate::sqlite::node_params(t.nodes)?, t.size, t.root)))
        .transpose()?;
    let sql = last_sql(last.as_ref().map(|(k, _)| *k), tree_params.is_some());
    let mut query = sqlx::query(sql);
    if let Some((_, chunk)) = last {
        records::bind_rows!(query, chunk, index, time, &at);
    }
    if let Some(((ids, hashes), size, root)) = tree_params {
        query = query
            .bind(hashes)
            .bind(ids)
            .bind(size)
            .bind(root.to_vec())
            .bind(time);
    }
    query.execute(batch.conn()?).await?;
    batch.committed();
    Ok(())
}

/// A SQLite batch's last text: its last records chunk (2^k rows; none for
/// a batch without records), with the tree's nodes and head, and `COMMIT`.
/// 2 × (MAX_ROWS_LOG2 + 2) texts in all, each in the connection's
/// prepared-statement cache.
fn last_sql(rows_log2: Option<u32>, tree: bool) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        let mut all = Vec::new();
        for tree in [false, true] {
            for k in std::iter::once(None).chain((0..=records::MAX_ROWS_LOG2).map(Some)) {
                let mut text = String::new();
                if let Some(k) = k {
                    text.push_str(records::insert_sql_anonymous(k));
                    text.push_str("; ");
                }
                if tree && k.is_some() {
                    text.push_str(crate::sqlite::NODES_ANONYMOUS);
                    text.push_str("; ");
                    text.push_str(tree::HEAD_ANONYMOUS);
                    text.push_str("; ");
                }
                text.push_str("COMMIT");
                all.push(text);
            }
        }
        all
    });
    let per_tree = records::MAX_ROWS_LOG2 as usize + 2;
    let k = rows_log2.map_or(0, |k| k as usize + 1);
    all.get(usize::from(tree) * per_tree + k)
        .map_or("COMMIT", String::as_str)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::{Duration, Instant};

    use crate::record::{NewRecord, RecordKind, Timestamp};
    use crate::store::{Store, StoreConfig};

    fn record(n: usize) -> NewRecord {
        NewRecord::new(RecordKind::Decision, format!("t{n}"), "GET", "/data/k/s")
    }

    /// A batch that ends before its commit (an error, or the writer's
    /// timeout dropping it) writes nothing and holds no lock: another write
    /// goes on at once, and the next batch takes the indexes it would have.
    /// On SQLite the batch is begun and committed by hand (`sqlite::Batch`),
    /// so sqlx would not roll it back by itself.
    #[tokio::test]
    async fn a_batch_dropped_before_its_commit_writes_nothing_and_holds_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        let url = match std::env::var("BRU_TEST_STORE").as_deref() {
            Ok("postgres") => crate::test_support::fresh_postgres_database().await,
            _ => format!("sqlite://{}", dir.path().join("bru.db").display()),
        };
        let config = StoreConfig {
            busy_timeout: Duration::from_secs(2),
            ..StoreConfig::default()
        };
        let store = Store::open_with(&url, &config).await.unwrap();
        store.migrate().await.unwrap();
        assert_eq!(
            store
                .append_batch(&mut [record(0)], &[], &[])
                .await
                .unwrap()
                .first_index,
            0
        );
        {
            let mut appender = store.appender().await.unwrap();
            let (mut tx, last) = appender.begin_batch().await.unwrap();
            assert_eq!(last.map(|(index, _)| index), Some(0));
            let mut conn = tx.conn().unwrap();
            let now = Timestamp::now().to_string();
            super::super::records::insert_records(&mut conn, 1, &now, &mut [record(1)])
                .await
                .unwrap();
            // Dropped here, uncommitted, with the record inserted.
        }
        let started = Instant::now();
        store.heartbeat().await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the dropped batch held the write lock for {:?}",
            started.elapsed()
        );
        assert_eq!(store.record_count().await.unwrap(), 1);
        let next = store
            .append_batch(&mut [record(2)], &[], &[])
            .await
            .unwrap();
        assert_eq!(next.first_index, 1);
        assert_eq!(store.tree_head().await.unwrap().size, 2);
        let stored = store.records_by_transfer("t2").await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(store.records_by_transfer("t1").await.unwrap().is_empty());
    }
}
