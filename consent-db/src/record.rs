//! The audit record of SPEC section 5: what the gateway hands in
//! ([`NewRecord`]), what the store hands back ([`AuditRecord`]), and how to
//! ask for records ([`RecordFilter`]).
//!
//! Serialization is deterministic: the JSON object has every key of the spec,
//! in the spec's order, with `null` for what does not apply, and no floats.
//! The transparency log hashes exactly these bytes (see
//! [`AuditRecord::leaf_bytes`]), so changing a field here changes the log.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// An instant in UTC with millisecond precision, written as
/// `2026-11-23T12:00:00.123Z` — one spelling per instant, so records hash the
/// same wherever they are serialized, and text order is time order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

/// `2026-12-05T22:00:00.000Z`: a [`Timestamp`]'s text is always this long.
const TEXT_LEN: usize = 24;

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    /// Converts to UTC and drops everything below the millisecond.
    pub fn from_datetime(t: OffsetDateTime) -> Self {
        let t = t.to_offset(UtcOffset::UTC);
        let ms = t.nanosecond() / 1_000_000 * 1_000_000;
        // `ms` is below 10^9, so this cannot fail; keep `t` if it somehow did.
        Timestamp(t.replace_nanosecond(ms).unwrap_or(t))
    }

    /// Parses any RFC 3339 time and normalises it as [`Timestamp::from_datetime`] does.
    ///
    /// Refuses a time whose UTC date falls outside the years 0000-9999
    /// (`9999-12-31T23:30:00-01:00`, `0000-01-01T00:30:00+01:00`): converting
    /// it would panic or give a time that has no RFC 3339 spelling (found by
    /// fuzzing).
    pub fn parse(s: &str) -> Result<Self, TimestampError> {
        OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .and_then(|t| t.checked_to_offset(UtcOffset::UTC))
            .filter(|t| (0..=9999).contains(&t.year()))
            .map(Self::from_datetime)
            .ok_or_else(|| TimestampError(s.chars().take(40).collect()))
    }

    /// The RFC 3339 text of [`Display`](fmt::Display), in a string sized
    /// for it: `to_string` grows its string three times on the way (#21).
    pub fn to_rfc3339(&self) -> String {
        use fmt::Write as _;
        let mut text = String::with_capacity(TEXT_LEN);
        let _ = write!(text, "{self}");
        text
    }

    pub fn as_datetime(&self) -> OffsetDateTime {
        self.0
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> i128 {
        self.0.unix_timestamp_nanos() / 1_000_000
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// In the OpenAPI document: an RFC 3339 string, as serialised.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "An instant in UTC with millisecond precision, e.g. 2026-11-23T12:00:00.123Z",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

/// Not an RFC 3339 time (the message quotes at most 40 characters of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 time: {0:?}")]
pub struct TimestampError(String);

/// An unknown name for one of the record's enums.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what}: {value:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
}

/// Defines a fieldless enum with one wire name per variant, used by serde, the
/// database columns and `FromStr` alike.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $var:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $wire)] $var),+
        }

        impl $name {
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$var => $wire),+ }
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

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$var),)+
                    _ => Err(UnknownName { what: $what, value: s.to_owned() }),
                }
            }
        }
    };
}

wire_enum! {
    /// What a record is about.
    RecordKind, "record kind" {
        /// A call reached `/data/` and was allowed or denied (written before forwarding).
        Decision = "decision",
        /// A forwarded call ended: status, bytes, duration.
        Outcome = "outcome",
        /// Someone used the audit API.
        AuditRead = "audit_read",
    }
}

wire_enum! {
    /// The decision on a call.
    Verdict, "decision" {
        Allow = "allow",
        Deny = "deny",
    }
}

wire_enum! {
    /// The legal basis a transfer relied on.
    Basis, "basis" {
        Consent = "consent",
        Statutory = "statutory",
    }
}

impl From<&policy::LegalBasis> for Basis {
    fn from(b: &policy::LegalBasis) -> Self {
        match b {
            policy::LegalBasis::Consent => Basis::Consent,
            policy::LegalBasis::Statutory => Basis::Statutory,
        }
    }
}

/// A record as the gateway hands it to [`crate::AuditLog::append`]: everything
/// but `index` and `time`, which the store assigns when the record commits
/// (so both grow together along the log).
///
/// No field may hold a person number: the subject goes in as `subject_ref`, a
/// keyed pseudonym, and `path` has the subject replaced by `{subject}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub transfer_id: String,
    pub kind: RecordKind,
    /// `0192:{orgnr}`; `None` when the caller was never authenticated.
    pub consumer: Option<String>,
    /// `0192:{orgnr}` of a vendor acting for the consumer.
    pub supplier: Option<String>,
    pub client_id: Option<String>,
    pub provider: Option<String>,
    pub dataset: Option<String>,
    pub method: String,
    pub path: String,
    pub purpose: Option<String>,
    pub basis: Option<Basis>,
    pub legal_ref: Option<String>,
    pub consent_id: Option<String>,
    pub subject_ref: Option<String>,
    /// `None` for outcome records.
    pub decision: Option<Verdict>,
    /// The problem code of a denial or failure.
    pub code: Option<String>,
    /// On a decision record, the status Bru answered a denial with (`None` on
    /// allow); on an outcome record, the status the caller got.
    pub status: Option<u16>,
    pub bytes: Option<u64>,
    pub duration_ms: Option<u64>,
    /// How many refused calls this one record stands for, when Bru counted
    /// repeated refusals that cost nothing to send (no token, over a rate)
    /// into one record per interval; `None` for a record of one call.
    pub count: Option<u64>,
    /// The Altinn system user the call was made as (SPEC 9.2), if any.
    pub system_user: Option<String>,
    /// The reason a caller gave in `Bru-Break-Glass` to pass a citizen's
    /// block (SPEC 10), if the call passed one.
    pub break_glass: Option<String>,
    /// The consumer rule's `disclosure_delay_days` (SPEC 10): the citizen's
    /// views show this record only from `time` + this many days.
    pub disclosure_delay_days: Option<u32>,
}

impl NewRecord {
    /// A record with only the always-present fields set; fill in the rest.
    pub fn new(
        kind: RecordKind,
        transfer_id: impl Into<String>,
        method: impl Into<String>,
        path: impl Into<String>,
    ) -> Self {
        NewRecord {
            transfer_id: transfer_id.into(),
            kind,
            consumer: None,
            supplier: None,
            client_id: None,
            provider: None,
            dataset: None,
            method: method.into(),
            path: path.into(),
            purpose: None,
            basis: None,
            legal_ref: None,
            consent_id: None,
            subject_ref: None,
            decision: None,
            code: None,
            status: None,
            bytes: None,
            duration_ms: None,
            count: None,
            system_user: None,
            break_glass: None,
            disclosure_delay_days: None,
        }
    }
}

/// A committed record, as export and the audit API return it. Field order is
/// the spec's and the serialized order; every key is always present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// The leaf index in the transparency log: dense from 0, in commit order.
    pub index: u64,
    pub time: Timestamp,
    pub transfer_id: String,
    pub kind: RecordKind,
    pub consumer: Option<String>,
    pub supplier: Option<String>,
    pub client_id: Option<String>,
    pub provider: Option<String>,
    pub dataset: Option<String>,
    pub method: String,
    pub path: String,
    pub purpose: Option<String>,
    pub basis: Option<Basis>,
    pub legal_ref: Option<String>,
    pub consent_id: Option<String>,
    pub subject_ref: Option<String>,
    pub decision: Option<Verdict>,
    pub code: Option<String>,
    pub status: Option<u16>,
    pub bytes: Option<u64>,
    pub duration_ms: Option<u64>,
    /// Added after SPEC section 5's members, and only where it applies (so
    /// the leaf bytes of every other record are as before): the number of
    /// refused calls a counted record stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub count: Option<u64>,
    /// SPEC 9.2, added like `count`: the Altinn system user a call was made
    /// as; absent (null) for every other record, whose leaf bytes stay as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_user: Option<String>,
    /// SPEC 10, added like `count`: the reason given in `Bru-Break-Glass`
    /// when the call passed a citizen's block; absent on every other record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<String>,
    /// SPEC 10, added like `count`: the consumer rule's disclosure delay in
    /// days; the citizen's views leave the record out until `time` + this.
    /// Absent where there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosure_delay_days: Option<u32>,
}

impl AuditRecord {
    pub fn from_new(index: u64, time: Timestamp, r: NewRecord) -> Self {
        AuditRecord {
            index,
            time,
            transfer_id: r.transfer_id,
            kind: r.kind,
            consumer: r.consumer,
            supplier: r.supplier,
            client_id: r.client_id,
            provider: r.provider,
            dataset: r.dataset,
            method: r.method,
            path: r.path,
            purpose: r.purpose,
            basis: r.basis,
            legal_ref: r.legal_ref,
            consent_id: r.consent_id,
            subject_ref: r.subject_ref,
            decision: r.decision,
            code: r.code,
            status: r.status,
            bytes: r.bytes,
            duration_ms: r.duration_ms,
            count: r.count,
            system_user: r.system_user,
            break_glass: r.break_glass,
            disclosure_delay_days: r.disclosure_delay_days,
        }
    }

    /// The record's JSON in RFC 8785 (JCS) form: the leaf bytes of the
    /// transparency log. Keys sorted by UTF-16 code units, no whitespace,
    /// strings as UTF-8 with only `"`, `\` and control characters escaped,
    /// integers plain (see [`crate::canonical`]).
    pub fn leaf_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        self.leaf_fields()
            .to_bytes()
            .map_err(<serde_json::Error as serde::ser::Error>::custom)
    }

    /// SHA-256(0x00 ‖ leaf bytes): the record's leaf hash (RFC 9162).
    pub fn leaf_hash(&self) -> Result<crate::merkle::Hash, serde_json::Error> {
        Ok(crate::merkle::leaf_hash(&self.leaf_bytes()?))
    }
}

/// Which records to return; every field set narrows the result. Results come
/// in index order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// Records at or after this time.
    pub since: Option<Timestamp>,
    /// Records strictly before this time.
    pub until: Option<Timestamp>,
    /// `0192:{orgnr}`.
    pub consumer: Option<String>,
    /// The provider part of `provider/dataset`.
    pub provider: Option<String>,
    /// `provider/dataset`, as records hold it.
    pub dataset: Option<String>,
    pub kind: Option<RecordKind>,
    pub decision: Option<Verdict>,
    pub subject_ref: Option<String>,
    /// The cursor: only records with an index greater than this.
    pub after_index: Option<u64>,
    /// At most this many records; `None` for all.
    pub limit: Option<u32>,
}

mod leaf;
pub mod scrub;

#[cfg(test)]
mod tests;
