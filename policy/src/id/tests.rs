use super::*;

#[test]
fn demo_people_are_valid_synthetic_numbers() {
    for n in [
        "12884513829",
        "03839113713",
        "24916214088",
        "07831453839",
        "15895013789",
    ] {
        assert!(PersonNumber::parse(n, true).is_ok(), "{n}");
        assert_eq!(
            PersonNumber::parse(n, false),
            Err(IdError::PersonSynthetic),
            "{n}"
        );
    }
}

#[test]
fn demo_organisations_are_valid() {
    for n in [
        "921429002",
        "983440002",
        "916542003",
        "999000428",
        "971000007",
    ] {
        assert!(OrgNumber::parse(n).is_ok(), "{n}");
    }
}

fn check_org(input: &str, expected: Result<(), IdError>) {
    assert_eq!(OrgNumber::parse(input).map(|_| ()), expected, "{input:?}");
}

#[test]
fn organisation_numbers() {
    // Real, published organisation numbers.
    check_org("974760673", Ok(())); // Brønnøysundregistrene
    check_org("889640782", Ok(())); // NAV
    check_org("983887457", Ok(())); // Skatteetaten (Skattedirektoratet)
                                    // Wrong control digit.
    check_org("974760674", Err(IdError::OrgControlDigit));
    check_org("921429003", Err(IdError::OrgControlDigit));
    // Remainder 1 gives control digit 10: no valid number exists.
    check_org("100000130", Err(IdError::OrgControlDigit));
    // Wrong length, letters, spaces, non-ASCII digits.
    check_org("", Err(IdError::OrgLength));
    check_org("92142900", Err(IdError::OrgLength));
    check_org("9214290022", Err(IdError::OrgLength));
    check_org("92142900A", Err(IdError::OrgLength));
    check_org("921 429 002", Err(IdError::OrgLength));
    check_org(" 921429002", Err(IdError::OrgLength));
    check_org("92142900٢", Err(IdError::OrgLength));
}

#[test]
fn iso6523() {
    let org = OrgNumber::parse_iso6523("0192:921429002").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(org.as_str(), "921429002");
    assert_eq!(org.iso6523(), "0192:921429002");
    assert_eq!(org.to_string(), "921429002");
    assert_eq!(
        OrgNumber::parse_iso6523("921429002"),
        Err(IdError::OrgPrefix)
    );
    assert_eq!(
        OrgNumber::parse_iso6523("0088:921429002"),
        Err(IdError::OrgPrefix)
    );
    assert_eq!(
        OrgNumber::parse_iso6523("0192:921429003"),
        Err(IdError::OrgControlDigit)
    );
}

fn check_person(input: &str, allow_synthetic: bool, expected: Result<(), IdError>) {
    assert_eq!(
        PersonNumber::parse(input, allow_synthetic).map(|_| ()),
        expected,
        "{input:?}"
    );
}

#[test]
fn person_numbers() {
    use IdError::*;
    // Valid fødselsnummer and D-nummer (day + 40), control digits computed by hand.
    check_person("01010012356", false, Ok(())); // 1 January 1900
    check_person("29029612410", false, Ok(())); // 29 February 1996, a leap year
    check_person("41010012420", false, Ok(())); // D-nummer for 1 January 1900
    check_person("01010550048", false, Ok(())); // individual 500: 1 January 2005
                                                // Synthetic (month + 40 and month + 80), only where allowed.
    check_person("01410012339", true, Ok(()));
    check_person("01410012339", false, Err(PersonSynthetic));
    check_person("12884513829", false, Err(PersonSynthetic));
    // Wrong control digits.
    check_person("01010012357", false, Err(PersonControlDigits));
    check_person("01010012346", false, Err(PersonControlDigits));
    check_person("12884513828", true, Err(PersonControlDigits));
    // Correct control digits but no such date: 31 February, 29 February in a
    // common year, month 13, day 0, a D-nummer for day 32.
    check_person("31020012369", false, Err(PersonDate));
    check_person("29029712350", false, Err(PersonDate));
    check_person("01130012384", false, Err(PersonDate));
    check_person("01130012384", true, Err(PersonDate));
    check_person("00010012317", false, Err(PersonDate));
    check_person("72010012482", false, Err(PersonDate));
    // An individual number that no century has for that year (500–899 in 1940–1953).
    check_person("01014550050", false, Err(PersonDate));
    check_person("01015050094", false, Err(PersonDate));
    // Wrong length and letters.
    check_person("", false, Err(PersonLength));
    check_person("0101001235", false, Err(PersonLength));
    check_person("010100123567", false, Err(PersonLength));
    check_person("0101001235X", false, Err(PersonLength));
    check_person("010100 1235", false, Err(PersonLength));
}

#[test]
fn person_numbers_do_not_print() {
    let p = PersonNumber::parse("01010012356", false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(format!("{p:?}"), "PersonNumber(***********)");
    assert_eq!(p.expose(), "01010012356");
}

#[test]
fn a_number_and_a_dataset_reference_compare_with_their_text_forms() {
    let org = OrgNumber::parse_iso6523("0192:921429002").unwrap_or_else(|e| panic!("{e}"));
    assert!(org.is_iso6523(&org.iso6523()));
    assert!(!org.is_iso6523("921429002"));
    assert!(!org.is_iso6523("0192:921429003"));
    assert!(!org.is_iso6523("0192:9214290021"));
    let dataset = DatasetRef::new("nav", "inntekt");
    assert!(dataset.is(&dataset.to_string()));
    for other in [
        "nav/inntek",
        "nav/inntekt/x",
        "navinntekt",
        "na/vinntekt",
        "nav//inntekt",
        "",
    ] {
        assert!(!dataset.is(other), "{other}");
    }
}
