//! Representation's test world (SPEC 9.3): the consent world, plus a
//! Folkeregisteret-style registry run by the test (behind a
//! Maskinporten-style token endpoint, as Bru's `[registry]` reaches it),
//! representation rules in the policy, and ID-porten tokens carrying
//! `idporten:fullmakt` as ID-porten issues them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Router;
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::bru::{send, Bru, Reply};
use crate::connectors::{TokenServer, GRANT_AUDIENCE, GRANT_CLIENT, GRANT_KID, GRANT_SCOPE};
use crate::consent::ConsentWorld;
use crate::jwt::Signer;
use crate::{AISHA, EMMA, KARI, OLA, PER};

/// One request the registry received.
#[derive(Debug, Clone)]
pub struct RegistryRequest {
    pub uri: String,
    pub authorization: Option<String>,
    pub body: String,
}

#[derive(Default)]
struct RegistryState {
    documents: BTreeMap<String, Value>,
    requests: Vec<RegistryRequest>,
}

/// A Folkeregisteret-style bulk person lookup run by the test
/// (`POST /personer/bulkoppslag`); its documents can change mid-test.
#[derive(Clone)]
pub struct Registry {
    pub addr: SocketAddr,
    state: Arc<Mutex<RegistryState>>,
}

fn lock(m: &Mutex<RegistryState>) -> std::sync::MutexGuard<'_, RegistryState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    pub async fn start() -> Registry {
        let state = Arc::new(Mutex::new(RegistryState::default()));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .fallback(lookup)
            .with_state(Arc::clone(&state));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let registry = Registry { addr, state };
        registry.set_demo_family(birth_years_ago(12));
        registry
    }

    pub fn url(&self) -> String {
        format!("http://{}/folkeregisteret", self.addr)
    }

    pub fn set(&self, pid: &str, document: Value) {
        lock(&self.state).documents.insert(pid.to_owned(), document);
    }

    pub fn requests(&self) -> Vec<RegistryRequest> {
        lock(&self.state).requests.clone()
    }

    /// SPEC 9.4's relations, with Emma born on `emma_born` (`YYYY-MM-DD`):
    /// Kari and Ola have parental responsibility for Emma; Aisha is Per's verge.
    pub fn set_demo_family(&self, emma_born: String) {
        self.set(
            KARI,
            person(
                "Kari",
                "Nordmann",
                "1945-08-12",
                vec![child(EMMA, "mor")],
                vec![],
                vec![],
            ),
        );
        self.set(
            OLA,
            person(
                "Ola",
                "Nordmann",
                "1991-03-03",
                vec![child(EMMA, "far")],
                vec![],
                vec![],
            ),
        );
        self.set(
            EMMA,
            person(
                "Emma",
                "Nordmann",
                &emma_born,
                vec![],
                vec![responsibility(KARI, true), responsibility(OLA, true)],
                vec![],
            ),
        );
        self.set(
            AISHA,
            person("Aisha", "Berg", "1962-11-24", vec![], vec![], vec![]),
        );
        self.set(
            PER,
            person(
                "Per",
                "Hansen",
                "1950-09-15",
                vec![],
                vec![],
                vec![guardian(AISHA)],
            ),
        );
    }

    /// Kari's parental responsibility for Emma ends (moved to Ola alone).
    pub fn end_karis_responsibility(&self, emma_born: String) {
        self.set(
            EMMA,
            person(
                "Emma",
                "Nordmann",
                &emma_born,
                vec![],
                vec![responsibility(KARI, false), responsibility(OLA, true)],
                vec![],
            ),
        );
    }
}

/// `YYYY-MM-DD` of a birthday `years` ago, a month back (so the age is whole).
pub fn birth_years_ago(years: i32) -> String {
    let today = time::OffsetDateTime::now_utc().date();
    let born = today
        .replace_year(today.year() - years)
        .unwrap_or(today)
        .saturating_sub(time::Duration::days(30));
    format!(
        "{:04}-{:02}-{:02}",
        born.year(),
        born.month() as u8,
        born.day()
    )
}

// The element names follow Skatteetaten's person document
// (folkeregisteret-api-dokumentasjon, informasjonsmodell: `navn`, `foedsel`,
// `familierelasjon`, `foreldreansvar`, `vergemaalEllerFremtidsfullmakt`).
fn person(
    given: &str,
    family: &str,
    born: &str,
    familierelasjon: Vec<Value>,
    foreldreansvar: Vec<Value>,
    vergemaal: Vec<Value>,
) -> Value {
    json!({
        "navn": [{ "fornavn": given, "etternavn": family, "erGjeldende": true }],
        "foedsel": [{ "foedselsdato": born, "erGjeldende": true }],
        "familierelasjon": familierelasjon,
        "foreldreansvar": foreldreansvar,
        "vergemaalEllerFremtidsfullmakt": vergemaal,
    })
}

fn child(pid: &str, my_role: &str) -> Value {
    json!({ "relatertPerson": pid, "relatertPersonsRolle": "barn", "minRolleForPerson": my_role, "erGjeldende": true })
}

fn responsibility(parent: &str, current: bool) -> Value {
    json!({ "ansvar": "felles", "ansvarlig": parent, "erGjeldende": current })
}

fn guardian(pid: &str) -> Value {
    json!({
        "type": "voksen",
        "embete": "Statsforvalteren i Agder",
        "vergeEllerFullmektig": {
            "motpartsPersonidentifikator": pid,
            "omfang": "personligeOgOekonomiskeInteresser",
            "tjenesteomraade": [{ "tjenestevirksomhet": "helse", "tjenesteoppgave": "helse" }],
        },
        "erGjeldende": true,
    })
}

async fn lookup(State(state): State<Arc<Mutex<RegistryState>>>, req: Request) -> Response {
    let uri = req.uri().to_string();
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ok_path = req.uri().path() == "/folkeregisteret/personer/bulkoppslag";
    let body = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&body).into_owned();
    let mut st = lock(&state);
    st.requests.push(RegistryRequest {
        uri,
        authorization: authorization.clone(),
        body: body.clone(),
    });
    let respond = |status: StatusCode, doc: Value| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(doc.to_string()))
            .unwrap_or_default()
    };
    // Only a Maskinporten access token from the test's token endpoint.
    if !authorization.is_some_and(|a| a.starts_with("Bearer access-token-")) {
        return respond(StatusCode::UNAUTHORIZED, json!({"error": "invalid_token"}));
    }
    if !ok_path {
        return respond(StatusCode::NOT_FOUND, json!({}));
    }
    let asked: Value = serde_json::from_str(&body).unwrap_or_default();
    let oppslag: Vec<Value> = asked["foedselsEllerDNummer"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|n| {
            st.documents
                .get(n)
                .map(|d| json!({ "foedselsEllerDNummer": n, "person": d }))
        })
        .collect();
    respond(StatusCode::OK, json!({ "oppslag": oppslag }))
}

/// The representation rules the tests' policy gets: income for a welfare
/// role (parents until 18), home care (FHIR, health: parents until 16) for
/// the health role.
pub fn add_representation_rules(policy: &str) -> String {
    let mut table: toml::Table = policy.parse().expect("policy TOML");
    let datasets = table
        .get_mut("dataset")
        .and_then(toml::Value::as_array_mut)
        .expect("datasets");
    for d in datasets {
        let Some(d) = d.as_table_mut() else { continue };
        let id = format!(
            "{}/{}",
            d.get("provider")
                .and_then(toml::Value::as_str)
                .unwrap_or_default(),
            d.get("id")
                .and_then(toml::Value::as_str)
                .unwrap_or_default()
        );
        let roles = match id.as_str() {
            "nav/inntekt" => "velferd",
            "helsenorge/hjemmetjeneste" => "helse",
            _ => continue,
        };
        let mut rules = toml::Table::new();
        rules.insert(
            "fullmakt_roles".into(),
            toml::Value::Array(vec![toml::Value::String(roles.into())]),
        );
        d.insert("representation".into(), toml::Value::Table(rules));
    }
    toml::to_string(&table).expect("policy TOML")
}

/// The consent world with a registry and representation rules.
pub struct RepresentWorld {
    pub cw: ConsentWorld,
    pub registry: Registry,
    pub token: TokenServer,
}

impl Deref for RepresentWorld {
    type Target = ConsentWorld;
    fn deref(&self) -> &ConsentWorld {
        &self.cw
    }
}

impl RepresentWorld {
    pub async fn new() -> RepresentWorld {
        let cw = ConsentWorld::new().await;
        let registry = Registry::start().await;
        let grant_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("grant key");
        let token = TokenServer::start(&grant_key.public_key_pem()).await;
        let dir = cw.dir.path();
        std::fs::write(dir.join("registry-grant.pem"), grant_key.serialize_pem()).expect("key");
        let policy_path = dir.join("policy.toml");
        let policy = std::fs::read_to_string(&policy_path).expect("policy");
        std::fs::write(&policy_path, add_representation_rules(&policy)).expect("policy");
        let mut config = std::fs::read_to_string(&cw.config_path).expect("config");
        config.push_str(&format!(
            "\n[registry]\nurl = \"{}\"\nrequest_timeout_ms = 5000\n\
             credentials = {{ kind = \"oauth2\", token_url = \"{}\", audience = \"{GRANT_AUDIENCE}\", \
             client_id = \"{GRANT_CLIENT}\", scope = \"{GRANT_SCOPE}\", key_file = \"registry-grant.pem\", \
             kid = \"{GRANT_KID}\", algorithm = \"ES256\" }}\n",
            registry.url(),
            token.url(),
        ));
        std::fs::write(&cw.config_path, config).expect("config");
        RepresentWorld {
            cw,
            registry,
            token,
        }
    }

    /// A citizen token after ID-porten's fullmakt login: `pid` logged in for
    /// `owner` with `roles`. The `authorization_details` member is shaped as
    /// Digdir's example response of the `idporten:fullmakt` RAR type
    /// (felleslosninger/docs, `_docs/idporten/oidc/oidc_protocol_rar.md`,
    /// "Eksempel på respons": `type`, `authorizer {name, pid}`,
    /// `permissions [{owner, role}]`, `authorized_representative {name, pid}`).
    pub fn fullmakt_token(&self, pid: &str, owner: &str, roles: &[&str]) -> String {
        self.fullmakt_token_for(pid, pid, owner, roles)
    }

    /// As [`Self::fullmakt_token`], naming `representative` as the fullmakt's holder.
    pub fn fullmakt_token_for(
        &self,
        pid: &str,
        representative: &str,
        owner: &str,
        roles: &[&str],
    ) -> String {
        let permissions: Vec<Value> = roles
            .iter()
            .map(|r| json!({ "owner": "nav", "role": r }))
            .collect();
        self.cw
            .citizen_jwt(pid)
            .claim(
                "authorization_details",
                json!([{
                    "type": "idporten:fullmakt",
                    "authorizer": { "name": "PER HANSEN", "pid": owner },
                    "permissions": permissions,
                    "authorized_representative": { "name": "AISHA BERG", "pid": representative },
                }]),
            )
            .sign(&Signer::Ec(self.cw.idp_key.clone()))
    }
}

/// `GET /citizen/v1/represented` with `token`.
pub async fn represented(bru: &Bru, token: &str) -> Vec<Value> {
    let reply = send(bru.get("/citizen/v1/represented").bearer_auth(token)).await;
    reply.expect_status(200, "GET /citizen/v1/represented");
    reply.json().as_array().expect("a list").clone()
}

/// The party of the person named `name` in `token`'s list.
pub async fn party_of(bru: &Bru, token: &str, name: &str) -> String {
    represented(bru, token)
        .await
        .iter()
        .find(|r| r["name"] == name)
        .and_then(|r| r["party"].as_str())
        .unwrap_or_else(|| panic!("{name} is not among whom this token may represent"))
        .to_owned()
}

/// `POST /citizen/v1/consents/{id}/{action}` with `token`, for `party`.
pub async fn act_for(bru: &Bru, token: &str, party: &str, id: &str, action: &str) -> Reply {
    send(
        bru.post(&format!("/citizen/v1/consents/{id}/{action}"))
            .bearer_auth(token)
            .header("Bru-On-Behalf-Of", party),
    )
    .await
}

/// `GET {path}` with `token`, for `party` when given.
pub async fn get_for(bru: &Bru, token: &str, party: Option<&str>, path: &str) -> Reply {
    let mut rb = bru.get(path).bearer_auth(token);
    if let Some(p) = party {
        rb = rb.header("Bru-On-Behalf-Of", p);
    }
    send(rb).await
}

/// Asserts a citizen API problem (RFC 9457, no transfer: `transfer_id` null)
/// with this status and code; returns its body.
pub fn expect_refused(reply: &Reply, status: u16, code: &str, context: &str) -> Value {
    assert_eq!(
        (reply.status, reply.code().as_deref()),
        (status, Some(code)),
        "{context}: expected {status} {code}, got {} with body {:?}",
        reply.status,
        reply.text()
    );
    let ct = reply.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("application/problem+json"),
        "{context}: {ct}"
    );
    let body = reply.json();
    for member in ["type", "title", "detail", "code"] {
        assert!(body[member].is_string(), "{context}: {member} in {body}");
    }
    body
}
