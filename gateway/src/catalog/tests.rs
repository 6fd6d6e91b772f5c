#![allow(clippy::unwrap_used)]

use super::*;

/// DCAT-AP-NO's mandatory properties (sh:minCount 1 in the DCAT-AP-NO 3
/// SHACL shapes, dcatapno3-core-shapes.ttl), per class.
pub(crate) const CATALOG_REQUIRED: [&str; 4] = [
    "dct:title",
    "dct:description",
    "dct:publisher",
    "dcat:contactPoint",
];
pub(crate) const DATASET_REQUIRED: [&str; 5] = [
    "dct:title",
    "dct:description",
    "dct:publisher",
    "dcat:contactPoint",
    "dcat:theme",
];
pub(crate) const DATA_SERVICE_REQUIRED: [&str; 4] = [
    "dcat:endpointURL",
    "dcat:contactPoint",
    "dct:title",
    "dct:publisher",
];
pub(crate) const DISTRIBUTION_REQUIRED: [&str; 1] = ["dcat:accessURL"];

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty() && a.iter().all(present),
        Value::Object(o) => !o.is_empty() && o.values().all(present),
        _ => true,
    }
}

/// Every missing mandatory property, as `what: property`.
fn missing(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    need(&mut out, "catalog", doc, &CATALOG_REQUIRED);
    check_agent_and_contact(&mut out, "catalog", doc);
    for d in doc["dcat:dataset"].as_array().unwrap() {
        let id = d["dct:identifier"].as_str().unwrap_or("?").to_owned();
        need(&mut out, &format!("dataset {id}"), d, &DATASET_REQUIRED);
        check_agent_and_contact(&mut out, &id, d);
        let distributions = d["dcat:distribution"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if distributions.is_empty() {
            out.push(format!("dataset {id}: dcat:distribution"));
        }
        for dist in &distributions {
            need(
                &mut out,
                &format!("distribution of {id}"),
                dist,
                &DISTRIBUTION_REQUIRED,
            );
        }
    }
    for s in doc["dcat:service"].as_array().unwrap() {
        need(
            &mut out,
            &format!("service {}", s["@id"]),
            s,
            &DATA_SERVICE_REQUIRED,
        );
        check_agent_and_contact(&mut out, &format!("service {}", s["@id"]), s);
    }
    out
}

fn need(out: &mut Vec<String>, what: &str, node: &Value, props: &[&str]) {
    for p in props {
        if !node.get(*p).is_some_and(present) {
            out.push(format!("{what}: {p}"));
        }
    }
}

/// Agent: foaf:name; contact point (vcard:Kind): vcard:fn and an e-mail or a URL.
fn check_agent_and_contact(out: &mut Vec<String>, what: &str, node: &Value) {
    if !node["dct:publisher"].get("foaf:name").is_some_and(present) {
        out.push(format!("{what}: publisher foaf:name"));
    }
    let contact = &node["dcat:contactPoint"];
    if !contact.get("vcard:fn").is_some_and(present) {
        out.push(format!("{what}: contact vcard:fn"));
    }
    if !(contact.get("vcard:hasEmail").is_some_and(present)
        || contact.get("vcard:hasURL").is_some_and(present))
    {
        out.push(format!("{what}: contact vcard:hasEmail or vcard:hasURL"));
    }
}

fn demo_policy() -> Policy {
    policy::parse_policy("policy.toml", demo::DEMO_POLICY).unwrap()
}

fn default_catalog() -> CatalogConfig {
    CatalogConfig {
        default_themes: vec!["GOVE".into()],
        ..CatalogConfig::default()
    }
}

#[test]
fn the_demo_catalog_has_every_mandatory_property() {
    let policy = demo_policy();
    for catalog in [
        default_catalog(),
        CatalogConfig {
            publisher: Some(OrgNumber::parse("921429002").unwrap()),
            contact_email: Some("datadeling@k429.example".into()),
            ..default_catalog()
        },
    ] {
        let doc = document(&policy, &catalog, "https://bru.example/");
        assert_eq!(missing(&doc), Vec::<String>::new(), "{doc:#}");
        assert_eq!(
            doc["dcat:dataset"].as_array().unwrap().len(),
            policy.datasets.len()
        );
        assert_eq!(
            doc["dcat:service"].as_array().unwrap().len(),
            policy.datasets.len()
        );
    }
}

#[test]
fn the_checker_finds_what_is_missing() {
    let mut doc = document(&demo_policy(), &default_catalog(), "https://bru.example");
    doc["dcat:dataset"][0]
        .as_object_mut()
        .unwrap()
        .remove("dcat:theme");
    doc["dcat:service"][1]["dcat:endpointURL"] = Value::Null;
    doc["dcat:contactPoint"]
        .as_object_mut()
        .unwrap()
        .remove("vcard:hasURL");
    let found = missing(&doc);
    assert_eq!(found.len(), 3, "{found:?}");
}

#[test]
fn datasets_say_what_policy_says() {
    let doc = document(&demo_policy(), &default_catalog(), "https://bru.example");
    let find = |id: &str| {
        doc["dcat:dataset"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["dct:identifier"] == id)
            .cloned()
            .unwrap()
    };
    let inntekt = find("nav/inntekt");
    assert_eq!(
        inntekt["dct:title"],
        json!({"nb": "Inntekt", "en": "Income"})
    );
    assert_eq!(inntekt["dct:publisher"]["dct:identifier"], "983440002");
    assert_eq!(inntekt["dct:publisher"]["foaf:name"]["nb"], "NAV (demo)");
    assert_eq!(inntekt["bru:consentRequired"], true);
    assert_eq!(inntekt["bru:scope"], "nav:inntekt.read");
    assert_eq!(
        inntekt["dct:accessRights"]["@id"],
        format!("{ACCESS_RIGHT}NON_PUBLIC")
    );
    assert_eq!(
        inntekt["dcat:distribution"][0]["dcat:accessURL"]["@id"],
        "https://bru.example/data/nav/inntekt"
    );
    let purpose = &inntekt["bru:purposes"][0];
    assert_eq!(purpose["dct:identifier"], "omsorgsbolig-soknad");
    assert_eq!(
        purpose["dct:title"]["en"],
        "Application for sheltered housing"
    );
    assert_eq!(purpose["bru:fields"]["bru:names"], json!(["aar", "sum"]));

    let sosial = find("k429/sosialtjeneste");
    assert_eq!(sosial["bru:consentRequired"], false);
    assert_eq!(sosial["bru:legalBasis"], "statutory");
    assert!(sosial["cpsvno:hasLegalResource"][0]["dct:identifier"]
        .as_str()
        .unwrap()
        .starts_with("Sosialtjenesteloven"));
    assert_eq!(sosial["bru:purposes"][0]["bru:fields"]["bru:kind"], "all");

    let hjemme = find("helsenorge/hjemmetjeneste");
    assert_eq!(
        hjemme["bru:purposes"][0]["bru:fields"]["bru:names"],
        json!(["CarePlan"])
    );
}

#[test]
fn themes_come_from_the_config() {
    let mut catalog = default_catalog();
    catalog.themes.insert(
        "helsenorge/hjemmetjeneste".into(),
        vec!["HEAL".into(), "SOCI".into()],
    );
    let doc = document(&demo_policy(), &catalog, "https://bru.example");
    for d in doc["dcat:dataset"].as_array().unwrap() {
        let themes: Vec<&str> = d["dcat:theme"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["@id"].as_str().unwrap())
            .collect();
        if d["dct:identifier"] == "helsenorge/hjemmetjeneste" {
            assert_eq!(
                themes,
                [format!("{DATA_THEME}HEAL"), format!("{DATA_THEME}SOCI")]
            );
        } else {
            assert_eq!(themes, [format!("{DATA_THEME}GOVE")]);
        }
    }
}

/// The schema in the OpenAPI document (`CatalogDocument`) fits the catalog
/// Bru writes: every member it names is there, with its type.
#[test]
fn the_catalog_fits_its_openapi_schema() {
    for catalog in [default_catalog(), CatalogConfig::default()] {
        let doc = document(&demo_policy(), &catalog, "https://bru.example");
        let parsed: CatalogDocument = serde_json::from_value(doc).unwrap();
        assert_eq!(parsed.datasets.len(), demo_policy().datasets.len());
    }
}
