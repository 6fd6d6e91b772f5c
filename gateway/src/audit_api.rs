//! The audit API (SPEC section 5), for security teams, and the citizen's
//! proof of a record about them:
//!
//! - `GET /audit/v1/records?since=&until=&consumer=&dataset=&decision=&subject=&cursor=&limit=`
//! - `GET /audit/v1/checkpoint`: the latest signed checkpoint (a C2SP note)
//! - `GET /audit/v1/checkpoint/key`: its verifier key (public, unrecorded)
//! - `GET /audit/v1/proof/inclusion?index=&size=`, `GET /audit/v1/proof/consistency?from=&to=`
//! - `GET /citizen/v1/transfers/{index}/proof`: inclusion proof, record and
//!   checkpoint, for the citizen the record is about
//!
//! Machine callers need a Maskinporten token with scope `bru:audit` from an
//! organisation whose consumer rule says `audit_reader`; a supplier acting
//! for it only where the rule names it in `audit_suppliers`. Every use, allowed
//! or refused, is itself an `audit_read` record, written before the answer:
//! what cannot be recorded is not answered (503 `audit_unavailable`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::Extension;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use consent_db::merkle::Hash;
use consent_db::{AuditRecord, NewRecord, ProofQueryError, RecordFilter, RecordKind, Verdict};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use percent_encoding::percent_decode_str;
use policy::{Api, DenyCode, OrgNumber, PersonNumber};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::json_api::{self, ApiError};
use crate::openapi::{AuditUnavailable, BadRequest, Forbidden, NotFound, Unauthorized};
use crate::problem::Failure;
use crate::refusals::Counted;
use crate::server::PeerAddr;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// The routes, each from its handler's `#[utoipa::path]`.
pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(records))
        .routes(routes!(checkpoint))
        .routes(routes!(checkpoint_key))
        .routes(routes!(inclusion))
        .routes(routes!(consistency))
        .routes(routes!(citizen_proof))
        .routes(routes!(alerts))
}

/// The query parameters of each endpoint: the handlers refuse any other
/// (400), and the OpenAPI document lists exactly these (a unit test holds
/// the two together).
pub(crate) const RECORDS_PARAMS: [&str; 9] = [
    "since", "until", "consumer", "dataset", "decision", "subject", "cursor", "limit", "kind",
];
pub(crate) const INCLUSION_PARAMS: [&str; 2] = ["index", "size"];
pub(crate) const CONSISTENCY_PARAMS: [&str; 2] = ["from", "to"];
pub(crate) const ALERTS_PARAMS: [&str; 4] = ["since", "rule", "cursor", "limit"];

/// `GET /audit/v1/records`: every filter set narrows the result.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // parameters only; the handler reads the raw query
struct RecordsQuery {
    /// Records committed at or after this time (RFC 3339).
    #[param(format = DateTime, nullable = false)]
    since: Option<String>,
    /// Records committed before this time (RFC 3339).
    #[param(format = DateTime, nullable = false)]
    until: Option<String>,
    /// The calling organisation, `0192:{orgnr}`.
    #[param(
        pattern = "^0192:[0-9]{9}$",
        nullable = false,
        example = "0192:921429002"
    )]
    consumer: Option<String>,
    /// `provider/dataset`.
    #[param(pattern = "^[^/]+/[^/]+$", nullable = false, example = "nav/inntekt")]
    dataset: Option<String>,
    #[param(value_type = Option<Verdict>, nullable = false)]
    decision: Option<String>,
    /// A person number (fødselsnummer or D-nummer); pseudonymised before
    /// the search, and the search itself is recorded as about this person.
    #[param(pattern = "^[0-9]{11}$", nullable = false)]
    subject: Option<String>,
    /// `next_cursor` of the page before.
    #[param(minimum = 0, maximum = 9223372036854775807_i64, nullable = false)]
    cursor: Option<u64>,
    /// At most this many records.
    #[param(minimum = 1, maximum = 1000, default = 100, nullable = false)]
    limit: Option<u32>,
    /// Only records of this kind (`kind=decision` keeps the audit team's own
    /// `audit_read` records out of the way).
    #[param(value_type = Option<RecordKind>, nullable = false)]
    kind: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // parameters only; the handler reads the raw query
struct InclusionQuery {
    /// The record's index (its leaf), below `size`.
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    index: u64,
    /// The tree size the proof is for, at most the current tree's.
    #[param(minimum = 1, maximum = 9223372036854775807_i64)]
    size: u64,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // parameters only; the handler reads the raw query
struct ConsistencyQuery {
    /// The older tree size.
    #[param(minimum = 1, maximum = 9223372036854775807_i64)]
    from: u64,
    /// The newer tree size, at least `from`, at most the current tree's.
    #[param(minimum = 1, maximum = 9223372036854775807_i64)]
    to: u64,
}

/// One page of audit records.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordPage {
    /// In index order.
    pub records: Vec<AuditRecord>,
    /// The `cursor` of the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// An RFC 9162 inclusion proof (audit path), hashes in base64.
#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    #[schema(inline)]
    pub hashes: Vec<Base64Hash>,
}

/// An RFC 9162 consistency proof, hashes in base64.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    #[schema(inline)]
    pub hashes: Vec<Base64Hash>,
}

/// A citizen's proof that a record about them is in the log: the record,
/// its inclusion proof up to the latest signed checkpoint, and the key to
/// check the checkpoint with.
#[derive(Debug, Serialize, ToSchema)]
pub struct CitizenProof {
    pub index: u64,
    pub size: u64,
    #[schema(inline)]
    pub hashes: Vec<Base64Hash>,
    pub record: AuditRecord,
    /// The signed checkpoint (a C2SP signed note) of tree size `size`.
    pub checkpoint: String,
    /// The checkpoint's verifier key (C2SP vkey).
    pub checkpoint_key: String,
    /// The checkpoint key's `kid` in `/.well-known/jwks.json`.
    pub checkpoint_kid: String,
}

/// A SHA-256 hash in standard base64.
#[derive(Debug, Serialize, ToSchema)]
#[schema(format = Byte, pattern = "^[A-Za-z0-9+/]{43}=$")]
pub struct Base64Hash(String);

/// One use of the API and its `audit_read` record.
struct Use {
    started: Instant,
    transfer_id: String,
    record: NewRecord,
    /// The client's address: refusals before authentication are counted
    /// per source (`refusals.rs`), never recorded with it.
    source: Option<IpAddr>,
}

impl Use {
    /// `route` is the path without the query, and without any person number.
    fn new(route: impl Into<String>, peer: Option<Extension<PeerAddr>>) -> Use {
        let transfer_id = crate::transfer_id::new();
        Use {
            started: Instant::now(),
            record: NewRecord::new(RecordKind::AuditRead, transfer_id.clone(), "GET", route),
            transfer_id,
            source: peer.map(|Extension(PeerAddr(addr))| addr.ip()),
        }
    }

    /// Authenticates a machine caller and checks it may read the audit log.
    async fn authorize(&mut self, app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
        let token = app
            .auth
            .machine(headers.get(header::AUTHORIZATION))
            .await
            .map_err(Failure::Auth)?;
        let caller = token.caller;
        self.record.consumer = Some(caller.consumer.iso6523());
        self.record.supplier = caller.supplier.as_ref().map(OrgNumber::iso6523);
        self.record.client_id = Some(caller.client_id.clone());
        if policy::supplier_refused(&app.policy, &caller, Api::Audit) {
            return Err(ApiError::SupplierNotNamed);
        }
        policy::authorize_api(&app.policy, &caller, Api::Audit)?;
        // Every call answered before this read is in what it reads: outcome
        // records queued without waiting for a commit (`append_later`) are
        // written first. With nothing queued this is one message to the
        // writer; a store that fails it fails the read below as well.
        let _ = app.audit.flush().await;
        Ok(())
    }

    /// Records this use, then answers; 503 when the record cannot be written.
    /// Every answer, an error too, carries the transfer id of its record.
    async fn finish(
        mut self,
        app: &App,
        result: Result<Response, ApiError>,
    ) -> Result<Response, ApiError> {
        self.record.duration_ms = Some(
            self.started
                .elapsed()
                .as_millis()
                .try_into()
                .unwrap_or(u64::MAX),
        );
        let unrecorded = ApiError::Failure(Failure::AuditUnavailable);
        match result {
            Ok(mut response) => {
                self.record.decision = Some(Verdict::Allow);
                self.record.status = Some(response.status().as_u16());
                if app.record(self.record).await.is_err() {
                    return Err(unrecorded.recorded(&self.transfer_id));
                }
                if let Ok(v) = HeaderValue::from_str(&self.transfer_id) {
                    response
                        .headers_mut()
                        .insert(connectors::BRU_TRANSFER_ID, v);
                }
                Ok(response)
            }
            Err(refusal) => {
                self.record.decision = Some(Verdict::Deny);
                self.record.code = Some(refusal.code().to_owned());
                self.record.status = Some(refusal.status().as_u16());
                // Without a valid token a refusal costs its sender nothing:
                // counted into one record per source and interval.
                if let Counted::Into(transfer_id) = app.refusals.count(self.source, &self.record) {
                    return Err(refusal.recorded(&transfer_id));
                }
                if app.record(self.record).await.is_err() {
                    return Err(unrecorded.recorded(&self.transfer_id));
                }
                Err(refusal.recorded(&self.transfer_id))
            }
        }
    }
}

/// The query's parameters, each at most once and each one the endpoint knows.
struct Params(Vec<(&'static str, String)>);

impl Params {
    fn parse(query: Option<&str>, known: &[&'static str]) -> Result<Params, ApiError> {
        let mut out: Vec<(&'static str, String)> = Vec::new();
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let Some(name) = known.iter().copied().find(|k| *k == name) else {
                return Err(Failure::MalformedRequest(
                    "unknown query parameter; the parameters are listed in the API documentation",
                )
                .into());
            };
            if out.iter().any(|(n, _)| *n == name) {
                return Err(malformed(name, "is given twice"));
            }
            // RFC 3986 query: '+' is itself (a time offset), %2B works too.
            let value = percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| malformed(name, "is not UTF-8"))?;
            out.push((name, value.into_owned()));
        }
        Ok(Params(out))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A non-negative integer up to `i64::MAX` (the documented `int64`;
    /// indexes and tree sizes are stored as such).
    fn number(&self, name: &'static str) -> Result<Option<u64>, ApiError> {
        self.get(name)
            .map(|v| {
                if v.bytes().all(|b| b.is_ascii_digit()) {
                    v.parse::<i64>()
                        .ok()
                        .and_then(|n| u64::try_from(n).ok())
                        .ok_or_else(|| malformed(name, "is too large"))
                } else {
                    Err(malformed(name, "must be a non-negative integer"))
                }
            })
            .transpose()
    }

    /// An RFC 3339 time; empty (`since=`) is no filter, as the document
    /// says (`allowEmptyValue`, openapi.rs).
    fn time(&self, name: &'static str) -> Result<Option<consent_db::Timestamp>, ApiError> {
        self.get(name)
            .map(|v| consent_db::Timestamp::parse(v).map_err(|_| malformed(name, "")))
            .transpose()
    }

    /// `limit`: 1 to `MAX_LIMIT`, `DEFAULT_LIMIT` when absent.
    fn limit(&self) -> Result<u32, ApiError> {
        match self.number("limit")? {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=u64::from(MAX_LIMIT)).contains(&n) => Ok(n as u32),
            Some(_) => Err(malformed("limit", "")),
        }
    }

    fn required(&self, name: &'static str) -> Result<u64, ApiError> {
        self.number(name)?
            .ok_or_else(|| malformed(name, "is required"))
    }
}

/// A page read with one more item than `limit` (which says whether there is
/// a next page): cut to `limit`, and the next page's cursor, if any.
fn next_page<T>(found: &mut Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Option<String> {
    if found.len() > limit as usize {
        found.truncate(limit as usize);
        found.last().map(cursor)
    } else {
        None
    }
}

/// 400 `malformed_request` naming the parameter. The detail never quotes the
/// value: it may be a person number.
fn malformed(name: &'static str, what: &'static str) -> ApiError {
    let detail: &'static str = match (name, what) {
        ("cursor", "is too large") => {
            "The query parameter `cursor` is too large (at most 2^63 - 1)."
        }
        ("index", "is too large") => "The query parameter `index` is too large (at most 2^63 - 1).",
        ("size", "is too large") => "The query parameter `size` is too large (at most 2^63 - 1).",
        ("from", "is too large") => "The query parameter `from` is too large (at most 2^63 - 1).",
        ("to", "is too large") => "The query parameter `to` is too large (at most 2^63 - 1).",
        ("limit", "is too large") => {
            "The query parameter `limit` must be an integer from 1 to 1000."
        }
        ("since", _) => "The query parameter `since` must be an RFC 3339 time.",
        ("until", _) => "The query parameter `until` must be an RFC 3339 time.",
        ("consumer", _) => {
            "The query parameter `consumer` must be an organisation as 0192:{orgnr}."
        }
        ("dataset", _) => "The query parameter `dataset` must be provider/dataset.",
        ("decision", _) => "The query parameter `decision` must be allow or deny.",
        ("kind", _) => "The query parameter `kind` must be decision, outcome or audit_read.",
        ("rule", _) => {
            "The query parameter `rule` must be subjects_per_hour, off_hours, break_glass or representation."
        }
        ("cursor", _) => "The query parameter `cursor` must be a cursor from an earlier answer.",
        ("limit", _) => "The query parameter `limit` must be an integer from 1 to 1000.",
        ("index", "is required") => "The query parameter `index` is required.",
        ("index", "is not below size") => "The query parameter `index` must be below `size`.",
        ("index", _) => "The query parameter `index` must be a non-negative integer.",
        ("size", "is required") => "The query parameter `size` is required.",
        ("size", "is larger than the tree") => {
            "The query parameter `size` is larger than the tree."
        }
        ("size", _) => "The query parameter `size` must be a positive integer.",
        ("from", "is required") => "The query parameter `from` is required.",
        ("from", "is larger than to") => "The query parameter `from` must not be larger than `to`.",
        ("from", _) => "The query parameter `from` must be a positive integer.",
        ("to", "is required") => "The query parameter `to` is required.",
        ("to", "is larger than the tree") => "The query parameter `to` is larger than the tree.",
        ("to", _) => "The query parameter `to` must be a positive integer.",
        (_, "is given twice") => "A query parameter is given twice.",
        _ => "A query parameter is malformed.",
    };
    ApiError::Failure(Failure::MalformedRequest(detail))
}

fn json_ok<T: Serialize>(body: &T) -> Response {
    json_api::json(StatusCode::OK, body)
}

fn b64(hashes: &[Hash]) -> Vec<Base64Hash> {
    hashes
        .iter()
        .map(|h| Base64Hash(STANDARD.encode(h)))
        .collect()
}

// ---- GET /audit/v1/records ----------------------------------------------

/// Audit records, filtered, in pages. The search is itself recorded.
#[utoipa::path(
    get,
    path = "/audit/v1/records",
    tag = "audit",
    operation_id = "searchAuditRecords",
    security(("maskinporten_audit" = [])),
    params(RecordsQuery),
    responses(
        (status = 200, description = "One page of records", body = RecordPage,
            headers(("Bru-Transfer-Id" = String, description = "The id of this use's `audit_read` record"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = AuditUnavailable),
    )
)]
async fn records(
    State(app): State<Arc<App>>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut u = Use::new("/audit/v1/records", peer);
    let result = search(&app, &headers, query.as_deref(), &mut u).await;
    u.finish(&app, result).await
}

async fn search(
    app: &App,
    headers: &HeaderMap,
    query: Option<&str>,
    u: &mut Use,
) -> Result<Response, ApiError> {
    u.authorize(app, headers).await?;
    let p = Params::parse(query, &RECORDS_PARAMS)?;
    let mut filter = RecordFilter {
        since: p.time("since")?,
        until: p.time("until")?,
        ..RecordFilter::default()
    };
    if let Some(c) = p.get("consumer") {
        filter.consumer = Some(
            OrgNumber::parse_iso6523(c)
                .map_err(|_| malformed("consumer", ""))?
                .iso6523(),
        );
    }
    if let Some(d) = p.get("dataset") {
        let reference: policy::DatasetRef = d.parse().map_err(|_| malformed("dataset", ""))?;
        filter.provider = Some(reference.provider.clone());
        filter.dataset = Some(reference.to_string());
    }
    if let Some(d) = p.get("decision") {
        filter.decision = Some(
            d.parse::<Verdict>()
                .map_err(|_| malformed("decision", ""))?,
        );
    }
    // witness (#20): the kind filter.
    if let Some(k) = p.get("kind") {
        filter.kind = Some(k.parse::<RecordKind>().map_err(|_| malformed("kind", ""))?);
    }
    if let Some(s) = p.get("subject") {
        let person = PersonNumber::parse(s, app.config.allow_synthetic_ids)
            .map_err(|_| DenyCode::InvalidSubject)?;
        let subject_ref = app.keys.pseudonym.subject_ref(&person);
        // The read is about this person too: their pseudonym, never the number.
        u.record.subject_ref = Some(subject_ref.clone());
        filter.subject_ref = Some(subject_ref);
    }
    filter.after_index = p.number("cursor")?;
    let limit = p.limit()?;
    // One more than asked says whether there is a next page.
    filter.limit = Some(limit + 1);
    let mut found = app
        .store
        .records(&filter)
        .await
        .map_err(ApiError::audit_log)?;
    let next_cursor = next_page(&mut found, limit, |r| r.index.to_string());
    Ok(json_ok(&RecordPage {
        records: found,
        next_cursor,
    }))
}

// ---- GET /audit/v1/checkpoint --------------------------------------------

/// The latest signed checkpoint of the transparency log. Recorded.
#[utoipa::path(
    get,
    path = "/audit/v1/checkpoint",
    tag = "audit",
    operation_id = "getCheckpoint",
    security(("maskinporten_audit" = [])),
    responses(
        (status = 200, description = "A C2SP signed note: origin, tree size, base64 root hash, Ed25519 signature",
            body = String, content_type = "text/plain",
            headers(("Bru-Transfer-Id" = String, description = "The id of this use's `audit_read` record"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = AuditUnavailable),
    )
)]
async fn checkpoint(
    State(app): State<Arc<App>>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut u = Use::new("/audit/v1/checkpoint", peer);
    let result = async {
        u.authorize(&app, &headers).await?;
        Params::parse(query.as_deref(), &[])?;
        let cp = app
            .store
            .latest_checkpoint()
            .await
            .map_err(ApiError::audit_log)?;
        let cp = cp.ok_or(ApiError::NotFound(
            "No checkpoint has been signed yet; try again in a second.",
        ))?;
        let note = crate::witnessing::with_cosignatures(&app, cp.note, cp.size).await;
        Ok(text_ok(note))
    }
    .await;
    u.finish(&app, result).await
}

fn text_ok(text: String) -> Response {
    let mut response = Response::new(Body::from(text));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The checkpoint key as a C2SP verifier key: public, like the JWKS.
#[utoipa::path(
    get,
    path = "/audit/v1/checkpoint/key",
    tag = "audit",
    operation_id = "getCheckpointKey",
    responses(
        (status = 200, description = "The checkpoints' verifier key (C2SP vkey: origin+key id+base64 Ed25519 key)",
            body = String, content_type = "text/plain"),
    )
)]
async fn checkpoint_key(State(app): State<Arc<App>>) -> Response {
    let mut response = text_ok(format!("{}\n", crate::transparency::verifier_key(&app)));
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

// ---- proofs ----------------------------------------------------------------

/// An inclusion proof of record `index` in the tree of size `size`. Recorded.
#[utoipa::path(
    get,
    path = "/audit/v1/proof/inclusion",
    tag = "audit",
    operation_id = "getInclusionProof",
    security(("maskinporten_audit" = [])),
    params(InclusionQuery),
    responses(
        (status = 200, description = "The proof", body = InclusionProof,
            headers(("Bru-Transfer-Id" = String, description = "The id of this use's `audit_read` record"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = AuditUnavailable),
    )
)]
async fn inclusion(
    State(app): State<Arc<App>>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut u = Use::new("/audit/v1/proof/inclusion", peer);
    let result = async {
        u.authorize(&app, &headers).await?;
        let p = Params::parse(query.as_deref(), &INCLUSION_PARAMS)?;
        let (index, size) = (p.required("index")?, p.required("size")?);
        if size == 0 {
            return Err(malformed("size", ""));
        }
        let tree = app.store.tree_head().await.map_err(ApiError::audit_log)?;
        if size > tree.size {
            return Err(malformed("size", "is larger than the tree"));
        }
        if index >= size {
            return Err(malformed("index", "is not below size"));
        }
        let hashes = app
            .store
            .inclusion_proof(index, size)
            .await
            .map_err(proof_error)?;
        Ok(json_ok(&InclusionProof {
            index,
            size,
            hashes: b64(&hashes),
        }))
    }
    .await;
    u.finish(&app, result).await
}

/// A consistency proof between the trees of sizes `from` and `to`. Recorded.
#[utoipa::path(
    get,
    path = "/audit/v1/proof/consistency",
    tag = "audit",
    operation_id = "getConsistencyProof",
    security(("maskinporten_audit" = [])),
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "The proof", body = ConsistencyProof,
            headers(("Bru-Transfer-Id" = String, description = "The id of this use's `audit_read` record"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = AuditUnavailable),
    )
)]
async fn consistency(
    State(app): State<Arc<App>>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut u = Use::new("/audit/v1/proof/consistency", peer);
    let result = async {
        u.authorize(&app, &headers).await?;
        let p = Params::parse(query.as_deref(), &CONSISTENCY_PARAMS)?;
        let (from, to) = (p.required("from")?, p.required("to")?);
        if from == 0 {
            return Err(malformed("from", ""));
        }
        if from > to {
            return Err(malformed("from", "is larger than to"));
        }
        let tree = app.store.tree_head().await.map_err(ApiError::audit_log)?;
        if to > tree.size {
            return Err(malformed("to", "is larger than the tree"));
        }
        let hashes = app
            .store
            .consistency_proof(from, to)
            .await
            .map_err(proof_error)?;
        Ok(json_ok(&ConsistencyProof {
            from,
            to,
            hashes: b64(&hashes),
        }))
    }
    .await;
    u.finish(&app, result).await
}

fn proof_error(e: ProofQueryError) -> ApiError {
    match e {
        // The ranges were checked against the tree, which only grows.
        ProofQueryError::OutOfRange(_) => ApiError::Failure(Failure::MalformedRequest(
            "The proof's sizes are out of range.",
        )),
        ProofQueryError::Store(e) => ApiError::audit_log(e),
    }
}

// ---- GET /citizen/v1/transfers/{index}/proof -------------------------------

const NOT_YOURS: &str = "You have no transfer record with this index.";

/// The proof that a record about me is in the log. Recorded (as about me).
#[utoipa::path(
    get,
    path = "/citizen/v1/transfers/{index}/proof",
    tag = "citizen",
    operation_id = "getMyTransferProof",
    security(("idporten" = []), ("portal_session" = [])),
    params(("index" = u64, Path, minimum = 0, description = "The record's index (`index` in my access log)")),
    responses(
        (status = 200, description = "The record, its inclusion proof and the signed checkpoint", body = CitizenProof,
            headers(("Bru-Transfer-Id" = String, description = "The id of this use's `audit_read` record"))),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = AuditUnavailable),
    )
)]
async fn citizen_proof(
    State(app): State<Arc<App>>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    let mut u = Use::new("/citizen/v1/transfers/{index}/proof", peer);
    // `Bru-On-Behalf-Of` (SPEC 9.3): the proof of a record about the person
    // acted for. Refused after the token was verified: recorded now, as the
    // sender's (not counted as a tokenless refusal).
    let represented = match crate::representation::represented_subject(&app, &headers).await {
        Ok(represented) => represented,
        Err(refusal) if refusal.sender_ref.is_some() => {
            let route = "/citizen/v1/transfers/{index}/proof";
            return Err(crate::representation::record_refusal(&app, refusal, Some(route)).await);
        }
        Err(refusal) => return u.finish(&app, Err(refusal.error)).await,
    };
    let result = async {
        // A front end sends an ID-porten token; the portal's own pages link
        // here, and the citizen's browser brings the portal session instead.
        let pid = match app
            .portal
            .get()
            .filter(|_| headers.get(header::AUTHORIZATION).is_none())
        {
            Some(portal) => portal.session_citizen(&headers).await,
            None => None,
        };
        let pid = match pid {
            Some(pid) => pid,
            None => {
                let pid = app
                    .auth
                    .citizen(headers.get(header::AUTHORIZATION))
                    .await
                    .map_err(Failure::Auth)?
                    .pid;
                represented.clone().unwrap_or(pid)
            }
        };
        let me = app.keys.pseudonym.subject_ref(&pid);
        u.record.subject_ref = Some(me.clone());
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::NotFound(NOT_YOURS));
        }
        let index: u64 = index.parse().map_err(|_| ApiError::NotFound(NOT_YOURS))?;
        u.record.path = format!("/citizen/v1/transfers/{index}/proof");
        // Mine and disclosed (SPEC 10: a delayed transfer is absent until
        // its time), or 404 as if it did not exist.
        let record = app
            .store
            .citizen_record(index, &me)
            .await
            .map_err(ApiError::audit_log)?
            .ok_or(ApiError::NotFound(NOT_YOURS))?;
        let cp = app
            .store
            .latest_checkpoint()
            .await
            .map_err(ApiError::audit_log)?;
        let cp = cp.filter(|c| c.size > index).ok_or(ApiError::NotFound(
            "The record is not under a signed checkpoint yet; try again in a second.",
        ))?;
        let hashes = app
            .store
            .inclusion_proof(index, cp.size)
            .await
            .map_err(proof_error)?;
        Ok(json_ok(&CitizenProof {
            index,
            size: cp.size,
            hashes: b64(&hashes),
            record,
            // witness (#20): with the witnesses' cosignatures.
            checkpoint: crate::witnessing::with_cosignatures(&app, cp.note, cp.size).await,
            checkpoint_key: crate::transparency::verifier_key(&app),
            checkpoint_kid: app.keys.checkpoint_kid.clone(),
        }))
    }
    .await;
    u.finish(&app, result).await
}

// ---- GET /audit/v1/alerts (SPEC 11) ---------------------------------------

/// `GET /audit/v1/alerts`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // parameters only; the handler reads the raw query
struct AlertsQuery {
    /// Findings about records committed at or after this time (RFC 3339).
    #[param(format = DateTime, nullable = false)]
    since: Option<String>,
    /// Only findings of this rule.
    #[param(value_type = Option<AlertRule>, inline, nullable = false)]
    rule: Option<String>,
    /// `next_cursor` of the page before.
    #[param(minimum = 0, maximum = 9223372036854775807_i64, nullable = false)]
    cursor: Option<u64>,
    /// At most this many findings.
    #[param(minimum = 1, maximum = 1000, default = 100, nullable = false)]
    limit: Option<u32>,
}

/// The snooping rules of policy's `[snooping]`.
#[derive(ToSchema)]
#[schema(as = AlertRule)]
#[allow(dead_code)] // the schema only
#[serde(rename_all = "snake_case")]
enum AlertRule {
    SubjectsPerHour,
    OffHours,
    BreakGlass,
    Representation,
}

/// One page of snooping findings.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertPage {
    /// Oldest first (by the record that triggered each).
    pub alerts: Vec<consent_db::StoredFinding>,
    /// The `cursor` of the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Snooping findings (SPEC 11): what the rules of `[snooping]` found in the
/// log, each with the records behind it. The read is itself recorded.
#[utoipa::path(
    get,
    path = "/audit/v1/alerts",
    tag = "audit",
    operation_id = "listAuditAlerts",
    security(("maskinporten_audit" = [])),
    params(AlertsQuery),
    responses(
        (status = 200, description = "One page of findings", body = AlertPage,
            headers(("Bru-Transfer-Id" = String, description = "The id of this use's `audit_read` record"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = AuditUnavailable),
    )
)]
async fn alerts(
    State(app): State<Arc<App>>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut u = Use::new("/audit/v1/alerts", peer);
    let result = async {
        u.authorize(&app, &headers).await?;
        let p = Params::parse(query.as_deref(), &ALERTS_PARAMS)?;
        let mut filter = consent_db::FindingFilter {
            since: p.time("since")?,
            ..Default::default()
        };
        if let Some(r) = p.get("rule") {
            let rule = policy::snoop::Rule::parse(r).ok_or_else(|| malformed("rule", ""))?;
            filter.rule = Some(rule.as_str().to_owned());
        }
        filter.after_seq = p
            .number("cursor")?
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let limit = p.limit()?;
        filter.limit = Some(limit + 1);
        let mut found = app
            .store
            .snoop_findings(&filter)
            .await
            .map_err(ApiError::audit_log)?;
        let next_cursor = next_page(&mut found, limit, |f| f.seq.to_string());
        Ok(json_ok(&AlertPage {
            alerts: found,
            next_cursor,
        }))
    }
    .await;
    u.finish(&app, result).await
}
