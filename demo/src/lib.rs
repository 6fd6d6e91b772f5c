//! The demo world of `bru demo` (SPEC section 8): everything the demo needs
//! that production must never reach.
//!
//! - [`prepare`] creates the demo's state directory: a demo CA and the
//!   gateway's TLS certificate, the demo issuers' signing keys, Bru's own keys,
//!   the demo policy and a generated `bru.toml`.
//! - [`serve_providers`] runs the three synthetic providers (NAV, helsenorge,
//!   K429) on loopback ports.
//! - [`issuers_router`] is the demo Maskinporten and ID-porten, mounted by the
//!   gateway under `/demo/` in demo mode only.
//! - [`walkthrough`] is the start-up banner.
//! - `altinn` is the demo's Altinn (SPEC 9.4): consent requests, the events
//!   feed, the decision point and system users, mounted with the issuers.
//!
//! Architecture invariant: only the gateway's `demo` subcommand uses this
//! crate. `bru serve` never links a path into it, so a production gateway
//! cannot hand out demo tokens or trust demo keys by accident.
//!
//! Nothing here logs a person number: the providers log what they served and
//! with which status, never whom it was about.

pub mod altinn;
mod issuer_key;
mod issuers;
mod pem;
mod prepare;
mod providers;
pub mod registry;
mod walkthrough;
pub mod world;

use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

pub use issuers::{
    bru_audience, client_id_for, issuers_router, key_id, mint_idporten_token,
    mint_maskinporten_token, sign_rs256, DemoIssuers, IssuerKey, IDPORTEN_ACR, TOKEN_LIFETIME_S,
};
pub use prepare::{prepare, DemoLayout, DemoOptions, ProviderAddrs, ProviderPorts};
pub use providers::{provider_router, serve_providers, DemoProvider, RunningProviders};
pub use walkthrough::walkthrough;

/// The demo world's policy, as `prepare` copies it to `DIR/policy.toml`.
pub const DEMO_POLICY: &str = include_str!("../world/policy.toml");

/// Everything that can go wrong in the demo world.
#[derive(Debug, Error)]
pub enum DemoError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate {what}: {why}")]
    Generate { what: &'static str, why: String },
    #[error("{}: not a usable key: {why}", path.display())]
    Key { path: PathBuf, why: String },
    #[error("{0}")]
    Options(String),
    /// An organisation or person number that a demo issuer will not put in a token.
    #[error("{field}: {source}")]
    InvalidId {
        field: &'static str,
        source: policy::IdError,
    },
    #[error("cannot listen for the demo {provider} provider on {addr}: {source}")]
    Bind {
        provider: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("a demo provider stopped: {0}")]
    Serve(std::io::Error),
    /// The demo Altinn's saved state could not be read or written.
    #[error("{}: {why}", path.display())]
    State { path: PathBuf, why: String },
    #[error("cannot sign a demo token: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
}

impl DemoError {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DemoError {
        let path = path.into();
        move |source| DemoError::Io { path, source }
    }
}
