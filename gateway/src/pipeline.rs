//! The data plane: `/data/{provider}/{dataset}[/{rest}]`.
//!
//! ```text
//! limits → path → authenticate → route → facts → policy::decide
//!        → decision record (durable, bounded time) → forward → minimise
//!        → response, then the outcome record when the body has ended
//! ```
//! Everything a decision depends on is gathered first; the decision is one
//! call to `policy::decide`; effects come after it. A refusal takes the same
//! path minus the forward, so it is recorded the same way.
//!
//! Every exit records once, through one path: `prepare` ends in a refusal,
//! which `refuse` records (a deny record, or counted by `refusals.rs`), or
//! in an allowed call whose decision record `record_decision` wrote and
//! whose outcome record is then pending (`PendingOutcome`); `forward`
//! returns the provider's answer or a `Failure`, and `deliver` completes
//! the outcome record from either (when the body ends, for a streamed
//! one). A caller that goes away still leaves its outcome: the pending
//! record and `RecordOnEnd` write `client_closed` when dropped.
//!
//! A new refusal is a `problem::Failure` returned from `prepare` (or from a
//! check it calls); a new fact for `policy::decide` is gathered in
//! `prepare` before `decide_and_record`.
//!
//! Benchmark builds (feature `bench`) stop early on the lower rungs of the
//! ablation ladder (`[bench] stage`, bench/README.md): `passthrough` forwards
//! right after the request's limits and path, `token` after authentication
//! and the dataset, `policy` after the decision, without records. Default
//! builds always run the whole pipeline (`Stage::of` is then a constant).

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use consent_db::{scrub_path, scrub_text, Basis, NewRecord, RecordKind, Verdict};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use percent_encoding::percent_decode_str;
use policy::{
    ConsentFact, Dataset, Decision, Facts, FieldMask, LegalBasis, SubjectFact, SubjectLocation,
};

use crate::app::{App, ConsentRecordError};
use crate::keys::{AssertionClaims, ASSERTION_TTL_S};
use crate::problem::Failure;
use crate::server::Incoming;

mod stage;
pub use stage::Stage;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the record of one call says so far; filled in as the pipeline learns.
struct Call {
    started: Instant,
    transfer_id: String,
    record: NewRecord,
}

impl Call {
    fn new(method: &http::Method) -> Call {
        let transfer_id = crate::transfer_id::new();
        Call {
            started: Instant::now(),
            record: NewRecord::new(
                RecordKind::Decision,
                transfer_id.clone(),
                method.as_str(),
                "",
            ),
            transfer_id,
        }
    }

    fn elapsed_ms(&self) -> u64 {
        self.started
            .elapsed()
            .as_millis()
            .try_into()
            .unwrap_or(u64::MAX)
    }
}

/// A call that may be forwarded.
struct Allowed<'a> {
    /// Who calls; none only on the benchmark's `passthrough` rung.
    caller: Option<policy::Caller>,
    dataset: &'a Dataset,
    /// The request's URI: the provider gets the rest of its path (from
    /// `rest_at`) and its query.
    uri: http::Uri,
    rest_at: usize,
    headers: HeaderMap,
    method: http::Method,
    body: RequestBody,
    /// What policy allowed; none only on the benchmark rungs before `policy`
    /// (then there is no assertion and no mask).
    grant: Option<Grant<'a>>,
}

/// What `policy::decide` allowed.
struct Grant<'a> {
    mask: &'a FieldMask,
    basis: LegalBasis,
    legal_ref: Option<&'a str>,
    consent_id: Option<String>,
    subject: Option<policy::PersonNumber>,
    /// Rows the citizen consented to (an Altinn consent's metadata): `(field, value)`.
    row_filter: Vec<(String, Option<String>)>,
}

impl<'a> Allowed<'a> {
    /// A call forwarded before policy decided (benchmark rungs only).
    fn undecided(
        caller: Option<policy::Caller>,
        dataset: &'a Dataset,
        route: &Route,
        parts: http::request::Parts,
        body: Incoming,
    ) -> Allowed<'a> {
        Allowed {
            caller,
            dataset,
            uri: parts.uri,
            rest_at: route.rest_at(),
            headers: parts.headers,
            method: parts.method,
            body: RequestBody::Streaming(body),
            grant: None,
        }
    }
}

enum RequestBody {
    Buffered(Bytes),
    Streaming(Incoming),
}

/// What the provider answered, ready for the caller.
enum Delivery {
    /// Passed through as it arrives; the outcome is recorded when it ends.
    Streamed(http::response::Parts, connectors::ResponseBody),
    /// Minimised or rewritten, whole.
    Whole(http::response::Parts, Bytes),
}

pub async fn handle(app: Arc<App>, req: Request<Incoming>, source: IpAddr) -> Response<Body> {
    let mut call = Call::new(req.method());
    let (allowed, outcome) = match prepare(&app, req, &mut call, source).await {
        Ok(prepared) => prepared,
        Err(failure) => return refuse(&app, call, failure, Some(source)).await,
    };
    // The outcome record is pending while Bru forwards: if the caller goes
    // away, this future is dropped with it, and so is `outcome`, which then
    // records `client_closed`.
    let purpose = call.record.purpose.as_deref();
    let result = forward(&app, &call.transfer_id, purpose, allowed).await;
    deliver(&app, &call.transfer_id, outcome, result)
}

/// Reads the request, authenticates, gathers the facts, decides and, for
/// an allowed call, records the decision.
async fn prepare<'a>(
    app: &'a Arc<App>,
    req: Request<Incoming>,
    call: &mut Call,
    peer: IpAddr,
) -> Result<(Allowed<'a>, PendingOutcome), Failure> {
    let stage = Stage::of(&app.config);
    let (mut parts, body) = req.into_parts();
    // The route borrows this copy (a reference count, no bytes copied), so
    // the request's parts can move on to the provider.
    let request_uri = parts.uri.clone();
    let route = parse_path(request_uri.path());
    // Before Bru knows who calls, a record holds no more of the path than
    // Bru can vouch for: a dataset policy has, else `/data/`. The rest of
    // the path is anyone's text, free to send (SECURITY.md, records).
    call.record.path = match &route {
        Ok(r) if app.policy.dataset(r.provider, r.dataset).is_some() => {
            format!("/data/{}/{}", r.provider, r.dataset)
        }
        _ => "/data/".to_owned(),
    };
    crate::server::check_header_limits(&app.config.server, &parts.headers)?;
    crate::server::check_single_headers(&parts.headers)?;
    if let Some(len) = content_length(&parts.headers)? {
        if len > app.config.server.max_body_bytes {
            return Err(Failure::RequestTooLarge);
        }
    }
    if stage == Stage::Passthrough {
        let route = route?;
        let dataset = app
            .policy
            .dataset(route.provider, route.dataset)
            .ok_or(Failure::UnknownDataset)?;
        let allowed = Allowed::undecided(None, dataset, &route, parts, body);
        return Ok((allowed, PendingOutcome::none(app)));
    }

    let authorization = parts.headers.get(http::header::AUTHORIZATION);
    // A token verified before passes without cryptography; anything else is
    // verified only while its address has failed less than its limit.
    let token = match app.auth.cached_machine(authorization) {
        Some(token) => token,
        None => {
            app.rate_limiter
                .unauthenticated_allowed(peer)
                .map_err(|retry_after_s| Failure::RateLimited { retry_after_s })?;
            match app.auth.machine(authorization).await {
                Ok(token) => token,
                Err(e) => {
                    app.rate_limiter.unauthenticated_failed(peer);
                    return Err(e.into());
                }
            }
        }
    };
    let caller = crate::altinn_pep::caller(token.caller, &token.altinn);
    call.record.consumer = Some(caller.consumer.iso6523());
    call.record.supplier = caller.supplier.as_ref().map(|s| s.iso6523());
    call.record.client_id = Some(caller.client_id.clone());
    call.record.system_user = token.altinn.system_user().map(|s| s.id.clone());

    let route = route?;
    let Some(dataset) = app.policy.dataset(route.provider, route.dataset) else {
        // An authenticated caller answers for the dataset it names, known or not.
        call.record.path = format!("/data/{}/{}", route.provider, route.dataset);
        return Err(Failure::UnknownDataset);
    };
    // A paging link Bru wrote: the call it stands for, restored, is checked,
    // recorded and forwarded as if it had been sent so.
    let restored: http::Uri;
    let route = match page_token(parts.uri.query()) {
        Some(token) => {
            restored = restore_page(app, &caller, dataset, &route, token)?;
            parts.uri = restored.clone();
            parse_path(restored.path())?
        }
        None => route,
    };
    if stage == Stage::Token {
        let allowed = Allowed::undecided(Some(caller), dataset, &route, parts, body);
        return Ok((allowed, PendingOutcome::none(app)));
    }

    // From here the whole path is recorded (the log scrubs and bounds it;
    // once the subject is known it is scrubbed again to say `{subject}`).
    call.record.path = route.path();
    call.record.provider = Some(route.provider.to_owned());
    call.record.dataset = Some(dataset.name.clone());
    call.record.basis = Some(match dataset.basis {
        LegalBasis::Consent => Basis::Consent,
        LegalBasis::Statutory => Basis::Statutory,
    });
    call.record.legal_ref = dataset.legal_ref.clone();
    // The consumer's rule, looked up once for the two things it says here.
    let consumer_rule = app.policy.consumer(&caller.consumer);
    // SPEC 10: every record of this consumer's call reaches the citizen late.
    call.record.disclosure_delay_days = consumer_rule.and_then(|rule| rule.disclosure_delay_days);
    // Over its rate, a consumer is refused before anything else is looked up.
    if let Some(limit) = consumer_rule.and_then(|rule| rule.rate_limit) {
        app.rate_limiter
            .consumer_call(
                caller.consumer.as_str(),
                call.record.dataset.as_deref().unwrap_or_default(),
                limit,
            )
            .map_err(|retry_after_s| Failure::RateLimited { retry_after_s })?;
    }
    // A system user's call: Altinn's decision point must permit it (SPEC 9.2).
    crate::altinn_pep::authorize_system_user(app, &token.altinn, dataset, &parts.method).await?;

    // Before any header is read as a fact: only the subject Bru checks reaches the provider.
    if let Some(SubjectLocation::Header(name)) = &dataset.subject {
        guard_subject_header(&mut parts.headers, name)?;
    }
    // An Altinn 2 consent token (`AltinnSamtykke`) never reaches the provider.
    let altinn2_token = crate::altinn_pep::take_altinn2_token(&mut parts.headers)?;
    let purpose = header_str(&parts.headers, "bru-purpose")?;
    call.record.purpose = purpose.map(str::to_owned);
    let consent_id = header_str(&parts.headers, "bru-consent")?;
    if dataset.basis == LegalBasis::Consent {
        call.record.consent_id = consent_id.map(|id| scrub_text(id, None).into_owned());
    }

    // A JSON-body subject needs the body buffered; everything else streams.
    let (subject_raw, body) = match &dataset.subject {
        None => (None, RequestBody::Streaming(body)),
        Some(SubjectLocation::Header(name)) => (
            header_str(&parts.headers, name)?.map(str::to_owned),
            RequestBody::Streaming(body),
        ),
        Some(SubjectLocation::Query(name)) => (
            query_param(parts.uri.query(), name)?,
            RequestBody::Streaming(body),
        ),
        Some(SubjectLocation::PathSegment(i)) => {
            let segment = route
                .rest_segments()
                .nth(*i)
                .map(decode_segment)
                .transpose()?;
            (segment, RequestBody::Streaming(body))
        }
        Some(SubjectLocation::JsonBody(pointer)) => {
            let bytes = read_limited(body, app.config.server.max_body_bytes).await?;
            (json_subject(&bytes, pointer)?, RequestBody::Buffered(bytes))
        }
    };
    let subject = match (&dataset.subject, subject_raw) {
        (None, _) => SubjectFact::NotApplicable,
        (Some(_), None) => SubjectFact::Missing,
        (Some(_), Some(raw)) => {
            match policy::PersonNumber::parse(raw.trim(), app.config.allow_synthetic_ids) {
                Ok(p) => SubjectFact::Valid(p),
                Err(_) => SubjectFact::Invalid,
            }
        }
    };
    if let SubjectFact::Valid(p) = &subject {
        call.record.subject_ref = Some(app.keys.pseudonym.subject_ref(p));
    }
    crate::altinn_pep::check_pid(&token.altinn, &subject)?;
    record_scrubbed(
        &mut call.record,
        &route,
        dataset,
        &subject,
        purpose,
        consent_id,
    );

    let now = time::OffsetDateTime::now_utc();
    // A granted consent may come from the cache; anything else is read.
    let mut consent_cached = false;
    // Without Bru-Consent, an Altinn consent in the token (or, from Altinn 2,
    // beside it) may be the basis (SPEC 9.1).
    let grants = crate::altinn_pep::with_altinn2_token(
        app,
        &token.altinn,
        altinn2_token,
        dataset,
        consent_id.is_some(),
    )
    .await?;
    let altinn_consent = match consent_id {
        None => crate::altinn_pep::consent_fact(app, &grants, dataset, purpose).await?,
        Some(_) => None,
    };
    if let Some((id, _)) = &altinn_consent {
        call.record.consent_id = Some(id.clone());
    }
    let consent = match (dataset.basis == LegalBasis::Consent, consent_id) {
        (false, _) => ConsentFact::NotGiven,
        (true, None) => altinn_consent.map_or(ConsentFact::NotGiven, |(_, fact)| fact),
        (true, Some(id)) => match app.cached_consent_fact(id) {
            Some(fact) => {
                consent_cached = true;
                fact
            }
            None => read_consent(app, id, now).await?,
        },
    };

    let break_glass = crate::protect::break_glass_reason(&parts.headers, dataset, &subject)?;
    let (blocks, blocks_cached) = crate::protect::blocks(app, dataset, &subject, false).await?;
    let mut facts = Facts {
        purpose,
        subject,
        consent,
        blocks,
        break_glass: break_glass.as_deref(),
        now,
    };
    let (mut grant, outcome) = decide_and_record(
        app,
        call,
        &caller,
        dataset,
        &mut facts,
        Cached {
            consent: consent_cached,
            blocks: blocks_cached,
        },
        consent_id,
        stage,
    )
    .await?;
    grant.row_filter =
        crate::altinn_pep::row_filter(&grants, dataset, purpose, grant.consent_id.as_deref());
    let allowed = Allowed {
        caller: Some(caller),
        dataset,
        uri: parts.uri,
        rest_at: route.rest_at(),
        headers: parts.headers,
        method: parts.method,
        body,
        grant: Some(grant),
    };
    Ok((allowed, outcome))
}

/// `policy::decide`, and an allowed call's decision record. A call under
/// consent uses up one of its uses, counted in the decision record's own
/// transaction. If the consent changed after it was read (revoked,
/// expired, used up by a parallel call), neither is written: read it again
/// and decide again, so that the refusal too comes from policy::decide. The
/// subject's blocks likewise: a decision on cached blocks is written only if
/// no block covers it in the record's transaction, else decided again on a
/// fresh read. A refusal is never decided on a cached consent or blocks.
#[allow(clippy::too_many_arguments)]
async fn decide_and_record<'p>(
    app: &'p Arc<App>,
    call: &Call,
    caller: &policy::Caller,
    dataset: &'p Dataset,
    facts: &mut Facts<'_>,
    mut cached: Cached,
    consent_id: Option<&str>,
    stage: Stage,
) -> Result<(Grant<'p>, PendingOutcome), Failure> {
    for _ in 0..CONSENT_ATTEMPTS {
        match policy::decide(&app.policy, caller, dataset, facts) {
            Decision::Deny(_) if cached.consent || cached.blocks => {
                if cached.consent {
                    if let Some(id) = consent_id {
                        facts.consent = read_consent(app, id, facts.now).await?;
                    }
                }
                if cached.blocks {
                    facts.blocks = crate::protect::blocks(app, dataset, &facts.subject, true)
                        .await?
                        .0;
                }
                cached = Cached::default();
            }
            Decision::Deny(code) => {
                return Err(crate::protect::denied(code, &facts.consent, facts.now))
            }
            Decision::Allow {
                basis,
                legal_ref,
                mask,
                consent_id,
                subject,
                break_glass,
            } => {
                let grant = Grant {
                    mask,
                    basis,
                    legal_ref,
                    consent_id,
                    subject,
                    row_filter: Vec::new(),
                };
                if stage == Stage::Policy {
                    return Ok((grant, PendingOutcome::none(app)));
                }
                let mut record = call.record.clone();
                record.decision = Some(Verdict::Allow);
                record.consent_id = grant.consent_id.clone();
                record.break_glass = crate::protect::passed_block(break_glass, facts.break_glass);
                // An Altinn one-time consent's use rides in the record's transaction (SPEC 9.1).
                let altinn_once =
                    crate::altinn_pep::one_time_use(dataset, grant.consent_id.as_deref());
                let glass = record.break_glass.is_some();
                match record_decision(app, record, call.started, altinn_once, dataset).await {
                    Ok(outcome) => {
                        if glass {
                            crate::protect::count_break_glass(app, caller, dataset);
                        }
                        return Ok((grant, outcome));
                    }
                    Err(ConsentRecordError::ConsentChanged) if altinn_once => {
                        // Another transfer took the one use: decided again, exhausted.
                        facts.consent = crate::altinn_pep::used_up(&facts.consent);
                    }
                    Err(ConsentRecordError::ConsentChanged) => {
                        cached.consent = false;
                        if let Some(id) = &grant.consent_id {
                            facts.consent = read_consent(app, id, facts.now).await?;
                        }
                    }
                    Err(ConsentRecordError::Blocked) => {
                        // A block written since the blocks were read (here
                        // or at another replica): decided again on them.
                        cached.blocks = false;
                        facts.blocks = crate::protect::blocks(app, dataset, &facts.subject, true)
                            .await?
                            .0;
                    }
                    // Fail closed: what could not be recorded is not forwarded.
                    Err(ConsentRecordError::Unavailable) => return Err(Failure::AuditUnavailable),
                }
            }
        }
    }
    // The store and the decision keep disagreeing: a fault, not a refusal.
    tracing::error!(
        attempts = CONSENT_ATTEMPTS,
        "the consent or the subject's blocks kept changing under the decision; the call is refused"
    );
    Err(Failure::AuditUnavailable)
}

/// The one place an allowed call's decision record is written: durably,
/// with one use of its consent when it has one (or neither). Its outcome
/// record is armed before the write, so a caller gone while it waits still
/// leaves the outcome of a decision that landed.
async fn record_decision(
    app: &Arc<App>,
    record: NewRecord,
    started: Instant,
    altinn_once: bool,
    dataset: &Dataset,
) -> Result<PendingOutcome, ConsentRecordError> {
    let mut outcome = PendingOutcome::for_decision(app, &record, started);
    let conditions = consent_db::Conditions {
        // Bru's own consents, and Altinn one-time consents, give a use in the
        // record's transaction; other Altinn consents have no count to keep.
        consent_use: altinn_once
            || record
                .consent_id
                .as_deref()
                .is_some_and(|id| !crate::altinn_pep::is_altinn(id)),
        // A call about a person on a blockable dataset, unless it passed a
        // block with break-glass: no block may cover it when it is written.
        unblocked: dataset.blockable
            && record.subject_ref.is_some()
            && record.break_glass.is_none(),
    };
    let written = if conditions.consent_use || conditions.unblocked {
        // Counted once written, by the outcome's copy: the record itself goes
        // to the writer (a clone of it was ten allocations a consent call).
        let written = app.record_decision(record, conditions).await;
        if written.is_ok() {
            outcome.observe_allowed();
        }
        written
    } else {
        app.metrics.observe_call(&record, started.elapsed());
        app.record(record)
            .await
            .map_err(|()| ConsentRecordError::Unavailable)
    };
    if written.is_err() {
        // Without a decision record there is no outcome to record.
        outcome.disarm();
    }
    written.map(|()| outcome)
}

/// The consent behind `Bru-Consent`, read from the store; a store that
/// cannot answer refuses the call (503), its cause in the log.
async fn read_consent(
    app: &App,
    id: &str,
    now: time::OffsetDateTime,
) -> Result<ConsentFact, Failure> {
    app.consent_fact(id, now).await.map_err(|e| {
        tracing::error!(error = %crate::api_error::Chain(&e), "a consent could not be read; the call is refused");
        Failure::AuditUnavailable
    })
}

/// The token of `?bru_page={token}`, a paging link Bru wrote (nothing else
/// in the query: a token holds no `&`, so anything after it fails to open).
fn page_token(query: Option<&str>) -> Option<&str> {
    query?
        .strip_prefix(connectors::PAGE_PARAM)?
        .strip_prefix('=')
}

/// The URI a page token stands for: `/data/{provider}/{dataset}` with the
/// provider's path and query under the dataset, for this caller only.
fn restore_page(
    app: &App,
    caller: &policy::Caller,
    dataset: &Dataset,
    route: &Route,
    token: &str,
) -> Result<http::Uri, Failure> {
    const INVALID: &str = "The page link is not valid: it has expired, was written for \
         another caller or dataset, or was altered. Run the search again.";
    if !route.rest.is_empty() {
        return Err(Failure::MalformedRequest(INVALID));
    }
    let binding = crate::page_token::binding(
        &caller.consumer.iso6523(),
        caller.supplier.as_ref().map(|s| s.iso6523()).as_deref(),
        &dataset.name,
    );
    let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
    let target = app
        .keys
        .page_tokens
        .open(&binding, token, now)
        .map_err(|e| {
            tracing::debug!(error = %e, "page token refused");
            Failure::MalformedRequest(INVALID)
        })?;
    if !(target.is_empty() || target.starts_with(['/', '?'])) {
        return Err(Failure::MalformedRequest(INVALID));
    }
    format!("/data/{}/{}{target}", route.provider, route.dataset)
        .parse()
        .map_err(|_| Failure::MalformedRequest(INVALID))
}

/// What the caller wrote, as its record keeps it once the subject is known:
/// the subject's number reads `{subject}` wherever it is (a path segment
/// that carries the subject always does), any other person number
/// `{person}`. The audit log scrubs every record again on its way in (for
/// refusals before this point); this pass only knows which number is the
/// subject's.
fn record_scrubbed(
    record: &mut NewRecord,
    route: &Route,
    dataset: &Dataset,
    subject: &SubjectFact,
    purpose: Option<&str>,
    consent_id: Option<&str>,
) {
    let number = match subject {
        SubjectFact::Valid(p) => Some(p.expose()),
        _ => None,
    };
    let path = match &dataset.subject {
        Some(SubjectLocation::PathSegment(i)) => route.path_with_subject_hidden(*i),
        _ => route.path(),
    };
    record.path = scrub_path(&path, number).into_owned();
    record.purpose = purpose.map(|p| scrub_text(p, number).into_owned());
    if dataset.basis == LegalBasis::Consent {
        // A caller's text until a consent with this id is found; the
        // decision record of an allowed call takes the consent's own id.
        record.consent_id = consent_id.map(|id| scrub_text(id, number).into_owned());
    }
}

/// How often a call re-reads a consent or blocks that changed under it; one
/// change is the expected case, more means the store is not consistent with
/// itself.
const CONSENT_ATTEMPTS: usize = 3;

/// Which facts of a decision came from a cache (and are read again before
/// a refusal, or when the record's transaction finds them changed).
#[derive(Debug, Clone, Copy, Default)]
struct Cached {
    consent: bool,
    blocks: bool,
}

/// Records the refusal, then answers it. Nothing is forwarded. A refusal
/// that cost its sender nothing may be counted into a record written at the
/// end of the interval instead (`refusals.rs`).
async fn refuse(
    app: &App,
    mut call: Call,
    failure: Failure,
    source: Option<std::net::IpAddr>,
) -> Response<Body> {
    if Stage::of(&app.config) < Stage::Full {
        // The benchmark rungs without records answer unrecorded.
        return failure.response(None);
    }
    call.record.decision = Some(Verdict::Deny);
    call.record.code = Some(failure.code().to_owned());
    call.record.status = Some(failure.status().as_u16());
    call.record.duration_ms = Some(call.elapsed_ms());
    app.metrics
        .observe_call(&call.record, call.started.elapsed());
    let cx = crate::problem::RefusalContext::of(app, &call.record, &failure);
    if let crate::refusals::Counted::Into(transfer_id) = app.refusals.count(source, &call.record) {
        return failure.response_in(Some(&transfer_id), &cx);
    }
    let failure = match app.record(call.record).await {
        Ok(()) => failure,
        Err(()) => Failure::AuditUnavailable,
    };
    failure.response_in(Some(&call.transfer_id), &cx)
}

/// Forwards an allowed call and makes the provider's answer the caller's
/// (minimised, paging links rewritten), or says why it failed; `deliver`
/// records the outcome of either.
async fn forward(
    app: &Arc<App>,
    transfer_id: &str,
    purpose: Option<&str>,
    allowed: Allowed<'_>,
) -> Result<Delivery, Failure> {
    let Some(upstream) = app.upstreams.get(&allowed.dataset.id.provider) else {
        // `bru check` refuses such a config; kept as a fault, not a panic.
        return Err(Failure::UpstreamError(
            "no upstream is configured for this provider".into(),
        ));
    };
    let consumer = allowed
        .caller
        .as_ref()
        .map(|c| c.consumer.iso6523())
        .unwrap_or_default();
    let supplier = allowed
        .caller
        .as_ref()
        .and_then(|c| c.supplier.as_ref())
        .map(|s| s.iso6523());
    let dataset_name = allowed.dataset.name.as_str();
    let (mask, basis) = match &allowed.grant {
        Some(grant) => (grant.mask, &grant.basis),
        None => (&NO_MASK, &allowed.dataset.basis),
    };
    let row_filter: &[(String, Option<String>)] =
        allowed.grant.as_ref().map_or(&[], |g| &g.row_filter);
    // Only what policy allowed carries Bru's assertion (the benchmark rungs
    // before `policy` send none).
    let assertion = match &allowed.grant {
        Some(grant) => assertion(
            app,
            transfer_id,
            &consumer,
            supplier.as_deref(),
            dataset_name,
            purpose,
            allowed.dataset,
            grant,
        )?,
        None => String::new(),
    };

    // Set by a streamed body that broke its limits; none for other bodies.
    let mut body_fault = None;
    let body = match allowed.body {
        // Buffered (and empty) bodies can be replayed, so such calls may be retried.
        RequestBody::Buffered(bytes) => connectors::OutboundBody::Buffered(bytes),
        // A body that has ended (a GET's) is none: nothing to limit or watch.
        RequestBody::Streaming(incoming) if incoming.is_end_stream() => {
            connectors::OutboundBody::Empty
        }
        RequestBody::Streaming(incoming) => {
            let fault = Arc::new(AtomicU8::new(BODY_READ));
            body_fault = Some(Arc::clone(&fault));
            LimitedBody {
                inner: incoming,
                remaining: app.config.server.max_body_bytes,
                fault,
            }
            .boxed_unsync()
            .into()
        }
    };
    let mut headers = allowed.headers;
    if *mask != FieldMask::None || !row_filter.is_empty() {
        // A compressed body is not JSON, and a range of one is not a document:
        // ask for the whole body, plain, when it is to be minimised.
        headers.insert(
            http::header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        headers.remove(http::header::RANGE);
        headers.remove(http::header::IF_RANGE);
    }
    let request = connectors::OutboundRequest {
        method: allowed.method,
        dataset: &allowed.dataset.id.dataset,
        // The rest of the path after `/data/{provider}/{dataset}/`.
        rest: allowed.uri.path().get(allowed.rest_at..).unwrap_or(""),
        query: allowed.uri.query(),
        headers,
        body,
        bru: connectors::BruHeaders {
            transfer_id,
            consumer: &consumer,
            purpose,
            legal_basis: basis.as_str(),
            assertion: &assertion,
        },
    };
    let provider_started = Instant::now();
    let provider = allowed.dataset.id.provider.as_str();
    let (result, report) = app.connector.forward_reported(upstream, request).await;
    app.metrics
        .observe_attempts(provider, &report, result.as_ref().err());
    // Labels for the log only, built only when there is something to log
    // (not on every call: one allocation a call on the plain-proxy path).
    let attempts = || -> Vec<&str> { report.attempts.iter().map(|a| a.label()).collect() };
    let response = match result {
        Ok(r) => {
            if report.attempts.len() > 1 {
                let attempts = attempts();
                tracing::info!(provider, dataset = %dataset_name, transfer_id = %transfer_id, attempts = ?attempts,
                    breaker = report.breaker.as_str(), "provider call retried");
            }
            r
        }
        Err(e) => {
            // The caller's body, not the provider, may be why it failed.
            let fault = body_fault.map_or(BODY_READ, |f| f.load(Ordering::Relaxed));
            let failure = match fault {
                BODY_TOO_LARGE => Failure::RequestTooLarge,
                BODY_TIMED_OUT => Failure::BodyTimeout,
                _ => Failure::from_upstream(&e),
            };
            if failure.party() == crate::problem::Party::Provider {
                let attempts = attempts();
                tracing::warn!(provider, dataset = %dataset_name, transfer_id = %transfer_id, attempts = ?attempts,
                    breaker = report.breaker.as_str(), reason = e.label(), error = %e, "provider call failed");
            }
            return Err(failure);
        }
    };
    app.metrics
        .observe_provider(dataset_name, provider_started.elapsed());
    let (mut parts, body) = response.into_parts();
    let transfer_header = HeaderValue::from_str(transfer_id).ok();
    // A FHIR Bundle's paging links name the provider; they are rewritten to
    // point through Bru, so the next page is checked and recorded too.
    let fhir_links = parts.status.is_success()
        && parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(connectors::is_fhir_json);

    if *mask == FieldMask::None && !fhir_links && row_filter.is_empty() {
        if let Some(v) = transfer_header {
            parts.headers.insert(connectors::BRU_TRANSFER_ID, v);
        }
        return Ok(Delivery::Streamed(parts, body));
    }

    // Under a mask the whole body is needed; a body that cannot be parsed is
    // refused, never passed through unfiltered.
    let bytes = match connectors::collect_limited(body, upstream.max_response_bytes).await {
        Ok(b) => b,
        Err(e) => return Err(Failure::UpstreamError(e.to_string())),
    };
    // Rows outside the Altinn consent's metadata go first (SPEC 9.1).
    let bytes = if row_filter.is_empty() || !parts.status.is_success() {
        bytes
    } else {
        connectors::filter_rows(row_filter, &bytes).map_err(|e| {
            Failure::UpstreamError(format!("the provider's answer could not be filtered: {e}"))
        })?
    };
    let mut minimised = if *mask == FieldMask::None {
        bytes
    } else if parts.status.is_success() {
        match connectors::minimise(mask, &bytes) {
            Ok(m) => Bytes::from(m),
            Err(e) => {
                return Err(Failure::UpstreamError(format!(
                    "the provider's answer could not be minimised: {e}"
                )))
            }
        }
    } else {
        // An error answer carries no data of the dataset, but keep only its status.
        Bytes::new()
    };
    if fhir_links {
        let bru_url = format!(
            "{}/data/{}/{}",
            app.config.public_url, provider, allowed.dataset.id.dataset
        );
        // The provider's path and query (the patient's number) go into a
        // page token that opens only for this caller and dataset.
        let page_links: connectors::PageLinks = {
            let app = Arc::clone(app);
            let binding = crate::page_token::binding(&consumer, supplier.as_deref(), dataset_name);
            // The clock only for a FHIR answer: one read a call fewer elsewhere.
            let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
            Arc::new(move |target: &str| app.keys.page_tokens.seal(&binding, target, now))
        };
        let rewriter = connectors::FhirLinkRewriter::new(
            &upstream.base_url,
            &allowed.dataset.id.dataset,
            &bru_url,
            page_links,
        );
        match rewriter.map(|r| r.rewrite(&minimised)) {
            Some(Ok(Some(rewritten))) => minimised = Bytes::from(rewritten),
            Some(Ok(None)) | None => {}
            Some(Err(e)) => {
                return Err(Failure::UpstreamError(format!(
                    "the provider's FHIR answer could not be read: {e}"
                )))
            }
        }
    }
    // These describe the provider's body, not the minimised one.
    for name in [
        http::header::CONTENT_LENGTH,
        http::header::ETAG,
        http::header::CONTENT_RANGE,
        http::header::CONTENT_ENCODING,
        http::header::ACCEPT_RANGES,
        http::header::LAST_MODIFIED,
    ] {
        parts.headers.remove(name);
    }
    for name in ["content-md5", "digest", "content-digest", "repr-digest"] {
        parts.headers.remove(name);
    }
    if let Some(v) = transfer_header {
        parts.headers.insert(connectors::BRU_TRANSFER_ID, v);
    }
    Ok(Delivery::Whole(parts, minimised))
}

/// What a call without a mask is minimised with.
static NO_MASK: FieldMask = FieldMask::None;

/// Bru's signed assertion of an allowed call, for the provider.
#[allow(clippy::too_many_arguments)]
fn assertion(
    app: &App,
    transfer_id: &str,
    consumer: &str,
    supplier: Option<&str>,
    dataset_name: &str,
    purpose: Option<&str>,
    dataset: &Dataset,
    grant: &Grant<'_>,
) -> Result<String, Failure> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let provider_org = app
        .policy
        .providers
        .get(&dataset.id.provider)
        .map(|p| p.org.iso6523())
        .unwrap_or_default();
    let claims = AssertionClaims {
        iss: app.keys.assertion.issuer(),
        aud: &provider_org,
        iat: now,
        exp: now + ASSERTION_TTL_S,
        jti: transfer_id,
        transfer_id,
        consumer,
        supplier,
        dataset: dataset_name,
        purpose,
        basis: grant.basis.as_str(),
        legal_ref: grant.legal_ref,
        consent_id: grant.consent_id.as_deref(),
        subject: grant.subject.as_ref().map(|s| s.expose()),
    };
    app.keys
        .sign_assertion(&dataset.id.provider, &claims)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot sign the assertion");
            Failure::UpstreamError("Bru could not sign its assertion".into())
        })
}

/// The one place an allowed call's outcome is completed: a failure is
/// recorded and answered; a whole answer is recorded as it leaves; a
/// streamed one when its body ends (`RecordOnEnd`). On the benchmark rungs
/// without records the outcome is unarmed and nothing is written.
fn deliver(
    app: &Arc<App>,
    transfer_id: &str,
    mut outcome: PendingOutcome,
    result: Result<Delivery, Failure>,
) -> Response<Body> {
    match result {
        Err(failure) => {
            outcome.finish(failure.status().as_u16(), Some(failure.code()), 0);
            failure.response(Some(transfer_id))
        }
        Ok(Delivery::Whole(parts, bytes)) => {
            outcome.finish(parts.status.as_u16(), None, bytes.len() as u64);
            Response::from_parts(parts, Body::from(bytes))
        }
        Ok(Delivery::Streamed(parts, body)) => match outcome.take() {
            Some(mut record) => {
                record.status = Some(parts.status.as_u16());
                let body = RecordOnEnd::new(body, Arc::clone(app), record, outcome.started);
                Response::from_parts(parts, Body::new(body))
            }
            None => Response::from_parts(parts, Body::new(body)),
        },
    }
}

// ---- reading the request -----------------------------------------------

/// `/data/{provider}/{dataset}[/{rest}]`, checked before any route is
/// matched; borrowed from the request's path (no copy a call).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Route<'p> {
    pub provider: &'p str,
    pub dataset: &'p str,
    /// Raw (still percent-encoded) rest of the path, without a leading slash.
    pub rest: &'p str,
}

impl Route<'_> {
    /// Where `rest` starts in the path it was parsed from.
    fn rest_at(&self) -> usize {
        "/data/".len() + self.provider.len() + 1 + self.dataset.len() + 1
    }

    fn rest_segments(&self) -> impl Iterator<Item = &str> {
        self.rest.split('/').filter(|s| !s.is_empty())
    }

    /// `/data/{provider}/{dataset}[/{rest}]`, without the query.
    fn path(&self) -> String {
        if self.rest.is_empty() {
            format!("/data/{}/{}", self.provider, self.dataset)
        } else {
            format!("/data/{}/{}/{}", self.provider, self.dataset, self.rest)
        }
    }

    fn path_with_subject_hidden(&self, index: usize) -> String {
        let mut path = format!("/data/{}/{}", self.provider, self.dataset);
        for (i, segment) in self.rest_segments().enumerate() {
            path.push('/');
            path.push_str(if i == index { "{subject}" } else { segment });
        }
        path
    }
}

/// Refuses dot segments, empty segments, encoded slashes and backslashes,
/// `;` parameters and control characters, so that no path can reach another
/// dataset than the one its first two segments name.
pub(crate) fn parse_path(path: &str) -> Result<Route<'_>, Failure> {
    const EMPTY: Failure = Failure::MalformedRequest("the path has an empty segment");
    let after = path
        .strip_prefix("/data/")
        .ok_or(Failure::MalformedRequest("the path must start with /data/"))?;
    let (mut provider, mut dataset) = ("", "");
    let mut segments = after.split('/').enumerate().peekable();
    while let Some((i, segment)) = segments.next() {
        // A trailing slash is fine; an empty segment elsewhere is `//`.
        let is_last = segments.peek().is_none();
        if segment.is_empty() && !(is_last && i >= 2) {
            return Err(EMPTY);
        }
        check_segment(segment)?;
        match i {
            0 => provider = segment,
            1 => dataset = segment,
            _ => {}
        }
    }
    if dataset.is_empty() {
        // `/data/{provider}` names no dataset: its missing segment is empty.
        return Err(EMPTY);
    }
    let valid_id = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !valid_id(provider) || !valid_id(dataset) {
        return Err(Failure::UnknownDataset);
    }
    let mut route = Route {
        provider,
        dataset,
        rest: "",
    };
    // The rest as the caller wrote it: every segment checked above.
    route.rest = path.get(route.rest_at()..).unwrap_or("");
    Ok(route)
}

fn check_segment(segment: &str) -> Result<(), Failure> {
    if segment.contains(';') {
        return Err(Failure::MalformedRequest(
            "path parameters (;) are not allowed",
        ));
    }
    let decoded = percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| Failure::MalformedRequest("the path is not UTF-8"))?;
    if decoded == "." || decoded == ".." {
        return Err(Failure::MalformedRequest(
            "dot segments are not allowed in the path",
        ));
    }
    if decoded.contains(['/', '\\']) {
        return Err(Failure::MalformedRequest(
            "encoded slashes are not allowed in the path",
        ));
    }
    if decoded.chars().any(char::is_control) {
        return Err(Failure::MalformedRequest(
            "control characters are not allowed in the path",
        ));
    }
    Ok(())
}

fn decode_segment(segment: &str) -> Result<String, Failure> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Failure::MalformedRequest("the path is not UTF-8"))
}

/// The size of the header block as a client sends it.
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, Failure> {
    let mut values = headers.get_all(http::header::CONTENT_LENGTH).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Failure::MalformedRequest(
            "Content-Length is given more than once",
        ));
    }
    first
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or(Failure::MalformedRequest("Content-Length is not a number"))
}

/// A header Bru reads as a fact: one value, visible ASCII.
fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, Failure> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Failure::MalformedRequest(
            "a Bru header or the subject header is given more than once",
        ));
    }
    let value = first
        .to_str()
        .map_err(|_| Failure::MalformedRequest("a header is not visible ASCII"))?
        .trim();
    Ok(if value.is_empty() { None } else { Some(value) })
}

/// Makes the subject header the only one the provider will get: headers
/// whose names a CGI/WSGI/Rack provider reads as the same (`Nav_Personident`,
/// `nav.personident`) are removed, and a `Connection` header that would
/// strip the subject after Bru checked it is refused.
fn guard_subject_header(headers: &mut HeaderMap, name: &str) -> Result<(), Failure> {
    if connectors::connection_names(headers, name) {
        return Err(Failure::MalformedRequest(
            "the Connection header names the subject header; Bru forwards the subject it checked",
        ));
    }
    connectors::remove_variants_of(headers, name);
    Ok(())
}

/// The subject query parameter. The query is forwarded as sent, so one
/// that another parser could read differently is refused: a `;` (an older
/// separator, `a=1;patient=…`), the parameter twice, or a parameter whose
/// name only resembles it (`Patient`, `patient[]`; for a name `patient_id`, `patient.id`).
fn query_param(query: Option<&str>, name: &str) -> Result<Option<String>, Failure> {
    let query = query.unwrap_or_default();
    if query.contains(';') {
        return Err(Failure::MalformedRequest(
            "the query holds a ';', which some servers read as a separator; send the subject once, separated by '&'",
        ));
    }
    let wanted = normalise_query_name(name);
    let mut found = None;
    for pair in query.split('&') {
        let (raw_key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode_query(raw_key)?;
        // A percent-encoded name is the parameter itself (most parsers decode
        // names); given beside the plain one, it is a repeat, refused.
        if key == name {
            if found.is_some() {
                return Err(Failure::MalformedRequest(
                    "the subject parameter is given more than once",
                ));
            }
            found = Some(decode_query(value)?);
        } else if normalise_query_name(&key) == wanted {
            return Err(Failure::MalformedRequest(
                "a query parameter's name resembles the subject parameter's (case, encoding or punctuation); send it once, exactly as named",
            ));
        }
    }
    Ok(found.filter(|v| !v.is_empty()))
}

/// A parameter name as lenient parsers read it: case folded, `-`, `.`, `_`
/// and space alike (PHP turns `.` and space into `_`), a trailing `[…]`
/// (PHP and Rack arrays) and surrounding space ignored.
fn normalise_query_name(name: &str) -> String {
    let name = name.trim();
    let name = match name.find('[') {
        Some(i) if name.ends_with(']') => &name[..i],
        _ => name,
    };
    name.chars()
        .map(|c| match c {
            '-' | '.' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn decode_query(s: &str) -> Result<String, Failure> {
    let plus = s.replace('+', " ");
    percent_decode_str(&plus)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Failure::MalformedRequest("the query is not UTF-8"))
}

async fn read_limited(body: Incoming, limit: u64) -> Result<Bytes, Failure> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Failure::RequestTooLarge),
        // The record says what the caller is told (server.rs answers 408).
        Err(e)
            if matches!(
                e.downcast_ref::<crate::server::BodyReadError>(),
                Some(crate::server::BodyReadError::Timeout)
            ) =>
        {
            Err(Failure::BodyTimeout)
        }
        Err(_) => Err(Failure::MalformedRequest(
            "the request body could not be read",
        )),
    }
}

/// The subject in a JSON body; a body that is not JSON is malformed, one
/// without the field has no subject.
fn json_subject(body: &[u8], pointer: &str) -> Result<Option<String>, Failure> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| Failure::MalformedRequest("the request body is not valid JSON"))?;
    Ok(match value.pointer(pointer) {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        // A number would lose leading zeros; take it as text, validation will refuse it.
        Some(other) => Some(other.to_string()),
    })
}

// ---- bodies --------------------------------------------------------------

/// Streams the request body to the provider, stops at the size limit, and
/// says why it stopped early (`BODY_*`), so the outcome record carries the
/// caller's fault rather than the provider's.
struct LimitedBody {
    inner: Incoming,
    remaining: u64,
    fault: Arc<AtomicU8>,
}

const BODY_READ: u8 = 0;
const BODY_TOO_LARGE: u8 = 1;
const BODY_TIMED_OUT: u8 = 2;

impl HttpBody for LimitedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > self.remaining {
                        self.fault.store(BODY_TOO_LARGE, Ordering::Relaxed);
                        return Poll::Ready(Some(Err("the request body is too large".into())));
                    }
                    self.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                if matches!(e, crate::server::BodyReadError::Timeout) {
                    self.fault.store(BODY_TIMED_OUT, Ordering::Relaxed);
                }
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The outcome record of an allowed call until the pipeline hands it on;
/// dropped with it (the caller went away mid-call), it is written as
/// `client_closed`.
struct PendingOutcome {
    app: Arc<App>,
    outcome: Option<NewRecord>,
    started: Instant,
}

impl PendingOutcome {
    /// The outcome record of this decision record.
    fn for_decision(app: &Arc<App>, decision: &NewRecord, started: Instant) -> Self {
        let mut outcome = decision.clone();
        outcome.kind = RecordKind::Outcome;
        outcome.decision = None;
        PendingOutcome {
            app: Arc::clone(app),
            outcome: Some(outcome),
            started,
        }
    }

    /// No outcome to record (benchmark rungs without records).
    fn none(app: &Arc<App>) -> Self {
        PendingOutcome {
            app: Arc::clone(app),
            outcome: None,
            started: Instant::now(),
        }
    }

    /// The record, for a streamed answer to write when its body ends.
    fn take(&mut self) -> Option<NewRecord> {
        self.outcome.take()
    }

    /// Writes the outcome: the status the caller got, the failure's code if
    /// any, the bytes of its body.
    fn finish(mut self, status: u16, code: Option<&str>, bytes: u64) {
        if let Some(mut outcome) = self.outcome.take() {
            outcome.status = Some(status);
            outcome.code = code.map(str::to_owned);
            outcome.bytes = Some(bytes);
            outcome.duration_ms = Some(duration_ms(self.started));
            self.app.record_in_background(outcome);
        }
    }

    fn disarm(&mut self) {
        self.outcome = None;
    }

    /// Counts the allowed call in `bru_calls_total` (and its duration so
    /// far) by this copy of its decision record: the same dataset, consumer
    /// and code, while the decision record itself went to the writer.
    fn observe_allowed(&self) {
        if let Some(copy) = &self.outcome {
            self.app
                .metrics
                .observe_call_as(copy, Some(Verdict::Allow), self.started.elapsed());
        }
    }
}

fn duration_ms(started: Instant) -> u64 {
    started.elapsed().as_millis().try_into().unwrap_or(u64::MAX)
}

impl Drop for PendingOutcome {
    fn drop(&mut self) {
        if let Some(mut outcome) = self.outcome.take() {
            outcome.code = Some("client_closed".to_owned());
            outcome.bytes = Some(0);
            outcome.duration_ms = Some(
                self.started
                    .elapsed()
                    .as_millis()
                    .try_into()
                    .unwrap_or(u64::MAX),
            );
            self.app.record_in_background(outcome);
        }
    }
}

/// Passes the provider's body through and writes the outcome record when it
/// ends, fails, or the caller goes away.
struct RecordOnEnd<B: HttpBody> {
    inner: B,
    app: Option<Arc<App>>,
    outcome: Option<NewRecord>,
    started: Instant,
    bytes: u64,
}

impl<B: HttpBody> RecordOnEnd<B> {
    fn new(inner: B, app: Arc<App>, outcome: NewRecord, started: Instant) -> Self {
        RecordOnEnd {
            inner,
            app: Some(app),
            outcome: Some(outcome),
            started,
            bytes: 0,
        }
    }

    fn finish(&mut self, code: Option<&str>) {
        if let (Some(app), Some(mut outcome)) = (self.app.take(), self.outcome.take()) {
            outcome.bytes = Some(self.bytes);
            outcome.duration_ms = Some(
                self.started
                    .elapsed()
                    .as_millis()
                    .try_into()
                    .unwrap_or(u64::MAX),
            );
            outcome.code = code.map(str::to_owned);
            app.record_in_background(outcome);
        }
    }
}

impl<B> HttpBody for RecordOnEnd<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.finish(Some("upstream_error"));
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                self.finish(None);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: HttpBody> Drop for RecordOnEnd<B> {
    fn drop(&mut self) {
        // Dropped before its end: the caller went away; record what was sent.
        let code = if self.inner.is_end_stream() {
            None
        } else {
            Some("client_closed")
        };
        self.finish(code);
    }
}

#[cfg(test)]
mod tests;
