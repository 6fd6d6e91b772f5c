//! A real provider for the integration tests: a hyper server on
//! 127.0.0.1:0 (plain HTTP, or TLS with HTTP/2 and HTTP/1.1 by ALPN) that
//! runs a handler per request and counts connections.

#![allow(clippy::unwrap_used, dead_code)]

pub mod pki;
pub mod token;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use connectors::{
    BoxError, BruHeaders, Connector, ConnectorConfig, Credentials, OutboundBody, OutboundRequest,
    Resilience, TrustAnchors, Upstream,
};
use futures_util::future::BoxFuture;
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub type ProviderBody = UnsyncBoxBody<Bytes, BoxError>;
pub type Handler =
    Arc<dyn Fn(Request<Incoming>) -> BoxFuture<'static, Response<ProviderBody>> + Send + Sync>;

pub fn install_crypto() {
    // Another test in this binary may have installed it already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub struct Provider {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Provider {
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(handler: Handler) -> Provider {
    start_with(handler, None).await
}

pub async fn start_tls(handler: Handler, tls: &Tls) -> Provider {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![tls.cert.clone()], tls.key.clone_key())
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    start_with(handler, Some(TlsAcceptor::from(Arc::new(config)))).await
}

/// A TLS provider that demands a client certificate issued by `client_ca`.
pub async fn start_mtls(
    handler: Handler,
    server: &Tls,
    client_ca: CertificateDer<'static>,
) -> Provider {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(client_ca).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server.cert.clone()], server.key.clone_key())
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    start_with(handler, Some(TlsAcceptor::from(Arc::new(config)))).await
}

async fn start_with(handler: Handler, tls: Option<TlsAcceptor>) -> Provider {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                let _ = match tls {
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                    None => {
                        builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                };
            });
        }
    });
    Provider {
        addr,
        connections,
        task,
    }
}

/// What the provider received.
#[derive(Debug)]
pub struct Seen {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A handler that reads the whole request, reports it, and answers with `respond()`.
pub fn recording<F>(respond: F) -> (Handler, mpsc::UnboundedReceiver<Seen>)
where
    F: Fn() -> Response<ProviderBody> + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let respond = Arc::new(respond);
    let handler: Handler = Arc::new(move |req: Request<Incoming>| {
        let tx = tx.clone();
        let respond = respond.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let _ = tx.send(Seen {
                method: parts.method,
                uri: parts.uri,
                version: parts.version,
                headers: parts.headers,
                body,
            });
            respond()
        })
    });
    (handler, rx)
}

pub fn full(data: impl Into<Bytes>) -> ProviderBody {
    Full::new(data.into())
        .map_err(|e: Infallible| match e {})
        .boxed_unsync()
}

pub fn json_ok() -> Response<ProviderBody> {
    Response::builder()
        .header("content-type", "application/json")
        .body(full(r#"{"ok":true}"#))
        .unwrap()
}

/// An empty request body (replayable).
pub fn empty_body() -> OutboundBody {
    OutboundBody::Empty
}

/// A request body streamed in one chunk (not replayable).
pub fn full_body(data: impl Into<Bytes>) -> OutboundBody {
    full(data).into()
}

/// A request body Bru already read whole (replayable).
pub fn buffered_body(data: impl Into<Bytes>) -> OutboundBody {
    OutboundBody::Buffered(data.into())
}

/// A self-signed certificate for `localhost` and its key.
pub struct Tls {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

pub fn tls_identity() -> Tls {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    Tls {
        cert: ck.cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der())),
    }
}

/// A connector that trusts only `cert` (plain-HTTP tests never use it).
pub fn connector_trusting(cert: CertificateDer<'static>) -> Connector {
    Connector::new(ConnectorConfig {
        trust: TrustAnchors::Custom(vec![cert]),
        ..ConnectorConfig::default()
    })
    .unwrap()
}

pub fn connector() -> Connector {
    connector_trusting(tls_identity().cert)
}

pub fn upstream(base_url: &str) -> Upstream {
    Upstream {
        base_url: base_url.parse().unwrap(),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        max_response_bytes: 1024 * 1024,
        credentials: Credentials::None,
        resilience: Resilience::default(),
    }
}

pub const BRU: BruHeaders<'static> = BruHeaders {
    transfer_id: "01890f5e-0000-7000-8000-000000000001",
    consumer: "0192:921429002",
    purpose: Some("omsorgsbolig-soknad"),
    legal_basis: "consent",
    assertion: "eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiIxIn0.c2ln",
};

pub fn get<'a>(rest: &'a str, query: Option<&'a str>) -> OutboundRequest<'a> {
    OutboundRequest {
        method: Method::GET,
        dataset: "inntekt",
        rest,
        query,
        headers: HeaderMap::new(),
        body: empty_body(),
        bru: BRU,
    }
}
