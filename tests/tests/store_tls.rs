//! TLS to PostgreSQL (issue 15): `bru migrate` against a PostgreSQL of the
//! test's own that refuses every connection without TLS
//! (`bru_tests::pg_tls`): `verify-full` with the right CA connects, with
//! password or with a client certificate; without TLS the server refuses;
//! a wrong CA or a certificate for another name is refused by Bru, saying
//! so; and plain TCP to another machine is refused unless asked for.
//!
//! PostgreSQL pass only (`BRU_TEST_STORE=postgres`, as scripts/test-all runs
//! it after scripts/start-postgres installed the server binaries).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use bru_tests::bru_bin;
use bru_tests::pg_tls::{postgres_bin, TestCa, TlsPostgres, PASSWORD};
use rcgen::ExtendedKeyUsagePurpose;

/// The server, or None (with a note) outside the PostgreSQL pass. In that
/// pass the binaries must be there: a missing server is a failure, not a skip.
fn server() -> Option<TlsPostgres> {
    if std::env::var("BRU_TEST_STORE").as_deref() != Ok("postgres") {
        eprintln!("skipped: TLS to PostgreSQL runs with BRU_TEST_STORE=postgres");
        return None;
    }
    assert!(
        postgres_bin().is_some(),
        "BRU_TEST_STORE=postgres but no PostgreSQL server binaries in /usr/lib/postgresql/*/bin \
         (scripts/start-postgres installs them)"
    );
    Some(TlsPostgres::start().unwrap())
}

/// A directory with bru.toml (the given `[store]` lines after `url_file`),
/// the URL file, and whatever PEM files the case writes next to them.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new(url: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db-url"), format!("{url}\n")).unwrap();
        Case { dir }
    }

    fn file(&self, name: &str, text: &str) -> &Self {
        std::fs::write(self.dir.path().join(name), text).unwrap();
        self
    }

    fn config(&self, store: &str) -> PathBuf {
        let text = format!(
            r#"policy = "policy.toml"
public_url = "https://localhost:8443"

[server]
listen = "127.0.0.1:0"
ops_listen = "127.0.0.1:0"
tls_cert = "tls/cert.pem"
tls_key = "tls/key.pem"

[store]
url_file = "db-url"
{store}

[keys]
pseudonym_key_file = "keys/pseudonym.key"
assertion_key_file = "keys/assertion.pem"
checkpoint_key_file = "keys/checkpoint.pem"

[[issuer]]
name = "mp"
kind = "maskinporten"
issuer = "https://mp.example/"
jwks_url = "https://mp.example/jwks"
"#
        );
        let path = self.dir.path().join("bru.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// `bru migrate`: (success, stdout + stderr).
fn migrate(config: &Path) -> (bool, String) {
    let out = Command::new(bru_bin())
        .args(["migrate", "--config"])
        .arg(config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn url(user: &str, host: &str, port: u16) -> String {
    match user {
        "bru_pw" => format!("postgres://bru_pw:{PASSWORD}@{host}:{port}/bru_pw"),
        _ => format!("postgres://{user}@{host}:{port}/{user}"),
    }
}

const VERIFY_FULL: &str = "tls = \"verify-full\"\nca_file = \"ca.pem\"";

#[test]
fn verify_full_with_the_servers_ca_connects_and_migrates() {
    let Some(pg) = server() else { return };
    let case = Case::new(&url("bru_pw", "localhost", pg.port));
    case.file("ca.pem", &pg.ca.pem);
    let (ok, out) = migrate(&case.config(VERIFY_FULL));
    assert!(ok, "{out}");
    assert!(out.contains("migrations applied (postgres)"), "{out}");
    // Again: the store is there and up to date, over TLS.
    let (ok, out) = migrate(&case.config(VERIFY_FULL));
    assert!(ok, "{out}");
}

#[test]
fn without_tls_the_server_refuses() {
    let Some(pg) = server() else { return };
    let case = Case::new(&url("bru_pw", "127.0.0.1", pg.port));
    let (ok, out) = migrate(&case.config("tls = \"disable\""));
    assert!(!ok, "{out}");
    // pg_hba.conf: `hostnossl … reject`.
    assert!(out.contains("no encryption"), "{out}");
}

#[test]
fn a_wrong_ca_is_refused_by_bru_with_a_clear_error() {
    let Some(pg) = server() else { return };
    let case = Case::new(&url("bru_pw", "localhost", pg.port));
    case.file("ca.pem", &TestCa::new("Some other CA").pem);
    let (ok, out) = migrate(&case.config(VERIFY_FULL));
    assert!(!ok, "{out}");
    assert!(out.contains("TLS to PostgreSQL failed"), "{out}");
    assert!(out.contains("UnknownIssuer"), "{out}");
}

#[test]
fn a_certificate_for_another_name_is_refused_by_bru() {
    let Some(pg) = server() else { return };
    // The server's certificate names `localhost` only; verify-full checks
    // the name too (verify-ca would not).
    let case = Case::new(&url("bru_pw", "127.0.0.1", pg.port));
    case.file("ca.pem", &pg.ca.pem);
    let (ok, out) = migrate(&case.config(VERIFY_FULL));
    assert!(!ok, "{out}");
    assert!(out.contains("TLS to PostgreSQL failed"), "{out}");
    assert!(out.contains("not valid for name"), "{out}");
}

#[test]
fn a_client_certificate_the_server_requires_is_presented() {
    let Some(pg) = server() else { return };
    let case = Case::new(&url("bru_cert", "localhost", pg.port));
    let (cert, key) = pg
        .ca
        .issue("bru_cert", &[], ExtendedKeyUsagePurpose::ClientAuth);
    case.file("ca.pem", &pg.ca.pem)
        .file("client.pem", &cert)
        .file("client.key", &key);
    // Without it, the server's `cert` rule refuses.
    let (ok, out) = migrate(&case.config(VERIFY_FULL));
    assert!(!ok, "{out}");
    assert!(out.contains("requires a valid client certificate"), "{out}");
    let with_client = format!(
        "{VERIFY_FULL}\nclient_cert_file = \"client.pem\"\nclient_key_file = \"client.key\""
    );
    let (ok, out) = migrate(&case.config(&with_client));
    assert!(ok, "{out}");
    assert!(out.contains("migrations applied (postgres)"), "{out}");
}

#[test]
fn plain_tcp_to_another_machine_is_refused_unless_tls_is_disabled_explicitly() {
    // No server needed: Bru refuses before connecting (the name does not resolve).
    let case = Case::new("postgres://bru:secret@db.bru-test.invalid:5432/bru");
    let (ok, out) = migrate(&case.config(""));
    assert!(!ok, "{out}");
    assert!(out.contains("[store] tls is not set"), "{out}");
    assert!(out.contains("db.bru-test.invalid"), "{out}");
    assert!(
        !out.contains("secret"),
        "the password must not be printed: {out}"
    );
    // tls = "disable" is the explicit choice: Bru then tries (and cannot resolve).
    let (ok, out) = migrate(&case.config("tls = \"disable\""));
    assert!(!ok, "{out}");
    assert!(!out.contains("[store] tls is not set"), "{out}");
}
