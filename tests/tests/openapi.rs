//! `/openapi.json` on the public listener, and HSTS on every HTTPS answer.
//! The document's content is checked against the routes by the gateway's
//! unit tests (`gateway/src/openapi/tests.rs`), and against the running
//! demo by schemathesis (`scripts/test-openapi`).
#![allow(clippy::unwrap_used)]

use bru_tests::consent::*;
use bru_tests::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_served() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    let r = send(bru.get("/openapi.json")).await;
    r.expect_status(200, "GET /openapi.json");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc: Value = r.json();
    assert_eq!(doc["openapi"], "3.1.0", "{doc}");
    for path in [
        "/consent/v1/requests",
        "/consent/v1/requests/{id}",
        "/citizen/v1/consents",
        "/citizen/v1/consents/{id}/accept",
        "/citizen/v1/transfers",
        "/citizen/v1/transfers/{index}/proof",
        "/audit/v1/records",
        "/audit/v1/proof/inclusion",
        "/catalog/v1/datasets",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
    // The data plane is the providers' API, not in the document.
    assert!(doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .all(|p| !p.starts_with("/data/")));

    // What it says of an answer holds for the binary: a refused token is a
    // 401 problem with WWW-Authenticate.
    let create = &doc["paths"]["/consent/v1/requests"]["post"];
    assert_eq!(
        create["security"][0]["maskinporten_consent"],
        Value::Array(vec![])
    );
    assert_eq!(
        create["responses"]["401"]["$ref"],
        "#/components/responses/Unauthorized"
    );
    let r = send(bru.post("/consent/v1/requests").body("{}")).await;
    assert_eq!(
        (r.status, r.code().as_deref()),
        (401, Some("missing_token")),
        "{}",
        r.text()
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert!(r.header("www-authenticate").is_some());
    assert_eq!(r.json()["transfer_id"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_https_answer_sends_hsts() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    let replies = [
        ("the document", send(bru.get("/openapi.json")).await),
        ("the catalog", send(bru.get("/catalog/v1/datasets")).await),
        ("an unknown path", send(bru.get("/nothing/here")).await),
        (
            "a consent API answer",
            send(bru.get("/consent/v1/requests").bearer_auth(&k429)).await,
        ),
        (
            "a refused token",
            send(bru.get("/citizen/v1/consents").bearer_auth("x")).await,
        ),
        (
            "a data plane refusal",
            send(bru.get("/data/nav/inntekt")).await,
        ),
    ];
    for (what, r) in &replies {
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=31536000"),
            "{what}: {} {}",
            r.status,
            r.text()
        );
    }
    let ops = send(bru.ops_client.get(bru.ops_url("/healthz"))).await;
    assert_eq!(ops.header("strict-transport-security"), None);
}

/// Indexes, cursors and tree sizes are `int64` in the document; larger
/// numbers are refused, not taken (schemathesis found the citizen's cursor
/// taking any u64).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_parameters_are_int64_as_documented() {
    use bru_tests::transparency::{audit_token, audit_world, citizen_token};
    let world = audit_world(TestWorld::builder(), None).await;
    let bru = world.start().await;
    let kari = citizen_token(&world, KARI);
    let audit = audit_token(&world);
    let max = i64::MAX.to_string();
    let over = (i64::MAX as u64 + 1).to_string();
    let transfers = |cursor: &str| {
        bru.get(&format!("/citizen/v1/transfers?cursor={cursor}"))
            .bearer_auth(&kari)
    };
    send(transfers(&max))
        .await
        .expect_status(200, "cursor i64::MAX");
    let r = send(transfers(&over)).await;
    r.expect_status(400, "cursor above i64::MAX");
    assert_eq!(r.json()["field"], "cursor", "{}", r.text());
    for path in [
        format!("/audit/v1/records?cursor={over}"),
        format!("/audit/v1/proof/inclusion?index=0&size={over}"),
        format!("/audit/v1/proof/consistency?from=1&to={over}"),
    ] {
        let r = send(bru.get(&path).bearer_auth(&audit)).await;
        r.expect_problem(400, "malformed_request", &path);
        assert!(r.text().contains("too large"), "{path}: {}", r.text());
    }
    send(
        bru.get(&format!("/audit/v1/records?cursor={max}"))
            .bearer_auth(&audit),
    )
    .await
    .expect_status(200, "records after i64::MAX");
    // An empty filter is no filter, as the document says (allowEmptyValue).
    send(
        bru.get(
            "/audit/v1/records?since=&until=&consumer=&dataset=&decision=&subject=&cursor=&limit=",
        )
        .bearer_auth(&audit),
    )
    .await
    .expect_status(200, "empty filters");
}
