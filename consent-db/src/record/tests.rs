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
