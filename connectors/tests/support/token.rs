//! A token endpoint that checks JWT-bearer grants (RFC 7523) the way
//! Maskinporten does: signature, `aud`, `iss`, `exp − iat ≤ 120`, a `jti`
//! never seen before, and the `scope`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

use super::{full, start, Handler, Provider, ProviderBody};

/// What a valid grant must say.
pub struct Expect {
    pub alg: Algorithm,
    pub kid: String,
    pub key: DecodingKey,
    pub aud: String,
    pub iss: String,
    pub scope: String,
}

#[derive(Default)]
pub struct TokenState {
    jtis: HashSet<String>,
    /// Claims of every grant that was accepted.
    pub grants: Vec<Value>,
    /// Why grants were refused.
    pub refusals: Vec<String>,
    /// Access tokens handed out, in order.
    pub issued: Vec<String>,
    /// Refuse every grant with this status and body.
    pub refuse: Option<(u16, Value)>,
    pub expires_in: u64,
    /// Wait this long before answering (lets concurrent calls pile up).
    pub delay: Duration,
}

pub struct TokenEndpoint {
    pub server: Provider,
    pub state: Arc<Mutex<TokenState>>,
}

impl TokenEndpoint {
    pub async fn start(expect: Expect) -> TokenEndpoint {
        let state = Arc::new(Mutex::new(TokenState {
            expires_in: 120,
            ..TokenState::default()
        }));
        let expect = Arc::new(expect);
        let shared = state.clone();
        let handler: Handler = Arc::new(move |req: Request<Incoming>| {
            let state = shared.clone();
            let expect = expect.clone();
            Box::pin(async move { answer(req, &state, &expect).await })
        });
        TokenEndpoint {
            server: start(handler).await,
            state,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/token", self.server.addr)
    }

    pub fn grants(&self) -> usize {
        self.state.lock().unwrap().grants.len()
    }

    pub fn refusals(&self) -> Vec<String> {
        self.state.lock().unwrap().refusals.clone()
    }

    pub fn issued(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }
}

fn json_response(status: u16, body: &Value) -> Response<ProviderBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(body.to_string()))
        .unwrap()
}

async fn answer(
    req: Request<Incoming>,
    state: &Mutex<TokenState>,
    expect: &Expect,
) -> Response<ProviderBody> {
    let delay = state.lock().unwrap().delay;
    tokio::time::sleep(delay).await;
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let form = String::from_utf8_lossy(&body).into_owned();
    let verdict = check(&content_type, &form, state, expect);
    let mut st = state.lock().unwrap();
    if let Some((status, body)) = &st.refuse {
        return json_response(*status, body);
    }
    match verdict {
        Ok(claims) => {
            st.grants.push(claims);
            let token = format!("access-token-{}", st.issued.len() + 1);
            st.issued.push(token.clone());
            json_response(
                200,
                &json!({"access_token": token, "token_type": "Bearer", "expires_in": st.expires_in, "scope": expect.scope}),
            )
        }
        Err(why) => {
            st.refusals.push(why.clone());
            json_response(
                400,
                &json!({"error": "invalid_grant", "error_description": why}),
            )
        }
    }
}

fn check(
    content_type: &str,
    form: &str,
    state: &Mutex<TokenState>,
    expect: &Expect,
) -> Result<Value, String> {
    if content_type != "application/x-www-form-urlencoded" {
        return Err(format!("content type {content_type}"));
    }
    let mut grant_type = None;
    let mut assertion = None;
    for pair in form.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "grant_type" => grant_type = Some(percent_decode(v)),
            "assertion" => assertion = Some(percent_decode(v)),
            _ => return Err(format!("unexpected parameter {k}")),
        }
    }
    if grant_type.as_deref() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return Err(format!("grant_type {grant_type:?}"));
    }
    let assertion = assertion.ok_or("no assertion")?;
    let header = jsonwebtoken::decode_header(&assertion).map_err(|e| format!("header: {e}"))?;
    if header.alg != expect.alg {
        return Err(format!("alg {:?}", header.alg));
    }
    if header.kid.as_deref() != Some(expect.kid.as_str()) {
        return Err(format!("kid {:?}", header.kid));
    }
    let mut validation = Validation::new(expect.alg);
    validation.set_audience(&[&expect.aud]);
    validation.set_issuer(&[&expect.iss]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    validation.leeway = 5;
    let claims = jsonwebtoken::decode::<Value>(&assertion, &expect.key, &validation)
        .map_err(|e| format!("grant does not verify: {e}"))?
        .claims;
    let iat = claims["iat"].as_i64().ok_or("no iat")?;
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    if exp - iat > 120 || exp <= iat {
        return Err(format!("exp - iat = {}", exp - iat));
    }
    if claims["scope"] != expect.scope.as_str() {
        return Err(format!("scope {}", claims["scope"]));
    }
    let jti = claims["jti"].as_str().ok_or("no jti")?.to_owned();
    if jti.len() < 16 || !state.lock().unwrap().jtis.insert(jti) {
        return Err("jti reused or too short".into());
    }
    Ok(claims)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
