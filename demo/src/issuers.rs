//! The demo Maskinporten and ID-porten: token endpoints that hand out signed
//! tokens to anyone who asks, and their JWKS.
//!
//! They exist so that the demo runs on one machine without real
//! Maskinporten or ID-porten clients. The gateway mounts [`issuers_router`] on
//! its public listener in demo mode only; `bru serve` never does, and refuses
//! issuers whose URL names `/demo/`.
//!
//! Tokens carry the claims the real issuers put in theirs (SPEC section 7),
//! so the gateway verifies them with the same code path as production tokens.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use jsonwebtoken::EncodingKey;
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::altinn::DemoAltinn;
use crate::issuer_key::sign_with;
pub use crate::issuer_key::IssuerKey;
use crate::{DemoError, DemoLayout};

/// Lifetime of demo tokens: one hour, so that a newcomer reading between the
/// README's steps is not refused with `token_expired` (Maskinporten's own
/// default is 120 s). Bru still re-verifies a cached token after at most
/// 5 minutes (auth.rs), so a long token is checked again, not trusted longer.
pub const TOKEN_LIFETIME_S: i64 = 3600;

/// The demo Maskinporten lives at `{public_url}/demo/maskinporten`; the
/// audience it puts in `aud` when no `resource` is asked for is Bru's
/// `public_url`, which the demo's bru.toml requires (`audience`).
pub fn bru_audience(maskinporten_issuer: &str) -> &str {
    maskinporten_issuer
        .strip_suffix("/demo/maskinporten")
        .unwrap_or(maskinporten_issuer)
}

/// The assurance level of demo citizen tokens: what the citizen API requires.
pub const IDPORTEN_ACR: &str = "idporten-loa-substantial";

/// The two demo issuers; cheap to clone.
#[derive(Clone, Debug)]
pub struct DemoIssuers {
    inner: Arc<Issuers>,
}

#[derive(Debug)]
struct Issuers {
    maskinporten: IssuerKey,
    idporten: IssuerKey,
    /// The demo Altinn: consents and system users the tokens carry.
    altinn: DemoAltinn,
}

impl DemoIssuers {
    pub fn new(maskinporten: IssuerKey, idporten: IssuerKey, altinn: DemoAltinn) -> Self {
        DemoIssuers {
            inner: Arc::new(Issuers {
                maskinporten,
                idporten,
                altinn,
            }),
        }
    }

    /// Loads the keys from the files `prepare` wrote, with the issuer names it
    /// wrote into `bru.toml`, and the demo Altinn's state from `DIR`.
    pub fn load(layout: &DemoLayout) -> Result<Self, DemoError> {
        let maskinporten =
            IssuerKey::from_file(&layout.maskinporten_key, &layout.maskinporten_issuer)?;
        let idporten = IssuerKey::from_file(&layout.idporten_key, &layout.idporten_issuer)?;
        let altinn = DemoAltinn::load(
            &layout.dir,
            IssuerKey::from_file(
                &layout.altinn_key,
                &crate::altinn::altinn2_issuer(&layout.public_url),
            )?,
            maskinporten.clone(),
            idporten.clone(),
        )?;
        Ok(DemoIssuers::new(maskinporten, idporten, altinn))
    }

    pub fn maskinporten(&self) -> &IssuerKey {
        &self.inner.maskinporten
    }

    pub fn idporten(&self) -> &IssuerKey {
        &self.inner.idporten
    }

    pub fn altinn(&self) -> &DemoAltinn {
        &self.inner.altinn
    }

    /// A Maskinporten token for `org` (acting through `supplier`, if given)
    /// with `scope`. Both numbers must be valid organisation numbers.
    pub fn mint_maskinporten(
        &self,
        org: &str,
        scope: &str,
        supplier: Option<&str>,
    ) -> Result<String, DemoError> {
        check_org("org", org)?;
        if let Some(s) = supplier {
            check_org("supplier", s)?;
        }
        let mp = self.maskinporten();
        mp.sign(&maskinporten_claims(
            mp.issuer(),
            bru_audience(mp.issuer()),
            org,
            scope,
            supplier,
        ))
    }

    /// An ID-porten citizen token for `pid` (synthetic numbers allowed): what
    /// the portal's demo login hands out.
    pub fn mint_idporten(&self, pid: &str) -> Result<String, DemoError> {
        policy::PersonNumber::parse(pid, true).map_err(|source| DemoError::InvalidId {
            field: "pid",
            source,
        })?;
        let ip = self.idporten();
        ip.sign(&idporten_claims(ip.issuer(), pid))
    }
}

fn check_org(field: &'static str, org: &str) -> Result<(), DemoError> {
    policy::OrgNumber::parse(org)
        .map(|_| ())
        .map_err(|source| DemoError::InvalidId { field, source })
}

// ---- claims --------------------------------------------------------------------

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A stable, UUID-shaped client id for a demo client: real Maskinporten and
/// ID-porten client ids are UUIDs, and a stable one lets the audit log show
/// the same client for the same organisation across restarts.
pub fn client_id_for(label: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("bru-demo-client:{label}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn iso6523(org: &str) -> Value {
    json!({ "authority": "iso6523-actorid-upis", "ID": format!("0192:{org}") })
}

/// Maskinporten puts the `resource` the client asked for in `aud`.
fn maskinporten_claims(
    iss: &str,
    aud: &str,
    org: &str,
    scope: &str,
    supplier: Option<&str>,
) -> Value {
    let iat = now();
    // With delegation, the client belongs to the supplier acting for the consumer.
    let client_owner = supplier.unwrap_or(org);
    let mut claims = json!({
        "iss": iss,
        "aud": aud,
        "iat": iat,
        "exp": iat + TOKEN_LIFETIME_S,
        "jti": uuid::Uuid::new_v4().to_string(),
        "client_id": client_id_for(&format!("maskinporten:{client_owner}")),
        "scope": normalise_scope(scope),
        "consumer": iso6523(org),
    });
    if let Some(s) = supplier {
        claims["supplier"] = iso6523(s);
    }
    claims
}

fn idporten_claims(iss: &str, pid: &str) -> Value {
    let iat = now();
    json!({
        "iss": iss,
        "iat": iat,
        "exp": iat + TOKEN_LIFETIME_S,
        "jti": uuid::Uuid::new_v4().to_string(),
        "client_id": client_id_for("idporten:bru-demo-portal"),
        "pid": pid,
        "acr": IDPORTEN_ACR,
        "amr": ["TestID"],
        "scope": "openid bru:citizen",
    })
}

/// Scopes are space separated on the wire; collapse any other whitespace.
fn normalise_scope(scope: &str) -> String {
    scope.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---- helpers for tests and test clients -----------------------------------------

/// The kid the demo JWKS gives the RSA key in `key_pem` (its RFC 7638
/// SHA-256 thumbprint), for clients minting their own tokens.
pub fn key_id(key_pem: &str) -> Result<String, DemoError> {
    Ok(IssuerKey::from_pem(key_pem, "")?.kid().to_owned())
}

/// Signs `claims` as an RS256 JWT with header `kid`: for tests that need
/// tokens the issuers would never hand out (expired, wrong `iss`, …).
pub fn sign_rs256(key_pem: &str, kid: &str, claims: &Value) -> Result<String, DemoError> {
    let key = EncodingKey::from_rsa_pem(key_pem.as_bytes())?;
    sign_with(&key, kid, claims)
}

/// A Maskinporten token as the demo issuer mints it, from the issuer's key
/// (e.g. `DIR/demo-maskinporten-key.pem`; `kid` from [`key_id`]). Unlike the
/// token endpoint it does not check the organisation numbers, so tests can
/// make tokens the gateway must refuse.
pub fn mint_maskinporten_token(
    key_pem: &str,
    kid: &str,
    iss: &str,
    org: &str,
    scope: &str,
    supplier: Option<&str>,
) -> Result<String, DemoError> {
    sign_rs256(
        key_pem,
        kid,
        &maskinporten_claims(iss, bru_audience(iss), org, scope, supplier),
    )
}

/// An ID-porten citizen token as the demo issuer mints it; `pid` is not checked.
pub fn mint_idporten_token(
    key_pem: &str,
    kid: &str,
    iss: &str,
    pid: &str,
) -> Result<String, DemoError> {
    sign_rs256(key_pem, kid, &idporten_claims(iss, pid))
}

// ---- HTTP ------------------------------------------------------------------------

/// The demo issuers' routes, at their full paths under `/demo/`:
/// `POST /demo/maskinporten/token`, `GET /demo/maskinporten/jwks`,
/// `POST /demo/idporten/token`, `GET /demo/idporten/jwks`.
pub fn issuers_router(issuers: DemoIssuers) -> Router {
    Router::new()
        .route("/demo/maskinporten/token", post(maskinporten_token))
        .route("/demo/maskinporten/jwks", get(maskinporten_jwks))
        .route("/demo/idporten/token", post(idporten_token))
        .route("/demo/idporten/jwks", get(idporten_jwks))
        .with_state(issuers.clone())
        .merge(crate::altinn::router(issuers.altinn().clone()))
}

#[derive(Deserialize)]
struct MaskinportenRequest {
    org: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    supplier: Option<String>,
    /// The audience wanted in `aud` (Maskinporten's `resource`); Bru's by default.
    #[serde(default)]
    resource: Option<String>,
    /// SPEC 9.4: an accepted consent of the demo Altinn, a system user's
    /// organisation and system, a person the token is restricted to.
    #[serde(default)]
    altinn_consent: Option<String>,
    #[serde(default)]
    systemuser_org: Option<String>,
    #[serde(default)]
    system_id: Option<String>,
    #[serde(default)]
    pid: Option<String>,
}

#[derive(Deserialize)]
struct IdportenRequest {
    pid: String,
    /// SPEC 9.4: log in on behalf of `owner` (ID-porten's fullmakt login).
    #[serde(default)]
    fullmakt: Option<FullmaktRequest>,
}

#[derive(Deserialize)]
struct FullmaktRequest {
    owner: String,
    roles: Vec<String>,
}

/// The `authorization_details` ID-porten adds after a fullmakt login, per
/// its RAR data model (Digdir, `oidc_protocol_rar`, "idporten:fullmakt"):
/// `authorizer` the represented person, `authorized_representative` the
/// logged-in one, `permissions` the roles (`owner` names the service area).
fn fullmakt_details(pid: &str, owner: &str, roles: &[String]) -> Value {
    let name = |p: &str| {
        crate::world::demo_person(p)
            .map(|p| p.name().to_uppercase())
            .unwrap_or_default()
    };
    json!([{
        "type": "idporten:fullmakt",
        "authorizer": { "name": name(owner), "pid": owner },
        "permissions": roles
            .iter()
            .map(|r| json!({ "owner": "vergemaal", "role": r }))
            .collect::<Vec<_>>(),
        "authorized_representative": { "name": name(pid), "pid": pid },
    }])
}

async fn maskinporten_token(State(issuers): State<DemoIssuers>, body: Bytes) -> Response {
    let req: MaskinportenRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => {
            return malformed(
                "Send a JSON object {\"org\": \"<orgnr>\", \"scope\": \"<scopes>\", \"supplier\": \"<orgnr>\"}; supplier is optional.",
            )
        }
    };
    if let Err(e) = policy::OrgNumber::parse(&req.org) {
        return malformed(&format!("org: {e}."));
    }
    if let Some(Err(e)) = req.supplier.as_deref().map(policy::OrgNumber::parse) {
        return malformed(&format!("supplier: {e}."));
    }
    let mp = issuers.maskinporten();
    let aud = req
        .resource
        .as_deref()
        .unwrap_or_else(|| bru_audience(mp.issuer()));
    let mut claims = maskinporten_claims(
        mp.issuer(),
        aud,
        &req.org,
        &req.scope,
        req.supplier.as_deref(),
    );
    if let Err(why) = issuers.altinn().extend_claims(
        &req.org,
        req.altinn_consent.as_deref(),
        req.systemuser_org.as_deref(),
        req.system_id.as_deref(),
        req.pid.as_deref(),
        &mut claims,
    ) {
        return malformed(&why);
    }
    token_response(mp.sign(&claims))
}

async fn idporten_token(State(issuers): State<DemoIssuers>, body: Bytes) -> Response {
    let req: IdportenRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => return malformed("Send a JSON object {\"pid\": \"<fødselsnummer>\"}, optionally with \"fullmakt\": {\"owner\": \"<fødselsnummer>\", \"roles\": [\"helse\"]}."),
    };
    // The error names what is wrong, never the number itself.
    if let Err(e) = policy::PersonNumber::parse(&req.pid, true) {
        return malformed(&format!("pid: {e}."));
    }
    let ip = issuers.idporten();
    let mut claims = idporten_claims(ip.issuer(), &req.pid);
    if let Some(f) = &req.fullmakt {
        if let Err(e) = policy::PersonNumber::parse(&f.owner, true) {
            return malformed(&format!("fullmakt.owner: {e}."));
        }
        if f.roles.is_empty() || f.roles.iter().any(|r| r.is_empty() || r.len() > 64) {
            return malformed("fullmakt.roles: one or more role codes, e.g. [\"helse\"].");
        }
        claims["authorization_details"] = fullmakt_details(&req.pid, &f.owner, &f.roles);
    }
    token_response(ip.sign(&claims))
}

async fn maskinporten_jwks(State(issuers): State<DemoIssuers>) -> Response {
    json_answer(&issuers.maskinporten().jwks())
}

async fn idporten_jwks(State(issuers): State<DemoIssuers>) -> Response {
    json_answer(&issuers.idporten().jwks())
}

fn token_response(token: Result<String, DemoError>) -> Response {
    match token {
        Ok(access_token) => (
            // Token responses must not be cached (RFC 6749 section 5.1).
            [(header::CACHE_CONTROL, "no-store")],
            json_answer(&json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_S,
            })),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "demo issuer could not sign a token");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "The demo issuer failed",
                "The demo issuer could not sign the token.",
            )
        }
    }
}

fn malformed(detail: &str) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "malformed_request",
        "Malformed request",
        detail,
    )
}

/// RFC 9457 problem details, shaped like the gateway's own.
fn problem(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    let body = json!({
        // Relative: the demo issuers are served by Bru, which serves this page.
        "type": format!("/problems/{code}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        format!("{body}\n"),
    )
        .into_response()
}

/// `application/json`, ending with a newline like every JSON answer of Bru's.
fn json_answer<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(text) => (
            [(header::CONTENT_TYPE, "application/json")],
            format!("{text}\n"),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "demo issuer could not write its answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
