#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::Grants;

/// Digdir's Altinn 3 example (Altinn/altinn-studio-docs
/// `…/resource-owner/consent/validate-concent/_index.en.md`, Smartbank in TT02).
fn altinn3_example() -> Value {
    json!([{
        "type": "urn:altinn:consent",
        "id": "93413201-b7e8-4ec3-a899-580fc02c6aeb",
        "from": "urn:altinn:person:identifier-no:25922947409",
        "to": { "authority": "iso6523-actorid-upis", "ID": "0192:991825827" },
        "consented": "2025-07-18T07:57:30.409251+00:00",
        "validTo": "2026-07-18T07:57:15.639509+00:00",
        "consentRights": [{
            "action": ["consent"],
            "resource": [{ "type": "urn:altinn:resource", "value": "samtykke-test-vegard" }],
            "metadata": { "inntektsaar": "2022" }
        }]
    }])
}

#[test]
fn altinn3_token_as_documented() {
    let g = Grants::from_claim(Some(&altinn3_example())).unwrap();
    let c = g.consent.unwrap();
    assert_eq!(c.id, "93413201-b7e8-4ec3-a899-580fc02c6aeb");
    assert_eq!(c.person(), Some("25922947409"));
    assert_eq!(c.to.as_str(), "991825827");
    assert_eq!(c.generation, Generation::Altinn3);
    assert_eq!(c.valid_to.year(), 2026);
    let right = c.right_for("samtykke-test-vegard").unwrap();
    assert_eq!(right.metadata("inntektsaar"), Some("2022"));
    assert_eq!(right.metadata("INNTEKTSAAR"), Some("2022"));
    assert!(c.right_for("another-resource").is_none());
    // Debug shows no person number.
    assert!(!format!("{c:?}").contains("25922947409"));
}

#[test]
fn meta_data_spelling_and_urn_to() {
    // `metaData` as in Altinn's retrieve-token example; `to` as a URN as in
    // Altinn's "what do you get" page.
    let v = json!([{
        "type": "urn:altinn:consent",
        "id": "ECBFF842-199B-45C9-8B58-80ED4D813660",
        "from": "urn:altinn:person:identifier-no:23886799519",
        "to": "urn:altinn:organization:identifier-no:313876144",
        "validTo": "2026-01-20T10:34:34.836+00:00",
        "consentRights": [{
            "action": ["consent"],
            "resource": [{ "type": "urn:altinn:resource", "value": "standard-samtykke-for-dele-data" }],
            "metaData": { "inntektsaar": "2028" }
        }]
    }]);
    let c = Grants::from_claim(Some(&v)).unwrap().consent.unwrap();
    assert_eq!(c.id, "ecbff842-199b-45c9-8b58-80ed4d813660");
    assert_eq!(c.to.as_str(), "313876144");
    assert_eq!(
        c.right_for("standard-samtykke-for-dele-data")
            .unwrap()
            .metadata("inntektsaar"),
        Some("2028")
    );
}

#[test]
fn migrated_token_lower_cased_metadata() {
    // A migrated consent: resource `{org}_{serviceCode}_{serviceEditionCode}`,
    // parameters lower-cased (validate-concent, "Validation of converted consents").
    let v = json!([{
        "type": "urn:altinn:consent",
        "id": "0a7d59f8-8c62-4312-9fb4-62456664c96f",
        "from": "urn:altinn:person:identifier-no:05848998356",
        "to": { "authority": "iso6523-actorid-upis", "ID": "0192:314330897" },
        "consented": "2025-11-14T10:48:55.759557+00:00",
        "validTo": "2028-01-01T14:30:00+00:00",
        "consentRights": [{
            "action": ["consent"],
            "resource": [{ "type": "urn:altinn:resource", "value": "skd_4629_2" }],
            "metadata": { "fraogmed": "2017-06" }
        }]
    }]);
    let c = Grants::from_claim(Some(&v)).unwrap().consent.unwrap();
    assert_eq!(c.generation, Generation::Migrated);
    assert_eq!(
        c.right_for("skd_4629_2").unwrap().metadata("fraOgMed"),
        Some("2017-06")
    );
}

#[test]
fn altinn2_token_claims() {
    // Altinn 2's documented payload (Altinn/docs `…/samtykke/datakilde/bruk-av-token`).
    let v = json!({
        "Services": ["4629_2", "4629_2_inntektsaar=2016", "4630_2", "4630_2_fraOgMed=2017-06", "4630_2_tilOgMed=2017-08"],
        "AuthorizationCode": "c7dbe642-0fc1-4c3b-8959-8a92e3e1f17d",
        "OfferedBy": "11025802170",
        "CoveredBy": "910514458",
        "DelegatedDate": 1503855661,
        "ValidToDate": 1506760200,
        "iss": "altinn.no",
        "exp": 1503860347,
        "nbf": 1503860317
    });
    let c = AltinnConsent::from_altinn2_claims(&v).unwrap();
    assert_eq!(c.generation, Generation::Altinn2);
    assert_eq!(c.person(), Some("11025802170"));
    assert_eq!(c.to.as_str(), "910514458");
    assert_eq!(c.rights.len(), 2);
    let r = c.right_for("skd_4629_2").unwrap();
    assert_eq!(r.metadata("inntektsaar"), Some("2016"));
    let r = c.right_for("skd_4630_2").unwrap();
    assert_eq!(r.metadata("tilogmed"), Some("2017-08"));
    assert!(c.right_for("skd_4631_2").is_none());
    assert!(c.right_for("_4629_2").is_none());
    // The comma form and a string time.
    let v = json!({
        "Services": "4629_2,inntektsaar=2015",
        "AuthorizationCode": "093d0070-22ad-4c49-9d71-f5367cf991b8",
        "OfferedBy": "30050101211",
        "CoveredBy": "910514458",
        "ValidToDate": "2017-06-30 10:30:00"
    });
    let c = AltinnConsent::from_altinn2_claims(&v).unwrap();
    assert_eq!(
        c.right_for("skd_4629_2").unwrap().metadata("inntektsaar"),
        Some("2015")
    );
    assert_eq!(c.valid_to.year(), 2017);
}

#[test]
fn malformed_consents_refused() {
    let base = altinn3_example();
    let variants: Vec<(&str, Value)> = vec![
        ("id", json!("not-a-uuid")),
        ("from", json!("urn:altinn:person:identifier-no:123")),
        ("from", json!("12345678901")),
        (
            "to",
            json!({ "authority": "other", "ID": "0192:991825827" }),
        ),
        ("validTo", json!("tomorrow")),
        ("consentRights", json!("all")),
    ];
    for (member, value) in variants {
        let mut v = base.clone();
        v[0][member] = value;
        assert!(Grants::from_claim(Some(&v)).is_err(), "{member}");
    }
    let mut v = base.clone();
    v.as_array_mut().unwrap().push(base[0].clone());
    assert_eq!(
        Grants::from_claim(Some(&v)),
        Err(FormatError::Repeated(CONSENT_TYPE))
    );
    assert!(Grants::from_claim(Some(&json!({"type": "urn:altinn:consent"}))).is_err());
    // Unknown types pass unread.
    let g = Grants::from_claim(Some(&json!([{"type": "urn:other"}]))).unwrap();
    assert!(g.is_empty());
}

#[test]
fn migrated_ids() {
    assert!(is_migrated_resource("skd_4629_2"));
    assert!(!is_migrated_resource("samtykke-test-vegard"));
    assert!(!is_migrated_resource("4629_2"));
    assert!(!is_migrated_resource("skd_x_2"));
}
