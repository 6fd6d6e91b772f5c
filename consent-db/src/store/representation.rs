//! Who decided a consent for someone else (SPEC 9.3, migration 0008): a
//! row per consent event taken by a representative, with the basis. An
//! event without a row was the person's own (`by` = `self`).

use super::{Backend, Store};
use crate::consent::EventType;
use crate::error::StoreError;

/// A representative's part in one consent event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventActor {
    /// The event's place in the consent's history (0 = `created`).
    pub seq: i64,
    /// `parent`, `guardian` or `fullmakt`.
    pub actor: String,
    /// What the relation rests on, without the representative's number.
    pub basis: String,
}

// The newest event of this type: the one the action just wrote (an action
// writes exactly one, and a second action of the same type is refused as an
// invalid transition).
const INSERT: &str = "INSERT INTO consent_event_actors (consent_id, seq, actor, basis) \
     SELECT consent_id, MAX(seq), $2, $3 FROM consent_events \
     WHERE consent_id = $1 AND type = $4 GROUP BY consent_id";
const SELECT: &str =
    "SELECT seq, actor, basis FROM consent_event_actors WHERE consent_id = $1 ORDER BY seq";

/// See `store/portal_sessions.rs`: the statement once, expanded per backend.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite(db) => {
                let $pool = &db.pool;
                $body
            }
            Backend::Postgres(db) => {
                let $pool = &db.pool;
                $body
            }
        }
    };
}

impl Store {
    /// Records that the newest `event` of consent `id` was taken by a
    /// representative (`actor`) on `basis`. Whether a row was written.
    pub async fn record_event_actor(
        &self,
        id: &str,
        event: EventType,
        actor: &str,
        basis: &str,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, pool => {
            sqlx::query(INSERT)
                .bind(id)
                .bind(actor)
                .bind(basis)
                .bind(event.as_str())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// The representatives' parts in consent `id`'s events, by `seq`.
    pub async fn event_actors(&self, id: &str) -> Result<Vec<EventActor>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(SELECT).bind(id).fetch_all(pool).await?
        }))
    }
}
