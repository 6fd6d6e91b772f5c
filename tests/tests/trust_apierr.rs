//! Issue 16: the JSON APIs answer every error with the data plane's problem
//! body (one `ApiError`): the same `type` base `{public_url}/problems/{code}`,
//! `application/problem+json`, `Cache-Control: no-store`, a code with a page
//! on Bru; the router's 404 and 405 included.
#![allow(clippy::unwrap_used)]

use bru_tests::consent::*;
use bru_tests::*;
use serde_json::Value;

const PUBLIC_URL: &str = "https://localhost:8443";

/// The members and headers every problem of Bru's has (a JSON API's problem
/// has no transfer id unless it was recorded, as the audit API's are).
fn expect_api_problem(reply: &Reply, status: u16, code: &str, context: &str) -> Value {
    reply.expect_status(status, context);
    assert!(
        reply
            .header("content-type")
            .unwrap_or_default()
            .starts_with("application/problem+json"),
        "{context}: {:?}",
        reply.header("content-type")
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{context}");
    let p = reply.json();
    assert_eq!(p["code"], code, "{context}: {p}");
    assert_eq!(p["status"], status, "{context}: {p}");
    assert_eq!(
        p["type"],
        format!("{PUBLIC_URL}/problems/{code}"),
        "{context}: {p}"
    );
    assert!(
        p["title"].is_string() && p["detail"].is_string(),
        "{context}: {p}"
    );
    assert!(reply.text().ends_with('\n'), "{context}");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_a_path_does_not_take_is_a_problem_with_allow() {
    let world = ConsentWorld::new().await;
    let bru = world.start().await;
    let token = world.k429_token();
    for (method, path, allowed) in [
        (
            reqwest::Method::PUT,
            "/consent/v1/requests",
            &["GET", "POST"][..],
        ),
        (
            reqwest::Method::DELETE,
            "/citizen/v1/consents",
            &["GET"][..],
        ),
        (reqwest::Method::POST, "/audit/v1/records", &["GET"][..]),
    ] {
        let context = format!("{method} {path}");
        let r = send(
            bru.client
                .request(method.clone(), bru.url(path))
                .bearer_auth(&token),
        )
        .await;
        expect_api_problem(&r, 405, "method_not_allowed", &context);
        let allow = r.header("allow").unwrap_or_default().to_owned();
        for m in allowed {
            assert!(allow.contains(m), "{context}: Allow {allow:?} lacks {m}");
        }
        // The code's page is on Bru.
        let page = send(bru.get("/problems/method_not_allowed")).await;
        page.expect_status(200, "the page of method_not_allowed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_answers_its_errors_with_the_one_problem_body() {
    let world = ConsentWorld::new().await;
    let bru = world.start().await;
    let requester = world.k429_token();
    let citizen = world.citizen_token(KARI);
    let unknown = "/consent/v1/requests/0190a5b2-0000-7000-8000-000000000000";

    // The router's own 404.
    expect_api_problem(
        &send(bru.get("/finnes/ikke")).await,
        404,
        "not_found",
        "router",
    );
    // Consent API: a token refusal as the data plane answers it, a 404, a 400 naming the field.
    let r = send(bru.get(unknown)).await;
    expect_api_problem(&r, 401, "missing_token", "consent API without token");
    assert!(r.header("www-authenticate").is_some());
    expect_api_problem(
        &send(bru.get(unknown).bearer_auth(&requester)).await,
        404,
        "not_found",
        "consent API, unknown id",
    );
    let p = expect_api_problem(
        &send(
            bru.get("/consent/v1/requests?limit=0")
                .bearer_auth(&requester),
        )
        .await,
        400,
        "malformed_request",
        "consent API, bad limit",
    );
    assert_eq!(p["field"], "limit", "{p}");
    // Citizen API: a 404, and a 409 with the consent's status.
    expect_api_problem(
        &send(
            bru.get("/citizen/v1/consents/not-a-consent-id")
                .bearer_auth(&citizen),
        )
        .await,
        404,
        "not_found",
        "citizen API, not an id",
    );
    let created = send(
        bru.post("/consent/v1/requests")
            .bearer_auth(&requester)
            .json(&request_body(Some(KARI), None)),
    )
    .await;
    created.expect_status(201, "create a request");
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let p = expect_api_problem(
        &send(
            bru.get(&format!("/citizen/v1/consents/{id}/receipt"))
                .bearer_auth(&citizen),
        )
        .await,
        409,
        "consent_not_granted",
        "receipt of a pending consent",
    );
    assert_eq!(p["consent_status"], "pending", "{p}");
    // Audit API: refusals are recorded, so they carry their transfer id.
    let r = send(bru.get("/audit/v1/checkpoint")).await;
    let p = expect_api_problem(&r, 401, "missing_token", "audit API without token");
    assert_eq!(
        r.header("bru-transfer-id"),
        p["transfer_id"].as_str(),
        "{p}"
    );
}
