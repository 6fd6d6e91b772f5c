//! The leaf bytes of a record written field by field: the same RFC 8785
//! bytes as canonicalising its serde JSON (a test holds the two together),
//! without building a JSON tree per record in the append path.

use super::{AuditRecord, Basis, NewRecord, RecordKind, Timestamp, Verdict};
use crate::canonical::{write_integer, write_string, CanonicalError};

/// Every field of a record, borrowed.
pub(crate) struct LeafFields<'a> {
    pub index: u64,
    pub time: Timestamp,
    pub transfer_id: &'a str,
    pub kind: RecordKind,
    pub consumer: Option<&'a str>,
    pub supplier: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub dataset: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    pub purpose: Option<&'a str>,
    pub basis: Option<Basis>,
    pub legal_ref: Option<&'a str>,
    pub consent_id: Option<&'a str>,
    pub subject_ref: Option<&'a str>,
    pub decision: Option<Verdict>,
    pub code: Option<&'a str>,
    pub status: Option<u16>,
    pub bytes: Option<u64>,
    pub duration_ms: Option<u64>,
    pub count: Option<u64>,
    pub system_user: Option<&'a str>,
    pub break_glass: Option<&'a str>,
    pub disclosure_delay_days: Option<u32>,
}

impl AuditRecord {
    pub(crate) fn leaf_fields(&self) -> LeafFields<'_> {
        LeafFields {
            index: self.index,
            time: self.time,
            transfer_id: &self.transfer_id,
            kind: self.kind,
            consumer: self.consumer.as_deref(),
            supplier: self.supplier.as_deref(),
            client_id: self.client_id.as_deref(),
            provider: self.provider.as_deref(),
            dataset: self.dataset.as_deref(),
            method: &self.method,
            path: &self.path,
            purpose: self.purpose.as_deref(),
            basis: self.basis,
            legal_ref: self.legal_ref.as_deref(),
            consent_id: self.consent_id.as_deref(),
            subject_ref: self.subject_ref.as_deref(),
            decision: self.decision,
            code: self.code.as_deref(),
            status: self.status,
            bytes: self.bytes,
            duration_ms: self.duration_ms,
            count: self.count,
            system_user: self.system_user.as_deref(),
            break_glass: self.break_glass.as_deref(),
            disclosure_delay_days: self.disclosure_delay_days,
        }
    }
}

impl NewRecord {
    /// The fields of the record this becomes at `index` and `time`.
    pub(crate) fn leaf_fields(&self, index: u64, time: Timestamp) -> LeafFields<'_> {
        LeafFields {
            index,
            time,
            transfer_id: &self.transfer_id,
            kind: self.kind,
            consumer: self.consumer.as_deref(),
            supplier: self.supplier.as_deref(),
            client_id: self.client_id.as_deref(),
            provider: self.provider.as_deref(),
            dataset: self.dataset.as_deref(),
            method: &self.method,
            path: &self.path,
            purpose: self.purpose.as_deref(),
            basis: self.basis,
            legal_ref: self.legal_ref.as_deref(),
            consent_id: self.consent_id.as_deref(),
            subject_ref: self.subject_ref.as_deref(),
            decision: self.decision,
            code: self.code.as_deref(),
            status: self.status,
            bytes: self.bytes,
            duration_ms: self.duration_ms,
            count: self.count,
            system_user: self.system_user.as_deref(),
            break_glass: self.break_glass.as_deref(),
            disclosure_delay_days: self.disclosure_delay_days,
        }
    }
}

enum V<'a> {
    Str(&'a str),
    Int(u64),
    Null,
}

impl<'a> From<Option<&'a str>> for V<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(V::Null, V::Str)
    }
}

impl From<Option<u64>> for V<'_> {
    fn from(v: Option<u64>) -> Self {
        v.map_or(V::Null, V::Int)
    }
}

impl LeafFields<'_> {
    /// The canonical JSON: members in code-unit order of their (ASCII) names.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, CanonicalError> {
        let time = self.time.to_rfc3339();
        // `count`, `system_user`, `break_glass` and `disclosure_delay_days`
        // are present only where they apply (a counted record, a system
        // user's call, a break-glass call, a delayed one), so every other
        // record keeps the leaf bytes it always had. Members in name order.
        fn opt<'v>(name: &'static str, v: Option<V<'v>>) -> Option<(&'static str, V<'v>)> {
            v.map(|v| (name, v))
        }
        let members = [
            Some(("basis", self.basis.map(|b| b.as_str()).into())),
            opt("break_glass", self.break_glass.map(V::Str)),
            Some(("bytes", self.bytes.into())),
            Some(("client_id", self.client_id.into())),
            Some(("code", self.code.into())),
            Some(("consent_id", self.consent_id.into())),
            Some(("consumer", self.consumer.into())),
            opt("count", self.count.map(V::Int)),
            Some(("dataset", self.dataset.into())),
            Some(("decision", self.decision.map(|d| d.as_str()).into())),
            opt(
                "disclosure_delay_days",
                self.disclosure_delay_days.map(|d| V::Int(u64::from(d))),
            ),
            Some(("duration_ms", self.duration_ms.into())),
            Some(("index", V::Int(self.index))),
            Some(("kind", V::Str(self.kind.as_str()))),
            Some(("legal_ref", self.legal_ref.into())),
            Some(("method", V::Str(self.method))),
            Some(("path", V::Str(self.path))),
            Some(("provider", self.provider.into())),
            Some(("purpose", self.purpose.into())),
            Some(("status", self.status.map(u64::from).into())),
            Some(("subject_ref", self.subject_ref.into())),
            Some(("supplier", self.supplier.into())),
            opt("system_user", self.system_user.map(V::Str)),
            Some(("time", V::Str(&time))),
            Some(("transfer_id", V::Str(self.transfer_id))),
        ];
        let mut out = Vec::with_capacity(512);
        out.push(b'{');
        for (i, (name, value)) in members.iter().flatten().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            match value {
                V::Str(s) => write_string(s, &mut out),
                // In place: a `String` each was two allocations a record.
                V::Int(n) => write_integer(*n, &mut out)?,
                V::Null => out.extend_from_slice(b"null"),
            }
        }
        out.push(b'}');
        Ok(out)
    }
}
