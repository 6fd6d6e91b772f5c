//! The one decision function. Pure: same inputs, same decision, no I/O, no clock.

use time::OffsetDateTime;

use crate::id::{OrgNumber, PersonNumber};
use crate::model::{
    ConsumerDataset, ConsumerRule, Dataset, DatasetRef, FieldMask, LegalBasis, Policy,
    SubjectLocation,
};

/// The authenticated caller, from a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub consumer: OrgNumber,
    /// A vendor acting for the consumer (Maskinporten's `supplier`).
    pub supplier: Option<OrgNumber>,
    pub client_id: String,
    /// The token's scopes (space separated on the wire).
    pub scopes: Vec<String>,
}

impl Caller {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// What the request says about its subject, read where the dataset says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectFact {
    /// The dataset has no subject location (no personal data).
    NotApplicable,
    Missing,
    /// Present but not a valid person number (or synthetic where not allowed).
    Invalid,
    Valid(PersonNumber),
}

/// A consent's status (SPEC section 4): the one enum for it, from the store's
/// column to the JSON APIs (serialised as its name, e.g. `"granted"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentStatus {
    Pending,
    Granted,
    /// Granted, then paused by the citizen (SPEC 10): no use until resumed.
    Paused,
    Rejected,
    Revoked,
    Expired,
}

impl ConsentStatus {
    /// Every status, in lifecycle order.
    pub const ALL: &'static [ConsentStatus] = &[
        ConsentStatus::Pending,
        ConsentStatus::Granted,
        ConsentStatus::Paused,
        ConsentStatus::Rejected,
        ConsentStatus::Revoked,
        ConsentStatus::Expired,
    ];

    /// The name as stored and sent: `pending`, `granted`, …
    pub fn as_str(&self) -> &'static str {
        match self {
            ConsentStatus::Pending => "pending",
            ConsentStatus::Granted => "granted",
            ConsentStatus::Paused => "paused",
            ConsentStatus::Rejected => "rejected",
            ConsentStatus::Revoked => "revoked",
            ConsentStatus::Expired => "expired",
        }
    }
}

impl std::fmt::Display for ConsentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not one of the names of [`ConsentStatus`] (quotes at most 40 characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown consent status {0:?}")]
pub struct UnknownConsentStatus(String);

impl std::str::FromStr for ConsentStatus {
    type Err = UnknownConsentStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConsentStatus::ALL
            .iter()
            .find(|c| c.as_str() == s)
            .copied()
            .ok_or_else(|| UnknownConsentStatus(s.chars().take(40).collect()))
    }
}

/// A consent as the store holds it, gathered before deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: String,
    /// The organisation that requested the consent.
    pub requester: OrgNumber,
    pub subject: Option<PersonNumber>,
    pub datasets: Vec<DatasetRef>,
    pub purpose: String,
    pub status: ConsentStatus,
    pub valid_to: OffsetDateTime,
    pub uses: u32,
    pub max_uses: Option<u32>,
    /// The consent's frequency limit and its uses in the current period
    /// (SPEC 10), read with the consent; `None`: no limit.
    pub frequency: Option<FrequencyWindow>,
}

/// A frequency limit (`max` uses per period) and the uses already in the
/// period that ends now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyWindow {
    pub max: u32,
    /// Uses in the period up to now.
    pub used: u32,
    /// When the oldest of those leaves the period (frees a use); `None` when
    /// there are none.
    pub frees_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentFact {
    /// No `Bru-Consent` header.
    NotGiven,
    /// A consent id was given but the store has none by that id.
    NotFound,
    Found(Consent),
}

/// What a person blocked (SPEC 10): an organisation, or a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectBlock {
    Consumer(OrgNumber),
    Dataset(DatasetRef),
}

/// Everything a decision depends on besides the policy, the caller and the dataset.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// `Bru-Purpose`, if sent.
    pub purpose: Option<&'a str>,
    pub subject: SubjectFact,
    pub consent: ConsentFact,
    /// The subject's blocks (SPEC 10); empty when the call is about no one.
    pub blocks: Vec<SubjectBlock>,
    /// The reason the caller gave in `Bru-Break-Glass`, checked and
    /// scrubbed (SPEC 10): on a dataset whose policy has `break_glass`, it
    /// passes a block, and nothing else (rule 7 is the last rule).
    pub break_glass: Option<&'a str>,
    /// The time of the call (the decision itself reads no clock).
    pub now: OffsetDateTime,
}

/// The codes of SPEC section 3 that a policy decision can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyCode {
    PurposeRequired,
    SubjectMissing,
    InvalidSubject,
    InsufficientScope,
    ConsumerNotAllowed,
    PurposeNotAllowed,
    ConsentRequired,
    ConsentNotFound,
    ConsentRevoked,
    ConsentPaused,
    ConsentExpired,
    ConsentExhausted,
    /// More uses in the period than the consent's frequency allows (429).
    ConsentFrequencyExceeded,
    ConsentMismatch,
    ConsentSubjectMismatch,
    /// The subject blocked the consumer or the dataset (SPEC 10).
    BlockedBySubject,
}

impl DenyCode {
    /// The stable wire code, e.g. `consent_revoked`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DenyCode::PurposeRequired => "purpose_required",
            DenyCode::SubjectMissing => "subject_missing",
            DenyCode::InvalidSubject => "invalid_subject",
            DenyCode::InsufficientScope => "insufficient_scope",
            DenyCode::ConsumerNotAllowed => "consumer_not_allowed",
            DenyCode::PurposeNotAllowed => "purpose_not_allowed",
            DenyCode::ConsentRequired => "consent_required",
            DenyCode::ConsentNotFound => "consent_not_found",
            DenyCode::ConsentRevoked => "consent_revoked",
            DenyCode::ConsentPaused => "consent_paused",
            DenyCode::ConsentExpired => "consent_expired",
            DenyCode::ConsentExhausted => "consent_exhausted",
            DenyCode::ConsentFrequencyExceeded => "consent_frequency_exceeded",
            DenyCode::ConsentMismatch => "consent_mismatch",
            DenyCode::ConsentSubjectMismatch => "consent_subject_mismatch",
            DenyCode::BlockedBySubject => "blocked_by_subject",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'p> {
    Allow {
        basis: LegalBasis,
        legal_ref: Option<&'p str>,
        /// The mask for this purpose (`FieldMask::None` to stream as is).
        mask: &'p FieldMask,
        /// The consent the call is made under, for consent-based datasets.
        consent_id: Option<String>,
        subject: Option<PersonNumber>,
        /// The call passed a block of the subject's with `Bru-Break-Glass`
        /// (SPEC 10): its records carry the reason, and the citizen is told.
        break_glass: bool,
    },
    Deny(DenyCode),
}

/// One rule that was checked, for `bru explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What was checked, in words, e.g. "token carries scope nav:inntekt.read".
    pub rule: String,
    pub passed: bool,
}

/// The mask of a call that names no purpose (only datasets without personal data).
static NO_MASK: FieldMask = FieldMask::None;

/// Decides one call. Deny by default: only a path through every rule allows.
///
/// The rules, in order; the first that fails decides:
/// 1. a dataset with personal data needs a purpose;
/// 2. the token carries the dataset's scope;
/// 3. a consumer rule lets the caller's organisation (and its supplier, if any) use the dataset;
/// 4. the dataset, and the consumer rule, allow the purpose;
/// 5. the subject is present and valid where the dataset carries one;
/// 6. for consent-based datasets, the consent is the caller's, for this dataset,
///    purpose and subject, granted, unexpired and not used up;
/// 7. the subject has not blocked the consumer or the dataset, where the
///    dataset is blockable; on a `break_glass` dataset a call with
///    `Bru-Break-Glass` passes a block (and only a block: every rule before
///    this one has already held).
///
/// Allocates only for what an `Allow` owns (consent id and subject).
pub fn decide<'p>(
    policy: &'p Policy,
    caller: &Caller,
    dataset: &'p Dataset,
    facts: &Facts<'_>,
) -> Decision<'p> {
    run(policy, caller, dataset, facts, &mut NoTrace)
}

/// The consumer rule that names dataset `id` for `consumer`, and its entry
/// for the dataset: step 3 of [`decide`].
fn consumer_dataset<'p>(
    policy: &'p Policy,
    consumer: &OrgNumber,
    id: &DatasetRef,
) -> Option<(&'p ConsumerRule, &'p ConsumerDataset)> {
    policy
        .consumers
        .iter()
        .filter(|r| r.consumer == *consumer)
        .find_map(|r| r.datasets.iter().find(|d| d.dataset == *id).map(|d| (r, d)))
}

/// The purposes `consumer` (through `supplier`, when one acts for it) may
/// use `dataset` for, by the same rules as steps 3 and 4 of [`decide`];
/// `None` when policy does not let it use the dataset at all. For telling a
/// refused caller what it may do, so a stranger learns nothing: never for
/// deciding.
pub fn allowed_purposes<'p>(
    policy: &'p Policy,
    consumer: &OrgNumber,
    supplier: Option<&OrgNumber>,
    dataset: &'p Dataset,
) -> Option<Vec<&'p str>> {
    let (rule, entry) = consumer_dataset(policy, consumer, &dataset.id)?;
    if supplier.is_some_and(|s| !rule.suppliers.contains(s)) {
        return None;
    }
    Some(
        dataset
            .purposes
            .iter()
            .map(|p| p.purpose.as_str())
            .filter(|p| entry.purposes.is_empty() || entry.purposes.iter().any(|e| e == p))
            .collect(),
    )
}

/// Decides as [`decide`] does and lists every rule checked on the way, up to
/// and including the one that failed.
pub fn explain<'p>(
    policy: &'p Policy,
    caller: &Caller,
    dataset: &'p Dataset,
    facts: &Facts<'_>,
) -> (Decision<'p>, Vec<Step>) {
    let mut steps = Vec::new();
    let decision = run(policy, caller, dataset, facts, &mut steps);
    (decision, steps)
}

/// Where the rules report what they checked. `decide` uses [`NoTrace`], so the
/// sentences for `explain` are never even formatted on the hot path.
trait Tracer {
    fn step(&mut self, passed: bool, rule: impl FnOnce() -> String);
}

struct NoTrace;

impl Tracer for NoTrace {
    #[inline(always)]
    fn step(&mut self, _passed: bool, _rule: impl FnOnce() -> String) {}
}

impl Tracer for Vec<Step> {
    fn step(&mut self, passed: bool, rule: impl FnOnce() -> String) {
        self.push(Step {
            rule: rule(),
            passed,
        });
    }
}

/// Records one rule and turns its failure into `code`.
fn rule(
    t: &mut impl Tracer,
    passed: bool,
    code: DenyCode,
    what: impl FnOnce() -> String,
) -> Result<(), DenyCode> {
    t.step(passed, what);
    if passed {
        Ok(())
    } else {
        Err(code)
    }
}

/// As [`rule`], for a rule that holds when something is found.
fn found<T>(
    t: &mut impl Tracer,
    value: Option<T>,
    code: DenyCode,
    what: impl FnOnce() -> String,
) -> Result<T, DenyCode> {
    t.step(value.is_some(), what);
    value.ok_or(code)
}

fn deny<T>(
    t: &mut impl Tracer,
    code: DenyCode,
    what: impl FnOnce() -> String,
) -> Result<T, DenyCode> {
    t.step(false, what);
    Err(code)
}

fn run<'p>(
    policy: &'p Policy,
    caller: &Caller,
    dataset: &'p Dataset,
    facts: &Facts<'_>,
    t: &mut impl Tracer,
) -> Decision<'p> {
    rules(policy, caller, dataset, facts, t).unwrap_or_else(Decision::Deny)
}

fn rules<'p>(
    policy: &'p Policy,
    caller: &Caller,
    dataset: &'p Dataset,
    facts: &Facts<'_>,
    t: &mut impl Tracer,
) -> Result<Decision<'p>, DenyCode> {
    let id = &dataset.id;
    let consumer = || org_label(policy, &caller.consumer);

    // 1. Purpose required.
    if dataset.personal_data {
        rule(
            t,
            facts.purpose.is_some(),
            DenyCode::PurposeRequired,
            || format!("{id} holds personal data, so the call must name a purpose (Bru-Purpose)"),
        )?;
    }

    // 2. Scope.
    rule(
        t,
        caller.has_scope(&dataset.scope),
        DenyCode::InsufficientScope,
        || format!("the token carries scope {}", dataset.scope),
    )?;

    // 3. A consumer rule for this organisation and dataset, and its supplier.
    let (consumer_rule, consumer_dataset) = found(
        t,
        consumer_dataset(policy, &caller.consumer, id),
        DenyCode::ConsumerNotAllowed,
        || format!("policy lets {} use {id}", consumer()),
    )?;
    if let Some(supplier) = &caller.supplier {
        rule(
            t,
            consumer_rule.suppliers.contains(supplier),
            DenyCode::ConsumerNotAllowed,
            || {
                format!(
                    "policy lets supplier {} act for {}",
                    org_label(policy, supplier),
                    consumer()
                )
            },
        )?;
    }

    // 4. Purpose allowed by the dataset and by the consumer rule.
    let mask: &'p FieldMask = match facts.purpose {
        Some(purpose) => {
            let allowed = found(
                t,
                dataset.purpose(purpose),
                DenyCode::PurposeNotAllowed,
                || format!("{id} may be used for purpose {purpose}"),
            )?;
            if !consumer_dataset.purposes.is_empty() {
                rule(
                    t,
                    consumer_dataset.purposes.iter().any(|p| p == purpose),
                    DenyCode::PurposeNotAllowed,
                    || format!("policy lets {} use {id} for purpose {purpose}", consumer()),
                )?;
            }
            &allowed.mask
        }
        None => {
            t.step(true, || {
                format!("{id} holds no personal data; the call needs no purpose")
            });
            &NO_MASK
        }
    };

    // 5. Subject.
    let subject = match (&facts.subject, &dataset.subject) {
        (SubjectFact::Valid(person), location) => {
            t.step(true, || match location {
                Some(l) => format!("the request names its subject in {l}, a valid person number"),
                None => "the request names a valid person number as its subject".into(),
            });
            Some(person)
        }
        (SubjectFact::NotApplicable, None) => {
            t.step(true, || {
                format!("{id} is not about a person; no subject is read")
            });
            None
        }
        (SubjectFact::Invalid, location) => {
            return deny(t, DenyCode::InvalidSubject, || {
                format!(
                    "the subject in {} is a valid person number",
                    subject_place(location)
                )
            });
        }
        (SubjectFact::Missing | SubjectFact::NotApplicable, location) => {
            return deny(t, DenyCode::SubjectMissing, || {
                format!(
                    "the request names its subject in {}",
                    subject_place(location)
                )
            });
        }
    };

    // 6. Legal basis.
    let consent_id = match dataset.basis {
        LegalBasis::Statutory => {
            t.step(true, || match &dataset.legal_ref {
                Some(r) => format!("{id} is statutory ({r}); no consent is needed"),
                None => format!("{id} is statutory; no consent is needed"),
            });
            None
        }
        LegalBasis::Consent => Some(consent(policy, caller, dataset, facts, subject, t)?),
    };

    // 7. The subject's blocks (SPEC 10), on a dataset whose policy lets them
    // apply (a person without blocks adds no step to `explain`).
    let mut break_glass = false;
    if dataset.blockable && subject.is_some() && !facts.blocks.is_empty() {
        let block = facts.blocks.iter().find(|b| match b {
            SubjectBlock::Consumer(org) => *org == caller.consumer,
            SubjectBlock::Dataset(d) => d == id,
        });
        if block.is_some() && dataset.break_glass && facts.break_glass.is_some() {
            t.step(true, || {
                format!(
                    "the subject has blocked {} or {id}, and the call passes the block \
                     with Bru-Break-Glass ({id} allows break-glass; the reason is recorded \
                     and the subject told)",
                    org_label(policy, &caller.consumer)
                )
            });
            break_glass = true;
        } else {
            rule(t, block.is_none(), DenyCode::BlockedBySubject, || {
                format!(
                    "the subject has not blocked {} or {id}",
                    org_label(policy, &caller.consumer)
                )
            })?;
        }
    }

    // 8. Allowed.
    Ok(Decision::Allow {
        basis: dataset.basis.clone(),
        legal_ref: dataset.legal_ref.as_deref(),
        mask,
        consent_id: consent_id.map(str::to_owned),
        subject: subject.cloned(),
        break_glass,
    })
}

/// Rule 6 for a consent-based dataset; the consent's id when it holds.
fn consent<'f>(
    policy: &Policy,
    caller: &Caller,
    dataset: &Dataset,
    facts: &'f Facts<'_>,
    subject: Option<&PersonNumber>,
    t: &mut impl Tracer,
) -> Result<&'f str, DenyCode> {
    let id = &dataset.id;
    let c = match &facts.consent {
        ConsentFact::Found(c) => c,
        ConsentFact::NotGiven => {
            return deny(t, DenyCode::ConsentRequired, || {
                format!("{id} is consent-based, so the call must name a consent (Bru-Consent)")
            });
        }
        ConsentFact::NotFound => {
            return deny(t, DenyCode::ConsentNotFound, || {
                "the consent the call names exists".into()
            });
        }
    };
    let cid = &c.id;

    rule(
        t,
        c.requester == caller.consumer,
        DenyCode::ConsentMismatch,
        || {
            format!(
                "consent {cid} was requested by {}",
                org_label(policy, &caller.consumer)
            )
        },
    )?;
    rule(
        t,
        c.datasets.contains(id),
        DenyCode::ConsentMismatch,
        || format!("consent {cid} covers {id}"),
    )?;
    rule(
        t,
        facts.purpose == Some(c.purpose.as_str()),
        DenyCode::ConsentMismatch,
        || format!("consent {cid} is for purpose {}, the call's", c.purpose),
    )?;

    // Revoked before expired before unanswered: the citizen's last word counts most.
    let refusal = match c.status {
        ConsentStatus::Revoked => Some((DenyCode::ConsentRevoked, "it has been revoked")),
        ConsentStatus::Expired => Some((DenyCode::ConsentExpired, "it has expired")),
        _ if facts.now >= c.valid_to => {
            Some((DenyCode::ConsentExpired, "its validity has run out"))
        }
        ConsentStatus::Pending => {
            Some((DenyCode::ConsentRequired, "the citizen has not answered it"))
        }
        ConsentStatus::Rejected => Some((DenyCode::ConsentNotFound, "the citizen rejected it")),
        ConsentStatus::Paused => Some((DenyCode::ConsentPaused, "the citizen has paused it")),
        ConsentStatus::Granted => None,
    };
    if let Some((code, why)) = refusal {
        return deny(t, code, || {
            format!("consent {cid} is granted and in force ({why})")
        });
    }
    t.step(true, || format!("consent {cid} is granted and in force"));

    if let Some(max) = c.max_uses {
        rule(t, c.uses < max, DenyCode::ConsentExhausted, || {
            format!("consent {cid} has uses left ({} of {max} used)", c.uses)
        })?;
    }
    if let Some(f) = &c.frequency {
        rule(
            t,
            f.used < f.max,
            DenyCode::ConsentFrequencyExceeded,
            || {
                format!(
                    "consent {cid} has a use left in its period ({} of {} used)",
                    f.used, f.max
                )
            },
        )?;
    }

    // A granted consent always has a subject; one without is not trusted.
    let same = matches!((&c.subject, subject), (Some(s), Some(p)) if s == p);
    rule(t, same, DenyCode::ConsentSubjectMismatch, || {
        format!("the call's subject is the person who gave consent {cid}")
    })?;
    Ok(cid)
}

/// `921429002 (K429 kommune)`, for the sentences of `explain`.
fn org_label(policy: &Policy, org: &OrgNumber) -> String {
    match policy.organisation_name(org) {
        Some(name) => format!("{org} ({name})"),
        None => org.to_string(),
    }
}

fn subject_place(location: &Option<SubjectLocation>) -> String {
    match location {
        Some(l) => l.to_string(),
        None => "the request".into(),
    }
}

#[cfg(test)]
mod tests;
