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

fn check_error(text: &str, line: usize, needle: &str) {
    let errors = parse(text).unwrap_err();
    assert!(
        errors.iter().any(|e| e.line == line && e.message.contains(needle)),
        "expected line {line} with {needle:?}, got {errors:?}"
    );
}

#[test]
fn a_valid_config_resolves_paths_next_to_itself() {
    let c = parse(VALID).unwrap();
    assert_eq!(c.policy_file, Path::new("/etc/bru/policy.toml"));
    assert_eq!(c.store.url, Secret::Plain("sqlite:///etc/bru/bru.db".into()));
    assert_eq!(c.keys.checkpoint_key, Secret::Env("BRU_CHECKPOINT_KEY".into()));
    assert_eq!(c.issuers[0].algorithms, vec![jsonwebtoken::Algorithm::RS256]);
    assert_eq!(c.upstreams["nav"].line, 29);
}

#[test]
fn errors_name_their_line() {
    check_error(&VALID.replace("listen = \"127.0.0.1:8443\"", "listen = \"nowhere\""), 6, "not an address");
    check_error(&VALID.replace("jwks_url = \"https://mp.example/jwks\"", "jwks_url = \"https://mp.example/jwks\"\nalgorithms = [\"HS256\"]"), 24, "HS256");
    check_error(&VALID.replace("[upstream.nav]", "[upstream.nav]\ncolour = 1"), 30, "unknown field");
    check_error(&VALID.replace("url = \"sqlite://bru.db\"", "url = \"postgres://u:p@db/bru\""), 0, "url_file or url_env");
    check_error(&format!("{VALID}\n[upstream.x]\nurl = \"ftp://x\"\n"), 33, "not an absolute http(s) URL");
    check_error(&VALID.replace("name = \"mp\"", "name = \"mp\"\nleeway_s = 9000"), 23, "leeway_s");
}

#[test]
fn demo_issuers_are_recognised() {
    let c = parse(&VALID.replace("https://mp.example/\"", "https://localhost:8443/demo/maskinporten\"")).unwrap();
    assert!(c.issuers[0].is_demo());
    assert!(!parse(VALID).unwrap().issuers[0].is_demo());
}
