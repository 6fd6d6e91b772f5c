//! The SQLite backend: one database file in WAL mode, `synchronous=FULL` so a
//! commit is on disk when it returns. Its pool, its migrations, and its side
//! of each named difference of the dialect (see `store.rs`); every query is
//! in `store/`.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Sqlite, SqliteConnection, Transaction, TransactionManager};
use tokio::sync::{Mutex, MutexGuard, OwnedMutexGuard};

use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::merkle::{Hash, NodeId};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone, Debug)]
pub(crate) struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// The audit appender's own connection (None for an in-memory database,
    /// whose appends use the pool). One connection for every batch keeps its
    /// page cache valid from one batch to the next: SQLite drops a
    /// connection's cache whenever another connection wrote, and the pool
    /// hands its connections out in turn, so each batch read its b-tree
    /// pages back from the file (about two `pread`s per call).
    writer: Option<Arc<Writer>>,
    /// This process's writers take turns here, first come first served,
    /// before `BEGIN IMMEDIATE`. Without it they meet at SQLite's write lock,
    /// whose busy handler sleeps 1, 2, 5, 10 … 100 ms between tries: under
    /// load the audit appender, back at the lock within a millisecond of
    /// each commit, won nearly every time, and the indexer and the other
    /// followers of the log fell tens of thousands of records behind (#21).
    /// Other processes on the same file still meet at the lock itself.
    gate: Arc<Mutex<()>>,
    busy_timeout: std::time::Duration,
    /// Connections for work derived from the log (the followers), whose
    /// commits do not wait for the disk: `synchronous=NORMAL`, so in WAL mode
    /// a commit is synced by the next one that waits (the appender's) or by
    /// a checkpoint. `None` in memory (the pool serves).
    derived: Option<SqlitePool>,
}

/// A turn at [`SqliteStore::gate`], held until the transaction ends; `None`
/// when the turn did not come within `busy_timeout` (then SQLite's own lock
/// decides, as before: a nested write in one task fails after the timeout
/// instead of waiting for itself forever).
pub(crate) type Turn = Option<OwnedMutexGuard<()>>;

#[derive(Debug)]
struct Writer {
    conn: Mutex<Option<SqliteConnection>>,
    options: SqliteConnectOptions,
}

/// Whether sqlx still counts `conn` inside a transaction.
fn in_transaction(conn: &SqliteConnection) -> bool {
    <Sqlite as sqlx::Database>::TransactionManager::get_transaction_depth(conn) != 0
}

impl SqliteStore {
    pub(crate) async fn open(url: &str, config: &StoreConfig) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if config.synchronous {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Off
            })
            .busy_timeout(config.busy_timeout)
            .foreign_keys(true)
            // Temporary b-trees (sorts, the batch insert's CTE) stay in memory.
            .pragma("temp_store", "memory");
        let mut pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.acquire_timeout);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        // An in-memory database lives only as long as a connection to it:
        // keep one open for the life of the pool.
        if in_memory {
            pool = pool
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        } else {
            // A connection that comes back still counted inside a
            // transaction is closed, not reused (see `Appender::discard`):
            // this covers every write path, not only the audit appends.
            pool = pool.after_release(|conn, _| Box::pin(async move { Ok(!in_transaction(conn)) }));
        }
        let pool = pool.connect_with(options.clone()).await?;
        let derived = (!in_memory).then(|| {
            SqlitePoolOptions::new()
                // The followers take turns at the gate: one connection each
                // keeps its page cache. Their commits keep SQLite's automatic
                // checkpoint (1,000 pages): run by a writer at the end of its
                // own commit, it reaches the WAL's end, and the next write
                // starts the WAL over. The checkpoint task's PASSIVE ones,
                // beside an appender that never stops, rarely do: with
                // them alone the WAL grew to 200 MB in 8 s under load (#21,
                // session 16), and every write went to new blocks.
                .max_connections(DERIVED_CONNECTIONS)
                .acquire_timeout(config.acquire_timeout)
                .after_release(|conn, _| Box::pin(async move { Ok(!in_transaction(conn)) }))
                .connect_lazy_with(options.clone().synchronous(if config.synchronous {
                    SqliteSynchronous::Normal
                } else {
                    SqliteSynchronous::Off
                }))
        });
        Ok(SqliteStore {
            pool,
            derived,
            gate: Arc::new(Mutex::new(())),
            busy_timeout: config.busy_timeout,
            writer: (!in_memory).then(|| {
                Arc::new(Writer {
                    conn: Default::default(),
                    options,
                })
            }),
        })
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        Ok(MIGRATOR.run(&self.pool).await?)
    }

    pub(crate) async fn close(&self) {
        if let Some(writer) = &self.writer {
            if let Some(conn) = writer.conn.lock().await.take() {
                let _ = conn.close().await;
            }
        }
        if let Some(derived) = &self.derived {
            derived.close().await;
        }
        self.pool.close().await;
    }

    /// Begin a write: `BEGIN IMMEDIATE` takes the database's one write lock
    /// now, so what the transaction reads cannot change under it (another
    /// connection, process or replica on the same file); a held lock shows
    /// up here, after busy_timeout.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<(Transaction<'static, Sqlite>, Turn), StoreError> {
        let turn = self.turn().await;
        Ok((self.pool.begin_with(BEGIN_WRITE).await?, turn))
    }

    /// Begin a write of work derived from the log, on a connection whose
    /// commits do not wait for the disk ([`SqliteStore::derived`]); the
    /// same turn and lock as [`SqliteStore::begin_write`].
    pub(crate) async fn begin_derived(
        &self,
    ) -> Result<(Transaction<'static, Sqlite>, Turn), StoreError> {
        let turn = self.turn().await;
        let pool = self.derived.as_ref().unwrap_or(&self.pool);
        Ok((pool.begin_with(BEGIN_WRITE).await?, turn))
    }

    /// This process's turn to write (see [`SqliteStore::gate`]).
    pub(crate) async fn turn(&self) -> Turn {
        tokio::time::timeout(self.busy_timeout, Arc::clone(&self.gate).lock_owned())
            .await
            .ok()
    }

    /// The audit appender's connection: the writer's own, or a pooled one
    /// for an in-memory database.
    pub(crate) async fn appender(&self) -> Result<Appender<'_>, StoreError> {
        let Some(writer) = &self.writer else {
            return Ok(Appender::Pooled(self.pool.acquire().await?, self));
        };
        let mut slot = writer.conn.lock().await;
        // A batch dropped mid-transaction (its timeout) leaves the connection
        // counted inside it: start afresh instead.
        if slot.as_ref().is_none_or(in_transaction) {
            // Its commits never checkpoint: SQLite runs an automatic
            // checkpoint inside the commit that crosses 1,000 WAL pages,
            // copying pages into the database file and syncing it while
            // every decision of the next batch waits (#21: the p99 of a
            // statutory call). `checkpoint` does that work beside it.
            let options = writer.options.clone().pragma("wal_autocheckpoint", "0");
            *slot = Some(options.connect().await?);
        }
        Ok(Appender::Own(slot, self))
    }

    /// Copies the WAL into the database file as far as readers allow,
    /// without waiting for any lock (`PASSIVE`), on a pooled connection:
    /// the appender's commits leave this to the audit log's checkpoint task.
    /// Once the WAL holds more than [`WAL_BOUND_FRAMES`], the checkpoint is
    /// taken in this process's turn to write (see
    /// [`SqliteStore::checkpoint_within`]).
    pub(crate) async fn checkpoint(&self) -> Result<(), StoreError> {
        self.checkpoint_within(WAL_BOUND_FRAMES).await
    }

    /// [`SqliteStore::checkpoint`] with the bound `bound` (frames).
    ///
    /// The WAL starts again from its beginning only after a checkpoint has
    /// copied all of it. Beside a busy appender a passive checkpoint rarely
    /// gets there: frames come in while it copies. The followers' commits
    /// normally do (each runs SQLite's automatic checkpoint while it holds
    /// the write lock: the WAL stays at about 6 MB under load, bench/README
    /// "#21, session 16"), but if they all stall, the WAL grew without end
    /// (200 MB in 8 s in that session's trial). Past the bound the
    /// checkpoint therefore holds the turn, so no writer of this process
    /// adds frames until it is done; the audit appender then waits for one
    /// checkpoint, only while the WAL is past the bound. (A reader holding
    /// an old snapshot still keeps the WAL from starting again; the
    /// checkpoint then copies nothing new and gives the turn back at once.)
    pub(crate) async fn checkpoint_within(&self, bound: i64) -> Result<(), StoreError> {
        if self.writer.is_none() {
            return Ok(()); // in memory there is no WAL
        }
        const PASSIVE: &str = "PRAGMA wal_checkpoint(PASSIVE)";
        let (_, frames, _): (i64, i64, i64) = sqlx::query_as(PASSIVE).fetch_one(&self.pool).await?;
        // Even a checkpoint that copied every committed frame does not let
        // the WAL start again if a batch was under way meanwhile: the batch
        // began on the old WAL and commits after it.
        if frames > bound {
            let _turn = self.turn().await;
            sqlx::query(PASSIVE).execute(&self.pool).await?;
        }
        Ok(())
    }

    /// The heartbeat: `sql` in a write transaction of its own, so the probe
    /// fails while the write lock cannot be had; the connection is closed if
    /// it fails (see [`Appender::discard`]).
    pub(crate) async fn heartbeat(&self, sql: &str, at: String) -> Result<(), StoreError> {
        // The turn first, as `begin_write`: no pooled connection held while queued.
        let _turn = self.turn().await;
        let mut conn = self.pool.acquire().await?;
        let result = async {
            let mut tx = conn.begin_with(BEGIN_WRITE).await?;
            sqlx::query(sql).bind(at).execute(&mut *tx).await?;
            tx.commit().await
        }
        .await;
        if result.is_err() {
            conn.close_on_drop();
        }
        Ok(result?)
    }
}

/// WAL frames past which [`SqliteStore::checkpoint`] waits for this
/// process's turn to write: 16,000 pages of 4 KiB, about 64 MiB, ten times
/// what the WAL holds under load with the followers running, and about a
/// second of appends at the highest rates measured here (about 7.6 KB
/// written a call, bench/README "#21, session 17").
const WAL_BOUND_FRAMES: i64 = 16_000;

/// Connections of [`SqliteStore::derived`]: the indexer, the snoop and the
/// notification followers, and a reader catching the index up.
const DERIVED_CONNECTIONS: u32 = 4;

/// See `Conn::json_rows`.
pub(crate) fn json_rows(select: &str, names: &str) -> String {
    format!("SELECT COALESCE(json_group_array(json_array({names})), '[]') FROM ({select}) AS w")
}

/// The connection a batch of records is appended on.
pub(crate) enum Appender<'a> {
    Own(MutexGuard<'a, Option<SqliteConnection>>, &'a SqliteStore),
    Pooled(PoolConnection<Sqlite>, &'a SqliteStore),
}

impl Appender<'_> {
    /// Begins a batch of the audit log and runs its first read (`read`,
    /// a query of one row at most) under the write lock: on the writer's own
    /// connection in one round trip with `BEGIN IMMEDIATE` ([`Batch`]); on a
    /// pooled one (an in-memory database), in a transaction as any write's.
    pub(crate) async fn begin_batch<T>(
        &mut self,
        read: &str,
    ) -> Result<(BatchBegun<'_>, Option<T>), StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
    {
        let store = match self {
            Appender::Own(_, store) | Appender::Pooled(_, store) => *store,
        };
        let turn = store.turn().await;
        match self {
            Appender::Own(slot, _) => {
                let mut batch = Batch {
                    slot,
                    committed: false,
                    _turn: turn,
                };
                // Dropped before it commits (this read failing included), the
                // batch closes the connection: see [`Batch`].
                let begin_and_read = format!("{BEGIN_WRITE}; {read}");
                let first: Option<T> = sqlx::query_as(&begin_and_read)
                    .fetch_optional(batch.conn()?)
                    .await?;
                Ok((BatchBegun::Own(batch), first))
            }
            Appender::Pooled(conn, _) => {
                let mut tx = conn.begin_with(BEGIN_WRITE).await?;
                let first: Option<T> = sqlx::query_as(read).fetch_optional(&mut *tx).await?;
                Ok((BatchBegun::Pooled(tx, turn), first))
            }
        }
    }

    /// Closes the connection of a failed write transaction instead of using
    /// it again. After SQLITE_FULL or an I/O error SQLite may roll the
    /// transaction back by itself; sqlx's own ROLLBACK then fails and sqlx
    /// counts the connection as inside a transaction for good, so every
    /// later `begin` on it would fail ("non-zero transaction depth") even
    /// once the disk has room again.
    pub(crate) fn discard(&mut self) {
        match self {
            Appender::Own(slot, _) => **slot = None,
            Appender::Pooled(conn, _) => conn.close_on_drop(),
        }
    }
}

const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// How a batch began: see [`Appender::begin_batch`].
pub(crate) enum BatchBegun<'a> {
    Own(Batch<'a>),
    Pooled(Transaction<'a, Sqlite>, Turn),
}

/// A batch's write transaction on the writer's own connection, begun and
/// ended by hand so that its first read rides with `BEGIN IMMEDIATE` and its
/// last writes with `COMMIT`: one round trip to SQLite's worker thread each
/// instead of one a statement (sqlx runs the statements of one text in
/// order, and binds each one's anonymous `?` from where the last stopped).
/// A batch's own statements went from 6 round trips to 2, plus one a
/// records chunk beyond the first (#21, bench/README.md "session 13"). sqlx does
/// not count this transaction, so it would not roll it back: a batch
/// dropped before its commit (an error, its timeout) closes the connection
/// instead, SQLite rolls back what it left open and lets go of the write
/// lock, and the next batch connects afresh.
pub(crate) struct Batch<'a> {
    slot: &'a mut Option<SqliteConnection>,
    committed: bool,
    _turn: Turn,
}

impl Batch<'_> {
    pub(crate) fn conn(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        self.slot
            .as_mut()
            .ok_or_else(|| StoreError::Db("the appender's connection is gone".into()))
    }

    /// The batch's last text has run, `COMMIT` included.
    pub(crate) fn committed(mut self) {
        self.committed = true;
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if !self.committed {
            *self.slot = None;
        }
    }
}

/// The parameters of [`NODES_ANONYMOUS`]: the nodes' (size, level) keys as
/// a JSON array of integers `size × 64 + level`, and their hashes as one
/// blob. One integer a node, not a `[size, level]` pair: SQLite reads an
/// integer element as it is, where each pair was parsed again for each of
/// its two fields (#21: JSON was 10 % of the appender's thread, `s15e`).
pub(crate) fn node_params(nodes: &[(NodeId, Hash)]) -> Result<(String, Vec<u8>), StoreError> {
    let mut ids = String::with_capacity(nodes.len() * 12 + 2);
    let mut hashes = Vec::with_capacity(nodes.len() * 32);
    ids.push('[');
    for (i, (id, hash)) in nodes.iter().enumerate() {
        if i > 0 {
            ids.push(',');
        }
        // A tree holds at most 2^53 leaves (a record index is a JSON safe
        // integer, `canonical::write_integer`), so `size × 64` fits an i64.
        let size = id.end();
        if size > 1 << 53 || id.level >= 64 {
            return Err(StoreError::Db(format!(
                "tree node (level {}, size {size}) is beyond the log's range",
                id.level
            )));
        }
        ids.push_str(itoa::Buffer::new().format((size << 6) | u64::from(id.level)));
        hashes.extend_from_slice(hash);
    }
    ids.push(']');
    Ok((ids, hashes))
}

/// The nodes' insert, with anonymous parameters (the hashes, then the
/// keys): [`insert_nodes`]'s, and the one that follows the records in a
/// batch's last text.
pub(crate) const NODES_ANONYMOUS: &str = "INSERT INTO tree_nodes (size, level, hash) \
     SELECT value >> 6, value & 63, substr(?, key * 32 + 1, 32) FROM json_each(?)";

/// Insert a batch of nodes in one statement: their (size, level) keys as a
/// JSON array and their hashes as one blob that SQLite cuts up, so a batch's
/// nodes cost one round trip to SQLite's worker thread. The key is the tree
/// size at which a node completes (migration 0014), so the batch's rows are
/// contiguous in the table.
pub(crate) async fn insert_nodes(
    conn: &mut SqliteConnection,
    nodes: &[(NodeId, Hash)],
) -> Result<(), StoreError> {
    let (ids, hashes) = node_params(nodes)?;
    sqlx::query(NODES_ANONYMOUS)
        .bind(hashes)
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use sqlx::{Connection, SqliteConnection};

    /// The workspace builds SQLite with two of libsqlite3-sys' defaults
    /// undone (`.cargo/config.toml`, `LIBSQLITE3_FLAGS`): each connection
    /// keeps its own page cache and no memory statistics are kept, so the
    /// audit writer's and the followers' statements take no global mutex on
    /// each page and allocation (bench/README.md, "#21, session 15": 186
    /// `pthread_mutex_lock` calls a statutory call before, 7.5 after).
    #[tokio::test]
    async fn sqlite_is_built_without_a_global_mutex_on_pages_and_allocations() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
        // Still built with what Bru relies on.
        assert!(options.iter().any(|o| o == "THREADSAFE=1"), "{options:?}");
    }

    /// A batch's nodes go in as one integer key each (`size × 64 + level`)
    /// and come out as the (size, level) rows they stand for, up to the
    /// largest tree a log can hold (2^53 leaves); beyond it they are
    /// refused, not wrapped.
    #[tokio::test]
    async fn tree_nodes_keep_their_size_and_level_up_to_the_largest_tree() {
        use crate::merkle::NodeId;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bru.db").display());
        let store = crate::Store::open(&url).await.unwrap();
        store.migrate().await.unwrap();
        let top: u64 = 1 << 53;
        let nodes = [
            (NodeId::new(0, 0), [1u8; 32]),
            (NodeId::new(1, 0), [2u8; 32]),
            (NodeId::new(0, top - 1), [3u8; 32]),
            (NodeId::new(7, (top >> 7) - 1), [4u8; 32]),
            (NodeId::new(53, 0), [5u8; 32]),
        ];
        let mut conn = SqliteConnection::connect(&url).await.unwrap();
        super::insert_nodes(&mut conn, &nodes).await.unwrap();
        let rows: Vec<(i64, i64, Vec<u8>)> =
            sqlx::query_as("SELECT size, level, hash FROM tree_nodes ORDER BY size, level")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let mut want: Vec<(i64, i64, Vec<u8>)> = nodes
            .iter()
            .map(|(id, h)| (id.end() as i64, i64::from(id.level), h.to_vec()))
            .collect();
        want.sort();
        assert_eq!(rows, want);
        // One leaf past the largest tree: refused before SQLite sees it.
        let beyond = [(NodeId::new(0, top), [6u8; 32])];
        assert!(super::node_params(&beyond).is_err());
    }
}
