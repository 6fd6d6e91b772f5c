//! The log's side of witnessing (SPEC section 11): every new checkpoint goes
//! with its consistency proof to each `[[witness]]` (C2SP tlog-witness), and
//! the cosignatures they return are kept in the store, served beside the
//! checkpoint (C2SP tlog-cosignature lines).
//!
//! One task per witness, apart from the data plane and from each other: a
//! slow or absent witness only falls behind (its lag and failures are in
//! `/metrics` and the `/readyz` detail). Only the replica that signs
//! checkpoints asks, so replicas send one checkpoint stream; the store holds
//! the cosignatures for all of them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consent_db::Timestamp;
use tokio::sync::watch;
use witness::{WitnessClient, WitnessError};

use crate::app::App;
use crate::config::witness::WitnessConfig;

/// How often each witness task looks for a newer checkpoint: as often as
/// the checkpointer signs.
const INTERVAL: Duration = Duration::from_millis(500);
/// One `add-checkpoint` call at most; a slower witness is a failure.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// At a clean stop, how long the last checkpoint waits for its cosignatures.
const FINAL_ROUND_TIMEOUT: Duration = Duration::from_secs(5);

struct Entry {
    client: WitnessClient,
    /// The verifier key: the witness's identity in the store.
    vkey: String,
    /// The newest checkpoint size this witness cosigned (0: none known).
    cosigned: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// The configured witnesses and what each has done.
pub struct Witnesses {
    entries: Vec<Arc<Entry>>,
    /// The newest checkpoint size the tasks have seen.
    newest: AtomicU64,
}

/// One witness for `/metrics`.
#[derive(Debug, Clone)]
pub struct WitnessReport {
    pub name: String,
    pub failures: u64,
    /// Tree size of the newest checkpoint minus the newest this witness cosigned.
    pub lag: u64,
}

impl Witnesses {
    pub fn new(config: &[WitnessConfig]) -> Result<Witnesses, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(CALL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("witness HTTP client: {e}"))?;
        let entries = config
            .iter()
            .map(|w| {
                Arc::new(Entry {
                    client: WitnessClient::new(&w.url, w.cosigner.clone(), http.clone()),
                    vkey: w.cosigner.verifier_key(),
                    cosigned: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                    last_error: Mutex::new(None),
                })
            })
            .collect();
        Ok(Witnesses {
            entries,
            newest: AtomicU64::new(0),
        })
    }

    pub fn reports(&self) -> Vec<WitnessReport> {
        let newest = self.newest.load(Ordering::Relaxed);
        self.entries
            .iter()
            .map(|e| WitnessReport {
                name: e.client.cosigner.name.clone(),
                failures: e.failures.load(Ordering::Relaxed),
                lag: newest.saturating_sub(e.cosigned.load(Ordering::Relaxed)),
            })
            .collect()
    }

    /// Lines for the `/readyz` body: each witness's lag and last error.
    /// Witnesses never make Bru unready: the log goes on without them.
    pub fn detail(&self) -> String {
        let mut out = String::new();
        for (e, r) in self.entries.iter().zip(self.reports()) {
            let error = e
                .last_error
                .lock()
                .ok()
                .and_then(|g| g.clone())
                .unwrap_or_else(|| "none".to_owned());
            out.push_str(&format!(
                "witness {}: lag {} records, {} failures, last error: {error}\n",
                r.name, r.lag, r.failures
            ));
        }
        out
    }
}

/// The checkpoint note with the stored cosignature lines of its size
/// appended (a note may carry many signatures; verifiers ignore unknown ones).
pub async fn with_cosignatures(app: &App, note: String, size: u64) -> String {
    match app.store.cosignatures(size).await {
        Ok(lines) => {
            let mut note = note;
            for (_, line) in lines {
                note.push_str(&line);
                if !line.ends_with('\n') {
                    note.push('\n');
                }
            }
            note
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the cosignatures; the checkpoint goes without");
            note
        }
    }
}

/// Starts one task per witness; they end when `stop` turns true.
pub fn spawn(app: &Arc<App>, stop: &watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
    app.witnesses
        .entries
        .iter()
        .map(|entry| {
            let app = app.clone();
            let entry = entry.clone();
            let mut stop = stop.clone();
            tokio::spawn(async move {
                if let Ok(Some(size)) = app.store.cosigned_size(&entry.vkey).await {
                    entry.cosigned.store(size, Ordering::Relaxed);
                }
                loop {
                    if app.checkpoints.signs() {
                        witness_newest(&app, &entry).await;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(INTERVAL) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            })
        })
        .collect()
}

/// At a clean stop, after the final checkpoint: one more round, bounded.
pub async fn final_round(app: &App) {
    if !app.checkpoints.signs() {
        return;
    }
    let round = futures_util::future::join_all(
        app.witnesses
            .entries
            .iter()
            .map(|entry| witness_newest(app, entry)),
    );
    if tokio::time::timeout(FINAL_ROUND_TIMEOUT, round)
        .await
        .is_err()
    {
        tracing::warn!("the last checkpoint went without some witnesses' cosignatures");
    }
}

/// Sends the newest checkpoint to one witness if it has not cosigned it.
async fn witness_newest(app: &App, entry: &Entry) {
    let checkpoint = match app.store.latest_checkpoint().await {
        Ok(Some(c)) => c,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the newest checkpoint for the witnesses");
            return;
        }
    };
    app.witnesses
        .newest
        .fetch_max(checkpoint.size, Ordering::Relaxed);
    let known = entry.cosigned.load(Ordering::Relaxed);
    if known >= checkpoint.size && known != 0 {
        return;
    }
    let mut old = known;
    // A 409 names the size the witness holds: one more try from there.
    for _ in 0..2 {
        let proof = if old == 0 {
            Vec::new()
        } else {
            match app.store.consistency_proof(old, checkpoint.size).await {
                Ok(p) => p,
                Err(e) => {
                    fail(entry, format!("no consistency proof from {old}: {e}"));
                    return;
                }
            }
        };
        match entry
            .client
            .add_checkpoint(old, proof, &checkpoint.note)
            .await
        {
            Ok(line) => {
                let now = i64::try_from(Timestamp::now().unix_millis() / 1000).unwrap_or(i64::MAX);
                if let Err(e) = app
                    .store
                    .add_cosignature(&entry.vkey, checkpoint.size, &line, now)
                    .await
                {
                    fail(entry, format!("cannot store the cosignature: {e}"));
                    return;
                }
                entry.cosigned.store(checkpoint.size, Ordering::Relaxed);
                if let Ok(mut g) = entry.last_error.lock() {
                    *g = None;
                }
                return;
            }
            Err(WitnessError::Conflict(size)) if size != old && size <= checkpoint.size => {
                old = size;
            }
            Err(e) => {
                fail(entry, e.to_string());
                return;
            }
        }
    }
    fail(entry, "the witness keeps answering 409".to_owned());
}

fn fail(entry: &Entry, error: String) {
    entry.failures.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(witness = %entry.client.cosigner.name, %error, "a witness did not cosign");
    if let Ok(mut g) = entry.last_error.lock() {
        *g = Some(error);
    }
}

/// For `bru audit verify --witnesses N`: the newest checkpoint must carry at
/// least `n` valid cosignatures by distinct configured witnesses.
pub async fn check_cosigned(
    store: &consent_db::Store,
    witnesses: &[WitnessConfig],
    n: usize,
) -> Result<String, String> {
    let checkpoint = store
        .latest_checkpoint()
        .await
        .map_err(|e| format!("cannot read the newest checkpoint: {e}"))?
        .ok_or("there is no checkpoint")?;
    let lines: String = store
        .cosignatures(checkpoint.size)
        .await
        .map_err(|e| format!("cannot read the cosignatures: {e}"))?
        .into_iter()
        .map(|(_, line)| line)
        .collect();
    let (text, _) = witness::protocol::note_text(&checkpoint.note)
        .ok_or("the newest checkpoint is not a signed note")?;
    // Distinct witnesses: one listed twice counts once.
    let valid: std::collections::BTreeSet<&str> = witnesses
        .iter()
        .filter(|w| w.cosigner.verify(text, &lines).is_ok())
        .map(|w| w.cosigner.name.as_str())
        .collect();
    let valid: Vec<&str> = valid.into_iter().collect();
    if valid.len() >= n {
        Ok(format!(
            "witnessed: the checkpoint of size {} carries {} valid cosignatures ({})",
            checkpoint.size,
            valid.len(),
            valid.join(", ")
        ))
    } else {
        Err(format!(
            "the checkpoint of size {} carries {} valid cosignatures of the {n} required",
            checkpoint.size,
            valid.len()
        ))
    }
}

/// `bru demo`: two witnesses of the demo's own beside Bru (SPEC section 11),
/// each with its key and state under `DIR/witnesses/`, their verifier keys
/// in `DIR/witnesses/*.vkey`, and `[[witness]]` blocks appended to the
/// demo's `bru.toml` (which the demo rewrites at every start).
pub async fn start_demo_witnesses(
    dir: &std::path::Path,
    config_file: &std::path::Path,
    log_vkey: &str,
) -> Result<(), String> {
    use std::io::Write;
    let home = dir.join("witnesses");
    std::fs::create_dir_all(&home).map_err(|e| format!("cannot create {}: {e}", home.display()))?;
    let mut blocks = String::new();
    for n in 1..=2 {
        let name = format!("witness-{n}.bru-demo.localhost");
        let w = witness::Witness::open(
            &home.join(format!("witness-{n}.key")),
            &[log_vkey.to_owned()],
            None,
            Some(&name),
        )
        .map_err(|e| e.to_string())?;
        let vkey = w.cosigner().verifier_key();
        std::fs::write(home.join(format!("witness-{n}.vkey")), format!("{vkey}\n"))
            .map_err(|e| format!("cannot write witness-{n}.vkey: {e}"))?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| format!("demo witness {n}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("demo witness {n}: {e}"))?;
        tokio::spawn(async move {
            let router = witness::server::router(Arc::new(w));
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!(error = %e, "a demo witness stopped");
            }
        });
        blocks.push_str(&format!(
            "\n# A witness of the demo's own (DIR/witnesses/witness-{n}.*).\n\
             [[witness]]\nurl = \"http://{addr}\"\nkey = \"{vkey}\"\n"
        ));
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(config_file)
        .and_then(|mut f| f.write_all(blocks.as_bytes()))
        .map_err(|e| format!("cannot add the witnesses to {}: {e}", config_file.display()))
}
