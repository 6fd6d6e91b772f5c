#![allow(clippy::unwrap_used)]

use super::*;
use crate::record::RecordKind;

const KARI: &str = "12884513829";
const OLA: &str = "03839113713";
const PER: &str = "15895013789";
/// A D-nummer (day + 40): 1 January 1980.
const D_NUMBER: &str = "41018010001";
/// Kari's number with a wrong second control digit.
const BAD: &str = "12884513828";

fn check(input: &str, subject: Option<&str>, expected: &str) {
    assert_eq!(scrub_text(input, subject), expected, "input {input:?}");
}

#[test]
fn the_d_number_fixture_is_valid() {
    assert!(policy::PersonNumber::parse(D_NUMBER, false).is_ok());
    assert!(policy::PersonNumber::control_digits_valid(KARI));
    assert!(!policy::PersonNumber::control_digits_valid(BAD));
}

#[test]
fn numbers_anywhere_in_text() {
    check(KARI, Some(KARI), "{subject}");
    check(KARI, None, "{person}");
    check(KARI, Some(OLA), "{person}");
    // At the edges of a segment and embedded in one.
    check(&format!("{PER}-WWWW"), None, "{person}-WWWW");
    check(&format!("x{PER}"), None, "x{person}");
    check(
        &format!("sak{KARI}vedtak{OLA}"),
        Some(OLA),
        "sak{person}vedtak{subject}",
    );
    // D-nummer, with synthetic numbers off or on: control digits decide.
    check(D_NUMBER, None, "{person}");
    // DDMMYY NNNNN as people write it.
    check("128845 13829", Some(KARI), "{subject}");
    check(
        "128845.13829 and 128845-13829",
        None,
        "{person} and {person}",
    );
    // Inside a longer run: the whole run goes.
    check(&format!("0{KARI}7"), None, "{person}");
}

#[test]
fn what_is_no_person_number_is_left_alone() {
    for text in [
        BAD,
        "1288451382",               // 10 digits
        "0192:921429002",           // an organisation
        "2026-11-23T12:00:00.123Z", // a time
        "omsorgsbolig-soknad",
        "128845 1382",  // 6 + 4
        "12884 513829", // 5 + 6
        "",
    ] {
        assert!(
            matches!(scrub_text(text, Some(KARI)), Cow::Borrowed(_)),
            "{text:?} was changed"
        );
    }
}

#[test]
fn non_ascii_digits_are_taken_for_digits() {
    // Fullwidth and Arabic-Indic digits: 11 in a row are scrubbed unchecked.
    check("ab１２８８４５１３８２９cd", None, "ab{person}cd");
    check("١٢٨٨٤٥١٣٨٢٩", None, "{person}");
    // Ten are not a number.
    check("１２８８４５１３８２", None, "１２８８４５１３８２");
}

#[test]
fn paths_are_scrubbed_segment_by_segment_and_percent_decoded() {
    let path = format!("/data/k429/sak/{KARI}/x/{OLA}");
    assert_eq!(
        scrub_path(&path, Some(KARI)),
        "/data/k429/sak/{subject}/x/{person}"
    );
    // %31%32… decodes to Kari's number.
    let encoded: String = KARI.bytes().map(|b| format!("%{b:02X}")).collect();
    assert_eq!(
        scrub_path(&format!("/data/k429/sak/{encoded}"), Some(KARI)),
        "/data/k429/sak/{subject}"
    );
    // Partly encoded, with other encoded text kept encoded.
    assert_eq!(
        scrub_path("/data/a/b/128845%2013829%20x", None),
        "/data/a/b/{person}%20x"
    );
    // A segment without a number stays exactly as sent.
    assert_eq!(scrub_path("/data/a/b/%41%42", None), "/data/a/b/%41%42");
    // No query or fragment ever.
    assert_eq!(
        scrub_path(&format!("/data/a/b?fnr={KARI}#{OLA}"), None),
        "/data/a/b"
    );
}

#[test]
fn bound_cuts_at_a_character_and_says_so() {
    assert_eq!(bound("abc", 3), "abc");
    let cut = bound(&"ø".repeat(100), 10);
    assert!(cut.len() <= 10 && cut.ends_with('…'), "{cut}");
    assert_eq!(
        bound(&"a".repeat(600), MAX_PATH_BYTES).len(),
        MAX_PATH_BYTES
    );
}

#[test]
fn a_record_is_scrubbed_and_bounded_member_by_member() {
    let long = "x".repeat(30_000);
    let mut r = NewRecord::new(
        RecordKind::Decision,
        "t",
        format!("M{KARI}"),
        format!("/data/k429/sak/{PER}-{long}"),
    );
    r.purpose = Some(format!("Ring-{OLA}-{long}"));
    r.client_id = Some(KARI.to_owned());
    r.consent_id = Some(format!("00000000-0000-4000-8000-0{KARI}"));
    r.legal_ref = Some("sosialtjenesteloven § 43".into());
    r.scrub();
    assert!(
        r.path.starts_with("/data/k429/sak/{person}-xxx"),
        "{}",
        r.path
    );
    assert!(r.path.len() <= MAX_PATH_BYTES);
    assert_eq!(r.method, "M{person}");
    let purpose = r.purpose.clone().unwrap();
    assert!(purpose.starts_with("Ring-{person}-") && purpose.len() <= MAX_TEXT_BYTES);
    assert_eq!(r.client_id.as_deref(), Some("{person}"));
    // A UUID-shaped id is Bru's form and kept; the gateway scrubs a caller's
    // id that names no consent before it gets here.
    assert_eq!(
        r.consent_id.as_deref(),
        Some("00000000-0000-4000-8000-012884513829")
    );
    r.consent_id = Some(format!("consent-{KARI}"));
    r.scrub();
    assert_eq!(r.consent_id.as_deref(), Some("consent-{person}"));
    // Idempotent.
    let once = r.clone();
    r.scrub();
    assert_eq!(r, once);
}

#[test]
fn a_record_loses_its_query_and_keeps_what_needs_no_scrubbing() {
    let mut r = NewRecord::new(
        RecordKind::Decision,
        "t",
        "GET",
        "/data/k429/sak/abc?fnr=1#x".to_owned(),
    );
    r.purpose = Some("sosialhjelp-saksbehandling".into());
    r.scrub();
    assert_eq!(r.path, "/data/k429/sak/abc");
    assert_eq!(r.method, "GET");
    assert_eq!(r.purpose.as_deref(), Some("sosialhjelp-saksbehandling"));
    let mut encoded = NewRecord::new(
        RecordKind::Decision,
        "t",
        "GET",
        format!("/data/k429/sak/%31{}?q=1", &KARI[1..]),
    );
    encoded.scrub();
    assert_eq!(encoded.path, "/data/k429/sak/{person}");
}

/// SPEC 10: a break-glass reason is free text about a person; a number in
/// it never reaches the leaf, and it is bounded like every caller's text.
#[test]
fn a_break_glass_reason_is_scrubbed_and_bounded() {
    let mut r = NewRecord::new(
        RecordKind::Decision,
        "t",
        "GET",
        "/data/helsenorge/hjemmetjeneste",
    );
    r.break_glass = Some(format!(
        "Akutt: naboen {OLA} ringte, 128845 13829 svarer ikke på døra"
    ));
    r.scrub();
    assert_eq!(
        r.break_glass.as_deref(),
        Some("Akutt: naboen {person} ringte, {person} svarer ikke på døra")
    );
    r.break_glass = Some(format!("{KARI} {}", "å".repeat(400)));
    r.scrub();
    let reason = r.break_glass.clone().unwrap();
    assert!(reason.starts_with("{person} åå"), "{reason}");
    assert!(reason.len() <= MAX_REASON_BYTES, "{}", reason.len());
    let once = r.clone();
    r.scrub();
    assert_eq!(r, once);
}
