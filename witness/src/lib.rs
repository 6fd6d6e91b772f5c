//! Witnesses for Bru's transparency log (SPEC section 11).
//!
//! - [`cosignature`]: C2SP tlog-cosignature v1 (Ed25519) lines, signed and verified.
//! - [`protocol`]: the C2SP tlog-witness `add-checkpoint` request body.
//! - [`server`]: the witness `bru witness` runs: it keeps the newest checkpoint
//!   it cosigned per log, verifies consistency before it cosigns, and never
//!   cosigns a fork.
//! - [`client`]: what a log calls to obtain a cosignature.
//!
//! The note and Merkle code is consent-db's (`note.rs`, `merkle.rs`), so Bru
//! and its witnesses agree on one implementation that uses aws-lc-rs only.

pub mod client;
pub mod cosignature;
pub mod protocol;
pub mod server;

pub use client::{WitnessClient, WitnessError};
pub use cosignature::{CosignatureError, Cosigner};
pub use protocol::AddCheckpoint;
pub use server::{serve, Witness, WitnessArgs};
