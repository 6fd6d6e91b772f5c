//! The gateway's side of the transparency log: the checkpointer, which signs
//! the tree head at least every second while it grows, and the store write
//! probe behind `/readyz`.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use consent_db::{note, Timestamp};
use tokio::sync::{watch, Mutex};

use crate::app::App;

/// How often the checkpointer looks at the tree head: twice a second, so a
/// record is under a signed checkpoint within a second of its commit.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);
/// How long a probe result stands before `/readyz` writes again.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The checkpoint origin (and key name) of this gateway.
pub fn origin(app: &App) -> String {
    note::origin_for(&app.config.public_url)
}

/// The C2SP verifier key of the checkpoint key.
pub fn verifier_key(app: &App) -> String {
    use aws_lc_rs::signature::KeyPair;
    note::verifier_key(&origin(app), app.keys.checkpoint.public_key().as_ref())
}

/// Signs the tree head every [`CHECKPOINT_INTERVAL`] if it grew and this
/// replica is the checkpointer (and at start
/// if the last checkpoint is older than the tree, or there is none), until
/// `stop` turns true.
pub async fn run_checkpointer(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let mut signed = match app.store.latest_checkpoint().await {
        Ok(cp) => cp.map(|c| {
            app.checkpoints.newest_at(c.time);
            c.size
        }),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the latest checkpoint");
            None
        }
    };
    loop {
        sign_if_grown(&app, &mut signed).await;
        tokio::select! {
            () = tokio::time::sleep(CHECKPOINT_INTERVAL) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// The last checkpoint at shutdown, after the last records are written.
pub async fn final_checkpoint(app: &App) {
    let mut signed = app
        .store
        .latest_checkpoint()
        .await
        .ok()
        .flatten()
        .map(|c| c.size);
    sign_if_grown(app, &mut signed).await;
}

async fn sign_if_grown(app: &App, signed: &mut Option<u64>) {
    // Replicas on one PostgreSQL database: only the holder of the store's
    // checkpointer lock signs; another takes over when it dies.
    match app.store.try_become_checkpointer().await {
        Ok(true) => app.checkpoints.signer.store(true, Ordering::Relaxed),
        Ok(false) => {
            app.checkpoints.signer.store(false, Ordering::Relaxed);
            return;
        }
        Err(e) => {
            app.checkpoints.signer.store(false, Ordering::Relaxed);
            tracing::warn!(error = %e, "cannot tell whether this replica signs checkpoints");
            return;
        }
    }
    let head = match app.store.tree_head().await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the tree head; no checkpoint this time");
            return;
        }
    };
    if signed.is_some_and(|s| head.size <= s) {
        return;
    }
    let checkpoint = note::Checkpoint {
        origin: origin(app),
        size: head.size,
        root: head.root,
    };
    let text = match note::sign(&checkpoint, &app.keys.checkpoint) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot sign a checkpoint");
            return;
        }
    };
    match app.store.add_checkpoint(head.size, &head.root, &text).await {
        Ok(()) => {
            *signed = Some(head.size);
            app.checkpoints.signed.fetch_add(1, Ordering::Relaxed);
            app.checkpoints.newest_at(Timestamp::now());
        }
        Err(e) => tracing::warn!(error = %e, size = head.size, "cannot store a checkpoint"),
    }
}

/// How long `/metrics` waits for the store's newest checkpoint.
const SCRAPE_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// What the checkpointer knows, for `/metrics`: atomics it updates, so a
/// scrape on the replica that signs reads no store.
#[derive(Debug, Default)]
pub struct CheckpointStatus {
    /// Checkpoints this process signed and stored.
    signed: AtomicU64,
    /// The time of the newest checkpoint this process signed (or found at
    /// start), in Unix milliseconds; 0 for none.
    newest_unix_ms: AtomicI64,
    /// Whether this replica signed checkpoints at its latest look.
    signer: AtomicBool,
}

impl CheckpointStatus {
    fn newest_at(&self, time: Timestamp) {
        let ms = i64::try_from(time.unix_millis()).unwrap_or(i64::MAX);
        self.newest_unix_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Whether this replica signed checkpoints at its latest look (only it
    /// asks the witnesses).
    pub fn signs(&self) -> bool {
        self.signer.load(Ordering::Relaxed)
    }

    /// Checkpoints this process signed since start.
    pub fn signed(&self) -> u64 {
        self.signed.load(Ordering::Relaxed)
    }

    /// Seconds since the newest signed checkpoint was signed, `None` when
    /// there is none (or the store cannot say). The replica that signs knows
    /// it; another replica (PostgreSQL) reads the newest checkpoint from
    /// the store: one query per scrape.
    pub async fn age(&self, store: &consent_db::Store) -> Option<f64> {
        let known = self.newest_unix_ms.load(Ordering::Relaxed);
        let newest = if self.signer.load(Ordering::Relaxed) && known != 0 {
            known
        } else {
            let stored = tokio::time::timeout(SCRAPE_READ_TIMEOUT, store.latest_checkpoint())
                .await
                .ok()?
                .ok()?
                .and_then(|c| i64::try_from(c.time.unix_millis()).ok())
                .unwrap_or(0);
            stored.max(known)
        };
        if newest == 0 {
            return None;
        }
        let now = i64::try_from(Timestamp::now().unix_millis()).unwrap_or(i64::MAX);
        // Clocks of two replicas may disagree a little: never negative.
        Some(now.saturating_sub(newest).max(0) as f64 / 1000.0)
    }
}

/// The store write probe: `/readyz` writes the heartbeat row at most once a
/// second, so readiness follows the store even while no records arrive.
pub struct Readiness {
    last: Mutex<Option<(Instant, bool)>>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    pub fn new() -> Self {
        Readiness {
            last: Mutex::new(None),
        }
    }

    /// Whether the store took the latest probe write; probes again when the
    /// last result is older than a second. One probe at a time: concurrent
    /// callers wait for it and share its answer.
    pub async fn store_writable(&self, app: &App) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, ok)) = *last {
            if at.elapsed() < PROBE_INTERVAL {
                return ok;
            }
        }
        let ok = matches!(
            tokio::time::timeout(app.config.store.audit_write_timeout, app.store.heartbeat()).await,
            Ok(Ok(()))
        );
        if ok {
            app.store_writable_again();
        } else {
            tracing::warn!("the store does not take writes (readiness probe)");
        }
        *last = Some((Instant::now(), ok));
        ok
    }
}
