//! [`Store`]: one handle over whichever database the URL names.
//!
//! Every query is written once, in the module of its concern: `records.rs`
//! (the audit records), `append.rs` (the batch transaction), `consents.rs`
//! (the lifecycle), `tree.rs` (the transparency log's nodes, heads and
//! checkpoints), `portal_sessions.rs`. Both backends take `$n` placeholders,
//! so one text serves both (the batch insert of records aside, see below).
//! sqlx's executors are generic over the database with bounds a plain
//! generic function cannot state once, so the glue is written once inside
//! [`on_pool!`] / [`on_conn!`], which expand it once per backend (the pattern
//! of vaultwarden's `db_run!`).
//!
//! What differs is the dialect, each difference a named method here whose two
//! sides live in `sqlite.rs` and `postgres.rs`:
//! - begin a write ([`Store::begin_write`]): SQLite `BEGIN IMMEDIATE` takes the
//!   database's one write lock; PostgreSQL a plain `BEGIN`.
//! - take the sequencer ([`Conn::take_sequencer`]): PostgreSQL
//!   `pg_advisory_xact_lock`; on SQLite the write lock already is it.
//! - lock a row ([`Conn::lock_row`]): PostgreSQL `FOR UPDATE`; on SQLite the
//!   write lock covers every row.
//! - placeholders ([`Conn::numbered_placeholders`]): the batch insert of
//!   records takes anonymous `?` on SQLite, `$n` on PostgreSQL; every other
//!   statement `$n` on both.
//! - insert a batch of nodes ([`Conn::insert_nodes`]): one statement each,
//!   `json_each` over a JSON array and a blob, or `UNNEST` over three arrays.
//! - the appender's connection ([`Appender`]): SQLite's writer keeps one of its
//!   own (its page cache stays valid); PostgreSQL takes one from the pool.
//! - a batch of the audit log ([`Appender::begin_batch`],
//!   `append::finish_batch`): on SQLite's own appender connection begun and
//!   committed by hand, its first read in one text with `BEGIN IMMEDIATE`
//!   and its last writes with `COMMIT` (one round trip each to SQLite's
//!   worker thread); PostgreSQL a transaction as any write's.
//! - the heartbeat ([`Store::heartbeat`]): SQLite in a write transaction of its
//!   own; PostgreSQL one autocommitted statement.
//! - the checkpoint signer ([`Store::try_become_checkpointer`]): PostgreSQL's
//!   session-level advisory lock; SQLite always.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection, Transaction};
use tokio::time::Instant;

use crate::config::StoreConfig;
use crate::consent::{ConsentError, ConsentEventCounts, EventCounters};
use crate::error::StoreError;
use crate::merkle::{Hash, NodeId};
use crate::postgres::{self, PgStore};
use crate::record::Timestamp;
use crate::sqlite::{self, SqliteStore};
use crate::tlog::FrontierCache;

/// Runs `$body` with `$pool` bound to the backend's pool: the statement and
/// its glue are written once, and the macro expands them once per backend.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite(db) => {
                let $pool = &db.pool;
                $body
            }
            $crate::store::Backend::Postgres(db) => {
                let $pool = &db.pool;
                $body
            }
        }
    };
}

/// Runs `$body` with `$c` bound to the connection inside a [`Conn`]
/// (`&mut &mut SqliteConnection` or `&mut &mut PgConnection`; execute on
/// `&mut **$c`), once per backend like [`on_pool!`].
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            Conn::Sqlite($c) => $body,
            Conn::Postgres($c) => $body,
        }
    };
}

mod altinn;
mod append;
mod blocks;
mod consents;
mod disclosure;
mod followers;
mod indexer;
mod notifications;
mod portal_sessions;
mod records;
mod representation;
mod snoop;
mod tree;
mod witness;

pub use altinn::{AltinnConsentEnded, AltinnConsentState};
pub(crate) use append::BatchCommit;
pub use blocks::Block;
pub use disclosure::{disclosure_now, test_skew_days, TEST_SKEW_VAR};
pub use indexer::{INDEX_FOLLOWER, INDEX_STEP};
pub use notifications::{
    InboxCursor, Notification, NotificationKind, NotificationSettings, OutboxCounts,
    TransferNotices,
};
pub use portal_sessions::PortalSession;
pub use representation::{ActionActor, EventActor};
pub use snoop::{FindingFilter, SnoopStep, StoredFinding, SNOOP_FOLLOWER};

/// A cloneable handle over a connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    /// How long consent changes retry a busy database.
    busy_timeout: Duration,
    /// False only in benchmarks: appends do not grow the Merkle tree.
    tree: bool,
    /// Consent events committed through this store, for metrics.
    events: Arc<EventCounters>,
    frontier: FrontierCache,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// A connection on either backend: what a query runs on inside a transaction.
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

/// A transaction on either backend.
pub(crate) enum Tx<'c> {
    /// With this process's turn to write, released after the transaction
    /// (fields drop in order: the transaction's rollback is queued first).
    Sqlite(Transaction<'c, Sqlite>, sqlite::Turn),
    Postgres(Transaction<'c, Postgres>),
}

impl Tx<'_> {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(tx, _) => Conn::Sqlite(tx),
            Tx::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx, _turn) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

impl Conn<'_> {
    /// Take the sequencer: the lock under which a batch reads the log's end
    /// and appends after it, one writer at a time across processes and
    /// replicas.
    pub(crate) async fn take_sequencer(&mut self) -> Result<(), StoreError> {
        match self {
            // BEGIN IMMEDIATE already holds the database's one write lock.
            Conn::Sqlite(_) => Ok(()),
            Conn::Postgres(c) => postgres::take_sequencer(c).await,
        }
    }

    /// Lock a row: the clause after a `SELECT` that keeps the rows read
    /// unchanged by others until the transaction ends.
    pub(crate) fn lock_row(&self) -> &'static str {
        match self {
            // The write transaction's lock covers every row.
            Conn::Sqlite(_) => "",
            Conn::Postgres(_) => " FOR UPDATE",
        }
    }

    /// Placeholders: whether the batch insert of records numbers its
    /// parameters (`$1, $2, …`, PostgreSQL) or leaves them anonymous (`?`,
    /// SQLite, whose driver then binds them in order instead of reading each
    /// one's name back: 22 lookups a record). Every other statement takes
    /// `$n` on both.
    pub(crate) fn numbered_placeholders(&self) -> bool {
        matches!(self, Conn::Postgres(_))
    }

    /// One JSON text of the rows `select` gives: an array of arrays of the
    /// columns `names` (as `select` names them), for a follower that reads a
    /// window of the log as one row (SQLite `json_group_array`, PostgreSQL
    /// `json_agg`; the order of rows is the caller's to restore).
    pub(crate) fn json_rows(&self, select: &str, names: &str) -> String {
        match self {
            Conn::Sqlite(_) => sqlite::json_rows(select, names),
            Conn::Postgres(_) => postgres::json_rows(select, names),
        }
    }

    /// Insert a batch of nodes in one statement.
    pub(crate) async fn insert_nodes(
        &mut self,
        nodes: &[(NodeId, Hash)],
    ) -> Result<(), StoreError> {
        if nodes.is_empty() {
            return Ok(());
        }
        match self {
            Conn::Sqlite(c) => sqlite::insert_nodes(c, nodes).await,
            Conn::Postgres(c) => postgres::insert_nodes(c, nodes).await,
        }
    }
}

/// A batch's write transaction (see `append.rs`): on SQLite's own appender
/// connection begun and committed by hand, its last writes in one text with
/// `COMMIT` (`append::finish_batch`); else a transaction as any write's.
pub(crate) enum BatchTx<'c> {
    Sqlite(sqlite::Batch<'c>),
    Tx(Tx<'c>),
}

impl BatchTx<'_> {
    pub(crate) fn conn(&mut self) -> Result<Conn<'_>, StoreError> {
        Ok(match self {
            BatchTx::Sqlite(batch) => Conn::Sqlite(batch.conn()?),
            BatchTx::Tx(tx) => tx.conn(),
        })
    }
}

/// The connection the audit appender writes a batch on.
pub(crate) enum Appender<'a> {
    Sqlite(sqlite::Appender<'a>),
    Postgres(PoolConnection<Postgres>),
}

impl Appender<'_> {
    /// Begin a batch's write transaction, with the log's last record (index
    /// and time) read under the sequencer. SQLite's own appender connection
    /// does both in one round trip (`sqlite::Batch`).
    pub(crate) async fn begin_batch(
        &mut self,
    ) -> Result<(BatchTx<'_>, Option<(i64, String)>), StoreError> {
        match self {
            Appender::Sqlite(a) => {
                let (begun, last) = a.begin_batch(records::LAST_RECORD).await?;
                Ok(match begun {
                    sqlite::BatchBegun::Own(batch) => (BatchTx::Sqlite(batch), last),
                    sqlite::BatchBegun::Pooled(tx, turn) => {
                        (BatchTx::Tx(Tx::Sqlite(tx, turn)), last)
                    }
                })
            }
            Appender::Postgres(c) => {
                let mut tx = Tx::Postgres(sqlx::Connection::begin(&mut **c).await?);
                let mut conn = tx.conn();
                conn.take_sequencer().await?;
                let last = records::last_record(&mut conn).await?;
                Ok((BatchTx::Tx(tx), last))
            }
        }
    }

    /// After a failed write transaction: the connection is closed, not used
    /// again (its transaction state is unknown; see `sqlite::Appender::discard`).
    pub(crate) fn discard(&mut self) {
        match self {
            Appender::Sqlite(a) => a.discard(),
            Appender::Postgres(c) => c.close_on_drop(),
        }
    }
}

/// Errors worth another attempt: the database was busy or locked past the
/// busy timeout of one statement (e.g. many concurrent uses of one consent).
pub(crate) trait Busy {
    fn is_busy(&self) -> bool;
}

impl Busy for StoreError {
    fn is_busy(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl Busy for ConsentError {
    fn is_busy(&self) -> bool {
        matches!(self, ConsentError::Store(e) if e.is_busy())
    }
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
        Ok(Store {
            backend,
            busy_timeout: config.busy_timeout,
            tree: config.tree,
            events: Default::default(),
            frontier: Default::default(),
        })
    }

    /// Applies the embedded migrations that are not yet applied. Several
    /// replicas may start at once: sqlx's migrator takes its own lock, so
    /// one applies and the others find it done.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.migrate().await?,
            Backend::Postgres(s) => s.migrate().await?,
        }
        // A log written before the transparency log gets its tree now, not
        // in the first append's transaction.
        self.catch_up_tree().await
    }

    /// `"sqlite"` or `"postgres"`, for logs and metrics.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes the pool; waits for checked-out connections to come back.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(s) => s.close().await,
            Backend::Postgres(s) => s.close().await,
        }
    }

    /// The consent events committed through this handle and its clones since
    /// the store was opened, by type (every change writes one; a lazy expiry
    /// on a read counts too). Atomics only: cheap enough for every metrics
    /// scrape. Another process or replica on the same database counts its own.
    pub fn consent_event_counts(&self) -> ConsentEventCounts {
        self.events.snapshot()
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

    /// The readiness probe: a tiny write. `Ok` means the store takes writes now.
    pub async fn heartbeat(&self) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO heartbeat (id, at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET at = excluded.at";
        let at = Timestamp::now().to_string();
        match &self.backend {
            Backend::Sqlite(s) => s.heartbeat(SQL, at).await,
            Backend::Postgres(s) => s.heartbeat(SQL, at).await,
        }
    }

    /// SQLite: copies the WAL into the database file as far as readers
    /// allow, without waiting for a lock (the appender's own commits never
    /// checkpoint; the audit log runs this beside them). PostgreSQL: nothing
    /// to do (the server checkpoints).
    pub(crate) async fn checkpoint_wal(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.checkpoint().await,
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Begin a write (see the module's list of differences).
    pub(crate) async fn begin_write(&self) -> Result<Tx<'static>, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(s) => {
                let (tx, turn) = s.begin_write().await?;
                Tx::Sqlite(tx, turn)
            }
            Backend::Postgres(s) => Tx::Postgres(s.begin_write().await?),
        })
    }

    /// Begin a write of work derived from the log (the followers: the
    /// index, snooping findings, notifications), whose commit does not wait
    /// for the disk (SQLite `synchronous=NORMAL`, PostgreSQL
    /// `synchronous_commit = off`). A follower's rows and its position commit
    /// together, and commits reach the disk in order, so a crash that loses
    /// such a commit loses its position with it, and the follower does the
    /// work again; the next commit that waits (the appender's, a few
    /// milliseconds later under load) takes it to the disk. #21: each of
    /// these commits was an fsync of its own, with the appender waiting
    /// behind it for the write lock.
    pub(crate) async fn begin_derived(&self) -> Result<Tx<'static>, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(s) => {
                let (tx, turn) = s.begin_derived().await?;
                Tx::Sqlite(tx, turn)
            }
            Backend::Postgres(s) => Tx::Postgres(s.begin_derived().await?),
        })
    }

    /// A read transaction: one snapshot for several statements.
    pub(crate) async fn begin_read(&self) -> Result<Tx<'static>, StoreError> {
        Ok(on_pool!(self, pool => Tx::from(pool.begin().await?)))
    }

    /// The connection the audit appender writes its next batch on.
    pub(crate) async fn appender(&self) -> Result<Appender<'_>, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(s) => Appender::Sqlite(s.appender().await?),
            Backend::Postgres(s) => Appender::Postgres(s.appender().await?),
        })
    }

    /// Runs `op` again while the store is busy, until the busy timeout has
    /// passed since the first attempt; the last error is returned then.
    pub(crate) async fn retrying<T, E, F, Fut>(&self, mut op: F) -> Result<T, E>
    where
        E: Busy,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let deadline = Instant::now() + self.busy_timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            match op().await {
                Err(e) if e.is_busy() && Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }
}

/// A read transaction: no turn to write needed.
impl<'c> From<Transaction<'c, Sqlite>> for Tx<'c> {
    fn from(tx: Transaction<'c, Sqlite>) -> Self {
        Tx::Sqlite(tx, None)
    }
}

impl<'c> From<Transaction<'c, Postgres>> for Tx<'c> {
    fn from(tx: Transaction<'c, Postgres>) -> Self {
        Tx::Postgres(tx)
    }
}

impl<'c> From<&'c mut SqliteConnection> for Conn<'c> {
    fn from(c: &'c mut SqliteConnection) -> Self {
        Conn::Sqlite(c)
    }
}

impl<'c> From<&'c mut PgConnection> for Conn<'c> {
    fn from(c: &'c mut PgConnection) -> Self {
        Conn::Postgres(c)
    }
}

fn scheme(url: &str) -> Option<&str> {
    url.split_once(':').map(|(s, _)| s)
}
