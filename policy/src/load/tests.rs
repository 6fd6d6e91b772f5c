#![allow(clippy::unwrap_used)]

use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::model::{DatasetRef, FieldMask, LegalBasis, RateLimit, SubjectLocation};

const DEMO: &str = include_str!("../../../demo/world/policy.toml");

/// A small valid policy that the cases below add to.
const BASE: &str = r#"
[[organisation]]
org = "921429002"
name = "K429 kommune"

[[organisation]]
org = "983440002"
name = "NAV (demo)"

[[organisation]]
org = "999000428"
name = "Omsorgsapp AS"

[[purpose]]
id = "p1"
title = { nb = "Formål", en = "Purpose" }
description = { nb = "Et formål.", en = "A purpose." }

[[purpose]]
id = "p2"
title = { nb = "Formål to", en = "Purpose two" }
description = { nb = "Et annet formål.", en = "Another purpose." }

[[provider]]
id = "nav"
org = "983440002"

[[dataset]]
provider = "nav"
id = "inntekt"
title = { nb = "Inntekt", en = "Income" }
description = { nb = "Inntekt.", en = "Income." }
basis = "consent"
scope = "nav:inntekt.read"
subject = { header = "Nav-Personident" }
  [[dataset.purpose]]
  id = "p1"
"#;

/// Parses `BASE` followed by `case` and compares the errors with the
/// expectations written into the case itself: a line ending in
/// `#! some words` expects an error on that line whose message contains
/// "some words" (several `#!` on one line expect several errors). A case
/// without `#!` must load.
fn check(case: &str) {
    let text = format!("{BASE}{case}");
    let expected: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .flat_map(|(i, l)| l.split("#!").skip(1).map(move |m| (i + 1, m.trim())))
        .collect();
    let got = match parse_policy("policy.toml", &text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    };
    let shown = got
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        got.len(),
        expected.len(),
        "expected {expected:?}, got:\n{shown}\nin:\n{text}"
    );
    for (e, (line, words)) in got.iter().zip(&expected) {
        assert_eq!(e.file, "policy.toml");
        assert!(
            e.line == *line && e.message.contains(words),
            "expected line {line} with {words:?}, got:\n{shown}"
        );
    }
}

#[test]
fn base_loads() {
    check("");
}

#[test]
fn toml_errors_have_their_line() {
    check("[[consumer] #! invalid");
    check("[[organisation]]\norg = \"921429002\" \"x\" #! expected newline");
    check("[[organisation]]\norg = 921429002 #! invalid type: integer `921429002`, expected a string\nname = \"x\"");
    check("\n[[consumer]]\norg = \"983440002\"\ncolour = \"blue\" #! unknown field `colour`");
    check("[[dataset]] #! missing field `basis`\nprovider = \"nav\"\nid = \"x\"\ntitle = { nb = \"X\", en = \"X\" }\ndescription = { nb = \"X\", en = \"X\" }\nscope = \"s\"");
    check("[[dataset]]\nprovider = \"nav\"\nid = \"x\"\ntitle = { nb = \"X\", en = \"X\" }\ndescription = { nb = \"X\", en = \"X\" }\nbasis = \"maybe\" #! unknown variant `maybe`");
    check("[[purpose]]\nid = \"p3\"\ntitle = { nb = \"X\", en = \"X\", de = \"X\" } #! unknown field `de`\ndescription = { nb = \"X\", en = \"X\" }");
    check("unknown = 1 #! unknown field `unknown`");
}

#[test]
fn organisations() {
    check(
        r#"
[[organisation]]
org = "921429003" #! not a valid organisation number (the organisation number's control digit is wrong)
name = "Feil"

[[organisation]]
org = "12345678" #! not a valid organisation number (an organisation number has 9 digits)
name = "Kort"

[[organisation]]
org = "921429002" #! organisation 921429002 is listed twice (first on line 3)
name = "K429 igjen"

[[organisation]]
org = "971000007"
name = " " #! empty
"#,
    );
}

#[test]
fn purposes() {
    check(
        r#"
[[purpose]]
id = "Omsorg" #! purpose id "Omsorg" may hold only lowercase letters
title = { nb = "X", en = "X" }
description = { nb = "X", en = "X" }

[[purpose]]
id = "p1" #! purpose "p1" is defined twice (first on line 15)
title = { nb = "X", en = "X" }
description = { nb = "X", en = "X" }

[[purpose]]
id = "p3"
title = { nb = "Tittel", en = "" } #! purpose p3 has an empty English (en) title
description = { nb = "", en = "" } #! empty bokmål (nb) description #! empty English (en) description
"#,
    );
}

#[test]
fn providers() {
    check(
        r#"
[[provider]]
id = "helse norge" #! provider id "helse norge" may hold only
org = "983440002"

[[provider]]
id = "nav" #! provider "nav" is defined twice (first on line 25)
org = "983440002"

[[provider]]
id = "snoop"
org = "971000007" #! provider snoop names organisation 971000007, which no [[organisation]] lists

[[provider]]
id = "feil"
org = "97100000X" #! provider feil names organisation "97100000X", which is not a valid organisation number
"#,
    );
}

/// A dataset with every required key, `extra` added at the end.
fn dataset(id: &str, extra: &str) -> String {
    format!(
        r#"
[[dataset]]
provider = "nav"
id = "{id}"
title = {{ nb = "X", en = "X" }}
description = {{ nb = "X", en = "X" }}
{extra}
"#
    )
}

#[test]
fn datasets_references_and_ids() {
    check(
        r#"
[[dataset]]
provider = "helsenorge" #! dataset helsenorge/x names provider "helsenorge", which no [[provider]] defines
id = "x"
title = { nb = "X", en = "X" }
description = { nb = "X", en = "X" }
basis = "statutory"
legal_ref = "Lov"
scope = "s"
subject = { header = "H" }
  [[dataset.purpose]]
  id = "p1"

[[dataset]]
provider = "nav"
id = "inntekt" #! dataset nav/inntekt is defined twice (first on line 30)
title = { nb = "X", en = "X" }
description = { nb = "X", en = "X" }
basis = "consent"
scope = "s"
subject = { header = "H" }
  [[dataset.purpose]]
  id = "p1"

[[dataset]]
provider = "nav"
id = "Skatt" #! dataset id "Skatt" may hold only
title = { nb = "X", en = "X" }
description = { nb = "X", en = "X" }
basis = "consent"
scope = "s"
subject = { header = "H" }
  [[dataset.purpose]]
  id = "x" #! dataset nav/Skatt names purpose "x", which no [[purpose]] defines
  [[dataset.purpose]]
  id = "p1"
  [[dataset.purpose]]
  id = "p1" #! dataset nav/Skatt lists purpose "p1" twice
"#,
    );
}

#[test]
fn dataset_rules() {
    // Each case: the keys after the common ones, with their expected errors.
    let purpose = "  [[dataset.purpose]]\n  id = \"p1\"";
    for extra in [
        // Statutory without a law.
        format!("basis = \"statutory\" #! is statutory but has no legal_ref\nscope = \"s\"\nsubject = {{ header = \"H\" }}\n{purpose}"),
        format!("basis = \"statutory\"\nlegal_ref = \" \" #! empty legal_ref\nscope = \"s\"\nsubject = {{ header = \"H\" }}\n{purpose}"),
        // Personal data needs a subject; a subject needs personal data.
        format!("basis = \"consent\"\nscope = \"s\"\npersonal_data = true #! holds personal data but names no subject\n{purpose}"),
        format!("basis = \"statutory\"\nlegal_ref = \"L\"\nscope = \"s\"\npersonal_data = false\nsubject = {{ query = \"q\" }} #! has personal_data = false but names a subject\n{purpose}"),
        format!("basis = \"consent\" #! only a person can consent\nscope = \"s\"\npersonal_data = false\n{purpose}"),
        // Subject locations.
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"Nav Personident\" }} #! not a valid HTTP header name\n{purpose}"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"\" }} #! not a valid HTTP header name\n{purpose}"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ query = \"a=b\" }} #! has subject query \"a=b\", which is empty or holds\n{purpose}"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ json_body = \"person/id\" }} #! is not a JSON pointer\n{purpose}"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ json_body = \"/person~2id\" }} #! is not a JSON pointer\n{purpose}"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ path_segment = -1 }} #! has subject path_segment -1, which is negative\n{purpose}"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ cookie = \"x\" }} #! unknown variant `cookie`\n{purpose}"),
        // Scopes.
        format!("basis = \"consent\"\nscope = \"nav inntekt\" #! printable ASCII without spaces\nsubject = {{ header = \"H\" }}\n{purpose}"),
        format!("basis = \"consent\"\nscope = \"bru:audit\" #! reserved for Bru's own API\nsubject = {{ header = \"H\" }}\n{purpose}"),
        // Consent days.
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"H\" }}\nmax_consent_days = 0 #! max_consent_days = 0; it must be between 1 and 3650\n{purpose}"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"H\" }}\nmax_consent_days = 3651 #! between 1 and 3650\n{purpose}"),
        // Masks.
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"H\" }}\n{purpose}\n  minimise = {{ json_fields = [] }} #! empty json_fields list"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"H\" }}\n{purpose}\n  minimise = {{ json_fields = [\"aar\", \"\"] }} #! \"\" is not a valid entry of json_fields"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"H\" }}\n{purpose}\n  minimise = {{ json_fields = [\"/inntekt/sum\"] }} #! \"/inntekt/sum\" is not a valid entry of json_fields: it is not a path from the document's root: it looks like a JSON pointer"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"H\" }}\n{purpose}\n  minimise = {{ json_fields = [\"inntekt..sum\"] }} #! empty member name"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"H\" }}\n{purpose}\n  minimise = {{ json_fields = [\"sum.\"] }} #! empty member name"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"H\" }}\n{purpose}\n  minimise = {{ json_fields = [\"[].aar\"] }} #! `[]` without a member name"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"H\" }}\n{purpose}\n  minimise = {{ json_fields = [\"rader[0].aar\"] }} #! other than as `[]`"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"H\" }}\n{purpose}\n  minimise = {{ json_fields = [\"rader[]x\"] }} #! other than as `[]`"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"H\" }}\n{purpose}\n  minimise = {{ json_fields = [\"aar \"] }} #! whitespace"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"H\" }}\n{purpose}\n  minimise = {{ json_fields = [\"rader[].*\"] }} #! no wildcards"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"H\" }}\n{purpose}\n  minimise = {{ fhir_resource_types = [\"careplan\"] }} #! \"careplan\" is not a valid entry of fhir_resource_types"),
        format!("basis = \"consent\"\nscope = \"s\"\nsubject = {{ header = \"H\" }}\n{purpose}\n  minimise = {{ xml_fields = [\"a\"] }} #! unknown variant `xml_fields`"),
    ] {
        check(&dataset("x", &extra));
    }
    check(
        r#"
[[dataset]]
provider = "nav"
id = "x" #! dataset nav/x holds personal data but lists no [[dataset.purpose]]
title = { nb = "X", en = "X" }
description = { nb = "X", en = "X" }
basis = "consent"
scope = "s"
subject = { header = "H" }
"#,
    );
}

#[test]
fn dataset_options_load() {
    let text = format!(
        "{BASE}{}",
        dataset(
            "open",
            "basis = \"statutory\"\nlegal_ref = \"Lov om åpne data\"\nscope = \"nav:open\"\npersonal_data = false\nmax_consent_days = 3650"
        )
    );
    let policy = parse_policy("p", &text).unwrap();
    let open = policy.dataset("nav", "open").unwrap();
    assert!(!open.personal_data);
    assert_eq!(open.subject, None);
    assert!(open.purposes.is_empty());
    assert_eq!(open.max_consent_days, 3650);
    for (subject, location) in [
        ("{ path_segment = 2 }", SubjectLocation::PathSegment(2)),
        (
            "{ json_body = \"/person/a~1b\" }",
            SubjectLocation::JsonBody("/person/a~1b".into()),
        ),
        (
            "{ query = \"patient\" }",
            SubjectLocation::Query("patient".into()),
        ),
    ] {
        let text = format!(
            "{BASE}{}",
            dataset(
                "y",
                &format!("basis = \"consent\"\nscope = \"s\"\nsubject = {subject}\n  [[dataset.purpose]]\n  id = \"p1\"")
            )
        );
        let policy = parse_policy("p", &text).unwrap();
        let y = policy.dataset("nav", "y").unwrap();
        assert_eq!(y.subject, Some(location));
        assert_eq!(y.max_consent_days, 365);
    }
}

#[test]
fn consumers() {
    check(
        r#"
[[consumer]]
org = "921429002"
suppliers = ["999000428", "971000007", "999000428", "1"] #! supplier 971000007, which no [[organisation]] lists #! lists supplier 999000428 twice #! supplier "1", which is not a valid organisation number
rate_limit = { per_second = 0, burst = 10 } #! rate_limit per_second = 0, burst = 10
  [[consumer.dataset]]
  id = "nav/inntekt"
  purposes = ["p2"] #! may use dataset nav/inntekt for purpose "p2", which the dataset does not allow
  [[consumer.dataset]]
  id = "nav/skatt" #! names dataset nav/skatt, which no [[dataset]] defines
  [[consumer.dataset]]
  id = "inntekt" #! a dataset is written provider/dataset
  [[consumer.dataset]]
  id = "nav/inntekt" #! lists dataset nav/inntekt twice

[[consumer]]
org = "921429002" #! consumer 921429002 is listed twice (first on line 40)

[[consumer]]
org = "971000007" #! a [[consumer]] names organisation 971000007, which no [[organisation]] lists

[[consumer]]
org = "983440002"
rate_limit = { per_second = 1, burst = 5000000000 } #! both must be at least 1
"#,
    );
    check("[[consumer]]\norg = \"983440002\"\nrate_limit = { per_second = 1 } #! missing field `burst`");
}

#[test]
fn audit_suppliers() {
    // Loads: a supplier of the consumer, and the consumer reads the log.
    check(
        r#"
[[consumer]]
org = "921429002"
suppliers = ["999000428"]
audit_reader = true
audit_suppliers = ["999000428"]
"#,
    );
    let text = format!(
        "{BASE}[[consumer]]\norg = \"921429002\"\nsuppliers = [\"999000428\"]\n\
         audit_reader = true\naudit_suppliers = [\"999000428\"]\n"
    );
    let policy = parse_policy("policy.toml", &text).unwrap();
    assert_eq!(
        policy.consumers[0].audit_suppliers,
        [OrgNumber::parse("999000428").unwrap()]
    );
    check(
        r#"
[[consumer]]
org = "921429002"
audit_suppliers = ["999000428"] #! is no audit_reader

[[consumer]]
org = "983440002"
audit_reader = true
audit_suppliers = ["999000428", "1"] #! which is not among its suppliers #! not a valid organisation number
"#,
    );
    check(
        r#"
[[consumer]]
org = "921429002"
suppliers = ["999000428"]
audit_reader = true
audit_suppliers = ["999000428", "999000428"] #! lists audit supplier 999000428 twice
"#,
    );
}

#[test]
fn consumer_loads_with_defaults() {
    let text = format!(
        "{BASE}[[consumer]]\norg = \"983440002\"\n[[consumer.dataset]]\nid = \"nav/inntekt\"\npurposes = [\"p1\"]"
    );
    let policy = parse_policy("p", &text).unwrap();
    let rule = policy
        .consumer(&OrgNumber::parse("983440002").unwrap())
        .unwrap();
    assert!(rule.suppliers.is_empty());
    assert!(!rule.consent_requester && !rule.audit_reader);
    assert!(rule.audit_suppliers.is_empty());
    assert_eq!(rule.rate_limit, None);
    assert_eq!(rule.datasets[0].purposes, ["p1"]);
}

#[test]
fn every_error_is_reported_at_once() {
    let text = r#"
[[organisation]]
org = "000000001"
name = "X"

[[provider]]
id = "nav"
org = "983440002"

[[consumer]]
org = "983440002"
"#;
    let errors = parse_policy("f.toml", text).unwrap_err();
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "f.toml:3: an [[organisation]] has org \"000000001\", which is not a valid organisation number (the organisation number's control digit is wrong)",
            "f.toml:8: provider nav names organisation 983440002, which no [[organisation]] lists",
            "f.toml:11: a [[consumer]] names organisation 983440002, which no [[organisation]] lists",
        ]
    );
}

#[test]
fn empty_policy_loads() {
    let policy = parse_policy("empty.toml", "").unwrap();
    assert!(policy.datasets.is_empty() && policy.consumers.is_empty());
}

#[test]
fn demo_policy_loads() {
    let policy = parse_policy("demo/world/policy.toml", DEMO).unwrap();
    let org = |s| OrgNumber::parse(s).unwrap();
    assert_eq!(policy.organisations.len(), 6);
    assert_eq!(
        policy.organisation_name(&org("971000007")),
        Some("Snoop AS")
    );
    assert_eq!(
        policy.purposes.keys().collect::<Vec<_>>(),
        [
            "etterforskning",
            "omsorgsbolig-soknad",
            "sosialhjelp-saksbehandling"
        ]
    );
    assert_eq!(policy.providers["helsenorge"].org, org("916542003"));

    let inntekt = policy.dataset("nav", "inntekt").unwrap();
    assert_eq!(inntekt.basis, LegalBasis::Consent);
    assert_eq!(inntekt.scope, "nav:inntekt.read");
    assert_eq!(
        inntekt.subject,
        Some(SubjectLocation::Header("Nav-Personident".into()))
    );
    assert_eq!(
        inntekt.purpose("omsorgsbolig-soknad").unwrap().mask,
        FieldMask::JsonFields(vec!["aar".into(), "sum".into()])
    );
    let hjemme = policy.dataset("helsenorge", "hjemmetjeneste").unwrap();
    assert_eq!(
        hjemme.subject,
        Some(SubjectLocation::Query("patient".into()))
    );
    assert_eq!(
        hjemme.purpose("omsorgsbolig-soknad").unwrap().mask,
        FieldMask::FhirResourceTypes(vec!["CarePlan".into()])
    );
    // SPEC 10: home care allows break-glass.
    assert!(hjemme.blockable && hjemme.break_glass);
    let sosial = policy.dataset("k429", "sosialtjeneste").unwrap();
    assert_eq!(sosial.basis, LegalBasis::Statutory);
    assert!(sosial.legal_ref.is_some());
    assert_eq!(
        sosial.purpose("sosialhjelp-saksbehandling").unwrap().mask,
        FieldMask::None
    );

    let k429 = policy.consumer(&org("921429002")).unwrap();
    assert_eq!(k429.suppliers, [org("999000428")]);
    assert!(k429.consent_requester && k429.audit_reader);
    assert_eq!(
        k429.rate_limit,
        Some(RateLimit {
            per_second: 100,
            burst: 100
        })
    );
    assert_eq!(
        k429.datasets
            .iter()
            .map(|d| d.dataset.to_string())
            .collect::<Vec<_>>(),
        ["nav/inntekt", "helsenorge/hjemmetjeneste"]
    );
    let nav = policy.consumer(&org("983440002")).unwrap();
    assert!(!nav.consent_requester && !nav.audit_reader);
    assert_eq!(nav.rate_limit.unwrap().per_second, 100_000);
    assert_eq!(
        nav.datasets[0].dataset,
        DatasetRef::new("k429", "sosialtjeneste")
    );
    assert_eq!(nav.disclosure_delay_days, None);
    // SPEC 10: the police district's calls reach the citizen 30 days later.
    let police = policy.consumer(&org("974760002")).unwrap();
    assert_eq!(police.disclosure_delay_days, Some(30));
    assert_eq!(police.datasets[0].purposes, ["etterforskning"]);
    assert!(!sosial.blockable && !sosial.break_glass);
    assert_eq!(policy.consumer(&org("971000007")), None);
    assert_eq!(policy.consumer(&org("999000428")), None);
}

#[test]
fn load_policy_reads_the_file_or_says_why_not() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy = load_policy(&dir.join("../demo/world/policy.toml")).unwrap();
    assert_eq!(policy.datasets.len(), 3);

    let errors = load_policy(&dir.join("no-such-policy.toml")).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 0);
    assert!(errors[0].message.starts_with("cannot read"), "{errors:?}");
}

#[test]
fn line_index() {
    let lines = LineIndex::new("a\nbc\n\nd");
    let got: Vec<usize> = (0..8).map(|i| lines.line(i)).collect();
    assert_eq!(got, [1, 1, 2, 2, 2, 3, 4, 4]);
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        let _ = parse_policy("f", &text);
    }

    #[test]
    fn parse_never_panics_on_damaged_demo_policy(
        cut in 0..DEMO.len(),
        len in 0usize..200,
        insert in "[\\[\\]={}\"a-z0-9 \\n#,.-]{0,20}",
    ) {
        // Cut a piece out at a char boundary and put something else there.
        let start = (0..=cut).rev().find(|i| DEMO.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + len).min(DEMO.len());
        let end = (end..=DEMO.len()).find(|i| DEMO.is_char_boundary(*i)).unwrap_or(DEMO.len());
        let text = format!("{}{insert}{}", &DEMO[..start], &DEMO[end..]);
        if let Err(errors) = parse_policy("f", &text) {
            prop_assert!(!errors.is_empty());
            let lines = text.lines().count().max(1);
            for e in errors {
                prop_assert!(e.line >= 1 && e.line <= lines + 1, "{e}");
            }
        }
    }
}

// ---- found by fuzzing (fuzz/, docs/FUZZING.md) -----------------------------

#[test]
fn fuzz_every_error_is_one_non_empty_line() {
    // A control character in a comment: toml's error has no message at all.
    let errors = parse_policy("p.toml", "# K\u{e}\u{0}429\n").unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 1);
    assert_eq!(errors[0].message, "not valid TOML at character '\\u{e}'");

    // A value holding a line break (the TOML escape `\n`) quoted in messages.
    let text = "[[provider]]\nid = \"x\\ny\"\norg = \"921429002\"\n";
    let errors = parse_policy("p.toml", text).unwrap_err();
    assert!(!errors.is_empty());
    for e in &errors {
        assert!(!e.message.contains(['\n', '\r']), "{e}");
        assert!(e.message.contains(r"x\ny"), "{e}");
    }
}

#[test]
fn json_mask_paths_parse_into_steps_from_the_root() {
    use crate::model::{JsonPath, PathStep};
    let m = |s: &str| PathStep::Member(s.into());
    assert_eq!("aar".parse::<JsonPath>(), Ok(JsonPath(vec![m("aar")])));
    assert_eq!(
        "inntekt.sum".parse::<JsonPath>(),
        Ok(JsonPath(vec![m("inntekt"), m("sum")]))
    );
    assert_eq!(
        "inntekter[].sum".parse::<JsonPath>(),
        Ok(JsonPath(vec![m("inntekter"), PathStep::Each, m("sum")]))
    );
    assert_eq!(
        "tabell[][].verdi".parse::<JsonPath>(),
        Ok(JsonPath(vec![
            m("tabell"),
            PathStep::Each,
            PathStep::Each,
            m("verdi")
        ]))
    );
    // Names are any text but the path's own syntax.
    assert_eq!(
        "ø-beløp_2025:x".parse::<JsonPath>(),
        Ok(JsonPath(vec![m("ø-beløp_2025:x")]))
    );
}
