//! The citizen portal's server-side sessions (migration 0004), so every
//! replica agrees on which sessions exist and a logout ends one everywhere.
//!
//! The store keeps what the portal hands it and nothing it can read: the
//! SHA-256 of the session id (the cookie holds the id), a value the portal
//! sealed under its own key (the person number is inside, never in clear
//! here), and the login and last-seen times the idle and absolute limits
//! count from. The portal decides what those limits are.

use super::Store;
use crate::error::StoreError;

/// One portal session as stored.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PortalSession {
    /// Hex SHA-256 of the session id.
    pub id_hash: String,
    /// The portal's sealed session state.
    pub sealed: String,
    /// Unix seconds of the login.
    pub login_at: i64,
    /// Unix seconds of the last request seen.
    pub seen_at: i64,
}

impl std::fmt::Debug for PortalSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalSession")
            .field("login_at", &self.login_at)
            .field("seen_at", &self.seen_at)
            .finish_non_exhaustive()
    }
}

// SQLite and PostgreSQL both take `$n` parameters; one text serves both.
const INSERT: &str =
    "INSERT INTO portal_sessions (id_hash, sealed, login_at, seen_at) VALUES ($1, $2, $3, $4)";
const SELECT: &str =
    "SELECT id_hash, sealed, login_at, seen_at FROM portal_sessions WHERE id_hash = $1";
// Never moves the clock back (two replicas touching at once).
const TOUCH: &str = "UPDATE portal_sessions SET seen_at = $2 WHERE id_hash = $1 AND seen_at < $2";
const DELETE: &str = "DELETE FROM portal_sessions WHERE id_hash = $1";
const PURGE: &str = "DELETE FROM portal_sessions WHERE seen_at < $1 OR login_at < $2";

// `on_pool!` (store.rs) expands each statement and its glue once per backend.

impl Store {
    /// Stores a new session.
    pub async fn create_portal_session(&self, s: &PortalSession) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(INSERT)
                .bind(&s.id_hash)
                .bind(&s.sealed)
                .bind(s.login_at)
                .bind(s.seen_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The session with this id hash, if it exists (ended sessions do not).
    pub async fn portal_session(&self, id_hash: &str) -> Result<Option<PortalSession>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(SELECT)
                .bind(id_hash)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Moves the session's last-seen time forward to `seen_at`.
    pub async fn touch_portal_session(
        &self,
        id_hash: &str,
        seen_at: i64,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(TOUCH)
                .bind(id_hash)
                .bind(seen_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Ends a session (logout, or found timed out). Whether it existed.
    pub async fn delete_portal_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let n = on_pool!(self, pool => {
            sqlx::query(DELETE)
                .bind(id_hash)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Deletes every session idle since before `seen_before` or logged in
    /// before `login_before`; how many.
    pub async fn purge_portal_sessions(
        &self,
        seen_before: i64,
        login_before: i64,
    ) -> Result<u64, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query(PURGE)
                .bind(seen_before)
                .bind(login_before)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
