#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

const BRU: &str = "https://bru.example/data/helsenorge/hjemmetjeneste";

/// A stand-in for the gateway's sealing: hex, so the tests can say what
/// went into each token. The links carry nothing else of the provider's.
fn tok(target: &str) -> String {
    target.bytes().map(|b| format!("{b:02x}")).collect()
}

fn page(target: &str) -> String {
    format!("{BRU}?bru_page={}", tok(target))
}

fn rewriter(base: &str) -> FhirLinkRewriter {
    FhirLinkRewriter::new(
        &base.parse().unwrap(),
        "hjemmetjeneste",
        BRU,
        Arc::new(|t: &str| Some(tok(t))),
    )
    .unwrap()
}

#[test]
fn a_link_that_cannot_be_sealed_is_removed() {
    let r = FhirLinkRewriter::new(
        &"http://fhir.internal".parse().unwrap(),
        "hjemmetjeneste",
        BRU,
        Arc::new(|_: &str| None),
    )
    .unwrap();
    assert_eq!(
        r.map("http://fhir.internal/hjemmetjeneste?patient=1"),
        Mapped::Unreachable
    );
}

#[test]
fn maps_links_under_the_dataset() {
    let r = rewriter("http://fhir.internal:8080/r4/");
    let check = |url: &str, expected: Mapped| assert_eq!(r.map(url), expected, "{url}");
    check(
        "http://fhir.internal:8080/r4/hjemmetjeneste?patient=1&_page=2",
        Mapped::Rewritten(page("?patient=1&_page=2")),
    );
    check(
        "http://FHIR.internal:8080/r4/hjemmetjeneste/CarePlan/7",
        Mapped::Rewritten(page("/CarePlan/7")),
    );
    check(
        "http://fhir.internal:8080/r4/hjemmetjeneste",
        Mapped::Rewritten(page("")),
    );
    // Outside the dataset on the provider: removed.
    check(
        "http://fhir.internal:8080/r4/other?x=1",
        Mapped::Unreachable,
    );
    check(
        "http://fhir.internal:8080/r4/hjemmetjenesteX",
        Mapped::Unreachable,
    );
    // Other origins are somebody else's business.
    check(
        "http://fhir.internal:8081/r4/hjemmetjeneste",
        Mapped::Foreign,
    );
    check(
        "https://fhir.internal:8080/r4/hjemmetjeneste",
        Mapped::Foreign,
    );
    check("http://terminology.hl7.org/CodeSystem/x", Mapped::Foreign);
    check("not a url at all", Mapped::Foreign);
}

#[test]
fn default_ports_match_explicit_ones() {
    let r = rewriter("https://fhir.example");
    assert_eq!(
        r.map("https://fhir.example:443/hjemmetjeneste?_page=3"),
        Mapped::Rewritten(page("?_page=3"))
    );
}

#[test]
fn rewrites_bundle_links_and_leaves_the_rest() {
    let r = rewriter("http://127.0.0.1:9000");
    let body = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [
            {"relation": "self", "url": "http://127.0.0.1:9000/hjemmetjeneste?patient=1"},
            {"relation": "next", "url": "http://127.0.0.1:9000/hjemmetjeneste?patient=1&_page=2"},
            {"relation": "previous", "url": "http://127.0.0.1:9000/admin/secret"},
            {"relation": "related", "url": "https://hl7.org/fhir"}
        ],
        "entry": [{"fullUrl": "http://127.0.0.1:9000/CarePlan/1", "resource": {"resourceType": "CarePlan"}}]
    });
    let out = r.rewrite(body.to_string().as_bytes()).unwrap().unwrap();
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        out["link"],
        json!([
            {"relation": "self", "url": page("?patient=1")},
            {"relation": "next", "url": page("?patient=1&_page=2")},
            {"relation": "related", "url": "https://hl7.org/fhir"}
        ])
    );
    assert_eq!(out["entry"], body["entry"]);
}

#[test]
fn nothing_to_change_is_none() {
    let r = rewriter("http://127.0.0.1:9000");
    for body in [
        json!({"resourceType": "CarePlan", "link": [{"url": "http://127.0.0.1:9000/hjemmetjeneste"}]}),
        json!({"resourceType": "Bundle"}),
        json!({"resourceType": "Bundle", "link": [{"relation": "self", "url": "https://other/x"}]}),
        json!([1, 2]),
    ] {
        assert_eq!(
            r.rewrite(body.to_string().as_bytes()).unwrap(),
            None,
            "{body}"
        );
    }
}

#[test]
fn removing_every_link_removes_the_array() {
    let r = rewriter("http://127.0.0.1:9000");
    let body = json!({"resourceType": "Bundle", "link": [{"relation": "next", "url": "http://127.0.0.1:9000/x"}]});
    let out: Value =
        serde_json::from_slice(&r.rewrite(body.to_string().as_bytes()).unwrap().unwrap()).unwrap();
    assert_eq!(out, json!({"resourceType": "Bundle"}));
}

#[test]
fn invalid_json_fails_closed() {
    let r = rewriter("http://127.0.0.1:9000");
    assert!(matches!(
        r.rewrite(b"{\"resourceType\": \"Bundle\", "),
        Err(MinimiseError::InvalidJson { .. })
    ));
}

#[test]
fn fhir_content_types() {
    assert!(is_fhir_json("application/fhir+json"));
    assert!(is_fhir_json("application/fhir+json; fhirVersion=4.0"));
    assert!(is_fhir_json("Application/FHIR+JSON;charset=utf-8"));
    assert!(!is_fhir_json("application/json"));
    assert!(!is_fhir_json("application/fhir+xml"));
}
