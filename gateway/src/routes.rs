//! The routes beside the data plane: the public ones (JWKS, the OpenAPI
//! document, the consent requester API, the citizen API, the audit API, the
//! catalog, and in demo mode the demo issuers) and the ops listener's.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;

/// The public listener's routes other than `/data/`; `portal` is the
/// citizen portal's pages (when `[portal]` is configured).
pub fn public(app: Arc<App>, demo: Option<Router>, portal: Option<Router>) -> Router {
    let (documented, _) = crate::openapi::api();
    // The log's public read path (C2SP tlog-tiles, `tiles.rs`): no auth.
    let router = documented.merge(crate::tiles::routes()).with_state(app);
    let router = match demo {
        Some(demo) => router.merge(demo),
        None => router,
    };
    let router = match portal {
        Some(portal) => router.merge(portal),
        None => router,
    };
    router
        .route("/problems/{code}", get(crate::problem_pages::problem_page))
        .fallback(crate::api_error::not_found)
        // A path asked with a method it does not take: 405 with the problem
        // body and the router's `Allow`.
        .layer(axum::middleware::map_response(
            crate::api_error::method_not_allowed,
        ))
}

/// The public routes beside the APIs, in the OpenAPI document too.
pub fn documented() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(openapi_json))
}

/// A JSON Web Key Set (RFC 7517).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // a schema only
struct Jwks {
    #[schema(value_type = Vec<Object>)]
    keys: Vec<serde_json::Value>,
}

/// Bru's public keys: the assertion key (ES256; `Bru-Assertion`, consent
/// receipts), the Ed25519 assertion key when configured (`alg` EdDSA, for
/// providers with `assertion = "eddsa"`) and the checkpoint key (Ed25519,
/// `kty` OKP). Never an HS256 secret: that is shared with one provider only.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "meta",
    operation_id = "getJwks",
    responses(
        (status = 200, description = "Bru's public keys", body = Jwks, content_type = "application/jwk-set+json"),
    )
)]
async fn jwks(State(app): State<Arc<App>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        format!("{}\n", app.keys.jwks()),
    )
        .into_response()
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    operation_id = "getOpenApi",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of these APIs", body = Object, content_type = "application/json"),
    )
)]
async fn openapi_json() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        format!("{}\n", crate::openapi::json()),
    )
        .into_response()
}

/// `/metrics`, `/healthz`, `/readyz` on the internal ops listener.
pub fn ops(app: Arc<App>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(app)
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics
            .encode_with(crate::metrics::Snapshot::read(&app).await),
    )
        .into_response()
}

/// Ready only when the store and the log accept writes: an active write
/// probe (at most once a second), and no audit append failed since.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.readiness.store_writable(&app).await && app.audit_healthy() {
        let mut body = String::from("ready\n");
        if let Some(detail) = app.altinn.readiness_detail() {
            body.push_str(&detail);
            if !detail.ends_with('\n') {
                body.push('\n');
            }
        }
        body.push_str(&app.witnesses.detail());
        // A failing notification service does not make Bru unready: the outbox keeps it all.
        body.push_str(&app.notify.detail().unwrap_or_default());
        (StatusCode::OK, body).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the audit log does not accept writes\n",
        )
            .into_response()
    }
}
