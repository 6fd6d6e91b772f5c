//! The policy side of Bru's own machine APIs: who may use the consent
//! requester API and the audit API, and whether a consent request asks for
//! something the policy could ever allow. Pure, like [`mod@crate::decide`].

use thiserror::Error;
use time::{Duration, OffsetDateTime};

use crate::decide::{Caller, DenyCode};
use crate::id::OrgNumber;
use crate::model::{ConsumerRule, DatasetRef, LegalBasis, Policy};

/// One of Bru's own APIs for machine callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// `/consent/v1/requests`: scope `bru:consent`, consumer rule `consent_requester`.
    ConsentRequester,
    /// `/audit/v1/…`: scope `bru:audit`, consumer rule `audit_reader`.
    Audit,
}

impl Api {
    /// The scope a token must carry for this API.
    pub fn scope(self) -> &'static str {
        match self {
            Api::ConsentRequester => "bru:consent",
            Api::Audit => "bru:audit",
        }
    }

    fn granted_by(self, rule: &ConsumerRule) -> bool {
        match self {
            Api::ConsentRequester => rule.consent_requester,
            Api::Audit => rule.audit_reader,
        }
    }

    /// Whether a supplier acting for the rule's consumer may use this API:
    /// the consent requester API with any of the consumer's suppliers (a
    /// vendor's system asks citizens for the consumer); the audit API only
    /// with a supplier named in `audit_suppliers` (the log shows every
    /// organisation's calls about every person, so a vendor reads it only
    /// where the consumer has said so).
    fn granted_to_supplier(self, rule: &ConsumerRule, supplier: &OrgNumber) -> bool {
        match self {
            Api::ConsentRequester => rule.suppliers.contains(supplier),
            Api::Audit => rule.audit_suppliers.contains(supplier),
        }
    }
}

/// Whether `caller` may use `api`: the token carries the API's scope
/// (else `InsufficientScope`), and a consumer rule for the caller's
/// organisation grants the API and, when a supplier acts for it, grants it
/// to that supplier too (else `ConsumerNotAllowed`; see
/// [`supplier_refused`] to tell the two apart).
pub fn authorize_api(policy: &Policy, caller: &Caller, api: Api) -> Result<(), DenyCode> {
    if !caller.has_scope(api.scope()) {
        return Err(DenyCode::InsufficientScope);
    }
    let allowed = policy
        .consumers
        .iter()
        .filter(|r| r.consumer == caller.consumer && api.granted_by(r))
        .any(|r| {
            caller
                .supplier
                .as_ref()
                .is_none_or(|s| api.granted_to_supplier(r, s))
        });
    if allowed {
        Ok(())
    } else {
        Err(DenyCode::ConsumerNotAllowed)
    }
}

/// Whether `caller` is refused `api` only because a supplier acts for it:
/// the consumer itself would be allowed. For the refusal's message.
pub fn supplier_refused(policy: &Policy, caller: &Caller, api: Api) -> bool {
    caller.supplier.is_some()
        && caller.has_scope(api.scope())
        && policy
            .consumers
            .iter()
            .any(|r| r.consumer == caller.consumer && api.granted_by(r))
        && authorize_api(policy, caller, api).is_err()
}

/// What `POST /consent/v1/requests` asks for, as far as policy is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRequest<'a> {
    /// The caller's organisation (the token's consumer).
    pub requester: &'a OrgNumber,
    pub datasets: &'a [DatasetRef],
    pub purpose: &'a str,
    pub valid_to: OffsetDateTime,
    pub max_uses: Option<u32>,
}

/// Why a consent request cannot be accepted; `field` names the request
/// member at fault, for the 400 problem details.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct ConsentRequestError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: String) -> ConsentRequestError {
    ConsentRequestError { field, message }
}

/// Checks a consent request against policy: every dataset exists, is
/// consent-based, allows the purpose, and may be used by the requester for
/// it; `valid_to` lies after `now` and within every dataset's
/// `max_consent_days`; `max_uses`, if given, is at least 1.
///
/// Whether the caller may use the API at all is [`authorize_api`]'s question.
pub fn check_consent_request(
    policy: &Policy,
    request: &ConsentRequest<'_>,
    now: OffsetDateTime,
) -> Result<(), ConsentRequestError> {
    let purpose = request.purpose;
    if !policy.purposes.contains_key(purpose) {
        return Err(bad(
            "purpose",
            format!("no purpose \"{purpose}\" is defined"),
        ));
    }
    if request.datasets.is_empty() {
        return Err(bad("datasets", "name at least one dataset".into()));
    }
    let mut max_days = u32::MAX;
    for id in request.datasets {
        let Some(dataset) = policy.dataset(&id.provider, &id.dataset) else {
            return Err(bad("datasets", format!("there is no dataset {id}")));
        };
        if dataset.basis != LegalBasis::Consent {
            return Err(bad(
                "datasets",
                format!("{id} is shared by statute, not by consent"),
            ));
        }
        if dataset.purpose(purpose).is_none() {
            return Err(bad(
                "purpose",
                format!("{id} may not be used for purpose {purpose}"),
            ));
        }
        let requester = request.requester;
        let rule = policy
            .consumers
            .iter()
            .filter(|r| &r.consumer == requester)
            .find_map(|r| r.datasets.iter().find(|d| d.dataset == *id));
        match rule {
            None => return Err(bad("datasets", format!("{requester} may not use {id}"))),
            Some(d) if !d.purposes.is_empty() && !d.purposes.iter().any(|p| p == purpose) => {
                return Err(bad(
                    "purpose",
                    format!("{requester} may not use {id} for purpose {purpose}"),
                ))
            }
            Some(_) => {}
        }
        max_days = max_days.min(dataset.max_consent_days);
    }
    if request.valid_to <= now {
        return Err(bad("valid_to", "lies in the past".into()));
    }
    // `checked_add` fails only past year 9999, where no limit is worth enforcing.
    let latest = now.checked_add(Duration::days(i64::from(max_days)));
    if latest.is_some_and(|latest| request.valid_to > latest) {
        return Err(bad(
            "valid_to",
            format!("may lie at most {max_days} days ahead for these datasets"),
        ));
    }
    if request.max_uses == Some(0) {
        return Err(bad("max_uses", "must be at least 1".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
