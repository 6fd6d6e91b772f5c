//! The PostgreSQL backend: the same schema and the same text formats as
//! SQLite (times are RFC 3339 text, so leaf bytes agree), shared by any number
//! of gateway replicas. Its pool (TLS included), its migrations, and its side
//! of each named difference of the dialect (see `store.rs`); every query is
//! in `store/`. Writers that must not interleave (the audit sequencer, the
//! checkpoint signer) take PostgreSQL advisory locks.

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::{Connection, PgConnection, Postgres, Transaction};
use tokio::sync::Mutex;

use crate::config::{PgTls, StoreConfig};
use crate::error::StoreError;
use crate::merkle::{Hash, NodeId};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// `pg_advisory_xact_lock` key of the audit sequencer: one batch commits at a
/// time across all replicas, so indexes are dense in commit order.
const SEQUENCER_LOCK: i64 = 0x4272_7501;
/// `pg_try_advisory_lock` key (session level) of the checkpoint signer.
const CHECKPOINTER_LOCK: i64 = 0x4272_7502;

#[derive(Clone, Debug)]
pub(crate) struct PgStore {
    pub(crate) pool: PgPool,
    /// The connection holding the checkpoint signer's session lock, if this
    /// process holds it: the lock lives exactly as long as that session.
    checkpointer: Arc<Mutex<Option<PoolConnection<Postgres>>>>,
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
            checkpointer: Arc::new(Mutex::new(None)),
        })
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        // Several replicas may start at once: sqlx's migrator takes its own
        // advisory lock, so one applies and the others find it done.
        Ok(MIGRATOR.run(&self.pool).await?)
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

    /// Begin a write: a plain `BEGIN`; what must not interleave takes a lock
    /// inside it (the row, `FOR UPDATE`, or the sequencer).
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// Begin a write of work derived from the log (see
    /// `Store::begin_derived`): its commit does not wait for the WAL flush.
    /// `SET LOCAL` ends with the transaction, so the pooled connection goes
    /// back as durable as it came; both statements go in one round trip.
    pub(crate) async fn begin_derived(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self
            .pool
            .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
            .await?)
    }

    /// The audit appender's connection: a pooled one (replicas share nothing
    /// a connection of its own would keep warm).
    pub(crate) async fn appender(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// The heartbeat: `sql` alone (autocommit), one round trip.
    pub(crate) async fn heartbeat(&self, sql: &str, at: String) -> Result<(), StoreError> {
        sqlx::query(sql).bind(at).execute(&self.pool).await?;
        Ok(())
    }
}

/// See `Conn::json_rows`.
pub(crate) fn json_rows(select: &str, names: &str) -> String {
    format!("SELECT COALESCE(json_agg(json_build_array({names})), '[]')::text FROM ({select}) AS w")
}

/// Take the sequencer: one batch at a time across replicas; the lock is
/// released by the commit. The last index and the tree's right edge are read
/// after it, since another replica may have appended meanwhile.
pub(crate) async fn take_sequencer(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SEQUENCER_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

/// Insert a batch of nodes in one statement (three arrays the server
/// unnests), so a batch's nodes cost one round trip. The key is the tree
/// size at which a node completes (migration 0014), so the batch's index
/// entries are contiguous.
pub(crate) async fn insert_nodes(
    conn: &mut PgConnection,
    nodes: &[(NodeId, Hash)],
) -> Result<(), StoreError> {
    const SQL: &str = "INSERT INTO tree_nodes (size, level, hash) \
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bytea[])";
    let sizes = nodes
        .iter()
        .map(|(id, _)| {
            i64::try_from(id.end()).map_err(|_| {
                StoreError::Db(format!("node size {} is too large to store", id.end()))
            })
        })
        .collect::<Result<Vec<i64>, _>>()?;
    let levels: Vec<i64> = nodes.iter().map(|(id, _)| i64::from(id.level)).collect();
    let hashes: Vec<Vec<u8>> = nodes.iter().map(|(_, h)| h.to_vec()).collect();
    sqlx::query(SQL)
        .bind(sizes)
        .bind(levels)
        .bind(hashes)
        .execute(conn)
        .await?;
    Ok(())
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
