//! Consent rows as stored. The lifecycle (one state machine, events in the
//! same transaction) comes with a later issue; for now the store only reads.

use std::fmt;

use crate::error::StoreError;

/// One row of `consents`, close to the table. Times are the canonical
/// RFC 3339 strings of [`crate::Timestamp`].
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsentRow {
    pub id: String,
    /// `0192:{orgnr}` of the organisation that asked.
    pub requester: String,
    pub supplier: Option<String>,
    /// The person number in clear; `None` until a citizen takes a request
    /// that was made without one. Redacted in `Debug`.
    pub subject: Option<String>,
    /// JSON array of `"provider/dataset"`; see [`ConsentRow::dataset_list`].
    pub datasets: String,
    pub purpose: String,
    pub status: String,
    pub valid_to: String,
    pub max_uses: Option<i64>,
    pub uses: i64,
    pub redirect_url: Option<String>,
    pub message: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl ConsentRow {
    pub fn dataset_list(&self) -> Result<Vec<String>, StoreError> {
        serde_json::from_str(&self.datasets)
            .map_err(|e| StoreError::Corrupt(format!("consent {}: datasets: {e}", self.id)))
    }
}

// A person number must not reach a log line by accident.
impl fmt::Debug for ConsentRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsentRow")
            .field("id", &self.id)
            .field("requester", &self.requester)
            .field("supplier", &self.supplier)
            .field("subject", &self.subject.as_ref().map(|_| "***********"))
            .field("datasets", &self.datasets)
            .field("purpose", &self.purpose)
            .field("status", &self.status)
            .field("valid_to", &self.valid_to)
            .field("max_uses", &self.max_uses)
            .field("uses", &self.uses)
            .field("redirect_url", &self.redirect_url)
            .field("message", &self.message)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}
