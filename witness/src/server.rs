//! The witness `bru witness` runs (C2SP tlog-witness `add-checkpoint`).
//!
//! For each log it knows (by the log's verifier key, whose name is the
//! checkpoint origin) it keeps the newest checkpoint it cosigned, in a state
//! file it replaces atomically before it answers. A checkpoint is cosigned
//! only when its old size is that checkpoint's size and the consistency proof
//! leads from that checkpoint's root to the new one: a log that rewrote its
//! history (a fork) gets 409 or 422, never a cosignature.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use consent_db::merkle::{self, Hash};
use consent_db::note::{self, Checkpoint, NoteError};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde::{Deserialize, Serialize};

use crate::cosignature::{cosign, Cosigner};
use crate::protocol::{note_text, AddCheckpoint};

/// A checkpoint note is at most 16 KiB (note.rs) and a proof 63 lines.
const MAX_REQUEST_BYTES: usize = 32 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("the witness key {0} is not an Ed25519 PKCS#8 PEM key")]
    BadKey(PathBuf),
    #[error("--log {0:?}: {1}")]
    BadLog(String, NoteError),
    #[error("the state file {0} is not a witness state: {1}")]
    BadState(PathBuf, serde_json::Error),
    #[error("the witness name: {0}")]
    BadName(crate::CosignatureError),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}

/// What `bru witness` is given.
pub struct WitnessArgs {
    pub listen: SocketAddr,
    pub key_file: PathBuf,
    /// The verifier keys of the logs this witness cosigns.
    pub logs: Vec<String>,
    /// Where the witness keeps what it cosigned; `<key file>.state` if unset.
    pub state_file: Option<PathBuf>,
    /// The witness's key name; derived from its public key if unset.
    pub name: Option<String>,
}

/// The newest checkpoint cosigned for one log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Latest {
    size: u64,
    /// base64 of the root hash.
    root: String,
}

/// An answer to `add-checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Answer {
    fn text(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

pub struct Witness {
    name: String,
    key: Ed25519KeyPair,
    public_key: [u8; 32],
    logs: HashMap<String, [u8; 32]>,
    state_file: PathBuf,
    /// Held across check and persist, so two requests cannot roll the
    /// state back (the race tlog-witness describes).
    state: Mutex<BTreeMap<String, Latest>>,
}

impl Witness {
    /// Loads (or creates, on first start) the key, and loads the state.
    pub fn open(
        key_file: &Path,
        logs: &[String],
        state_file: Option<&Path>,
        name: Option<&str>,
    ) -> Result<Witness, SetupError> {
        let key = load_or_create_key(key_file)?;
        let public_key: [u8; 32] = key
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| SetupError::BadKey(key_file.to_owned()))?;
        let name = match name {
            Some(n) => n.to_owned(),
            None => {
                // Stable across restarts: the key decides it.
                let d = digest::digest(&digest::SHA256, &public_key);
                let hex: String = d.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
                format!("bru-witness/{hex}")
            }
        };
        Cosigner::new(&name, public_key).map_err(SetupError::BadName)?;
        let mut known = HashMap::new();
        for vkey in logs {
            let (origin, pk) =
                note::parse_verifier_key(vkey).map_err(|e| SetupError::BadLog(vkey.clone(), e))?;
            known.insert(origin, pk);
        }
        let state_file = state_file.map_or_else(
            || {
                let mut p = key_file.as_os_str().to_owned();
                p.push(".state");
                PathBuf::from(p)
            },
            Path::to_owned,
        );
        let state = match std::fs::read(&state_file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| SetupError::BadState(state_file.clone(), e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(SetupError::Io(state_file, e)),
        };
        Ok(Witness {
            name,
            key,
            public_key,
            logs: known,
            state_file,
            state: Mutex::new(state),
        })
    }

    pub fn cosigner(&self) -> Cosigner {
        Cosigner {
            name: self.name.clone(),
            public_key: self.public_key,
        }
    }

    /// The size this witness last cosigned for `origin` (0 if none).
    pub fn known_size(&self, origin: &str) -> u64 {
        self.state
            .lock()
            .map_or(0, |s| s.get(origin).map_or(0, |l| l.size))
    }

    /// Handles one `add-checkpoint` body at `now` (POSIX seconds).
    pub fn add_checkpoint(&self, body: &str, now: u64) -> Answer {
        let request = match AddCheckpoint::parse(body) {
            Ok(r) => r,
            Err(e) => return Answer::text(400, format!("{e}\n")),
        };
        let Some((text, origin)) = note_text(&request.checkpoint) else {
            return Answer::text(400, "the checkpoint is not a signed note\n");
        };
        let Some(log_key) = self.logs.get(origin) else {
            return Answer::text(404, "unknown log\n");
        };
        let checkpoint: Checkpoint = match note::open(&request.checkpoint, log_key) {
            Ok(c) => c,
            Err(NoteError::NoSignature(_) | NoteError::BadSignature(_)) => {
                return Answer::text(403, "no signature by the log's key verifies\n")
            }
            Err(e) => return Answer::text(400, format!("{e}\n")),
        };
        if request.old_size > checkpoint.size {
            return Answer::text(400, "the old size exceeds the checkpoint's size\n");
        }
        let Ok(mut state) = self.state.lock() else {
            return Answer::text(500, "the witness state is unavailable\n");
        };
        let latest = state.get(origin);
        let known_size = latest.map_or(0, |l| l.size);
        let conflict = || Answer {
            status: 409,
            content_type: "text/x.tlog.size",
            body: format!("{known_size}\n"),
        };
        if request.old_size != known_size {
            return conflict();
        }
        let known_root: Option<Hash> = latest.and_then(|l| {
            STANDARD
                .decode(&l.root)
                .ok()
                .and_then(|r| r.try_into().ok())
        });
        if request.old_size > 0 || latest.is_some() {
            let Some(known_root) = known_root else {
                return Answer::text(500, "the witness state is corrupt\n");
            };
            if request.old_size == checkpoint.size {
                if known_root != checkpoint.root {
                    // Same size, other root: a fork.
                    tracing::warn!(
                        origin,
                        size = checkpoint.size,
                        "a fork: same size, other root"
                    );
                    return conflict();
                }
            } else if merkle::verify_consistency(
                request.old_size,
                checkpoint.size,
                &request.proof,
                &known_root,
                &checkpoint.root,
            )
            .is_err()
            {
                tracing::warn!(
                    origin,
                    old = request.old_size,
                    size = checkpoint.size,
                    "the consistency proof does not verify (a fork?)"
                );
                return Answer::text(422, "the consistency proof does not verify\n");
            }
        } else if !request.proof.is_empty() {
            return Answer::text(422, "a proof from size 0 is empty\n");
        }
        let mut next = state.clone();
        next.insert(
            origin.to_owned(),
            Latest {
                size: checkpoint.size,
                root: STANDARD.encode(checkpoint.root),
            },
        );
        if let Err(e) = persist(&self.state_file, &next) {
            tracing::error!(error = %e, "cannot persist the witness state");
            return Answer::text(500, "the witness cannot persist its state\n");
        }
        *state = next;
        drop(state);
        match cosign(&self.name, &self.key, text, now) {
            Ok(line) => Answer {
                status: 200,
                content_type: "text/plain; charset=utf-8",
                body: line,
            },
            Err(e) => Answer::text(500, format!("{e}\n")),
        }
    }
}

/// Replaces the state file atomically (write, fsync, rename).
fn persist(path: &Path, state: &BTreeMap<String, Latest>) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename itself durable too; not every platform opens directories.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn load_or_create_key(path: &Path) -> Result<Ed25519KeyPair, SetupError> {
    let pem = match std::fs::read(path) {
        Ok(pem) => pem,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| SetupError::BadKey(path.to_owned()))?;
            let pem = pem_encode(pkcs8.as_ref());
            write_private(path, pem.as_bytes()).map_err(|e| SetupError::Io(path.to_owned(), e))?;
            pem.into_bytes()
        }
        Err(e) => return Err(SetupError::Io(path.to_owned(), e)),
    };
    let der = PrivatePkcs8KeyDer::from_pem_slice(&pem)
        .map_err(|_| SetupError::BadKey(path.to_owned()))?;
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der())
        .map_err(|_| SetupError::BadKey(path.to_owned()))
}

fn pem_encode(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

/// Creates the key file readable by its owner only; never overwrites.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: String) -> Response {
    // The state file is written under the lock: off the async workers.
    let answer = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body, now())).await;
    match answer {
        Ok(a) => (
            StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(header::CONTENT_TYPE, a.content_type)],
            a.body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The witness's HTTP routes: `POST /add-checkpoint`.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(witness)
}

/// Runs `bru witness`: prints `witness vkey=<vkey>` once it listens.
pub async fn serve(args: WitnessArgs) -> Result<(), SetupError> {
    let witness = Witness::open(
        &args.key_file,
        &args.logs,
        args.state_file.as_deref(),
        args.name.as_deref(),
    )?;
    let vkey = witness.cosigner().verifier_key();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| SetupError::Listen(args.listen, e))?;
    let local = listener
        .local_addr()
        .map_err(|e| SetupError::Listen(args.listen, e))?;
    tracing::info!(%local, "witness listening");
    println!("witness vkey={vkey}");
    println!("witness listening on {local}");
    axum::serve(listener, router(Arc::new(witness)))
        .await
        .map_err(|e| SetupError::Listen(args.listen, e))
}

#[cfg(test)]
mod tests;
