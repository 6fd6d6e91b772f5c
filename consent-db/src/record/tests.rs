#![allow(clippy::unwrap_used)]

use super::*;

fn sample() -> AuditRecord {
    let mut r = NewRecord::new(RecordKind::Decision, "t-1", "GET", "/data/nav/inntekt");
    r.consumer = Some("0192:921429002".into());
    r.provider = Some("nav".into());
    r.dataset = Some("inntekt".into());
    r.purpose = Some("omsorgsbolig-soknad".into());
    r.basis = Some(Basis::Consent);
    r.decision = Some(Verdict::Allow);
    AuditRecord::from_new(7, Timestamp::parse("2026-11-23T12:00:00.123Z").unwrap(), r)
}

#[test]
fn json_has_every_key_in_spec_order() {
    let json = serde_json::to_string(&sample()).unwrap();
    assert_eq!(
        json,
        r#"{"index":7,"time":"2026-11-23T12:00:00.123Z","transfer_id":"t-1","kind":"decision","consumer":"0192:921429002","supplier":null,"client_id":null,"provider":"nav","dataset":"inntekt","method":"GET","path":"/data/nav/inntekt","purpose":"omsorgsbolig-soknad","basis":"consent","legal_ref":null,"consent_id":null,"subject_ref":null,"decision":"allow","code":null,"status":null,"bytes":null,"duration_ms":null}"#
    );
    let back: AuditRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sample());
}

#[test]
fn leaf_bytes_sort_keys() {
    let bytes = String::from_utf8(sample().leaf_bytes().unwrap()).unwrap();
    assert!(bytes.starts_with(r#"{"basis":"consent","bytes":null,"client_id":null,"code":null,"consent_id":null,"consumer":"0192:921429002","#));
    assert!(bytes.ends_with(r#""transfer_id":"t-1"}"#));
    // Deterministic: the same record always gives the same bytes.
    assert_eq!(
        sample().leaf_bytes().unwrap(),
        sample().leaf_bytes().unwrap()
    );
}

#[test]
fn enum_wire_names() {
    for (kind, name) in [
        (RecordKind::Decision, "decision"),
        (RecordKind::Outcome, "outcome"),
        (RecordKind::AuditRead, "audit_read"),
    ] {
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
        assert_eq!(name.parse::<RecordKind>().unwrap(), kind);
    }
    assert_eq!(serde_json::to_string(&Verdict::Deny).unwrap(), "\"deny\"");
    assert_eq!("statutory".parse::<Basis>().unwrap(), Basis::Statutory);
    assert!("Allow".parse::<Verdict>().is_err());
}

#[test]
fn timestamps_are_utc_milliseconds() {
    fn check(input: &str, expected: &str) {
        assert_eq!(
            Timestamp::parse(input).unwrap().to_string(),
            expected,
            "{input}"
        );
    }
    check("2026-11-23T12:00:00Z", "2026-11-23T12:00:00.000Z");
    check("2026-11-23T12:00:00.1239Z", "2026-11-23T12:00:00.123Z");
    check("2026-11-23T13:00:00.5+01:00", "2026-11-23T12:00:00.500Z");
    check("0099-01-02T03:04:05.006Z", "0099-01-02T03:04:05.006Z");
    assert!(Timestamp::parse("2026-11-23 12:00:00").is_err());
    assert!(Timestamp::parse("yesterday").is_err());
    let now = Timestamp::now().to_string();
    assert_eq!(now.len(), "2026-11-23T12:00:00.123Z".len());
    assert!(now.ends_with('Z'));
}

#[test]
fn unknown_keys_are_refused() {
    let mut v = serde_json::to_value(sample()).unwrap();
    v["extra"] = serde_json::json!(1);
    assert!(serde_json::from_value::<AuditRecord>(v).is_err());
}

/// Records with every field set (odd strings included) and with none.
fn leaf_samples() -> Vec<AuditRecord> {
    let mut full = NewRecord::new(
        RecordKind::Outcome,
        "t-\"ø\"\n",
        "POST",
        "/data/k429/sak-path/{subject}",
    );
    full.consumer = Some("0192:921429002".into());
    full.supplier = Some("0192:999000428".into());
    full.client_id = Some("client \\ \u{1f}\u{7f}".into());
    full.provider = Some("k429".into());
    full.dataset = Some("k429/sak-path".into());
    full.purpose = Some("sosialhjelp-saksbehandling".into());
    full.basis = Some(Basis::Statutory);
    full.legal_ref = Some("sosialtjenesteloven § 43 (illustrativ)".into());
    full.consent_id = Some("0190a3b2-…".into());
    full.subject_ref = Some("abc_-".into());
    full.decision = Some(Verdict::Deny);
    full.code = Some("consent_required".into());
    full.status = Some(403);
    full.bytes = Some(crate::canonical::MAX_SAFE_INTEGER);
    full.duration_ms = Some(0);
    let time = Timestamp::parse("2026-11-23T12:00:00.123Z").unwrap();
    let mut counted = NewRecord::new(RecordKind::Decision, "t-c", "GET", "/data/");
    counted.decision = Some(Verdict::Deny);
    counted.code = Some("missing_token".into());
    counted.count = Some(1234);
    let mut system_user = NewRecord::new(RecordKind::Decision, "t-s", "GET", "/data/nav/inntekt");
    system_user.decision = Some(Verdict::Allow);
    system_user.system_user = Some("f950ddae-06c3-4b57-b940-702417a90df0".into());
    let mut glass = NewRecord::new(RecordKind::Decision, "t-g", "GET", "/data/helsenorge/x");
    glass.decision = Some(Verdict::Allow);
    glass.break_glass = Some("Akutt: pasienten svarer ikke \"på\" døra".into());
    glass.disclosure_delay_days = Some(30);
    vec![
        AuditRecord::from_new(0, time, NewRecord::new(RecordKind::AuditRead, "", "", "")),
        AuditRecord::from_new(u32::MAX.into(), time, full),
        AuditRecord::from_new(9, time, counted),
        sample(),
        AuditRecord::from_new(10, time, system_user),
        AuditRecord::from_new(11, time, glass),
    ]
}

#[test]
fn leaf_bytes_are_the_rfc8785_form_of_the_api_json() {
    for record in leaf_samples() {
        let value = serde_json::to_value(&record).unwrap();
        let generic = crate::canonical::to_vec(&value).unwrap();
        let fast = record.leaf_bytes().unwrap();
        assert_eq!(
            String::from_utf8(fast.clone()).unwrap(),
            String::from_utf8(generic).unwrap()
        );
        // Every member of the API object, and nothing else.
        let back: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&fast).unwrap();
        let expected: Vec<&String> = value.as_object().unwrap().keys().collect();
        let mut got: Vec<&String> = back.keys().collect();
        got.sort();
        let mut expected = expected;
        expected.sort();
        assert_eq!(got, expected);
        // The append path (from a NewRecord) writes the same bytes.
        let new = NewRecord {
            transfer_id: record.transfer_id.clone(),
            kind: record.kind,
            consumer: record.consumer.clone(),
            supplier: record.supplier.clone(),
            client_id: record.client_id.clone(),
            provider: record.provider.clone(),
            dataset: record.dataset.clone(),
            method: record.method.clone(),
            path: record.path.clone(),
            purpose: record.purpose.clone(),
            basis: record.basis,
            legal_ref: record.legal_ref.clone(),
            consent_id: record.consent_id.clone(),
            subject_ref: record.subject_ref.clone(),
            decision: record.decision,
            code: record.code.clone(),
            status: record.status,
            bytes: record.bytes,
            duration_ms: record.duration_ms,
            count: record.count,
            system_user: record.system_user.clone(),
            break_glass: record.break_glass.clone(),
            disclosure_delay_days: record.disclosure_delay_days,
        };
        assert_eq!(
            new.leaf_fields(record.index, record.time)
                .to_bytes()
                .unwrap(),
            fast
        );
    }
}

#[test]
fn leaf_bytes_write_non_ascii_as_utf8_and_escape_controls_the_jcs_way() {
    let records = leaf_samples();
    let text = String::from_utf8(records[1].leaf_bytes().unwrap()).unwrap();
    assert!(
        text.contains(r#""legal_ref":"sosialtjenesteloven § 43 (illustrativ)""#),
        "{text}"
    );
    assert!(text.contains(r#""transfer_id":"t-\"ø\"\n""#), "{text}");
    assert!(
        text.contains("\"client_id\":\"client \\\\ \\u001f\u{7f}\""),
        "{text}"
    );
    assert!(text.contains(r#""bytes":9007199254740991,"#), "{text}");
    assert_eq!(
        text.matches("\\u").count(),
        1,
        "\\u only for the one control: {text}"
    );
    let mut too_big = records[1].clone();
    too_big.bytes = Some(crate::canonical::MAX_SAFE_INTEGER + 1);
    assert!(too_big.leaf_bytes().is_err());
}

// ---- found by fuzzing (fuzz/, docs/FUZZING.md) -----------------------------

#[test]
fn fuzz_times_outside_years_0000_to_9999_in_utc_are_refused() {
    // The first parsed to year -1, printed as `-001-12-31T23:00:00.123Z`,
    // which is not RFC 3339 and did not parse back; the second panicked
    // ("local datetime out of valid range") converting to UTC, reachable
    // through `since`/`until` of the audit API.
    for s in [
        "0000-01-01T00:00:00.123456+01:00",
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:30:00-00:31",
    ] {
        assert!(Timestamp::parse(s).is_err(), "{s}");
    }
    for (s, utc) in [
        ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00.000Z"),
        ("0000-01-01T01:00:00+01:00", "0000-01-01T00:00:00.000Z"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999Z"),
        ("9999-12-31T23:59:59+01:00", "9999-12-31T22:59:59.000Z"),
    ] {
        let t = Timestamp::parse(s).unwrap();
        assert_eq!(t.to_string(), utc);
        assert_eq!(Timestamp::parse(utc), Ok(t));
    }
}

#[test]
fn count_is_a_member_only_of_counted_records() {
    // A record of one call has the same JSON (and leaf) as before `count`.
    assert!(!serde_json::to_string(&sample()).unwrap().contains("count"));
    let counted = &leaf_samples()[2];
    let leaf = String::from_utf8(counted.leaf_bytes().unwrap()).unwrap();
    assert!(
        leaf.contains(r#""consumer":null,"count":1234,"dataset":null"#),
        "{leaf}"
    );
    let json = serde_json::to_string(counted).unwrap();
    assert!(
        json.ends_with(r#""duration_ms":null,"count":1234}"#),
        "{json}"
    );
    let back: AuditRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, counted);
}

#[test]
fn system_user_is_a_member_only_of_system_users_records() {
    // SPEC 9.2: added like `count`, so every other record's leaf is as before.
    assert!(!serde_json::to_string(&sample())
        .unwrap()
        .contains("system_user"));
    let record = &leaf_samples()[4];
    let leaf = String::from_utf8(record.leaf_bytes().unwrap()).unwrap();
    assert!(
        leaf.contains(
            r#""supplier":null,"system_user":"f950ddae-06c3-4b57-b940-702417a90df0","time""#
        ),
        "{leaf}"
    );
}

#[test]
fn break_glass_and_delay_are_members_only_where_set() {
    // SPEC 10: added like `count`, so every other record's leaf is as before.
    let plain = serde_json::to_string(&sample()).unwrap();
    assert!(!plain.contains("break_glass") && !plain.contains("disclosure_delay_days"));
    let record = &leaf_samples()[5];
    let leaf = String::from_utf8(record.leaf_bytes().unwrap()).unwrap();
    assert!(
        leaf.starts_with(r#"{"basis":null,"break_glass":"Akutt: "#),
        "{leaf}"
    );
    assert!(
        leaf.contains(r#""decision":"allow","disclosure_delay_days":30,"duration_ms":null"#),
        "{leaf}"
    );
}

#[test]
fn a_timestamps_rfc3339_text_is_its_display_and_fits_its_size() {
    for text in [
        "2026-12-05T22:00:00.123Z",
        "0000-01-01T00:00:00.000Z",
        "9999-12-31T23:59:59.999Z",
        "2026-03-29T01:30:00.5+02:00",
    ] {
        let t = Timestamp::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let written = t.to_rfc3339();
        assert_eq!(written, t.to_string(), "{text}");
        assert_eq!(written.len(), TEXT_LEN, "{written}");
        assert_eq!(written.capacity(), TEXT_LEN, "{written}: grown");
    }
}
