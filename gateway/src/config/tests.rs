#![allow(clippy::unwrap_used)]

use super::*;

const VALID: &str = r#"
policy = "policy.toml"
public_url = "https://localhost:8443"

[server]
listen = "127.0.0.1:8443"
ops_listen = "127.0.0.1:9090"
tls_cert = "tls/cert.pem"
tls_key = "tls/key.pem"

[store]
url = "sqlite://bru.db"

[keys]
pseudonym_key_file = "keys/pseudonym.key"
assertion_key_file = "keys/assertion.pem"
checkpoint_key_env = "BRU_CHECKPOINT_KEY"

[[issuer]]
name = "mp"
kind = "maskinporten"
issuer = "https://mp.example/"
jwks_url = "https://mp.example/jwks"

[upstream.nav]
url = "http://127.0.0.1:1234"
"#;

fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
    Config::parse(Path::new("/etc/bru/bru.toml"), text)
}

/// The 1-based line of the first line holding `marker`.
fn line_of(text: &str, marker: &str) -> usize {
    text.lines().position(|l| l.contains(marker)).unwrap() + 1
}

fn check_error(text: &str, line: usize, needle: &str) {
    let errors = parse(text).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.line == line && e.message.contains(needle)),
        "expected line {line} with {needle:?}, got {errors:?}"
    );
}

#[test]
fn a_valid_config_resolves_paths_next_to_itself() {
    let c = parse(VALID).unwrap();
    assert_eq!(c.policy_file, Path::new("/etc/bru/policy.toml"));
    assert_eq!(
        c.store.url,
        Secret::Plain("sqlite:///etc/bru/bru.db".into())
    );
    assert_eq!(
        c.keys.checkpoint_key,
        Secret::Env("BRU_CHECKPOINT_KEY".into())
    );
    assert_eq!(
        c.issuers[0].algorithms,
        vec![jsonwebtoken::Algorithm::RS256]
    );
    assert_eq!(c.upstreams["nav"].line, line_of(VALID, "[upstream.nav]"));
}

#[test]
fn errors_name_their_line() {
    let bad_listen = VALID.replace("listen = \"127.0.0.1:8443\"", "listen = \"nowhere\"");
    check_error(
        &bad_listen,
        line_of(&bad_listen, "nowhere"),
        "not an address",
    );
    let hmac = VALID.replace(
        "jwks_url = \"https://mp.example/jwks\"",
        "jwks_url = \"https://mp.example/jwks\"\nalgorithms = [\"HS256\"]",
    );
    check_error(&hmac, line_of(&hmac, "[[issuer]]"), "HS256");
    let unknown = VALID.replace("[upstream.nav]", "[upstream.nav]\ncolour = 1");
    check_error(&unknown, line_of(&unknown, "colour"), "unknown field");
    check_error(
        &VALID.replace(
            "url = \"sqlite://bru.db\"",
            "url = \"postgres://u:p@db/bru\"",
        ),
        line_of(VALID, "[store]"),
        "url_file or url_env",
    );
    let ftp = format!("{VALID}\n[upstream.x]\nurl = \"ftp://x\"\n");
    check_error(
        &ftp,
        line_of(&ftp, "[upstream.x]"),
        "not an absolute http(s) URL",
    );
    let leeway = VALID.replace("name = \"mp\"", "name = \"mp\"\nleeway_s = 9000");
    check_error(&leeway, line_of(&leeway, "[[issuer]]"), "leeway_s");
    let same_name = format!(
        "{VALID}\n[[issuer]]\nname = \"mp\"\nkind = \"idporten\"\n\
         issuer = \"https://idp.example/\"\njwks_url = \"https://idp.example/jwks\"\n"
    );
    let second = same_name.rfind("[[issuer]]").unwrap();
    check_error(
        &same_name,
        same_name[..second].lines().count() + 1,
        "the name is used by another issuer",
    );
}

#[test]
fn demo_issuers_are_recognised() {
    let c = parse(&VALID.replace(
        "https://mp.example/\"",
        "https://localhost:8443/demo/maskinporten\"",
    ))
    .unwrap();
    assert!(c.issuers[0].is_demo());
    assert!(!parse(VALID).unwrap().issuers[0].is_demo());
}

#[test]
fn provider_credentials_resilience_and_catalog_keys() {
    let text = format!(
        "{}{}",
        VALID.replace(
            "[upstream.nav]\nurl = \"http://127.0.0.1:1234\"",
            "[upstream.nav]\nurl = \"https://nav.example\""
        ),
        r#"max_concurrency = 8
retries = 2
retry_budget_percent = 20
breaker_failures = 3
breaker_open_ms = 5000
credentials = { kind = "mtls", cert_file = "certs/bru.pem", key_env = "BRU_MTLS_KEY", ca_file = "certs/nav-ca.pem" }

[upstream.helse]
url = "https://fhir.example/r4"

[upstream.helse.credentials]
kind = "oauth2"
token_url = "https://maskinporten.example/token"
audience = "https://maskinporten.example/"
client_id = "bru-client"
scope = "helse:fhir.read"
key_file = "keys/grant.pem"
kid = "k1"
algorithm = "ES256"

[catalog]
publisher = "921429002"
contact_email = "datadeling@k429.example"
themes = { "helse/plan" = ["HEAL"] }
"#
    );
    let c = parse(&text).unwrap();
    let nav = &c.upstreams["nav"];
    assert_eq!(nav.resilience.max_concurrency, 8);
    assert_eq!(nav.resilience.retries, 2);
    assert_eq!(nav.resilience.retry_budget_percent, 20);
    assert_eq!(nav.resilience.breaker_failures, 3);
    assert_eq!(nav.resilience.breaker_open, Duration::from_millis(5000));
    match &nav.credentials {
        CredentialsConfig::Mtls { cert, key, ca_file } => {
            assert_eq!(*cert, Secret::File("/etc/bru/certs/bru.pem".into()));
            assert_eq!(*key, Secret::Env("BRU_MTLS_KEY".into()));
            assert_eq!(ca_file, Path::new("/etc/bru/certs/nav-ca.pem"));
        }
        other => panic!("{other:?}"),
    }
    match &c.upstreams["helse"].credentials {
        CredentialsConfig::OAuth2 { settings, key } => {
            assert_eq!(settings.client_id, "bru-client");
            assert_eq!(settings.algorithm, connectors::GrantAlgorithm::ES256);
            assert_eq!(settings.kid.as_deref(), Some("k1"));
            assert_eq!(*key, Secret::File("/etc/bru/keys/grant.pem".into()));
        }
        other => panic!("{other:?}"),
    }
    // Defaults where the file says nothing.
    assert_eq!(c.upstreams["helse"].resilience.retries, 0);
    assert_eq!(c.upstreams["helse"].resilience.breaker_failures, 5);
    assert_eq!(
        c.catalog.publisher.as_ref().map(|o| o.as_str()),
        Some("921429002")
    );
    assert_eq!(c.catalog.themes["helse/plan"], ["HEAL"]);
    assert_eq!(c.catalog.default_themes, ["GOVE"]);
    assert_eq!(parse(VALID).unwrap().catalog.default_themes, ["GOVE"]);
}

#[test]
fn bad_provider_credentials_and_resilience_keys_name_their_line() {
    let mtls = r#"credentials = { kind = "mtls", cert_file = "a", key_file = "b", ca_file = "c" }"#;
    check_error(&format!("{VALID}{mtls}\n"), 25, "need an https:// url");
    let oauth = r#"credentials = { kind = "oauth2", token_url = "https://t/token", audience = "a", client_id = "c", scope = "s", key_file = "k", algorithm = "HS256" }"#;
    check_error(&format!("{VALID}{oauth}\n"), 25, "HS256");
    let no_key = r#"credentials = { kind = "oauth2", token_url = "https://t/token", audience = "a", client_id = "c", scope = "s" }"#;
    check_error(&format!("{VALID}{no_key}\n"), 25, "key_file or key_env");
    check_error(&format!("{VALID}retries = 11\n"), 25, "retries");
    check_error(
        &format!("{VALID}breaker_open_ms = 0\n"),
        25,
        "breaker_open_ms",
    );
    check_error(
        &format!("{VALID}\n[catalog]\ndefault_themes = [\"CATS\"]\n"),
        28,
        "EU data theme",
    );
    check_error(
        &format!("{VALID}\n[catalog]\npublisher = \"123\"\n"),
        28,
        "organisation number",
    );
}

#[test]
fn the_no_op_audit_log_exists_only_in_benchmark_builds() {
    let with = |mode: &str| {
        VALID.replace(
            "url = \"sqlite://bru.db\"",
            &format!("url = \"sqlite://bru.db\"\naudit = \"{mode}\""),
        )
    };
    assert!(!parse(&with("durable")).unwrap().store.audit_noop);
    assert!(!parse(VALID).unwrap().store.audit_noop);
    check_error(&with("off"), 13, "store.audit");
    let durable = parse(VALID).unwrap();
    assert!(durable.store.audit_synchronous && durable.store.audit_tree);
    if cfg!(feature = "bench") {
        assert!(parse(&with("noop")).unwrap().store.audit_noop);
        let nosync = parse(&with("nosync")).unwrap().store;
        assert!(!nosync.audit_synchronous && !nosync.audit_tree);
        assert!(!parse(&with("no-tree")).unwrap().store.audit_tree);
    } else {
        for mode in ["noop", "nosync", "no-tree"] {
            check_error(&with(mode), 13, "feature bench");
        }
    }
}

#[test]
fn the_ablation_stages_exist_only_in_benchmark_builds() {
    let with = |stage: &str| format!("{VALID}\n[bench]\nstage = \"{stage}\"\n");
    #[cfg(feature = "bench")]
    {
        use crate::pipeline::Stage;
        assert_eq!(parse(VALID).unwrap().bench_stage, Stage::Full);
        assert_eq!(parse(&with("token")).unwrap().bench_stage, Stage::Token);
        assert!(parse(&with("everything")).is_err());
        // `[bench] followers`: all three unless the ladder names fewer.
        let config = parse(VALID).unwrap();
        for follower in ["indexer", "snoop", "notify"] {
            assert!(Stage::follows_log(&config, follower), "{follower}");
        }
        let config = parse(&format!("{VALID}\n[bench]\nfollowers = [\"indexer\"]\n")).unwrap();
        assert!(Stage::follows_log(&config, "indexer"));
        assert!(!Stage::follows_log(&config, "snoop"));
        assert!(!Stage::follows_log(&config, "notify"));
    }
    #[cfg(not(feature = "bench"))]
    {
        let errors = parse(&with("passthrough")).err().unwrap_or_default();
        assert!(
            errors
                .iter()
                .any(|e| e.to_string().contains("feature bench")),
            "{errors:?}"
        );
    }
}

#[test]
fn hsts_covers_subdomains_only_when_asked() {
    let c = parse(VALID).unwrap();
    assert_eq!(c.server.hsts, "max-age=31536000");
    let with = VALID.replace(
        "tls_key = \"tls/key.pem\"",
        "tls_key = \"tls/key.pem\"\nhsts_include_subdomains = true",
    );
    let c = parse(&with).unwrap();
    assert_eq!(c.server.hsts, "max-age=31536000; includeSubDomains");
}

/// `[store]` with a PostgreSQL URL from a file and the given extra lines, in
/// a directory holding `ca.pem`, `client.pem` and `client.key`.
fn store_tls_config(extra: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    for f in ["ca.pem", "client.pem", "client.key"] {
        std::fs::write(dir.path().join(f), "-----BEGIN CERTIFICATE-----\n").unwrap();
    }
    let text = VALID.replace(
        "url = \"sqlite://bru.db\"",
        &format!("url_file = \"db-url\"\n{extra}"),
    );
    (dir, text)
}

fn parse_in(dir: &tempfile::TempDir, text: &str) -> Result<Config, Vec<ConfigError>> {
    Config::parse(&dir.path().join("bru.toml"), text)
}

#[test]
fn store_tls_verify_full_with_a_ca_and_an_optional_client_certificate() {
    let (dir, text) = store_tls_config("tls = \"verify-full\"\nca_file = \"ca.pem\"");
    assert_eq!(
        parse_in(&dir, &text).unwrap().store.tls,
        consent_db::PgTls::VerifyFull {
            ca_file: dir.path().join("ca.pem"),
            client: None
        }
    );
    let (dir, text) = store_tls_config(
        "tls = \"verify-full\"\nca_file = \"ca.pem\"\nclient_cert_file = \"client.pem\"\nclient_key_file = \"client.key\"",
    );
    assert_eq!(
        parse_in(&dir, &text).unwrap().store.tls,
        consent_db::PgTls::VerifyFull {
            ca_file: dir.path().join("ca.pem"),
            client: Some(consent_db::ClientCertificate {
                cert_file: dir.path().join("client.pem"),
                key_file: dir.path().join("client.key"),
            })
        }
    );
    let (dir, text) = store_tls_config("tls = \"disable\"");
    assert_eq!(
        parse_in(&dir, &text).unwrap().store.tls,
        consent_db::PgTls::Disable
    );
    // Unset: consent-db decides by the URL's host (loopback only).
    let (dir, text) = store_tls_config("");
    assert_eq!(
        parse_in(&dir, &text).unwrap().store.tls,
        consent_db::PgTls::Unset
    );
}

#[test]
fn bad_store_tls_settings_name_their_line() {
    let cases = [
        ("tls = \"verify-full\"\nca_file = \"missing.pem\"", "ca_file = ", "store.ca_file: cannot read"),
        ("tls = \"verify-full\"", "tls = ", "needs ca_file"),
        ("tls = \"require\"\nca_file = \"ca.pem\"", "tls = ", "does not check the server's name"),
        ("tls = \"verify-ca\"\nca_file = \"ca.pem\"", "tls = ", "does not check the server's name"),
        ("tls = \"on\"", "tls = ", "must be \"verify-full\" or \"disable\""),
        ("ca_file = \"ca.pem\"", "ca_file = ", "need tls = \"verify-full\""),
        ("tls = \"disable\"\nca_file = \"ca.pem\"", "ca_file = ", "not used with tls = \"disable\""),
        (
            "tls = \"verify-full\"\nca_file = \"ca.pem\"\nclient_cert_file = \"client.pem\"",
            "client_cert_file = ",
            "go together",
        ),
        (
            "tls = \"verify-full\"\nca_file = \"ca.pem\"\nclient_cert_file = \"client.pem\"\nclient_key_file = \"nope.key\"",
            "client_key_file = ",
            "store.client_key_file: cannot read",
        ),
        ("tls = \"verify-full\"\nca_file = \".\"", "ca_file = ", "is not a file"),
    ];
    for (extra, marker, needle) in cases {
        let (dir, text) = store_tls_config(extra);
        let errors = parse_in(&dir, &text).unwrap_err();
        let line = line_of(&text, marker);
        assert!(
            errors
                .iter()
                .any(|e| e.line == line && e.message.contains(needle)),
            "{extra}: expected line {line} with {needle:?}, got {errors:?}"
        );
    }
    // SQLite has no TLS.
    let text = VALID.replace(
        "url = \"sqlite://bru.db\"",
        "url = \"sqlite://bru.db\"\ntls = \"disable\"",
    );
    check_error(&text, line_of(&text, "tls = "), "applies to PostgreSQL");
}

#[test]
fn connection_limits_have_defaults_and_refuse_zero() {
    let c = parse(VALID).unwrap();
    assert_eq!(c.server.max_headers, 100);
    assert_eq!(c.server.body_read_timeout, Duration::from_secs(60));
    assert_eq!(c.server.http2_idle_timeout, Duration::from_secs(300));
    assert_eq!(c.server.max_connections_per_address, 256);
    let set = |line: &str| {
        VALID.replace(
            "tls_key = \"tls/key.pem\"",
            &format!("tls_key = \"tls/key.pem\"\n{line}"),
        )
    };
    let c = parse(&set("body_read_timeout_ms = 1500")).unwrap();
    assert_eq!(c.server.body_read_timeout, Duration::from_millis(1500));
    for zero in [
        "body_read_timeout_ms = 0",
        "http2_idle_timeout_ms = 0",
        "max_connections_per_address = 0",
    ] {
        let errors = parse(&set(zero)).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.message.contains("must be positive")),
            "{zero}: {errors:?}"
        );
    }
    let errors = parse(&set("max_headers = 3")).unwrap_err();
    assert!(errors.iter().any(|e| e.message.contains("max_headers")));
}
