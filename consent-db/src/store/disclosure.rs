//! Delayed disclosure (SPEC 10): what of the log a citizen may see now.
//!
//! A record whose consumer rule has `disclosure_delay_days` is written at
//! once, like every other (the log stays complete and verifiable, and the
//! audit API shows it), with the derived column `disclose_at` = its time +
//! the delay (migration 0010). Every citizen view reads records about the
//! citizen through the two functions here, and only they, so the rule
//! "not before `disclose_at`" is written once: the access log (API and
//! portal, also when a representative reads it), a transfer's proof, the
//! export. A record not yet disclosed is absent, exactly as if it did not
//! exist (a proof of it is 404, not 403).
//!
//! The time compared is [`disclosure_now`]: the clock, and in debug builds
//! only (tests), the clock moved by `BRU_TEST_DISCLOSURE_SKEW_DAYS` so a
//! black-box test can see a delay pass. A release build never reads it.

use super::records::{indexed_columns, RecordRow, INDEXED_FROM, RECORD_COLUMNS};
use super::Store;
use crate::error::StoreError;
use crate::record::{AuditRecord, RecordKind, Timestamp};

/// The one condition: no delay, or the delay has passed. `disclose_at` is
/// spelt as `time` is (fixed width, UTC, milliseconds), so text compares as
/// time does on both backends.
const DISCLOSED: &str = "(disclose_at IS NULL OR disclose_at <= $2)";
/// [`DISCLOSED`] on the derived index (`audit_index i`, migration 0015).
const INDEX_DISCLOSED: &str = "(i.disclose_at IS NULL OR i.disclose_at <= $2)";

/// The environment variable a debug build reads once: days to add to the
/// clock for delayed disclosure only (tokens, consents and records keep the
/// real time).
pub const TEST_SKEW_VAR: &str = "BRU_TEST_DISCLOSURE_SKEW_DAYS";

/// The time the citizen's views hold `disclose_at` against.
pub fn disclosure_now() -> Timestamp {
    let now = time::OffsetDateTime::now_utc();
    match test_skew_days() {
        0 => Timestamp::from_datetime(now),
        days => {
            Timestamp::from_datetime(now.checked_add(time::Duration::days(days)).unwrap_or(now))
        }
    }
}

/// Days the disclosure clock is moved: always 0 in a release build.
#[cfg(not(debug_assertions))]
pub fn test_skew_days() -> i64 {
    0
}

/// Days the disclosure clock is moved: `BRU_TEST_DISCLOSURE_SKEW_DAYS` (read
/// once), for tests that need a delay to have passed. Debug builds only.
#[cfg(debug_assertions)]
pub fn test_skew_days() -> i64 {
    static SKEW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *SKEW.get_or_init(|| {
        std::env::var(TEST_SKEW_VAR)
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|d| (-3650..=36500).contains(d))
            .unwrap_or(0)
    })
}

impl Store {
    /// The citizen view of the log: records about `subject_ref` (of `kind`,
    /// or every kind) after the cursor, at most `limit`, in index order,
    /// leaving out any whose delayed disclosure has not passed at
    /// [`disclosure_now`]. Every citizen view of records uses this (or
    /// [`Store::citizen_record`]); the audit API does not.
    pub async fn citizen_records(
        &self,
        subject_ref: &str,
        kind: Option<RecordKind>,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.citizen_records_as_of(subject_ref, kind, after, limit, disclosure_now())
            .await
    }

    /// [`Store::citizen_records`] as of `now` (for tests of the delay).
    pub async fn citizen_records_as_of(
        &self,
        subject_ref: &str,
        kind: Option<RecordKind>,
        after: Option<u64>,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        // On the derived index, caught up first: the citizen sees the
        // records of calls that returned before this read.
        self.index_for_read().await?;
        let sql = format!(
            "SELECT {}{INDEXED_FROM} WHERE i.subject_ref = $1 AND {INDEX_DISCLOSED} \
             AND ($3 IS NULL OR i.kind = $3) AND i.idx > $4 ORDER BY i.idx LIMIT $5",
            indexed_columns()
        );
        // No cursor: every index is above -1.
        let after = after.map_or(-1, |a| i64::try_from(a).unwrap_or(i64::MAX));
        let rows: Vec<RecordRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(subject_ref)
                .bind(now.to_string())
                .bind(kind.map(|k| k.as_str()))
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(AuditRecord::try_from).collect()
    }

    /// One record by index, if it is about `subject_ref` and disclosed at
    /// [`disclosure_now`]; otherwise `None`, as if it did not exist.
    pub async fn citizen_record(
        &self,
        index: u64,
        subject_ref: &str,
    ) -> Result<Option<AuditRecord>, StoreError> {
        self.citizen_record_as_of(index, subject_ref, disclosure_now())
            .await
    }

    /// [`Store::citizen_record`] as of `now` (for tests of the delay).
    pub async fn citizen_record_as_of(
        &self,
        index: u64,
        subject_ref: &str,
        now: Timestamp,
    ) -> Result<Option<AuditRecord>, StoreError> {
        let Ok(idx) = i64::try_from(index) else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM audit_records WHERE subject_ref = $1 AND {DISCLOSED} \
             AND idx = $3"
        );
        let row: Option<RecordRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(subject_ref)
                .bind(now.to_string())
                .bind(idx)
                .fetch_optional(pool)
                .await?
        });
        row.map(AuditRecord::try_from).transpose()
    }
}
