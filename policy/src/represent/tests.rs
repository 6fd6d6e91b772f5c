#![allow(clippy::unwrap_used)]

use super::*;
use crate::load::parse_policy;

const DEMO: &str = include_str!("../../../demo/world/policy.toml");

fn demo() -> crate::model::Policy {
    parse_policy("policy.toml", DEMO).unwrap()
}

#[test]
fn ages_follow_the_dataset() {
    let p = demo();
    let inntekt = p.dataset("nav", "inntekt").unwrap();
    let hjemme = p.dataset("helsenorge", "hjemmetjeneste").unwrap();
    assert!(!inntekt.is_health());
    assert!(hjemme.is_health());
    assert_eq!(inntekt.parent_until_age(), 18);
    assert_eq!(hjemme.parent_until_age(), 16);
    // Emma at 12: a parent decides both; at 16 only income; at 18 nothing.
    assert!(may_decide(&Relation::Parent { age: 12 }, &[inntekt, hjemme]).is_ok());
    assert!(may_decide(&Relation::Parent { age: 16 }, &[inntekt]).is_ok());
    assert_eq!(
        may_decide(&Relation::Parent { age: 16 }, &[inntekt, hjemme]),
        Err(RepresentationRefusal::OwnVoice {
            dataset: "helsenorge/hjemmetjeneste".into(),
            age: 16
        })
    );
    assert!(may_decide(&Relation::Parent { age: 15 }, &[hjemme]).is_ok());
    assert!(!Relation::Parent { age: 18 }.is_current());
    assert!(Relation::Parent { age: 17 }.is_current());
}

#[test]
fn fullmakt_needs_an_accepted_role() {
    let p = demo();
    let hjemme = p.dataset("helsenorge", "hjemmetjeneste").unwrap();
    let inntekt = p.dataset("nav", "inntekt").unwrap();
    let aisha = Relation::Fullmakt {
        basis: Basis::Guardian,
        roles: vec!["helse".into(), "velferd".into()],
    };
    assert!(may_decide(&aisha, &[hjemme, inntekt]).is_ok());
    let tax_only = Relation::Fullmakt {
        basis: Basis::Fullmakt,
        roles: vec!["skatt".into()],
    };
    assert!(matches!(
        may_decide(&tax_only, &[hjemme]),
        Err(RepresentationRefusal::RoleMissing { .. })
    ));
    // A statutory dataset without rules accepts no role.
    let sosial = p.dataset("k429", "sosialtjeneste").unwrap();
    assert!(may_decide(&aisha, &[sosial]).is_err());
}

#[test]
fn guardianship_can_be_refused() {
    let text = DEMO.replace(
        r#"representation = { fullmakt_roles = ["helse"] }"#,
        r#"representation = { fullmakt_roles = ["helse"], guardianship = false, parent_until_age = 14 }"#,
    );
    let p = parse_policy("policy.toml", &text).unwrap();
    let hjemme = p.dataset("helsenorge", "hjemmetjeneste").unwrap();
    assert_eq!(hjemme.parent_until_age(), 14);
    let guardian = Relation::Fullmakt {
        basis: Basis::Guardian,
        roles: vec!["helse".into()],
    };
    assert!(matches!(
        may_decide(&guardian, &[hjemme]),
        Err(RepresentationRefusal::NoGuardianship { .. })
    ));
    let holder = Relation::Fullmakt {
        basis: Basis::Fullmakt,
        roles: vec!["helse".into()],
    };
    assert!(may_decide(&holder, &[hjemme]).is_ok());
    assert!(explain(hjemme).iter().any(|l| l.contains("under 14")));
}

#[test]
fn policy_errors_name_the_line() {
    for (bad, words) in [
        ("parent_until_age = 19", "between 1 and 18"),
        ("parent_until_age = 0", "between 1 and 18"),
        (r#"fullmakt_roles = ["a b"]"#, "a role is a code"),
        (r#"fullmakt_roles = ["x", "x"]"#, "twice"),
    ] {
        let text = DEMO.replace(
            r#"representation = { fullmakt_roles = ["helse"] }"#,
            &format!("representation = {{ {bad} }}"),
        );
        let errors = parse_policy("policy.toml", &text).unwrap_err();
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        let line = DEMO
            .lines()
            .position(|l| l.starts_with("representation = { fullmakt_roles = [\"helse\"]"))
            .unwrap()
            + 1;
        assert_eq!(errors[0].line, line, "{bad}");
        assert!(
            errors[0].to_string().contains(words),
            "{bad}: {}",
            errors[0]
        );
    }
}

#[test]
fn ages_in_whole_years() {
    use time::macros::date;
    assert_eq!(age_on(date!(2014 - 03 - 07), date!(2026 - 03 - 06)), 11);
    assert_eq!(age_on(date!(2014 - 03 - 07), date!(2026 - 03 - 07)), 12);
    assert_eq!(age_on(date!(2030 - 01 - 01), date!(2026 - 03 - 07)), 0);
}
