//! Norwegian identifiers: `PersonNumber::parse`, `OrgNumber::parse` and
//! `OrgNumber::parse_iso6523`, against an independent reference.
//!
//! Checks: never panics; accepted exactly when the reference accepts
//! (11 / 9 ASCII digits, mod-11 control digits, a real date of birth with
//! the D-number and synthetic month offsets, the century from the individual
//! number); the parsed value gives back the input; a person number's `Debug`
//! shows no digit. Each input is tried as it is and as a digit string made
//! from its bytes, so valid numbers are reached often.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy::{IdError, OrgNumber, PersonNumber};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check(&text);
    let digits: String = data.iter().map(|b| char::from(b'0' + b % 10)).collect();
    check(&digits);
    check(&format!("0192:{digits}"));
    if let Some(rest) = digits.get(..11) {
        check(rest);
    }
    if let Some(rest) = digits.get(..9) {
        check(rest);
        check(&format!("0192:{rest}"));
    }
});

fn check(s: &str) {
    for allow_synthetic in [false, true] {
        let parsed = PersonNumber::parse(s, allow_synthetic);
        let expected = reference_person(s, allow_synthetic);
        assert_eq!(
            parsed.is_ok(),
            expected,
            "PersonNumber::parse({s:?}, {allow_synthetic}) = {parsed:?}"
        );
        match parsed {
            Ok(p) => {
                assert_eq!(p.expose(), s);
                let debug = format!("{p:?}");
                assert!(
                    !debug.bytes().any(|b| b.is_ascii_digit()),
                    "Debug shows digits: {debug}"
                );
            }
            Err(IdError::PersonSynthetic) => assert!(!allow_synthetic),
            Err(IdError::PersonLength | IdError::PersonControlDigits | IdError::PersonDate) => {}
            Err(e) => panic!("person number error of the wrong kind: {e:?}"),
        }
    }
    assert!(
        PersonNumber::parse(s, false).is_err() || PersonNumber::parse(s, true).is_ok(),
        "accepted without synthetic numbers but refused with them"
    );

    let org = OrgNumber::parse(s);
    assert_eq!(
        org.is_ok(),
        reference_org(s),
        "OrgNumber::parse({s:?}) = {org:?}"
    );
    if let Ok(o) = &org {
        assert_eq!(o.as_str(), s);
        assert_eq!(o.to_string(), s);
        assert_eq!(o.iso6523(), format!("0192:{s}"));
        assert_eq!(OrgNumber::parse_iso6523(&o.iso6523()).as_ref(), Ok(o));
    }
    let iso = OrgNumber::parse_iso6523(s);
    let iso_expected = s.strip_prefix("0192:").is_some_and(reference_org);
    assert_eq!(iso.is_ok(), iso_expected, "parse_iso6523({s:?}) = {iso:?}");
    if let Ok(o) = iso {
        assert_eq!(o.iso6523(), s);
    }
}

fn ascii_digits(s: &str, n: usize) -> Option<Vec<u32>> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.bytes().map(|b| u32::from(b - b'0')).collect())
}

/// 11 - (weighted sum mod 11), where 11 means 0 and 10 means "no such number".
fn control(digits: &[u32], weights: &[u32]) -> Option<u32> {
    let sum: u32 = digits.iter().zip(weights).map(|(d, w)| d * w).sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        c => Some(c),
    }
}

fn reference_org(s: &str) -> bool {
    let Some(d) = ascii_digits(s, 9) else {
        return false;
    };
    control(&d[..8], &[3, 2, 7, 6, 5, 4, 3, 2]) == Some(d[8])
}

fn reference_person(s: &str, allow_synthetic: bool) -> bool {
    let Some(d) = ascii_digits(s, 11) else {
        return false;
    };
    if control(&d[..9], &[3, 7, 6, 1, 8, 9, 4, 5, 2]) != Some(d[9])
        || control(&d[..10], &[5, 4, 3, 2, 7, 6, 5, 4, 3, 2]) != Some(d[10])
    {
        return false;
    }
    let (mut day, mut month) = (d[0] * 10 + d[1], d[2] * 10 + d[3]);
    let yy = d[4] * 10 + d[5];
    let individual = d[6] * 100 + d[7] * 10 + d[8];
    if (41..=71).contains(&day) {
        day -= 40; // D-nummer
    }
    let synthetic = month > 40;
    if synthetic && !allow_synthetic {
        return false;
    }
    if month > 80 {
        month -= 80; // Tenor
    } else if month > 40 {
        month -= 40; // NAV / Skatteetaten test numbers
    }
    let century = match (individual, yy) {
        (0..=499, _) => 1900,
        (500..=749, 54..=99) => 1800,
        (500..=999, 0..=39) => 2000,
        (900..=999, 40..=99) => 1900,
        _ => return false,
    };
    let year = century + yy;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day)
}
