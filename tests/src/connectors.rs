//! A test world for the provider side: extra providers, datasets and
//! upstreams added to a [`TestWorld`] before `bru` starts, and the servers
//! behind them: a FHIR server that pages, a provider streaming generated
//! bytes, a TLS provider that demands a client certificate, a token endpoint
//! that checks JWT-bearer grants, and a port where nothing listens.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::servers::{closed_port, Provider};
use crate::world::TestWorld;

/// The organisation that calls the extra datasets (Helsenorge has no rights in the base policy).
pub const CALLER: &str = crate::HELSENORGE;
pub const PURPOSE: &str = crate::PURPOSE_TILSYN;
pub const SCOPE_FHIR: &str = "fhir:careplan.read";
pub const SCOPE_BULK: &str = "bulk:download.read";
pub const SCOPE_SECURE: &str = "secure:data.read";
/// Grant settings the token endpoint insists on.
pub const GRANT_AUDIENCE: &str = "https://test-maskinporten.example/token-audience";
pub const GRANT_CLIENT: &str = "bru-test-client";
pub const GRANT_SCOPE: &str = "oauth:data.read";
pub const GRANT_KID: &str = "bru-grant-1";

/// Policy for the extra providers, appended to the world's policy.
pub const POLICY_EXTRA: &str = r#"
[[provider]]
id = "fhir"
org = "916542003"

[[provider]]
id = "bulk"
org = "983440002"

[[provider]]
id = "secure"
org = "983440002"

[[provider]]
id = "secure-expired"
org = "983440002"

[[provider]]
id = "secure-wrongca"
org = "983440002"

[[provider]]
id = "oauth"
org = "983440002"

[[provider]]
id = "oauth-refused"
org = "983440002"

[[provider]]
id = "flaky"
org = "983440002"

[[dataset]]
provider = "fhir"
id = "careplan"
title = { nb = "Pleieplaner", en = "Care plans" }
description = { nb = "Pleieplaner fra FHIR-serveren.", en = "Care plans from the FHIR server." }
basis = "statutory"
legal_ref = "helse- og omsorgstjenesteloven § 3-2 (illustrativ)"
scope = "fhir:careplan.read"
subject = { query = "patient" }

  [[dataset.purpose]]
  id = "tilsyn"
  minimise = { fhir_resource_types = ["CarePlan"] }

[[dataset]]
provider = "fhir"
id = "plain"
title = { nb = "FHIR uten filter", en = "FHIR unfiltered" }
description = { nb = "Hele svaret.", en = "The whole answer." }
basis = "statutory"
legal_ref = "helse- og omsorgstjenesteloven § 3-2 (illustrativ)"
scope = "fhir:careplan.read"
subject = { query = "patient" }

  [[dataset.purpose]]
  id = "tilsyn"

[[dataset]]
provider = "bulk"
id = "download"
title = { nb = "Stor nedlasting", en = "Large download" }
description = { nb = "Mange byte uten personopplysninger.", en = "Many bytes without personal data." }
basis = "statutory"
legal_ref = "statistikkloven § 10 (illustrativ)"
scope = "bulk:download.read"
personal_data = false

  [[dataset.purpose]]
  id = "tilsyn"
"#;

/// One statutory, non-personal dataset `data` for a provider id.
fn simple_dataset(provider: &str) -> String {
    format!(
        "\n[[dataset]]\nprovider = \"{provider}\"\nid = \"data\"\n\
         title = {{ nb = \"Data\", en = \"Data\" }}\ndescription = {{ nb = \"Data.\", en = \"Data.\" }}\n\
         basis = \"statutory\"\nlegal_ref = \"forvaltningsloven § 13 b (illustrativ)\"\n\
         scope = \"secure:data.read\"\npersonal_data = false\n\n  [[dataset.purpose]]\n  id = \"tilsyn\"\n"
    )
}

const CREDENTIAL_PROVIDERS: [&str; 6] = [
    "secure",
    "secure-expired",
    "secure-wrongca",
    "oauth",
    "oauth-refused",
    "flaky",
];

/// Everything beyond the base world.
pub struct ConnectorWorld {
    pub world: TestWorld,
    /// The public port `bru` will listen on (so `public_url` is real and
    /// links Bru writes can be followed as they are).
    pub port: u16,
    pub fhir: FhirServer,
    pub bulk: BulkServer,
    pub mtls: MtlsServer,
    pub token: TokenServer,
    /// Behind `oauth` and `oauth-refused`.
    pub oauth: Provider,
}

impl ConnectorWorld {
    /// `bulk_bytes`: how many bytes `/data/bulk/download` streams.
    pub async fn new(bulk_bytes: u64) -> ConnectorWorld {
        let world = TestWorld::new().await;
        let dir = world.dir.path().to_owned();
        let fhir = FhirServer::start().await;
        let bulk = BulkServer::start(bulk_bytes).await;
        let pki = MtlsPki::generate();
        let mtls = MtlsServer::start(&pki).await;
        let grant_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("grant key");
        let token = TokenServer::start(&grant_key.public_key_pem()).await;
        let oauth = Provider::start("oauth").await;

        let write =
            |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("write test file");
        write("mtls-client.pem", &pki.client_cert);
        write("mtls-client.key", &pki.client_key);
        write("mtls-expired.pem", &pki.expired_cert);
        write("mtls-expired.key", &pki.expired_key);
        write("provider-ca.pem", &pki.provider_ca);
        write("other-ca.pem", &pki.other_ca);
        write("grant.pem", &grant_key.serialize_pem());

        let mut policy = std::fs::read_to_string(dir.join("policy.toml")).expect("read policy");
        policy.push_str(POLICY_EXTRA);
        for p in CREDENTIAL_PROVIDERS {
            policy.push_str(&simple_dataset(p));
        }
        policy.push_str(&format!("\n[[consumer]]\norg = \"{CALLER}\"\n"));
        for d in ["fhir/careplan", "fhir/plain", "bulk/download"]
            .into_iter()
            .map(str::to_owned)
            .chain(CREDENTIAL_PROVIDERS.iter().map(|p| format!("{p}/data")))
        {
            policy.push_str(&format!("\n  [[consumer.dataset]]\n  id = \"{d}\"\n"));
        }
        write("policy.toml", &policy);

        let port = closed_port();
        let mut config = std::fs::read_to_string(&world.config_path).expect("read config");
        config = config
            .replacen(
                "listen = \"127.0.0.1:0\"",
                &format!("listen = \"127.0.0.1:{port}\""),
                1,
            )
            .replace(
                "public_url = \"https://localhost:8443\"",
                &format!("public_url = \"https://localhost:{port}\""),
            );
        let mtls_url = format!("https://localhost:{}", mtls.addr.port());
        let mtls_creds = |cert: &str, key: &str, ca: &str| {
            format!("credentials = {{ kind = \"mtls\", cert_file = \"{cert}\", key_file = \"{key}\", ca_file = \"{ca}\" }}\n")
        };
        let oauth_creds = |client: &str| {
            format!(
                "credentials = {{ kind = \"oauth2\", token_url = \"{}\", audience = \"{GRANT_AUDIENCE}\", \
                 client_id = \"{client}\", scope = \"{GRANT_SCOPE}\", key_file = \"grant.pem\", kid = \"{GRANT_KID}\", \
                 algorithm = \"ES256\" }}\n",
                token.url()
            )
        };
        let sections = [
            ("fhir", fhir.url(), String::new()),
            (
                "bulk",
                bulk.url(),
                "max_response_bytes = 4294967296\n".to_owned(),
            ),
            (
                "secure",
                mtls_url.clone(),
                mtls_creds("mtls-client.pem", "mtls-client.key", "provider-ca.pem"),
            ),
            (
                "secure-expired",
                mtls_url.clone(),
                mtls_creds("mtls-expired.pem", "mtls-expired.key", "provider-ca.pem"),
            ),
            (
                "secure-wrongca",
                mtls_url,
                mtls_creds("mtls-client.pem", "mtls-client.key", "other-ca.pem"),
            ),
            ("oauth", oauth.url(), oauth_creds(GRANT_CLIENT)),
            (
                "oauth-refused",
                oauth.url(),
                oauth_creds("an-unknown-client"),
            ),
            (
                "flaky",
                format!("http://127.0.0.1:{}", closed_port()),
                "retries = 1\nbreaker_failures = 2\nbreaker_open_ms = 600000\n".to_owned(),
            ),
        ];
        for (id, url, extra) in sections {
            config.push_str(&format!("\n[upstream.{id}]\nurl = \"{url}\"\n{extra}"));
        }
        config.push_str(
            "\n[catalog]\npublisher = \"921429002\"\ncontact_email = \"datadeling@k429.example\"\n\
             themes = { \"fhir/careplan\" = [\"HEAL\"] }\n",
        );
        std::fs::write(&world.config_path, config).expect("write config");
        ConnectorWorld {
            world,
            port,
            fhir,
            bulk,
            mtls,
            token,
            oauth,
        }
    }

    /// A token for the extra datasets.
    pub fn token(&self, scope: &str) -> String {
        self.world.mp_token(CALLER, scope)
    }
}

// ---------------------------------------------------------------- FHIR

/// A FHIR server: `GET /{dataset}?patient=…[&_page=N]` answers a searchset
/// Bundle with a CarePlan and an Observation, and `self` / `next` /
/// `previous` links (three pages) at its own address, plus one link to a
/// path outside the dataset.
#[derive(Clone)]
pub struct FhirServer {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl FhirServer {
    pub async fn start() -> FhirServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .fallback(fhir_page)
            .with_state((addr, requests.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FhirServer { addr, requests }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Path and query of each request, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

async fn fhir_page(
    State((addr, requests)): State<(SocketAddr, Arc<Mutex<Vec<String>>>)>,
    req: Request,
) -> Response {
    let uri = req.uri().clone();
    let pq = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    requests.lock().unwrap_or_else(|e| e.into_inner()).push(pq);
    let dataset = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut patient = String::new();
    let mut page = 1u32;
    for pair in uri.query().unwrap_or_default().split('&') {
        match pair.split_once('=') {
            Some(("patient", v)) => patient = v.to_owned(),
            Some(("_page", v)) => page = v.parse().unwrap_or(1),
            _ => {}
        }
    }
    let base = format!("http://{addr}/{dataset}");
    let link = |relation: &str, page: u32| json!({"relation": relation, "url": format!("{base}?patient={patient}&_page={page}")});
    let mut links = vec![link("self", page)];
    if page < 3 {
        links.push(link("next", page + 1));
    }
    if page > 1 {
        links.push(link("previous", page - 1));
    }
    links.push(json!({"relation": "related", "url": format!("http://{addr}/admin/export")}));
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 6,
        "link": links,
        "entry": [
            {"fullUrl": format!("http://{addr}/CarePlan/{page}"),
             "resource": {"resourceType": "CarePlan", "id": format!("cp-{page}"), "status": "active"}},
            {"fullUrl": format!("http://{addr}/Observation/{page}"),
             "resource": {"resourceType": "Observation", "id": format!("obs-{page}"), "status": "final"}},
        ],
    });
    (
        [(
            header::CONTENT_TYPE,
            "application/fhir+json; fhirVersion=4.0",
        )],
        bundle.to_string(),
    )
        .into_response()
}

// ---------------------------------------------------------------- bulk

/// Streams `bytes` generated bytes (byte i is `i % 251`) to every request,
/// over plain HTTP/1.1 written by hand, so the test holds no copy of them.
pub struct BulkServer {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    pub bytes: u64,
}

/// The byte at `offset` of the bulk body.
pub fn bulk_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

impl BulkServer {
    pub async fn start(bytes: u64) -> BulkServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    if read_head(&mut stream).await.is_none() {
                        return;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {bytes}\r\nconnection: close\r\n\r\n"
                    );
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    // 251 divides neither 64 KiB nor any chunk boundary: build
                    // each chunk from its offset.
                    let mut chunk = vec![0u8; 64 * 1024];
                    let mut sent = 0u64;
                    while sent < bytes {
                        let n = chunk
                            .len()
                            .min(usize::try_from(bytes - sent).unwrap_or(usize::MAX));
                        for (i, b) in chunk[..n].iter_mut().enumerate() {
                            *b = bulk_byte(sent + i as u64);
                        }
                        if stream.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        sent += n as u64;
                    }
                    let _ = stream.shutdown().await;
                });
            }
        });
        BulkServer {
            addr,
            requests,
            bytes,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Reads up to the end of a request head; `None` if the connection ends first.
async fn read_head<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

// ---------------------------------------------------------------- mutual TLS

/// The provider's CA and server certificate, a client CA with a valid and an
/// expired client certificate, and an unrelated CA.
pub struct MtlsPki {
    pub provider_ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_ca: String,
    pub client_cert: String,
    pub client_key: String,
    pub expired_cert: String,
    pub expired_key: String,
    pub other_ca: String,
}

fn ca(name: &str) -> (Issuer<'static, KeyPair>, String) {
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
    (Issuer::new(params, key), cert.pem())
}

fn client_cert(issuer: &Issuer<'static, KeyPair>, expired: bool) -> (String, String) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("client key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Bru (K429 kommune)");
    dn.push(DnType::OrganizationName, "921429002");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::now_utc();
    if expired {
        params.not_before = now - time::Duration::days(400);
        params.not_after = now - time::Duration::days(1);
    }
    let cert = params.signed_by(&key, issuer).expect("client cert");
    (cert.pem(), key.serialize_pem())
}

impl MtlsPki {
    pub fn generate() -> MtlsPki {
        let (provider_issuer, provider_ca) = ca("Provider CA");
        let (client_issuer, client_ca) = ca("Enterprise certificate CA");
        let (_, other_ca) = ca("Unrelated CA");
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("server key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned()]).expect("server params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = params
            .signed_by(&key, &provider_issuer)
            .expect("server cert");
        let (client_cert_pem, client_key) = client_cert(&client_issuer, false);
        let (expired_cert, expired_key) = client_cert(&client_issuer, true);
        MtlsPki {
            provider_ca,
            server_cert: server.pem(),
            server_key: key.serialize_pem(),
            client_ca,
            client_cert: client_cert_pem,
            client_key,
            expired_cert,
            expired_key,
            other_ca,
        }
    }
}

/// HTTPS that demands a client certificate from the client CA; answers
/// `{"mtls": true}` to every request that gets through the handshake.
pub struct MtlsServer {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
}

impl MtlsServer {
    pub async fn start(pki: &MtlsPki) -> MtlsServer {
        crate::init();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for der in crate::pki::pem_blocks(&pki.client_ca, "CERTIFICATE") {
            roots
                .add(rustls_pki_types::CertificateDer::from(der))
                .expect("client CA");
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .expect("verifier");
        let cert = crate::pki::pem_blocks(&pki.server_cert, "CERTIFICATE")
            .into_iter()
            .map(rustls_pki_types::CertificateDer::from)
            .collect();
        let key_der = crate::pki::pem_blocks(&pki.server_key, "PRIVATE KEY").remove(0);
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(
            rustls_pki_types::PrivatePkcs8KeyDer::from(key_der),
        );
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(cert, key)
            .expect("server config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, count) = (acceptor.clone(), count.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    if read_head(&mut tls).await.is_none() {
                        return;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let body = r#"{"mtls":true}"#;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        MtlsServer { addr, requests }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------- token endpoint

#[derive(Default)]
struct TokenState {
    jtis: HashSet<String>,
    grants: Vec<Value>,
    refusals: Vec<String>,
}

/// A Maskinporten-style token endpoint: checks the grant's ES256 signature
/// (kid [`GRANT_KID`]), `aud`, `iss` (only [`GRANT_CLIENT`] is a known
/// client), `exp − iat ≤ 120`, a fresh `jti` and the `scope`; answers
/// `access-token-N`.
#[derive(Clone)]
pub struct TokenServer {
    pub addr: SocketAddr,
    state: Arc<(DecodingKey, Mutex<TokenState>)>,
}

impl TokenServer {
    pub async fn start(public_key_pem: &str) -> TokenServer {
        let key = DecodingKey::from_ec_pem(public_key_pem.as_bytes()).expect("grant public key");
        let state = Arc::new((key, Mutex::new(TokenState::default())));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .fallback(token_grant)
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenServer { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    pub fn grants(&self) -> Vec<Value> {
        self.state
            .1
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .grants
            .clone()
    }

    pub fn refusals(&self) -> Vec<String> {
        self.state
            .1
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refusals
            .clone()
    }
}

async fn token_grant(
    State(state): State<Arc<(DecodingKey, Mutex<TokenState>)>>,
    req: Request,
) -> Response {
    let body = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let form = String::from_utf8_lossy(&body).into_owned();
    let verdict = check_grant(&form, &state.0, &state.1);
    let mut st = state.1.lock().unwrap_or_else(|e| e.into_inner());
    let (status, doc) = match verdict {
        Ok(claims) => {
            st.grants.push(claims);
            let token = format!("access-token-{}", st.grants.len());
            (
                StatusCode::OK,
                json!({"access_token": token, "token_type": "Bearer", "expires_in": 120}),
            )
        }
        Err((error, why)) => {
            st.refusals.push(why.clone());
            (
                StatusCode::BAD_REQUEST,
                json!({"error": error, "error_description": why}),
            )
        }
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(doc.to_string()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn check_grant(
    form: &str,
    key: &DecodingKey,
    state: &Mutex<TokenState>,
) -> Result<Value, (&'static str, String)> {
    let invalid = |why: String| ("invalid_grant", why);
    let mut grant_type = "";
    let mut assertion = "";
    for pair in form.split('&') {
        match pair.split_once('=') {
            Some(("grant_type", v)) => grant_type = v,
            Some(("assertion", v)) => assertion = v,
            _ => {}
        }
    }
    if grant_type != "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
        && grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer"
    {
        return Err(("unsupported_grant_type", format!("grant_type {grant_type}")));
    }
    let header =
        jsonwebtoken::decode_header(assertion).map_err(|e| invalid(format!("header: {e}")))?;
    if header.alg != Algorithm::ES256 || header.kid.as_deref() != Some(GRANT_KID) {
        return Err(invalid(format!(
            "alg {:?} kid {:?}",
            header.alg, header.kid
        )));
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[GRANT_AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    validation.leeway = 5;
    let claims = jsonwebtoken::decode::<Value>(assertion, key, &validation)
        .map_err(|e| invalid(format!("the grant does not verify: {e}")))?
        .claims;
    if claims["iss"] != GRANT_CLIENT {
        return Err((
            "invalid_client",
            format!("Unknown client {}", claims["iss"]),
        ));
    }
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    if exp <= iat || exp - iat > 120 {
        return Err(invalid(format!("exp - iat = {}", exp - iat)));
    }
    if claims["scope"] != GRANT_SCOPE {
        return Err(("invalid_scope", format!("scope {}", claims["scope"])));
    }
    let jti = claims["jti"].as_str().unwrap_or_default().to_owned();
    if jti.is_empty()
        || !state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .jtis
            .insert(jti)
    {
        return Err(invalid("jti missing or reused".into()));
    }
    Ok(claims)
}

/// Peak resident memory (`VmHWM`) of a process, in bytes, from `/proc`.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Current resident memory (`VmRSS`) of a process, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
