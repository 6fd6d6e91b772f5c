//! The audit log's derived index (issue #21): the gateway's indexer copies
//! the records into it behind the log with no reader asking, and
//! `bru_audit_index_lag_records` shows how far behind it is.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bru_tests::consent::*;
use bru_tests::*;

/// `(bru_audit_records_total, bru_audit_index_lag_records)` from one scrape.
async fn scrape(bru: &Bru) -> (Option<f64>, Option<f64>) {
    let reply = send(bru.ops_client.get(bru.ops_url("/metrics"))).await;
    reply.expect_status(200, "GET /metrics");
    let text = reply.text();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    };
    (
        value("bru_audit_records_total"),
        value("bru_audit_index_lag_records"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_indexer_follows_the_log_without_a_reader() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    // A statutory call: a decision and an outcome record.
    send(cw.nav_sosial(&bru, "", OLA))
        .await
        .expect_status(200, "NAV reads K429's case");

    // Nothing reads the audit API or the citizen's log here, so only the
    // background indexer can bring the lag to 0 once both records are in.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (records, lag) = scrape(&bru).await;
        let lag = lag.expect("bru_audit_index_lag_records is exported");
        if records.unwrap_or(0.0) >= 2.0 && lag == 0.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the index never caught up: records {records:?}, lag {lag}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
