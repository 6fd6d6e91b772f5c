//! Consents: one state machine, and the store's only way to change a consent.
//!
//! ```text
//! create ──▶ pending ──accept──▶ granted ──revoke──▶ revoked
//!               │                 │ ▲ └──use (uses + 1, up to max_uses)
//!               │           pause │ │ resume
//!               │                 ▼ │
//!               │                paused ──revoke──▶ revoked
//!               ├──reject──▶ rejected
//!               └──(valid_to passes)──▶ expired ◀──(valid_to passes)── granted, paused
//! ```
//!
//! Every transition writes its event (`created`, `accepted`, `rejected`,
//! `revoked`, `expired`, `used`, `paused`, `resumed`) in the same transaction as the change, with
//! what it depends on locked first (SQLite's write lock, PostgreSQL's row
//! lock; see `store/consents.rs`), so concurrent uses count exactly. Expiry is lazy: the first read or use after `valid_to` turns the
//! consent into `expired` and writes the event (dated `valid_to`, when it
//! happened). Migrations 0003 and 0009 make the database refuse any other
//! change.
//!
//! The subject's person number is kept in the row (the citizen must be
//! shown their consents), and nowhere else: `Debug` redacts it.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use policy::{ConsentStatus, DatasetRef, PersonNumber};
use serde::Serialize;
use thiserror::Error;

use crate::error::StoreError;
use crate::record::{Timestamp, UnknownName};

/// A consent as stored, in Bru's types. The database keeps the times as
/// RFC 3339 text and the datasets as a JSON array of `"provider/dataset"`;
/// the store parses both on the way out (a row that does not parse is
/// [`StoreError::Corrupt`]).
#[derive(Clone, PartialEq, Eq)]
pub struct ConsentRow {
    pub id: String,
    /// `0192:{orgnr}` of the organisation that asked.
    pub requester: String,
    /// `0192:{orgnr}` of the vendor that made the request for it, if any.
    pub supplier: Option<String>,
    /// The person number in clear; `None` until a citizen takes a request
    /// that was made without one. Redacted in `Debug`.
    pub subject: Option<String>,
    pub datasets: Vec<DatasetRef>,
    pub purpose: String,
    pub status: ConsentStatus,
    pub valid_to: Timestamp,
    /// `None`: no limit.
    pub max_uses: Option<u32>,
    pub uses: u32,
    /// At most so many uses per period (SPEC 10); `None`: no limit.
    pub frequency: Option<Frequency>,
    pub redirect_url: Option<String>,
    pub message: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ConsentRow {
    /// Whether `person` is this consent's subject.
    pub fn is_subject(&self, person: &PersonNumber) -> bool {
        self.subject.as_deref() == Some(person.expose())
    }

    /// Whether it is pending or granted and `valid_to` has passed: the next
    /// read or use records its expiry.
    pub(crate) fn is_due(&self, now: Timestamp) -> bool {
        matches!(
            self.status,
            ConsentStatus::Pending | ConsentStatus::Granted | ConsentStatus::Paused
        ) && self.valid_to <= now
    }
}

// A person number must not reach a log line by accident.
impl fmt::Debug for ConsentRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsentRow")
            .field("id", &self.id)
            .field("requester", &self.requester)
            .field("supplier", &self.supplier)
            .field("subject", &self.subject.as_ref().map(|_| "***********"))
            .field("datasets", &self.datasets)
            .field("purpose", &self.purpose)
            .field("status", &self.status)
            .field("valid_to", &self.valid_to)
            .field("max_uses", &self.max_uses)
            .field("uses", &self.uses)
            .field("frequency", &self.frequency)
            .field("redirect_url", &self.redirect_url)
            .field("message", &self.message)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// The schema of [`ConsentStatus`] in the OpenAPI document, under the name
/// the document has always used (the enum is policy's, which knows nothing
/// of OpenAPI): one of its names.
#[cfg(feature = "openapi")]
pub struct ConsentState;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ConsentState {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(ConsentStatus::ALL.iter().map(ConsentStatus::as_str)))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ConsentState {}

/// Defines a fieldless enum with one wire name per variant (serde, the
/// database column and `FromStr` alike).
macro_rules! names {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $var:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $wire)] $var),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$var => $wire),+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($wire => Ok($name::$var),)+
                    _ => Err(UnknownName { what: $what, value: s.chars().take(40).collect() }),
                }
            }
        }

        /// In the OpenAPI document: one of the wire names.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($wire),+]))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names! {
    /// What happened to a consent; the names follow Altinn's consent events.
    EventType, "consent event type" {
        Created = "created",
        Accepted = "accepted",
        Rejected = "rejected",
        Revoked = "revoked",
        Expired = "expired",
        Used = "used",
        Paused = "paused",
        Resumed = "resumed",
    }
}

/// How many [`EventType`]s there are.
const EVENT_TYPES: usize = EventType::ALL.len();

/// Consent events committed through one [`crate::Store`] (and its clones)
/// since it was opened, by type: a snapshot of [`EventCounters`], for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsentEventCounts {
    counts: [u64; EVENT_TYPES],
}

impl ConsentEventCounts {
    pub fn get(&self, kind: EventType) -> u64 {
        self.counts.get(kind as usize).copied().unwrap_or(0)
    }

    /// Every event type with its count (zeros included), in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (EventType, u64)> + '_ {
        EventType::ALL.iter().map(|&kind| (kind, self.get(kind)))
    }
}

/// The events one transaction wrote, counted once it commits (a rolled back
/// attempt's tally is dropped, so a retry never counts twice).
#[derive(Debug, Default)]
pub(crate) struct EventTally {
    counts: [u64; EVENT_TYPES],
}

impl EventTally {
    pub(crate) fn push(&mut self, kind: EventType) {
        if let Some(n) = self.counts.get_mut(kind as usize) {
            *n += 1;
        }
    }
}

/// The store's running counts of committed consent events: atomics, shared
/// by every clone of the store.
#[derive(Debug, Default)]
pub(crate) struct EventCounters {
    counts: [AtomicU64; EVENT_TYPES],
}

impl EventCounters {
    /// Adds what a transaction wrote; call after its commit succeeded.
    pub(crate) fn committed(&self, tally: &EventTally) {
        for (counter, &n) in self.counts.iter().zip(&tally.counts) {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn snapshot(&self) -> ConsentEventCounts {
        let mut out = ConsentEventCounts::default();
        for (to, from) in out.counts.iter_mut().zip(&self.counts) {
            *to = from.load(Ordering::Relaxed);
        }
        out
    }
}

/// One entry of a consent's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentEvent {
    #[serde(rename = "type")]
    pub kind: EventType,
    pub at: Timestamp,
}

/// What the citizen does to a consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CitizenAction {
    Accept,
    Reject,
    Revoke,
    /// Stop uses for a while (SPEC 10); the consent stays the citizen's to resume.
    Pause,
    Resume,
}

impl CitizenAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            CitizenAction::Accept => "accept",
            CitizenAction::Reject => "reject",
            CitizenAction::Revoke => "revoke",
            CitizenAction::Pause => "pause",
            CitizenAction::Resume => "resume",
        }
    }

    /// `accepted`, `rejected`, `revoked`, …: for messages.
    pub fn past_tense(&self) -> &'static str {
        match self {
            CitizenAction::Accept => "accepted",
            CitizenAction::Reject => "rejected",
            CitizenAction::Revoke => "revoked",
            CitizenAction::Pause => "paused",
            CitizenAction::Resume => "resumed",
        }
    }

    /// Whether this action can be taken from `state`: a paused consent can
    /// be revoked as well as resumed (revoking never waits for a resume).
    pub fn starts_from(&self, state: ConsentStatus) -> bool {
        match self {
            CitizenAction::Accept | CitizenAction::Reject => state == ConsentStatus::Pending,
            CitizenAction::Revoke => {
                matches!(state, ConsentStatus::Granted | ConsentStatus::Paused)
            }
            CitizenAction::Pause => state == ConsentStatus::Granted,
            CitizenAction::Resume => state == ConsentStatus::Paused,
        }
    }

    /// The state the action leads to, and the event it writes.
    pub fn outcome(&self) -> (ConsentStatus, EventType) {
        match self {
            CitizenAction::Accept => (ConsentStatus::Granted, EventType::Accepted),
            CitizenAction::Reject => (ConsentStatus::Rejected, EventType::Rejected),
            CitizenAction::Revoke => (ConsentStatus::Revoked, EventType::Revoked),
            CitizenAction::Pause => (ConsentStatus::Paused, EventType::Paused),
            CitizenAction::Resume => (ConsentStatus::Granted, EventType::Resumed),
        }
    }
}

/// The state machine, as one function: where `action` leads from `state`,
/// or `None` when it may not be taken from there. Expiry and use are not
/// citizen actions and have their own rules (see [`crate::Store::use_consent`]).
pub fn next_state(state: ConsentStatus, action: CitizenAction) -> Option<ConsentStatus> {
    action.starts_from(state).then(|| action.outcome().0)
}

/// A request as the requester API hands it in.
#[derive(Clone, PartialEq, Eq)]
pub struct NewConsent {
    /// A fresh, unguessable id (a UUID); also the `Bru-Consent` value.
    pub id: String,
    /// `0192:{orgnr}`.
    pub requester: String,
    /// `0192:{orgnr}` of a vendor acting for the requester.
    pub supplier: Option<String>,
    /// `None`: the citizen who answers the request becomes its subject.
    pub subject: Option<PersonNumber>,
    pub datasets: Vec<DatasetRef>,
    pub purpose: String,
    pub valid_to: Timestamp,
    /// `None`: no limit. At least 1.
    pub max_uses: Option<u32>,
    /// `None`: no limit. `max` at least 1.
    pub frequency: Option<Frequency>,
    pub redirect_url: Option<String>,
    pub message: Option<String>,
}

impl fmt::Debug for NewConsent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewConsent")
            .field("id", &self.id)
            .field("requester", &self.requester)
            .field("supplier", &self.supplier)
            .field("subject", &self.subject)
            .field("datasets", &self.datasets)
            .field("purpose", &self.purpose)
            .field("valid_to", &self.valid_to)
            .field("max_uses", &self.max_uses)
            .field("frequency", &self.frequency)
            .field("redirect_url", &self.redirect_url)
            .field("message", &self.message)
            .finish()
    }
}

names! {
    /// The period of a frequency limit. Periods are rolling, ending at the
    /// call: a day is 24 hours, a week 7 days, a month 30 days, so a use
    /// frees exactly one period after it was made.
    FrequencyPeriod, "frequency period" {
        Day = "day",
        Week = "week",
        Month = "month",
    }
}

impl FrequencyPeriod {
    pub fn duration(&self) -> time::Duration {
        match self {
            FrequencyPeriod::Day => time::Duration::days(1),
            FrequencyPeriod::Week => time::Duration::days(7),
            FrequencyPeriod::Month => time::Duration::days(30),
        }
    }
}

/// A consent's frequency limit (India AA's fetch frequency): at most `max`
/// uses per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Frequency {
    pub max: u32,
    pub per: FrequencyPeriod,
}

/// A frequency-limited consent's uses in the period that ends at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsesInPeriod {
    pub used: u32,
    /// The oldest of those uses.
    pub oldest: Option<Timestamp>,
}

/// Why a citizen's action was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConsentError {
    /// No consent by that id, or one about another person: the citizen may
    /// not learn which.
    #[error("no such consent")]
    NotFound,
    /// The action may not be taken from the consent's current state (which
    /// may just have become `expired`).
    #[error("a {state} consent cannot be {}", action.past_tense())]
    InvalidTransition {
        state: ConsentStatus,
        action: CitizenAction,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The result of [`crate::Store::use_consent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UseOutcome {
    /// One use was counted (with its `used` event); the row after it.
    Used(Box<ConsentRow>),
    /// Nothing was counted: the consent does not exist, or is not granted,
    /// has expired (now recorded as such) or is used up. Read it again to
    /// learn why.
    Refused,
}

#[cfg(test)]
mod tests;
