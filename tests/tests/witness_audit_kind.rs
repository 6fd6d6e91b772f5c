//! The audit API's `kind` filter (issue #20): a security team's own
//! searches (`audit_read`) out of the way with `kind=decision`.
#![allow(clippy::unwrap_used)]

use bru_tests::transparency::*;
use bru_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_filter_by_kind() {
    let world = audit_world(TestWorld::builder(), None).await;
    let bru = world.start().await;
    let token = audit_token(&world);
    for person in [KARI, OLA] {
        send(world.nav_sosial(&bru, "", person))
            .await
            .expect_status(200, "a statutory call");
    }
    // The team's own searches are records too.
    for _ in 0..3 {
        get_json(bru.get("/audit/v1/records").bearer_auth(&token), "search").await;
    }
    world
        .wait_records("two outcomes and the searches", |r| {
            r.iter().filter(|x| x["kind"] == "outcome").count() >= 2
                && r.iter().filter(|x| x["kind"] == "audit_read").count() >= 3
        })
        .await;
    for kind in ["decision", "outcome", "audit_read"] {
        let page = get_json(
            bru.get(&format!("/audit/v1/records?kind={kind}&limit=1000"))
                .bearer_auth(&token),
            kind,
        )
        .await;
        let records = page["records"].as_array().unwrap();
        assert!(records.len() >= 2, "{kind}: {page}");
        assert!(
            records.iter().all(|r| r["kind"] == kind),
            "only {kind} records: {page}"
        );
    }
    send(
        bru.get("/audit/v1/records?kind=everything")
            .bearer_auth(&token),
    )
    .await
    .expect_problem(400, "malformed_request", "an unknown kind");
}
