#![allow(clippy::unwrap_used)]
//! `altinn_resource`, `altinn_one_time` and `metadata_filter` (SPEC 9.1).

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

fn dataset(basis: &str, extra: &str, purpose_extra: &str) -> String {
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
  {purpose_extra}
"#
    )
}

fn errors(text: &str) -> Vec<String> {
    match parse_policy("p", text) {
        Ok(_) => Vec::new(),
        Err(e) => e.into_iter().map(|e| e.message).collect(),
    }
}

#[test]
fn altinn_fields_load() {
    let text = dataset(
        "consent",
        "altinn_resource = \"nav-inntekt\"\naltinn_one_time = true",
        "metadata_filter = { inntektsaar = \"aar\" }",
    );
    let policy = parse_policy("p", &text).unwrap();
    let d = policy.dataset("nav", "inntekt").unwrap();
    assert_eq!(
        d.altinn,
        Some(AltinnResource {
            id: "nav-inntekt".into(),
            one_time: true
        })
    );
    assert_eq!(
        d.purposes[0].metadata_filter,
        vec![("inntektsaar".to_owned(), "aar".to_owned())]
    );
    // Without the keys: no Altinn resource, no filter.
    let policy = parse_policy("p", &dataset("consent", "", "")).unwrap();
    let d = policy.dataset("nav", "inntekt").unwrap();
    assert_eq!(d.altinn, None);
    assert!(d.purposes[0].metadata_filter.is_empty());
}

#[test]
fn altinn_field_errors() {
    for (basis, extra, purpose_extra, expected) in [
        (
            "statutory",
            "altinn_resource = \"nav-inntekt\"",
            "",
            "has altinn_resource but is not consent-based",
        ),
        (
            "consent",
            "altinn_resource = \"nav inntekt\"",
            "",
            "a resource id is letters",
        ),
        (
            "consent",
            "altinn_resource = \"\"",
            "",
            "a resource id is letters",
        ),
        (
            "consent",
            "altinn_one_time = true",
            "",
            "has altinn_one_time but no altinn_resource",
        ),
        (
            "consent",
            "",
            "metadata_filter = { inntektsaar = \"aar\" }",
            "has a metadata_filter but no altinn_resource",
        ),
        (
            "consent",
            "altinn_resource = \"r\"",
            "metadata_filter = { inntektsaar = \"rader.aar\" }",
            "both are names",
        ),
    ] {
        let errs = errors(&dataset(basis, extra, purpose_extra));
        assert!(
            errs.iter().any(|e| e.contains(expected)),
            "{extra} {purpose_extra}: {errs:?}"
        );
    }
}
