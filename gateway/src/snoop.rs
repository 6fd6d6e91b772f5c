//! The snoop follower (SPEC 11): evaluates policy's `[snooping]` rules on
//! the records as they arrive (`consent_db::Store::snoop_step`, one page per
//! transaction), woken when this process appends and at least every second
//! for what other replicas append; replicas take turns on the follower's
//! row. Each finding counts in `bru_audit_alerts_total{rule}`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;

/// Log indexes per transaction (outcome records in the window are not read):
/// the follower holds SQLite's write lock for a few milliseconds at a time.
pub const PAGE: u32 = 2048;
/// For records other replicas append (this process wakes on its own).
const POLL: Duration = Duration::from_secs(1);
/// At most one round this often, so a busy log is read in pages, not per record.
const PAUSE: Duration = Duration::from_millis(100);

pub fn spawn(app: &Arc<App>, stop: &watch::Receiver<bool>) -> JoinHandle<()> {
    let app = Arc::clone(app);
    let mut stop = stop.clone();
    tokio::spawn(async move {
        if !crate::pipeline::Stage::follows_log(&app.config, "snoop") {
            return;
        }
        loop {
            catch_up(&app).await;
            tokio::select! {
                () = app.snoop_wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => break,
            }
            tokio::time::sleep(PAUSE).await;
        }
        // The records written while stopping, too.
        catch_up(&app).await;
    })
}

/// Evaluates every record after the follower's position.
pub async fn catch_up(app: &App) {
    // Two reads instead of a write transaction when there is nothing new
    // (SQLite's write lock is the appender's too).
    if let (Ok(records), Ok(done)) = (
        app.store.record_count().await,
        app.store
            .follower_position(consent_db::SNOOP_FOLLOWER)
            .await,
    ) {
        if done >= records {
            return;
        }
    }
    loop {
        match app.store.snoop_step(&app.policy.snooping, PAGE).await {
            Ok(step) => {
                for rule in &step.findings {
                    app.metrics.observe_alert(rule);
                }
                // One line a rule a step, with the count: `off_hours` finds
                // one per call, and a line each would be thousands a second
                // under load at night.
                let mut by_rule: Vec<(&str, usize)> = Vec::new();
                for rule in &step.findings {
                    match by_rule.iter_mut().find(|(r, _)| *r == rule.as_str()) {
                        Some((_, n)) => *n += 1,
                        None => by_rule.push((rule.as_str(), 1)),
                    }
                }
                for (rule, findings) in by_rule {
                    tracing::warn!(rule, findings, "snooping findings (GET /audit/v1/alerts)");
                }
                if step.records < u64::from(PAGE) {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the snoop follower could not read the log; it tries again");
                return;
            }
        }
    }
}
