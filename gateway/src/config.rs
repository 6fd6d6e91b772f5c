//! `bru.toml`: parsing, validation and the secrets it points at.
//!
//! Paths in the file are relative to the file's own directory. Secrets are read
//! from files or the environment, never from the file itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

/// One problem with the configuration, printed as `file:line: message`.
#[derive(Debug, Clone, Error)]
#[error("{file}:{line}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub policy_file: PathBuf,
    pub public_url: String,
    pub allow_synthetic_ids: bool,
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub keys: KeysConfig,
    pub issuers: Vec<IssuerConfig>,
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// `[registry]`: the registry of parental responsibility (SPEC 9.3), an upstream's keys.
    pub registry: Option<UpstreamConfig>,
    pub catalog: CatalogConfig,
    /// `[portal]`: the citizen portal's login and sessions; no portal without it.
    pub portal: Option<portal::PortalConfig>,
    /// `[[witness]]`: who cosigns the checkpoints (SPEC section 11).
    pub witnesses: Vec<witness::WitnessConfig>,
    /// `[bench] stage`: how much of the pipeline runs (benchmark builds only).
    #[cfg(feature = "bench")]
    pub bench_stage: crate::pipeline::Stage,
    /// `[bench] followers = ["indexer", "snoop", "notify"]`: which of the
    /// log's followers run (benchmark builds only; all by default), so the
    /// ladder can tell their costs from the appender's.
    #[cfg(feature = "bench")]
    pub bench_followers: Vec<String>,
    /// `[altinn]`: Altinn's consent events feed and decision point (SPEC 9).
    pub altinn: altinn_section::AltinnConfig,
    /// `[notify]`: the operator's notification service (SPEC 10).
    pub notify: notify_section::NotifyConfig,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub ops_listen: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    pub header_read_timeout: Duration,
    /// Headers in one request; more → 431 `headers_too_large`.
    pub max_headers: usize,
    /// Longest wait between two reads of a request body (nginx's
    /// `client_body_timeout`); then 408, or the connection closes.
    pub body_read_timeout: Duration,
    /// An HTTP/2 connection with no request in flight for this long is closed
    /// (GOAWAY); HTTP/1.1's idle connections end at `header_read_timeout`.
    pub http2_idle_timeout: Duration,
    /// Open connections from one client address; more are closed at accept.
    pub max_connections_per_address: usize,
    /// Calls that fail authentication, per client address (a token bucket).
    pub unauthenticated_rate_limit: policy::RateLimit,
    pub shutdown_grace: Duration,
    /// `Strict-Transport-Security` on every answer of the public listener.
    pub hsts: http::HeaderValue,
    /// How the public listener's connections are served (`[server] runtime`).
    pub runtime: RuntimeMode,
    /// Threads of the per-core runtime (`[server] workers`); by default
    /// the CPUs this process may use (taskset and cgroup limits included).
    pub workers: Option<std::num::NonZeroUsize>,
}

/// `[server] runtime`: who serves the public listener's connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RuntimeMode {
    /// One work-stealing tokio runtime for everything.
    MultiThread,
    /// The default (issue 21: ahead of `MultiThread` in every cell measured
    /// side by side, bench/README.md): one thread per CPU, each with a
    /// current-thread runtime and its own SO_REUSEPORT listener socket; a
    /// connection lives and is served on the thread that accepted it. The
    /// audit writer runs on the first worker; the rest of Bru (the store's
    /// checkpoints, the ops listener, background tasks) on the main runtime.
    #[default]
    PerCore,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: Secret,
    pub audit_write_timeout: Duration,
    /// `[store] audit = "noop"`: write no audit records. Only builds with the
    /// `bench` feature accept it, for measuring the log's cost.
    pub audit_noop: bool,
    /// False only with `[store] audit = "nosync"` (benchmark builds): records
    /// are committed without waiting for the disk (and without the tree).
    pub audit_synchronous: bool,
    /// False only with `[store] audit = "no-tree"` or `"nosync"` (benchmark
    /// builds): records without the Merkle tree.
    pub audit_tree: bool,
    /// `[store] tls`, `ca_file`, `client_cert_file`, `client_key_file`.
    pub tls: consent_db::PgTls,
}

#[derive(Debug, Clone)]
pub struct KeysConfig {
    pub pseudonym_key: Secret,
    pub assertion_key: Secret,
    /// `assertion_ed25519_key_file`: the PKCS#8 Ed25519 key for providers
    /// with `assertion = "eddsa"`; required only when one has it.
    pub assertion_ed25519_key: Option<Secret>,
    pub checkpoint_key: Secret,
}

/// How Bru signs a provider's `Bru-Assertion` (SPEC section 12).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AssertionConfig {
    #[default]
    Es256,
    EdDsa,
    /// The secret shared with this provider only, read once when the config
    /// is loaded (so `bru check` sees its length).
    Hs256(SharedSecret),
}

/// The bytes of a secret shared with one provider; `Debug` shows none of them.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedSecret(Vec<u8>);

impl SharedSecret {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedSecret({} bytes)", self.0.len())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssuerKind {
    Maskinporten,
    Idporten,
}

#[derive(Debug, Clone)]
pub struct IssuerConfig {
    pub name: String,
    pub kind: IssuerKind,
    pub issuer: String,
    pub jwks_url: String,
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    pub audience: Option<String>,
    pub leeway: Duration,
    pub max_token_bytes: usize,
    pub jwks_refresh_min_interval: Duration,
    /// Extra CA to trust when fetching the JWKS (e.g. the demo CA).
    pub ca_file: Option<PathBuf>,
    pub line: usize,
}

impl IssuerConfig {
    /// Demo issuers live on Bru's own `/demo/` routes; `bru serve` refuses them.
    pub fn is_demo(&self) -> bool {
        self.issuer.contains("/demo/maskinporten") || self.issuer.contains("/demo/idporten")
    }
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub url: http::Uri,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_response_bytes: u64,
    pub credentials: CredentialsConfig,
    /// `assertion`: how this provider's `Bru-Assertion` is signed.
    pub assertion: AssertionConfig,
    /// Concurrency limit, retries and circuit breaker.
    pub resilience: connectors::ResilienceConfig,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub enum CredentialsConfig {
    None,
    Bearer(Secret),
    Header {
        name: String,
        value: Secret,
    },
    /// Mutual TLS: a client certificate chain and key; only `ca_file` is trusted for the provider.
    Mtls {
        cert: Secret,
        key: Secret,
        ca_file: PathBuf,
    },
    /// A JWT-bearer grant (RFC 7523) at a Maskinporten-style token endpoint.
    OAuth2 {
        settings: connectors::OAuth2Settings,
        key: Secret,
    },
}

/// `[catalog]`: what `GET /catalog/v1/datasets` says beyond the policy.
#[derive(Debug, Clone, Default)]
pub struct CatalogConfig {
    /// The organisation that runs this Bru and publishes the catalog.
    pub publisher: Option<policy::OrgNumber>,
    pub contact_email: Option<String>,
    pub contact_url: Option<String>,
    /// EU data themes (`GOVE`, `HEAL`, …) per dataset `provider/dataset`.
    pub themes: BTreeMap<String, Vec<String>>,
    /// For datasets not in `themes`; `["GOVE"]` unless set.
    pub default_themes: Vec<String>,
}

/// The EU data-theme vocabulary (DCAT-AP's `dcat:theme` for datasets).
pub const DATA_THEMES: [&str; 13] = [
    "AGRI", "ECON", "EDUC", "ENER", "ENVI", "GOVE", "HEAL", "INTR", "JUST", "REGI", "SOCI", "TECH",
    "TRAN",
];

/// Where a secret lives: a file (relative to the config) or an environment variable.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    File(PathBuf),
    Env(String),
    /// Only for values that are not secret in themselves (e.g. a SQLite path).
    Plain(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::File(p) => write!(f, "file {}", p.display()),
            Secret::Env(v) => write!(f, "env {v}"),
            Secret::Plain(_) => f.write_str("inline value"),
        }
    }
}

impl Secret {
    pub fn read_bytes(&self) -> Result<Vec<u8>, String> {
        match self {
            Secret::File(p) => {
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            }
            Secret::Env(v) => std::env::var(v)
                .map(String::into_bytes)
                .map_err(|_| format!("environment variable {v} is not set")),
            Secret::Plain(s) => Ok(s.clone().into_bytes()),
        }
    }

    pub fn read_string(&self) -> Result<String, String> {
        let bytes = self.read_bytes()?;
        let s = String::from_utf8(bytes).map_err(|_| format!("{self:?} is not UTF-8"))?;
        Ok(s.trim().to_owned())
    }
}

// ---- the file as written -------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    policy: Spanned<String>,
    public_url: Spanned<String>,
    #[serde(default)]
    allow_synthetic_ids: bool,
    server: RawServer,
    store: Spanned<RawStore>,
    keys: RawKeys,
    #[serde(default)]
    issuer: Vec<Spanned<RawIssuer>>,
    #[serde(default)]
    upstream: BTreeMap<String, Spanned<RawUpstream>>,
    #[serde(default)]
    registry: Option<Spanned<RawUpstream>>,
    #[serde(default)]
    catalog: Option<Spanned<RawCatalog>>,
    #[serde(default)]
    portal: Option<Spanned<portal::RawPortalConfig>>,
    /// Benchmark builds only; refused otherwise.
    #[serde(default)]
    bench: Option<Spanned<RawBench>>,
    #[serde(default)]
    altinn: Option<Spanned<altinn_section::RawAltinn>>,
    #[serde(default)]
    witness: Vec<Spanned<witness::RawWitness>>,
    #[serde(default)]
    notify: Option<Spanned<notify_section::RawNotify>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBench {
    // Read only in benchmark builds; a default build refuses the table.
    #[cfg_attr(not(feature = "bench"), allow(dead_code))]
    stage: Option<Spanned<String>>,
    #[cfg_attr(not(feature = "bench"), allow(dead_code))]
    followers: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    publisher: Option<String>,
    contact_email: Option<String>,
    contact_url: Option<String>,
    #[serde(default)]
    themes: BTreeMap<String, Vec<String>>,
    default_themes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Spanned<String>,
    ops_listen: Spanned<String>,
    tls_cert: String,
    tls_key: String,
    #[serde(default = "default_max_header_bytes")]
    max_header_bytes: usize,
    #[serde(default = "default_max_body_bytes")]
    max_body_bytes: u64,
    #[serde(default = "default_header_read_timeout_ms")]
    header_read_timeout_ms: u64,
    #[serde(default = "default_max_headers")]
    max_headers: usize,
    #[serde(default = "default_body_read_timeout_ms")]
    body_read_timeout_ms: u64,
    #[serde(default = "default_http2_idle_timeout_ms")]
    http2_idle_timeout_ms: u64,
    #[serde(default = "default_max_connections_per_address")]
    max_connections_per_address: usize,
    #[serde(default = "default_unauthenticated_per_second")]
    unauthenticated_per_second: u32,
    #[serde(default = "default_unauthenticated_burst")]
    unauthenticated_burst: u32,
    #[serde(default = "default_shutdown_grace_ms")]
    shutdown_grace_ms: u64,
    #[serde(default)]
    hsts_include_subdomains: bool,
    runtime: Option<Spanned<String>>,
    workers: Option<Spanned<usize>>,
}

fn default_max_header_bytes() -> usize {
    16 * 1024
}
fn default_max_body_bytes() -> u64 {
    10 * 1024 * 1024
}
fn default_unauthenticated_per_second() -> u32 {
    100
}
fn default_unauthenticated_burst() -> u32 {
    200
}
fn default_header_read_timeout_ms() -> u64 {
    10_000
}
fn default_max_headers() -> usize {
    100
}
/// nginx's `client_body_timeout`.
fn default_body_read_timeout_ms() -> u64 {
    60_000
}
/// nginx's `keepalive_timeout` for HTTP/2 (300 s since 1.19.7), the same as
/// the bench's idle-connection runs expect.
fn default_http2_idle_timeout_ms() -> u64 {
    300_000
}
/// Enough for a busy NAT or an agency's egress proxy; far below the
/// listener's 20,000, so one address cannot fill it.
fn default_max_connections_per_address() -> usize {
    256
}
fn default_shutdown_grace_ms() -> u64 {
    10_000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<String>,
    url_file: Option<String>,
    url_env: Option<String>,
    #[serde(default = "default_audit_write_timeout_ms")]
    audit_write_timeout_ms: Spanned<u64>,
    /// "durable" (the default) or, in benchmark builds only, "noop".
    audit: Option<Spanned<String>>,
    /// TLS to PostgreSQL: "verify-full" or "disable" (see docs/config.md).
    tls: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    client_cert_file: Option<Spanned<String>>,
    client_key_file: Option<Spanned<String>>,
}

/// `[store] tls` and its files. Only `verify-full` and `disable` exist: the
/// libpq modes between them (`prefer`, `require`, `verify-ca`) encrypt
/// without checking whom to, which is no protection against a
/// man in the middle. The files must be there when `bru check` runs.
fn store_tls(cx: &mut Ctx<'_>, store: &RawStore) -> consent_db::PgTls {
    let file = |cx: &mut Ctx<'_>, key: &str, f: &Option<Spanned<String>>| {
        let f = f.as_ref()?;
        let path = cx.path(f.get_ref());
        if let Err(e) = std::fs::File::open(&path).and_then(|h| h.metadata()) {
            cx.error(
                f.span().start,
                format!("store.{key}: cannot read {}: {e}", path.display()),
            );
        } else if !path.is_file() {
            cx.error(
                f.span().start,
                format!("store.{key}: {} is not a file", path.display()),
            );
        }
        Some((path, f.span().start))
    };
    let ca = file(cx, "ca_file", &store.ca_file);
    let cert = file(cx, "client_cert_file", &store.client_cert_file);
    let key = file(cx, "client_key_file", &store.client_key_file);
    let client = match (cert, key) {
        (Some((cert_file, _)), Some((key_file, _))) => Some(consent_db::ClientCertificate {
            cert_file,
            key_file,
        }),
        (None, None) => None,
        (Some((_, at)), None) | (None, Some((_, at))) => {
            cx.error(
                at,
                "store: client_cert_file and client_key_file go together",
            );
            None
        }
    };
    let Some(mode) = store.tls.as_ref() else {
        if let Some(at) = ca
            .as_ref()
            .map(|c| c.1)
            .or(store.client_cert_file.as_ref().map(|c| c.span().start))
        {
            cx.error(
                at,
                "store: ca_file and client certificates need tls = \"verify-full\"",
            );
        }
        return consent_db::PgTls::Unset;
    };
    let at = mode.span().start;
    // `url` itself can only be SQLite (a PostgreSQL URL holds a password).
    if store.url.is_some() {
        cx.error(at, "store.tls applies to PostgreSQL; this store is SQLite");
    }
    match mode.get_ref().as_str() {
        "verify-full" => match ca {
            Some((ca_file, _)) => consent_db::PgTls::VerifyFull { ca_file, client },
            None => {
                cx.error(
                    at,
                    "store.tls = \"verify-full\" needs ca_file: the CA that signed the server's certificate",
                );
                consent_db::PgTls::Unset
            }
        },
        "disable" => {
            if let Some((_, at)) = ca {
                cx.error(at, "store.ca_file is not used with tls = \"disable\"");
            } else if client.is_some() {
                cx.error(
                    at,
                    "store: client certificates are not used with tls = \"disable\"",
                );
            }
            consent_db::PgTls::Disable
        }
        weak @ ("allow" | "prefer" | "require" | "verify-ca") => {
            cx.error(
                at,
                format!(
                    "store.tls = \"{weak}\" does not check the server's name; use \"verify-full\" with ca_file"
                ),
            );
            consent_db::PgTls::Unset
        }
        _ => {
            cx.error(at, "store.tls must be \"verify-full\" or \"disable\"");
            consent_db::PgTls::Unset
        }
    }
}

fn default_audit_write_timeout_ms() -> Spanned<u64> {
    Spanned::new(0..0, 2000)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    pseudonym_key_file: Option<String>,
    pseudonym_key_env: Option<String>,
    assertion_key_file: Option<String>,
    assertion_key_env: Option<String>,
    assertion_ed25519_key_file: Option<String>,
    assertion_ed25519_key_env: Option<String>,
    checkpoint_key_file: Option<String>,
    checkpoint_key_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    name: String,
    kind: IssuerKind,
    issuer: String,
    jwks_url: String,
    #[serde(default)]
    algorithms: Vec<String>,
    audience: Option<String>,
    #[serde(default = "default_leeway_s")]
    leeway_s: u64,
    #[serde(default = "default_max_token_bytes")]
    max_token_bytes: usize,
    #[serde(default = "default_jwks_refresh_ms")]
    jwks_refresh_min_interval_ms: u64,
    ca_file: Option<String>,
}

fn default_leeway_s() -> u64 {
    30
}
fn default_max_token_bytes() -> usize {
    8192
}
fn default_jwks_refresh_ms() -> u64 {
    10_000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    url: String,
    #[serde(default = "default_connect_timeout_ms")]
    connect_timeout_ms: u64,
    #[serde(default = "default_request_timeout_ms")]
    request_timeout_ms: u64,
    #[serde(default = "default_max_response_bytes")]
    max_response_bytes: u64,
    #[serde(default)]
    credentials: RawCredentials,
    /// "es256" (the default) | "eddsa" | "hs256" (SPEC section 12).
    assertion: Option<String>,
    assertion_secret_file: Option<String>,
    assertion_secret_env: Option<String>,
    #[serde(default)]
    max_concurrency: usize,
    #[serde(default)]
    retries: u32,
    #[serde(default = "default_retry_budget_percent")]
    retry_budget_percent: u32,
    #[serde(default = "default_breaker_failures")]
    breaker_failures: u32,
    #[serde(default = "default_breaker_open_ms")]
    breaker_open_ms: u64,
}

fn default_retry_budget_percent() -> u32 {
    10
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open_ms() -> u64 {
    10_000
}

fn default_connect_timeout_ms() -> u64 {
    2000
}
fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_max_response_bytes() -> u64 {
    100 * 1024 * 1024
}

#[derive(Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum RawCredentials {
    #[default]
    None,
    Bearer {
        token_file: Option<String>,
        token_env: Option<String>,
    },
    Header {
        name: String,
        value_file: Option<String>,
        value_env: Option<String>,
    },
    Mtls {
        cert_file: Option<String>,
        cert_env: Option<String>,
        key_file: Option<String>,
        key_env: Option<String>,
        ca_file: String,
    },
    Oauth2 {
        token_url: String,
        audience: String,
        client_id: String,
        scope: String,
        resource: Option<String>,
        key_file: Option<String>,
        key_env: Option<String>,
        kid: Option<String>,
        #[serde(default = "default_grant_algorithm")]
        algorithm: String,
    },
}

fn default_grant_algorithm() -> String {
    "RS256".to_owned()
}

// ---- loading ---------------------------------------------------------------

struct Ctx<'a> {
    file: String,
    text: &'a str,
    dir: PathBuf,
    errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    }

    fn error(&mut self, offset: usize, message: impl Into<String>) {
        let line = self.line_of(offset);
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            message: message.into(),
        });
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }

    fn secret(
        &mut self,
        at: usize,
        what: &str,
        file: Option<&String>,
        env: Option<&String>,
    ) -> Option<Secret> {
        match (file, env) {
            (Some(f), None) => Some(Secret::File(self.path(f))),
            (None, Some(e)) => Some(Secret::Env(e.clone())),
            (Some(_), Some(_)) => {
                self.error(
                    at,
                    format!("{what}: give either {what}_file or {what}_env, not both"),
                );
                None
            }
            (None, None) => {
                self.error(at, format!("{what}: {what}_file or {what}_env is required"));
                None
            }
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                file: file.clone(),
                line: 0,
                message: format!("cannot read the config: {e}"),
            }]
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, Vec<ConfigError>> {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let mut cx = Ctx {
            file: path.display().to_string(),
            text,
            dir,
            errors: Vec::new(),
        };
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let at = e.span().map(|s| s.start).unwrap_or(0);
                cx.error(at, e.message().to_owned());
                return Err(cx.errors);
            }
        };

        let listen = parse_addr(&mut cx, &raw.server.listen);
        let ops_listen = parse_addr(&mut cx, &raw.server.ops_listen);
        if raw.server.unauthenticated_per_second == 0 || raw.server.unauthenticated_burst == 0 {
            cx.error(
                0,
                "server.unauthenticated_per_second and unauthenticated_burst must be positive",
            );
        }
        if raw.server.max_headers < 16 {
            cx.error(0, "server.max_headers must be at least 16");
        }
        if raw.server.body_read_timeout_ms == 0
            || raw.server.http2_idle_timeout_ms == 0
            || raw.server.max_connections_per_address == 0
        {
            cx.error(
                0,
                "server.body_read_timeout_ms, http2_idle_timeout_ms and max_connections_per_address must be positive",
            );
        }
        let runtime = match raw
            .server
            .runtime
            .as_ref()
            .map(|r| (r.get_ref().as_str(), r.span().start))
        {
            None | Some(("per-core", _)) => RuntimeMode::PerCore,
            Some(("multi-thread", _)) => RuntimeMode::MultiThread,
            Some((_, at)) => {
                cx.error(
                    at,
                    "server.runtime must be \"per-core\" or \"multi-thread\"",
                );
                RuntimeMode::PerCore
            }
        };
        let workers = match raw.server.workers.as_ref() {
            None => None,
            Some(w) => {
                let n = std::num::NonZeroUsize::new(*w.get_ref()).filter(|n| n.get() <= 1024);
                if n.is_none() {
                    cx.error(w.span().start, "server.workers must be 1..=1024");
                }
                n
            }
        };
        if workers.is_some() && runtime != RuntimeMode::PerCore {
            cx.error(
                0,
                "server.workers applies only to runtime = \"per-core\" (the default); \
                 the multi-thread runtime uses every CPU Bru may use",
            );
        }
        if raw.server.max_header_bytes < 1024 {
            cx.error(0, "server.max_header_bytes must be at least 1024");
        }
        if !raw.public_url.get_ref().starts_with("https://")
            && !raw.public_url.get_ref().starts_with("http://")
        {
            cx.error(
                raw.public_url.span().start,
                "public_url must be an http(s) URL",
            );
        }

        let store_url = match (
            &raw.store.get_ref().url,
            &raw.store.get_ref().url_file,
            &raw.store.get_ref().url_env,
        ) {
            (Some(u), None, None) => {
                if u.starts_with("postgres://") || u.starts_with("postgresql://") {
                    cx.error(raw.store.span().start, "store.url: a PostgreSQL URL holds a password; give it with url_file or url_env");
                }
                Some(Secret::Plain(resolve_sqlite_url(&cx.dir, u)))
            }
            (None, Some(f), None) => Some(Secret::File(cx.path(f))),
            (None, None, Some(e)) => Some(Secret::Env(e.clone())),
            _ => {
                cx.error(
                    raw.store.span().start,
                    "store: give exactly one of url, url_file, url_env",
                );
                None
            }
        };
        let store_tls = store_tls(&mut cx, raw.store.get_ref());
        let audit_ms = *raw.store.get_ref().audit_write_timeout_ms.get_ref();
        if audit_ms == 0 || audit_ms > 60_000 {
            cx.error(
                raw.store.get_ref().audit_write_timeout_ms.span().start,
                "store.audit_write_timeout_ms must be 1..=60000",
            );
        }

        // (noop, synchronous, tree)
        let (audit_noop, audit_synchronous, audit_tree) = match raw
            .store
            .get_ref()
            .audit
            .as_ref()
            .map(|a| (a.get_ref().as_str(), a.span().start))
        {
            None | Some(("durable", _)) => (false, true, true),
            Some(("noop", _)) if cfg!(feature = "bench") => (true, true, true),
            // Cumulative rungs: nosync has no tree either; no-tree is durable.
            Some(("nosync", _)) if cfg!(feature = "bench") => (false, false, false),
            Some(("no-tree", _)) if cfg!(feature = "bench") => (false, true, false),
            Some((mode @ ("noop" | "nosync" | "no-tree"), at)) => {
                cx.error(
                    at,
                    format!(
                        "store.audit = \"{mode}\" exists only in benchmark builds (feature bench)"
                    ),
                );
                (false, true, true)
            }
            Some((_, at)) => {
                cx.error(at, "store.audit must be \"durable\"");
                (false, true, true)
            }
        };
        #[cfg(feature = "bench")]
        let bench_stage = match raw.bench.as_ref().and_then(|b| b.get_ref().stage.as_ref()) {
            None => crate::pipeline::Stage::Full,
            Some(stage) => crate::pipeline::Stage::parse(stage.get_ref()).unwrap_or_else(|| {
                cx.error(
                    stage.span().start,
                    "bench.stage must be \"passthrough\", \"token\", \"policy\" or \"full\"",
                );
                crate::pipeline::Stage::Full
            }),
        };
        #[cfg(feature = "bench")]
        let bench_followers = raw
            .bench
            .as_ref()
            .and_then(|b| b.get_ref().followers.clone())
            .unwrap_or_else(|| ["indexer", "snoop", "notify"].map(String::from).to_vec());
        #[cfg(not(feature = "bench"))]
        if let Some(bench) = &raw.bench {
            cx.error(
                bench.span().start,
                "[bench] exists only in benchmark builds (feature bench)",
            );
        }

        let k = &raw.keys;
        let pseudonym_key = cx.secret(
            0,
            "pseudonym_key",
            k.pseudonym_key_file.as_ref(),
            k.pseudonym_key_env.as_ref(),
        );
        let assertion_key = cx.secret(
            0,
            "assertion_key",
            k.assertion_key_file.as_ref(),
            k.assertion_key_env.as_ref(),
        );
        let assertion_ed25519_key =
            match (&k.assertion_ed25519_key_file, &k.assertion_ed25519_key_env) {
                (None, None) => None,
                (file, env) => cx.secret(0, "assertion_ed25519_key", file.as_ref(), env.as_ref()),
            };
        let checkpoint_key = cx.secret(
            0,
            "checkpoint_key",
            k.checkpoint_key_file.as_ref(),
            k.checkpoint_key_env.as_ref(),
        );

        let mut issuers = Vec::new();
        for spanned in &raw.issuer {
            let at = spanned.span().start;
            let line = cx.line_of(at);
            let r = spanned.get_ref();
            let names = if r.algorithms.is_empty() {
                vec!["RS256".to_owned()]
            } else {
                r.algorithms.clone()
            };
            let mut algorithms = Vec::new();
            for name in &names {
                match parse_algorithm(name) {
                    Some(alg) => algorithms.push(alg),
                    None => cx.error(
                        at,
                        format!(
                            "issuer {}: algorithm {name:?} is not allowed (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)",
                            r.name
                        ),
                    ),
                }
            }
            if r.leeway_s > 300 {
                cx.error(
                    at,
                    format!("issuer {}: leeway_s must be at most 300", r.name),
                );
            }
            if r.max_token_bytes < 512 || r.max_token_bytes > 65_536 {
                cx.error(
                    at,
                    format!("issuer {}: max_token_bytes must be 512..=65536", r.name),
                );
            }
            if !(r.jwks_url.starts_with("https://") || r.jwks_url.starts_with("http://")) {
                cx.error(
                    at,
                    format!("issuer {}: jwks_url must be an http(s) URL", r.name),
                );
            }
            // The name labels the issuer's metrics: one series per issuer.
            if issuers.iter().any(|i: &IssuerConfig| i.name == r.name) {
                cx.error(
                    at,
                    format!("issuer {}: the name is used by another issuer", r.name),
                );
            }
            if issuers.iter().any(|i: &IssuerConfig| i.issuer == r.issuer) {
                cx.error(
                    at,
                    format!("issuer {}: issuer {:?} is listed twice", r.name, r.issuer),
                );
            }
            issuers.push(IssuerConfig {
                name: r.name.clone(),
                kind: r.kind,
                issuer: r.issuer.clone(),
                jwks_url: r.jwks_url.clone(),
                algorithms,
                audience: r.audience.clone(),
                leeway: Duration::from_secs(r.leeway_s),
                max_token_bytes: r.max_token_bytes,
                jwks_refresh_min_interval: Duration::from_millis(r.jwks_refresh_min_interval_ms),
                ca_file: r.ca_file.as_deref().map(|p| cx.path(p)),
                line,
            });
        }
        if !issuers.iter().any(|i| i.kind == IssuerKind::Maskinporten) {
            cx.error(
                0,
                "at least one [[issuer]] of kind \"maskinporten\" is required",
            );
        }

        let mut upstreams = BTreeMap::new();
        let mut hs256_secrets: Vec<(String, SharedSecret)> = Vec::new();
        // `[registry]` is checked as an upstream is (SPEC 9.3), under a name no provider can have.
        let registry_name = crate::representation::REGISTRY.to_owned();
        let all = raw
            .upstream
            .iter()
            .chain(raw.registry.iter().map(|r| (&registry_name, r)));
        for (name, spanned) in all {
            let at = spanned.span().start;
            let line = cx.line_of(at);
            let r = spanned.get_ref();
            let url = match r.url.parse::<http::Uri>() {
                Ok(u)
                    if matches!(u.scheme_str(), Some("http" | "https"))
                        && u.authority().is_some() =>
                {
                    Some(u)
                }
                _ => {
                    cx.error(
                        at,
                        format!(
                            "upstream {name}: url {:?} is not an absolute http(s) URL",
                            r.url
                        ),
                    );
                    None
                }
            };
            let credentials = match &r.credentials {
                RawCredentials::None => Some(CredentialsConfig::None),
                RawCredentials::Bearer {
                    token_file,
                    token_env,
                } => cx
                    .secret(at, "token", token_file.as_ref(), token_env.as_ref())
                    .map(CredentialsConfig::Bearer),
                RawCredentials::Header {
                    name: header,
                    value_file,
                    value_env,
                } => {
                    if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                        cx.error(
                            at,
                            format!("upstream {name}: {header:?} is not a valid header name"),
                        );
                    }
                    cx.secret(at, "value", value_file.as_ref(), value_env.as_ref())
                        .map(|value| CredentialsConfig::Header {
                            name: header.clone(),
                            value,
                        })
                }
                RawCredentials::Mtls {
                    cert_file,
                    cert_env,
                    key_file,
                    key_env,
                    ca_file,
                } => {
                    let cert = cx.secret(at, "cert", cert_file.as_ref(), cert_env.as_ref());
                    let key = cx.secret(at, "key", key_file.as_ref(), key_env.as_ref());
                    if url
                        .as_ref()
                        .is_some_and(|u| u.scheme_str() != Some("https"))
                    {
                        cx.error(
                            at,
                            format!("upstream {name}: mtls credentials need an https:// url"),
                        );
                    }
                    let ca_file = cx.path(ca_file);
                    cert.zip(key)
                        .map(|(cert, key)| CredentialsConfig::Mtls { cert, key, ca_file })
                }
                RawCredentials::Oauth2 {
                    token_url,
                    audience,
                    client_id,
                    scope,
                    resource,
                    key_file,
                    key_env,
                    kid,
                    algorithm,
                } => {
                    let key = cx.secret(at, "key", key_file.as_ref(), key_env.as_ref());
                    let token_url = match token_url.parse::<http::Uri>() {
                        Ok(u)
                            if matches!(u.scheme_str(), Some("http" | "https"))
                                && u.authority().is_some() =>
                        {
                            Some(u)
                        }
                        _ => {
                            cx.error(at, format!("upstream {name}: token_url {token_url:?} is not an absolute http(s) URL"));
                            None
                        }
                    };
                    let algorithm = match algorithm.as_str() {
                        "RS256" => Some(connectors::GrantAlgorithm::RS256),
                        "ES256" => Some(connectors::GrantAlgorithm::ES256),
                        other => {
                            cx.error(at, format!("upstream {name}: grant algorithm {other:?} is not RS256 or ES256"));
                            None
                        }
                    };
                    for (field, value) in [
                        ("audience", audience),
                        ("client_id", client_id),
                        ("scope", scope),
                    ] {
                        if value.trim().is_empty() {
                            cx.error(
                                at,
                                format!("upstream {name}: oauth2 {field} must not be empty"),
                            );
                        }
                    }
                    match (key, token_url, algorithm) {
                        (Some(key), Some(token_url), Some(algorithm)) => {
                            Some(CredentialsConfig::OAuth2 {
                                settings: connectors::OAuth2Settings {
                                    token_url,
                                    audience: audience.clone(),
                                    client_id: client_id.clone(),
                                    scope: scope.clone(),
                                    resource: resource.clone(),
                                    kid: kid.clone(),
                                    algorithm,
                                },
                                key,
                            })
                        }
                        _ => None,
                    }
                }
            };
            let assertion = parse_assertion(&mut cx, at, name, r);
            if let Some(AssertionConfig::Hs256(secret)) = &assertion {
                if let Some(other) = hs256_secrets.iter().find(|(_, s)| s == secret) {
                    cx.error(at, format!("upstream {name}: its HS256 assertion secret is also upstream {}'s; a secret is shared with one provider only", other.0));
                }
                hs256_secrets.push((name.clone(), secret.clone()));
            }
            if assertion == Some(AssertionConfig::EdDsa) && assertion_ed25519_key.is_none() {
                cx.error(at, format!("upstream {name}: assertion = \"eddsa\" needs [keys] assertion_ed25519_key_file (or assertion_ed25519_key_env)"));
            }
            if r.request_timeout_ms == 0 || r.connect_timeout_ms == 0 {
                cx.error(at, format!("upstream {name}: timeouts must be positive"));
            }
            if r.retries > 10 {
                cx.error(at, format!("upstream {name}: retries must be at most 10"));
            }
            if r.retry_budget_percent > 100 {
                cx.error(
                    at,
                    format!("upstream {name}: retry_budget_percent must be at most 100"),
                );
            }
            if r.breaker_failures > 0 && r.breaker_open_ms == 0 {
                cx.error(at, format!("upstream {name}: breaker_open_ms must be positive when breaker_failures is set"));
            }
            if let (Some(url), Some(credentials), Some(assertion)) = (url, credentials, assertion) {
                upstreams.insert(
                    name.clone(),
                    UpstreamConfig {
                        url,
                        connect_timeout: Duration::from_millis(r.connect_timeout_ms),
                        request_timeout: Duration::from_millis(r.request_timeout_ms),
                        max_response_bytes: r.max_response_bytes,
                        credentials,
                        assertion,
                        resilience: connectors::ResilienceConfig {
                            max_concurrency: r.max_concurrency,
                            retries: r.retries,
                            retry_budget_percent: r.retry_budget_percent,
                            breaker_failures: r.breaker_failures,
                            breaker_open: Duration::from_millis(r.breaker_open_ms),
                            ..connectors::ResilienceConfig::default()
                        },
                        line,
                    },
                );
            }
        }

        let registry = upstreams.remove(crate::representation::REGISTRY);
        let catalog = match &raw.catalog {
            None => CatalogConfig {
                default_themes: vec!["GOVE".to_owned()],
                ..CatalogConfig::default()
            },
            Some(spanned) => parse_catalog(&mut cx, spanned.span().start, spanned.get_ref()),
        };

        let public_url = raw.public_url.get_ref().trim_end_matches('/').to_owned();
        let portal = raw.portal.as_ref().and_then(|spanned| {
            let at = spanned.span().start;
            match portal::PortalConfig::from_raw(spanned.get_ref(), &cx.dir, &public_url) {
                Ok(p) => Some(p),
                Err(errors) => {
                    for e in errors {
                        cx.error(at, e);
                    }
                    None
                }
            }
        });

        let altinn = match &raw.altinn {
            Some(a) => altinn_section::parse(&mut cx, a.span().start, a.get_ref()),
            None => altinn_section::AltinnConfig::default(),
        };
        let notify = match &raw.notify {
            Some(n) => notify_section::parse(&mut cx, n.span().start, n.get_ref()),
            None => notify_section::NotifyConfig::default(),
        };
        let mut witnesses = Vec::new();
        for w in &raw.witness {
            match witness::parse(w.get_ref()) {
                Ok(w) => witnesses.push(w),
                Err(e) => cx.error(w.span().start, e),
            }
        }

        if !cx.errors.is_empty() {
            return Err(cx.errors);
        }
        let (
            Some(listen),
            Some(ops_listen),
            Some(url),
            Some(pseudonym_key),
            Some(assertion_key),
            Some(checkpoint_key),
        ) = (
            listen,
            ops_listen,
            store_url,
            pseudonym_key,
            assertion_key,
            checkpoint_key,
        )
        else {
            // Every None above has pushed an error.
            return Err(cx.errors);
        };
        Ok(Config {
            policy_file: cx.path(raw.policy.get_ref()),
            public_url,
            allow_synthetic_ids: raw.allow_synthetic_ids,
            server: ServerConfig {
                listen,
                ops_listen,
                tls_cert: cx.path(&raw.server.tls_cert),
                tls_key: cx.path(&raw.server.tls_key),
                max_header_bytes: raw.server.max_header_bytes,
                max_body_bytes: raw.server.max_body_bytes,
                header_read_timeout: Duration::from_millis(raw.server.header_read_timeout_ms),
                max_headers: raw.server.max_headers,
                body_read_timeout: Duration::from_millis(raw.server.body_read_timeout_ms),
                http2_idle_timeout: Duration::from_millis(raw.server.http2_idle_timeout_ms),
                max_connections_per_address: raw.server.max_connections_per_address,
                unauthenticated_rate_limit: policy::RateLimit {
                    per_second: raw.server.unauthenticated_per_second,
                    burst: raw.server.unauthenticated_burst,
                },
                shutdown_grace: Duration::from_millis(raw.server.shutdown_grace_ms),
                hsts: http::HeaderValue::from_static(if raw.server.hsts_include_subdomains {
                    "max-age=31536000; includeSubDomains"
                } else {
                    "max-age=31536000"
                }),
                runtime,
                workers,
            },
            store: StoreConfig {
                url,
                audit_write_timeout: Duration::from_millis(audit_ms),
                audit_noop,
                audit_synchronous,
                audit_tree,
                tls: store_tls,
            },
            #[cfg(feature = "bench")]
            bench_stage,
            #[cfg(feature = "bench")]
            bench_followers,
            keys: KeysConfig {
                pseudonym_key,
                assertion_key,
                assertion_ed25519_key,
                checkpoint_key,
            },
            issuers,
            upstreams,
            registry,
            catalog,
            portal,
            altinn,
            notify,
            witnesses,
            file: path.to_path_buf(),
        })
    }

    /// Checks the config against the policy: every provider has an upstream.
    pub fn check_against(&self, policy: &policy::Policy) -> Vec<ConfigError> {
        let file = self.file.display().to_string();
        let mut errors = Vec::new();
        for id in policy.providers.keys() {
            if !self.upstreams.contains_key(id) {
                errors.push(ConfigError {
                    file: file.clone(),
                    line: 0,
                    message: format!("provider {id} in the policy has no [upstream.{id}]"),
                });
            }
        }
        for dataset in self.catalog.themes.keys() {
            if dataset
                .parse::<policy::DatasetRef>()
                .ok()
                .and_then(|d| policy.dataset(&d.provider, &d.dataset))
                .is_none()
            {
                errors.push(ConfigError {
                    file: file.clone(),
                    line: 0,
                    message: format!(
                        "[catalog.themes] names {dataset:?}, which is no dataset of the policy"
                    ),
                });
            }
        }
        if let Some(org) = &self.catalog.publisher {
            if !policy.organisations.contains_key(org) {
                errors.push(ConfigError {
                    file: file.clone(),
                    line: 0,
                    message: format!(
                        "catalog.publisher {} is no organisation of the policy",
                        org.as_str()
                    ),
                });
            }
        }
        for (id, up) in &self.upstreams {
            if !policy.providers.contains_key(id) {
                errors.push(ConfigError {
                    file: file.clone(),
                    line: up.line,
                    message: format!("[upstream.{id}] names no provider of the policy"),
                });
            }
        }
        errors
    }
}

/// `assertion`, `assertion_secret_file` / `_env` of an `[upstream.X]`;
/// `None` after an error. The HS256 secret is read here, once, so that
/// `bru check` refuses a short one; its bytes are never in a message.
fn parse_assertion(
    cx: &mut Ctx<'_>,
    at: usize,
    name: &str,
    r: &RawUpstream,
) -> Option<AssertionConfig> {
    use connectors::assertion::{AssertionAlgorithm, MIN_HS256_SECRET_BYTES};
    let has_secret = r.assertion_secret_file.is_some() || r.assertion_secret_env.is_some();
    if name == crate::representation::REGISTRY {
        if r.assertion.is_some() || has_secret {
            cx.error(at, "registry: Bru sends no Bru-Assertion to the registry; remove assertion and assertion_secret_*");
        }
        return Some(AssertionConfig::Es256);
    }
    let algorithm = match r.assertion.as_deref() {
        None => AssertionAlgorithm::Es256,
        Some(value) => match AssertionAlgorithm::parse(value) {
            Some(a) => a,
            None => {
                cx.error(
                    at,
                    format!("upstream {name}: assertion {value:?} is not \"es256\", \"eddsa\" or \"hs256\""),
                );
                return None;
            }
        },
    };
    match algorithm {
        AssertionAlgorithm::Es256 | AssertionAlgorithm::EdDsa => {
            if has_secret {
                cx.error(
                    at,
                    format!("upstream {name}: assertion_secret_file / assertion_secret_env are only for assertion = \"hs256\""),
                );
                return None;
            }
            Some(if algorithm == AssertionAlgorithm::EdDsa {
                AssertionConfig::EdDsa
            } else {
                AssertionConfig::Es256
            })
        }
        AssertionAlgorithm::Hs256 => {
            if !has_secret {
                cx.error(
                    at,
                    format!("upstream {name}: assertion = \"hs256\" needs assertion_secret_file (or assertion_secret_env): the secret shared with this provider"),
                );
                return None;
            }
            let secret = cx.secret(
                at,
                "assertion_secret",
                r.assertion_secret_file.as_ref(),
                r.assertion_secret_env.as_ref(),
            )?;
            match secret.read_bytes() {
                Err(e) => {
                    cx.error(at, format!("upstream {name}: assertion secret: {e}"));
                    None
                }
                Ok(bytes) if bytes.len() < MIN_HS256_SECRET_BYTES => {
                    cx.error(
                        at,
                        format!(
                            "upstream {name}: the HS256 assertion secret is {} bytes; at least {MIN_HS256_SECRET_BYTES} random bytes are required",
                            bytes.len()
                        ),
                    );
                    None
                }
                Ok(bytes) => Some(AssertionConfig::Hs256(SharedSecret(bytes))),
            }
        }
    }
}

fn parse_catalog(cx: &mut Ctx<'_>, at: usize, raw: &RawCatalog) -> CatalogConfig {
    let publisher = raw
        .publisher
        .as_ref()
        .and_then(|org| match policy::OrgNumber::parse(org) {
            Ok(org) => Some(org),
            Err(_) => {
                cx.error(
                    at,
                    format!("catalog.publisher {org:?} is not a valid organisation number"),
                );
                None
            }
        });
    if let Some(email) = &raw.contact_email {
        if !email.contains('@') || email.contains(char::is_whitespace) {
            cx.error(
                at,
                format!("catalog.contact_email {email:?} is not an e-mail address"),
            );
        }
    }
    if let Some(url) = &raw.contact_url {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            cx.error(
                at,
                format!("catalog.contact_url {url:?} is not an http(s) URL"),
            );
        }
    }
    let check_themes = |cx: &mut Ctx<'_>, what: &str, themes: &[String]| {
        if themes.is_empty() {
            cx.error(at, format!("{what}: at least one theme is required"));
        }
        for theme in themes {
            if !DATA_THEMES.contains(&theme.as_str()) {
                cx.error(
                    at,
                    format!(
                        "{what}: {theme:?} is not an EU data theme ({})",
                        DATA_THEMES.join(", ")
                    ),
                );
            }
        }
    };
    let default_themes = raw
        .default_themes
        .clone()
        .unwrap_or_else(|| vec!["GOVE".to_owned()]);
    check_themes(cx, "catalog.default_themes", &default_themes);
    for (dataset, themes) in &raw.themes {
        check_themes(cx, &format!("catalog.themes.{dataset:?}"), themes);
    }
    CatalogConfig {
        publisher,
        contact_email: raw.contact_email.clone(),
        contact_url: raw.contact_url.clone(),
        themes: raw.themes.clone(),
        default_themes,
    }
}

fn parse_addr(cx: &mut Ctx<'_>, s: &Spanned<String>) -> Option<SocketAddr> {
    match s.get_ref().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            cx.error(
                s.span().start,
                format!("{:?} is not an address like 127.0.0.1:8443", s.get_ref()),
            );
            None
        }
    }
}

/// `sqlite://bru.db` is relative to the config's directory.
fn resolve_sqlite_url(dir: &Path, url: &str) -> String {
    match url.strip_prefix("sqlite://") {
        Some(rest) if !rest.starts_with('/') && !rest.starts_with(':') => {
            format!("sqlite://{}", dir.join(rest).display())
        }
        _ => url.to_owned(),
    }
}

fn parse_algorithm(name: &str) -> Option<jsonwebtoken::Algorithm> {
    use jsonwebtoken::Algorithm::*;
    // HMAC is never allowed: a shared secret cannot be published in a JWKS.
    Some(match name {
        "RS256" => RS256,
        "RS384" => RS384,
        "RS512" => RS512,
        "PS256" => PS256,
        "PS384" => PS384,
        "PS512" => PS512,
        "ES256" => ES256,
        "ES384" => ES384,
        "EdDSA" => EdDSA,
        _ => return None,
    })
}

pub mod altinn_section;
pub mod notify_section;
pub mod witness;

#[cfg(test)]
mod tests;
