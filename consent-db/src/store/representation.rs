//! Who decided a consent for someone else (SPEC 9.3, migration 0008): a
//! row per consent event taken by a representative, with the basis. An
//! event without a row was the person's own (`by` = `self`).

use super::{Conn, Store};
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

/// Who takes a citizen action for the person (SPEC 9.3), handed to
/// [`Store::citizen_action_by`] so the event and its actor commit together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionActor<'a> {
    /// `parent`, `guardian` or `fullmakt`.
    pub actor: &'a str,
    /// What the relation rests on, without the representative's number.
    pub basis: &'a str,
}

// The consent's newest event, if it is of this type: the one the action
// just wrote in the same transaction, under the consent's row lock.
const INSERT: &str = "INSERT INTO consent_event_actors (consent_id, seq, actor, basis) \
     SELECT consent_id, seq, $2, $3 FROM consent_events \
     WHERE consent_id = $1 AND type = $4 \
     AND seq = (SELECT MAX(seq) FROM consent_events WHERE consent_id = $1)";
const SELECT: &str =
    "SELECT seq, actor, basis FROM consent_event_actors WHERE consent_id = $1 ORDER BY seq";

impl Store {
    /// The representatives' parts in consent `id`'s events, by `seq`.
    pub async fn event_actors(&self, id: &str) -> Result<Vec<EventActor>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(SELECT).bind(id).fetch_all(pool).await?
        }))
    }
}

/// Records, inside the action's transaction, that the event just written
/// (`event`, the newest of consent `id`) was taken by `by`. Anything but
/// exactly one row is an error, so the caller's transaction rolls back:
/// a representative's decision is never stored as the person's own.
pub(super) async fn add_event_actor(
    conn: &mut Conn<'_>,
    id: &str,
    event: EventType,
    by: ActionActor<'_>,
) -> Result<(), StoreError> {
    let n = on_conn!(conn, c => {
        sqlx::query(INSERT)
            .bind(id)
            .bind(by.actor)
            .bind(by.basis)
            .bind(event.as_str())
            .execute(&mut **c)
            .await?
            .rows_affected()
    });
    if n != 1 {
        return Err(StoreError::Db(format!(
            "consent {id}: the {event} event for its representative is not the newest",
            event = event.as_str()
        )));
    }
    Ok(())
}
