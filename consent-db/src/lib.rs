//! Bru's store: audit records (with group commit), consents (one lifecycle,
//! see `consent.rs`), and the transparency log, behind sqlx on SQLite
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
//! - The transparency log (RFC 9162, [`merkle`]) grows in the same
//!   transaction as the records; [`note`] signs and opens its checkpoints;
//!   [`verify()`] recomputes it from the records.

#![forbid(unsafe_code)]

mod audit;
pub mod canonical;
mod config;
mod consent;
mod error;
pub mod merkle;
pub mod note;
mod postgres;
mod pseudonym;
mod record;
mod sqlite;
mod store;
mod tlog;
mod verify;

#[cfg(test)]
mod test_support;

pub use audit::{
    AuditConfig, AuditLog, AuditReceipt, AuditStats, BatchSizes, Conditions, LaterError,
    BATCH_SIZE_BOUNDS,
};
pub use config::{ClientCertificate, PgTls, StoreConfig};
#[cfg(feature = "openapi")]
pub use consent::ConsentState;
pub use consent::{
    next_state, CitizenAction, ConsentError, ConsentEvent, ConsentEventCounts, ConsentRow,
    EventType, Frequency, FrequencyPeriod, NewConsent, UseOutcome, UsesInPeriod,
};
pub use error::{AuditError, StoreError};
/// The one consent status, policy's (re-exported: the store hands it out).
pub use policy::ConsentStatus;
pub use pseudonym::Pseudonymiser;
pub use record::scrub::{scrub_path, scrub_text, MAX_REASON_BYTES};
pub use record::{
    AuditRecord, Basis, NewRecord, RecordFilter, RecordKind, Timestamp, TimestampError,
    UnknownName, Verdict,
};
pub use store::{
    disclosure_now, test_skew_days, ActionActor, AltinnConsentEnded, AltinnConsentState, Block,
    EventActor, FindingFilter, InboxCursor, Notification, NotificationKind, NotificationSettings,
    OutboxCounts, PortalSession, SnoopStep, Store, StoredFinding, TransferNotices, INDEX_FOLLOWER,
    INDEX_STEP, SNOOP_FOLLOWER, TEST_SKEW_VAR,
};
pub use tlog::{ProofQueryError, StoredCheckpoint, TreeHead};
pub use verify::{verify, Tampering, VerifyError, VerifySummary};
