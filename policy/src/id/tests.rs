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
