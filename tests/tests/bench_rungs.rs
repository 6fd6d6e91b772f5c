//! Issue 16: the ablation ladder's rungs (`[bench] stage`, bench/README.md)
//! are early exits of the real pipeline, so each measures the code that
//! serves: `passthrough` forwards after the request's limits and path,
//! `token` also authenticates, `policy` also decides and signs the
//! assertion, and none of them records; `full` is the whole pipeline.
//!
//! A default build refuses `[bench]` (checked here); the rungs are checked
//! against a benchmark build: `cargo build -p gateway --features bench`
//! and run with `BRU_BIN` pointing at it.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use bru_tests::*;

/// A world whose bru.toml runs `stage`.
async fn world_at(stage: &str) -> TestWorld {
    let world = TestWorld::new().await;
    let mut config = std::fs::read_to_string(&world.config_path).unwrap();
    config.push_str(&format!("\n[bench]\nstage = \"{stage}\"\n"));
    std::fs::write(&world.config_path, config).unwrap();
    world
}

/// Whether this binary takes `[bench]`; a default build must refuse it,
/// saying so.
fn is_benchmark_build(world: &TestWorld) -> bool {
    let out = Command::new(bru_bin())
        .args(["check", "--config"])
        .arg(&world.config_path)
        .output()
        .unwrap();
    if out.status.success() {
        return true;
    }
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("feature bench"),
        "a default build refuses [bench] naming the feature: {said}"
    );
    false
}

/// No record was written for anything (records may land just after a
/// reply: a full pipeline's show up within this wait).
async fn assert_nothing_recorded(world: &TestWorld, rung: &str) {
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (records, raw) = world.export().await;
    let calls: Vec<_> = records
        .iter()
        .filter(|r| r["kind"] == "decision" || r["kind"] == "outcome")
        .collect();
    assert!(calls.is_empty(), "{rung} records nothing: {raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rung_is_a_prefix_of_the_real_pipeline() {
    let world = world_at("passthrough").await;
    if !is_benchmark_build(&world) {
        eprintln!("a default build: the rungs need BRU_BIN of a benchmark build");
        return;
    }

    // passthrough: no token needed, no assertion sent, nothing recorded;
    // the request's own limits and path still hold.
    let bru = world.start().await;
    send(bru.get("/data/k429/sosialtjeneste"))
        .await
        .expect_status(200, "passthrough forwards without a token");
    let seen = world.k429.requests();
    assert_eq!(
        seen.last()
            .unwrap()
            .header("bru-assertion")
            .unwrap_or_default(),
        ""
    );
    send(bru.get("/data/k429/no-such-dataset"))
        .await
        .expect_status(404, "passthrough still resolves the dataset");
    send(bru.get("/data/k429/sosialtjeneste/a;b"))
        .await
        .expect_status(400, "passthrough still checks the path");
    assert_nothing_recorded(&world, "passthrough").await;
    drop(bru);

    // token: a token is required; policy is not asked (no purpose needed).
    let world = world_at("token").await;
    let bru = world.start().await;
    let r = send(bru.get("/data/k429/sosialtjeneste")).await;
    assert_eq!(r.code().as_deref(), Some("missing_token"), "{}", r.text());
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(world.mp_token(NAV, SCOPE_SOSIAL)),
    )
    .await
    .expect_status(200, "token forwards before policy");
    assert_eq!(
        world
            .k429
            .requests()
            .last()
            .unwrap()
            .header("bru-assertion")
            .unwrap_or_default(),
        ""
    );
    assert_nothing_recorded(&world, "token").await;
    drop(bru);

    // policy: the real decision (with the subject where the dataset has it)
    // and the signed assertion; still no records.
    let world = world_at("policy").await;
    let bru = world.start().await;
    let r = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(world.mp_token(NAV, SCOPE_SOSIAL))
            .header("Nav-Personident", KARI),
    )
    .await;
    assert_eq!(
        r.code().as_deref(),
        Some("purpose_required"),
        "{}",
        r.text()
    );
    send(world.nav_sosial(&bru, "", KARI))
        .await
        .expect_status(200, "policy allows");
    assert!(world
        .k429
        .requests()
        .last()
        .unwrap()
        .header("bru-assertion")
        .is_some_and(|a| a.starts_with("ey")));
    assert_nothing_recorded(&world, "policy").await;
    drop(bru);

    // full: the whole pipeline, one decision and one outcome record.
    let world = world_at("full").await;
    let bru = world.start().await;
    let r = send(world.nav_sosial(&bru, "", KARI)).await;
    r.expect_status(200, "full");
    let id = r.transfer_id().unwrap();
    world.record(&id, "outcome").await;
    let (records, _) = world.export().await;
    assert!(find_record(&records, &id, "decision").is_some());
}
