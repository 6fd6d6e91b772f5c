//! The one decision function. Pure: same inputs, same decision, no I/O, no clock.

use time::OffsetDateTime;

use crate::id::{OrgNumber, PersonNumber};
use crate::model::{Dataset, DatasetRef, FieldMask, LegalBasis, Policy};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentStatus {
    Pending,
    Granted,
    Rejected,
    Revoked,
    Expired,
}

/// A consent as the store holds it, gathered before deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentView {
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentFact {
    /// No `Bru-Consent` header.
    NotGiven,
    /// A consent id was given but the store has none by that id.
    NotFound,
    Found(ConsentView),
}

/// Everything a decision depends on besides the policy, the caller and the dataset.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// `Bru-Purpose`, if sent.
    pub purpose: Option<&'a str>,
    pub subject: SubjectFact,
    pub consent: ConsentFact,
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
    ConsentExpired,
    ConsentExhausted,
    ConsentMismatch,
    ConsentSubjectMismatch,
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
            DenyCode::ConsentExpired => "consent_expired",
            DenyCode::ConsentExhausted => "consent_exhausted",
            DenyCode::ConsentMismatch => "consent_mismatch",
            DenyCode::ConsentSubjectMismatch => "consent_subject_mismatch",
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

/// Decides one call. Deny by default: only a path through every rule allows.
pub fn decide<'p>(
    policy: &'p Policy,
    caller: &Caller,
    dataset: &'p Dataset,
    facts: &Facts<'_>,
) -> Decision<'p> {
    let _ = (policy, caller, dataset, facts);
    Decision::Deny(DenyCode::ConsumerNotAllowed)
}

/// Decides as [`decide`] does and lists every rule checked on the way.
pub fn explain<'p>(
    policy: &'p Policy,
    caller: &Caller,
    dataset: &'p Dataset,
    facts: &Facts<'_>,
) -> (Decision<'p>, Vec<Step>) {
    (decide(policy, caller, dataset, facts), Vec::new())
}
