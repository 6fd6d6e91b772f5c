//! The outbound HTTP client: one pooled hyper client per client identity
//! and connect timeout, shared by every forwarded call; retries, the
//! concurrency limit and the circuit breaker around each call.

use std::error::Error as StdError;
use std::io;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self as header_names, HeaderMap, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Body;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use tokio::sync::OwnedSemaphorePermit;

use crate::body::ResponseBody;
use crate::credentials::Credentials;
use crate::headers::{self, clean_request_headers, clean_response_headers};
use crate::mtls::ClientIdentity;
use crate::oauth2::GrantError;
use crate::resilience::{BreakerState, Resilience, Ticket};

/// The error type of the bodies Bru streams.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// The request body Bru streams to a provider. The gateway boxes the inbound
/// body into it, e.g. `incoming.map_err(BoxError::from).boxed_unsync()`.
pub type RequestBody = UnsyncBoxBody<Bytes, BoxError>;

pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// The request body of a forwarded call, and whether it can be sent again.
///
/// Only an empty or a buffered body can be replayed, so only those calls are
/// ever retried; a streaming body goes out once.
pub enum OutboundBody {
    Empty,
    /// Already read whole (e.g. to find a subject in a JSON body).
    Buffered(Bytes),
    /// Streamed to the provider as it arrives.
    Streaming(RequestBody),
}

impl OutboundBody {
    pub fn empty() -> OutboundBody {
        OutboundBody::Empty
    }
}

impl From<RequestBody> for OutboundBody {
    fn from(body: RequestBody) -> Self {
        OutboundBody::Streaming(body)
    }
}

impl std::fmt::Debug for OutboundBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutboundBody::Empty => f.write_str("Empty"),
            OutboundBody::Buffered(b) => write!(f, "Buffered({} bytes)", b.len()),
            OutboundBody::Streaming(_) => f.write_str("Streaming"),
        }
    }
}

/// The body as the attempts see it.
enum BodySource {
    Replay(Bytes),
    Once(Option<RequestBody>),
}

impl BodySource {
    fn new(body: OutboundBody) -> BodySource {
        match body {
            OutboundBody::Empty => BodySource::Replay(Bytes::new()),
            OutboundBody::Buffered(b) => BodySource::Replay(b),
            // A stream that has already ended is as good as an empty body.
            OutboundBody::Streaming(b) if b.is_end_stream() => BodySource::Replay(Bytes::new()),
            OutboundBody::Streaming(b) => BodySource::Once(Some(b)),
        }
    }

    fn replayable(&self) -> bool {
        matches!(self, BodySource::Replay(_))
    }

    fn next(&mut self) -> RequestBody {
        match self {
            BodySource::Replay(b) if b.is_empty() => {
                Empty::new().map_err(|never| match never {}).boxed_unsync()
            }
            BodySource::Replay(b) => Full::new(b.clone())
                .map_err(|never| match never {})
                .boxed_unsync(),
            BodySource::Once(b) => b
                .take()
                .unwrap_or_else(|| Empty::new().map_err(|never| match never {}).boxed_unsync()),
        }
    }
}

/// Which certificate authorities Bru trusts when it connects to providers.
#[derive(Debug, Clone, Default)]
pub enum TrustAnchors {
    /// The operating system's trust store.
    #[default]
    Native,
    /// Only these certificates (e.g. the demo CA, or a sector CA).
    Custom(Vec<CertificateDer<'static>>),
}

/// Settings shared by every provider connection.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub trust: TrustAnchors,
    /// How long an idle pooled connection is kept. Shorter than the
    /// providers' own keep-alive timeouts (nginx: 75 s), so Bru is not the
    /// one sending on a connection the provider is closing.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per provider. At least as many as calls are in
    /// flight to one provider under load: with fewer, every call beyond them
    /// closed its connection after use and the next opened a new one (with 32
    /// here and 256 callers, half of all calls paid a TCP connect; see
    /// bench/README.md, "Profile"). Each idle connection costs a few KiB;
    /// the idle timeout reclaims them when the load ends.
    pub pool_max_idle_per_host: usize,
    /// TCP keep-alive probes on provider connections; `None` leaves the OS default.
    pub tcp_keepalive: Option<Duration>,
    /// A pool per thread instead of one shared: for the gateway's per-core
    /// runtime, where each thread serves its own calls. A provider
    /// connection's task lives on the runtime that opened it; shared, a call
    /// on one thread would hand its request to a connection driven by
    /// another, two cross-thread wake-ups a call.
    pub pool_per_thread: bool,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        ConnectorConfig {
            trust: TrustAnchors::Native,
            pool_idle_timeout: Duration::from_secs(30),
            pool_max_idle_per_host: 1024,
            tcp_keepalive: Some(Duration::from_secs(60)),
            pool_per_thread: false,
        }
    }
}

/// Why a [`Connector`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorError {
    #[error("no usable trusted certificates: {0}")]
    NoTrustAnchors(String),
    #[error("a trusted certificate is invalid: {0}")]
    InvalidTrustAnchor(#[source] rustls::Error),
    #[error("TLS configuration: {0}")]
    Tls(#[source] rustls::Error),
}

/// One provider as the configuration describes it. Built once at start, kept
/// for the life of the process, passed by reference to every call.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `/data/{provider}/{dataset}/{rest}?{query}` goes to
    /// `{base_url}/{dataset}/{rest}?{query}`.
    pub base_url: Uri,
    /// For the TCP connection to be established.
    pub connect_timeout: Duration,
    /// For the response head to arrive, from the start of the call
    /// (connecting and sending the request included).
    pub request_timeout: Duration,
    /// The most body bytes streamed back; more ends the body with an error.
    pub max_response_bytes: u64,
    pub credentials: Credentials,
    /// Concurrency limit, retries and circuit breaker; clones share its state.
    pub resilience: Resilience,
}

impl Upstream {
    /// Checks the base URL once, at configuration time: `http` or `https`,
    /// a host, no user info (it would end up in logs), no query or fragment.
    pub fn validate(&self) -> Result<(), InvalidUpstream> {
        let url = &self.base_url;
        match url.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err(InvalidUpstream::Scheme),
        }
        let Some(authority) = url.authority() else {
            return Err(InvalidUpstream::NoHost);
        };
        if authority.as_str().contains('@') {
            return Err(InvalidUpstream::UserInfo);
        }
        if url.query().is_some() {
            return Err(InvalidUpstream::Query);
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(InvalidUpstream::ZeroTimeout);
        }
        if matches!(self.credentials, Credentials::Mtls(_)) && url.scheme_str() != Some("https") {
            return Err(InvalidUpstream::MtlsNeedsHttps);
        }
        Ok(())
    }
}

/// Why an [`Upstream`] is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidUpstream {
    #[error("the upstream URL must start with http:// or https://")]
    Scheme,
    #[error("the upstream URL has no host")]
    NoHost,
    #[error("the upstream URL must not contain user info; use credentials")]
    UserInfo,
    #[error("the upstream URL must not have a query")]
    Query,
    #[error("upstream timeouts must be greater than zero")]
    ZeroTimeout,
    #[error("mutual TLS needs an https:// upstream URL")]
    MtlsNeedsHttps,
}

/// What Bru vouches for on a forwarded call: the `Bru-*` request headers.
#[derive(Debug, Clone, Copy)]
pub struct BruHeaders<'a> {
    pub transfer_id: &'a str,
    /// `0192:{orgnr}`.
    pub consumer: &'a str,
    pub purpose: Option<&'a str>,
    /// `policy::LegalBasis::as_str()`.
    pub legal_basis: &'static str,
    /// The JWT Bru signed for this call.
    pub assertion: &'a str,
}

/// One call to forward.
#[derive(Debug)]
pub struct OutboundRequest<'a> {
    pub method: Method,
    /// The dataset id, the path segment after the provider.
    pub dataset: &'a str,
    /// The rest of the path after `/data/{provider}/{dataset}/`, already
    /// normalised by the gateway, without a leading `/`; may be empty.
    pub rest: &'a str,
    /// The inbound query string, without `?`, passed on as it is.
    pub query: Option<&'a str>,
    /// The inbound headers; cleaned by [`clean_request_headers`] before
    /// anything is added. `traceparent`/`tracestate` pass through, so the
    /// gateway may replace them here with its own span.
    ///
    /// When the response will be minimised, set `Accept-Encoding: identity`
    /// here: a compressed body is not JSON and fails minimisation.
    pub headers: HeaderMap,
    /// Empty, buffered (replayable), or streamed to the provider as it arrives.
    pub body: OutboundBody,
    pub bru: BruHeaders<'a>,
}

/// Why a call to a provider failed before its response head arrived.
///
/// Display is safe to log and to show in a problem `detail`: it carries no
/// credential, header value or body content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    #[error("the provider did not accept a connection within {} ms", .0.as_millis())]
    ConnectTimeout(Duration),
    #[error("the provider did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("could not connect to the provider: {0}")]
    Connect(String),
    /// The TLS handshake failed: an untrusted or expired certificate on
    /// either side, a wrong host name, a refused client certificate.
    #[error("the TLS handshake with the provider failed: {0}")]
    Tls(String),
    #[error("the exchange with the provider failed: {0}")]
    Protocol(String),
    #[error("the provider's response of {declared} bytes exceeds the limit of {limit} bytes")]
    TooLarge { declared: u64, limit: u64 },
    /// The caller's request body failed while it was streamed (the caller
    /// went away, or the gateway's body wrapper refused it). The caller's
    /// fault, not the provider's.
    #[error("the request body could not be read: {0}")]
    RequestBody(String),
    /// The request body went over an `http_body_util::Limited` limit the
    /// gateway put on it (413).
    #[error("the request body exceeds the allowed size")]
    RequestTooLarge,
    /// The path, query or a `Bru-*` value cannot be put in an HTTP request
    /// (the gateway's input, so usually a 400).
    #[error("the request cannot be forwarded: {0}")]
    InvalidRequest(&'static str),
    /// The provider's circuit breaker is open: recent calls failed, so Bru
    /// does not call it until the interval has passed.
    #[error("the provider is failing: after repeated failures Bru stops calling it for another {} ms", .retry_in.as_millis())]
    CircuitOpen { retry_in: Duration },
    /// `max_concurrency` calls were in flight for the whole request timeout.
    #[error("the provider already has {limit} calls in flight (its max_concurrency); no place freed up in time")]
    Busy { limit: usize },
    /// No access token for the provider (OAuth2 credentials).
    #[error("could not obtain an access token for the provider: {0}")]
    Credentials(#[source] GrantError),
}

impl UpstreamError {
    /// 504 (`upstream_timeout`) rather than 502 (`upstream_error`).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            UpstreamError::ConnectTimeout(_) | UpstreamError::Timeout(_)
        )
    }

    /// The caller (or the gateway on its behalf) caused the failure, not the
    /// provider: `RequestBody`, `RequestTooLarge`, `InvalidRequest`.
    pub fn is_caller_fault(&self) -> bool {
        matches!(
            self,
            UpstreamError::RequestBody(_)
                | UpstreamError::RequestTooLarge
                | UpstreamError::InvalidRequest(_)
        )
    }

    /// The provider failed (counts towards its circuit breaker).
    fn is_provider_failure(&self) -> bool {
        matches!(
            self,
            UpstreamError::ConnectTimeout(_)
                | UpstreamError::Timeout(_)
                | UpstreamError::Connect(_)
                | UpstreamError::Tls(_)
                | UpstreamError::Protocol(_)
        )
    }

    /// Nothing of a response arrived and trying again may help.
    fn is_retryable(&self) -> bool {
        matches!(
            self,
            UpstreamError::ConnectTimeout(_)
                | UpstreamError::Timeout(_)
                | UpstreamError::Connect(_)
        )
    }

    /// A short name for logs and metric labels.
    pub fn label(&self) -> &'static str {
        match self {
            UpstreamError::ConnectTimeout(_) => "connect_timeout",
            UpstreamError::Timeout(_) => "timeout",
            UpstreamError::Connect(_) => "connect_error",
            UpstreamError::Tls(_) => "tls_error",
            UpstreamError::Protocol(_) => "protocol_error",
            UpstreamError::TooLarge { .. } => "too_large",
            UpstreamError::RequestBody(_) => "request_body",
            UpstreamError::RequestTooLarge => "request_too_large",
            UpstreamError::InvalidRequest(_) => "invalid_request",
            UpstreamError::CircuitOpen { .. } => "circuit_open",
            UpstreamError::Busy { .. } => "busy",
            UpstreamError::Credentials(_) => "credentials",
        }
    }
}

/// What happened to one attempt of a forwarded call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The provider's response head arrived with this status.
    Response(u16),
    /// The attempt failed before a response head; the label of its [`UpstreamError`].
    Failed(&'static str),
}

impl AttemptOutcome {
    /// `ok` (a status below 500), `http_5xx`, or the error's label.
    pub fn label(self) -> &'static str {
        match self {
            AttemptOutcome::Response(s) if s >= 500 => "http_5xx",
            AttemptOutcome::Response(_) => "ok",
            AttemptOutcome::Failed(label) => label,
        }
    }
}

/// Every attempt of a call and the breaker's state after it, for the log,
/// the metrics and the outcome record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardReport {
    /// One per request sent; empty when the call was refused before any
    /// (open breaker, concurrency limit, no access token, invalid request).
    pub attempts: Vec<AttemptOutcome>,
    pub breaker: BreakerState,
}

impl ForwardReport {
    pub fn attempt_count(&self) -> usize {
        self.attempts.len()
    }
}

/// The provider-facing HTTP client. Cheap to clone; build one at start and share it.
///
/// HTTP/1.1 with keep-alive, and HTTP/2 when a provider offers it over TLS
/// (ALPN). The TCP connect timeout is a setting of the underlying connector,
/// so each distinct `connect_timeout` gets its own pooled client, created on
/// first use; upstreams normally share a few values, and connections to one
/// provider share one pool.
#[derive(Clone)]
pub struct Connector {
    inner: Arc<Inner>,
}

struct Inner {
    /// Tells this connector's clients apart in [`THREAD_CLIENTS`].
    id: u64,
    tls: Arc<rustls::ClientConfig>,
    config: ConnectorConfig,
    clients: RwLock<Vec<(ClientKey, Arc<HttpClient>)>>,
}

static CONNECTOR_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    /// With `pool_per_thread`: this thread's clients, by connector and key.
    static THREAD_CLIENTS: std::cell::RefCell<Vec<(u64, ClientKey, Arc<HttpClient>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// One pool per client identity (mutual TLS) and connect timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClientKey {
    identity: Option<u64>,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Builds the TLS configuration (aws-lc-rs, TLS 1.2 and 1.3) and the
    /// connection settings. Does not install a process-wide crypto provider.
    pub fn new(config: ConnectorConfig) -> Result<Connector, ConnectorError> {
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(ConnectorError::Tls)?;
        let builder = match &config.trust {
            TrustAnchors::Native => builder
                .with_native_roots()
                .map_err(|e| ConnectorError::NoTrustAnchors(e.to_string()))?,
            TrustAnchors::Custom(certs) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in certs {
                    roots
                        .add(cert.clone())
                        .map_err(ConnectorError::InvalidTrustAnchor)?;
                }
                if roots.is_empty() {
                    return Err(ConnectorError::NoTrustAnchors(
                        "the custom trust list is empty".into(),
                    ));
                }
                builder.with_root_certificates(roots)
            }
        };
        let mut tls = builder.with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Connector {
            inner: Arc::new(Inner {
                id: CONNECTOR_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                tls: Arc::new(tls),
                config,
                clients: RwLock::new(Vec::new()),
            }),
        })
    }

    /// Forwards one call to `upstream` and returns the provider's response
    /// head with a streaming, size-capped body.
    ///
    /// The request goes to `{base_url}/{dataset}/{rest}?{query}` with the
    /// inbound headers cleaned, the provider's credentials and the `Bru-*`
    /// headers added. The response headers are cleaned (the gateway adds
    /// `Bru-Transfer-Id`). A response whose declared length is over
    /// `max_response_bytes` is refused before any of it is read.
    pub async fn forward(
        &self,
        upstream: &Upstream,
        req: OutboundRequest<'_>,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        self.forward_reported(upstream, req).await.0
    }

    /// [`Connector::forward`], with a report of every attempt.
    ///
    /// In order: the circuit breaker (open → [`UpstreamError::CircuitOpen`]
    /// at once), a place among `max_concurrency` calls in flight (waits up
    /// to `request_timeout`, then [`UpstreamError::Busy`]; the place is held
    /// until the response body ends), the OAuth2 access token, then the
    /// attempts. Each attempt has `request_timeout` for its response head. A
    /// connect error, connect timeout or timeout before the response head is
    /// retried, up to `retries` times with jittered exponential backoff,
    /// only for GET, HEAD, OPTIONS, PUT and DELETE, only when the request
    /// body is empty or buffered, only while the retry budget and the
    /// breaker allow. Nothing is retried once a response head arrived.
    pub async fn forward_reported(
        &self,
        upstream: &Upstream,
        req: OutboundRequest<'_>,
    ) -> (Result<Response<ResponseBody>, UpstreamError>, ForwardReport) {
        let mut attempts = Vec::new();
        let result = self.forward_attempts(upstream, req, &mut attempts).await;
        let report = ForwardReport {
            attempts,
            breaker: upstream.resilience.breaker_state(),
        };
        (result, report)
    }

    async fn forward_attempts(
        &self,
        upstream: &Upstream,
        req: OutboundRequest<'_>,
        attempts: &mut Vec<AttemptOutcome>,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        let OutboundRequest {
            method,
            dataset,
            rest,
            query,
            mut headers,
            body,
            bru,
        } = req;
        let uri = target_uri(&upstream.base_url, dataset, rest, query)?;
        clean_request_headers(&mut headers);
        upstream.credentials.apply(&mut headers);
        bru.apply(&mut headers)?;

        let resilience = &upstream.resilience;
        let mut ticket = resilience
            .admit()
            .map_err(|retry_in| UpstreamError::CircuitOpen { retry_in })?;
        let permit = resilience
            .acquire(upstream.request_timeout)
            .await
            .map_err(|()| UpstreamError::Busy {
                limit: resilience.config().max_concurrency,
            })?;
        let client = self.client(upstream.connect_timeout, upstream.credentials.identity());

        let mut token = None;
        if let Credentials::OAuth2(oauth2) = &upstream.credentials {
            // The token endpoint is not the provider: the shared pool, no client certificate.
            let token_client = self.client(upstream.connect_timeout, None);
            let value = oauth2
                .authorization(&token_client, upstream.request_timeout)
                .await
                .map_err(UpstreamError::Credentials)?;
            headers.insert(header_names::AUTHORIZATION, value.clone());
            token = Some(value);
        }

        resilience.record_call();
        let mut body = BodySource::new(body);
        let may_replay = body.replayable() && is_idempotent(&method);
        // With no retry possible (the default, `retries = 0`) the one attempt
        // takes the head as it is instead of a clone of it: about 0.23 µs a
        // call, a quarter of building the head (connectors/examples/forward_head_bench.rs).
        let may_retry = may_replay && resilience.config().retries > 0;
        let (mut uri, mut headers) = (uri, headers);
        let mut retry = 0;
        loop {
            let mut request = Request::new(body.next());
            *request.method_mut() = method.clone();
            if may_retry {
                *request.uri_mut() = uri.clone();
                *request.headers_mut() = headers.clone();
            } else {
                // The loop runs once: `again` below needs `may_retry`.
                *request.uri_mut() = std::mem::take(&mut uri);
                *request.headers_mut() = std::mem::take(&mut headers);
            }
            let pending = client.request(request);
            let result = match tokio::time::timeout(upstream.request_timeout, pending).await {
                Err(_elapsed) => Err(UpstreamError::Timeout(upstream.request_timeout)),
                Ok(Err(e)) => Err(classify(&e, upstream.connect_timeout)),
                Ok(Ok(response)) => Ok(response),
            };
            let error = match result {
                Ok(response) => {
                    let status = response.status();
                    attempts.push(AttemptOutcome::Response(status.as_u16()));
                    settle(&mut ticket, status);
                    if status == StatusCode::UNAUTHORIZED {
                        if let (Credentials::OAuth2(oauth2), Some(used)) =
                            (&upstream.credentials, &token)
                        {
                            // Revoked or expired early: the next call gets a new one.
                            oauth2.invalidate(used);
                        }
                    }
                    return finish_response(upstream, response, permit);
                }
                Err(e) => e,
            };
            attempts.push(AttemptOutcome::Failed(error.label()));
            if error.is_provider_failure() {
                ticket.failure();
            }
            let again = may_retry
                && error.is_retryable()
                && retry < resilience.config().retries
                && !ticket.is_trial()
                && resilience.breaker_state() == BreakerState::Closed
                && resilience.try_retry();
            if !again {
                return Err(error);
            }
            retry += 1;
            tokio::time::sleep(resilience.backoff(retry)).await;
        }
    }

    /// The pooled client for this connect timeout and client identity. Shared
    /// by reference count: hyper-util's client is a dozen fields, several of
    /// them reference counts of their own, and `request` clones it again.
    pub(crate) fn client(
        &self,
        connect_timeout: Duration,
        identity: Option<&ClientIdentity>,
    ) -> Arc<HttpClient> {
        let key = ClientKey {
            identity: identity.map(ClientIdentity::id),
            connect_timeout,
        };
        if self.inner.config.pool_per_thread {
            let id = self.inner.id;
            return THREAD_CLIENTS.with(|clients| {
                let mut clients = clients.borrow_mut();
                if let Some((_, _, client)) = clients.iter().find(|(i, k, _)| *i == id && *k == key)
                {
                    return Arc::clone(client);
                }
                let tls = identity.map_or_else(|| Arc::clone(&self.inner.tls), ClientIdentity::tls);
                let client = Arc::new(self.inner.build_client(connect_timeout, tls));
                clients.push((id, key, Arc::clone(&client)));
                client
            });
        }
        {
            let clients = self
                .inner
                .clients
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some((_, client)) = clients.iter().find(|(k, _)| *k == key) {
                return Arc::clone(client);
            }
        }
        let mut clients = self
            .inner
            .clients
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // Another call may have created it while we waited for the lock.
        if let Some((_, client)) = clients.iter().find(|(k, _)| *k == key) {
            return Arc::clone(client);
        }
        let tls = identity.map_or_else(|| Arc::clone(&self.inner.tls), ClientIdentity::tls);
        let client = Arc::new(self.inner.build_client(connect_timeout, tls));
        clients.push((key, Arc::clone(&client)));
        client
    }
}

/// The response head arrived: reports it to the breaker (a 5xx is a failure).
fn settle(ticket: &mut Ticket, status: StatusCode) {
    if status.is_server_error() {
        ticket.failure();
    } else {
        ticket.success();
    }
}

/// Checks the declared length, cleans the head, wraps the body.
fn finish_response(
    upstream: &Upstream,
    response: Response<Incoming>,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<Response<ResponseBody>, UpstreamError> {
    let (mut parts, incoming) = response.into_parts();
    let declared = incoming.size_hint().lower();
    if declared > upstream.max_response_bytes {
        return Err(UpstreamError::TooLarge {
            declared,
            limit: upstream.max_response_bytes,
        });
    }
    clean_response_headers(&mut parts.headers);
    // The gateway relays over its own connection; an HTTP/2 provider's
    // version would only make hyper's HTTP/1 server warn.
    parts.version = Version::HTTP_11;
    Ok(Response::from_parts(
        parts,
        ResponseBody::new(incoming, upstream.max_response_bytes).holding(permit),
    ))
}

/// RFC 9110 §9.2.2, less TRACE, which Bru has no business forwarding twice.
fn is_idempotent(method: &Method) -> bool {
    [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::PUT,
        Method::DELETE,
    ]
    .contains(method)
}

impl Inner {
    fn build_client(
        &self,
        connect_timeout: Duration,
        tls: Arc<rustls::ClientConfig>,
    ) -> HttpClient {
        let mut http = HttpConnector::new();
        // The scheme is checked by the TLS wrapper, which handles https itself.
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        http.set_keepalive(self.config.tcp_keepalive);
        let https = HttpsConnector::from((http, tls));
        Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(self.config.pool_idle_timeout)
            .pool_max_idle_per_host(self.config.pool_max_idle_per_host)
            .build(https)
    }
}

impl BruHeaders<'_> {
    fn apply(&self, headers: &mut HeaderMap) -> Result<(), UpstreamError> {
        let value = |s: &str, what: &'static str| {
            HeaderValue::from_str(s).map_err(|_| UpstreamError::InvalidRequest(what))
        };
        headers.insert(
            headers::BRU_TRANSFER_ID,
            value(self.transfer_id, "invalid Bru-Transfer-Id")?,
        );
        headers.insert(
            headers::BRU_CONSUMER,
            value(self.consumer, "invalid Bru-Consumer")?,
        );
        if let Some(purpose) = self.purpose {
            headers.insert(headers::BRU_PURPOSE, value(purpose, "invalid Bru-Purpose")?);
        }
        headers.insert(
            headers::BRU_LEGAL_BASIS,
            HeaderValue::from_maybe_shared(Bytes::from_static(self.legal_basis.as_bytes()))
                .map_err(|_| UpstreamError::InvalidRequest("invalid Bru-Legal-Basis"))?,
        );
        let mut assertion = value(self.assertion, "invalid Bru-Assertion")?;
        // A bearer-like token: keep it out of HPACK tables and debug output.
        assertion.set_sensitive(true);
        headers.insert(headers::BRU_ASSERTION, assertion);
        Ok(())
    }
}

/// `{base_url}/{dataset}/{rest}?{query}`.
///
/// Refuses dot segments (also percent-encoded) and encoded slashes or
/// backslashes in the path, so a call can never leave the dataset's subtree
/// on the provider, whatever the provider decodes.
pub(crate) fn target_uri(
    base: &Uri,
    dataset: &str,
    rest: &str,
    query: Option<&str>,
) -> Result<Uri, UpstreamError> {
    let (Some(scheme), Some(authority)) = (base.scheme(), base.authority()) else {
        return Err(UpstreamError::InvalidRequest(
            "the upstream URL has no scheme or host",
        ));
    };
    if dataset.is_empty() || dataset.contains('/') || !safe_path(dataset) {
        return Err(UpstreamError::InvalidRequest("invalid dataset"));
    }
    let rest = rest.trim_start_matches('/');
    if !safe_path(rest) {
        return Err(UpstreamError::InvalidRequest("invalid path"));
    }
    let query = query.filter(|q| !q.is_empty());
    if query.is_some_and(|q| q.contains('#')) {
        return Err(UpstreamError::InvalidRequest("invalid query"));
    }
    let base_path = base.path().trim_end_matches('/');

    let len = base_path.len() + 1 + dataset.len() + 1 + rest.len() + 1 + query.map_or(0, str::len);
    let mut pq = String::with_capacity(len);
    pq.push_str(base_path);
    pq.push('/');
    pq.push_str(dataset);
    if !rest.is_empty() {
        pq.push('/');
        pq.push_str(rest);
    }
    if let Some(q) = query {
        pq.push('?');
        pq.push_str(q);
    }
    let pq = PathAndQuery::try_from(pq)
        .map_err(|_| UpstreamError::InvalidRequest("invalid path or query"))?;
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(scheme.clone());
    parts.authority = Some(authority.clone());
    parts.path_and_query = Some(pq);
    Uri::from_parts(parts).map_err(|_| UpstreamError::InvalidRequest("invalid target URL"))
}

/// No `?`, `#`, backslash, encoded `/` or `\`, and no `.`/`..` segment.
fn safe_path(path: &str) -> bool {
    if path.contains(['?', '#', '\\']) {
        return false;
    }
    let lower_has = |needle: &str| {
        path.as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    if lower_has("%2f") || lower_has("%5c") {
        return false;
    }
    !path.split('/').any(is_dot_segment)
}

/// `.` or `..`, each dot possibly written `%2e`.
fn is_dot_segment(segment: &str) -> bool {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2e") {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

/// Sorts a client error into timeout, connect, caller or protocol failure.
fn classify(err: &hyper_util::client::legacy::Error, connect_timeout: Duration) -> UpstreamError {
    let mut timed_out = false;
    let mut caller_body = false;
    let mut tls = false;
    let mut source = err.source();
    while let Some(e) = source {
        if e.downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            return UpstreamError::RequestTooLarge;
        }
        tls |= is_tls_error(e);
        if let Some(io) = e.downcast_ref::<io::Error>() {
            timed_out |= io.kind() == io::ErrorKind::TimedOut;
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            // hyper's "user" errors are about what we handed it; with a
            // cause, that is the request body stream failing.
            caller_body |= h.is_user() && h.source().is_some();
        }
        source = e.source();
    }
    let detail = describe(err);
    if tls {
        UpstreamError::Tls(detail)
    } else if err.is_connect() {
        if timed_out {
            UpstreamError::ConnectTimeout(connect_timeout)
        } else {
            UpstreamError::Connect(detail)
        }
    } else if caller_body {
        UpstreamError::RequestBody(detail)
    } else {
        UpstreamError::Protocol(detail)
    }
}

/// A rustls error, possibly inside `io::Error`s (tokio-rustls and
/// hyper-rustls each wrap it once); `io::Error::source` skips the error it
/// wraps, so the chain alone does not show it.
fn is_tls_error(e: &(dyn StdError + 'static)) -> bool {
    if e.is::<rustls::Error>() {
        return true;
    }
    let Some(io) = e.downcast_ref::<io::Error>() else {
        return false;
    };
    match io.get_ref() {
        Some(inner) if is_tls_error(inner) => true,
        // Over HTTP/2 the rustls error comes back as text (h2 keeps only
        // its message): e.g. a TLS 1.3 alert refusing Bru's client
        // certificate, which arrives after the handshake.
        Some(inner) => {
            io.kind() == io::ErrorKind::InvalidData
                && inner.to_string().starts_with("received fatal alert: ")
        }
        None => false,
    }
}

/// The error's causes joined with `: `; hyper's and rustls' messages name
/// kinds of failure, never header values or bodies.
pub(crate) fn describe(err: &hyper_util::client::legacy::Error) -> String {
    let mut out = String::new();
    let mut source = err.source();
    while let Some(e) = source {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&e.to_string());
        source = e.source();
    }
    if out.is_empty() {
        out = err.to_string();
    }
    out
}

#[cfg(test)]
mod tests;
