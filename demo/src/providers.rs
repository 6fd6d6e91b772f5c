//! The three demo providers: NAV's income register, helsenorge's home-care
//! plans (FHIR) and K429's social-service cases, with the synthetic data of
//! [`crate::world`], on plain HTTP on loopback.
//!
//! They check nothing beyond the subject: a real provider would verify the
//! `Bru-Assertion`, but the demo is about what Bru does, and
//! `GET /_last-request` shows what Bru sent so anyone can check it.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{world, DemoError, DemoLayout};

/// One of the demo providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoProvider {
    /// `GET /inntekt`, subject in header `Nav-Personident`.
    Nav,
    /// `GET /hjemmetjeneste?patient=…`, a FHIR R4 searchset Bundle.
    Helsenorge,
    /// `GET /sosialtjeneste`, subject in header `Nav-Personident`.
    K429,
}

impl DemoProvider {
    pub const ALL: [DemoProvider; 3] = [
        DemoProvider::Nav,
        DemoProvider::Helsenorge,
        DemoProvider::K429,
    ];

    /// The provider id in the policy and in `/data/{provider}/…`.
    pub fn id(self) -> &'static str {
        match self {
            DemoProvider::Nav => "nav",
            DemoProvider::Helsenorge => "helsenorge",
            DemoProvider::K429 => "k429",
        }
    }

    /// The dataset's path on the provider, e.g. `/inntekt`.
    pub fn path(self) -> &'static str {
        match self {
            DemoProvider::Nav => "/inntekt",
            DemoProvider::Helsenorge => "/hjemmetjeneste",
            DemoProvider::K429 => "/sosialtjeneste",
        }
    }

    fn addr(self, layout: &DemoLayout) -> SocketAddr {
        match self {
            DemoProvider::Nav => layout.providers.nav,
            DemoProvider::Helsenorge => layout.providers.helsenorge,
            DemoProvider::K429 => layout.providers.k429,
        }
    }
}

/// The last request a provider served, for `GET /_last-request`.
type LastRequest = Arc<Mutex<Option<Value>>>;

#[derive(Clone)]
struct ProviderState {
    provider: DemoProvider,
    last: LastRequest,
}

/// One provider's routes: its dataset and `GET /_last-request`.
pub fn provider_router(provider: DemoProvider) -> Router {
    let state = ProviderState {
        provider,
        last: Arc::new(Mutex::new(None)),
    };
    let data = match provider {
        DemoProvider::Nav => get(nav_inntekt),
        DemoProvider::Helsenorge => get(helsenorge_hjemmetjeneste),
        DemoProvider::K429 => get(k429_sosialtjeneste),
    };
    // K429 also serves the demo's registry of parental responsibility (registry.rs).
    let registry = match provider {
        DemoProvider::K429 => crate::registry::registry_router(),
        _ => Router::new(),
    };
    Router::new()
        .merge(registry)
        .route(provider.path(), data)
        // Demo only: shows what arrived, headers unmasked (Bru-Assertion,
        // Bru-Consumer, … and the subject itself), so that users and tests can
        // see what Bru forwards and what it strips. No real provider has this.
        .route("/_last-request", get(last_request))
        .with_state(state)
}

/// The providers, listening; [`RunningProviders::join`] waits until they stop.
#[derive(Debug)]
pub struct RunningProviders {
    pub addrs: crate::ProviderAddrs,
    task: JoinHandle<Result<(), std::io::Error>>,
}

impl RunningProviders {
    /// Waits for the providers to stop (after the shutdown future completes).
    pub async fn join(self) -> Result<(), DemoError> {
        match self.task.await {
            Ok(result) => result.map_err(DemoError::Serve),
            Err(e) => Err(DemoError::Serve(std::io::Error::other(e))),
        }
    }
}

/// Binds the three providers on the layout's loopback addresses and serves them
/// in the background until `shutdown` completes. Binding errors are returned
/// here, before anything runs; needs a Tokio runtime.
pub async fn serve_providers(
    layout: &DemoLayout,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningProviders, DemoError> {
    let mut listeners = Vec::with_capacity(3);
    for provider in DemoProvider::ALL {
        let addr = provider.addr(layout);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| DemoError::Bind {
                provider: provider.id(),
                addr,
                source,
            })?;
        listeners.push((provider, listener));
    }

    // One shutdown future, three servers: fan it out through a watch channel.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let mut servers = tokio::task::JoinSet::new();
    for (provider, listener) in listeners {
        let mut stop = stop_rx.clone();
        tracing::info!(provider = provider.id(), addr = %provider.addr(layout), "demo provider listening");
        servers.spawn(async move {
            axum::serve(listener, provider_router(provider))
                .with_graceful_shutdown(async move {
                    // An error means the sender is gone: stop as well.
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await
        });
    }
    let task = tokio::spawn(async move {
        while let Some(done) = servers.join_next().await {
            done.map_err(std::io::Error::other)??;
        }
        Ok(())
    });

    Ok(RunningProviders {
        addrs: layout.providers,
        task,
    })
}

// ---- handlers ----------------------------------------------------------------

/// Where a request's subject stands, checked as a provider would.
enum Subject {
    Missing,
    Invalid,
    Valid(String),
}

fn subject(value: Option<&str>) -> Subject {
    match value.map(str::trim) {
        None | Some("") => Subject::Missing,
        // The demo persons are synthetic, so synthetic numbers are allowed.
        Some(v) => match policy::PersonNumber::parse(v, true) {
            Ok(p) => Subject::Valid(p.expose().to_owned()),
            Err(_) => Subject::Invalid,
        },
    }
}

fn header_subject(headers: &HeaderMap) -> Subject {
    match headers.get("nav-personident").map(|v| v.to_str()) {
        None => Subject::Missing,
        Some(Ok(v)) => subject(Some(v)),
        Some(Err(_)) => Subject::Invalid,
    }
}

fn record(state: &ProviderState, method: &Method, uri: &Uri, headers: &HeaderMap) {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        map.entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let seen = json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": map,
    });
    // A poisoned lock only means another handler panicked mid-write; the value
    // is a whole JSON document either way.
    *state.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(seen);
}

async fn last_request(State(state): State<ProviderState>) -> Response {
    let seen = state.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match seen {
        Some(v) => axum::Json(v).into_response(),
        None => json_error(
            StatusCode::NOT_FOUND,
            "no_request_yet",
            "This provider has not served a request yet.",
        ),
    }
}

/// Logs what was served and how it ended, never for whom.
fn log_served(provider: DemoProvider, status: StatusCode) {
    tracing::debug!(
        provider = provider.id(),
        status = status.as_u16(),
        "demo provider served"
    );
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "status": status.as_u16(), "error": code, "message": message })),
    )
        .into_response()
}

async fn nav_inntekt(
    State(state): State<ProviderState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    header_dataset(&state, &method, &uri, &headers, world::nav_inntekt)
}

async fn k429_sosialtjeneste(
    State(state): State<ProviderState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    header_dataset(&state, &method, &uri, &headers, world::k429_sosialtjeneste)
}

/// A JSON dataset whose subject is in the `Nav-Personident` header.
fn header_dataset(
    state: &ProviderState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    lookup: fn(&str) -> Option<Value>,
) -> Response {
    record(state, method, uri, headers);
    let response = match header_subject(headers) {
        Subject::Missing => json_error(
            StatusCode::BAD_REQUEST,
            "subject_missing",
            "Send the person number in the Nav-Personident header.",
        ),
        Subject::Invalid => json_error(
            StatusCode::BAD_REQUEST,
            "invalid_subject",
            "Nav-Personident is not a valid person number.",
        ),
        Subject::Valid(pid) => match lookup(&pid) {
            Some(body) => axum::Json(body).into_response(),
            None => json_error(
                StatusCode::NOT_FOUND,
                "person_not_found",
                "No record of this person.",
            ),
        },
    };
    log_served(state.provider, response.status());
    response
}

async fn helsenorge_hjemmetjeneste(
    State(state): State<ProviderState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&state, &method, &uri, &headers);
    // An unparsable query string is as good as one without a patient.
    let query = Query::<BTreeMap<String, String>>::try_from_uri(&uri).ok();
    let patient = query
        .as_ref()
        .and_then(|q| q.get("patient"))
        .map(String::as_str);
    let response = match subject(patient) {
        Subject::Missing => operation_outcome(
            StatusCode::BAD_REQUEST,
            "required",
            "The search needs a patient parameter.",
        ),
        Subject::Invalid => operation_outcome(
            StatusCode::BAD_REQUEST,
            "value",
            "The patient parameter is not a valid person number.",
        ),
        Subject::Valid(pid) => match world::helsenorge_hjemmetjeneste(&pid) {
            Some(bundle) => fhir(StatusCode::OK, &bundle),
            None => operation_outcome(
                StatusCode::NOT_FOUND,
                "not-found",
                "No home care services are registered for this patient.",
            ),
        },
    };
    log_served(state.provider, response.status());
    response
}

fn fhir(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            "application/fhir+json; fhirVersion=4.0",
        )],
        body.to_string(),
    )
        .into_response()
}

/// A FHIR error, as a FHIR server answers: an `OperationOutcome`.
fn operation_outcome(status: StatusCode, code: &str, diagnostics: &str) -> Response {
    fhir(
        status,
        &json!({
            "resourceType": "OperationOutcome",
            "issue": [{ "severity": "error", "code": code, "diagnostics": diagnostics }],
        }),
    )
}
