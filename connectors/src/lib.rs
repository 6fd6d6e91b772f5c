//! Bru's side of the providers: the outbound HTTP client, provider
//! credentials (static headers, mutual TLS, OAuth2 JWT-bearer grants),
//! resilience (concurrency limit, retries, circuit breaker), header hygiene,
//! response minimisation and FHIR paging links.
//!
//! The gateway decides; this crate carries out an allowed call:
//! [`Connector::forward`] cleans the caller's headers, adds the provider's
//! [`Credentials`] and the `Bru-*` headers, streams the request body, and
//! returns the response head with a streaming, size-capped [`ResponseBody`]
//! that reports its [`BodyOutcome`] for the outcome record. Where the policy
//! masks the response, the gateway buffers it with [`collect_limited`] and
//! passes it through [`minimise`].
//!
//! Architecture invariant: nothing here decides whether a call may happen,
//! installs a process-wide crypto provider, or logs header values or bodies.

#![forbid(unsafe_code)]

pub mod assertion;
mod body;
mod client;
mod credentials;
mod fhir;
mod headers;
mod minimise;
mod mtls;
mod oauth2;
mod registry;
mod resilience;
mod rows;

pub use body::{collect_limited, BodyEnd, BodyError, BodyOutcome, CollectError, ResponseBody};
pub use client::{
    AttemptOutcome, BoxError, BruHeaders, Connector, ConnectorConfig, ConnectorError,
    ForwardReport, InvalidUpstream, OutboundBody, OutboundRequest, RequestBody, TrustAnchors,
    Upstream, UpstreamError,
};
pub use credentials::{BearerToken, CredentialError, Credentials};
pub use fhir::{is_fhir_json, FhirLinkRewriter, Mapped, PageLinks, PAGE_PARAM};
pub use headers::{
    clean_request_headers, clean_response_headers, connection_names, is_valid_traceparent,
    normalise_header_name, remove_variants_of, BRU_ASSERTION, BRU_CONSENT, BRU_CONSUMER,
    BRU_LEGAL_BASIS, BRU_PURPOSE, BRU_TRANSFER_ID, TRACEPARENT, TRACESTATE,
};
pub use minimise::{minimise, MinimiseError};
pub use mtls::ClientIdentity;
pub use oauth2::{GrantAlgorithm, GrantError, OAuth2Credentials, OAuth2Settings, GRANT_LIFETIME_S};
pub use registry::{RegistryError, RegistryPerson, MAX_LOOKUP};
pub use resilience::{BreakerState, Resilience, ResilienceConfig};
pub use rows::{filter_rows, RowFilterError};
