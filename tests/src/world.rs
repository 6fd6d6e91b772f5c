//! One isolated test world: a temp dir with config, policy, TLS and keys, a
//! JWKS server for three issuers, and two providers (`k429`, `nav`).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::bru::{audit_export, spawn_bru, Bru};
use crate::jwt::{maskinporten_claims, EcKey, Jwt, RsaKey, Signer};
use crate::pki::{ed25519_pkcs8_pem, p256_pkcs8_pem, Pki};
use crate::servers::{closed_port, JwksServer, Provider};
use crate::*;

pub const ISSUER_MP: &str = "https://test-maskinporten.example/";
pub const ISSUER_ES: &str = "https://test-es.example/";
pub const ISSUER_AUD: &str = "https://test-aud.example/";
/// The audience the `test-mp-aud` issuer's tokens must carry.
pub const AUDIENCE: &str = "https://bru.test.example/";

/// The policy every world uses (format: docs/policy.md).
pub const POLICY: &str = r#"
[[organisation]]
org = "921429002"
name = "K429 kommune"

[[organisation]]
org = "983440002"
name = "NAV (test)"

[[organisation]]
org = "916542003"
name = "Helsenorge (test)"

[[organisation]]
org = "999000428"
name = "Omsorgsapp AS"

[[organisation]]
org = "971000007"
name = "Snoop AS"

[[purpose]]
id = "sosialhjelp-saksbehandling"
title = { nb = "Saksbehandling av sosialhjelp", en = "Social assistance casework" }
description = { nb = "NAV behandler en sak om sosialhjelp.", en = "NAV handles a social assistance case." }

[[purpose]]
id = "omsorgsbolig-soknad"
title = { nb = "Søknad om omsorgsbolig", en = "Application for sheltered housing" }
description = { nb = "Kommunen fyller ut søknaden.", en = "The municipality pre-fills the application." }

[[purpose]]
id = "tilsyn"
title = { nb = "Tilsyn", en = "Supervision" }
description = { nb = "Tilsyn med tjenesten.", en = "Supervision of the service." }

[[provider]]
id = "k429"
org = "921429002"

[[provider]]
id = "nav"
org = "983440002"

[[dataset]]
provider = "k429"
id = "sosialtjeneste"
title = { nb = "Sosialtjeneste", en = "Social services" }
description = { nb = "Saker i sosialtjenesten.", en = "Social service cases." }
basis = "statutory"
legal_ref = "sosialtjenesteloven § 43 (illustrativ)"
scope = "k429:sosialtjeneste.read"
subject = { header = "Nav-Personident" }

  [[dataset.purpose]]
  id = "sosialhjelp-saksbehandling"

  [[dataset.purpose]]
  id = "tilsyn"

[[dataset]]
provider = "k429"
id = "sak-query"
title = { nb = "Sak (query)", en = "Case (query)" }
description = { nb = "Subjekt i query.", en = "Subject in the query." }
basis = "statutory"
legal_ref = "sosialtjenesteloven § 43 (illustrativ)"
scope = "k429:sak.read"
subject = { query = "fnr" }

  [[dataset.purpose]]
  id = "sosialhjelp-saksbehandling"

[[dataset]]
provider = "k429"
id = "sak-path"
title = { nb = "Sak (sti)", en = "Case (path)" }
description = { nb = "Subjekt i stien.", en = "Subject in the path." }
basis = "statutory"
legal_ref = "sosialtjenesteloven § 43 (illustrativ)"
scope = "k429:sak.read"
subject = { path_segment = 0 }

  [[dataset.purpose]]
  id = "sosialhjelp-saksbehandling"

[[dataset]]
provider = "k429"
id = "sak-json"
title = { nb = "Sak (JSON)", en = "Case (JSON)" }
description = { nb = "Subjekt i JSON-kroppen.", en = "Subject in the JSON body." }
basis = "statutory"
legal_ref = "sosialtjenesteloven § 43 (illustrativ)"
scope = "k429:sak.read"
subject = { json_body = "/person/id" }

  [[dataset.purpose]]
  id = "sosialhjelp-saksbehandling"

[[dataset]]
provider = "k429"
id = "minimert"
title = { nb = "Minimert", en = "Minimised" }
description = { nb = "Bare aar og sum.", en = "Only aar and sum." }
basis = "statutory"
legal_ref = "sosialtjenesteloven § 43 (illustrativ)"
scope = "k429:sak.read"
subject = { header = "Nav-Personident" }

  [[dataset.purpose]]
  id = "sosialhjelp-saksbehandling"
  minimise = { json_fields = ["aar", "sum"] }

[[dataset]]
provider = "nav"
id = "inntekt"
title = { nb = "Inntekt", en = "Income" }
description = { nb = "Inntekt fra a-ordningen.", en = "Income." }
basis = "consent"
scope = "nav:inntekt.read"
subject = { header = "Nav-Personident" }

  [[dataset.purpose]]
  id = "omsorgsbolig-soknad"
  minimise = { json_fields = ["aar", "sum"] }

[[consumer]]
org = "983440002"

  [[consumer.dataset]]
  id = "k429/sosialtjeneste"
  purposes = ["sosialhjelp-saksbehandling"]

  [[consumer.dataset]]
  id = "k429/sak-query"

  [[consumer.dataset]]
  id = "k429/sak-path"

  [[consumer.dataset]]
  id = "k429/sak-json"

  [[consumer.dataset]]
  id = "k429/minimert"

[[consumer]]
org = "921429002"
suppliers = ["999000428"]
consent_requester = true

  [[consumer.dataset]]
  id = "nav/inntekt"

  [[consumer.dataset]]
  id = "k429/sosialtjeneste"
"#;

/// Options for a world's `bru.toml`.
#[derive(Clone, Debug)]
pub struct WorldBuilder {
    max_body_bytes: u64,
    max_header_bytes: u64,
    request_timeout_ms: u64,
    jwks_refresh_min_interval_ms: u64,
    shutdown_grace_ms: u64,
    header_read_timeout_ms: u64,
    unauthenticated_rate: (u32, u32),
    closed_upstreams: Vec<String>,
    env: Vec<(String, String)>,
    /// More `[server]` lines, `key = value` as TOML.
    server_extra: Vec<String>,
}

impl Default for WorldBuilder {
    fn default() -> Self {
        WorldBuilder {
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 16384,
            request_timeout_ms: 30_000,
            jwks_refresh_min_interval_ms: 10_000,
            shutdown_grace_ms: 30_000,
            header_read_timeout_ms: 10_000,
            unauthenticated_rate: (100, 200),
            closed_upstreams: Vec::new(),
            env: Vec::new(),
            server_extra: runtime_from_env(),
        }
    }
}

/// `BRU_TEST_RUNTIME=multi-thread` (or `per-core`, the default) runs every
/// world's Bru with that `[server] runtime`, so the whole suite can be run
/// on either (CI: the SQLite pass on the default, the PostgreSQL pass on
/// multi-thread). A test that sets `runtime` itself keeps its own.
fn runtime_from_env() -> Vec<String> {
    match std::env::var("BRU_TEST_RUNTIME") {
        Ok(mode) if !mode.is_empty() => vec![format!("runtime = \"{mode}\"\n")],
        _ => Vec::new(),
    }
}

impl WorldBuilder {
    pub fn max_body_bytes(mut self, n: u64) -> Self {
        self.max_body_bytes = n;
        self
    }

    pub fn max_header_bytes(mut self, n: u64) -> Self {
        self.max_header_bytes = n;
        self
    }

    pub fn request_timeout_ms(mut self, n: u64) -> Self {
        self.request_timeout_ms = n;
        self
    }

    pub fn jwks_refresh_min_interval_ms(mut self, n: u64) -> Self {
        self.jwks_refresh_min_interval_ms = n;
        self
    }

    pub fn shutdown_grace_ms(mut self, n: u64) -> Self {
        self.shutdown_grace_ms = n;
        self
    }

    /// Calls that fail authentication, per client address: (per second, burst).
    pub fn unauthenticated_rate(mut self, per_second: u32, burst: u32) -> Self {
        self.unauthenticated_rate = (per_second, burst);
        self
    }

    pub fn header_read_timeout_ms(mut self, n: u64) -> Self {
        self.header_read_timeout_ms = n;
        self
    }

    /// Another `[server]` setting, e.g. `("body_read_timeout_ms", "1000")`
    /// (the value as TOML).
    pub fn server_setting(mut self, key: &str, value: &str) -> Self {
        // A test's own setting wins over `BRU_TEST_RUNTIME`'s (a TOML key
        // may appear only once).
        self = self.without_server_setting(key);
        self.server_extra.push(format!("{key} = {value}\n"));
        self
    }

    /// Leaves `key` out of `[server]`, `BRU_TEST_RUNTIME`'s too: the
    /// default applies.
    pub fn without_server_setting(mut self, key: &str) -> Self {
        let prefix = format!("{key} = ");
        self.server_extra.retain(|line| !line.starts_with(&prefix));
        self
    }

    /// An environment variable for the `bru` process (e.g. `RUST_LOG`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Points `[upstream.<provider>]` at a port where nothing listens.
    pub fn closed_upstream(mut self, provider: &str) -> Self {
        self.closed_upstreams.push(provider.to_owned());
        self
    }

    pub async fn build(self) -> TestWorld {
        init();
        let dir = tempfile::Builder::new()
            .prefix("bru-test-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path();
        let pki = Pki::generate();
        std::fs::create_dir_all(root.join("tls")).expect("mkdir tls");
        std::fs::create_dir_all(root.join("keys")).expect("mkdir keys");
        std::fs::write(root.join("tls/cert.pem"), &pki.cert_pem).expect("write cert");
        std::fs::write(root.join("tls/key.pem"), &pki.key_pem).expect("write key");
        std::fs::write(root.join("tls/ca.pem"), &pki.ca_pem).expect("write ca");
        let mut pseudonym = [0u8; 32];
        aws_lc_rs::rand::fill(&mut pseudonym).expect("random");
        std::fs::write(root.join("keys/pseudonym.key"), pseudonym).expect("write pseudonym key");
        std::fs::write(root.join("keys/assertion.pem"), p256_pkcs8_pem()).expect("write key");
        std::fs::write(root.join("keys/checkpoint.pem"), ed25519_pkcs8_pem()).expect("write key");
        std::fs::write(root.join("policy.toml"), POLICY).expect("write policy");

        let jwks = JwksServer::start().await;
        let mp_key = RsaKey::pooled(0, "mp");
        let aud_key = RsaKey::pooled(1, "aud");
        let es_key = EcKey::generate("es");
        jwks.set_keys("mp", vec![mp_key.jwk()]);
        jwks.set_keys("aud", vec![aud_key.jwk()]);
        jwks.set_keys("es", vec![es_key.jwk()]);

        let k429 = Provider::start("k429").await;
        let nav = Provider::start("nav").await;
        let upstream_url = |p: &Provider| {
            if self.closed_upstreams.contains(&p.id) {
                format!("http://127.0.0.1:{}", closed_port())
            } else {
                p.url()
            }
        };

        let issuer = |name: &str, iss: &str, path: &str, alg: &str, aud: Option<&str>| {
            let mut s = format!(
                "[[issuer]]\nname = \"{name}\"\nkind = \"maskinporten\"\nissuer = \"{iss}\"\n\
                 jwks_url = \"{}\"\nalgorithms = [\"{alg}\"]\nleeway_s = 30\n\
                 max_token_bytes = 8192\njwks_refresh_min_interval_ms = {}\n",
                jwks.url(path),
                self.jwks_refresh_min_interval_ms
            );
            if let Some(aud) = aud {
                s.push_str(&format!("audience = \"{aud}\"\n"));
            }
            s
        };
        let upstream = |id: &str, url: String| {
            format!(
                "[upstream.{id}]\nurl = \"{url}\"\nconnect_timeout_ms = 2000\n\
                 request_timeout_ms = {}\nmax_response_bytes = 104857600\n\
                 credentials = {{ kind = \"none\" }}\n",
                self.request_timeout_ms
            )
        };
        let config = format!(
            "policy = \"policy.toml\"\n\
             public_url = \"https://localhost:8443\"\n\
             allow_synthetic_ids = true\n\n\
             [server]\n\
             listen = \"127.0.0.1:0\"\n\
             ops_listen = \"127.0.0.1:0\"\n\
             tls_cert = \"tls/cert.pem\"\n\
             tls_key = \"tls/key.pem\"\n\
             max_header_bytes = {}\n\
             max_body_bytes = {}\n\
             header_read_timeout_ms = {}\n\
             unauthenticated_per_second = {}\n\
             unauthenticated_burst = {}\n\
             shutdown_grace_ms = {}\n\
             {}\n\
             [store]\n\
             url = \"sqlite://bru.db\"\n\
             audit_write_timeout_ms = 10000\n\n\
             [keys]\n\
             pseudonym_key_file = \"keys/pseudonym.key\"\n\
             assertion_key_file = \"keys/assertion.pem\"\n\
             checkpoint_key_file = \"keys/checkpoint.pem\"\n\n\
             {}\n{}\n{}\n{}\n{}",
            self.max_header_bytes,
            self.max_body_bytes,
            self.header_read_timeout_ms,
            self.unauthenticated_rate.0,
            self.unauthenticated_rate.1,
            self.shutdown_grace_ms,
            self.server_extra.concat(),
            issuer("test-mp", ISSUER_MP, "mp", "RS256", None),
            issuer("test-mp-es", ISSUER_ES, "es", "ES256", None),
            issuer("test-mp-aud", ISSUER_AUD, "aud", "RS256", Some(AUDIENCE)),
            upstream("k429", upstream_url(&k429)),
            upstream("nav", upstream_url(&nav)),
        );
        let config = match postgres_url() {
            // A PostgreSQL URL holds a password: config takes it from a file.
            Some(base) => {
                let url = fresh_postgres_database(&base).await;
                std::fs::write(root.join("store.url"), url).expect("write store.url");
                config.replacen("url = \"sqlite://bru.db\"", "url_file = \"store.url\"", 1)
            }
            None => config,
        };
        let config_path = root.join("bru.toml");
        std::fs::write(&config_path, config).expect("write config");
        TestWorld {
            dir,
            config_path,
            pki,
            jwks,
            mp_key,
            aud_key,
            es_key,
            k429,
            nav,
            env: self.env,
        }
    }
}

/// The server URL when the suite runs on PostgreSQL (`BRU_TEST_STORE=postgres`
/// with `BRU_TEST_POSTGRES_URL`, see scripts/start-postgres); `None` on SQLite.
pub fn postgres_url() -> Option<String> {
    if std::env::var("BRU_TEST_STORE").as_deref() != Ok("postgres") {
        return None;
    }
    let url = std::env::var("BRU_TEST_POSTGRES_URL")
        .expect("BRU_TEST_STORE=postgres needs BRU_TEST_POSTGRES_URL (scripts/start-postgres)");
    Some(url)
}

/// True, with the reason printed, when a test that needs SQLite itself (its
/// file, a tmpfs under it) runs in the PostgreSQL pass.
pub fn skip_on_postgres(why: &str) -> bool {
    if postgres_url().is_some() {
        eprintln!("SKIPPED on PostgreSQL: {why}");
        return true;
    }
    false
}

/// `CREATE DATABASE bru_test_<random>` on the server of `base`; the new URL.
pub async fn fresh_postgres_database(base: &str) -> String {
    use sqlx::Connection;
    let name = format!("bru_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    let _ = conn.close().await;
    let (server, _) = base.rsplit_once('/').expect("a postgres URL has a path");
    format!("{server}/{name}")
}

/// Everything one test needs around a `bru` process.
pub struct TestWorld {
    pub dir: TempDir,
    pub config_path: PathBuf,
    pub pki: Pki,
    pub jwks: JwksServer,
    /// Signs for `test-mp` (RS256, JWKS `mp`).
    pub mp_key: RsaKey,
    /// Signs for `test-mp-aud` (RS256, JWKS `aud`, audience checked).
    pub aud_key: RsaKey,
    /// Signs for `test-mp-es` (ES256, JWKS `es`).
    pub es_key: EcKey,
    /// The provider behind `/data/k429/…`.
    pub k429: Provider,
    /// The provider behind `/data/nav/…`.
    pub nav: Provider,
    /// Extra environment for `bru`.
    pub env: Vec<(String, String)>,
}

impl TestWorld {
    pub fn builder() -> WorldBuilder {
        WorldBuilder::default()
    }

    /// A world with the default options.
    pub async fn new() -> TestWorld {
        WorldBuilder::default().build().await
    }

    /// Starts `bru serve --config bru.toml`.
    pub async fn start(&self) -> Bru {
        let args = vec![
            "serve".to_owned(),
            "--config".to_owned(),
            self.config_path.display().to_string(),
        ];
        let (child, public, ops, logs) = spawn_bru(&args, self.dir.path(), &self.env).await;
        Bru::new(child, public, ops, logs, &self.pki.ca_pem)
    }

    /// Claims of a `test-mp` token for `org` with `scope` (RS256, the issuer's kid).
    pub fn mp(&self, org: &str, scope: &str) -> Jwt {
        Jwt::new(
            json!({"alg": "RS256", "typ": "JWT", "kid": self.mp_key.kid}),
            maskinporten_claims(ISSUER_MP, org, scope),
        )
    }

    /// A valid `test-mp` token for `org` with `scope`.
    pub fn mp_token(&self, org: &str, scope: &str) -> String {
        self.mp(org, scope).sign(&self.mp_signer())
    }

    pub fn mp_signer(&self) -> Signer {
        Signer::Rsa(self.mp_key.clone())
    }

    /// Claims of a `test-mp-es` token (ES256).
    pub fn es(&self, org: &str, scope: &str) -> Jwt {
        Jwt::new(
            json!({"alg": "ES256", "typ": "JWT", "kid": self.es_key.kid}),
            maskinporten_claims(ISSUER_ES, org, scope),
        )
    }

    pub fn es_signer(&self) -> Signer {
        Signer::Ec(self.es_key.clone())
    }

    /// Claims of a `test-mp-aud` token with the right audience.
    pub fn aud(&self, org: &str, scope: &str) -> Jwt {
        Jwt::new(
            json!({"alg": "RS256", "typ": "JWT", "kid": self.aud_key.kid}),
            maskinporten_claims(ISSUER_AUD, org, scope),
        )
        .claim("aud", AUDIENCE)
    }

    pub fn aud_signer(&self) -> Signer {
        Signer::Rsa(self.aud_key.clone())
    }

    /// NAV's statutory call: `GET /data/k429/sosialtjeneste{rest}` about `subject`.
    pub fn nav_sosial(&self, bru: &Bru, rest: &str, subject: &str) -> reqwest::RequestBuilder {
        bru.get(&format!("/data/k429/sosialtjeneste{rest}"))
            .bearer_auth(self.mp_token(NAV, SCOPE_SOSIAL))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", subject)
    }

    /// All audit records (`bru audit export`) and the raw JSONL.
    pub async fn export(&self) -> (Vec<Value>, String) {
        audit_export(&self.config_path, self.dir.path()).await
    }

    /// Exports until `pred` holds (records may be written just after a reply).
    pub async fn wait_records(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (records, raw) = self.export().await;
            if pred(&records) {
                return records;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "audit records never showed {what}; export:\n{raw}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits for the `kind` record of `transfer_id` and returns it.
    pub async fn record(&self, transfer_id: &str, kind: &str) -> Value {
        let recs = self
            .wait_records(&format!("a {kind} record for {transfer_id}"), |r| {
                find_record(r, transfer_id, kind).is_some()
            })
            .await;
        find_record(&recs, transfer_id, kind)
            .cloned()
            .unwrap_or_default()
    }
}

/// The record of `kind` for `transfer_id`.
pub fn find_record<'a>(records: &'a [Value], transfer_id: &str, kind: &str) -> Option<&'a Value> {
    records
        .iter()
        .find(|r| r["transfer_id"] == transfer_id && r["kind"] == kind)
}
