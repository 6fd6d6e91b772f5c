//! "Everything about me" (SPEC 10): `GET /citizen/v1/export`, one JSON
//! document a citizen can take away and verify offline without Bru
//! (docs/export.md): my consents with their events (and who took each),
//! every transfer about me that my access log shows (after any disclosure
//! delay), each with its RFC 9162 inclusion proof against ONE signed
//! checkpoint (a C2SP signed note, with the witnesses' cosignatures), and
//! the verifier keys.
//!
//! The transfers are read through the same query as the access log
//! (`portal::view::transfers`, which leaves out what a disclosure delay
//! still hides), a page at a time, and streamed: a citizen with 100,000
//! transfers costs one page of memory, not the whole document. The use is
//! an `audit_read` record about me, written before the first byte.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use consent_db::{AuditRecord, NewRecord, RecordKind, StoredCheckpoint, Timestamp, Verdict};
use http::{header, HeaderMap, HeaderValue};
use policy::PersonNumber;
use portal::view;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::json_api::ApiError;
use crate::openapi::{AuditUnavailable, Unauthorized};
use crate::problem::Failure;
use crate::refusals::Counted;
use crate::server::PeerAddr;

/// Transfers read (and proven) per store round: the access log's page size.
const PAGE: u32 = 200;
/// How long the export waits for a checkpoint that covers the log as it was
/// when asked (the checkpointer signs every 500 ms).
const CHECKPOINT_WAIT: Duration = Duration::from_secs(3);
/// The document's format, for a verifier to check it knows it.
pub const FORMAT: &str = "bru-export/1";
/// Where the offline procedure is written down.
const HOW_TO_VERIFY: &str = "docs/export.md in Bru's source: each transfer's `record` in RFC 8785 \
    canonical JSON is a leaf; SHA-256(0x00 || leaf) is `leaf_hash`; the RFC 9162 inclusion proof \
    (`leaf_index`, `audit_path`) leads to the root hash of `checkpoint` (a C2SP signed note: \
    origin, tree size, base64 root), whose Ed25519 signature verifies with `verifier_keys.log`; \
    witness cosignatures (C2SP tlog-cosignature) verify with `verifier_keys.witnesses`.";

pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(export))
}

/// The keys a verifier needs, as C2SP verifier keys (`name+keyid+base64`).
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifierKeys {
    /// The log's checkpoint key (Ed25519, signature type 0x01).
    pub log: String,
    /// The checkpoint key's `kid` in `/.well-known/jwks.json` (JWK `kty` OKP).
    pub log_kid: String,
    /// The configured witnesses' cosigner keys (tlog-cosignature, type 0x04).
    pub witnesses: Vec<String>,
}

/// Everything the document holds but its transfers (which are streamed).
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportHead {
    /// `bru-export/1`.
    pub format: &'static str,
    #[schema(format = DateTime)]
    pub generated_at: String,
    /// My keyed pseudonym: the `subject_ref` of every record about me.
    pub subject_ref: String,
    /// The procedure to verify this document offline.
    pub how_to_verify: String,
    /// The signed checkpoint every proof leads to: a C2SP signed note with
    /// the witnesses' cosignature lines.
    pub checkpoint: String,
    /// The checkpoint's tree size: transfers after it are in the next export.
    pub checkpoint_size: u64,
    /// When Bru signed the checkpoint.
    #[schema(format = DateTime)]
    pub checkpoint_time: String,
    pub verifier_keys: VerifierKeys,
    /// My consents, each with its history (`by`: who took each event).
    pub consents: Vec<crate::citizen_api::CitizenConsent>,
}

/// One transfer about me with its proof.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportTransfer {
    /// The audit record, exactly as the log holds it (its leaf bytes are
    /// this object in RFC 8785 canonical form).
    pub record: AuditRecord,
    /// The record's index: its leaf in the tree.
    pub leaf_index: u64,
    /// SHA-256(0x00 || leaf bytes), base64.
    #[schema(format = Byte)]
    pub leaf_hash: String,
    /// The RFC 9162 inclusion proof up to `checkpoint_size`, base64 hashes.
    pub audit_path: Vec<String>,
}

/// The whole document, for the OpenAPI schema (the answer is streamed).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // a schema only
pub struct Export {
    #[serde(flatten)]
    pub head: ExportHead,
    /// Every transfer about me under the checkpoint, oldest first.
    pub transfers: Vec<ExportTransfer>,
}

/// Everything about me, as one JSON document to take away and verify.
#[utoipa::path(
    get,
    path = "/citizen/v1/export",
    tag = "citizen",
    operation_id = "exportEverythingAboutMe",
    security(("idporten" = []), ("portal_session" = [])),
    params(("Bru-On-Behalf-Of" = Option<String>, Header,
        description = "Act for this party (a `party` from `GET /citizen/v1/represented`), SPEC 9.3.")),
    responses(
        (status = 200, description = "My consents and their events, every transfer about me with its \
            inclusion proof, the signed checkpoint and the verifier keys (`Content-Disposition: attachment`). \
            Verify it offline as docs/export.md describes.", body = Export,
            headers(
                ("Bru-Transfer-Id" = String, description = "The id of this use's `audit_read` record"),
                ("Content-Disposition" = String, description = "`attachment; filename=…`"),
            )),
        (status = 401, response = Unauthorized),
        (status = 403, description = "`not_represented`: Bru-On-Behalf-Of names no one I may act for",
            body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no checkpoint has been signed yet; try again in a second",
            body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = AuditUnavailable),
    )
)]
async fn export(
    State(app): State<Arc<App>>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let transfer_id = crate::transfer_id::new();
    let mut record = NewRecord::new(
        RecordKind::AuditRead,
        transfer_id.clone(),
        "GET",
        "/citizen/v1/export",
    );
    let source = peer.map(|Extension(PeerAddr(addr))| addr.ip());
    let prepared = prepare(&app, &headers, &mut record).await;
    record.duration_ms = Some(started.elapsed().as_millis().try_into().unwrap_or(u64::MAX));
    let unrecorded = || ApiError::Failure(Failure::AuditUnavailable).recorded(&transfer_id);
    let (me, head) = match prepared {
        Ok(ok) => ok,
        Err(refusal) => {
            record.decision = Some(Verdict::Deny);
            record.code = Some(refusal.code().to_owned());
            record.status = Some(refusal.status().as_u16());
            // Without a valid token a refusal costs its sender nothing:
            // counted into one record per source and interval.
            if let Counted::Into(id) = app.refusals.count(source, &record) {
                return Err(refusal.recorded(&id));
            }
            if app.record(record).await.is_err() {
                return Err(unrecorded());
            }
            return Err(refusal.recorded(&transfer_id));
        }
    };
    record.decision = Some(Verdict::Allow);
    record.status = Some(200);
    // What cannot be recorded is not answered.
    if app.record(record).await.is_err() {
        return Err(unrecorded());
    }
    let date = head.generated_at.get(..10).unwrap_or("export").to_owned();
    let mut response = Response::new(stream(app, me, head));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"bru-everything-about-me-{date}.json\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&transfer_id) {
        h.insert(connectors::BRU_TRANSFER_ID, v);
    }
    Ok(response)
}

/// Whom the export is about, and everything but the transfers.
async fn prepare(
    app: &App,
    headers: &HeaderMap,
    record: &mut NewRecord,
) -> Result<(String, ExportHead), ApiError> {
    let me = subject(app, headers).await?;
    let subject_ref = app.keys.pseudonym.subject_ref(&me);
    record.subject_ref = Some(subject_ref.clone());
    let checkpoint = covering_checkpoint(app).await?;
    let now = Timestamp::now();
    let rows = app.store.consents_by_subject(&me, now).await?;
    let mut consents = Vec::with_capacity(rows.len());
    for row in &rows {
        let events = app.store.consent_events(&row.id).await?;
        let events = crate::representation::events_with_actors(app, &row.id, &events).await?;
        consents.push(crate::citizen_api::CitizenConsent {
            consent: view::consent(&app.policy, row),
            receipt_url: format!(
                "{}/citizen/v1/consents/{}/receipt",
                app.config.public_url, row.id
            ),
            events: Some(events),
        });
    }
    let note =
        crate::witnessing::with_cosignatures(app, checkpoint.note.clone(), checkpoint.size).await;
    let head = ExportHead {
        format: FORMAT,
        generated_at: now.to_string(),
        subject_ref: subject_ref.clone(),
        how_to_verify: HOW_TO_VERIFY.to_owned(),
        checkpoint: note,
        checkpoint_size: checkpoint.size,
        checkpoint_time: checkpoint.time.to_string(),
        verifier_keys: VerifierKeys {
            log: crate::transparency::verifier_key(app),
            log_kid: app.keys.checkpoint_kid.clone(),
            witnesses: app
                .config
                .witnesses
                .iter()
                .map(|w| w.cosigner.verifier_key())
                .collect(),
        },
        consents,
    };
    Ok((subject_ref, head))
}

/// The citizen of an ID-porten token (or whom `Bru-On-Behalf-Of` names), or,
/// from the portal's own download button, of the browser's portal session
/// (and whom the citizen chose to act for there).
async fn subject(app: &App, headers: &HeaderMap) -> Result<PersonNumber, ApiError> {
    if headers.get(header::AUTHORIZATION).is_none() {
        if let Some(portal) = app.portal.get() {
            if let Some(pid) = portal.session_subject(headers).await {
                return Ok(pid);
            }
        }
    }
    Ok(crate::representation::acting(app, headers, false)
        .await?
        .subject)
}

/// The newest checkpoint, waiting a little for one that covers the log as it
/// is now (so the export holds every transfer made before it was asked for).
async fn covering_checkpoint(app: &App) -> Result<StoredCheckpoint, ApiError> {
    let head = app.store.tree_head().await.map_err(ApiError::audit_log)?;
    let deadline = Instant::now() + CHECKPOINT_WAIT;
    loop {
        let cp = app
            .store
            .latest_checkpoint()
            .await
            .map_err(ApiError::audit_log)?;
        match cp {
            Some(cp) if cp.size >= head.size || Instant::now() >= deadline => return Ok(cp),
            None if Instant::now() >= deadline => {
                return Err(ApiError::NotFound(
                    "No checkpoint has been signed yet; try again in a second.",
                ))
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Where the stream is.
enum Step {
    Head(Box<ExportHead>),
    Transfers { after: Option<u64>, first: bool },
    Done,
}

/// The document: the head, then the transfers a page at a time.
fn stream(app: Arc<App>, subject_ref: String, head: ExportHead) -> Body {
    let size = head.checkpoint_size;
    let steps = futures_util::stream::unfold(Step::Head(Box::new(head)), move |step| {
        let app = app.clone();
        let subject_ref = subject_ref.clone();
        async move {
            match step {
                Step::Head(head) => {
                    // `{…head…,"transfers":[`
                    let chunk = serde_json::to_vec(&*head).map(|mut bytes| {
                        bytes.pop(); // the head's closing brace
                        bytes.extend_from_slice(b",\"transfers\":[");
                        bytes
                    });
                    match chunk {
                        Ok(bytes) => Some((
                            Ok(Bytes::from(bytes)),
                            Step::Transfers {
                                after: None,
                                first: true,
                            },
                        )),
                        Err(e) => Some((Err(broken("the head", &e)), Step::Done)),
                    }
                }
                Step::Transfers { after, first } => {
                    match page(&app, &subject_ref, after, size, first).await {
                        Ok((bytes, Some(next))) => Some((
                            Ok(Bytes::from(bytes)),
                            Step::Transfers {
                                after: Some(next),
                                first: false,
                            },
                        )),
                        Ok((mut bytes, None)) => {
                            bytes.extend_from_slice(b"]}\n");
                            Some((Ok(Bytes::from(bytes)), Step::Done))
                        }
                        // The body ends early: the client sees a broken
                        // download, never a document that looks whole.
                        Err(e) => Some((Err(e), Step::Done)),
                    }
                }
                Step::Done => None,
            }
        }
    });
    Body::from_stream(steps)
}

fn broken(what: &str, e: &dyn std::fmt::Display) -> std::io::Error {
    tracing::error!(error = %e, "the export stopped at {what}");
    std::io::Error::other("the export could not be completed")
}

/// One page of transfers with their proofs, as JSON array members, and the
/// cursor of the next page (none after the last, or past the checkpoint).
async fn page(
    app: &App,
    subject_ref: &str,
    after: Option<u64>,
    size: u64,
    first: bool,
) -> Result<(Vec<u8>, Option<u64>), std::io::Error> {
    // The access log's own query: what a disclosure delay hides is not here.
    let read = view::transfers(&app.store, subject_ref.to_owned(), after, PAGE)
        .await
        .map_err(|e| broken("a page of transfers", &e))?;
    let mut out = Vec::new();
    let mut first = first;
    let mut past_checkpoint = false;
    for record in read.records {
        if record.index >= size {
            // Written after the checkpoint: in the next export.
            past_checkpoint = true;
            break;
        }
        let item = transfer(app, record, size).await?;
        if !first {
            out.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut out, &item).map_err(|e| broken("a transfer", &e))?;
    }
    let next = if past_checkpoint { None } else { read.next };
    Ok((out, next))
}

async fn transfer(
    app: &App,
    record: AuditRecord,
    size: u64,
) -> Result<ExportTransfer, std::io::Error> {
    let index = record.index;
    let leaf = serde_json::to_value(&record)
        .map_err(|e| broken("a record's JSON", &e))
        .and_then(|v| {
            consent_db::canonical::to_vec(&v).map_err(|e| broken("a record's leaf", &e))
        })?;
    let path = app
        .store
        .inclusion_proof(index, size)
        .await
        .map_err(|e| broken("an inclusion proof", &e))?;
    Ok(ExportTransfer {
        record,
        leaf_index: index,
        leaf_hash: STANDARD.encode(consent_db::merkle::leaf_hash(&leaf)),
        audit_path: path.iter().map(|h| STANDARD.encode(h)).collect(),
    })
}
