//! The consent lifecycle on SQLite. Every change runs in a `BEGIN IMMEDIATE`
//! transaction: the write lock is taken before the row is read, so a check
//! and the change that depends on it cannot interleave with another writer
//! (another connection, process or replica on the same file).

use std::future::Future;
use std::time::Duration;

use sqlx::{Sqlite, SqliteConnection, Transaction};
use tokio::time::Instant;

use super::{
    next_state, CitizenAction, ConsentError, ConsentEvent, ConsentRow, ConsentState, EventTally,
    EventType, NewConsent, UseOutcome,
};
use crate::error::StoreError;
use crate::record::Timestamp;
use crate::sqlite::SqliteStore;
use policy::PersonNumber;

const CONSENT_COLUMNS: &str = "id, requester, supplier, subject, datasets, purpose, status, \
     valid_to, max_uses, uses, redirect_url, message, created_at, updated_at";

/// Errors worth another attempt: the database was busy or locked past the
/// busy timeout of one statement (e.g. many concurrent uses of one consent).
trait Busy {
    fn is_busy(&self) -> bool;
}

impl Busy for StoreError {
    fn is_busy(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl Busy for ConsentError {
    fn is_busy(&self) -> bool {
        matches!(self, ConsentError::Store(e) if e.is_busy())
    }
}

/// Whether a pending or granted consent has run past `valid_to`.
fn is_due(row: &ConsentRow, now: Timestamp) -> Result<bool, StoreError> {
    let live = matches!(row.state()?, ConsentState::Pending | ConsentState::Granted);
    Ok(live && row.valid_to_time()? <= now)
}

impl SqliteStore {
    /// Runs `op` again while the store is busy, until the busy timeout has
    /// passed since the first attempt; the last error is returned then.
    async fn retrying<T, E, F, Fut>(&self, mut op: F) -> Result<T, E>
    where
        E: Busy,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let deadline = Instant::now() + self.busy_timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            match op().await {
                Err(e) if e.is_busy() && Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub(crate) async fn create_consent(
        &self,
        new: &NewConsent,
        now: Timestamp,
    ) -> Result<ConsentRow, StoreError> {
        let datasets = serde_json::to_string(&new.datasets)
            .map_err(|e| StoreError::Db(format!("datasets: {e}")))?;
        let datasets = &datasets;
        self.retrying(|| async move {
            let mut tx = self.begin_write().await?;
            let mut tally = EventTally::default();
            let now_text = now.to_string();
            sqlx::query(
                "INSERT INTO consents (id, requester, supplier, subject, datasets, purpose, status, \
                 valid_to, max_uses, uses, redirect_url, message, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, 0, ?, ?, ?, ?)",
            )
            .bind(&new.id)
            .bind(&new.requester)
            .bind(&new.supplier)
            .bind(new.subject.as_ref().map(PersonNumber::expose))
            .bind(datasets)
            .bind(&new.purpose)
            .bind(new.valid_to.to_string())
            .bind(new.max_uses.map(i64::from))
            .bind(&new.redirect_url)
            .bind(&new.message)
            .bind(&now_text)
            .bind(&now_text)
            .execute(&mut *tx)
            .await?;
            add_event(&mut tx, &mut tally, &new.id, EventType::Created, now).await?;
            let row = select(&mut tx, &new.id)
                .await?
                .ok_or_else(|| StoreError::Db("the new consent is not there".into()))?;
            tx.commit().await?;
            self.events.committed(&tally);
            Ok(row)
        })
        .await
    }

    /// The consent, expired first if `valid_to` has passed.
    pub(crate) async fn get_consent_at(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<ConsentRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let row = select(&mut conn, id).await?;
        drop(conn);
        match row {
            Some(row) if is_due(&row, now)? => {
                self.expire_due(&[row.id], now).await.map(|mut v| v.pop())
            }
            other => Ok(other),
        }
    }

    /// The consent and its events, read from one snapshot.
    pub(crate) async fn consent_with_events(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<(ConsentRow, Vec<ConsentEvent>)>, StoreError> {
        // Expire first (a write), then read both from one snapshot.
        if self.get_consent_at(id, now).await?.is_none() {
            return Ok(None);
        }
        let mut tx = self.pool.begin().await?;
        let Some(row) = select(&mut tx, id).await? else {
            return Ok(None);
        };
        let events = events(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Some((row, events)))
    }

    pub(crate) async fn consent_events(&self, id: &str) -> Result<Vec<ConsentEvent>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        events(&mut conn, id).await
    }

    /// The consents about `subject`, newest first.
    pub(crate) async fn consents_by_subject(
        &self,
        subject: &PersonNumber,
        now: Timestamp,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        let sql = format!(
            "SELECT {CONSENT_COLUMNS} FROM consents WHERE subject = ? ORDER BY created_at DESC, id"
        );
        let query = || sqlx::query_as::<_, ConsentRow>(&sql).bind(subject.expose());
        let rows = query().fetch_all(&self.pool).await?;
        if self.expire_any(&rows, now).await? {
            return Ok(query().fetch_all(&self.pool).await?);
        }
        Ok(rows)
    }

    /// The newest `limit` consents `requester` (`0192:N`) asked for, newest first.
    pub(crate) async fn consents_by_requester(
        &self,
        requester: &str,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        let sql = format!(
            "SELECT {CONSENT_COLUMNS} FROM consents WHERE requester = ? \
             ORDER BY created_at DESC, id LIMIT ?"
        );
        let query = || {
            sqlx::query_as::<_, ConsentRow>(&sql)
                .bind(requester)
                .bind(i64::from(limit))
        };
        let rows = query().fetch_all(&self.pool).await?;
        if self.expire_any(&rows, now).await? {
            return Ok(query().fetch_all(&self.pool).await?);
        }
        Ok(rows)
    }

    /// Expires those of `rows` that are due; true if any were.
    async fn expire_any(&self, rows: &[ConsentRow], now: Timestamp) -> Result<bool, StoreError> {
        let mut due = Vec::new();
        for row in rows {
            if is_due(row, now)? {
                due.push(row.id.clone());
            }
        }
        if due.is_empty() {
            return Ok(false);
        }
        self.expire_due(&due, now).await?;
        Ok(true)
    }

    /// Expires each of `ids` that is still due, under the write lock; returns
    /// the rows after it.
    async fn expire_due(
        &self,
        ids: &[String],
        now: Timestamp,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        self.retrying(|| async move {
            let mut tx = self.begin_write().await?;
            let mut tally = EventTally::default();
            let mut rows = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(row) = select(&mut tx, id).await? {
                    rows.push(expire_if_due(&mut tx, &mut tally, row, now).await?);
                }
            }
            tx.commit().await?;
            self.events.committed(&tally);
            Ok(rows)
        })
        .await
    }

    /// Accept, reject or revoke, by the citizen `citizen`.
    pub(crate) async fn citizen_action(
        &self,
        id: &str,
        citizen: &PersonNumber,
        action: CitizenAction,
        now: Timestamp,
    ) -> Result<ConsentRow, ConsentError> {
        self.retrying(|| async move {
            let mut tx = self.begin_write().await?;
            let mut tally = EventTally::default();
            let row = select(&mut tx, id).await?.ok_or(ConsentError::NotFound)?;
            // Someone else's consent does not exist, as far as this citizen knows.
            if row
                .subject
                .as_deref()
                .is_some_and(|s| s != citizen.expose())
            {
                return Err(ConsentError::NotFound);
            }
            let row = expire_if_due(&mut tx, &mut tally, row, now).await?;
            let state = row.state()?;
            let Some(next) = next_state(state, action) else {
                // Keep an expiry that was just recorded.
                tx.commit().await.map_err(StoreError::from)?;
                self.events.committed(&tally);
                return Err(ConsentError::InvalidTransition { state, action });
            };
            let (_, event) = action.outcome();
            // The citizen who answers a request made without a subject becomes it.
            let changed = sqlx::query(
                "UPDATE consents SET status = ?, subject = COALESCE(subject, ?), updated_at = ? \
                 WHERE id = ? AND status = ?",
            )
            .bind(next.as_str())
            .bind(citizen.expose())
            .bind(now.to_string())
            .bind(id)
            .bind(state.as_str())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
            if changed.rows_affected() != 1 {
                return Err(
                    StoreError::Db(format!("consent {id} changed under the write lock")).into(),
                );
            }
            add_event(&mut tx, &mut tally, id, event, now).await?;
            let row = select(&mut tx, id).await?.ok_or(ConsentError::NotFound)?;
            tx.commit().await.map_err(StoreError::from)?;
            self.events.committed(&tally);
            Ok(row)
        })
        .await
    }

    /// Counts one use if the consent is granted, unexpired and has uses left.
    pub(crate) async fn use_consent(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<UseOutcome, StoreError> {
        self.retrying(|| async move {
            let mut tx = self.begin_write().await?;
            let mut tally = EventTally::default();
            let outcome = if take_use(&mut tx, &mut tally, id, now).await? {
                let row = select(&mut tx, id)
                    .await?
                    .ok_or_else(|| StoreError::Db(format!("consent {id} vanished")))?;
                UseOutcome::Used(Box::new(row))
            } else {
                // Refused; if it is because valid_to passed, record that now.
                if let Some(row) = select(&mut tx, id).await? {
                    expire_if_due(&mut tx, &mut tally, row, now).await?;
                }
                UseOutcome::Refused
            };
            tx.commit().await?;
            self.events.committed(&tally);
            Ok(outcome)
        })
        .await
    }
}

/// Counts one use inside the caller's transaction (the audit batch), with its
/// `used` event: only if the consent is granted, unexpired and has uses left.
/// False, with nothing written, when it cannot give one. The condition and
/// the increment are one statement under the write lock: no two uses can both
/// see the last one left.
pub(crate) async fn take_use(
    conn: &mut SqliteConnection,
    tally: &mut EventTally,
    id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let counted = sqlx::query(
        "UPDATE consents SET uses = uses + 1, updated_at = ? \
         WHERE id = ? AND status = 'granted' AND valid_to > ? \
         AND (max_uses IS NULL OR uses < max_uses)",
    )
    .bind(now.to_string())
    .bind(id)
    .bind(now.to_string())
    .execute(&mut *conn)
    .await?;
    if counted.rows_affected() != 1 {
        return Ok(false);
    }
    add_event(conn, tally, id, EventType::Used, now).await?;
    Ok(true)
}

async fn select(conn: &mut SqliteConnection, id: &str) -> Result<Option<ConsentRow>, StoreError> {
    let sql = format!("SELECT {CONSENT_COLUMNS} FROM consents WHERE id = ?");
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?)
}

async fn events(conn: &mut SqliteConnection, id: &str) -> Result<Vec<ConsentEvent>, StoreError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT type, at FROM consent_events WHERE consent_id = ? ORDER BY seq")
            .bind(id)
            .fetch_all(conn)
            .await?;
    rows.into_iter()
        .map(|(kind, at)| {
            let bad = |e: &dyn std::fmt::Display| {
                StoreError::Corrupt(format!("consent {id}: event: {e}"))
            };
            Ok(ConsentEvent {
                kind: kind.parse().map_err(|e| bad(&e))?,
                at: Timestamp::parse(&at).map_err(|e| bad(&e))?,
            })
        })
        .collect()
}

/// Appends an event with the next sequence number; the caller holds the write lock.
async fn add_event(
    conn: &mut SqliteConnection,
    tally: &mut EventTally,
    id: &str,
    kind: EventType,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO consent_events (consent_id, seq, type, at) \
         SELECT ?, COALESCE(MAX(seq) + 1, 0), ?, ? FROM consent_events WHERE consent_id = ?",
    )
    .bind(id)
    .bind(kind.as_str())
    .bind(at.to_string())
    .bind(id)
    .execute(conn)
    .await?;
    tally.push(kind);
    Ok(())
}

/// Turns a pending or granted consent past `valid_to` into expired, with its
/// event dated `valid_to` (when it expired, not when it was noticed).
async fn expire_if_due(
    conn: &mut SqliteConnection,
    tally: &mut EventTally,
    row: ConsentRow,
    now: Timestamp,
) -> Result<ConsentRow, StoreError> {
    if !is_due(&row, now)? {
        return Ok(row);
    }
    sqlx::query(
        "UPDATE consents SET status = 'expired', updated_at = ? WHERE id = ? AND status = ?",
    )
    .bind(now.to_string())
    .bind(&row.id)
    .bind(&row.status)
    .execute(&mut *conn)
    .await?;
    add_event(
        conn,
        tally,
        &row.id,
        EventType::Expired,
        row.valid_to_time()?,
    )
    .await?;
    select(conn, &row.id)
        .await?
        .ok_or_else(|| StoreError::Db(format!("consent {} vanished", row.id)))
}
