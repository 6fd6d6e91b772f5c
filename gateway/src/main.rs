//! `bru`: the data-sharing gateway and consent broker.
//!
//! This is the binary's edge: arguments, logging, the crypto provider, and
//! turning errors into one line and an exit code. Everything else lives in
//! the modules below and in the library crates.

mod altinn_pep;
mod api_error;
mod app;
mod audit_api;
mod auth;
mod catalog;
mod citizen_api;
mod citizen_export;
mod cli;
mod config;
mod consent_api;
mod indexer;
mod json_api;
mod keys;
mod metrics;
mod notify;
mod notify_delivery;
mod openapi;
mod page_token;
mod pipeline;
mod problem;
mod problem_pages;
mod protect;
mod ratelimit;
mod refusals;
mod representation;
mod routes;
mod run;
mod server;
mod snoop;
mod tiles;
mod transfer_id;
mod transparency;
mod witnessing;

use std::process::ExitCode;

/// glibc's malloc/free was about 15 % of the data plane's CPU under load
/// (bench/README.md, "Profile"); mimalloc's thread-local free lists halve that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // One crypto provider for every TLS connection in the process.
    if rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("bru: a TLS crypto provider was already installed");
        return ExitCode::FAILURE;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Escape codes only for a person at a terminal, not in `kubectl logs`.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    cli::main()
}
