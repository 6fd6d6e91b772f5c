//! A reverse proxy of Bru's crates and nothing of Bru: rustls (aws-lc)
//! terminating TLS, hyper's HTTP/1.1 server with Bru's settings, hyper-util's
//! pooled client with Bru's settings, mimalloc, tokio. `bench/run` measures it
//! beside nginx and Bru's own plain-proxy rung (targets `bare-proxy` and
//! `bare-proxy-percore`), to tell what of the gap to nginx is the crates' and
//! what is Bru's (#21, bench/README.md "#21, session 9").
//!
//! `bare_proxy PORT UPSTREAM_PORT CERT KEY [multi-thread|per-core]`

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Body = http_body_util::combinators::BoxBody<bytes::Bytes, hyper::Error>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, upstream, cert, key, rest @ ..] = args.as_slice() else {
        return Err("usage: bare_proxy PORT UPSTREAM_PORT CERT KEY [multi-thread|per-core]".into());
    };
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let upstream: u16 = upstream.parse()?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(cert)?.collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tls = Arc::new(tls);
    let runtime = match rest.first().map(String::as_str) {
        None | Some("multi-thread") => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
        Some("per-core") => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        Some(other) => return Err(format!("unknown runtime {other}").into()),
    };
    runtime.block_on(serve(listen, upstream, tls))
}

async fn serve(
    listen: SocketAddr,
    upstream: u16,
    tls: Arc<rustls::ServerConfig>,
) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    // As connectors/src/client.rs builds the provider client.
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_max_idle_per_host(1024)
        .build(http);
    let base: Arc<str> = format!("http://127.0.0.1:{upstream}").into();
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let acceptor = acceptor.clone();
        let client = client.clone();
        let base = Arc::clone(&base);
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                forward(client.clone(), Arc::clone(&base), req)
            });
            // Bru's HTTP/1.1 settings (gateway/src/server.rs `protocols`).
            let mut http1 = hyper::server::conn::http1::Builder::new();
            http1.timer(TokioTimer::new()).writev(false);
            let _ = http1.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn forward(
    client: Client<HttpConnector, Incoming>,
    base: Arc<str>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Error> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("{base}{path}").parse()?;
    // As Bru: the caller's credentials are not for the provider.
    parts.headers.remove(hyper::header::CONNECTION);
    parts.headers.remove(hyper::header::AUTHORIZATION);
    let answer = client.request(Request::from_parts(parts, body)).await?;
    Ok(answer.map(BodyExt::boxed))
}
