//! The PostgreSQL backend: the same schema and the same text formats as
//! SQLite (times are RFC 3339 text, so leaf bytes agree), shared by any number
//! of gateway replicas. Writers that must not interleave (the audit sequencer,
//! the checkpoint signer) take PostgreSQL advisory locks.

use std::sync::{Arc, OnceLock};

use sqlx::pool::PoolConnection;
use std::path::PathBuf;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder};
use tokio::sync::Mutex;

use crate::error::StoreError;
use crate::record::{AuditRecord, NewRecord, RecordFilter, Timestamp};
use crate::sqlite::RecordRow;
use crate::store::{BatchCommit, StoreConfig};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// `pg_advisory_xact_lock` key of the audit sequencer: one batch commits at a
/// time across all replicas, so indexes are dense in commit order.
pub(crate) const SEQUENCER_LOCK: i64 = 0x4272_7501;
/// `pg_try_advisory_lock` key (session level) of the checkpoint signer.
pub(crate) const CHECKPOINTER_LOCK: i64 = 0x4272_7502;

/// The columns of `audit_records` in spec order, as [`RecordRow`] reads them.
pub(crate) const RECORD_COLUMNS: &str = crate::sqlite::RECORD_COLUMNS;

/// Rows per multi-row INSERT: 256 × 23 parameters, below PostgreSQL's 65535.
const MAX_ROWS_LOG2: u32 = 8;

/// Turns `?` / `?N` placeholders into PostgreSQL's `$N` (for generated texts).
pub(crate) fn pg(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 1;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '?' {
            out.push(c);
            continue;
        }
        out.push('$');
        if chars.peek().is_some_and(char::is_ascii_digit) {
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                out.push(d);
            }
        } else {
            out.push_str(&next.to_string());
            next += 1;
        }
    }
    out
}

/// `INSERT … VALUES ($1, …), (…), …` with 2^k rows for k = 0..=MAX_ROWS_LOG2
/// (see `sqlite.rs`: few statement texts, all in the prepared-statement cache).
fn insert_sql(rows_log2: u32) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        (0..=MAX_ROWS_LOG2)
            .map(|k| {
                let row = format!("({})", vec!["?"; 23].join(", "));
                pg(&format!(
                    "INSERT INTO audit_records ({RECORD_COLUMNS}) VALUES {}",
                    vec![row; 1 << k].join(", ")
                ))
            })
            .collect()
    });
    all.get(rows_log2 as usize).map_or("", String::as_str)
}

#[derive(Clone, Debug)]
pub(crate) struct PgStore {
    pub(crate) pool: PgPool,
    /// How long consent changes retry a busy database (see `consent/postgres.rs`).
    pub(crate) busy_timeout: std::time::Duration,
    /// False only in benchmarks: appends do not grow the Merkle tree.
    pub(crate) tree: bool,
    /// Consent events committed through this store, for metrics.
    pub(crate) events: Arc<crate::consent::EventCounters>,
    /// The connection holding the checkpoint signer's session lock, if this
    /// process holds it: the lock lives exactly as long as that session.
    checkpointer: Arc<Mutex<Option<PoolConnection<Postgres>>>>,
    frontier: crate::tlog::FrontierCache,
}

/// How connections to PostgreSQL are protected (`[store] tls` in bru.toml).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PgTls {
    /// Not configured. A URL whose own `sslmode` is `verify-full` is used as
    /// it says; otherwise connections are plain, and only to this machine
    /// (a loopback address or a Unix socket): any other server is refused,
    /// so records and consents never cross a network in clear by omission.
    #[default]
    Unset,
    /// Plain TCP, whatever the URL says: chosen explicitly (e.g. a sidecar
    /// that terminates TLS, or a network the operator vouches for).
    Disable,
    /// libpq's `sslmode=verify-full`: TLS, the server's certificate must chain
    /// to `ca_file` and name the URL's host. With `client`, Bru presents a
    /// certificate (for `hostssl … cert` in pg_hba.conf).
    ///
    /// sqlx adds `ca_file` to Mozilla's public roots (webpki-roots), as libpq
    /// does with `sslrootcert=system` plus a file: a server name under a
    /// private domain (`*.svc.cluster.local`, `*.internal`) is one no public CA
    /// can certify.
    VerifyFull {
        ca_file: PathBuf,
        client: Option<ClientCertificate>,
    },
}

/// The certificate and key Bru presents to PostgreSQL (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Applies `tls` to options parsed from the URL; refuses plain TCP to another
/// machine unless `tls` says so.
fn with_tls(options: PgConnectOptions, tls: &PgTls) -> Result<PgConnectOptions, StoreError> {
    match tls {
        PgTls::Disable => {
            if !is_local(&options) {
                tracing::warn!(
                    host = options.get_host(),
                    "[store] tls = \"disable\": records and consents go to PostgreSQL in clear"
                );
            }
            Ok(options.ssl_mode(PgSslMode::Disable))
        }
        PgTls::VerifyFull { ca_file, client } => {
            let options = options
                .ssl_mode(PgSslMode::VerifyFull)
                .ssl_root_cert(ca_file);
            Ok(match client {
                Some(c) => options
                    .ssl_client_cert(&c.cert_file)
                    .ssl_client_key(&c.key_file),
                None => options,
            })
        }
        PgTls::Unset if matches!(options.get_ssl_mode(), PgSslMode::VerifyFull) => Ok(options),
        PgTls::Unset if is_local(&options) => Ok(options.ssl_mode(PgSslMode::Disable)),
        // The host is not secret (the password is): name it.
        PgTls::Unset => Err(StoreError::Insecure(format!(
            "PostgreSQL at {} is not on this machine and [store] tls is not set; \
             set tls = \"verify-full\" with ca_file (or tls = \"disable\" to send \
             records and consents in clear)",
            options.get_host()
        ))),
    }
}

/// A Unix socket or a loopback address: nothing crosses a network.
fn is_local(options: &PgConnectOptions) -> bool {
    let host = options.get_host();
    options.get_socket().is_some()
        || host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A failed first connection, said plainly when TLS is the cause (an unknown
/// issuer, a name mismatch, an unreadable CA file). sqlx reports a failed
/// handshake as I/O of kind `InvalidData` (rustls' error inside).
fn connect_error(e: sqlx::Error, tls: bool) -> StoreError {
    match &e {
        sqlx::Error::Tls(cause) => {
            StoreError::Insecure(format!("TLS to PostgreSQL failed: {cause}"))
        }
        sqlx::Error::Io(io) if tls && io.kind() == std::io::ErrorKind::InvalidData => {
            StoreError::Insecure(format!("TLS to PostgreSQL failed: {io}"))
        }
        _ => e.into(),
    }
}

impl PgStore {
    pub(crate) async fn open(url: &str, config: &StoreConfig) -> Result<Self, StoreError> {
        // sqlx's parse errors may quote the URL, password included: say less.
        let options: PgConnectOptions = url
            .parse()
            .map_err(|_| StoreError::InvalidUrl("not a valid postgres:// URL".into()))?;
        let options = with_tls(options, &config.postgres_tls)?;
        let tls = !matches!(options.get_ssl_mode(), PgSslMode::Disable);
        let timeout_ms = config.busy_timeout.as_millis().to_string();
        // A statement waiting on a lock gives up like SQLite's busy_timeout.
        let options = options.options([
            ("lock_timeout", timeout_ms.as_str()),
            (
                "synchronous_commit",
                if config.synchronous { "on" } else { "off" },
            ),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(2))
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(|e| connect_error(e, tls))?;
        Ok(PgStore {
            pool,
            busy_timeout: config.busy_timeout,
            events: Default::default(),
            tree: config.tree,
            checkpointer: Arc::new(Mutex::new(None)),
            frontier: Default::default(),
        })
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        // Several replicas may start at once: sqlx's migrator takes its own
        // advisory lock, so one applies and the others find it done.
        MIGRATOR.run(&self.pool).await?;
        self.catch_up_tree().await
    }

    pub(crate) async fn close(&self) {
        self.release_checkpointer().await;
        self.pool.close().await;
    }

    /// Whether this process is the one replica that signs checkpoints: takes
    /// (or keeps) a session-level advisory lock on a dedicated connection.
    /// When the process dies its session ends and another replica gets it.
    pub(crate) async fn try_become_checkpointer(&self) -> Result<bool, StoreError> {
        let mut held = self.checkpointer.lock().await;
        if let Some(conn) = held.as_mut() {
            // Still ours while the session is alive.
            if conn.ping().await.is_ok() {
                return Ok(true);
            }
            if let Some(conn) = held.take() {
                let _ = conn.detach().close().await;
            }
        }
        let mut conn = self.pool.acquire().await?;
        let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(CHECKPOINTER_LOCK)
            .fetch_one(&mut *conn)
            .await?;
        if got {
            tracing::info!("this process now signs checkpoints (it holds the checkpointer lock)");
            *held = Some(conn);
        }
        Ok(got)
    }

    async fn release_checkpointer(&self) {
        if let Some(mut conn) = self.checkpointer.lock().await.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(CHECKPOINTER_LOCK)
                .execute(&mut *conn)
                .await;
        }
    }

    pub(crate) async fn append_batch(
        &self,
        records: &[NewRecord],
        consent_uses: &[usize],
    ) -> Result<BatchCommit, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let cached = self.frontier.get();
        let result = Self::append_in(
            &mut conn,
            records,
            consent_uses,
            &self.events,
            self.tree,
            cached,
        )
        .await;
        match result {
            Ok((commit, frontier)) => {
                self.frontier.committed(frontier);
                Ok(commit)
            }
            Err(e) => {
                discard_after_failure(&mut conn);
                Err(e)
            }
        }
    }

    async fn append_in(
        conn: &mut PgConnection,
        all_records: &[NewRecord],
        consent_uses: &[usize],
        events: &crate::consent::EventCounters,
        tree: bool,
        cached: Option<crate::merkle::Frontier>,
    ) -> Result<(BatchCommit, Option<crate::merkle::Frontier>), StoreError> {
        let mut tx = conn.begin().await?;
        // One sequencer at a time across replicas; the lock is released by
        // the commit. The last index and the tree's right edge are read after
        // it, since another replica may have appended meanwhile.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SEQUENCER_LOCK)
            .execute(&mut *tx)
            .await?;
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
            if !crate::consent::postgres::take_use(&mut tx, &mut tally, id, time).await? {
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
                crate::tlog::postgres::extend_tree(&mut tx, first_index, time, records, cached)
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
        let mut q = QueryBuilder::<Postgres>::new("SELECT ");
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
            "SELECT {RECORD_COLUMNS} FROM audit_records WHERE transfer_id = $1 ORDER BY idx"
        );
        let rows: Vec<RecordRow> = sqlx::query_as(&sql)
            .bind(transfer_id)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(AuditRecord::try_from).collect()
    }

    // Consents: see consent/postgres.rs.
}

/// Closes a pooled connection whose write transaction failed instead of
/// returning it to the pool: its session state is unknown after an error.
pub(crate) fn discard_after_failure(conn: &mut PoolConnection<Postgres>) {
    conn.close_on_drop();
}

fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Db(format!("{n} is too large to store")))
}

#[cfg(test)]
mod tls_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn options(url: &str) -> PgConnectOptions {
        url.parse().unwrap()
    }

    #[test]
    fn unset_tls_is_plain_only_to_this_machine() {
        for local in [
            "postgres://u:p@127.0.0.1:5432/db",
            "postgres://u:p@127.8.9.10/db",
            "postgres://u:p@localhost/db",
            "postgres://u:p@[::1]:5432/db",
            "postgres://u:p@db.example/db?host=/var/run/postgresql",
        ] {
            let o = with_tls(options(local), &PgTls::Unset).unwrap();
            assert!(matches!(o.get_ssl_mode(), PgSslMode::Disable), "{local}");
        }
        for remote in [
            "postgres://u:p@db.example:5432/db",
            "postgres://u:p@10.0.0.5/db",
            "postgres://u:p@[2001:db8::1]/db",
            // libpq's default would try TLS without checking the server.
            "postgres://u:p@db.example/db?sslmode=prefer",
            "postgres://u:p@db.example/db?sslmode=require",
            "postgres://u:p@db.example/db?sslmode=verify-ca",
        ] {
            let e = with_tls(options(remote), &PgTls::Unset).unwrap_err();
            assert!(
                matches!(&e, StoreError::Insecure(m) if m.contains("[store] tls is not set") && !m.contains(":p@")),
                "{remote}: {e:?}"
            );
        }
        // The URL's own verify-full is honoured.
        let o = with_tls(
            options("postgres://u:p@db.example/db?sslmode=verify-full&sslrootcert=/ca.pem"),
            &PgTls::Unset,
        )
        .unwrap();
        assert!(matches!(o.get_ssl_mode(), PgSslMode::VerifyFull));
    }

    #[test]
    fn configured_tls_overrides_the_url() {
        let verify = PgTls::VerifyFull {
            ca_file: "/ca.pem".into(),
            client: None,
        };
        let o = with_tls(
            options("postgres://u:p@db.example/db?sslmode=disable"),
            &verify,
        )
        .unwrap();
        assert!(matches!(o.get_ssl_mode(), PgSslMode::VerifyFull));
        let o = with_tls(
            options("postgres://u:p@db.example/db?sslmode=verify-full"),
            &PgTls::Disable,
        )
        .unwrap();
        assert!(matches!(o.get_ssl_mode(), PgSslMode::Disable));
    }
}
