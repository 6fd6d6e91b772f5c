//! Altinn's XACML JSON authorize API (the PDP), for system users.
//!
//! Sources: Altinn, "System user for API providers"
//! (Altinn/altinn-studio-docs `…/resource-owner/system-user`: call the PDP
//! on each request with `urn:altinn:systemuser:uuid`, the action,
//! `urn:altinn:resource` and `urn:altinn:organization:identifier-no`);
//! the request body of Altinn's own tests
//! (Altinn/altinn-authorization-tmp `…/testData/buildAuthorizeBody.js`);
//! the XACML 3.0 JSON profile's `{"Response": [{"Decision": …}]}`.

use serde_json::{json, Value};

use crate::FormatError;

pub const SYSTEMUSER_ATTRIBUTE: &str = "urn:altinn:systemuser:uuid";
pub const ACTION_ATTRIBUTE: &str = "urn:oasis:names:tc:xacml:1.0:action:action-id";
pub const RESOURCE_ATTRIBUTE: &str = "urn:altinn:resource";
pub const PARTY_ATTRIBUTE: &str = "urn:altinn:organization:identifier-no";

/// One question to the PDP: may this system user do `action` on
/// `resource` for `party`? Also the key of a cached answer: all four, so
/// that one system user's Permit is never another's (Altinn/dialogporten#1363).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthorizeRequest {
    pub system_user: String,
    pub action: String,
    pub resource: String,
    /// The organisation number the system user acts for.
    pub party: String,
}

impl AuthorizeRequest {
    pub fn to_json(&self) -> Value {
        let string = "http://www.w3.org/2001/XMLSchema#string";
        json!({
            "Request": {
                "ReturnPolicyIdList": false,
                "AccessSubject": [{ "Attribute": [
                    { "AttributeId": SYSTEMUSER_ATTRIBUTE, "Value": self.system_user, "DataType": string }
                ]}],
                "Action": [{ "Attribute": [
                    { "AttributeId": ACTION_ATTRIBUTE, "Value": self.action, "DataType": string }
                ]}],
                "Resource": [{ "Attribute": [
                    { "AttributeId": RESOURCE_ATTRIBUTE, "Value": self.resource, "DataType": string },
                    { "AttributeId": PARTY_ATTRIBUTE, "Value": self.party, "DataType": string }
                ]}]
            }
        })
    }

    /// Reads a request back (the demo's PDP answers what Bru asks).
    pub fn from_json(v: &Value) -> Result<AuthorizeRequest, FormatError> {
        let request = v.get("Request").ok_or(FormatError::Missing("Request"))?;
        let attribute = |category: &'static str, id: &str| -> Result<String, FormatError> {
            request
                .get(category)
                .and_then(Value::as_array)
                .ok_or(FormatError::Missing(category))?
                .iter()
                .filter_map(|c| c.get("Attribute").and_then(Value::as_array))
                .flatten()
                .find(|a| a.get("AttributeId").and_then(Value::as_str) == Some(id))
                .and_then(|a| a.get("Value").and_then(Value::as_str))
                .map(str::to_owned)
                .ok_or(FormatError::Missing(category))
        };
        Ok(AuthorizeRequest {
            system_user: attribute("AccessSubject", SYSTEMUSER_ATTRIBUTE)?,
            action: attribute("Action", ACTION_ATTRIBUTE)?,
            resource: attribute("Resource", RESOURCE_ATTRIBUTE)?,
            party: attribute("Resource", PARTY_ATTRIBUTE)?,
        })
    }
}

/// The PDP's answer, as far as a data source acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdpDecision {
    Permit,
    /// `Deny`, `NotApplicable` or `Indeterminate`: anything but Permit refuses.
    NotPermit,
}

/// `{"Response": [{"Decision": "Permit", …}]}`: Permit only when every
/// result is `Permit` (one result per request here).
pub fn parse_response(body: &[u8]) -> Result<PdpDecision, FormatError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| FormatError::Invalid("Response"))?;
    let results = v
        .get("Response")
        .and_then(Value::as_array)
        .ok_or(FormatError::Missing("Response"))?;
    if results.is_empty() {
        return Err(FormatError::Missing("Response"));
    }
    let all_permit = results
        .iter()
        .all(|r| r.get("Decision").and_then(Value::as_str) == Some("Permit"));
    Ok(if all_permit {
        PdpDecision::Permit
    } else {
        PdpDecision::NotPermit
    })
}

/// The answer the demo's PDP writes.
pub fn response_json(decision: PdpDecision) -> Value {
    let name = match decision {
        PdpDecision::Permit => "Permit",
        PdpDecision::NotPermit => "NotApplicable",
    };
    json!({ "Response": [{ "Decision": name, "Status": { "StatusCode": { "Value": "urn:oasis:names:tc:xacml:1.0:status:ok" } } }] })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_decisions() {
        let r = AuthorizeRequest {
            system_user: "a6355a68-86b8-4344-8a81-0248cb461468".into(),
            action: "read".into(),
            resource: "nav-inntekt".into(),
            party: "921429002".into(),
        };
        assert_eq!(AuthorizeRequest::from_json(&r.to_json()).unwrap(), r);
        assert_eq!(
            parse_response(br#"{"Response":[{"Decision":"Permit"}]}"#),
            Ok(PdpDecision::Permit)
        );
        assert_eq!(
            parse_response(br#"{"Response":[{"Decision":"Permit"},{"Decision":"Deny"}]}"#),
            Ok(PdpDecision::NotPermit)
        );
        assert!(parse_response(br#"{"Response":[]}"#).is_err());
        assert!(parse_response(b"<xml/>").is_err());
        let body = serde_json::to_vec(&response_json(PdpDecision::Permit)).unwrap();
        assert_eq!(parse_response(&body), Ok(PdpDecision::Permit));
    }
}
