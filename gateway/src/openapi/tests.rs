#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::*;

fn doc() -> Value {
    serde_json::from_str(json()).unwrap()
}

const METHODS: [&str; 8] = [
    "get", "head", "delete", "options", "patch", "post", "put", "trace",
];

/// Every `(path, method)` the document names.
fn documented(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (*m).to_owned())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// Every `(path, method)` the router holds. axum has no API to list routes;
/// its `Debug` output does: `Node { paths: {RouteId(n): "/path", …} }` and,
/// per route, `RouteId(n): MethodRouter(MethodRouter { get: …, head: None, … })`.
fn registered(router: &Router<Arc<App>>) -> BTreeMap<String, BTreeSet<String>> {
    let debug = format!("{router:?}");
    // The path router's node (not the fallback router's).
    let node_at = debug
        .find("node: Node { paths: {")
        .expect("axum's Debug names the node");
    let node = &debug[node_at..];
    let node = &node[..node.find("fallback_router").unwrap_or(node.len())];
    let mut paths = BTreeMap::new();
    let mut rest = node;
    while let Some(at) = rest.find("RouteId(") {
        rest = &rest[at..];
        let id = &rest[..=rest.find(')').unwrap()];
        let quoted = &rest[id.len()..];
        let quoted = quoted.strip_prefix(": \"").unwrap();
        let path = &quoted[..quoted.find('"').unwrap()];
        paths.insert(id.to_owned(), path.to_owned());
        rest = &quoted[path.len()..];
    }
    assert!(!paths.is_empty(), "no routes found in {debug}");
    // RouteId(n) → methods, from the routes.
    let mut out = BTreeMap::new();
    for (id, path) in &paths {
        let at = debug
            .find(&format!("{id}: MethodRouter(MethodRouter {{"))
            .unwrap_or_else(|| panic!("{id} ({path}) is not a MethodRouter in {debug}"));
        let fields = &debug[at..];
        let fields = &fields[..fields.find("fallback:").unwrap()];
        let methods = METHODS
            .iter()
            .filter(|m| {
                let key = format!(" {m}: ");
                fields
                    .find(&key)
                    .is_some_and(|i| !fields[i + key.len()..].starts_with("None"))
            })
            .map(|m| (*m).to_owned())
            .collect();
        out.insert(path.clone(), methods);
    }
    out
}

#[test]
fn the_document_is_openapi_3_1() {
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Bru");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    for scheme in [
        "maskinporten_consent",
        "maskinporten_audit",
        "idporten",
        "portal_session",
    ] {
        assert!(
            doc["components"]["securitySchemes"][scheme].is_object(),
            "{scheme}"
        );
    }
}

/// A route without documentation (or documentation without a route) fails here.
#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let (router, _) = api();
    let registered = registered(&router);
    let documented = documented(&doc());
    assert_eq!(registered, documented);
    // The APIs the document is for, each route by its handler.
    for path in [
        "/consent/v1/requests",
        "/consent/v1/requests/{id}",
        "/citizen/v1/consents",
        "/citizen/v1/consents/{id}",
        "/citizen/v1/consents/{id}/accept",
        "/citizen/v1/consents/{id}/reject",
        "/citizen/v1/consents/{id}/revoke",
        "/citizen/v1/consents/{id}/pause",
        "/citizen/v1/consents/{id}/resume",
        "/citizen/v1/blocks",
        "/citizen/v1/blocks/{id}",
        "/citizen/v1/consents/{id}/receipt",
        "/citizen/v1/transfers",
        "/citizen/v1/transfers/{index}/proof",
        "/citizen/v1/represented",
        "/citizen/v1/export",
        "/citizen/v1/notifications",
        "/citizen/v1/notifications/settings",
        "/audit/v1/records",
        "/audit/v1/checkpoint",
        "/audit/v1/checkpoint/key",
        "/audit/v1/proof/inclusion",
        "/audit/v1/proof/consistency",
        "/audit/v1/alerts",
        "/catalog/v1/datasets",
        "/.well-known/jwks.json",
        "/openapi.json",
    ] {
        assert!(documented.contains_key(path), "{path} is not documented");
    }
    assert_eq!(documented.len(), 27, "{documented:?}");
}

/// The extraction above really reads the router: a route added without
/// `#[utoipa::path]` shows up in it and not in the document.
#[test]
fn an_undocumented_route_is_noticed() {
    let (router, _) = api();
    let router = router.route("/undocumented", axum::routing::put(|| async { "" }));
    let registered = registered(&router);
    assert_eq!(
        registered.get("/undocumented"),
        Some(&BTreeSet::from(["put".to_owned()]))
    );
    assert!(!documented(&doc()).contains_key("/undocumented"));
}

/// Every `$ref` points at something in `components`.
#[test]
fn every_reference_resolves() {
    let doc = doc();
    fn walk(v: &Value, doc: &Value, seen: &mut usize) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    let pointer = r.strip_prefix('#').unwrap();
                    assert!(doc.pointer(pointer).is_some(), "dangling {r}");
                    *seen += 1;
                }
                o.values().for_each(|v| walk(v, doc, seen));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, doc, seen)),
            _ => {}
        }
    }
    let mut seen = 0;
    walk(&doc, &doc, &mut seen);
    assert!(seen > 20, "{seen} references");
}

/// Each operation: an id, a tag, a success, and for every error status a
/// problem+json body; authenticated ones say how, and document 401.
#[test]
fn every_operation_is_complete() {
    let doc = doc();
    let responses = &doc["components"]["responses"];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{method} {path}");
            assert!(op["operationId"].is_string(), "{what}: operationId");
            assert_eq!(op["tags"].as_array().map(Vec::len), Some(1), "{what}");
            let statuses = op["responses"].as_object().unwrap();
            assert!(
                statuses.keys().any(|s| s.starts_with('2')),
                "{what}: no success"
            );
            for (status, response) in statuses {
                let response = match response["$ref"].as_str() {
                    Some(r) => &responses[r.rsplit('/').next().unwrap()],
                    None => response,
                };
                assert!(response["description"].is_string(), "{what} {status}");
                if status.starts_with('4') || status.starts_with('5') {
                    let content = &response["content"]["application/problem+json"];
                    assert_eq!(
                        content["schema"]["$ref"], "#/components/schemas/Problem",
                        "{what} {status}: {response}"
                    );
                }
            }
            let security = op["security"].as_array();
            let public = [
                "/catalog/v1/datasets",
                "/.well-known/jwks.json",
                "/openapi.json",
                "/audit/v1/checkpoint/key",
            ];
            if public.contains(&path.as_str()) {
                assert!(security.is_none(), "{what} is public");
            } else {
                assert!(security.is_some_and(|s| !s.is_empty()), "{what}: security");
                assert!(statuses.contains_key("401"), "{what}: 401");
            }
        }
    }
}

/// The audit API reads its query itself; the documented parameters are the
/// ones it accepts.
#[test]
fn audit_query_parameters_are_the_documented_ones() {
    let doc = doc();
    for (path, accepted) in [
        ("/audit/v1/records", &crate::audit_api::RECORDS_PARAMS[..]),
        (
            "/audit/v1/proof/inclusion",
            &crate::audit_api::INCLUSION_PARAMS[..],
        ),
        (
            "/audit/v1/proof/consistency",
            &crate::audit_api::CONSISTENCY_PARAMS[..],
        ),
        ("/audit/v1/checkpoint", &[][..]),
        ("/audit/v1/alerts", &crate::audit_api::ALERTS_PARAMS[..]),
    ] {
        let documented: BTreeSet<&str> = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "query")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            documented,
            accepted.iter().copied().collect::<BTreeSet<_>>(),
            "{path}"
        );
    }
    // An empty filter is no filter (found by schemathesis: `until=` was
    // answered 200 while the document said it must be a date-time).
    for path in ["/audit/v1/records", "/audit/v1/alerts"] {
        for p in doc["paths"][path]["get"]["parameters"].as_array().unwrap() {
            assert_eq!(p["allowEmptyValue"], true, "{path}: {p}");
        }
    }
    for p in doc["paths"]["/audit/v1/proof/inclusion"]["get"]["parameters"]
        .as_array()
        .unwrap()
    {
        assert!(p.get("allowEmptyValue").is_none(), "required: {p}");
    }
}

/// Schemas of what the handlers serialise, spot-checked against the wire.
#[test]
fn schemas_say_what_is_on_the_wire() {
    let doc = doc();
    let schemas = &doc["components"]["schemas"];
    let problem = &schemas["Problem"];
    let required: BTreeSet<&str> = problem["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        required,
        BTreeSet::from(["type", "title", "status", "detail", "code", "transfer_id"])
    );
    // The Problem every refusal serialises fits it member for member.
    let body = serde_json::to_value(crate::problem::Failure::UnknownDataset.problem(None)).unwrap();
    let members: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(members, required);
    // An audit record: every member of SPEC section 5.
    let record = schemas["AuditRecord"]["properties"].as_object().unwrap();
    for member in [
        "index",
        "time",
        "transfer_id",
        "kind",
        "consumer",
        "supplier",
        "client_id",
        "provider",
        "dataset",
        "method",
        "path",
        "purpose",
        "basis",
        "legal_ref",
        "consent_id",
        "subject_ref",
        "decision",
        "code",
        "status",
        "bytes",
        "duration_ms",
    ] {
        assert!(record.contains_key(member), "{member}");
    }
    // SPEC 10: a request's frequency, and the same on the way out.
    assert_eq!(
        schemas["FrequencyPeriod"]["enum"],
        serde_json::json!(["day", "week", "month"])
    );
    for name in ["FrequencyBody", "Frequency"] {
        assert_eq!(
            schemas[name]["properties"]["per"]["$ref"], "#/components/schemas/FrequencyPeriod",
            "{name}: {}",
            schemas[name]
        );
    }
    assert_eq!(
        schemas["ConsentState"]["enum"],
        serde_json::json!(["pending", "granted", "paused", "rejected", "revoked", "expired"])
    );
    assert_eq!(
        schemas["EventType"]["enum"],
        serde_json::json!([
            "created", "accepted", "rejected", "revoked", "expired", "used", "paused", "resumed"
        ])
    );
}
