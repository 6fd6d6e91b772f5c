//! How to open the store: what the gateway's `[store]` section says.

use std::path::PathBuf;
use std::time::Duration;

/// How to connect. The defaults suit the gateway; tests shorten the timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// How long a statement waits for a lock another connection holds
    /// (SQLite `busy_timeout`) before the operation fails as unavailable.
    pub busy_timeout: Duration,
    /// How long to wait for a free pooled connection.
    pub acquire_timeout: Duration,
    pub max_connections: u32,
    /// Whether a commit waits for the disk (SQLite `synchronous=FULL`,
    /// PostgreSQL `synchronous_commit=on`). Only benchmarks turn it off, to
    /// price durability; a record committed without it is not evidence.
    pub synchronous: bool,
    /// Whether appends grow the Merkle tree. Only benchmarks turn it off, to
    /// price the tree; such a log cannot be verified.
    pub tree: bool,
    /// TLS to PostgreSQL (ignored for SQLite).
    pub postgres_tls: PgTls,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            max_connections: 8,
            synchronous: true,
            tree: true,
            postgres_tls: PgTls::Unset,
        }
    }
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
