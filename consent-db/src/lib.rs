//! Bru's store: audit records (with group commit), consents (one lifecycle,
//! see `consent.rs`), and later the transparency log, behind sqlx on SQLite
//! or PostgreSQL.
//!
//! Architecture invariant: this is the only crate that touches sqlx; its
//! public API speaks in Bru's types and [`StoreError`] / [`AuditError`], never
//! in sqlx's.
//!
//! - [`Store`] opens a database by URL, applies migrations and answers queries.
//! - [`AuditLog`] appends records durably: one writer task commits whatever is
//!   queued in one transaction (group commit) and answers every waiter after
//!   the commit.

#![forbid(unsafe_code)]

mod audit;
mod consent;
mod error;
mod record;
mod sqlite;
mod store;

pub use audit::{AuditConfig, AuditLog, AuditReceipt, AuditStats};
pub use consent::{
    next_state, CitizenAction, ConsentError, ConsentEvent, ConsentRow, ConsentState, EventType,
    NewConsent, UseOutcome,
};
pub use error::{AuditError, StoreError};
pub use record::{
    AuditRecord, Basis, NewRecord, RecordFilter, RecordKind, Timestamp, TimestampError,
    UnknownName, Verdict,
};
pub use store::{Store, StoreConfig};
