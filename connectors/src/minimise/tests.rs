#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

fn fields(allowed: &[&str]) -> FieldMask {
    FieldMask::JsonFields(allowed.iter().map(|s| s.to_string()).collect())
}

fn fhir(types: &[&str]) -> FieldMask {
    FieldMask::FhirResourceTypes(types.iter().map(|s| s.to_string()).collect())
}

/// Minimises `input` and compares the exact output text (so member order counts).
fn check(mask: &FieldMask, input: &str, expected: &str) {
    let got = minimise(mask, input.as_bytes()).unwrap();
    assert_eq!(
        std::str::from_utf8(&got).unwrap(),
        expected,
        "input: {input}"
    );
}

/// Minimises `input` and compares as JSON values (for FHIR, whose order is serde_json's).
fn check_value(mask: &FieldMask, input: serde_json::Value, expected: serde_json::Value) {
    let got = minimise(mask, input.to_string().as_bytes()).unwrap();
    let got: serde_json::Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(got, expected);
}

#[test]
fn nav_inntekt_keeps_only_aar_and_sum() {
    let body = r#"{
            "person": "12884513829",
            "navn": {"fornavn": "Kari", "etternavn": "Nordmann"},
            "inntekt": [
                {"aar": 2025, "sum": 512000, "arbeidsgivere": [{"orgnr": "921429002", "sum": 1}],
                 "ytelser": [{"type": "dagpenger", "belop": 1000}]},
                {"aar": 2024, "sum": 498000.5, "arbeidsgivere": []}
            ]
        }"#;
    // The employer's `sum` is under `arbeidsgivere`, which no path names.
    check(
        &fields(&["inntekt[].aar", "inntekt[].sum"]),
        body,
        r#"{"inntekt":[{"aar":2025,"sum":512000},{"aar":2024,"sum":498000.5}]}"#,
    );
    // `aar` and `sum` are the root's members only: this document has none.
    check(&fields(&["aar", "sum"]), body, "{}");
}

#[test]
fn the_demo_answer_an_array_of_rows_keeps_aar_and_sum() {
    // SPEC section 8: NAV answers with one row per year; arrays at the root
    // are crossed without `[]`, so `aar` and `sum` mean each row's.
    check(
        &fields(&["aar", "sum"]),
        r#"[{"aar": 2024, "sum": 331100, "arbeidsgivere": [{"orgnr": "974760673", "sum": 331100}],
             "inntektsmottaker": {"personident": "12884513829", "sum": 0}},
            {"aar": 2025, "sum": 283400, "periode": {"aar": 2025}}]"#,
        r#"[{"aar":2024,"sum":331100},{"aar":2025,"sum":283400}]"#,
    );
    check(
        &fields(&["aar"]),
        r#"[[{"aar": 1, "x": 2}], {"y": {"aar": 3}}]"#,
        r#"[[{"aar":1}]]"#,
    );
}

#[test]
fn a_key_nested_under_a_parent_no_path_names_is_removed() {
    check(
        &fields(&["sum"]),
        r#"{"sum": 1, "detaljer": {"sum": 2, "skjult": true}, "rader": [{"sum": 3}], "a": {"b": {"sum": 4}}}"#,
        r#"{"sum":1}"#,
    );
}

#[test]
fn paths_keep_exactly_what_they_name() {
    check(
        &fields(&["person.navn", "inntekter[].sum"]),
        r#"{"person": {"navn": "Kari", "fnr": "12884513829", "navn2": {"navn": 1}},
            "inntekter": [{"sum": 1, "aar": 2}, {"aar": 3}, 7, {"sum": {"brutto": 5}}],
            "sum": 9}"#,
        r#"{"person":{"navn":"Kari"},"inntekter":[{"sum":1},{"sum":{"brutto":5}}]}"#,
    );
}

#[test]
fn an_array_below_the_root_is_crossed_only_with_brackets() {
    check(&fields(&["rader.sum"]), r#"{"rader": [{"sum": 1}]}"#, "{}");
    check(
        &fields(&["rader[].sum"]),
        r#"{"rader": [{"sum": 1}]}"#,
        r#"{"rader":[{"sum":1}]}"#,
    );
    // `[]` on what is not an array keeps nothing of it.
    check(&fields(&["a[]"]), r#"{"a": {"x": 1}}"#, "{}");
    check(&fields(&["a[].x"]), r#"{"a": {"x": 1}}"#, "{}");
    // `a[]` keeps every element whole, scalars too.
    check(
        &fields(&["a[]"]),
        r#"{"a": [1, {"x": 1}, null], "b": 2}"#,
        r#"{"a":[1,{"x":1},null]}"#,
    );
    check(
        &fields(&["m[][]"]),
        r#"{"m": [[1, 2], 3, [4]]}"#,
        r#"{"m":[[1,2],[4]]}"#,
    );
}

#[test]
fn a_shorter_path_keeps_the_whole_value_a_longer_one_narrows() {
    check(
        &fields(&["a.b", "a"]),
        r#"{"a": {"b": 1, "c": 2}}"#,
        r#"{"a":{"b":1,"c":2}}"#,
    );
    check(
        &fields(&["a.b", "a.c.d"]),
        r#"{"a": {"b": 1, "c": {"d": 2, "e": 3}, "f": 4}}"#,
        r#"{"a":{"b":1,"c":{"d":2}}}"#,
    );
}

#[test]
fn a_path_that_does_not_parse_keeps_nothing() {
    // The policy loader refuses these; minimise fails closed anyway.
    for bad in ["/a", "a..b", "[].a", "a[0]", "*", ""] {
        check(&fields(&[bad]), r#"{"a": {"b": 1}, "*": 2, "": 3}"#, "{}");
    }
}

#[test]
fn allowed_key_keeps_its_value_whole() {
    check(
        &fields(&["adresse"]),
        r#"{"adresse": {"gate": "Storgata 1", "postnr": "0155", "koord": [59.9, 10.7], "x": null, "ok": true},
            "annet": 1}"#,
        r#"{"adresse":{"gate":"Storgata 1","postnr":"0155","koord":[59.9,10.7],"x":null,"ok":true}}"#,
    );
}

#[test]
fn scalars_without_allowed_key_are_dropped() {
    check(
        &fields(&["a"]),
        r#"{"b": 1, "c": "x", "d": null, "e": false}"#,
        "{}",
    );
    check(
        &fields(&["a"]),
        r#"[1, "x", null, true, {"b": 2}, [3]]"#,
        "[]",
    );
    check(&fields(&["a"]), "42", "null");
    check(&fields(&["a"]), r#""text""#, "null");
    check(&fields(&["a"]), "null", "null");
}

#[test]
fn containers_that_end_up_empty_are_dropped() {
    check(
        &fields(&["x.keep", "y[].keep", "z.q.r[].keep", "w[][][].keep"]),
        r#"{"x": {}, "y": [], "z": {"q": {"r": [{"s": 1}]}}, "w": [{}, [], [[{"keep": 0}]]]}"#,
        r#"{"w":[[[{"keep":0}]]]}"#,
    );
}

#[test]
fn arrays_of_objects_at_top_level() {
    check(
        &fields(&["id"]),
        r#"[{"id": 1, "n": "a"}, {"n": "b"}, {"id": 3}]"#,
        r#"[{"id":1},{"id":3}]"#,
    );
}

#[test]
fn member_order_and_escapes_are_preserved() {
    check(
        &fields(&["z", "a", "k\"ey", "æøå"]),
        r#"{"z": "1\n\"2\"", "m": 0, "a": "\u00e6", "k\"ey": 1, "æøå": "å"}"#,
        r#"{"z":"1\n\"2\"","a":"æ","k\"ey":1,"æøå":"å"}"#,
    );
}

#[test]
fn numbers_survive_the_round_trip() {
    check(
        &fields(&["n"]),
        r#"{"n": [0, -1, 18446744073709551615, -9223372036854775808, 1.5, 1e3, -0.25]}"#,
        r#"{"n":[0,-1,18446744073709551615,-9223372036854775808,1.5,1000.0,-0.25]}"#,
    );
}

#[test]
fn duplicate_keys_are_filtered_alike() {
    check(
        &fields(&["a"]),
        r#"{"a": 1, "b": 2, "a": 3}"#,
        r#"{"a":1,"a":3}"#,
    );
}

#[test]
fn invalid_json_is_an_error_without_content() {
    for bad in [
        "",
        "{",
        r#"{"a": 1,}"#,
        r#"{"a": 12884513829"#,
        r#"{"a": 1} trailing"#,
        "\u{feff}{}",
        "<html>error</html>",
    ] {
        let err = minimise(&fields(&["a"]), bad.as_bytes()).unwrap_err();
        assert!(
            matches!(err, MinimiseError::InvalidJson { .. }),
            "{bad:?}: {err:?}"
        );
        assert!(!err.to_string().contains("12884513829"));
        let err = minimise(&fhir(&["CarePlan"]), bad.as_bytes()).unwrap_err();
        assert!(
            matches!(err, MinimiseError::InvalidJson { .. }),
            "{bad:?}: {err:?}"
        );
    }
}

#[test]
fn invalid_utf8_is_an_error() {
    let err = minimise(&fields(&["a"]), b"{\"a\": \"\xff\"}").unwrap_err();
    assert!(matches!(err, MinimiseError::InvalidJson { .. }));
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(100_000);
    let err = minimise(&fields(&["a"]), deep.as_bytes()).unwrap_err();
    assert!(matches!(err, MinimiseError::InvalidJson { .. }));
    let err = minimise(&fhir(&["CarePlan"]), deep.as_bytes()).unwrap_err();
    assert!(matches!(err, MinimiseError::InvalidJson { .. }));
}

#[test]
fn no_mask_returns_the_body_unchanged() {
    let body = b"not even json";
    assert_eq!(minimise(&FieldMask::None, body).unwrap(), body);
}

fn bundle() -> serde_json::Value {
    json!({
        "resourceType": "Bundle",
        "id": "b1",
        "type": "searchset",
        "total": 4,
        "link": [{"relation": "self", "url": "https://hn.example/fhir/CarePlan?patient=x"}],
        "entry": [
            {"fullUrl": "urn:p", "resource": {"resourceType": "Patient", "id": "p", "name": [{"family": "Nordmann"}]},
             "search": {"mode": "include"}},
            {"fullUrl": "urn:o", "resource": {"resourceType": "Observation", "id": "o", "valueQuantity": {"value": 80}}},
            {"fullUrl": "urn:pr", "resource": {"resourceType": "Practitioner", "id": "pr"}},
            {"fullUrl": "urn:c", "resource": {
                "resourceType": "CarePlan", "id": "c", "status": "active",
                "contained": [
                    {"resourceType": "Practitioner", "id": "cp"},
                    {"resourceType": "CarePlan", "id": "sub"}
                ],
                "activity": [{"detail": {"description": "Hjemmesykepleie"}}]
            }, "search": {"mode": "match"}},
            {"fullUrl": "urn:no-resource", "request": {"method": "GET", "url": "x"}},
            {"resource": "not an object"}
        ]
    })
}

#[test]
fn fhir_bundle_keeps_only_care_plans() {
    check_value(
        &fhir(&["CarePlan"]),
        bundle(),
        json!({
            "resourceType": "Bundle",
            "id": "b1",
            "type": "searchset",
            "total": 1,
            "link": [{"relation": "self", "url": "https://hn.example/fhir/CarePlan?patient=x"}],
            "entry": [
                {"fullUrl": "urn:c", "resource": {
                    "resourceType": "CarePlan", "id": "c", "status": "active",
                    "contained": [{"resourceType": "CarePlan", "id": "sub"}],
                    "activity": [{"detail": {"description": "Hjemmesykepleie"}}]
                }, "search": {"mode": "match"}}
            ]
        }),
    );
}

#[test]
fn fhir_bundle_with_several_types() {
    let out = minimise(
        &fhir(&["Observation", "Practitioner"]),
        bundle().to_string().as_bytes(),
    )
    .unwrap();
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let ids: Vec<&str> = out["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["o", "pr"]);
    assert_eq!(out["total"], 2);
}

#[test]
fn fhir_bundle_with_nothing_left_has_no_entry() {
    let mut b = bundle();
    b["entry"] = json!([{"resource": {"resourceType": "Patient", "id": "p"}}]);
    let mut expected = bundle();
    let obj = expected.as_object_mut().unwrap();
    obj.remove("entry");
    obj.insert("total".into(), json!(0));
    check_value(&fhir(&["CarePlan"]), b, expected);
}

#[test]
fn fhir_bundle_without_total_gets_none() {
    let mut b = bundle();
    b.as_object_mut().unwrap().remove("total");
    let out = minimise(&fhir(&["CarePlan"]), b.to_string().as_bytes()).unwrap();
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(out.get("total").is_none());
    assert_eq!(out["entry"].as_array().unwrap().len(), 1);
}

#[test]
fn fhir_nested_bundles_are_filtered_too() {
    check_value(
        &fhir(&["Bundle", "CarePlan"]),
        json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Bundle", "total": 2, "entry": [
                {"resource": {"resourceType": "Patient"}},
                {"resource": {"resourceType": "CarePlan"}}
            ]}}
        ]}),
        json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Bundle", "total": 1, "entry": [
                {"resource": {"resourceType": "CarePlan"}}
            ]}}
        ]}),
    );
}

#[test]
fn fhir_single_resource_of_allowed_type_passes() {
    check_value(
        &fhir(&["CarePlan"]),
        json!({"resourceType": "CarePlan", "id": "c", "contained": [{"resourceType": "Patient"}]}),
        json!({"resourceType": "CarePlan", "id": "c"}),
    );
}

#[test]
fn fhir_single_resource_of_other_type_is_refused() {
    for t in ["Patient", "Observation", "Practitioner", "OperationOutcome"] {
        let body = json!({"resourceType": t, "id": "x"}).to_string();
        assert_eq!(
            minimise(&fhir(&["CarePlan"]), body.as_bytes()).unwrap_err(),
            MinimiseError::ResourceTypeNotAllowed
        );
    }
}

#[test]
fn fhir_refuses_what_is_not_a_resource() {
    for body in [
        json!([{"resourceType": "CarePlan"}]),
        json!({"id": "x"}),
        json!({"resourceType": 7}),
        json!("Bundle"),
    ] {
        assert_eq!(
            minimise(&fhir(&["CarePlan"]), body.to_string().as_bytes()).unwrap_err(),
            MinimiseError::NotFhir,
            "{body}"
        );
    }
}

#[test]
fn fhir_refuses_a_malformed_bundle() {
    let body =
        json!({"resourceType": "Bundle", "entry": {"resource": {"resourceType": "Patient"}}});
    assert!(matches!(
        minimise(&fhir(&["CarePlan"]), body.to_string().as_bytes()).unwrap_err(),
        MinimiseError::MalformedBundle(_)
    ));
}

// ---- found by fuzzing (fuzz/, docs/FUZZING.md) -----------------------------

#[test]
fn fuzz_numbers_keep_their_value_to_the_last_bit() {
    // serde_json's default float parsing was one ULP off for these, so the
    // minimised body held a different number than the provider sent.
    for (input, expected) in [
        ("0.5e83", 0.5e83_f64),
        ("105340232221128654848", 105_340_232_221_128_654_848.0_f64),
    ] {
        for (mask, body) in [
            (fields(&["n"]), format!(r#"[{{"n":{input}}}]"#)),
            (
                fhir(&["CarePlan"]),
                format!(r#"{{"resourceType":"Bundle","n":{input}}}"#),
            ),
        ] {
            let out = minimise(&mask, body.as_bytes()).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let n = v.pointer("/0/n").or_else(|| v.get("n")).unwrap();
            assert_eq!(n.as_f64().unwrap().to_bits(), expected.to_bits(), "{input}");
            assert_eq!(
                minimise(&mask, &out).unwrap(),
                out,
                "not idempotent: {input}"
            );
        }
    }
}

#[test]
fn fuzz_fhir_bundle_loses_contained_resources_of_other_types() {
    check_value(
        &fhir(&["CarePlan", "Bundle"]),
        json!({"resourceType": "Bundle", "contained": [{"resourceType": "Patient"}],
            "entry": [{"resource": {"resourceType": "Bundle",
                "contained": [{"resourceType": "Patient"}, {"resourceType": "CarePlan"}]}}]}),
        json!({"resourceType": "Bundle",
            "entry": [{"resource": {"resourceType": "Bundle",
                "contained": [{"resourceType": "CarePlan"}]}}]}),
    );
}
