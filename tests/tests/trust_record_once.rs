//! Issue 16: every exit of the data plane records once, through one path.
//! A refusal leaves one deny record; an allowed call one decision record and
//! one outcome record, whether its answer streamed, was minimised whole, or
//! the provider could not be reached.
#![allow(clippy::unwrap_used)]

use bru_tests::*;
use serde_json::{json, Value};

/// The records of `transfer_id`, by kind, once the outcome (if any) landed.
async fn records_of(world: &TestWorld, transfer_id: &str, allowed: bool) -> Vec<Value> {
    let kind = if allowed { "outcome" } else { "decision" };
    world.record(transfer_id, kind).await;
    // A second export: a duplicate written just after the first would show.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (records, _) = world.export().await;
    records
        .into_iter()
        .filter(|r| r["transfer_id"] == transfer_id)
        .collect()
}

fn count(records: &[Value], kind: &str) -> usize {
    records.iter().filter(|r| r["kind"] == kind).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_exit_leaves_one_decision_and_at_most_one_outcome() {
    let world = TestWorld::new().await;
    let bru = world.start().await;

    // A refusal: one deny record, no outcome.
    let r = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(world.mp_token(NAV, SCOPE_SOSIAL))
            .header("Nav-Personident", KARI),
    )
    .await;
    r.expect_problem(400, "purpose_required", "no purpose");
    let recs = records_of(&world, &r.problem_transfer_id(), false).await;
    assert_eq!(
        (count(&recs, "decision"), count(&recs, "outcome")),
        (1, 0),
        "{recs:?}"
    );
    assert_eq!(recs[0]["decision"], "deny");

    // Allowed, streamed through.
    let r = send(world.nav_sosial(&bru, "", KARI)).await;
    r.expect_status(200, "streamed");
    let recs = records_of(&world, &r.transfer_id().unwrap(), true).await;
    assert_eq!(
        (count(&recs, "decision"), count(&recs, "outcome")),
        (1, 1),
        "{recs:?}"
    );

    // Allowed, minimised whole.
    world
        .k429
        .set_body(json!({"aar": 2024, "sum": 1, "navn": "x"}));
    let r = send(
        bru.get("/data/k429/minimert")
            .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await;
    r.expect_status(200, "minimised");
    let recs = records_of(&world, &r.transfer_id().unwrap(), true).await;
    assert_eq!(
        (count(&recs, "decision"), count(&recs, "outcome")),
        (1, 1),
        "{recs:?}"
    );
    let outcome = recs.iter().find(|r| r["kind"] == "outcome").unwrap();
    assert_eq!(outcome["bytes"], r.text().len(), "{outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_cannot_be_reached_leaves_one_outcome() {
    let world = TestWorld::builder().closed_upstream("k429").build().await;
    let bru = world.start().await;
    let r = send(world.nav_sosial(&bru, "", KARI)).await;
    r.expect_problem(502, "upstream_error", "nothing listens");
    let recs = records_of(&world, &r.problem_transfer_id(), true).await;
    assert_eq!(
        (count(&recs, "decision"), count(&recs, "outcome")),
        (1, 1),
        "{recs:?}"
    );
    let outcome = recs.iter().find(|r| r["kind"] == "outcome").unwrap();
    assert_eq!(outcome["code"], "upstream_error", "{outcome}");
    assert_eq!(outcome["status"], 502, "{outcome}");
}
