//! The test's own HTTP servers: a JWKS endpoint that counts fetches, a
//! provider that records every request it receives, and a trap listener that
//! counts connections (for `jku` / `x5u`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// A port on 127.0.0.1 where nothing listens (bound once, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

// ---------------------------------------------------------------- JWKS

#[derive(Default)]
struct JwksState {
    sets: Mutex<HashMap<String, Vec<Value>>>,
    fetches: Mutex<HashMap<String, usize>>,
}

/// Serves `{"keys": [...]}` at `/{name}` for each named key set; counts GETs per name.
#[derive(Clone)]
pub struct JwksServer {
    pub addr: SocketAddr,
    state: Arc<JwksState>,
}

impl JwksServer {
    pub async fn start() -> Self {
        let state = Arc::new(JwksState::default());
        let (listener, addr) = bind().await;
        let app = Router::new()
            .fallback(jwks_handler)
            .with_state(Arc::clone(&state));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        JwksServer { addr, state }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    pub fn set_keys(&self, name: &str, keys: Vec<Value>) {
        lock(&self.state.sets).insert(name.to_owned(), keys);
    }

    pub fn add_key(&self, name: &str, key: Value) {
        lock(&self.state.sets)
            .entry(name.to_owned())
            .or_default()
            .push(key);
    }

    /// How many times the key set `name` has been fetched.
    pub fn fetches(&self, name: &str) -> usize {
        lock(&self.state.fetches).get(name).copied().unwrap_or(0)
    }
}

async fn jwks_handler(State(state): State<Arc<JwksState>>, req: Request) -> Response {
    let name = req.uri().path().trim_start_matches('/').to_owned();
    *lock(&state.fetches).entry(name.clone()).or_default() += 1;
    let keys = lock(&state.sets).get(&name).cloned();
    match keys {
        Some(keys) => (
            [(header::CONTENT_TYPE, "application/json")],
            json!({ "keys": keys }).to_string(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

// ---------------------------------------------------------------- provider

/// One request as the provider received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Lower-case names, in arrival order; repeated headers appear repeatedly.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

struct ProviderState {
    id: String,
    requests: Mutex<Vec<Recorded>>,
    delay_ms: AtomicU64,
    body: Mutex<Option<Value>>,
}

/// A provider API run by the test: answers every request with JSON and
/// records what it received.
#[derive(Clone)]
pub struct Provider {
    pub id: String,
    pub addr: SocketAddr,
    state: Arc<ProviderState>,
}

impl Provider {
    pub async fn start(id: &str) -> Self {
        let state = Arc::new(ProviderState {
            id: id.to_owned(),
            requests: Mutex::new(Vec::new()),
            delay_ms: AtomicU64::new(0),
            body: Mutex::new(None),
        });
        let (listener, addr) = bind().await;
        let app = Router::new()
            .fallback(provider_handler)
            .with_state(Arc::clone(&state));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Provider {
            id: id.to_owned(),
            addr,
            state,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.requests).clone()
    }

    pub fn count(&self) -> usize {
        lock(&self.state.requests).len()
    }

    /// Delay every answer by this long (after recording the request).
    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Answer with this JSON instead of the default document.
    pub fn set_body(&self, body: Value) {
        *lock(&self.state.body) = Some(body);
    }

    /// Waits until at least `n` requests arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.count() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "provider {} got {} requests, expected {n}",
                self.id,
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asserts that this provider received nothing.
    pub fn assert_untouched(&self, context: &str) {
        let reqs = self.requests();
        assert!(
            reqs.is_empty(),
            "{context}: provider {} must receive nothing, got {:?}",
            self.id,
            reqs.iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect::<Vec<_>>()
        );
    }
}

async fn provider_handler(State(state): State<Arc<ProviderState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let rec = Recorded {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    lock(&state.requests).push(rec);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let doc = lock(&state.body).clone().unwrap_or_else(|| {
        json!({
            "provider": state.id,
            "path": path,
            "aar": 2024,
            "sum": 480000,
            "merknad": "kun for saksbehandler",
        })
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header("X-Provider", state.id.as_str())
        .body(Body::from(doc.to_string()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

// ---------------------------------------------------------------- trap

/// A TCP listener that only counts connections. Any connection means Bru
/// followed a URL taken from a token.
#[derive(Clone)]
pub struct Trap {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Trap {
    pub async fn start() -> Self {
        let (listener, addr) = bind().await;
        let connections = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Trap { addr, connections }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}
