//! A 1 GiB download through the real `bru` binary, streamed end to end: the
//! provider generates the bytes, the test reads and checks them as they come,
//! and `bru`'s peak resident memory (VmHWM) stays far below the body's size.
//! A memory bound, not a timing one.
#![allow(clippy::unwrap_used)]

use bru_tests::connectors::*;

const GIB: u64 = 1 << 30;
/// The bound on `bru`'s peak RSS for the whole download.
const PEAK_RSS_LIMIT: u64 = 200 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gigabyte_streams_through_bru_in_constant_memory() {
    let cw = ConnectorWorld::new(GIB).await;
    let bru = cw.world.start().await;
    let before = peak_rss_bytes(bru.pid).expect("VmHWM of bru");

    let mut response = bru
        .get("/data/bulk/download")
        .bearer_auth(cw.token(SCOPE_BULK))
        .header("Bru-Purpose", PURPOSE)
        .timeout(std::time::Duration::from_secs(1800))
        .send()
        .await
        .expect("the download starts");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()),
        Some(GIB.to_string().as_str()),
        "the provider's length passes through"
    );
    let tid = response
        .headers()
        .get("bru-transfer-id")
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_owned();
    let mut received = 0u64;
    let mut mid_rss = 0u64;
    while let Some(chunk) = response.chunk().await.expect("the body streams to its end") {
        // Spot checks, so the bytes are the provider's, in order.
        if let (Some(first), Some(last)) = (chunk.first(), chunk.last()) {
            assert_eq!(*first, bulk_byte(received), "byte {received}");
            assert_eq!(*last, bulk_byte(received + chunk.len() as u64 - 1));
        }
        received += chunk.len() as u64;
        if mid_rss == 0 && received >= GIB / 2 {
            mid_rss = rss_bytes(bru.pid).unwrap_or(0);
        }
    }
    assert_eq!(received, GIB, "the whole body arrived");
    let peak = peak_rss_bytes(bru.pid).expect("VmHWM of bru");
    eprintln!(
        "1 GiB through bru: peak RSS (VmHWM) {:.1} MiB (before the download {:.1} MiB, RSS half-way {:.1} MiB)",
        peak as f64 / 1048576.0,
        before as f64 / 1048576.0,
        mid_rss as f64 / 1048576.0,
    );
    assert!(
        peak < PEAK_RSS_LIMIT,
        "bru's peak RSS was {peak} bytes for a {GIB}-byte body; it must stay under {PEAK_RSS_LIMIT}"
    );
    assert_eq!(
        cw.bulk.requests.load(std::sync::atomic::Ordering::SeqCst),
        1
    );

    let outcome = cw.world.record(&tid, "outcome").await;
    assert_eq!(outcome["status"], 200, "{outcome}");
    assert_eq!(
        outcome["bytes"], GIB,
        "the outcome record counts every byte: {outcome}"
    );
}
