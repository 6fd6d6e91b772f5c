#![allow(clippy::unwrap_used)]
//! `blockable` and `break_glass` (SPEC 10).

use super::*;

const HEAD: &str = r#"
[[organisation]]
org = "983440002"
name = "NAV (demo)"

[[purpose]]
id = "p1"
title = { nb = "Formål", en = "Purpose" }
description = { nb = "Et formål.", en = "A purpose." }

[[provider]]
id = "nav"
org = "983440002"
"#;

fn dataset(basis: &str, extra: &str) -> String {
    format!(
        r#"{HEAD}
[[dataset]]
provider = "nav"
id = "inntekt"
title = {{ nb = "Inntekt", en = "Income" }}
description = {{ nb = "Inntekt.", en = "Income." }}
basis = "{basis}"
legal_ref = "L"
scope = "nav:inntekt.read"
subject = {{ header = "Nav-Personident" }}
{extra}
  [[dataset.purpose]]
  id = "p1"
"#
    )
}

fn loaded(basis: &str, extra: &str) -> (bool, bool) {
    let policy = parse_policy("p", &dataset(basis, extra)).unwrap();
    let d = policy.dataset("nav", "inntekt").unwrap();
    (d.blockable, d.break_glass)
}

#[test]
fn consent_datasets_are_blockable_by_default_statutory_ones_only_when_set() {
    assert_eq!(loaded("consent", ""), (true, false));
    assert_eq!(loaded("statutory", ""), (false, false));
    assert_eq!(loaded("statutory", "blockable = true"), (true, false));
    assert_eq!(loaded("consent", "blockable = false"), (false, false));
    assert_eq!(loaded("consent", "break_glass = true"), (true, true));
    assert_eq!(
        loaded("statutory", "blockable = true\nbreak_glass = true"),
        (true, true)
    );
}

#[test]
fn break_glass_needs_a_blockable_dataset() {
    for (basis, extra) in [
        ("statutory", "break_glass = true"),
        ("consent", "blockable = false\nbreak_glass = true"),
    ] {
        let errors: Vec<String> = match parse_policy("p", &dataset(basis, extra)) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.message).collect(),
        };
        assert_eq!(
            errors,
            ["dataset nav/inntekt has break_glass but is not blockable"],
            "{basis} {extra}"
        );
    }
}

fn consumer_rule(extra: &str) -> String {
    format!(
        "{}\n[[consumer]]\norg = \"983440002\"\n{extra}\n  [[consumer.dataset]]\n  id = \"nav/inntekt\"\n",
        dataset("statutory", "")
    )
}

#[test]
fn disclosure_delay_days_is_read_from_the_consumer_rule() {
    let delay = |extra: &str| {
        let policy = parse_policy("p", &consumer_rule(extra)).unwrap();
        policy.consumers[0].disclosure_delay_days
    };
    assert_eq!(delay(""), None);
    assert_eq!(delay("disclosure_delay_days = 30"), Some(30));
    assert_eq!(delay("disclosure_delay_days = 3650"), Some(3650));
}

#[test]
fn disclosure_delay_days_must_be_one_to_ten_years_of_days() {
    for days in ["0", "-1", "3651", "4294967296"] {
        let errors = parse_policy(
            "p",
            &consumer_rule(&format!("disclosure_delay_days = {days}")),
        )
        .unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(
            shown[0].contains(&format!(
                "consumer 983440002 has disclosure_delay_days = {days}; it must be 1 to 3650"
            )),
            "{shown:?}"
        );
    }
}
