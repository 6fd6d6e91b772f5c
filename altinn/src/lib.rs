//! Altinn 3 and Maskinporten formats, as Digdir and Altinn document them, so
//! that Bru can stand in front of a data source that Norwegian consumers
//! already call with Maskinporten tokens (SPEC section 9):
//!
//! - `consent`: `authorization_details` of type `urn:altinn:consent` in
//!   the three generations a data source must accept while Altinn migrates
//!   (Altinn 2 tokens, Altinn 3 tokens, migrated Altinn 2 consents);
//! - `systemuser`: `urn:altinn:systemuser`;
//! - `xacml`: Altinn's XACML JSON authorize request and response (the PDP);
//! - `events`: the enterprise consent events feed.
//!
//! Pure: parsing, matching and building documents; no I/O, no clock (the
//! time is always an argument). Person numbers never appear in `Debug`.

pub mod consent;
pub mod events;
pub mod systemuser;
pub mod xacml;

pub use consent::{AltinnConsent, ConsentRight, Generation, Party};
pub use systemuser::SystemUser;

use thiserror::Error;

/// A document in one of Altinn's or Maskinporten's formats that does not
/// say what the format requires. Holds no value from the document (a person
/// number could be one), only which member is at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormatError {
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0} is not in the documented format")]
    Invalid(&'static str),
    #[error("more than one {0} grant (Maskinporten issues one per token)")]
    Repeated(&'static str),
}

/// What a Maskinporten token's `authorization_details` grants, of the types
/// Bru understands; others are ignored, as RFC 9396 lets a resource server
/// ignore types it does not know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub consent: Option<AltinnConsent>,
    pub system_user: Option<SystemUser>,
}

impl Grants {
    /// Reads the `authorization_details` claim (an array; absent is none).
    pub fn from_claim(claim: Option<&serde_json::Value>) -> Result<Grants, FormatError> {
        let mut grants = Grants::default();
        let Some(claim) = claim else {
            return Ok(grants);
        };
        // Maskinporten always writes an array; RFC 9396 allows nothing else.
        let items = claim
            .as_array()
            .ok_or(FormatError::Invalid("authorization_details"))?;
        for item in items {
            match item.get("type").and_then(|t| t.as_str()) {
                Some(consent::CONSENT_TYPE) => {
                    if grants.consent.is_some() {
                        return Err(FormatError::Repeated(consent::CONSENT_TYPE));
                    }
                    grants.consent = Some(AltinnConsent::from_authorization_detail(item)?);
                }
                Some(systemuser::SYSTEMUSER_TYPE) => {
                    if grants.system_user.is_some() {
                        return Err(FormatError::Repeated(systemuser::SYSTEMUSER_TYPE));
                    }
                    grants.system_user = Some(SystemUser::from_authorization_detail(item)?);
                }
                _ => {}
            }
        }
        Ok(grants)
    }

    pub fn is_empty(&self) -> bool {
        self.consent.is_none() && self.system_user.is_none()
    }
}

/// `{"authority": "iso6523-actorid-upis", "ID": "0192:N"}`, or the URN form
/// `urn:altinn:organization:identifier-no:N` some of Altinn's pages show.
fn org_of(value: &serde_json::Value, what: &'static str) -> Result<policy::OrgNumber, FormatError> {
    if let Some(s) = value.as_str() {
        let n = s
            .strip_prefix("urn:altinn:organization:identifier-no:")
            .ok_or(FormatError::Invalid(what))?;
        return policy::OrgNumber::parse(n).map_err(|_| FormatError::Invalid(what));
    }
    if let Some(authority) = value.get("authority").and_then(|a| a.as_str()) {
        if authority != "iso6523-actorid-upis" {
            return Err(FormatError::Invalid(what));
        }
    }
    let id = value
        .get("ID")
        .and_then(|i| i.as_str())
        .ok_or(FormatError::Missing(what))?;
    policy::OrgNumber::parse_iso6523(id).map_err(|_| FormatError::Invalid(what))
}
