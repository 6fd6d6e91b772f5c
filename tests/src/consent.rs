//! The consent broker's test world: the standard [`TestWorld`] plus what
//! SPEC section 4 needs on top — an ID-porten-style citizen issuer, the
//! `helsenorge/hjemmetjeneste` dataset (FHIR, minimised to `CarePlan`) with
//! its provider, a second consent requester (Helsenorge's org, allowed
//! `nav/inntekt`) for object-level checks between organisations, and a
//! second purpose (`tilsyn`) on `nav/inntekt`.
//!
//! The world's policy is extended by editing its TOML as data, so this keeps
//! working as the shared policy grows.

use std::ops::Deref;

use serde_json::{json, Value};

use crate::bru::{send, Bru, Reply};
use crate::jwt::{maskinporten_claims, now, EcKey, Jwt, Signer};
use crate::servers::Provider;
use crate::world::{TestWorld, WorldBuilder, ISSUER_MP};
use crate::{HELSENORGE, K429, OMSORGSAPP, PURPOSE_OMSORG, PURPOSE_TILSYN, SCOPE_INNTEKT};

pub const ISSUER_IDP: &str = "https://test-idporten.example/";
pub const SCOPE_CONSENT: &str = "bru:consent";
pub const SCOPE_HJEMME: &str = "helsenorge:hjemmetjeneste.read";
pub const ACR_SUBSTANTIAL: &str = "idporten-loa-substantial";

/// The policy additions, merged into the world's policy.
const EXTRA_POLICY: &str = r#"
[[provider]]
id = "helsenorge"
org = "916542003"

[[dataset]]
provider = "helsenorge"
id = "hjemmetjeneste"
title = { nb = "Hjemmetjeneste", en = "Home care" }
description = { nb = "Vedtak og tiltak i hjemmetjenesten.", en = "Home care decisions and services." }
basis = "consent"
scope = "helsenorge:hjemmetjeneste.read"
subject = { query = "patient" }
max_consent_days = 30

  [[dataset.purpose]]
  id = "omsorgsbolig-soknad"
  minimise = { fhir_resource_types = ["CarePlan"] }

[[consumer]]
org = "916542003"
consent_requester = true

  [[consumer.dataset]]
  id = "nav/inntekt"
"#;

/// A [`TestWorld`] ready for consents. Derefs to the world.
pub struct ConsentWorld {
    pub world: TestWorld,
    /// The provider behind `/data/helsenorge/…`.
    pub helsenorge: Provider,
    /// Signs citizen tokens for `ISSUER_IDP` (ES256, JWKS `idp`).
    pub idp_key: EcKey,
}

impl Deref for ConsentWorld {
    type Target = TestWorld;
    fn deref(&self) -> &TestWorld {
        &self.world
    }
}

impl ConsentWorld {
    pub async fn new() -> ConsentWorld {
        Self::with(TestWorld::builder()).await
    }

    pub async fn with(builder: WorldBuilder) -> ConsentWorld {
        let world = builder.build().await;
        let root = world.dir.path();
        let helsenorge = Provider::start("helsenorge").await;
        let idp_key = EcKey::generate("idp");
        world.jwks.set_keys("idp", vec![idp_key.jwk()]);

        let policy_path = root.join("policy.toml");
        let policy = std::fs::read_to_string(&policy_path).expect("read policy");
        std::fs::write(&policy_path, extend_policy(&policy)).expect("write policy");

        let config_path = &world.config_path;
        let mut config = std::fs::read_to_string(config_path).expect("read config");
        config.push_str(&format!(
            "\n[[issuer]]\nname = \"test-idporten\"\nkind = \"idporten\"\nissuer = \"{ISSUER_IDP}\"\n\
             jwks_url = \"{}\"\nalgorithms = [\"ES256\"]\nleeway_s = 30\nmax_token_bytes = 8192\n\
             jwks_refresh_min_interval_ms = 10000\n\n\
             [upstream.helsenorge]\nurl = \"{}\"\nconnect_timeout_ms = 2000\n\
             request_timeout_ms = 30000\nmax_response_bytes = 104857600\n\
             credentials = {{ kind = \"none\" }}\n",
            world.jwks.url("idp"),
            helsenorge.url(),
        ));
        std::fs::write(config_path, config).expect("write config");
        ConsentWorld {
            world,
            helsenorge,
            idp_key,
        }
    }

    /// The claims of a citizen token for `pid` at `idporten-loa-substantial`.
    pub fn citizen_jwt(&self, pid: &str) -> Jwt {
        let now = now();
        Jwt::new(
            json!({"alg": "ES256", "typ": "JWT", "kid": self.idp_key.kid}),
            json!({
                "iss": ISSUER_IDP,
                "iat": now,
                "exp": now + 300,
                "jti": uuid::Uuid::new_v4().to_string(),
                "client_id": "test-portal",
                "scope": "openid",
                "pid": pid,
                "acr": ACR_SUBSTANTIAL,
            }),
        )
    }

    pub fn citizen_token(&self, pid: &str) -> String {
        self.citizen_jwt(pid)
            .sign(&Signer::Ec(self.idp_key.clone()))
    }

    /// A `test-mp` token for `org` acting through `supplier`.
    pub fn supplier_token(&self, org: &str, supplier: &str, scope: &str) -> String {
        Jwt::new(
            json!({"alg": "RS256", "typ": "JWT", "kid": self.mp_key.kid}),
            maskinporten_claims(ISSUER_MP, org, scope),
        )
        .claim(
            "supplier",
            json!({"authority": "iso6523-actorid-upis", "ID": format!("0192:{supplier}")}),
        )
        .sign(&self.mp_signer())
    }

    /// K429's token for both consent datasets and the consent API.
    pub fn k429_token(&self) -> String {
        self.mp_token(K429, &k429_scopes())
    }

    /// Omsorgsapp AS acting for K429, with K429's scopes.
    pub fn omsorgsapp_token(&self) -> String {
        self.supplier_token(K429, OMSORGSAPP, &k429_scopes())
    }

    /// The second consent requester (Helsenorge's org), allowed `nav/inntekt`.
    pub fn other_requester_token(&self) -> String {
        self.mp_token(HELSENORGE, &format!("{SCOPE_INNTEKT} {SCOPE_CONSENT}"))
    }
}

pub fn k429_scopes() -> String {
    format!("{SCOPE_INNTEKT} {SCOPE_HJEMME} {SCOPE_CONSENT}")
}

/// Merges [`EXTRA_POLICY`] into `policy`, and lets K429 (with its supplier)
/// use `helsenorge/hjemmetjeneste`.
pub fn extend_policy(policy: &str) -> String {
    let mut base: toml::Table = policy.parse().expect("the world's policy is TOML");
    let extra: toml::Table = EXTRA_POLICY.parse().expect("the extra policy is TOML");
    for (key, value) in extra {
        let (Some(toml::Value::Array(to)), toml::Value::Array(from)) = (base.get_mut(&key), value)
        else {
            panic!("policy key {key} is not an array of tables in both");
        };
        to.extend(from);
    }
    let consumers = base
        .get_mut("consumer")
        .and_then(toml::Value::as_array_mut)
        .expect("consumers");
    let k429 = consumers
        .iter_mut()
        .find(|c| c.get("org").and_then(toml::Value::as_str) == Some(K429))
        .and_then(toml::Value::as_table_mut)
        .expect("a consumer rule for K429");
    let datasets = k429
        .entry("dataset")
        .or_insert_with(|| toml::Value::Array(Vec::new()));
    let mut rule = toml::Table::new();
    rule.insert("id".into(), "helsenorge/hjemmetjeneste".into());
    datasets
        .as_array_mut()
        .expect("consumer.dataset is an array")
        .push(toml::Value::Table(rule));
    // A second purpose on nav/inntekt, so that a consent can be used for
    // another purpose the dataset allows (consent_mismatch, not purpose_not_allowed).
    let inntekt = base
        .get_mut("dataset")
        .and_then(toml::Value::as_array_mut)
        .expect("datasets")
        .iter_mut()
        .find(|d| {
            d.get("provider").and_then(toml::Value::as_str) == Some("nav")
                && d.get("id").and_then(toml::Value::as_str) == Some("inntekt")
        })
        .and_then(toml::Value::as_table_mut)
        .expect("the nav/inntekt dataset");
    let mut tilsyn = toml::Table::new();
    tilsyn.insert("id".into(), PURPOSE_TILSYN.into());
    inntekt
        .entry("purpose")
        .or_insert_with(|| toml::Value::Array(Vec::new()))
        .as_array_mut()
        .expect("dataset.purpose is an array")
        .push(toml::Value::Table(tilsyn));
    toml::to_string(&base).expect("serialise the policy")
}

/// An RFC 3339 time `secs` from now.
pub fn in_secs(secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("format time")
}

/// The usual request body: both datasets, the omsorgsbolig purpose, a day.
pub fn request_body(subject: Option<&str>, max_uses: Option<u32>) -> Value {
    let mut body = json!({
        "datasets": ["nav/inntekt", "helsenorge/hjemmetjeneste"],
        "purpose": PURPOSE_OMSORG,
        "valid_to": in_secs(86_400),
        "redirect_url": "https://k429.example/omsorgsbolig",
        "message": "K429 vil fylle ut søknaden din om omsorgsbolig.",
    });
    if let Some(s) = subject {
        body["subject"] = json!(s);
    }
    if let Some(m) = max_uses {
        body["max_uses"] = json!(m);
    }
    body
}

/// `POST /consent/v1/requests` with `token`.
pub async fn post_request(bru: &Bru, token: &str, body: &Value) -> Reply {
    send(
        bru.post("/consent/v1/requests")
            .bearer_auth(token)
            .json(body),
    )
    .await
}

/// Creates a request with K429's token; returns its id.
pub async fn create(cw: &ConsentWorld, bru: &Bru, body: &Value) -> String {
    let reply = post_request(bru, &cw.k429_token(), body).await;
    reply.expect_status(201, "POST /consent/v1/requests");
    reply.json()["id"]
        .as_str()
        .expect("the new request's id")
        .to_owned()
}

/// `GET /consent/v1/requests/{id}` with `token`.
pub async fn get_request(bru: &Bru, token: &str, id: &str) -> Reply {
    send(
        bru.get(&format!("/consent/v1/requests/{id}"))
            .bearer_auth(token),
    )
    .await
}

/// `POST /citizen/v1/consents/{id}/{action}` as `pid`.
pub async fn citizen_action(
    cw: &ConsentWorld,
    bru: &Bru,
    pid: &str,
    id: &str,
    action: &str,
) -> Reply {
    send(
        bru.post(&format!("/citizen/v1/consents/{id}/{action}"))
            .bearer_auth(cw.citizen_token(pid)),
    )
    .await
}

/// Creates a request for `subject` and has them accept it; returns its id.
pub async fn granted(cw: &ConsentWorld, bru: &Bru, subject: &str, max_uses: Option<u32>) -> String {
    let id = create(cw, bru, &request_body(Some(subject), max_uses)).await;
    citizen_action(cw, bru, subject, &id, "accept")
        .await
        .expect_status(200, "accept");
    id
}

/// `GET /data/nav/inntekt` about `subject` under `consent`.
pub async fn inntekt(
    bru: &Bru,
    token: &str,
    consent: Option<&str>,
    subject: &str,
    purpose: &str,
) -> Reply {
    let mut rb = bru
        .get("/data/nav/inntekt")
        .bearer_auth(token)
        .header("Bru-Purpose", purpose)
        .header("Nav-Personident", subject);
    if let Some(c) = consent {
        rb = rb.header("Bru-Consent", c);
    }
    send(rb).await
}

/// `GET /data/helsenorge/hjemmetjeneste?patient=…` under `consent`.
pub async fn hjemmetjeneste(bru: &Bru, token: &str, consent: &str, subject: &str) -> Reply {
    send(
        bru.get(&format!(
            "/data/helsenorge/hjemmetjeneste?patient={subject}"
        ))
        .bearer_auth(token)
        .header("Bru-Purpose", PURPOSE_OMSORG)
        .header("Bru-Consent", consent),
    )
    .await
}

/// The event types of a request, as the requester sees them.
pub async fn event_types(bru: &Bru, token: &str, id: &str) -> Vec<String> {
    let reply = get_request(bru, token, id).await;
    reply.expect_status(200, "GET /consent/v1/requests/{id}");
    reply.json()["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}
