//! `connectors::minimise` with a `FhirResourceTypes` mask.
//!
//! Input: the first line is the allowed resource types (`CarePlan`), the
//! rest the provider's body. Checks: never panics; the error says why
//! (not JSON, not a resource, a single resource of a type not listed); an
//! accepted body keeps its `resourceType`; in a Bundle (and in Bundles kept
//! inside it) exactly the entries whose resource is of a listed type are
//! kept, in order, `total` is their number and an empty `entry` is removed;
//! no kept resource, Bundles included, has a contained resource of a type not
//! listed; minimising the output again changes nothing.
#![no_main]

use bru_fuzz::split_mask_input;
use connectors::MinimiseError;
use libfuzzer_sys::fuzz_target;
use policy::FieldMask;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let (types, body) = split_mask_input(data);
    let mask = FieldMask::FhirResourceTypes(types.clone());
    let result = connectors::minimise(&mask, body);
    let input: Result<Value, _> = serde_json::from_slice(body);
    let Ok(input) = input else {
        assert!(
            matches!(result, Err(MinimiseError::InvalidJson { .. })),
            "not JSON, but {result:?}"
        );
        return;
    };
    let Some(top_type) = input
        .as_object()
        .and_then(|o| o.get("resourceType"))
        .and_then(Value::as_str)
    else {
        assert_eq!(result, Err(MinimiseError::NotFhir));
        return;
    };
    if top_type != "Bundle" && !types.iter().any(|t| t == top_type) {
        assert_eq!(result, Err(MinimiseError::ResourceTypeNotAllowed));
        return;
    }
    let out = match result {
        Ok(out) => out,
        Err(MinimiseError::MalformedBundle(_)) => {
            assert_eq!(top_type, "Bundle");
            return;
        }
        Err(e) => panic!("unexpected error {e:?} for a {top_type}"),
    };
    let output: Value = serde_json::from_slice(&out).expect("output is not JSON");
    let resource = output.as_object().expect("output is not an object");
    assert_eq!(
        resource.get("resourceType").and_then(Value::as_str),
        Some(top_type)
    );
    let input = input.as_object().expect("checked above");
    check_resource(input, resource, &types);
    let again = connectors::minimise(&mask, &out).expect("output does not minimise");
    assert_eq!(again, out, "not idempotent");
});

fn allowed(types: &[String], t: &str) -> bool {
    types.iter().any(|a| a == t)
}

fn type_of(v: &Value) -> Option<&str> {
    v.get("resourceType").and_then(Value::as_str)
}

/// `input` is a resource as sent, `output` the same resource minimised.
fn check_resource(input: &Map<String, Value>, output: &Map<String, Value>, types: &[String]) {
    if let Some(contained) = output.get("contained") {
        let contained = contained.as_array().expect("contained is not an array");
        assert!(!contained.is_empty(), "empty contained kept");
        for c in contained {
            let t = type_of(c).expect("contained resource without a type");
            assert!(allowed(types, t), "contained {t} kept");
        }
    }
    if type_of(&Value::Object(output.clone())) != Some("Bundle") {
        return;
    }
    let kept_in: Vec<&Value> = match input.get("entry") {
        Some(Value::Array(entries)) => entries
            .iter()
            .filter(|e| {
                e.get("resource")
                    .filter(|r| r.is_object())
                    .and_then(type_of)
                    .is_some_and(|t| allowed(types, t))
            })
            .collect(),
        _ => Vec::new(),
    };
    let kept_out: Vec<&Value> = match output.get("entry") {
        None => Vec::new(),
        Some(Value::Array(entries)) => {
            assert!(!entries.is_empty(), "empty entry kept");
            entries.iter().collect()
        }
        Some(other) => panic!("entry is {other}"),
    };
    assert_eq!(
        kept_out.len(),
        kept_in.len(),
        "wrong number of entries kept"
    );
    if input.contains_key("total") {
        assert_eq!(output.get("total"), Some(&Value::from(kept_in.len())));
    }
    for (i, o) in kept_in.iter().zip(&kept_out) {
        let (Some(Value::Object(ri)), Some(Value::Object(ro))) =
            (i.get("resource"), o.get("resource"))
        else {
            panic!("kept entry lost its resource");
        };
        assert_eq!(
            type_of(i.get("resource").unwrap_or(&Value::Null)),
            type_of(o.get("resource").unwrap_or(&Value::Null))
        );
        check_resource(ri, ro, types);
    }
}
