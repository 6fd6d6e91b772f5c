//! Listeners: the public HTTPS listener (rustls, TLS 1.2+, HTTP/1.1 and
//! HTTP/2) and the internal ops listener (plain HTTP).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::app::App;

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
        // Room above our own limit, so that the 431 comes from us with a problem body.
        .max_buf_size((server.max_header_bytes * 2).max(16 * 1024))
        // One buffer per flush: through TLS, a vectored write of head and
        // body became a TLS record each (hyper's advice for TLS transports).
        .writev(false);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(u32::try_from(server.max_header_bytes * 2).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(Some(64))
        .max_local_error_reset_streams(Some(256))
        // A peer that stops answering pings is gone; free its connection.
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    Protocols { http1, http2 }
}

/// Serves the public listener until `shutdown` resolves, then lets the
/// connections in flight finish within the grace time.
pub async fn serve_public(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Arc<App>,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let protocols = Arc::new(protocols(&app));
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
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
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let router = router.clone();
        let protocols = protocols.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
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
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let app = app.clone();
                let router = router.clone();
                req.extensions_mut().insert(PeerAddr(peer));
                // Boxed: hyper keeps room for the in-flight call's future for
                // the whole life of the connection, idle or not (about 10 KB).
                let call = Box::pin(route(app, router, req));
                async move { Ok::<_, std::convert::Infallible>(call.await) }
            });
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let io = TokioIo::new(tls);
            // Each protocol's connection state boxed on its own, so an HTTP/1.1
            // connection does not carry room for HTTP/2's.
            let result = if h2 {
                Box::pin(watcher.watch(protocols.http2.serve_connection(io, service))).await
            } else {
                Box::pin(watcher.watch(protocols.http1.serve_connection(io, service))).await
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
            gauge_app.metrics.open_connections.dec();
        });
    }
    drop(listener);
    let grace = app.config.server.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace time; closing them");
    }
}

async fn route(app: Arc<App>, router: axum::Router, req: Request<Incoming>) -> Response<Body> {
    let hsts = app.config.server.hsts.clone();
    let mut response = if req.uri().path().starts_with("/data/") {
        crate::pipeline::handle(app, req).await
    } else {
        match router.oneshot(req.map(Body::new)).await {
            Ok(response) => response,
            Err(never) => match never {},
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

pub async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} for the {what}: {e}"))
}
