//! The audit log's indexer (issue #21): copies the records' filtered columns
//! into the derived index `audit_index` behind the log
//! (`consent_db::Store::index_step`, one write transaction a step), so the
//! hot path's batch writes `audit_records` with its primary key only.
//! Readers that filter catch the index up themselves; this task keeps the
//! lag small so they rarely have to (`bru_audit_index_lag_records`).
//! Replicas take turns on the indexer's row in `log_followers`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;

/// Records per step (`consent_db::INDEX_STEP`, 500): a step holds SQLite's
/// write lock, which the audit writer shares, for a millisecond or two.
const STEP: u32 = consent_db::INDEX_STEP;
/// Between rounds while the index is at the log's end, or a step copied less
/// than a full step: the lag stays about 50 ms of records.
const PAUSE: Duration = Duration::from_millis(50);
/// After a failure (logged), before trying again.
const RETRY: Duration = Duration::from_secs(1);

pub fn spawn(app: &Arc<App>, stop: &watch::Receiver<bool>) -> JoinHandle<()> {
    let app = Arc::clone(app);
    let mut stop = stop.clone();
    tokio::spawn(async move {
        if !crate::pipeline::Stage::follows_log(&app.config, "indexer") {
            return;
        }
        loop {
            let pause = match round(&app).await {
                Ok(()) => PAUSE,
                Err(e) => {
                    // The store's error names tables and statements, never a
                    // record's content.
                    tracing::warn!(error = %e, "the audit indexer could not copy records; it tries again");
                    RETRY
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stop.changed() => break,
            }
        }
    })
}

/// Steps until the index is at the log's end or a step copies less than a
/// full step (the rest waits for the next round).
async fn round(app: &App) -> Result<(), consent_db::StoreError> {
    // Two reads instead of a write transaction when there is nothing new
    // (SQLite's write lock is the audit writer's too).
    if app.store.index_lag().await? == 0 {
        return Ok(());
    }
    while app.store.index_step(STEP).await? >= u64::from(STEP) {}
    Ok(())
}
