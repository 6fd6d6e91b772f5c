//! The audit record's leaf bytes (`AuditRecord::leaf_bytes`, the RFC 8785
//! JSON the transparency log hashes) for arbitrary field values, and
//! `Timestamp::parse` for arbitrary text.
//!
//! Input: a first line with a time for `Timestamp::parse` (empty: the time
//! comes from the bytes, anywhere in years 0000-9999), then the bytes the
//! record's fields are made of (`arbitrary`).
//!
//! Checks: never panics; `leaf_bytes` fails exactly when an integer is
//! beyond 2^53 - 1; otherwise the bytes are deterministic, parse back as
//! JSON equal to the record's serde JSON, are already canonical (the generic
//! canonicaliser gives the same bytes, from the bytes and from the serde
//! value), and deserialize to the same record. A parsed time prints as
//! RFC 3339 that parses back to the same instant.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use consent_db::canonical::{self, MAX_SAFE_INTEGER};
use consent_db::{AuditRecord, Basis, RecordKind, Timestamp, Verdict};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

#[derive(Arbitrary, Debug)]
struct Input {
    index: u64,
    /// Milliseconds into 0000-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999Z,
    /// plus sub-millisecond nanoseconds that must be dropped.
    millis: u64,
    nanos: u32,
    transfer_id: String,
    kind: u8,
    consumer: Option<String>,
    supplier: Option<String>,
    client_id: Option<String>,
    provider: Option<String>,
    dataset: Option<String>,
    method: String,
    path: String,
    purpose: Option<String>,
    basis: Option<bool>,
    legal_ref: Option<String>,
    consent_id: Option<String>,
    subject_ref: Option<String>,
    decision: Option<bool>,
    code: Option<String>,
    status: Option<u16>,
    bytes: Option<u64>,
    duration_ms: Option<u64>,
    count: Option<u64>,
    system_user: Option<String>,
    break_glass: Option<String>,
    disclosure_delay_days: Option<u32>,
    /// Leave the integers as they are (mostly beyond 2^53) instead of
    /// shifting them into the range the log holds.
    huge: bool,
}

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z in Unix milliseconds.
const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_300_799_999;

fuzz_target!(|data: &[u8]| {
    let (head, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(rest)) else {
        return;
    };
    let time = if head.is_empty() {
        let span = (MAX_MS - MIN_MS + 1) as u64;
        let ms = MIN_MS + (input.millis % span) as i64;
        let nanos = i128::from(ms) * 1_000_000 + i128::from(input.nanos % 1_000_000);
        let t = OffsetDateTime::from_unix_timestamp_nanos(nanos).expect("in range");
        let ts = Timestamp::from_datetime(t);
        assert_eq!(ts.unix_millis(), i128::from(ms));
        ts
    } else {
        match Timestamp::parse(&String::from_utf8_lossy(head)) {
            Ok(ts) => ts,
            Err(_) => return,
        }
    };
    let text = time.to_string();
    assert_eq!(
        Timestamp::parse(&text),
        Ok(time),
        "{text} does not parse back"
    );
    assert!(
        text.len() == 24 && text.ends_with('Z'),
        "not the one spelling: {text}"
    );

    let int = |n: u64| if input.huge { n } else { n >> 11 };
    let record = AuditRecord {
        index: int(input.index),
        time,
        transfer_id: input.transfer_id,
        kind: match input.kind % 3 {
            0 => RecordKind::Decision,
            1 => RecordKind::Outcome,
            _ => RecordKind::AuditRead,
        },
        consumer: input.consumer,
        supplier: input.supplier,
        client_id: input.client_id,
        provider: input.provider,
        dataset: input.dataset,
        method: input.method,
        path: input.path,
        purpose: input.purpose,
        basis: input
            .basis
            .map(|b| if b { Basis::Consent } else { Basis::Statutory }),
        legal_ref: input.legal_ref,
        consent_id: input.consent_id,
        subject_ref: input.subject_ref,
        decision: input
            .decision
            .map(|d| if d { Verdict::Allow } else { Verdict::Deny }),
        code: input.code,
        status: input.status,
        bytes: input.bytes.map(int),
        duration_ms: input.duration_ms.map(int),
        count: input.count.map(int),
        system_user: input.system_user,
        break_glass: input.break_glass,
        disclosure_delay_days: input.disclosure_delay_days,
    };

    let representable = record.index <= MAX_SAFE_INTEGER
        && record.bytes.is_none_or(|n| n <= MAX_SAFE_INTEGER)
        && record.duration_ms.is_none_or(|n| n <= MAX_SAFE_INTEGER)
        && record.count.is_none_or(|n| n <= MAX_SAFE_INTEGER);
    let leaf = record.leaf_bytes();
    assert_eq!(leaf.is_ok(), representable, "{leaf:?}");
    let Ok(leaf) = leaf else {
        return;
    };
    assert_eq!(
        record.leaf_bytes().ok().as_ref(),
        Some(&leaf),
        "not deterministic"
    );

    let serde_value = serde_json::to_value(&record).expect("record serializes");
    let parsed: serde_json::Value = serde_json::from_slice(&leaf).expect("leaf bytes are not JSON");
    assert_eq!(
        parsed, serde_value,
        "leaf bytes hold other values than the record"
    );
    assert_eq!(
        canonical::to_vec(&parsed).ok().as_ref(),
        Some(&leaf),
        "not canonical"
    );
    assert_eq!(canonical::to_vec(&serde_value).ok().as_ref(), Some(&leaf));
    let back: AuditRecord = serde_json::from_slice(&leaf).expect("leaf bytes do not deserialize");
    assert_eq!(back, record);
});
