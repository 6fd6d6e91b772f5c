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
    // An empty filter is no filter, on the snooping findings as on the
    // records (the document says allowEmptyValue); a bad time is refused.
    let all = get_json(bru.get("/audit/v1/alerts").bearer_auth(&token), "alerts").await;
    let empty = get_json(
        bru.get("/audit/v1/alerts?since=&rule=&cursor=&limit=")
            .bearer_auth(&token),
        "alerts with empty filters",
    )
    .await;
    assert_eq!(all, empty);
    send(
        bru.get("/audit/v1/alerts?since=yesterday")
            .bearer_auth(&token),
    )
    .await
    .expect_problem(400, "malformed_request", "a since that is not a time");
}

/// `bru audit export --format csv` takes the API's filters, subject included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_export_takes_the_apis_filters() {
    let world = audit_world(TestWorld::builder(), None).await;
    let bru = world.start().await;
    let token = audit_token(&world);
    for person in [KARI, OLA, KARI] {
        send(world.nav_sosial(&bru, "", person))
            .await
            .expect_status(200, "a statutory call");
    }
    world
        .wait_records("three outcomes", |r| {
            r.iter().filter(|x| x["kind"] == "outcome").count() >= 3
        })
        .await;
    let api = get_json(
        bru.get(&format!("/audit/v1/records?kind=decision&subject={KARI}"))
            .bearer_auth(&token),
        "Kari's decisions",
    )
    .await;
    let api_indexes: Vec<String> = api["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].to_string())
        .collect();
    assert_eq!(api_indexes.len(), 2, "{api}");

    let config = world.config_path.clone();
    let cwd = world.dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bru_bin())
            .args(["audit", "export", "--format", "csv", "--kind", "decision"])
            .args(["--subject", KARI, "--config"])
            .arg(&config)
            .current_dir(&cwd)
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let csv = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{csv}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let kind = header.iter().position(|h| *h == "kind").unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let indexes: Vec<String> = rows.iter().map(|r| r[0].to_owned()).collect();
    assert_eq!(
        indexes, api_indexes,
        "the export holds what the API found:\n{csv}"
    );
    assert!(rows.iter().all(|r| r[kind] == "decision"), "{csv}");
    assert!(!csv.contains(KARI), "no person number in the export");
}
