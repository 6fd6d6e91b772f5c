//! Bru's pure decision logic: the domain model, identifiers, policy files and
//! [`decide()`], the one function that allows or refuses a call.
//!
//! Architecture invariant: this crate does no I/O except reading policy files
//! in [`load`], and nothing here is async. Everything `decide` needs is
//! gathered by the caller first and passed in as [`Facts`]. [`api`] answers
//! the same kind of question for Bru's own consent and audit APIs.

pub mod api;
pub mod decide;
pub mod id;
pub mod load;
pub mod model;
pub mod represent;
pub mod snoop;

pub use api::{
    authorize_api, check_consent_request, supplier_refused, Api, ConsentRequest,
    ConsentRequestError,
};
pub use decide::{
    allowed_purposes, decide, explain, Caller, Consent, ConsentFact, ConsentStatus, Decision,
    DenyCode, Facts, FrequencyWindow, Step, SubjectBlock, SubjectFact, UnknownConsentStatus,
};
pub use id::{IdError, OrgNumber, PersonNumber};
pub use load::{load_policy, parse_policy, PolicyError};
pub use model::*;
