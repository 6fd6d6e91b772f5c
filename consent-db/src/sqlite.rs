//! The SQLite backend: one database file in WAL mode, `synchronous=FULL` so a
//! commit is on disk when it returns.

use std::str::FromStr;
use std::sync::OnceLock;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{
    ConnectOptions, Connection, QueryBuilder, Sqlite, SqliteConnection, TransactionManager,
};

use crate::error::StoreError;
use crate::merkle::Frontier;
use crate::record::{AuditRecord, NewRecord, RecordFilter, Timestamp};
use crate::store::{BatchCommit, StoreConfig};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The columns of `audit_records` in spec order, as [`RecordRow`] reads them.
pub(crate) const RECORD_COLUMNS: &str =
    "idx, time, transfer_id, kind, consumer, supplier, client_id, \
     provider, dataset, method, path, purpose, basis, legal_ref, consent_id, subject_ref, \
     decision, code, status, bytes, duration_ms, count, system_user";

/// Rows per multi-row INSERT: 256 × 23 parameters stays far below SQLite's
/// limit of 32766.
const MAX_ROWS_LOG2: u32 = 8;

/// `INSERT … VALUES (…), (…), …` with 2^k rows for k = 0..=MAX_ROWS_LOG2. A
/// batch is cut into chunks of these sizes, so there are only nine statement
/// texts and each stays in the connection's prepared-statement cache.
/// One statement per row instead costs about 40 µs a record in sqlx.
fn insert_sql(rows_log2: u32) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        (0..=MAX_ROWS_LOG2)
            .map(|k| {
                let row = format!("({})", vec!["?"; 23].join(", "));
                format!(
                    "INSERT INTO audit_records ({RECORD_COLUMNS}) VALUES {}",
                    vec![row; 1 << k].join(", ")
                )
            })
            .collect()
    });
    all.get(rows_log2 as usize).map_or("", String::as_str)
}

#[derive(Clone, Debug)]
pub(crate) struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// How long consent changes retry a busy database (see `consent/sqlite.rs`).
    pub(crate) busy_timeout: std::time::Duration,
    /// False only in benchmarks: appends do not grow the Merkle tree.
    pub(crate) tree: bool,
    /// Consent events committed through this store, for metrics.
    pub(crate) events: std::sync::Arc<crate::consent::EventCounters>,
    frontier: crate::tlog::FrontierCache,
    /// The audit appender's own connection (None for an in-memory database,
    /// whose appends use the pool). One connection for every batch keeps its
    /// page cache valid from one batch to the next: SQLite drops a
    /// connection's cache whenever another connection wrote, and the pool
    /// hands its connections out in turn, so each batch read its b-tree
    /// pages back from the file (about two `pread`s per call).
    writer: Option<std::sync::Arc<Writer>>,
}

#[derive(Debug)]
struct Writer {
    conn: tokio::sync::Mutex<Option<SqliteConnection>>,
    options: SqliteConnectOptions,
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
            // transaction is closed, not reused (see `discard_after_failure`):
            // this covers every write path, not only the audit appends.
            pool = pool.after_release(|conn, _| {
                Box::pin(async move {
                    Ok(
                        <Sqlite as sqlx::Database>::TransactionManager::get_transaction_depth(conn)
                            == 0,
                    )
                })
            });
        }
        let pool = pool.connect_with(options.clone()).await?;
        Ok(SqliteStore {
            pool,
            busy_timeout: config.busy_timeout,
            events: Default::default(),
            tree: config.tree,
            frontier: Default::default(),
            writer: (!in_memory).then(|| {
                std::sync::Arc::new(Writer {
                    conn: Default::default(),
                    options,
                })
            }),
        })
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        // A log written before the transparency log gets its tree now, not
        // in the first append's transaction.
        self.catch_up_tree().await
    }

    pub(crate) async fn close(&self) {
        if let Some(writer) = &self.writer {
            if let Some(conn) = writer.conn.lock().await.take() {
                let _ = conn.close().await;
            }
        }
        self.pool.close().await;
    }

    pub(crate) async fn append_batch(
        &self,
        records: &[NewRecord],
        consent_uses: &[usize],
    ) -> Result<BatchCommit, StoreError> {
        let cached = self.frontier.get();
        let mut writer = match &self.writer {
            Some(w) => Some((w, w.conn.lock().await)),
            None => None,
        };
        let mut pooled: Option<PoolConnection<Sqlite>> = None;
        let conn: &mut SqliteConnection = match &mut writer {
            Some((w, slot)) => match slot.take() {
                // A batch dropped mid-transaction (its timeout) leaves the
                // connection counted inside it: start afresh instead.
                Some(c)
                    if <Sqlite as sqlx::Database>::TransactionManager::get_transaction_depth(
                        &c,
                    ) == 0 =>
                {
                    slot.insert(c)
                }
                _ => slot.insert(w.options.connect().await?),
            },
            None => pooled.insert(self.pool.acquire().await?),
        };
        let result =
            Self::append_in(conn, records, consent_uses, &self.events, self.tree, cached).await;
        if result.is_err() {
            // Closed, not reused: see `discard_after_failure`.
            if let Some((_, slot)) = &mut writer {
                **slot = None;
            }
            if let Some(conn) = &mut pooled {
                discard_after_failure(conn);
            }
        }
        let (commit, frontier) = result?;
        self.frontier.committed(frontier);
        Ok(commit)
    }

    async fn append_in(
        conn: &mut SqliteConnection,
        all_records: &[NewRecord],
        consent_uses: &[usize],
        events: &crate::consent::EventCounters,
        tree: bool,
        cached: Option<Frontier>,
    ) -> Result<(BatchCommit, Option<Frontier>), StoreError> {
        // IMMEDIATE takes the write lock now, so reading the last index and
        // inserting after it cannot race another writer (another process on
        // the same file); a held lock shows up here, after busy_timeout.
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT idx, time FROM audit_records ORDER BY idx DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
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
        let mut refused = Vec::new();
        let mut tally = crate::consent::EventTally::default();
        for &i in consent_uses {
            let id = all_records
                .get(i)
                .and_then(|r| r.consent_id.as_deref())
                .ok_or_else(|| StoreError::Db(format!("record {i} of the batch has no consent")))?;
            if !crate::consent::sqlite::take_use(&mut tx, &mut tally, id, time).await? {
                refused.push(i);
            }
        }
        let kept = crate::store::without_refused(all_records, &refused);
        let records: &[NewRecord] = &kept;
        let time_text = time.to_string();
        let mut rest = records;
        let mut index = first_index;
        while !rest.is_empty() {
            // The largest power of two that fits, capped at 2^MAX_ROWS_LOG2.
            let k = rest.len().ilog2().min(MAX_ROWS_LOG2);
            let (chunk, tail) = rest.split_at(1 << k);
            let mut query = sqlx::query(insert_sql(k));
            for r in chunk {
                query = query
                    .bind(index)
                    .bind(time_text.as_str())
                    .bind(r.transfer_id.as_str())
                    .bind(r.kind.as_str())
                    .bind(r.consumer.as_deref())
                    .bind(r.supplier.as_deref())
                    .bind(r.client_id.as_deref())
                    .bind(r.provider.as_deref())
                    .bind(r.dataset.as_deref())
                    .bind(r.method.as_str())
                    .bind(r.path.as_str())
                    .bind(r.purpose.as_deref())
                    .bind(r.basis.map(|b| b.as_str()))
                    .bind(r.legal_ref.as_deref())
                    .bind(r.consent_id.as_deref())
                    .bind(r.subject_ref.as_deref())
                    .bind(r.decision.map(|d| d.as_str()))
                    .bind(r.code.as_deref())
                    .bind(r.status.map(i64::from))
                    .bind(r.bytes.map(to_i64).transpose()?)
                    .bind(r.duration_ms.map(to_i64).transpose()?)
                    .bind(r.count.map(to_i64).transpose()?)
                    .bind(r.system_user.as_deref());
                index += 1;
            }
            query.execute(&mut *tx).await?;
            rest = tail;
        }
        let first_index = u64::try_from(first_index)
            .map_err(|_| StoreError::Corrupt(format!("negative index {first_index}")))?;
        // The leaves and the new tree head commit with the records, or not at all.
        // A batch whose every consent refused its use has no leaves to add.
        let mut frontier = None;
        if tree && !records.is_empty() {
            frontier = Some(
                crate::tlog::sqlite::extend_tree(&mut tx, first_index, time, records, cached)
                    .await?,
            );
        }
        tx.commit().await?;
        events.committed(&tally);
        Ok((
            BatchCommit {
                first_index,
                time,
                refused,
            },
            frontier,
        ))
    }

    pub(crate) async fn records(
        &self,
        filter: &RecordFilter,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT ");
        q.push(RECORD_COLUMNS)
            .push(" FROM audit_records WHERE 1 = 1");
        // Time never goes backwards along the log (it is taken under the
        // sequencer's lock), so a time window is also an index range: the
        // first record at or after each bound, found on the time index,
        // bounds `idx`. Without this the planner may walk the primary key
        // from 0 filtering on time (seconds at 15M records; bench/README.md).
        const FIRST_AT: &str = "COALESCE((SELECT idx FROM audit_records WHERE time >= ";
        const FIRST_AT_END: &str = " ORDER BY time, idx LIMIT 1), 9223372036854775807)";
        if let Some(t) = filter.since {
            q.push(" AND time >= ").push_bind(t.to_string());
            q.push(" AND idx >= ")
                .push(FIRST_AT)
                .push_bind(t.to_string())
                .push(FIRST_AT_END);
        }
        if let Some(t) = filter.until {
            q.push(" AND time < ").push_bind(t.to_string());
            q.push(" AND idx < ")
                .push(FIRST_AT)
                .push_bind(t.to_string())
                .push(FIRST_AT_END);
        }
        if let Some(c) = &filter.consumer {
            q.push(" AND consumer = ").push_bind(c.clone());
        }
        if let Some(p) = &filter.provider {
            q.push(" AND provider = ").push_bind(p.clone());
        }
        if let Some(d) = &filter.dataset {
            q.push(" AND dataset = ").push_bind(d.clone());
        }
        if let Some(k) = filter.kind {
            q.push(" AND kind = ").push_bind(k.as_str());
        }
        if let Some(v) = filter.decision {
            q.push(" AND decision = ").push_bind(v.as_str());
        }
        if let Some(s) = &filter.subject_ref {
            q.push(" AND subject_ref = ").push_bind(s.clone());
        }
        if let Some(after) = filter.after_index {
            // Past i64::MAX there is nothing; saturate rather than fail.
            q.push(" AND idx > ")
                .push_bind(i64::try_from(after).unwrap_or(i64::MAX));
        }
        q.push(" ORDER BY idx");
        if let Some(limit) = filter.limit {
            q.push(" LIMIT ").push_bind(i64::from(limit));
        }
        let rows: Vec<RecordRow> = q.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(AuditRecord::try_from).collect()
    }

    pub(crate) async fn record_count(&self) -> Result<u64, StoreError> {
        // Indexes are dense from 0, so the count is the last index + 1: a
        // primary-key lookup instead of a table scan.
        let (next,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_records")
            .fetch_one(&self.pool)
            .await?;
        u64::try_from(next).map_err(|_| StoreError::Corrupt(format!("record count {next}")))
    }

    pub(crate) async fn records_by_transfer(
        &self,
        transfer_id: &str,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM audit_records WHERE transfer_id = ? ORDER BY idx"
        );
        let rows: Vec<RecordRow> = sqlx::query_as(&sql)
            .bind(transfer_id)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(AuditRecord::try_from).collect()
    }

    // Consents: see consent/sqlite.rs.
}

/// Closes a pooled connection whose write transaction failed instead of
/// returning it to the pool. After SQLITE_FULL or an I/O error SQLite may roll
/// the transaction back by itself; sqlx's own ROLLBACK then fails and sqlx
/// counts the connection as inside a transaction for good, so every later
/// `begin` on it would fail ("non-zero transaction depth") even once the
/// disk has room again.
pub(crate) fn discard_after_failure(conn: &mut PoolConnection<Sqlite>) {
    conn.close_on_drop();
}

/// `audit_records` as SQLite returns it; checked into an [`AuditRecord`].
#[derive(sqlx::FromRow)]
pub(crate) struct RecordRow {
    idx: i64,
    time: String,
    transfer_id: String,
    kind: String,
    consumer: Option<String>,
    supplier: Option<String>,
    client_id: Option<String>,
    provider: Option<String>,
    dataset: Option<String>,
    method: String,
    path: String,
    purpose: Option<String>,
    basis: Option<String>,
    legal_ref: Option<String>,
    consent_id: Option<String>,
    subject_ref: Option<String>,
    decision: Option<String>,
    code: Option<String>,
    status: Option<i64>,
    bytes: Option<i64>,
    duration_ms: Option<i64>,
    count: Option<i64>,
    system_user: Option<String>,
}

impl TryFrom<RecordRow> for AuditRecord {
    type Error = StoreError;

    fn try_from(r: RecordRow) -> Result<Self, StoreError> {
        let idx = r.idx;
        let bad = |field: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("record {idx}: {field}: {e}"))
        };
        fn num<T: TryFrom<i64>>(v: Option<i64>) -> Result<Option<T>, i64> {
            v.map(|n| T::try_from(n).map_err(|_| n)).transpose()
        }
        Ok(AuditRecord {
            index: u64::try_from(idx).map_err(|e| bad("index", &e))?,
            time: Timestamp::parse(&r.time).map_err(|e| bad("time", &e))?,
            transfer_id: r.transfer_id,
            kind: r.kind.parse().map_err(|e| bad("kind", &e))?,
            consumer: r.consumer,
            supplier: r.supplier,
            client_id: r.client_id,
            provider: r.provider,
            dataset: r.dataset,
            method: r.method,
            path: r.path,
            purpose: r.purpose,
            basis: r
                .basis
                .map(|b| b.parse())
                .transpose()
                .map_err(|e| bad("basis", &e))?,
            legal_ref: r.legal_ref,
            consent_id: r.consent_id,
            subject_ref: r.subject_ref,
            decision: r
                .decision
                .map(|d| d.parse())
                .transpose()
                .map_err(|e| bad("decision", &e))?,
            code: r.code,
            status: num(r.status).map_err(|n| bad("status", &n))?,
            bytes: num(r.bytes).map_err(|n| bad("bytes", &n))?,
            duration_ms: num(r.duration_ms).map_err(|n| bad("duration_ms", &n))?,
            count: num(r.count).map_err(|n| bad("count", &n))?,
            system_user: r.system_user,
        })
    }
}

fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Db(format!("{n} is too large to store")))
}
