//! Benchmark builds only (feature `bench`): the first rungs of the ablation
//! ladder in bench/README.md, each a prefix of the real pipeline, so that
//! what a step costs can be measured by switching it on.
//!
//! ```text
//! passthrough  route → forward                       (a plain reverse proxy)
//! token        + authenticate (verified-token cache)
//! policy       + facts, policy::decide, signed Bru-Assertion
//! ```
//! The later rungs (records without fsync, durable records, the Merkle tree)
//! are the full pipeline with `[store] audit` set to `nosync`, `no-tree` or
//! `durable`. None of these records anything: never a production mode, and a
//! default build refuses `[bench]` altogether.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, Response};
use policy::{ConsentFact, Decision, Facts, SubjectFact, SubjectLocation};

use crate::app::App;
use crate::keys::{AssertionClaims, ASSERTION_TTL_S};
use crate::problem::Failure;
use crate::server::Incoming;

/// How much of the pipeline runs (`[bench] stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Passthrough,
    Token,
    Policy,
    /// The whole pipeline.
    Full,
}

impl Stage {
    pub fn parse(s: &str) -> Option<Stage> {
        Some(match s {
            "passthrough" => Stage::Passthrough,
            "token" => Stage::Token,
            "policy" => Stage::Policy,
            "full" => Stage::Full,
            _ => return None,
        })
    }
}

pub async fn handle(app: Arc<App>, req: Request<Incoming>, stage: Stage) -> Response<Body> {
    match run(&app, req, stage).await {
        Ok(response) => response,
        Err(failure) => failure.response(None),
    }
}

async fn run(app: &App, req: Request<Incoming>, stage: Stage) -> Result<Response<Body>, Failure> {
    // The benchmark's calls are GETs: no request body is passed on.
    let (parts, _body) = req.into_parts();
    let route = crate::pipeline::parse_path(parts.uri.path())?;
    let transfer_id = uuid::Uuid::now_v7().to_string();
    let mut consumer = String::new();
    let mut assertion = String::new();
    let mut purpose = None;
    let dataset = app
        .policy
        .dataset(&route.provider, &route.dataset)
        .ok_or(Failure::UnknownDataset)?;
    if stage >= Stage::Token {
        let authorization = parts.headers.get(http::header::AUTHORIZATION);
        let token = match app.auth.cached_machine(authorization) {
            Some(token) => token,
            None => app.auth.machine(authorization).await?,
        };
        consumer = token.caller.consumer.iso6523();
        if stage >= Stage::Policy {
            purpose = parts
                .headers
                .get("bru-purpose")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let subject = match &dataset.subject {
                Some(SubjectLocation::Header(name)) => {
                    match parts
                        .headers
                        .get(name.as_str())
                        .and_then(|v| v.to_str().ok())
                    {
                        Some(raw) => match policy::PersonNumber::parse(
                            raw.trim(),
                            app.config.allow_synthetic_ids,
                        ) {
                            Ok(p) => SubjectFact::Valid(p),
                            Err(_) => SubjectFact::Invalid,
                        },
                        None => SubjectFact::Missing,
                    }
                }
                None => SubjectFact::NotApplicable,
                // The bench datasets name their subject in a header.
                Some(_) => SubjectFact::Missing,
            };
            let facts = Facts {
                purpose: purpose.as_deref(),
                subject,
                consent: ConsentFact::NotGiven,
                now: time::OffsetDateTime::now_utc(),
            };
            let (basis, legal_ref, subject) =
                match policy::decide(&app.policy, &token.caller, dataset, &facts) {
                    Decision::Deny(code) => return Err(Failure::Denied(code)),
                    Decision::Allow {
                        basis,
                        legal_ref,
                        subject,
                        ..
                    } => (basis, legal_ref, subject),
                };
            let now = facts.now.unix_timestamp();
            let dataset_name = dataset.id.to_string();
            let claims = AssertionClaims {
                iss: app.keys.assertion.issuer(),
                aud: "",
                iat: now,
                exp: now + ASSERTION_TTL_S,
                jti: &transfer_id,
                transfer_id: &transfer_id,
                consumer: &consumer,
                supplier: None,
                dataset: &dataset_name,
                purpose: purpose.as_deref(),
                basis: basis.as_str(),
                legal_ref,
                consent_id: None,
                subject: subject.as_ref().map(|s| s.expose()),
            };
            assertion = app
                .keys
                .assertion
                .sign(&claims)
                .map_err(Failure::UpstreamError)?;
        }
    }
    let upstream = app
        .upstreams
        .get(&route.provider)
        .ok_or_else(|| Failure::UpstreamError("no upstream".into()))?;
    let request = connectors::OutboundRequest {
        method: parts.method,
        dataset: &route.dataset,
        rest: &route.rest,
        query: parts.uri.query(),
        headers: parts.headers,
        body: connectors::OutboundBody::Empty,
        bru: connectors::BruHeaders {
            transfer_id: &transfer_id,
            consumer: &consumer,
            purpose: purpose.as_deref(),
            legal_basis: dataset.basis.as_str(),
            assertion: &assertion,
        },
    };
    let response = app
        .connector
        .forward(upstream, request)
        .await
        .map_err(|e| Failure::UpstreamError(e.to_string()))?;
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(parts, Body::new(body)))
}
