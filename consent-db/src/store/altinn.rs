//! What Bru keeps about Altinn consents (migration 0006): the consents the
//! events feed says ended, the one-time consents used, and the feed's cursor.
//! Written once for both backends (both take `$n` parameters, `ON CONFLICT`
//! and `excluded`).

use super::{Conn, Store};
use crate::error::StoreError;
use crate::record::Timestamp;

/// How an Altinn consent's id is written in records (`altinn:{uuid}`).
pub(crate) const CONSENT_PREFIX: &str = "altinn:";

/// What the store knows of one Altinn consent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AltinnConsentState {
    /// `revoked` or `deleted`, when the feed said so.
    pub ended: Option<String>,
    /// A one-time use was taken.
    pub used: bool,
}

/// One event from the feed that ends a consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AltinnConsentEnded {
    pub consent_id: String,
    /// `revoked` or `deleted`.
    pub event: String,
    /// RFC 3339.
    pub changed_at: String,
}

const STATE: &str = "SELECT (SELECT event FROM altinn_consent_ended WHERE consent_id = $1), \
     (SELECT COUNT(*) FROM altinn_consent_uses WHERE consent_id = $1)";
const USE_ONCE: &str = "INSERT INTO altinn_consent_uses (consent_id, transfer_id, used_at) \
     VALUES ($1, $2, $3) ON CONFLICT (consent_id) DO NOTHING";
const ENDED: &str = "INSERT INTO altinn_consent_ended (consent_id, event, changed_at, learnt_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (consent_id) DO NOTHING";
const CURSOR: &str = "SELECT next_url FROM altinn_feed_cursor WHERE feed = $1";
const SET_CURSOR: &str = "INSERT INTO altinn_feed_cursor (feed, next_url, updated_at) \
     VALUES ($1, $2, $3) ON CONFLICT (feed) DO UPDATE \
     SET next_url = excluded.next_url, updated_at = excluded.updated_at";

impl Store {
    /// Whether the feed ended this consent, and whether its one use was taken.
    pub async fn altinn_consent_state(&self, id: &str) -> Result<AltinnConsentState, StoreError> {
        let (ended, uses): (Option<String>, i64) = on_pool!(self, pool => {
            sqlx::query_as(STATE).bind(id).fetch_one(pool).await?
        });
        Ok(AltinnConsentState {
            ended,
            used: uses > 0,
        })
    }

    /// Takes the one use of a one-time consent for `transfer_id`; false when
    /// another transfer (on any replica) took it first. One conditional
    /// insert on the primary key: exactly one of any number of parallel
    /// callers gets true.
    pub async fn use_altinn_consent_once(
        &self,
        id: &str,
        transfer_id: &str,
        used_at: &str,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, pool => {
            sqlx::query(USE_ONCE)
                .bind(id)
                .bind(transfer_id)
                .bind(used_at)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// The feed's cursor: the next page's URL, where reading goes on.
    pub async fn altinn_feed_cursor(&self, feed: &str) -> Result<Option<String>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar(CURSOR).bind(feed).fetch_optional(pool).await?
        }))
    }

    /// Records the consents one page of the feed ended and moves the cursor
    /// past the page, in one transaction: a crash between the two would
    /// otherwise skip a revocation (cursor first) or merely read a page twice
    /// (harmless, the inserts are idempotent), and here neither happens.
    pub async fn apply_altinn_events(
        &self,
        feed: &str,
        ended: &[AltinnConsentEnded],
        next_url: Option<&str>,
        now: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for e in ended {
                sqlx::query(ENDED)
                    .bind(&e.consent_id)
                    .bind(&e.event)
                    .bind(&e.changed_at)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(next) = next_url {
                sqlx::query(SET_CURSOR)
                    .bind(feed)
                    .bind(next)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}

/// Takes the one use of a one-time Altinn consent inside the caller's
/// transaction (the audit batch, under the sequencer): false, with nothing
/// written, when another transfer (on any replica) took it first. One
/// conditional insert on the primary key, committed with the decision
/// record or not at all: a use never exists without its record, nor a
/// record without its use.
pub(super) async fn take_use(
    conn: &mut Conn<'_>,
    uuid: &str,
    transfer_id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let now = now.to_string();
    let n = on_conn!(&mut *conn, c => {
        sqlx::query(USE_ONCE)
            .bind(uuid)
            .bind(transfer_id)
            .bind(&now)
            .execute(&mut **c)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}
