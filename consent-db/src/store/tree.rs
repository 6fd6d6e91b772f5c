//! The transparency log as stored: growing the tree inside the append
//! transaction, and reading heads, proofs and checkpoints back.

use std::collections::HashMap;
use std::sync::OnceLock;

use sqlx::QueryBuilder;

use super::records::{RecordRow, RECORD_COLUMNS};
use super::{Conn, Store};
use crate::error::StoreError;
use crate::merkle::{consistency_spans, inclusion_spans, leaf_hash, Frontier, Hash, NodeId, Span};
use crate::record::{AuditRecord, NewRecord, Timestamp};
use crate::tlog::{check_head_within, push_records, ProofQueryError, StoredCheckpoint, TreeHead};

/// Node ids per lookup query: 400 × 2 parameters.
const LOOKUP_CHUNK: usize = 400;
/// Records per transaction when catching up a log written before the tree.
const CATCH_UP_PAGE: u64 = 1000;

fn to_i64(n: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Db(format!("{what} {n} is too large to store")))
}

fn to_u64(n: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative {what} {n}")))
}

fn to_hash(bytes: Vec<u8>, what: &dyn std::fmt::Display) -> Result<Hash, StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what}: a hash is not 32 bytes")))
}

/// The latest tree head; the empty tree when there is none.
async fn head(conn: &mut Conn<'_>) -> Result<TreeHead, StoreError> {
    const SQL: &str = "SELECT size, root FROM tree_heads ORDER BY size DESC LIMIT 1";
    let row: Option<(i64, Vec<u8>)> =
        on_conn!(conn, c => sqlx::query_as(SQL).fetch_optional(&mut **c).await?);
    match row {
        None => Ok(TreeHead {
            size: 0,
            root: crate::merkle::empty_root(),
        }),
        Some((size, root)) => Ok(TreeHead {
            size: to_u64(size, "tree size")?,
            root: to_hash(root, &format!("tree head {size}"))?,
        }),
    }
}

/// The node stored under key (`size`, `level`): the node of that level that
/// completes the tree of `size` leaves (migration 0014).
fn node_at(size: i64, level: i64) -> Result<NodeId, StoreError> {
    let bad = || StoreError::Corrupt(format!("tree node key (size {size}, level {level})"));
    let level = u8::try_from(level).map_err(|_| bad())?;
    let size = to_u64(size, "node size")?;
    let index = size.checked_shr(u32::from(level)).ok_or_else(bad)?;
    if index == 0 || index << level != size {
        return Err(bad());
    }
    Ok(NodeId::new(level, index - 1))
}

/// The key of `id`: the tree size at which it completes, and its level.
fn key_of(id: &NodeId) -> Result<(i64, i64), StoreError> {
    Ok((to_i64(id.end(), "node size")?, i64::from(id.level)))
}

/// A lookup of keys: `LOOKUP_START`, `(size, level)` pairs, `LOOKUP_END`.
const LOOKUP_START: &str = "SELECT size, level, hash FROM tree_nodes WHERE (size, level) IN \
     (SELECT column1, column2 FROM (VALUES ";
const LOOKUP_END: &str = ") AS k)";
/// One level-0 range of the key: leaves `$1 - 1 ..= $2 - 1`.
const LEAF_RANGE: &str =
    "SELECT size, hash FROM tree_nodes WHERE size BETWEEN $1 AND $2 AND level = 0 ORDER BY size";

/// The stored hashes of `ids` (those that exist): point lookups on the
/// (size, level) key, up to [`LOOKUP_CHUNK`] a statement.
async fn fetch_nodes(
    conn: &mut Conn<'_>,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, StoreError> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        let rows: Vec<(i64, i64, Vec<u8>)> = on_conn!(&mut *conn, c => {
            // The keys as a subquery: SQLite 3.40 (Debian 12's) plans a bare
            // `(size, level) IN (VALUES ...)` as a scan of the whole table;
            // the bundled 3.46 and 3.40 both plan this form as one
            // primary-key search per key. PostgreSQL names VALUES' columns
            // the same way (and wants the alias).
            let mut q = QueryBuilder::new(LOOKUP_START);
            let mut sep = q.separated(", ");
            for id in chunk {
                let (size, level) = key_of(id)?;
                sep.push("(")
                    .push_bind_unseparated(size)
                    .push_unseparated(", ")
                    .push_bind_unseparated(level)
                    .push_unseparated(")");
            }
            q.push(LOOKUP_END);
            q.build_query_as().fetch_all(&mut **c).await?
        });
        for (size, level, hash) in rows {
            let id = node_at(size, level)?;
            out.insert(id, to_hash(hash, &format!("node {id:?}"))?);
        }
    }
    Ok(out)
}

/// The frontier of the stored tree of `size` leaves: O(log n) nodes.
async fn load_frontier(conn: &mut Conn<'_>, size: u64) -> Result<Frontier, StoreError> {
    let ids = Frontier::node_ids(size);
    let nodes = fetch_nodes(conn, &ids).await?;
    Frontier::from_nodes(size, |id| nodes.get(&id).copied()).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "the tree state of size {size} lacks one of its frontier nodes {ids:?}"
        ))
    })
}

fn leaf_of(record: &AuditRecord) -> Result<Hash, StoreError> {
    let bytes = record
        .leaf_bytes()
        .map_err(|e| StoreError::Db(format!("record {}: no canonical form: {e}", record.index)))?;
    Ok(leaf_hash(&bytes))
}

/// Adds the leaves of records already in `audit_records` from the tree's
/// size up to `until` (records written before the tree existed).
async fn catch_up(
    conn: &mut Conn<'_>,
    frontier: &mut Frontier,
    until: u64,
    nodes: &mut Vec<(NodeId, Hash)>,
) -> Result<Option<Timestamp>, StoreError> {
    let sql =
        format!("SELECT {RECORD_COLUMNS} FROM audit_records WHERE idx >= $1 ORDER BY idx LIMIT $2");
    let mut last_time = None;
    while frontier.size() < until {
        let n = (until - frontier.size()).min(CATCH_UP_PAGE);
        let (from, n) = (to_i64(frontier.size(), "index")?, to_i64(n, "limit")?);
        let rows: Vec<RecordRow> = on_conn!(&mut *conn, c => {
            sqlx::query_as(&sql).bind(from).bind(n).fetch_all(&mut **c).await?
        });
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let record = AuditRecord::try_from(row)?;
            if record.index != frontier.size() {
                return Err(StoreError::Corrupt(format!(
                    "record {} is missing: the log is not dense",
                    frontier.size()
                )));
            }
            last_time = Some(record.time);
            frontier.push(leaf_of(&record)?, |id, h| nodes.push((id, *h)));
        }
    }
    if frontier.size() < until {
        return Err(StoreError::Corrupt(format!(
            "record {} is missing: the log is not dense",
            frontier.size()
        )));
    }
    Ok(last_time)
}

/// [`insert_head`]'s statement with anonymous parameters (size, root,
/// time), for a SQLite batch's last text (`append::finish_batch`).
pub(super) const HEAD_ANONYMOUS: &str =
    "INSERT INTO tree_heads (size, root, time) VALUES (?, ?, ?)";

/// Stores the tree head of `size` leaves with `root`, at `time`.
pub(super) async fn insert_head(
    conn: &mut Conn<'_>,
    size: i64,
    root: &Hash,
    time: &str,
) -> Result<(), StoreError> {
    const SQL: &str = "INSERT INTO tree_heads (size, root, time) VALUES ($1, $2, $3)";
    on_conn!(conn, c => {
        sqlx::query(SQL)
            .bind(size)
            .bind(root.as_slice())
            .bind(time)
            .execute(&mut **c)
            .await?;
    });
    Ok(())
}

/// A batch's tree growth, to be written with its records.
pub(super) struct TreeWrite<'a> {
    pub nodes: &'a [(NodeId, Hash)],
    pub size: i64,
    pub root: Hash,
}

/// The tree grown by a batch's records, before it is written.
pub(crate) struct Grown {
    pub frontier: Frontier,
    /// The nodes the records completed, to be stored with them.
    pub nodes: Vec<(NodeId, Hash)>,
}

impl Grown {
    /// What `append::finish_batch` writes: the nodes and the new head.
    pub(super) fn write(&self) -> Result<TreeWrite<'_>, StoreError> {
        Ok(TreeWrite {
            nodes: &self.nodes,
            size: to_i64(self.frontier.size(), "tree size")?,
            root: self.frontier.root(),
        })
    }
}

/// Grows the tree by the records about to be inserted at `first_index..`
/// in the caller's transaction; the caller writes the nodes and the head
/// with them (`append::finish_batch`). `cached` is the tree's right edge as
/// this process last committed it: used when it covers exactly the records
/// before `first_index`, read from the store otherwise.
pub(crate) async fn grow_tree(
    conn: &mut Conn<'_>,
    first_index: u64,
    time: Timestamp,
    records: &[NewRecord],
    cached: Option<Frontier>,
) -> Result<Grown, StoreError> {
    let mut nodes = Vec::with_capacity(records.len() * 2 + 64);
    let mut frontier = match cached {
        Some(f) if f.size() == first_index => f,
        _ => {
            let head = head(conn).await?;
            check_head_within(head.size, first_index)?;
            let mut frontier = load_frontier(conn, head.size).await?;
            catch_up(conn, &mut frontier, first_index, &mut nodes).await?;
            frontier
        }
    };
    push_records(&mut frontier, first_index, time, records, &mut nodes)?;
    Ok(Grown { frontier, nodes })
}

impl Store {
    /// Brings the tree up to the records, a page per transaction (for logs
    /// written before migration 0002). A no-op once they agree.
    pub(crate) async fn catch_up_tree(&self) -> Result<(), StoreError> {
        loop {
            const COUNT: &str = "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_records";
            let mut tx = self.begin_write().await?;
            let mut conn = tx.conn();
            // No batch commits meanwhile.
            conn.take_sequencer().await?;
            let (count,): (i64,) =
                on_conn!(&mut conn, c => sqlx::query_as(COUNT).fetch_one(&mut **c).await?);
            let count = to_u64(count, "record count")?;
            let head = head(&mut conn).await?;
            if head.size >= count {
                return Ok(());
            }
            let mut frontier = load_frontier(&mut conn, head.size).await?;
            let mut nodes = Vec::new();
            let until = count.min(head.size + CATCH_UP_PAGE);
            let time = catch_up(&mut conn, &mut frontier, until, &mut nodes)
                .await?
                .unwrap_or_else(Timestamp::now);
            conn.insert_nodes(&nodes).await?;
            let size = to_i64(frontier.size(), "tree size")?;
            insert_head(&mut conn, size, &frontier.root(), &time.to_string()).await?;
            tx.commit().await?;
        }
    }

    /// The latest tree head: the tree over every committed record.
    pub async fn tree_head(&self) -> Result<TreeHead, StoreError> {
        on_pool!(self, pool => head(&mut Conn::from(&mut *pool.acquire().await?)).await)
    }

    /// The hashes of `spans`, each folded from its stored nodes.
    async fn span_hashes(&self, spans: &[Span]) -> Result<Vec<Hash>, StoreError> {
        let per_span: Vec<Vec<NodeId>> = spans.iter().map(Span::nodes).collect();
        let mut ids: Vec<NodeId> = per_span.iter().flatten().copied().collect();
        ids.sort_unstable();
        ids.dedup();
        let nodes = on_pool!(self, pool => {
            fetch_nodes(&mut Conn::from(&mut *pool.acquire().await?), &ids).await?
        });
        per_span
            .iter()
            .map(|span_ids| {
                let hashes = span_ids
                    .iter()
                    .map(|id| {
                        nodes.get(id).copied().ok_or_else(|| {
                            StoreError::Corrupt(format!("the tree state lacks node {id:?}"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Span::fold(&hashes).ok_or_else(|| StoreError::Corrupt("an empty proof span".into()))
            })
            .collect()
    }

    /// The RFC 9162 inclusion proof of leaf `index` in the tree of `size`
    /// leaves; out of range unless `index < size <= tree size`.
    pub async fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, ProofQueryError> {
        let tree = self.tree_head().await?;
        if size > tree.size {
            return Err(ProofQueryError::OutOfRange(format!(
                "size {size} is larger than the tree ({} records)",
                tree.size
            )));
        }
        let spans = inclusion_spans(index, size)?;
        Ok(self.span_hashes(&spans).await?)
    }

    /// The RFC 9162 consistency proof from the tree of `from` leaves to the
    /// tree of `to`; out of range unless `1 <= from <= to <= tree size`.
    pub async fn consistency_proof(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, ProofQueryError> {
        let tree = self.tree_head().await?;
        if to > tree.size {
            return Err(ProofQueryError::OutOfRange(format!(
                "to ({to}) is larger than the tree ({} records)",
                tree.size
            )));
        }
        let spans = consistency_spans(from, to)?;
        Ok(self.span_hashes(&spans).await?)
    }

    /// The root of the tree of `size` leaves (any size up to the current one).
    pub async fn root_at(&self, size: u64) -> Result<Hash, ProofQueryError> {
        let tree = self.tree_head().await?;
        if size > tree.size {
            return Err(ProofQueryError::OutOfRange(format!(
                "size {size} is larger than the tree ({} records)",
                tree.size
            )));
        }
        if size == 0 {
            return Ok(crate::merkle::empty_root());
        }
        let spans = [Span {
            begin: 0,
            end: size,
        }];
        let hashes = self.span_hashes(&spans).await?;
        hashes
            .first()
            .copied()
            .ok_or_else(|| ProofQueryError::Store(StoreError::Corrupt("no root".into())))
    }

    /// Stores a signed checkpoint of the tree head (`size`, `root`).
    pub async fn add_checkpoint(
        &self,
        size: u64,
        root: &Hash,
        note: &str,
    ) -> Result<(), StoreError> {
        let time = Timestamp::now();
        const SQL: &str =
            "INSERT INTO checkpoints (size, root, note, time) VALUES ($1, $2, $3, $4)";
        let size = to_i64(size, "tree size")?;
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(size)
                .bind(root.as_slice())
                .bind(note)
                .bind(time.to_string())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The checkpoint of the largest tree (the latest one signed at that size).
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let rows = self
            .checkpoint_rows("SELECT id, size, root, note, time FROM checkpoints ORDER BY size DESC, id DESC LIMIT 1", None)
            .await?;
        Ok(rows.into_iter().next())
    }

    /// Checkpoints in (size, id) order after `after`, at most `limit`: pages
    /// for a verifier.
    pub async fn checkpoints_after(
        &self,
        after: Option<(u64, i64)>,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let (size, id) = match after {
            Some((s, i)) => (to_i64(s, "tree size")?, i),
            None => (-1, i64::MIN),
        };
        self.checkpoint_rows(
            "SELECT id, size, root, note, time FROM checkpoints \
             WHERE size > $1 OR (size = $1 AND id > $2) ORDER BY size, id LIMIT $3",
            Some((size, id, i64::from(limit))),
        )
        .await
    }

    async fn checkpoint_rows(
        &self,
        sql: &str,
        args: Option<(i64, i64, i64)>,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows: Vec<(i64, i64, Vec<u8>, String, String)> = on_pool!(self, pool => {
            let mut q = sqlx::query_as(sql);
            if let Some((a, b, c)) = args {
                q = q.bind(a).bind(b).bind(c);
            }
            q.fetch_all(pool).await?
        });
        rows.into_iter()
            .map(|(id, size, root, note, time)| {
                Ok(StoredCheckpoint {
                    id,
                    size: to_u64(size, "checkpoint size")?,
                    root: to_hash(root, &format!("checkpoint {id}"))?,
                    note,
                    time: Timestamp::parse(&time)
                        .map_err(|e| StoreError::Corrupt(format!("checkpoint {id}: time: {e}")))?,
                })
            })
            .collect()
    }

    /// Tree heads with a size above `after`, in size order, at most `limit`.
    pub(crate) async fn heads_after(
        &self,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<TreeHead>, StoreError> {
        let after = after
            .map(|a| to_i64(a, "tree size"))
            .transpose()?
            .unwrap_or(-1);
        const SQL: &str =
            "SELECT size, root FROM tree_heads WHERE size > $1 ORDER BY size LIMIT $2";
        let rows: Vec<(i64, Vec<u8>)> = on_pool!(self, pool => {
            sqlx::query_as(SQL)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|(size, root)| {
                Ok(TreeHead {
                    size: to_u64(size, "tree size")?,
                    root: to_hash(root, &format!("tree head {size}"))?,
                })
            })
            .collect()
    }

    /// Records after index `after` with their stored leaf hash (if any), in
    /// index order, at most `limit`.
    pub(crate) async fn records_with_leaves(
        &self,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(AuditRecord, Option<Hash>)>, StoreError> {
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| {
            let columns: Vec<String> = RECORD_COLUMNS
                .split(',')
                .map(|c| format!("r.{}", c.trim()))
                .collect();
            format!(
                "SELECT {}, n.hash AS leaf FROM audit_records r \
                 LEFT JOIN tree_nodes n ON n.size = r.idx + 1 AND n.level = 0 \
                 WHERE r.idx > $1 ORDER BY r.idx LIMIT $2",
                columns.join(", ")
            )
        });
        let after = after.map(|a| to_i64(a, "index")).transpose()?.unwrap_or(-1);
        let rows: Vec<LeafRow> = on_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|r| {
                let record = AuditRecord::try_from(r.record)?;
                let leaf = r
                    .leaf
                    .map(|l| to_hash(l, &format!("leaf {}", record.index)))
                    .transpose()?;
                Ok((record, leaf))
            })
            .collect()
    }

    /// Stored nodes of `level` with index in `from..=to`, in index order.
    ///
    /// Keyed by (size, level), one level's nodes are no longer adjacent: the
    /// nodes of level `l` sit 2^l sizes apart with the other levels' nodes
    /// in between. Level 0 is read as one range scan of sizes
    /// `from + 1 ..= to + 1`: it passes about as many interior nodes as
    /// leaves (2x the rows), on adjacent pages, cheaper than one b-tree
    /// descent per leaf. Above level 0 a range would pass 2^(l+1) rows per
    /// node wanted, so those are point lookups on the key, a chunk a
    /// statement (a 256-node tile is one).
    pub(crate) async fn nodes_in_range(
        &self,
        level: u8,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Hash)>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        if level == 0 {
            return self.leaves_in_range(from, to).await;
        }
        let mut out = Vec::new();
        let mut first = from;
        loop {
            let last = to.min(first.saturating_add(LOOKUP_CHUNK as u64 - 1));
            let ids: Vec<NodeId> = (first..=last).map(|i| NodeId::new(level, i)).collect();
            let nodes = on_pool!(self, pool => {
                fetch_nodes(&mut Conn::from(&mut *pool.acquire().await?), &ids).await?
            });
            let found = nodes.len();
            let mut chunk: Vec<(u64, Hash)> =
                nodes.into_iter().map(|(id, h)| (id.index, h)).collect();
            chunk.sort_unstable_by_key(|(i, _)| *i);
            out.extend(chunk);
            // Nodes exist from index 0 up to the tree's right edge: once
            // one is missing, so are all after it.
            if last == to || found < ids.len() {
                return Ok(out);
            }
            first = last + 1;
        }
    }

    /// Stored leaf hashes with index in `from..=to`, in index order: one
    /// range of the key (see [`Store::nodes_in_range`]).
    async fn leaves_in_range(&self, from: u64, to: u64) -> Result<Vec<(u64, Hash)>, StoreError> {
        let first = to_i64(from.saturating_add(1), "node size")?;
        let last = to_i64(to.saturating_add(1), "node size")?;
        let rows: Vec<(i64, Vec<u8>)> = on_pool!(self, pool => {
            sqlx::query_as(LEAF_RANGE)
                .bind(first)
                .bind(last)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|(size, hash)| {
                let id = node_at(size, 0)?;
                Ok((id.index, to_hash(hash, &format!("leaf {}", id.index))?))
            })
            .collect()
    }
}

#[derive(sqlx::FromRow)]
struct LeafRow {
    #[sqlx(flatten)]
    record: RecordRow,
    leaf: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::StoreConfig;

    /// SQLite's plan of the node reads: searches of the primary key, never
    /// a scan of the table (at 15M leaves, 30M rows).
    #[tokio::test]
    async fn node_reads_search_the_key_instead_of_scanning_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bru.db").display());
        let store = Store::open_with(&url, &StoreConfig::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let lookup = format!("{LOOKUP_START}(2, 1), (4, 2){LOOKUP_END}");
        let leaf_join = "SELECT r.idx, n.hash FROM audit_records r \
             LEFT JOIN tree_nodes n ON n.size = r.idx + 1 AND n.level = 0 WHERE r.idx > 5";
        let leaf_range = LEAF_RANGE.replace("$1", "3").replace("$2", "9");
        for sql in [lookup.as_str(), leaf_range.as_str(), leaf_join] {
            let plan: Vec<(i64, i64, i64, String)> = on_pool!(store, pool => {
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .fetch_all(pool)
                    .await
                    .unwrap()
            });
            let steps: Vec<&str> = plan.iter().map(|(_, _, _, s)| s.as_str()).collect();
            assert!(
                steps.iter().any(|s| s
                    .starts_with("SEARCH n USING PRIMARY KEY (size=? AND level=?)")
                    || s.starts_with("SEARCH tree_nodes USING PRIMARY KEY")),
                "{sql}: {steps:?}"
            );
            assert!(
                !steps
                    .iter()
                    .any(|s| s.starts_with("SCAN tree_nodes") || s.starts_with("SCAN n")),
                "{sql}: {steps:?}"
            );
        }
    }
}
