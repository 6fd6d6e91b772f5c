//! Listeners: the public HTTPS listener (rustls, TLS 1.2+, HTTP/1.1 and
//! HTTP/2) and the internal ops listener (plain HTTP).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::app::App;
use crate::problem::Failure;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests in flight on one HTTP/2 connection.
const MAX_CONCURRENT_STREAMS: u32 = 128;
/// Open connections on the public listener; memory per idle connection is a few KiB.
const MAX_CONNECTIONS: usize = 20_000;

/// The client's address, for per-address limits.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// How often the certificate and key files are checked for a change.
const TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Reads the certificate chain and key; TLS 1.2 and 1.3 only, ALPN h2 and
/// http/1.1. A task (when a runtime is running) checks the files' mtimes
/// every [`TLS_RELOAD_INTERVAL`] and swaps in a renewed pair for new
/// connections; open connections keep theirs.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let resolver = Arc::new(ReloadingCert::load(cert, key)?);
    let mut config = rustls::ServerConfig::builder_with_protocol_versions(&[
        &rustls::version::TLS13,
        &rustls::version::TLS12,
    ])
    .with_no_client_auth()
    .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(watch_cert(Arc::downgrade(&resolver)));
    }
    Ok(Arc::new(config))
}

/// The certificate and key for new connections, replaced when the files change.
#[derive(Debug)]
struct ReloadingCert {
    cert_path: std::path::PathBuf,
    key_path: std::path::PathBuf,
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
    /// The files' mtimes of the pair in use.
    stamp: std::sync::Mutex<Option<(std::time::SystemTime, std::time::SystemTime)>>,
}

impl ReloadingCert {
    fn load(cert: &std::path::Path, key: &std::path::Path) -> Result<Self, String> {
        let stamp = mtimes(cert, key);
        let certified = read_certified_key(cert, key)?;
        Ok(ReloadingCert {
            cert_path: cert.to_owned(),
            key_path: key.to_owned(),
            current: std::sync::RwLock::new(Arc::new(certified)),
            stamp: std::sync::Mutex::new(stamp),
        })
    }

    /// Reloads if either file changed; a pair that does not load (e.g. the
    /// certificate written but not yet the key) keeps the old one in use and
    /// is tried again next time.
    fn reload_if_changed(&self) {
        let now = mtimes(&self.cert_path, &self.key_path);
        let Ok(mut stamp) = self.stamp.lock() else {
            return;
        };
        if now.is_none() || now == *stamp {
            return;
        }
        match read_certified_key(&self.cert_path, &self.key_path) {
            Ok(certified) => {
                if let Ok(mut current) = self.current.write() {
                    *current = Arc::new(certified);
                    *stamp = now;
                    tracing::info!("reloaded the TLS certificate and key");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the changed TLS certificate does not load yet; keeping the old one")
            }
        }
    }
}

impl rustls::server::ResolvesServerCert for ReloadingCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}

async fn watch_cert(resolver: std::sync::Weak<ReloadingCert>) {
    loop {
        tokio::time::sleep(TLS_RELOAD_INTERVAL).await;
        // The listener (and its config) is gone: stop.
        let Some(resolver) = resolver.upgrade() else {
            return;
        };
        // File reads: off the async workers.
        let _ = tokio::task::spawn_blocking(move || resolver.reload_if_changed()).await;
    }
}

fn mtimes(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Option<(std::time::SystemTime, std::time::SystemTime)> {
    let m = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((m(cert)?, m(key)?))
}

fn read_certified_key(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::sign::CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read the TLS certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the TLS certificate {} is not PEM: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the TLS key {}: {e}", key.display()))?;
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    rustls::sign::CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| format!("the TLS certificate and key do not fit: {e}"))
}

/// HTTP/1.1 and HTTP/2 settings, chosen per connection by ALPN: sniffing the
/// protocol from the first bytes (hyper-util's `auto`) would read without a
/// timeout, so a client that connects and says nothing would be kept forever.
struct Protocols {
    http1: hyper::server::conn::http1::Builder,
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
}

fn protocols(app: &App) -> Protocols {
    let server = &app.config.server;
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        // Also closes a connection that sends nothing after the handshake or
        // after its last response.
        .header_read_timeout(server.header_read_timeout)
        // Room above our own limits, so that the 431 comes from us with a
        // problem body (beyond it, hyper answers a bare 431).
        .max_buf_size(header_room(server.max_header_bytes))
        .max_headers(server.max_headers * 2)
        // One buffer per flush: through TLS, a vectored write of head and
        // body became a TLS record each (hyper's advice for TLS transports).
        .writev(false);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(
            u32::try_from(header_room(server.max_header_bytes)).unwrap_or(u32::MAX),
        )
        .max_pending_accept_reset_streams(Some(64))
        .max_local_error_reset_streams(Some(256))
        // A peer that stops answering pings is gone; free its connection.
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    Protocols { http1, http2 }
}

/// What hyper reads of a header block before refusing it itself: four times
/// Bru's limit and at least 64 KiB, so the usual oversized blocks (the attack
/// run's 32 KiB) get Bru's problem body. hyper's read buffer grows to this
/// only when a client sends that much.
fn header_room(max_header_bytes: usize) -> usize {
    (max_header_bytes * 4).max(64 * 1024)
}

/// The public listener's connection limits, shared by all its workers (the
/// per-core runtime's threads each accept on their own socket, but one
/// address still gets `max_connections_per_address` in all).
#[derive(Clone)]
pub struct Limits {
    connections: Arc<tokio::sync::Semaphore>,
    per_address: Arc<PerAddress>,
}

impl Limits {
    pub fn new(app: &App) -> Limits {
        Limits {
            connections: Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)),
            per_address: Arc::new(PerAddress::new(
                app.config.server.max_connections_per_address,
            )),
        }
    }
}

/// Serves the public listener until `shutdown` resolves, then lets the
/// connections in flight finish within the grace time.
pub async fn serve_public(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Arc<App>,
    router: axum::Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let protocols = Arc::new(protocols(&app));
    let Limits {
        connections,
        per_address,
    } = limits;
    // Shutdown: every connection is asked to finish (GOAWAY / close after
    // the call in flight), and the tracker waits for them.
    let draining = CancellationToken::new();
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        // At the connection limit, stop accepting until one closes: the
        // kernel's backlog holds the rest, and established clients go on.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, don't spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Over its share, an address's new connection is closed at once:
        // one client must not hold the listener's 20,000 (issue 15).
        let Some(address_slot) = per_address.admit(peer.ip()) else {
            tracing::debug!(%peer, "connection refused: too many from this address");
            app.metrics.connections_refused.inc();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let router = router.clone();
        let protocols = protocols.clone();
        let draining = draining.clone();
        tracker.spawn(async move {
            let _address_slot = address_slot;
            let tls =
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            app.metrics.open_connections.inc();
            let gauge_app = app.clone();
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            // Only HTTP/2 needs to know when its last call ended (its idle timer).
            let activity = h2.then(|| Arc::new(Activity::new()));
            let service_activity = activity.clone();
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let app = app.clone();
                let router = router.clone();
                let busy = service_activity.as_ref().map(Activity::begin);
                // Boxed: hyper keeps room for the in-flight call's future for
                // the whole life of the connection, idle or not (about 10 KB).
                let call = Box::pin(route(app, router, req, peer));
                async move {
                    let response = call.await;
                    drop(busy);
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let io = TokioIo::new(tls);
            // Each protocol's connection state boxed on its own, so an HTTP/1.1
            // connection does not carry room for HTTP/2's. HTTP/1.1's idle
            // connections end at `header_read_timeout`; HTTP/2 has no such
            // timer in hyper, so an idle timer of ours sends GOAWAY.
            let result = if let Some(activity) = activity {
                let idle = gauge_app.config.server.http2_idle_timeout;
                let conn = Box::pin(protocols.http2.serve_connection(io, service));
                drive(conn, draining, Some((activity, idle)), |c| {
                    c.as_mut().graceful_shutdown()
                })
                .await
            } else {
                let conn = Box::pin(protocols.http1.serve_connection(io, service));
                drive(conn, draining, None, |c| c.as_mut().graceful_shutdown()).await
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
            gauge_app.metrics.open_connections.dec();
        });
    }
    drop(listener);
    draining.cancel();
    tracker.close();
    let grace = app.config.server.shutdown_grace;
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("connections still open after the shutdown grace time; closing them");
    }
}

/// Runs one connection to its end; asks it to finish (`drain`) when the
/// listener shuts down, or when it had no call in flight for `idle`.
async fn drive<C>(
    mut conn: Pin<Box<C>>,
    shutdown: CancellationToken,
    idle: Option<(Arc<Activity>, Duration)>,
    drain: impl Fn(&mut Pin<Box<C>>),
) -> Result<(), hyper::Error>
where
    C: Future<Output = Result<(), hyper::Error>>,
{
    let idle_expired = async {
        match &idle {
            Some((activity, timeout)) => activity.idle_for(*timeout).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(idle_expired);
    tokio::select! {
        result = conn.as_mut() => return result,
        () = shutdown.cancelled() => {}
        () = &mut idle_expired => {}
    }
    drain(&mut conn);
    conn.await
}

/// Calls in flight on one connection, and since when it has had none.
/// Atomics only: every call passes here.
struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    /// When the last call ended, in milliseconds since `born`.
    idle_since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// Resolves once no call has been in flight for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let since = if self.in_flight.load(Ordering::Acquire) == 0 {
                self.born + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire))
            } else {
                Instant::now()
            };
            let deadline = since + timeout;
            if Instant::now() >= deadline && self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            tokio::time::sleep_until(deadline.max(Instant::now() + Duration::from_millis(10)))
                .await;
        }
    }
}

/// One call in flight; when the last ends, the connection's idle time starts.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let now = u64::try_from(self.0.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.idle_since_ms.store(now, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Open connections per client address.
struct PerAddress {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    fn new(limit: usize) -> PerAddress {
        PerAddress {
            limit,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for one more connection from `ip`, or None at its limit.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let mut open = self.open.lock().ok()?;
        let count = open.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            table: self.clone(),
            ip,
        })
    }
}

/// Held for the life of one connection.
struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.table.open.lock() {
            if let Some(count) = open.get_mut(&self.ip) {
                *count -= 1;
                if *count == 0 {
                    open.remove(&self.ip);
                }
            }
        }
    }
}

/// A request body whose next piece must arrive within `timeout` of asking
/// for it (nginx's `client_body_timeout`): a client that announces a body and
/// sends none no longer holds its connection and its call forever.
pub struct TimedBody {
    inner: hyper::body::Incoming,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Set when the body stopped arriving; none for a body that had ended
    /// before the handler got it.
    expired: Option<Arc<AtomicBool>>,
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    #[error("the request body stopped arriving")]
    Timeout,
    #[error("the request body could not be read: {0}")]
    Read(#[from] hyper::Error),
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = BodyReadError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyReadError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(BodyReadError::from)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        if let Some(expired) = &this.expired {
                            expired.store(true, Ordering::Relaxed);
                        }
                        Poll::Ready(Some(Err(BodyReadError::Timeout)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body as the handlers see it.
pub type Incoming = TimedBody;

/// The JSON APIs that take a body, and the token each one wants.
fn api_token_kind(path: &str) -> Option<crate::config::IssuerKind> {
    if path.starts_with("/citizen/") {
        Some(crate::config::IssuerKind::Idporten)
    } else if path.starts_with("/consent/") || path.starts_with("/audit/") {
        Some(crate::config::IssuerKind::Maskinporten)
    } else {
        None
    }
}

/// Headers Bru decides on: given twice, which one counts would depend on the
/// reader (Bru takes the first, a provider may take the last).
const SINGLE_HEADERS: [&str; 3] = ["authorization", "bru-purpose", "bru-consent"];

/// Refuses a request that gives a header Bru decides on more than once.
pub fn check_single_headers(headers: &HeaderMap) -> Result<(), Failure> {
    for name in SINGLE_HEADERS {
        if headers.get_all(name).iter().nth(1).is_some() {
            return Err(Failure::MalformedRequest(
                "the Authorization, Bru-Purpose or Bru-Consent header is given more than once",
            ));
        }
    }
    Ok(())
}

/// The checks every request outside the data plane passes before a handler
/// runs (and before any of its body is read). The data plane makes the same
/// checks itself, so that its refusals carry a transfer id and a record.
async fn precheck(
    app: &App,
    headers: &HeaderMap,
    path: &str,
    has_body: bool,
) -> Result<(), Failure> {
    check_header_limits(&app.config.server, headers)?;
    check_single_headers(headers)?;
    // Authenticate before waiting for a body: a request without a valid
    // token is answered at once, whatever its Content-Length promised.
    // (The data plane does the same in its own order, see pipeline.rs.)
    if has_body {
        let authorization = headers.get(http::header::AUTHORIZATION);
        match api_token_kind(path) {
            // The portal's pages may bring a session cookie instead of a
            // token; the handler checks it (and the body timeout bounds it).
            Some(crate::config::IssuerKind::Idporten)
                if authorization.is_none() && headers.contains_key(http::header::COOKIE) => {}
            Some(crate::config::IssuerKind::Idporten) => {
                app.auth.citizen(authorization).await?;
            }
            // A token verified before passes without cryptography.
            Some(crate::config::IssuerKind::Maskinporten)
                if app.auth.cached_machine(authorization).is_none() =>
            {
                app.auth.machine(authorization).await?;
            }
            Some(crate::config::IssuerKind::Maskinporten) => {}
            None => {}
        }
    }
    Ok(())
}

/// Bru's own header limits (count, and the block's size as a client sends
/// it), on the data plane and the APIs alike.
pub fn check_header_limits(
    server: &crate::config::ServerConfig,
    headers: &HeaderMap,
) -> Result<(), Failure> {
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > server.max_headers || bytes > server.max_header_bytes {
        return Err(Failure::HeadersTooLarge);
    }
    Ok(())
}

async fn route(
    app: Arc<App>,
    router: axum::Router,
    mut req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let hsts = app.config.server.hsts.clone();
    let has_body = !req.body().is_end_stream();
    // A body that has already ended cannot stop arriving: no flag to share.
    let expired = has_body.then(|| Arc::new(AtomicBool::new(false)));
    // HTTP/2 has no `Connection` header; its streams end on their own.
    let http1 = req.version() < http::Version::HTTP_2;
    let data_plane = req.uri().path().starts_with("/data/");
    // The data plane is handed the address; the APIs' handlers read it from
    // the request (three allocations a call the data plane does without).
    if !data_plane {
        req.extensions_mut().insert(PeerAddr(peer));
    }
    let checked = if data_plane {
        Ok(())
    } else {
        precheck(&app, req.headers(), req.uri().path(), has_body).await
    };
    let mut response = match checked {
        Err(failure) => {
            let mut response = failure.response(None);
            if has_body && http1 {
                // The body is not read: the connection cannot carry another call.
                response
                    .headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
        Ok(()) => {
            let req = req.map(|inner| TimedBody {
                inner,
                timeout: app.config.server.body_read_timeout,
                sleep: None,
                expired: expired.clone(),
            });
            let response = if data_plane {
                crate::pipeline::handle(app, req, peer.ip()).await
            } else {
                match router.oneshot(req.map(Body::new)).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            };
            if expired.is_some_and(|e| e.load(Ordering::Relaxed)) {
                // Whatever the handler made of the broken body, the answer is
                // 408, and the connection is not reused.
                // The data plane's refusal was recorded under its transfer id.
                let transfer_id = response
                    .headers()
                    .get("bru-transfer-id")
                    .and_then(|v| v.to_str().ok());
                let mut timeout = Failure::BodyTimeout.response(transfer_id);
                if http1 {
                    timeout
                        .headers_mut()
                        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                }
                timeout
            } else {
                response
            }
        }
    };
    // This listener is HTTPS only: browsers (the portal's citizens) are told
    // to come back over HTTPS. Not includeSubDomains unless configured: what
    // else lives under Bru's host name is the operator's to know.
    response
        .headers_mut()
        .insert(http::header::STRICT_TRANSPORT_SECURITY, hsts);
    response
}

/// Serves the ops listener (`/metrics`, `/healthz`, `/readyz`) until shutdown.
pub async fn serve_ops(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "ops listener failed");
    }
}

/// Binds a listener. With `reuse_port` (the per-core runtime's public
/// listener), SO_REUSEPORT lets each worker bind a socket of its own to the
/// same address, and the kernel spreads new connections over them; Linux
/// allows that only to sockets of the same user, each with the option set
/// before its bind.
pub async fn bind(addr: SocketAddr, what: &str, reuse_port: bool) -> Result<TcpListener, String> {
    let bound = if reuse_port {
        bind_reuse_port(addr)
    } else {
        TcpListener::bind(addr).await
    };
    bound.map_err(|e| format!("cannot listen on {addr} for the {what}: {e}"))
}

/// A listener with SO_REUSEPORT (and SO_REUSEADDR, as tokio's own `bind`:
/// a restart does not wait out TIME_WAIT). Needs a runtime context.
fn bind_reuse_port(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }?;
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    // tokio's `TcpListener::bind` backlog.
    socket.listen(1024)
}

/// The public listener on the per-core runtime (`[server] runtime =
/// "per-core"`): one thread per worker, each with a current-thread tokio
/// runtime and its own SO_REUSEPORT socket, accepting and serving its own
/// connections (TLS, hyper, the pipeline, the forward) without handing a
/// task to another thread. The TLS configuration (its reloading certificate
/// included) and the connection limits are shared.
pub struct PerCore {
    threads: Vec<std::thread::JoinHandle<()>>,
    served: Vec<tokio::sync::oneshot::Receiver<()>>,
    exit: tokio::sync::watch::Sender<bool>,
}

/// The per-core runtime's current-thread runtimes, built before the
/// workers start so that the audit writer can run on the first
/// ([`CoreRuntimes::first`]).
pub struct CoreRuntimes(Vec<CoreRuntime>);

/// One worker's runtime until its thread takes it. Dropped before that (a
/// start that failed half-way, on the main runtime) it is shut down in the
/// background: dropping a runtime inside another one's task panics.
struct CoreRuntime(Option<tokio::runtime::Runtime>);

impl Drop for CoreRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl CoreRuntimes {
    /// One runtime for each of `workers` (at least one).
    pub fn build(workers: usize) -> Result<CoreRuntimes, String> {
        (0..workers.max(1))
            .map(|_| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|r| CoreRuntime(Some(r)))
                    .map_err(|e| format!("cannot start a per-core runtime: {e}"))
            })
            .collect::<Result<_, _>>()
            .map(CoreRuntimes)
    }

    /// The first worker's runtime. Tasks spawned on it before the workers
    /// start run once its thread does.
    pub fn first(&self) -> Option<tokio::runtime::Handle> {
        self.0
            .first()
            .and_then(|r| r.0.as_ref())
            .map(|r| r.handle().clone())
    }
}

impl PerCore {
    /// Starts a thread for each of `runtimes`; the first takes `listener`
    /// (bound with SO_REUSEPORT), the others bind their own socket to its
    /// address. Each serves until `stop` turns true.
    pub fn start(
        listener: TcpListener,
        runtimes: CoreRuntimes,
        tls: Arc<rustls::ServerConfig>,
        app: Arc<App>,
        router: axum::Router,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<PerCore, String> {
        let addr = listener
            .local_addr()
            .map_err(|e| format!("the public listener has no address: {e}"))?;
        let mut sockets = vec![listener];
        for _ in 1..runtimes.0.len() {
            // Bound here, on the main runtime, so that a failure stops the
            // start; handed to the worker's runtime as a std socket.
            sockets.push(bind_reuse_port(addr).map_err(|e| {
                format!("cannot listen on {addr} for the public listener (per-core): {e}")
            })?);
        }
        let limits = Limits::new(&app);
        let (exit, exit_rx) = tokio::sync::watch::channel(false);
        let mut threads = Vec::with_capacity(sockets.len());
        let mut served = Vec::with_capacity(sockets.len());
        for (i, (socket, runtime)) in sockets.into_iter().zip(runtimes.0).enumerate() {
            let socket = socket
                .into_std()
                .map_err(|e| format!("cannot hand the public listener to a worker: {e}"))?;
            let (done, done_rx) = tokio::sync::oneshot::channel();
            served.push(done_rx);
            let (tls, app, router, limits) =
                (tls.clone(), app.clone(), router.clone(), limits.clone());
            let (mut stop, mut exit_rx) = (stop.clone(), exit_rx.clone());
            let thread = std::thread::Builder::new()
                .name(format!("bru-core-{i}"))
                .spawn(move || {
                    let mut runtime = runtime;
                    let Some(runtime) = runtime.0.take() else {
                        return;
                    };
                    runtime.block_on(async move {
                        match TcpListener::from_std(socket) {
                            Ok(listener) => {
                                let shutdown = async move {
                                    let _ = stop.wait_for(|s| *s).await;
                                };
                                serve_public(listener, tls, app, router, limits, shutdown).await;
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "a per-core worker cannot listen")
                            }
                        }
                        let _ = done.send(());
                        // Outcome records and the upstream connections of
                        // this worker's calls are tasks of this runtime:
                        // it keeps running until the main runtime has
                        // written the last record and stopped.
                        let _ = exit_rx.wait_for(|e| *e).await;
                    });
                })
                .map_err(|e| format!("cannot start a per-core worker thread: {e}"))?;
            threads.push(thread);
        }
        tracing::info!(
            workers = threads.len(),
            "public listener on the per-core runtime"
        );
        Ok(PerCore {
            threads,
            served,
            exit,
        })
    }

    /// Resolves when every worker has stopped accepting and its connections
    /// have finished (or the shutdown grace time ran out).
    pub async fn served(&mut self) {
        for done in self.served.drain(..) {
            let _ = done.await;
        }
    }

    /// Stops the workers' runtimes and waits for their threads.
    pub async fn finish(self) {
        let _ = self.exit.send(true);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_share_and_a_closed_connection_frees_a_slot() {
        let table = Arc::new(PerAddress::new(2));
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let first = table.admit(a);
        let second = table.admit(a);
        assert!(first.is_some() && second.is_some());
        assert!(table.admit(a).is_none(), "the third from one address");
        assert!(table.admit(b).is_some(), "another address is counted alone");
        drop(first);
        assert!(table.admit(a).is_some(), "a freed slot is given again");
    }

    #[test]
    fn header_room_is_above_bru_limit() {
        assert_eq!(header_room(16 * 1024), 64 * 1024);
        assert_eq!(header_room(32 * 1024), 128 * 1024);
    }
}
