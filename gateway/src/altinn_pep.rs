//! Bru as the enforcement point for Altinn 3 and Maskinporten as they are
//! issued today (SPEC 9.1, 9.2): consent tokens as a consent basis, one-time
//! consents counted durably, revocations from Altinn's events feed, system
//! users asked of Altinn's decision point, pid-restricted tokens.
//!
//! The formats are the `altinn` crate's; this module holds what needs the
//! store, the network or the clock, and hands the pipeline facts for
//! `policy::decide` or a [`Refusal`]. Every rule that allows stays in
//! `policy::decide`: an Altinn consent becomes a [`Consent`] like Bru's own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use altinn::xacml::{AuthorizeRequest, PdpDecision};
use altinn::{AltinnConsent, Grants, SystemUser};
use policy::{
    Caller, Consent, ConsentFact, ConsentStatus, Dataset, LegalBasis, PersonNumber, SubjectFact,
};

use crate::app::App;
use crate::auth::AuthError;
use crate::config::altinn_section::AltinnConfig;
use crate::problem::Failure;

/// The prefix of an Altinn consent's id in records, assertions and the
/// citizen's log: `altinn:{uuid}`.
pub const CONSENT_PREFIX: &str = "altinn:";

/// What a machine token says beyond Bru's own claims; cheap to clone (most
/// tokens carry none of it).
#[derive(Debug, Clone, Default)]
pub struct TokenGrants(Option<Arc<GrantsInner>>);

#[derive(Debug)]
struct GrantsInner {
    grants: Grants,
    pid: Option<PersonNumber>,
}

impl TokenGrants {
    /// From the verified token's `authorization_details` and `pid`. A grant
    /// of a type Bru reads that is not as documented makes the token invalid:
    /// Bru cannot tell what it allows.
    pub fn from_claims(
        authorization_details: Option<&serde_json::Value>,
        pid: Option<&str>,
        allow_synthetic: bool,
    ) -> Result<TokenGrants, AuthError> {
        let grants = Grants::from_claim(authorization_details).map_err(|e| {
            tracing::debug!(error = %e, "authorization_details refused");
            AuthError::InvalidToken("authorization_details is not as Maskinporten writes it")
        })?;
        let pid = pid
            .map(|p| PersonNumber::parse(p, allow_synthetic))
            .transpose()
            .map_err(|_| AuthError::InvalidToken("the pid claim is not a valid person number"))?;
        if grants.is_empty() && pid.is_none() {
            return Ok(TokenGrants(None));
        }
        Ok(TokenGrants(Some(Arc::new(GrantsInner { grants, pid }))))
    }

    pub fn consent(&self) -> Option<&AltinnConsent> {
        self.0.as_ref()?.grants.consent.as_ref()
    }

    pub fn system_user(&self) -> Option<&SystemUser> {
        self.0.as_ref()?.grants.system_user.as_ref()
    }

    pub fn pid(&self) -> Option<&PersonNumber> {
        self.0.as_ref()?.pid.as_ref()
    }

    /// These grants with `consent` as the token's consent: an Altinn 2
    /// consent token that came beside the Maskinporten token.
    fn with_consent(&self, consent: AltinnConsent) -> TokenGrants {
        let (system_user, pid) = match &self.0 {
            Some(g) => (g.grants.system_user.clone(), g.pid.clone()),
            None => (None, None),
        };
        TokenGrants(Some(Arc::new(GrantsInner {
            grants: Grants {
                consent: Some(consent),
                system_user,
            },
            pid,
        })))
    }
}

/// The header an Altinn 2 consent token travels in, beside the caller's
/// Maskinporten token. Altinn leaves the transport to the data source and the
/// consumer ("Formatet … må avtales mellom datakilde og datakonsument",
/// Altinn/docs `…/samtykke/datakonsument/hente-token`); Skatteetaten, the
/// largest Altinn 2 consent source, takes `AltinnSamtykke: <samtykketoken>`
/// and requires a Maskinporten token as well (Skatteetaten/api-dokumentasjon
/// `docs/om/samtykke.md`, step 7). Bru does the same.
pub const ALTINN2_HEADER: &str = "altinnsamtykke";

/// Takes the `AltinnSamtykke` header out of the request, so that it never
/// reaches the provider (it is a bearer credential and names the person).
/// Given twice, which one counts would depend on the reader: refused.
pub fn take_altinn2_token(
    headers: &mut http::HeaderMap,
) -> Result<Option<http::HeaderValue>, Failure> {
    if headers.get_all(ALTINN2_HEADER).iter().nth(1).is_some() {
        return Err(Failure::MalformedRequest(
            "the AltinnSamtykke header is given more than once",
        ));
    }
    Ok(headers.remove(ALTINN2_HEADER))
}

/// The grants the call stands on: the Maskinporten token's, and, when an
/// Altinn 2 consent token came in `AltinnSamtykke` for a dataset that names
/// an Altinn resource and the call names no `Bru-Consent`, that consent,
/// verified against Altinn 2's keys (`[altinn] altinn2_jwks_url`). It then
/// meets the same rules as a Maskinporten consent (`consent_fact`): CoveredBy
/// is the consumer, OfferedBy the subject, ValidToDate ahead, the service
/// granted (an Altinn 2 service `{code}_{edition}` grants the migrated
/// resource `{org}_{code}_{edition}`), not revoked, one use if one-time.
pub async fn with_altinn2_token(
    app: &App,
    grants: &TokenGrants,
    token: Option<http::HeaderValue>,
    dataset: &Dataset,
    names_bru_consent: bool,
) -> Result<TokenGrants, Failure> {
    let Some(token) = token else {
        return Ok(grants.clone());
    };
    if names_bru_consent || dataset.altinn.is_none() || dataset.basis != LegalBasis::Consent {
        // Not what this call stands on; removed all the same.
        return Ok(grants.clone());
    }
    if grants.consent().is_some() {
        return Err(Failure::MalformedRequest(
            "the call carries two Altinn consents: one in the token's authorization_details and one in AltinnSamtykke",
        ));
    }
    let Some(verifier) = &app.altinn.altinn2 else {
        // No Altinn 2 keys configured: Bru cannot tell whether Altinn signed it.
        return Err(Failure::Auth(AuthError::UntrustedIssuer));
    };
    let token = token
        .to_str()
        .map_err(|_| Failure::MalformedRequest("the AltinnSamtykke header is not a token"))?;
    let claims = verifier
        .accompanying_claims(token.trim())
        .await
        .map_err(|e| {
            tracing::debug!(error = %e, "AltinnSamtykke token refused");
            Failure::Auth(match e {
                AuthError::InvalidToken(_) | AuthError::MissingToken => AuthError::InvalidToken(
                    "the AltinnSamtykke token does not verify against Altinn 2's keys",
                ),
                other => other,
            })
        })?;
    let consent = AltinnConsent::from_altinn2_claims(&claims).map_err(|e| {
        tracing::debug!(error = %e, "AltinnSamtykke token is not as Altinn 2 writes it");
        Failure::Auth(AuthError::InvalidToken(
            "the AltinnSamtykke token is not an Altinn 2 consent token as Altinn documents it",
        ))
    })?;
    Ok(grants.with_consent(consent))
}

/// The refusals of SPEC 9.2 (section 13's codes), and the decision point
/// that could not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A pid-restricted token used for another person.
    SubjectNotPermitted,
    /// Altinn's decision point did not permit the system user.
    SystemUserNotAuthorized,
    /// Altinn's decision point could not be asked: never an allow.
    DecisionPointUnavailable,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::SubjectNotPermitted => "subject_not_permitted",
            Refusal::SystemUserNotAuthorized => "system_user_not_authorized",
            Refusal::DecisionPointUnavailable => "altinn_unavailable",
        }
    }

    pub fn status(self) -> http::StatusCode {
        match self {
            Refusal::DecisionPointUnavailable => http::StatusCode::SERVICE_UNAVAILABLE,
            _ => http::StatusCode::FORBIDDEN,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Refusal::SubjectNotPermitted => "The token may not be used for this person",
            Refusal::SystemUserNotAuthorized => "The system user may not do this",
            Refusal::DecisionPointUnavailable => "Altinn could not be asked",
        }
    }

    pub fn detail(self) -> &'static str {
        match self {
            Refusal::SubjectNotPermitted => "The token is restricted to one person (its pid claim), and this call is about another. Get a token for this call's subject.",
            Refusal::SystemUserNotAuthorized => "Altinn's decision point does not permit this system user to use this dataset for its organisation. The organisation grants the system user its rights in Altinn.",
            Refusal::DecisionPointUnavailable => "Altinn's decision point did not answer, and Bru never allows a system user it could not ask about. Try again shortly.",
        }
    }
}

/// The caller policy judges: for a system user, the customer organisation
/// (`systemuser_org`) through the vendor (the token's `consumer`) as its
/// supplier; otherwise the token's own.
pub fn caller(caller: Caller, grants: &TokenGrants) -> Caller {
    match grants.system_user() {
        Some(su) => Caller {
            supplier: Some(caller.consumer),
            consumer: su.org.clone(),
            ..caller
        },
        None => caller,
    }
}

/// A pid-restricted token is for its person only (Digdir's pid-restricted
/// tokens): a call about anyone else is refused. A call that names no valid
/// subject is left to `policy::decide`.
pub fn check_pid(grants: &TokenGrants, subject: &SubjectFact) -> Result<(), Failure> {
    match (grants.pid(), subject) {
        (Some(pid), SubjectFact::Valid(s)) if pid != s => {
            Err(Failure::Altinn(Refusal::SubjectNotPermitted))
        }
        _ => Ok(()),
    }
}

/// The Altinn consent in the token as a fact for `policy::decide`, when the
/// dataset names an Altinn resource and the call names no `Bru-Consent`.
/// `None`: the token's consent is not what this call stands on.
///
/// The mapping: `to` is the requester, `from` the subject, `validTo` the
/// validity, the dataset is covered only if its resource is among
/// `consentRights` (else `consent_not_found`), the purpose is the call's (an
/// Altinn consent names a resource, not a Bru purpose; policy still checks
/// the purpose against the dataset and the consumer), revoked when the feed
/// said `revoked` or `deleted`, one use when the resource is one-time.
pub async fn consent_fact(
    app: &App,
    grants: &TokenGrants,
    dataset: &Dataset,
    purpose: Option<&str>,
) -> Result<Option<(String, ConsentFact)>, Failure> {
    let (Some(consent), Some(resource), LegalBasis::Consent) =
        (grants.consent(), dataset.altinn.as_ref(), &dataset.basis)
    else {
        return Ok(None);
    };
    let id = format!("{CONSENT_PREFIX}{}", consent.id);
    if consent.right_for(&resource.id).is_none() {
        return Ok(Some((id, ConsentFact::NotFound)));
    }
    let state = app
        .store
        .altinn_consent_state(&consent.id)
        .await
        .map_err(|_| Failure::AuditUnavailable)?;
    let subject = consent
        .person()
        .and_then(|p| PersonNumber::parse(p, app.config.allow_synthetic_ids).ok());
    Ok(Some((
        id.clone(),
        ConsentFact::Found(Consent {
            id,
            requester: consent.to.clone(),
            subject,
            datasets: vec![dataset.id.clone()],
            purpose: purpose.unwrap_or_default().to_owned(),
            status: if state.ended.is_some() {
                ConsentStatus::Revoked
            } else {
                ConsentStatus::Granted
            },
            valid_to: consent.valid_to,
            uses: u32::from(state.used),
            max_uses: resource.one_time.then_some(1),
            frequency: None,
        }),
    )))
}

/// Whether a consent id is an Altinn consent's (`altinn:{uuid}`).
pub fn is_altinn(consent_id: &str) -> bool {
    consent_id.starts_with(CONSENT_PREFIX)
}

/// Whether an allowed call under `consent_id` takes the one use of an
/// Altinn one-time consent: then its decision record is written with the use
/// in one transaction (`AuditLog::append_on` with `Conditions::consent_use`), like Bru's own
/// consents; a record whose use another transfer took is left out.
pub fn one_time_use(dataset: &Dataset, consent_id: Option<&str>) -> bool {
    consent_id.is_some_and(is_altinn) && dataset.altinn.as_ref().is_some_and(|r| r.one_time)
}

/// The fact once its one use is gone: decided again, it is refused
/// `consent_exhausted`.
pub fn used_up(fact: &ConsentFact) -> ConsentFact {
    let mut used = fact.clone();
    if let ConsentFact::Found(view) = &mut used {
        view.uses = view.max_uses.unwrap_or(1);
    }
    used
}

/// The rows the citizen consented to, for the purpose's `metadata_filter`:
/// `(field, consented value)`; a value the consent does not carry keeps no
/// row (policy expects it, so its absence is not read as "all").
pub fn row_filter(
    grants: &TokenGrants,
    dataset: &Dataset,
    purpose: Option<&str>,
    consent_id: Option<&str>,
) -> Vec<(String, Option<String>)> {
    if !consent_id.is_some_and(is_altinn) {
        return Vec::new();
    }
    let (Some(consent), Some(resource), Some(purpose)) = (
        grants.consent(),
        dataset.altinn.as_ref(),
        purpose.and_then(|p| dataset.purpose(p)),
    ) else {
        return Vec::new();
    };
    let right = consent.right_for(&resource.id);
    purpose
        .metadata_filter
        .iter()
        .map(|(key, field)| {
            (
                field.clone(),
                right.and_then(|r| r.metadata(key)).map(str::to_owned),
            )
        })
        .collect()
}

/// Altinn's side of a running Bru: the PDP client and its decision cache,
/// and what the events poller last managed.
pub struct AltinnState {
    config: AltinnConfig,
    http: Option<reqwest::Client>,
    cache: Mutex<HashMap<AuthorizeRequest, (PdpDecision, Instant)>>,
    /// Unix seconds of the last poll that reached the end of the feed; at
    /// start, the start (the lag then counts from there).
    feed_caught_up_at: AtomicI64,
    /// Consecutive failed polls.
    feed_failures: AtomicU64,
    /// Verifies Altinn 2 consent tokens against Altinn 2's keys; `None`
    /// without `altinn2_jwks_url`.
    altinn2: Option<crate::auth::Authenticator>,
}

/// Altinn 2 consent tokens live 30 s (Altinn/docs `…/datakonsument/hente-token`):
/// a small leeway for clocks, not a second lifetime.
const ALTINN2_LEEWAY: Duration = Duration::from_secs(10);

/// Enough for every system user of a large vendor; beyond it the cache starts over.
const PDP_CACHE_CAPACITY: usize = 10_000;

impl AltinnState {
    pub fn new(config: &AltinnConfig, allow_synthetic_ids: bool) -> Result<AltinnState, String> {
        let http = if config.pdp_url.is_some() || config.events_url.is_some() {
            let mut builder = reqwest::Client::builder()
                .connect_timeout(config.pdp_timeout)
                .redirect(reqwest::redirect::Policy::none());
            if let Some(ca) = &config.ca_file {
                let pem = std::fs::read(ca)
                    .map_err(|e| format!("altinn: cannot read {}: {e}", ca.display()))?;
                let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                    format!("altinn: {} is not a PEM certificate: {e}", ca.display())
                })?;
                builder = builder.add_root_certificate(cert);
            }
            Some(
                builder
                    .build()
                    .map_err(|e| format!("altinn: HTTP client: {e}"))?,
            )
        } else {
            None
        };
        let altinn2 = match &config.altinn2_jwks_url {
            None => None,
            Some(url) => Some(crate::auth::Authenticator::new(
                &[crate::config::IssuerConfig {
                    name: "altinn2".into(),
                    kind: crate::config::IssuerKind::Maskinporten,
                    issuer: config.altinn2_issuer.clone(),
                    jwks_url: url.clone(),
                    // Altinn/docs: `"alg": "RS256"`; no `aud` (the example validates none).
                    algorithms: vec![jsonwebtoken::Algorithm::RS256],
                    audience: None,
                    leeway: ALTINN2_LEEWAY,
                    max_token_bytes: 8192,
                    jwks_refresh_min_interval: Duration::from_secs(10),
                    ca_file: config.ca_file.clone(),
                    line: 0,
                }],
                allow_synthetic_ids,
            )?),
        };
        Ok(AltinnState {
            altinn2,
            config: config.clone(),
            http,
            cache: Mutex::new(HashMap::new()),
            feed_caught_up_at: AtomicI64::new(time::OffsetDateTime::now_utc().unix_timestamp()),
            feed_failures: AtomicU64::new(0),
        })
    }

    /// Seconds since the events feed was last read to its end (since start
    /// until it first is); `None` without a feed. This process's own view:
    /// `bru_altinn_consent_events_lag_seconds`. Altinn's own delay (events
    /// show after 5 minutes) comes on top.
    pub fn events_lag_seconds(&self) -> Option<i64> {
        self.config.events_url.as_ref()?;
        let at = self.feed_caught_up_at.load(Ordering::Relaxed);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Some((now - at).max(0))
    }

    /// A line for `/readyz` when the feed is behind by more than three poll
    /// intervals; Bru stays ready (its own consents and statutory calls do
    /// not depend on the feed).
    pub fn readiness_detail(&self) -> Option<String> {
        let lag = self.events_lag_seconds()?;
        let limit = 3 * i64::try_from(self.config.poll_interval.as_secs()).unwrap_or(i64::MAX);
        (lag > limit).then(|| {
            format!(
                "altinn events feed: not read for {lag} s ({} failed polls); revocations in Altinn are seen late\n",
                self.feed_failures.load(Ordering::Relaxed)
            )
        })
    }

    async fn ask_pdp(&self, request: &AuthorizeRequest) -> Result<PdpDecision, Refusal> {
        if let Ok(cache) = self.cache.lock() {
            if let Some((decision, at)) = cache.get(request) {
                if at.elapsed() < self.config.pdp_cache {
                    return Ok(*decision);
                }
            }
        }
        let (Some(url), Some(http)) = (&self.config.pdp_url, &self.http) else {
            // No decision point configured: no system user can be permitted.
            return Ok(PdpDecision::NotPermit);
        };
        let answer = http
            .post(url)
            .timeout(self.config.pdp_timeout)
            .json(&request.to_json())
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "altinn decision point unreachable");
                Refusal::DecisionPointUnavailable
            })?;
        if !answer.status().is_success() {
            tracing::warn!(status = %answer.status(), "altinn decision point failed");
            return Err(Refusal::DecisionPointUnavailable);
        }
        let body = answer
            .bytes()
            .await
            .map_err(|_| Refusal::DecisionPointUnavailable)?;
        let decision = altinn::xacml::parse_response(&body).map_err(|e| {
            tracing::warn!(error = %e, "altinn decision point answered unreadably");
            Refusal::DecisionPointUnavailable
        })?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= PDP_CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(request.clone(), (decision, Instant::now()));
        }
        Ok(decision)
    }
}

/// For a system user's call: asks Altinn's decision point (or its cached
/// answer for exactly this system user, resource, action and party) whether
/// the system user may act. The dataset's resource is its `altinn_resource`;
/// a dataset without one permits no system user. `read` for GET and HEAD,
/// `write` otherwise.
pub async fn authorize_system_user(
    app: &App,
    grants: &TokenGrants,
    dataset: &Dataset,
    method: &http::Method,
) -> Result<(), Failure> {
    let Some(su) = grants.system_user() else {
        return Ok(());
    };
    let Some(resource) = dataset.altinn.as_ref() else {
        return Err(Failure::Altinn(Refusal::SystemUserNotAuthorized));
    };
    let action = if method == http::Method::GET || method == http::Method::HEAD {
        "read"
    } else {
        "write"
    };
    let request = AuthorizeRequest {
        system_user: su.id.clone(),
        action: action.to_owned(),
        resource: resource.id.clone(),
        party: su.org.as_str().to_owned(),
    };
    match app.altinn.ask_pdp(&request).await {
        Ok(PdpDecision::Permit) => Ok(()),
        Ok(PdpDecision::NotPermit) => Err(Failure::Altinn(Refusal::SystemUserNotAuthorized)),
        Err(r) => Err(Failure::Altinn(r)),
    }
}

/// Feed cursors are kept per feed URL.
const FEED: &str = "consentrequests/events";
/// Pages read in one poll at most, so one poll ends even on a long backlog.
const PAGES_PER_POLL: usize = 50;

/// Reads Altinn's consent events feed every `poll_interval` until the
/// process ends, writing revocations and deletions to the store. Every
/// replica may run it: the writes are idempotent and the cursor only moves
/// to a page the writer has applied, in the same transaction.
pub async fn poll_events(app: Arc<App>) {
    let Some(base) = app.config.altinn.events_url.clone() else {
        return;
    };
    let interval = app.config.altinn.poll_interval;
    loop {
        match poll_once(&app, &base).await {
            Ok(()) => {
                app.altinn.feed_failures.store(0, Ordering::Relaxed);
                app.altinn.feed_caught_up_at.store(
                    time::OffsetDateTime::now_utc().unix_timestamp(),
                    Ordering::Relaxed,
                );
            }
            Err(e) => {
                if app.altinn.feed_failures.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(error = %e, "altinn events feed not read; retrying every poll");
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// One poll: from the stored cursor (or the feed's start) to the end.
async fn poll_once(app: &App, base: &str) -> Result<(), String> {
    let http = app.altinn.http.as_ref().ok_or("no HTTP client")?;
    let token = match &app.config.altinn.events_token {
        Some(secret) => secret.read_string()?.trim().to_owned(),
        None => return Err("no events token".into()),
    };
    let mut url = app
        .store
        .altinn_feed_cursor(FEED)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| base.to_owned());
    for _ in 0..PAGES_PER_POLL {
        let answer = http
            .get(&url)
            .bearer_auth(&token)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("GET events: {e}"))?;
        if !answer.status().is_success() {
            return Err(format!("GET events: {}", answer.status()));
        }
        let body = answer.bytes().await.map_err(|e| e.to_string())?;
        let page = altinn::events::parse_page(&body).map_err(|e| e.to_string())?;
        let ended: Vec<consent_db::AltinnConsentEnded> = page
            .data
            .iter()
            .filter(|e| e.ends_consent())
            .map(|e| consent_db::AltinnConsentEnded {
                consent_id: e.consent_request_id.to_ascii_lowercase(),
                event: e.event_type.clone(),
                changed_at: e
                    .changed_date
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            })
            .collect();
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        // The next link may be present with an empty page after it; the
        // cursor then stays at that link, read again at the next poll.
        let next = page.links.next.as_deref().filter(|n| same_origin(base, n));
        app.store
            .apply_altinn_events(FEED, &ended, next, &now)
            .await
            .map_err(|e| e.to_string())?;
        // A link elsewhere would take the feed token with it: not followed,
        // and the feed counts as not read (readyz, lag metric), so an
        // operator sees that revocations stopped arriving.
        if next.is_none() && page.links.next.is_some() {
            return Err("the feed's next link is on another origin; not followed".into());
        }
        match next {
            Some(n) if !page.data.is_empty() => url = n.to_owned(),
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// A `next` link is followed only on the feed's own origin: the token goes with it.
fn same_origin(base: &str, next: &str) -> bool {
    match (reqwest::Url::parse(base), reqwest::Url::parse(next)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}
