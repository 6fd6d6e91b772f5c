//! `urn:altinn:systemuser`: a vendor's system acting as a customer
//! organisation's system user.
//!
//! Source: Altinn, "Use system user token" (Altinn/altinn-studio-docs
//! `content/authorization/guides/system-vendor/system-user/usetoken`): the
//! token carries `systemuser_id` (an array), `systemuser_org`
//! (`{authority, ID}`) and `system_id`; `consumer` is the vendor; the API
//! provider asks the PDP on each request.

use serde_json::Value;

use crate::FormatError;

pub const SYSTEMUSER_TYPE: &str = "urn:altinn:systemuser";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemUser {
    /// The system user's UUID (the first of `systemuser_id`; Altinn issues one).
    pub id: String,
    /// The customer organisation the system user belongs to.
    pub org: policy::OrgNumber,
    /// The vendor's system, e.g. `991825827_smartcloud`.
    pub system_id: String,
}

impl SystemUser {
    pub fn from_authorization_detail(item: &Value) -> Result<SystemUser, FormatError> {
        let ids = item
            .get("systemuser_id")
            .ok_or(FormatError::Missing("systemuser_id"))?;
        let id = match ids {
            Value::Array(a) if a.len() == 1 => a[0].as_str(),
            // One system user per token: several would leave "which" open.
            Value::Array(_) => None,
            Value::String(s) => Some(s.as_str()),
            _ => None,
        }
        .ok_or(FormatError::Invalid("systemuser_id"))?;
        if id.len() != 36 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(FormatError::Invalid("systemuser_id"));
        }
        let org = crate::org_of(
            item.get("systemuser_org")
                .ok_or(FormatError::Missing("systemuser_org"))?,
            "systemuser_org",
        )?;
        let system_id = item
            .get("system_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 128)
            .ok_or(FormatError::Missing("system_id"))?;
        Ok(SystemUser {
            id: id.to_ascii_lowercase(),
            org,
            system_id: system_id.to_owned(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use crate::{FormatError, Grants};

    #[test]
    fn system_user_token() {
        // The shape of Altinn's usetoken example (SPEC 9.2), with the ids of
        // Altinn's own test fixture (SystemUserId f950ddae-…, 0192:310702641,
        // 991825827_smartcloud).
        let v = json!([{
            "type": "urn:altinn:systemuser",
            "systemuser_id": ["f950ddae-06c3-4b57-b940-702417a90df0"],
            "systemuser_org": { "authority": "iso6523-actorid-upis", "ID": "0192:310702641" },
            "system_id": "991825827_smartcloud"
        }]);
        let s = Grants::from_claim(Some(&v)).unwrap().system_user.unwrap();
        assert_eq!(s.id, "f950ddae-06c3-4b57-b940-702417a90df0");
        assert_eq!(s.org.as_str(), "310702641");
        assert_eq!(s.system_id, "991825827_smartcloud");

        let mut two = v.clone();
        two[0]["systemuser_id"] = json!([
            "f950ddae-06c3-4b57-b940-702417a90df0",
            "f950ddae-06c3-4b57-b940-702417a90df1"
        ]);
        assert_eq!(
            Grants::from_claim(Some(&two)),
            Err(FormatError::Invalid("systemuser_id"))
        );
        let mut no_org = v.clone();
        no_org[0].as_object_mut().unwrap().remove("systemuser_org");
        assert!(Grants::from_claim(Some(&no_org)).is_err());
    }
}
