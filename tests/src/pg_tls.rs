//! A throwaway PostgreSQL server of the test's own that speaks only TLS:
//! `ssl = on` with a certificate from a test CA (rcgen, no openssl), and a
//! pg_hba.conf that rejects every connection without TLS. Two roles:
//! `bru_pw` logs in with a password (SCRAM) over TLS, `bru_cert` only with a
//! client certificate of the same CA (`cert`).
//!
//! Needs the PostgreSQL server binaries (`/usr/lib/postgresql/{17,16,15}/bin`,
//! as `scripts/start-postgres` installs them). As root the server runs as the
//! `postgres` user, which initdb requires.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

/// The password of `bru_pw` (the server is on loopback and lives one test).
pub const PASSWORD: &str = "tls-test-password";

/// The server binaries' directory, newest version first; None when absent.
pub fn postgres_bin() -> Option<PathBuf> {
    ["17", "16", "15"]
        .iter()
        .map(|v| PathBuf::from(format!("/usr/lib/postgresql/{v}/bin")))
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

/// A CA (PEM) and what it issues.
pub struct TestCa {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA cert");
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// (certificate PEM, key PEM) with `common_name`, the DNS names `names`
    /// and the extended key usage `usage`.
    pub fn issue(
        &self,
        common_name: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("leaf key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("leaf params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).expect("leaf cert");
        (cert.pem(), key.serialize_pem())
    }
}

/// The running server; stopped on drop.
pub struct TlsPostgres {
    pub port: u16,
    /// The CA that signed the server's certificate (for `localhost` only)
    /// and that client certificates must come from.
    pub ca: TestCa,
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a server binary, as the postgres user when we are root.
fn as_postgres(bin: &Path, program: &str, args: &[&str]) -> Output {
    let exe = bin.join(program);
    let out = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&exe)
            .args(args)
            .current_dir("/")
            .output()
    } else {
        Command::new(&exe).args(args).output()
    };
    out.unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
}

fn must(out: Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").port()
}

impl TlsPostgres {
    /// Starts the server; None when the PostgreSQL binaries are absent.
    pub fn start() -> Option<TlsPostgres> {
        let bin = postgres_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("bru-pg-tls-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().to_path_buf();
        let data = root.join("data");
        let ca = TestCa::new("Bru test PostgreSQL CA");
        let (cert, key) = ca.issue(
            "localhost",
            &["localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        std::fs::write(root.join("server.crt"), cert).expect("server.crt");
        std::fs::write(root.join("server.key"), key).expect("server.key");
        std::fs::write(root.join("root.crt"), &ca.pem).expect("root.crt");
        // PostgreSQL refuses a key file others can read.
        std::fs::set_permissions(
            root.join("server.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod server.key");
        if is_root() {
            must(
                Command::new("chown")
                    .args(["-R", "postgres:"])
                    .arg(&root)
                    .output()
                    .expect("chown"),
                "chown",
            );
        }
        let data_s = data.display().to_string();
        must(
            as_postgres(
                &bin,
                "initdb",
                &["-D", &data_s, "-U", "postgres", "-A", "trust", "--no-sync"],
            ),
            "initdb",
        );
        // Over TCP: TLS or nothing. The superuser only through the socket.
        let hba = "\
local     all  postgres                  trust
hostssl   all  bru_pw    127.0.0.1/32    scram-sha-256
hostssl   all  bru_pw    ::1/128         scram-sha-256
hostssl   all  bru_cert  127.0.0.1/32    cert
hostssl   all  bru_cert  ::1/128         cert
hostnossl all  all       0.0.0.0/0       reject
hostnossl all  all       ::/0            reject
";
        std::fs::write(data.join("pg_hba.conf"), hba).expect("pg_hba.conf");
        let port = free_port();
        let opts = format!(
            "-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c ssl=on \
             -c ssl_cert_file={root}/server.crt -c ssl_key_file={root}/server.key \
             -c ssl_ca_file={root}/root.crt",
            root = root.display()
        );
        let log = root.join("log").display().to_string();
        must(
            as_postgres(
                &bin,
                "pg_ctl",
                &["-D", &data_s, "-l", &log, "-w", "-o", &opts, "start"],
            ),
            "pg_ctl start",
        );
        let server = TlsPostgres {
            port,
            ca,
            bin,
            data,
            _dir: dir,
        };
        let socket_dir = root.display().to_string();
        let password = format!("CREATE ROLE bru_pw LOGIN PASSWORD '{PASSWORD}'");
        let port_s = port.to_string();
        let mut args = vec![
            "-q",
            "-h",
            &socket_dir,
            "-p",
            &port_s,
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
        ];
        // One statement per -c: CREATE DATABASE cannot share a transaction.
        for statement in [
            password.as_str(),
            "CREATE ROLE bru_cert LOGIN",
            "CREATE DATABASE bru_pw OWNER bru_pw",
            "CREATE DATABASE bru_cert OWNER bru_cert",
        ] {
            args.extend(["-c", statement]);
        }
        must(as_postgres(&server.bin, "psql", &args), "psql (roles)");
        Some(server)
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-m",
                "immediate",
                "stop",
            ],
        );
    }
}
