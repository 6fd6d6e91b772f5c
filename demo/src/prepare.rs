//! `prepare`: the demo's state directory, generated where missing.
//!
//! State is kept across restarts (SPEC section 2): keys, certificates, the
//! policy copy and the database are generated only when their file is missing,
//! so restarting the demo keeps its consents, its audit log and the CA a user
//! may have trusted. `bru.toml` is the exception: it is derived from the
//! options of this run and rewritten every time.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyPair, KeyUsagePurpose, NameConstraints,
    SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use time::OffsetDateTime;

use crate::{pem, DemoError, DEMO_POLICY};

/// How `bru demo` was asked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOptions {
    /// The public HTTPS listener. Its port must be fixed: the issuer URLs in
    /// `bru.toml` (and so the `iss` of every demo token) name it.
    pub listen: SocketAddr,
    /// The internal ops listener (`/metrics`, `/healthz`, `/readyz`).
    pub ops_listen: SocketAddr,
    /// The store; `None` is SQLite in `DIR/bru.db`.
    pub store_url: Option<String>,
    /// Where the demo providers listen.
    pub provider_ports: ProviderPorts,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8443)),
            ops_listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 9090)),
            store_url: None,
            provider_ports: ProviderPorts::Preferred { first: 18081 },
        }
    }
}

/// How the three demo providers get their loopback ports.
///
/// In either case a port that the previous `bru.toml` named is kept if it is
/// still free, so that the providers' URLs stay put across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderPorts {
    /// NAV on `first`, helsenorge on `first + 1`, K429 on `first + 2`; any
    /// free port for one that is taken.
    Preferred { first: u16 },
    /// Any free ports: for tests that run several demos side by side.
    Any,
}

/// The loopback addresses of the three demo providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderAddrs {
    pub nav: SocketAddr,
    pub helsenorge: SocketAddr,
    pub k429: SocketAddr,
}

/// What `prepare` made: every file of the demo's state and the addresses and
/// names written into its `bru.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoLayout {
    pub dir: PathBuf,
    /// `DIR/bru.toml`, the demo's own config.
    pub config: PathBuf,
    /// `DIR/policy.toml`, a copy of the demo world's policy.
    pub policy: PathBuf,
    /// `DIR/ca.pem`: the demo CA; trust it to talk to the gateway.
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    /// `DIR/tls/cert.pem` and `DIR/tls/key.pem`: the gateway's certificate.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// `DIR/demo-maskinporten-key.pem`: RSA key of the demo Maskinporten, so
    /// that test clients can mint their own tokens.
    pub maskinporten_key: PathBuf,
    /// `DIR/demo-idporten-key.pem`: RSA key of the demo ID-porten.
    pub idporten_key: PathBuf,
    /// `DIR/demo-altinn-key.pem`: RSA key the demo Altinn signs Altinn 2
    /// consent tokens with (its JWK set at `/demo/altinn/api/metadata/jwk`).
    pub altinn_key: PathBuf,
    pub pseudonym_key: PathBuf,
    /// `DIR/keys/portal-session.key`: seals the citizen portal's session cookies.
    pub portal_session_key: PathBuf,
    pub assertion_key: PathBuf,
    /// `DIR/keys/assertion-ed25519.pem`: signs `Bru-Assertion` for providers
    /// with `assertion = "eddsa"` (SPEC 12); published in the JWKS.
    pub assertion_ed25519_key: PathBuf,
    pub checkpoint_key: PathBuf,
    /// `DIR/keys/store-url`, written only when the store is not SQLite (a
    /// PostgreSQL URL holds a password, so it does not go into `bru.toml`).
    pub store_url_file: Option<PathBuf>,
    pub listen: SocketAddr,
    pub ops_listen: SocketAddr,
    /// `https://localhost:{port}`.
    pub public_url: String,
    /// The `iss` of demo Maskinporten tokens: `{public_url}/demo/maskinporten`.
    pub maskinporten_issuer: String,
    /// The `iss` of demo ID-porten tokens: `{public_url}/demo/idporten`.
    pub idporten_issuer: String,
    pub providers: ProviderAddrs,
}

/// The CA lives long enough that a trusted demo CA does not need replacing.
const CA_DAYS: i64 = 3650;
/// Apple platforms refuse TLS server certificates valid for more than 825
/// days, even from a user-trusted CA.
const SERVER_CERT_DAYS: i64 = 800;
/// Reissue the server certificate when its file is this old, well before it
/// expires. The file's age stands in for the certificate's, which saves
/// parsing X.509 here.
const SERVER_CERT_RENEW_AFTER: Duration = Duration::from_secs(730 * 24 * 3600);

/// Creates `dir` if missing and generates the demo's state where it is missing;
/// rewrites `dir/bru.toml` from `opts`. See [`DemoLayout`] for the files.
pub fn prepare(dir: &Path, opts: &DemoOptions) -> Result<DemoLayout, DemoError> {
    if opts.listen.port() == 0 {
        return Err(DemoError::Options(
            "the demo's listen address needs a fixed port: its issuer URLs name it".into(),
        ));
    }
    let public_url = format!("https://localhost:{}", opts.listen.port());
    let layout_dir = dir.to_path_buf();
    create_private_dir(&layout_dir)?;
    create_private_dir(&layout_dir.join("tls"))?;
    create_private_dir(&layout_dir.join("keys"))?;

    let config = dir.join("bru.toml");
    let providers = choose_provider_addrs(&config, opts)?;
    let layout = DemoLayout {
        config,
        policy: dir.join("policy.toml"),
        ca_cert: dir.join("ca.pem"),
        ca_key: dir.join("ca-key.pem"),
        tls_cert: dir.join("tls").join("cert.pem"),
        tls_key: dir.join("tls").join("key.pem"),
        maskinporten_key: dir.join("demo-maskinporten-key.pem"),
        idporten_key: dir.join("demo-idporten-key.pem"),
        altinn_key: dir.join("demo-altinn-key.pem"),
        pseudonym_key: dir.join("keys").join("pseudonym.key"),
        portal_session_key: dir.join("keys").join("portal-session.key"),
        assertion_key: dir.join("keys").join("assertion.pem"),
        assertion_ed25519_key: dir.join("keys").join("assertion-ed25519.pem"),
        checkpoint_key: dir.join("keys").join("checkpoint.pem"),
        store_url_file: None,
        listen: opts.listen,
        ops_listen: opts.ops_listen,
        maskinporten_issuer: format!("{public_url}/demo/maskinporten"),
        idporten_issuer: format!("{public_url}/demo/idporten"),
        public_url,
        providers,
        dir: layout_dir,
    };

    ensure_pki(&layout)?;
    ensure(&layout.maskinporten_key, Secrecy::Private, rsa_2048_pem)?;
    ensure(&layout.idporten_key, Secrecy::Private, rsa_2048_pem)?;
    ensure(&layout.altinn_key, Secrecy::Private, rsa_2048_pem)?;
    ensure(&layout.pseudonym_key, Secrecy::Private, || random_bytes(32))?;
    ensure(&layout.portal_session_key, Secrecy::Private, || {
        random_bytes(32)
    })?;
    ensure(&layout.assertion_key, Secrecy::Private, p256_pem)?;
    ensure(&layout.assertion_ed25519_key, Secrecy::Private, ed25519_pem)?;
    // The demo feed takes any bearer token; Bru needs one to send.
    ensure(
        &dir.join("keys").join("altinn-events.token"),
        Secrecy::Private,
        || Ok(b"demo-altinn-events".to_vec()),
    )?;
    ensure(&layout.checkpoint_key, Secrecy::Private, ed25519_pem)?;
    // Kept once written, like the keys: a user exploring `bru check` and
    // `bru explain` on the demo's state may have edited it.
    ensure(&layout.policy, Secrecy::Public, || {
        Ok(DEMO_POLICY.as_bytes().to_vec())
    })?;

    let store = store_setting(&layout, opts)?;
    let layout = DemoLayout {
        store_url_file: match &store {
            Store::File { path, .. } => Some(path.clone()),
            Store::Inline(_) => None,
        },
        ..layout
    };
    write_atomic(
        &layout.config,
        render_config(&layout, &store).as_bytes(),
        Secrecy::Public,
    )?;
    Ok(layout)
}

// ---- files -------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Secrecy {
    /// Keys: readable by the owner only.
    Private,
    Public,
}

fn create_private_dir(dir: &Path) -> Result<(), DemoError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        // Applies only to directories created now; an existing one keeps its mode.
        builder.mode(0o700);
    }
    builder.create(dir).map_err(DemoError::io(dir))
}

/// Generates `path`'s content with `generate` unless the file exists.
/// Returns whether it wrote the file.
fn ensure(
    path: &Path,
    secrecy: Secrecy,
    generate: impl FnOnce() -> Result<Vec<u8>, DemoError>,
) -> Result<bool, DemoError> {
    if path.exists() {
        return Ok(false);
    }
    let content = generate()?;
    write_atomic(path, &content, secrecy)?;
    tracing::info!(file = %path.display(), "generated demo file");
    Ok(true)
}

/// Writes through a temporary file and a rename, so that a crash mid-write
/// never leaves a truncated key that a later run would take as present.
fn write_atomic(path: &Path, content: &[u8], secrecy: Secrecy) -> Result<(), DemoError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(match secrecy {
            Secrecy::Private => 0o600,
            Secrecy::Public => 0o644,
        });
    }
    #[cfg(not(unix))]
    let _ = secrecy;
    let mut file = options.open(&tmp).map_err(DemoError::io(&tmp))?;
    #[cfg(unix)]
    if secrecy == Secrecy::Private {
        // A stale temporary file from a crashed run keeps its old mode on open.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(DemoError::io(&tmp))?;
    }
    file.write_all(content).map_err(DemoError::io(&tmp))?;
    file.sync_all().map_err(DemoError::io(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(DemoError::io(path))
}

fn read_to_string(path: &Path) -> Result<String, DemoError> {
    fs::read_to_string(path).map_err(DemoError::io(path))
}

// ---- keys ----------------------------------------------------------------------

fn generate_err(what: &'static str) -> impl FnOnce(aws_lc_rs::error::Unspecified) -> DemoError {
    move |_| DemoError::Generate {
        what,
        why: "the crypto library refused".into(),
    }
}

fn random_bytes(n: usize) -> Result<Vec<u8>, DemoError> {
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut buf).map_err(generate_err("random bytes"))?;
    Ok(buf)
}

fn rsa_2048_pem() -> Result<Vec<u8>, DemoError> {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(generate_err("an RSA key"))?;
    let der: aws_lc_rs::encoding::Pkcs8V1Der = key.as_der().map_err(generate_err("an RSA key"))?;
    Ok(pem::encode("PRIVATE KEY", der.as_ref()).into_bytes())
}

fn p256_pem() -> Result<Vec<u8>, DemoError> {
    use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
        .map_err(generate_err("a P-256 key"))?;
    let doc = key.to_pkcs8v1().map_err(generate_err("a P-256 key"))?;
    Ok(pem::encode("PRIVATE KEY", doc.as_ref()).into_bytes())
}

fn ed25519_pem() -> Result<Vec<u8>, DemoError> {
    let key =
        aws_lc_rs::signature::Ed25519KeyPair::generate().map_err(generate_err("an Ed25519 key"))?;
    // PKCS#8 v1, as `openssl genpkey -algorithm ed25519` writes it: every
    // library reads v1, not all read v2.
    let doc = key.to_pkcs8v1().map_err(generate_err("an Ed25519 key"))?;
    Ok(pem::encode("PRIVATE KEY", doc.as_ref()).into_bytes())
}

// ---- the demo CA and the gateway's certificate ----------------------------------

fn rcgen_err(what: &'static str) -> impl FnOnce(rcgen::Error) -> DemoError {
    move |e| DemoError::Generate {
        what,
        why: e.to_string(),
    }
}

fn ensure_pki(layout: &DemoLayout) -> Result<(), DemoError> {
    let now = OffsetDateTime::now_utc();
    // The CA's certificate and key belong together: missing either, make both.
    let ca_fresh = !(layout.ca_cert.exists() && layout.ca_key.exists());
    let ca_key = if ca_fresh {
        let key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_err("the demo CA key"))?;
        let cert = ca_params(&key, now)?
            .self_signed(&key)
            .map_err(rcgen_err("the demo CA certificate"))?;
        write_atomic(
            &layout.ca_key,
            key.serialize_pem().as_bytes(),
            Secrecy::Private,
        )?;
        write_atomic(&layout.ca_cert, cert.pem().as_bytes(), Secrecy::Public)?;
        tracing::info!(file = %layout.ca_cert.display(), "generated the demo CA");
        key
    } else {
        let pem = read_to_string(&layout.ca_key)?;
        KeyPair::from_pem(&pem).map_err(|e| DemoError::Key {
            path: layout.ca_key.clone(),
            why: e.to_string(),
        })?
    };

    let server_missing = !(layout.tls_cert.exists() && layout.tls_key.exists());
    if ca_fresh || server_missing || file_older_than(&layout.tls_cert, SERVER_CERT_RENEW_AFTER) {
        // rcgen (without its X.509 parser) cannot read ca.pem back, but an
        // issuer needs only the CA's name, key usages and key; the name is
        // derived from the key, so rebuilding the parameters reproduces it.
        let issuer = rcgen::Issuer::new(ca_params(&ca_key, now)?, &ca_key);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(rcgen_err("the gateway's TLS key"))?;
        let cert = server_params(now)?
            .signed_by(&key, &issuer)
            .map_err(rcgen_err("the gateway's TLS certificate"))?;
        write_atomic(
            &layout.tls_key,
            key.serialize_pem().as_bytes(),
            Secrecy::Private,
        )?;
        write_atomic(&layout.tls_cert, cert.pem().as_bytes(), Secrecy::Public)?;
        tracing::info!(file = %layout.tls_cert.display(), "issued the gateway's demo TLS certificate");
    }
    Ok(())
}

fn file_older_than(path: &Path, age: Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|elapsed| elapsed > age)
}

fn random_serial() -> Result<SerialNumber, DemoError> {
    let mut bytes = random_bytes(16)?;
    // A positive DER integer: clear the top bit.
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

fn ca_params(key: &KeyPair, now: OffsetDateTime) -> Result<CertificateParams, DemoError> {
    let mut params = CertificateParams::default();
    // A short fingerprint of the key in the name tells one demo's CA from
    // another's in a trust store, and is the same whenever it is rebuilt.
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.public_key_raw());
    let tag: String = digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("Bru demo CA {tag}"));
    dn.push(DnType::OrganizationName, "Bru demo, not for production use");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // Users are invited to trust this CA. Name constraints limit the harm if
    // its key leaks: it can vouch only for this machine's loopback names.
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("localhost".into()),
            GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
                8,
            )),
            GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                128,
            )),
        ],
        excluded_subtrees: Vec::new(),
    });
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(CA_DAYS);
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

fn server_params(now: OffsetDateTime) -> Result<CertificateParams, DemoError> {
    let mut params = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(rcgen_err("the gateway's TLS certificate"))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    dn.push(DnType::OrganizationName, "Bru demo");
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    // An hour back absorbs clock skew between this machine and a client's.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(SERVER_CERT_DAYS);
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

// ---- provider ports ------------------------------------------------------------

const PROVIDERS: [&str; 3] = ["nav", "helsenorge", "k429"];

fn choose_provider_addrs(config: &Path, opts: &DemoOptions) -> Result<ProviderAddrs, DemoError> {
    let previous = previous_upstreams(config);
    // The gateway binds its listeners after this; don't hand their ports to a
    // provider. Compared by port alone: 127.0.0.1:8443 and 0.0.0.0:8443 clash.
    let reserved = [opts.listen.port(), opts.ops_listen.port()];
    // Each listener stays open until all three are chosen, so that the OS
    // cannot hand the same ephemeral port out twice.
    let mut held: Vec<TcpListener> = Vec::with_capacity(3);
    for (i, prev) in previous.into_iter().enumerate() {
        let preferred = prev.or(match opts.provider_ports {
            ProviderPorts::Preferred { first } => u16::try_from(i)
                .ok()
                .and_then(|i| first.checked_add(i))
                .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
            ProviderPorts::Any => None,
        });
        let listener = preferred
            .filter(|a| a.port() != 0 && !reserved.contains(&a.port()))
            .and_then(|a| TcpListener::bind(a).ok());
        let listener = match listener {
            Some(l) => l,
            None => {
                let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
                TcpListener::bind(any).map_err(|source| DemoError::Bind {
                    provider: PROVIDERS[i],
                    addr: any,
                    source,
                })?
            }
        };
        held.push(listener);
    }
    let addr = |i: usize| -> Result<SocketAddr, DemoError> {
        held[i].local_addr().map_err(|source| DemoError::Bind {
            provider: PROVIDERS[i],
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            source,
        })
    };
    Ok(ProviderAddrs {
        nav: addr(0)?,
        helsenorge: addr(1)?,
        k429: addr(2)?,
    })
}

/// The loopback provider addresses a previous `bru.toml` named, in the order
/// of [`PROVIDERS`]; `None` for any that is absent or not a loopback HTTP URL.
fn previous_upstreams(config: &Path) -> [Option<SocketAddr>; 3] {
    let table: Option<toml::Table> = fs::read_to_string(config)
        .ok()
        .and_then(|text| text.parse().ok());
    PROVIDERS.map(|name| {
        let url = table
            .as_ref()?
            .get("upstream")?
            .get(name)?
            .get("url")?
            .as_str()?;
        let addr: SocketAddr = url
            .strip_prefix("http://")?
            .trim_end_matches('/')
            .parse()
            .ok()?;
        addr.ip().is_loopback().then_some(addr)
    })
}

// ---- bru.toml ------------------------------------------------------------------

enum Store {
    Inline(String),
    /// `rel` is the path as written in `bru.toml`, relative to it.
    File {
        path: PathBuf,
        rel: &'static str,
    },
}

fn store_setting(layout: &DemoLayout, opts: &DemoOptions) -> Result<Store, DemoError> {
    let secret_file = layout.dir.join("keys").join("store-url");
    match opts.store_url.as_deref() {
        None => {
            remove_stale(&secret_file)?;
            Ok(Store::Inline("sqlite://bru.db".into()))
        }
        // A SQLite URL is a path, not a secret; relative paths start at DIR.
        Some(url) if url.starts_with("sqlite:") => {
            remove_stale(&secret_file)?;
            Ok(Store::Inline(url.to_owned()))
        }
        // Anything else (PostgreSQL) may carry a password: never into bru.toml.
        Some(url) => {
            write_atomic(&secret_file, url.as_bytes(), Secrecy::Private)?;
            Ok(Store::File {
                path: secret_file,
                rel: "keys/store-url",
            })
        }
    }
}

/// A store URL written by an earlier run with `--store postgres://…` holds a
/// password; don't leave it behind once the demo no longer uses it.
fn remove_stale(path: &Path) -> Result<(), DemoError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DemoError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// A TOML basic string, escaped.
fn q(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn render_config(l: &DemoLayout, store: &Store) -> String {
    let store_line = match store {
        Store::Inline(url) => format!("url = {}", q(url)),
        Store::File { rel, .. } => format!("url_file = {}", q(rel)),
    };
    let upstream = |name: &str, addr: SocketAddr| {
        format!(
            "[upstream.{name}]\nurl = {}\ncredentials = {{ kind = \"none\" }}\n",
            q(&format!("http://{addr}"))
        )
    };
    let issuer = |name: &str, kind: &str, iss: &str, audience: Option<&str>| {
        format!(
            "[[issuer]]\nname = {}\nkind = {}\nissuer = {}\njwks_url = {}\nalgorithms = [\"RS256\"]\nca_file = \"ca.pem\"\n{}",
            q(name),
            q(kind),
            q(iss),
            q(&format!("{iss}/jwks")),
            audience
                .map(|a| format!("# Tokens minted for another resource server are refused.\naudience = {}\n", q(a)))
                .unwrap_or_default(),
        )
    };
    format!(
        r#"# Generated by `bru demo` each time it starts: edits here are overwritten.
# The keys, certificates, policy.toml and database next to this file are kept
# across restarts; delete one to have it generated again.
# Every `bru … --config` command (check, explain, audit verify, …) works on
# the demo's state with this file.

policy = "policy.toml"
public_url = {public_url}
# The demo persons have synthetic person numbers (month + 80).
allow_synthetic_ids = true

[server]
listen = {listen}
ops_listen = {ops_listen}
# Issued by the demo CA, ca.pem.
tls_cert = "tls/cert.pem"
tls_key = "tls/key.pem"

[store]
{store_line}

[keys]
pseudonym_key_file = "keys/pseudonym.key"
assertion_key_file = "keys/assertion.pem"
# For providers with assertion = "eddsa" (none in the demo; published anyway).
assertion_ed25519_key_file = "keys/assertion-ed25519.pem"
checkpoint_key_file = "keys/checkpoint.pem"

# The demo issuers are served by this gateway under /demo/, in demo mode only
# (`bru serve` refuses them). Their JWKS comes over HTTPS from the gateway's
# own public listener, whose certificate the demo CA issued.
{maskinporten}
{idporten}
# The demo providers: synthetic data, plain HTTP on loopback, started by `bru demo`.
{nav}
{helsenorge}
{k429}
# The registry of parental responsibility and guardianship (SPEC 9.3): the
# demo's Folkeregisteret-style lookup, served beside K429's provider.
[registry]
url = {registry}
credentials = {{ kind = "none" }}

# What GET /catalog/v1/datasets (DCAT-AP-NO) says beyond the policy.
[catalog]
publisher = "921429002"
contact_email = "datadeling@k429.example"
themes = {{ "nav/inntekt" = ["SOCI", "ECON"], "helsenorge/hjemmetjeneste" = ["HEAL"], "k429/sosialtjeneste" = ["SOCI"] }}

# The demo's Altinn (SPEC 9.4), served by this gateway under /demo/altinn/:
# its consent events feed (no 5-minute delay here) and its decision point for
# system users. Any bearer token reads the demo feed. Altinn 2 consent tokens
# (header AltinnSamtykke) are verified against the demo Altinn's own key.
[altinn]
events_url = {altinn_events}
events_token_file = "keys/altinn-events.token"
poll_interval_seconds = 2
pdp_url = {altinn_pdp}
pdp_cache_seconds = 10
ca_file = "ca.pem"
altinn2_jwks_url = {altinn2_jwks}
altinn2_issuer = {altinn2_issuer}

# The citizen portal (/, /samtykke, /innsyn). With no issuer here, logging in
# is the demo ID-porten's person picker (`bru demo` only; `bru serve` needs an
# OpenID provider). Its session cookies are sealed with this key.
[portal]
session_key_file = "keys/portal-session.key"
"#,
        public_url = q(&l.public_url),
        altinn_events = q(&format!(
            "{}/demo/altinn/consentrequests/events",
            l.public_url
        )),
        altinn_pdp = q(&format!("{}/demo/altinn/authorize", l.public_url)),
        altinn2_jwks = q(&format!("{}/demo/altinn/api/metadata/jwk", l.public_url)),
        altinn2_issuer = q(&crate::altinn::altinn2_issuer(&l.public_url)),
        listen = q(&l.listen.to_string()),
        ops_listen = q(&l.ops_listen.to_string()),
        maskinporten = issuer(
            "demo-maskinporten",
            "maskinporten",
            &l.maskinporten_issuer,
            Some(crate::issuers::bru_audience(&l.maskinporten_issuer)),
        ),
        idporten = issuer("demo-idporten", "idporten", &l.idporten_issuer, None),
        nav = upstream("nav", l.providers.nav),
        helsenorge = upstream("helsenorge", l.providers.helsenorge),
        k429 = upstream("k429", l.providers.k429),
        registry = q(&format!("http://{}/folkeregisteret", l.providers.k429)),
    )
}
