#![allow(clippy::unwrap_used)]

use super::*;

fn raw(toml_text: &str) -> RawPortalConfig {
    toml::from_str(toml_text).unwrap()
}

fn check(toml_text: &str) -> Result<PortalConfig, Vec<String>> {
    PortalConfig::from_raw(
        &raw(toml_text),
        Path::new("/etc/bru"),
        "https://bru.example/",
    )
}

#[test]
fn a_full_section_is_read_with_defaults() {
    let c = check(
        r#"
        issuer = "https://idporten.no"
        client_id = "bru"
        client_secret_env = "BRU_IDPORTEN_SECRET"
        session_key_file = "keys/portal-session.key"
        "#,
    )
    .unwrap();
    assert_eq!(
        c.session_key,
        SecretSource::File("/etc/bru/keys/portal-session.key".into())
    );
    assert_eq!(c.idle_timeout, Duration::from_secs(900));
    assert_eq!(c.absolute_timeout, Duration::from_secs(7200));
    let o = c.oidc.unwrap();
    assert_eq!(o.redirect_url, "https://bru.example/innlogging/callback");
    assert_eq!(o.scope, "openid profile");
    assert_eq!(o.acr_values, "idporten-loa-substantial");
    assert_eq!(o.client_auth, ClientAuth::Basic);
    assert_eq!(
        o.client_secret,
        SecretSource::Env("BRU_IDPORTEN_SECRET".into())
    );
    assert!(!o.sub_as_pid);
}

#[test]
fn the_demo_section_has_only_a_session_key() {
    let c = check(r#"session_key_file = "k""#).unwrap();
    assert!(c.oidc.is_none());
}

#[test]
fn mistakes_are_named() {
    let errors = |t: &str| check(t).unwrap_err().join("\n");
    let e = errors(r#"issuer = "https://idp.example""#);
    assert!(
        e.contains("portal.session_key_file or portal.session_key_env is required"),
        "{e}"
    );
    assert!(e.contains("portal.client_id is required"), "{e}");
    assert!(
        e.contains("portal.client_secret_file or portal.client_secret_env is required"),
        "{e}"
    );
    let e = errors(
        r#"session_key_file = "k"
        issuer = "http://idp.example"
        client_id = "c"
        client_secret_file = "s""#,
    );
    assert!(e.contains("portal.issuer must be an https URL"), "{e}");
    let e = errors(
        r#"session_key_file = "k"
        client_id = "c""#,
    );
    assert!(e.contains("portal.client_id needs portal.issuer"), "{e}");
    let e = errors(
        r#"session_key_file = "k"
        idle_timeout_s = 7200
        absolute_timeout_s = 3600"#,
    );
    assert!(e.contains("idle_timeout_s must not be longer"), "{e}");
    let e = errors(
        r#"session_key_file = "k"
        issuer = "https://idp.example"
        client_id = "c"
        client_secret_file = "s"
        redirect_url = "https://bru.example/elsewhere"
        scope = "profile""#,
    );
    assert!(
        e.contains("portal.redirect_url must be an https URL whose path is /innlogging/callback"),
        "{e}"
    );
    assert!(e.contains("portal.scope must include openid"), "{e}");
    assert!(toml::from_str::<RawPortalConfig>(r#"unknown = 1"#).is_err());
}

#[test]
fn http_is_only_for_loopback() {
    assert!(is_allowed_url("https://idporten.no"));
    assert!(is_allowed_url("http://127.0.0.1:4000"));
    assert!(is_allowed_url("http://localhost:4000/x"));
    assert!(!is_allowed_url("http://idporten.no"));
    assert!(!is_allowed_url("https://user:pw@idporten.no"));
    assert!(!is_allowed_url("ftp://idporten.no"));
    assert!(!is_allowed_url("not a url"));
}
