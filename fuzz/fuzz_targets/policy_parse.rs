//! `policy::parse_policy` on arbitrary text.
//!
//! Checks: never panics; deterministic; an error list is non-empty, names
//! the file, points at a line that exists (0 only for "no place"), is sorted
//! by line, and every message is one non-empty line (`bru check` prints
//! `file:line: message`); an accepted policy is referentially whole (every
//! provider, dataset, purpose, consumer and supplier it names is defined)
//! and holds only values the validator promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy::{FieldMask, LegalBasis, Policy};

const FILE: &str = "fuzz/policy.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let result = policy::parse_policy(FILE, text);
    assert_eq!(
        result,
        policy::parse_policy(FILE, text),
        "not deterministic"
    );
    match result {
        Ok(p) => check_policy(&p),
        Err(errors) => {
            let lines = text.split('\n').count();
            assert!(!errors.is_empty(), "Err with no errors");
            for e in &errors {
                assert_eq!(e.file, FILE);
                assert!(e.line <= lines, "line {} of {lines}: {e}", e.line);
                assert!(!e.message.trim().is_empty(), "empty message");
                assert!(
                    !e.message.contains(['\n', '\r']),
                    "message spans lines: {:?}",
                    e.message
                );
            }
            assert!(
                errors.windows(2).all(|w| w[0].line <= w[1].line),
                "errors not sorted by line"
            );
        }
    }
});

fn check_policy(p: &Policy) {
    for (org, o) in &p.organisations {
        assert_eq!(&o.org, org);
    }
    for (id, purpose) in &p.purposes {
        assert_eq!(&purpose.id, id);
        assert!(is_id(id));
    }
    for (id, provider) in &p.providers {
        assert_eq!(&provider.id, id);
        assert!(is_id(id));
        assert!(p.organisations.contains_key(&provider.org));
    }
    for (id, d) in &p.datasets {
        assert_eq!(&d.id, id);
        assert!(is_id(&id.provider) && is_id(&id.dataset));
        assert!(p.providers.contains_key(&id.provider));
        assert!(!d.scope.is_empty() && d.scope.bytes().all(|b| b.is_ascii_graphic()));
        assert!((1..=3650).contains(&d.max_consent_days));
        if d.basis == LegalBasis::Statutory {
            assert!(d.legal_ref.is_some());
        }
        if d.personal_data {
            assert!(d.subject.is_some() && !d.purposes.is_empty());
        } else {
            assert!(d.subject.is_none() && d.basis != LegalBasis::Consent);
        }
        for (i, dp) in d.purposes.iter().enumerate() {
            assert!(p.purposes.contains_key(&dp.purpose));
            assert!(d.purposes[..i].iter().all(|q| q.purpose != dp.purpose));
            match &dp.mask {
                FieldMask::None => {}
                FieldMask::JsonFields(f) => {
                    // Every entry is a path from the root the minimiser can follow.
                    assert!(!f.is_empty());
                    assert!(f.iter().all(|s| s.parse::<policy::JsonPath>().is_ok()));
                }
                FieldMask::FhirResourceTypes(f) => {
                    assert!(!f.is_empty() && f.iter().all(|s| !s.is_empty()));
                }
            }
        }
    }
    for (i, c) in p.consumers.iter().enumerate() {
        assert!(p.organisations.contains_key(&c.consumer));
        assert!(p.consumers[..i].iter().all(|o| o.consumer != c.consumer));
        for s in &c.suppliers {
            assert!(p.organisations.contains_key(s));
        }
        if let Some(r) = c.rate_limit {
            assert!(r.per_second >= 1 && r.burst >= 1);
        }
        for cd in &c.datasets {
            let d = p
                .datasets
                .get(&cd.dataset)
                .expect("consumer names an unknown dataset");
            for purpose in &cd.purposes {
                assert!(d.purpose(purpose).is_some());
            }
        }
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
