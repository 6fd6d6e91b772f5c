//! The enterprise consent events feed:
//! `GET /accessmanagement/api/v1/enterprise/consentrequests/events`.
//!
//! Source: Altinn/altinn-studio-docs `…/system-vendor/consent/events`
//! (`{"links": {"next"}, "data": [{"consentRequestId", "eventType",
//! "changedDate"}]}`, oldest first, a cursor in `next`, only events older
//! than 5 minutes; types `accepted`, `rejected`, `revoked`, `deleted`, `used`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::FormatError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentEvent {
    pub consent_request_id: String,
    pub event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub changed_date: OffsetDateTime,
}

impl ConsentEvent {
    /// Whether the event ends the consent for a data source.
    pub fn ends_consent(&self) -> bool {
        matches!(self.event_type.as_str(), "revoked" | "deleted")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsPage {
    #[serde(default)]
    pub links: Links,
    pub data: Vec<ConsentEvent>,
}

pub fn parse_page(body: &[u8]) -> Result<EventsPage, FormatError> {
    serde_json::from_slice(body).map_err(|_| FormatError::Invalid("events page"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn documented_page() {
        let body = br#"{
          "links": { "next": "https://h/accessmanagement/api/v1/enterprise/consentrequests/events?continuationToken=MjAy" },
          "data": [{ "consentRequestId": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "eventType": "accepted", "changedDate": "2025-05-04T10:30:00+02:00" }]
        }"#;
        let page = parse_page(body).unwrap();
        assert_eq!(page.data.len(), 1);
        assert!(!page.data[0].ends_consent());
        assert!(page.links.next.unwrap().contains("continuationToken"));
        assert!(parse_page(b"{}").is_err());
    }
}
