//! The consent lifecycle (see `consent.rs`). Every change runs in a write
//! transaction with its event, and locks what it depends on before reading
//! it (SQLite: the write lock of `BEGIN IMMEDIATE`; PostgreSQL: the row,
//! `FOR UPDATE`, or the `UPDATE` itself), so a check and the change that
//! depends on it cannot interleave with another writer (another connection,
//! process or replica). A use is one conditional `UPDATE`: parallel uses
//! count exactly.

use super::representation::{add_event_actor, ActionActor};
use super::{Conn, Store};
use crate::consent::{
    next_state, CitizenAction, ConsentError, ConsentEvent, ConsentRow, EventTally, EventType,
    Frequency, FrequencyPeriod, NewConsent, UseOutcome, UsesInPeriod,
};
use crate::error::StoreError;
use crate::record::Timestamp;
use policy::PersonNumber;

/// `SELECT` of every column of `consents`, before its `FROM`.
macro_rules! select_consents {
    ($($rest:literal)*) => {
        concat!(
            "SELECT id, requester, supplier, subject, datasets, purpose, status, \
             valid_to, max_uses, uses, frequency_max, frequency_per, redirect_url, message, \
             created_at, updated_at \
             FROM consents ",
            $($rest),*
        )
    };
}

/// One row of `consents` as both databases return it: text, checked into a
/// [`ConsentRow`].
#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    requester: String,
    supplier: Option<String>,
    subject: Option<String>,
    datasets: String,
    purpose: String,
    status: String,
    valid_to: String,
    max_uses: Option<i64>,
    uses: i64,
    frequency_max: Option<i64>,
    frequency_per: Option<String>,
    redirect_url: Option<String>,
    message: Option<String>,
    created_at: String,
    updated_at: String,
}

impl TryFrom<Row> for ConsentRow {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        let id = r.id;
        let bad = |field: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("consent {id}: {field}: {e}"))
        };
        let time = |field: &str, t: &str| Timestamp::parse(t).map_err(|e| bad(field, &e));
        let datasets: Vec<String> =
            serde_json::from_str(&r.datasets).map_err(|e| bad("datasets", &e))?;
        Ok(ConsentRow {
            requester: r.requester,
            supplier: r.supplier,
            subject: r.subject,
            datasets: datasets
                .iter()
                .map(|d| d.parse())
                .collect::<Result<_, _>>()
                .map_err(|e| bad("datasets", &e))?,
            purpose: r.purpose,
            status: r.status.parse().map_err(|e| bad("status", &e))?,
            valid_to: time("valid_to", &r.valid_to)?,
            max_uses: r
                .max_uses
                .map(u32::try_from)
                .transpose()
                .map_err(|e| bad("max_uses", &e))?,
            uses: u32::try_from(r.uses).map_err(|e| bad("uses", &e))?,
            frequency: match (r.frequency_max, r.frequency_per) {
                (None, None) => None,
                (Some(max), Some(per)) => Some(Frequency {
                    max: u32::try_from(max).map_err(|e| bad("frequency_max", &e))?,
                    per: per.parse().map_err(|e| bad("frequency_per", &e))?,
                }),
                _ => return Err(bad("frequency", &"max and per go together")),
            },
            redirect_url: r.redirect_url,
            message: r.message,
            created_at: time("created_at", &r.created_at)?,
            updated_at: time("updated_at", &r.updated_at)?,
            id,
        })
    }
}

fn checked(row: Option<Row>) -> Result<Option<ConsentRow>, StoreError> {
    row.map(ConsentRow::try_from).transpose()
}

fn checked_all(rows: Vec<Row>) -> Result<Vec<ConsentRow>, StoreError> {
    rows.into_iter().map(ConsentRow::try_from).collect()
}

impl Store {
    /// Stores a new request as `pending`, with its `created` event.
    pub async fn create_consent(
        &self,
        new: &NewConsent,
        now: Timestamp,
    ) -> Result<ConsentRow, StoreError> {
        const SQL: &str = "INSERT INTO consents (id, requester, supplier, subject, datasets, \
             purpose, status, valid_to, max_uses, uses, redirect_url, message, created_at, \
             updated_at, frequency_max, frequency_per) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, 0, $9, $10, $11, $11, $12, $13)";
        let datasets: Vec<String> = new.datasets.iter().map(ToString::to_string).collect();
        let datasets = serde_json::to_string(&datasets)
            .map_err(|e| StoreError::Db(format!("datasets: {e}")))?;
        let datasets = &datasets;
        self.retrying(|| async move {
            let mut tx = self.begin_write().await?;
            let mut conn = tx.conn();
            let mut tally = EventTally::default();
            on_conn!(&mut conn, c => {
                sqlx::query(SQL)
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
                    .bind(now.to_string())
                    .bind(new.frequency.map(|f| i64::from(f.max)))
                    .bind(new.frequency.map(|f| f.per.as_str()))
                    .execute(&mut **c)
                    .await?;
            });
            add_event(&mut conn, &mut tally, &new.id, EventType::Created, now).await?;
            let row = select(&mut conn, &new.id, false)
                .await?
                .ok_or_else(|| StoreError::Db("the new consent is not there".into()))?;
            tx.commit().await?;
            self.events.committed(&tally);
            Ok(row)
        })
        .await
    }

    /// The consent by id, as of now (see [`Store::get_consent_at`]).
    pub async fn get_consent(&self, id: &str) -> Result<Option<ConsentRow>, StoreError> {
        self.get_consent_at(id, Timestamp::now()).await
    }

    /// The consent by id. A pending or granted consent past `valid_to`
    /// becomes `expired` (with its event) on this read.
    pub async fn get_consent_at(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<ConsentRow>, StoreError> {
        const SQL: &str = select_consents!("WHERE id = $1");
        let row: Option<Row> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(id).fetch_optional(pool).await?);
        match checked(row)? {
            Some(row) if row.is_due(now) => {
                self.expire_due(&[row.id], now).await.map(|mut v| v.pop())
            }
            other => Ok(other),
        }
    }

    /// The consent and its events in order, from one snapshot (expired first if due).
    pub async fn get_consent_with_events(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<(ConsentRow, Vec<ConsentEvent>)>, StoreError> {
        // Expire first (a write), then read both from one snapshot.
        if self.get_consent_at(id, now).await?.is_none() {
            return Ok(None);
        }
        let mut tx = self.begin_read().await?;
        let mut conn = tx.conn();
        let Some(row) = select(&mut conn, id, false).await? else {
            return Ok(None);
        };
        let events = events(&mut conn, id).await?;
        tx.commit().await?;
        Ok(Some((row, events)))
    }

    /// A consent's events in order (empty for an unknown id).
    pub async fn consent_events(&self, id: &str) -> Result<Vec<ConsentEvent>, StoreError> {
        on_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            events(&mut Conn::from(&mut *conn), id).await
        })
    }

    /// The consents about `subject`, newest first (expired first where due).
    pub async fn consents_by_subject(
        &self,
        subject: &PersonNumber,
        now: Timestamp,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        const SQL: &str = select_consents!("WHERE subject = $1 ORDER BY created_at DESC, id");
        let query = || async {
            checked_all(on_pool!(self, pool => {
                sqlx::query_as(SQL).bind(subject.expose()).fetch_all(pool).await?
            }))
        };
        let rows = query().await?;
        if self.expire_any(&rows, now).await? {
            return query().await;
        }
        Ok(rows)
    }

    /// The newest `limit` consents that `requester` (`0192:N`) asked for.
    pub async fn consents_by_requester(
        &self,
        requester: &str,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        const SQL: &str =
            select_consents!("WHERE requester = $1 ORDER BY created_at DESC, id LIMIT $2");
        let query = || async {
            checked_all(on_pool!(self, pool => {
                sqlx::query_as(SQL)
                    .bind(requester)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await?
            }))
        };
        let rows = query().await?;
        if self.expire_any(&rows, now).await? {
            return query().await;
        }
        Ok(rows)
    }

    /// Expires those of `rows` that are due; true if any were.
    async fn expire_any(&self, rows: &[ConsentRow], now: Timestamp) -> Result<bool, StoreError> {
        let mut due = Vec::new();
        for row in rows {
            if row.is_due(now) {
                due.push(row.id.clone());
            }
        }
        if due.is_empty() {
            return Ok(false);
        }
        self.expire_due(&due, now).await?;
        Ok(true)
    }

    /// Expires each of `ids` that is still due, under the lock; returns the
    /// rows after it.
    async fn expire_due(
        &self,
        ids: &[String],
        now: Timestamp,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        self.retrying(|| async move {
            let mut tx = self.begin_write().await?;
            let mut conn = tx.conn();
            let mut tally = EventTally::default();
            let mut rows = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(row) = select(&mut conn, id, true).await? {
                    rows.push(expire_if_due(&mut conn, &mut tally, row, now).await?);
                }
            }
            tx.commit().await?;
            self.events.committed(&tally);
            Ok(rows)
        })
        .await
    }

    /// The citizen accepts, rejects or revokes (see [`crate::next_state`]).
    /// A consent about another person is [`ConsentError::NotFound`]; one made
    /// without a subject becomes the citizen's.
    pub async fn citizen_action(
        &self,
        id: &str,
        citizen: &PersonNumber,
        action: CitizenAction,
        now: Timestamp,
    ) -> Result<ConsentRow, ConsentError> {
        self.citizen_action_by(id, citizen, action, now, None).await
    }

    /// [`Store::citizen_action`] taken for `citizen` by a representative
    /// (`by`, SPEC 9.3; `None`: the person themself): the event and who took
    /// it commit in one transaction, or neither does.
    pub async fn citizen_action_by(
        &self,
        id: &str,
        citizen: &PersonNumber,
        action: CitizenAction,
        now: Timestamp,
        by: Option<ActionActor<'_>>,
    ) -> Result<ConsentRow, ConsentError> {
        // The citizen who answers a request made without a subject becomes it.
        const SQL: &str = "UPDATE consents SET status = $1, subject = COALESCE(subject, $2), \
             updated_at = $3 WHERE id = $4 AND status = $5";
        self.retrying(|| async move {
            let mut tx = self.begin_write().await?;
            let mut conn = tx.conn();
            let mut tally = EventTally::default();
            let row = select(&mut conn, id, true)
                .await?
                .ok_or(ConsentError::NotFound)?;
            // Someone else's consent does not exist, as far as this citizen knows.
            if row
                .subject
                .as_deref()
                .is_some_and(|s| s != citizen.expose())
            {
                return Err(ConsentError::NotFound);
            }
            let row = expire_if_due(&mut conn, &mut tally, row, now).await?;
            let state = row.status;
            let Some(next) = next_state(state, action) else {
                // Keep an expiry that was just recorded.
                tx.commit().await?;
                self.events.committed(&tally);
                return Err(ConsentError::InvalidTransition { state, action });
            };
            let (_, event) = action.outcome();
            let changed = on_conn!(&mut conn, c => {
                sqlx::query(SQL)
                    .bind(next.as_str())
                    .bind(citizen.expose())
                    .bind(now.to_string())
                    .bind(id)
                    .bind(state.as_str())
                    .execute(&mut **c)
                    .await
                    .map_err(StoreError::from)?
                    .rows_affected()
            });
            if changed != 1 {
                return Err(
                    StoreError::Db(format!("consent {id} changed under the write lock")).into(),
                );
            }
            add_event(&mut conn, &mut tally, id, event, now).await?;
            if let Some(by) = by {
                add_event_actor(&mut conn, id, event, by).await?;
            }
            let row = select(&mut conn, id, false)
                .await?
                .ok_or(ConsentError::NotFound)?;
            tx.commit().await?;
            self.events.committed(&tally);
            Ok(row)
        })
        .await
    }

    pub async fn accept_consent(
        &self,
        id: &str,
        citizen: &PersonNumber,
        now: Timestamp,
    ) -> Result<ConsentRow, ConsentError> {
        self.citizen_action(id, citizen, CitizenAction::Accept, now)
            .await
    }

    pub async fn reject_consent(
        &self,
        id: &str,
        citizen: &PersonNumber,
        now: Timestamp,
    ) -> Result<ConsentRow, ConsentError> {
        self.citizen_action(id, citizen, CitizenAction::Reject, now)
            .await
    }

    pub async fn revoke_consent(
        &self,
        id: &str,
        citizen: &PersonNumber,
        now: Timestamp,
    ) -> Result<ConsentRow, ConsentError> {
        self.citizen_action(id, citizen, CitizenAction::Revoke, now)
            .await
    }

    /// The uses of consent `id` in the period of `per` that ends at `now`
    /// (for the decision; the use itself is counted under the lock by
    /// [`take_use`]).
    pub async fn consent_uses_in_period(
        &self,
        id: &str,
        per: FrequencyPeriod,
        now: Timestamp,
    ) -> Result<UsesInPeriod, StoreError> {
        on_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            uses_in_period(&mut Conn::from(&mut *conn), id, per, now).await
        })
    }

    /// Counts one use, atomically: only if the consent is granted, `now` is
    /// before `valid_to` and uses are left; with its `used` event.
    pub async fn use_consent(&self, id: &str, now: Timestamp) -> Result<UseOutcome, StoreError> {
        self.retrying(|| async move {
            let mut tx = self.begin_write().await?;
            let mut conn = tx.conn();
            let mut tally = EventTally::default();
            let outcome = if take_use(&mut conn, &mut tally, id, now).await? {
                let row = select(&mut conn, id, false)
                    .await?
                    .ok_or_else(|| StoreError::Db(format!("consent {id} vanished")))?;
                UseOutcome::Used(Box::new(row))
            } else {
                // Refused; if it is because valid_to passed, record that now.
                if let Some(row) = select(&mut conn, id, true).await? {
                    expire_if_due(&mut conn, &mut tally, row, now).await?;
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
/// `used` event: only if the consent is granted, unexpired, has uses left
/// and, with a frequency limit, a use left in its period. False, with
/// nothing written, when it cannot give one. The condition and the increment
/// are one statement: under SQLite's write lock, and on PostgreSQL, which
/// re-checks the WHERE on the row's latest version after waiting for its
/// lock, so no two uses (on any replicas) both get the last. A frequency is
/// counted from the `used` events after the row is locked (a statement that
/// starts after the lock sees every use committed before it), so uses in a
/// period count exactly across replicas too.
pub(super) async fn take_use(
    conn: &mut Conn<'_>,
    tally: &mut EventTally,
    id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    const FREQUENCY: &str = "SELECT frequency_max, frequency_per FROM consents WHERE id = $1";
    let sql = format!("{FREQUENCY}{}", conn.lock_row());
    let limit: Option<(Option<i64>, Option<String>)> =
        on_conn!(&mut *conn, c => sqlx::query_as(&sql).bind(id).fetch_optional(&mut **c).await?);
    if let Some((Some(max), Some(per))) = limit {
        let per: FrequencyPeriod = per
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("consent {id}: frequency_per: {e}")))?;
        let in_period = uses_in_period(conn, id, per, now).await?;
        if i64::from(in_period.used) >= max {
            return Ok(false);
        }
    }
    const SQL: &str = "UPDATE consents SET uses = uses + 1, updated_at = $1 \
         WHERE id = $2 AND status = 'granted' AND valid_to > $1 \
         AND (max_uses IS NULL OR uses < max_uses)";
    let now_text = now.to_string();
    let counted = on_conn!(&mut *conn, c => {
        sqlx::query(SQL)
            .bind(&now_text)
            .bind(id)
            .execute(&mut **c)
            .await?
            .rows_affected()
    });
    if counted != 1 {
        return Ok(false);
    }
    add_event(conn, tally, id, EventType::Used, now).await?;
    Ok(true)
}

/// [`take_use`] for `wanted` uses at once, as the audit batch takes them:
/// the first `n` are counted, each with its `used` event, and `n` returned
/// (`wanted` or fewer; 0 with nothing written).
///
/// On SQLite the consent's limits are read once (under the write lock the
/// batch holds) and its uses then written a run of statements per
/// round trip: one `UPDATE` and one event per use, as the database's own
/// rule wants (`consents_uses_count`: a use counts one at a time). Each
/// statement was a hop across sqlx's thread, three or four a use (#21).
/// PostgreSQL takes them one at a time, as before: its round trips do not
/// cross threads, and its extended protocol runs one statement per query.
pub(super) async fn take_uses(
    conn: &mut Conn<'_>,
    tally: &mut EventTally,
    id: &str,
    wanted: usize,
    now: Timestamp,
) -> Result<usize, StoreError> {
    if !matches!(conn, Conn::Sqlite(_)) {
        let mut taken = 0;
        while taken < wanted && take_use(conn, tally, id, now).await? {
            taken += 1;
        }
        return Ok(taken);
    }
    const LIMITS: &str = "SELECT status, valid_to, uses, max_uses, frequency_max, frequency_per \
         FROM consents WHERE id = $1";
    type Limits = (
        String,
        String,
        i64,
        Option<i64>,
        Option<i64>,
        Option<String>,
    );
    let limits: Option<Limits> =
        on_conn!(&mut *conn, c => sqlx::query_as(LIMITS).bind(id).fetch_optional(&mut **c).await?);
    let Some((status, valid_to, uses, max_uses, frequency_max, frequency_per)) = limits else {
        return Ok(0);
    };
    let now_text = now.to_string();
    // The same conditions as the one-use UPDATE's WHERE (text comparison of
    // the stored times, as SQL's).
    if status != "granted" || valid_to.as_str() <= now_text.as_str() {
        return Ok(0);
    }
    let mut take = i64::try_from(wanted).unwrap_or(i64::MAX);
    if let Some(max) = max_uses {
        take = take.min(max - uses);
    }
    if let (Some(max), Some(per)) = (frequency_max, frequency_per) {
        let per: FrequencyPeriod = per
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("consent {id}: frequency_per: {e}")))?;
        let in_period = uses_in_period(conn, id, per, now).await?;
        take = take.min(max - i64::from(in_period.used));
    }
    let Ok(take) = usize::try_from(take) else {
        return Ok(0);
    };
    let Conn::Sqlite(c) = conn else {
        return Ok(0);
    };
    let mut left = take;
    while left > 0 {
        let (sql, k) = use_run_sql(left);
        let written = sqlx::query(sql)
            .bind(&now_text)
            .bind(id)
            .execute(&mut **c)
            .await?
            .rows_affected();
        // Under the write lock nothing can change what was read above: a
        // shortfall is a fault, and the batch (and its records) fails whole.
        if written != 2 * k as u64 {
            return Err(StoreError::Db(format!(
                "consent {id}: {written} rows written for {k} uses"
            )));
        }
        left -= k;
    }
    for _ in 0..take {
        tally.push(EventType::Used);
    }
    Ok(take)
}

/// Uses written a round trip, at most: 2 × 64 statements.
const MAX_USE_RUN_LOG2: u32 = 6;

/// The SQLite text of a run of uses, the largest power of two up to `left`
/// (and 64): each use one `UPDATE` and one `used` event, binding the time as
/// `?1` and the consent as `?2`. Seven texts in all, so sqlx's statement
/// cache keeps them prepared.
fn use_run_sql(left: usize) -> (&'static str, usize) {
    const ONE_USE: &str = "UPDATE consents SET uses = uses + 1, updated_at = ?1 \
         WHERE id = ?2 AND status = 'granted' AND valid_to > ?1 \
         AND (max_uses IS NULL OR uses < max_uses); \
         INSERT INTO consent_events (consent_id, seq, type, at) \
         SELECT ?2, COALESCE(MAX(seq) + 1, 0), 'used', ?1 FROM consent_events WHERE consent_id = ?2; ";
    static RUNS: [std::sync::OnceLock<String>; MAX_USE_RUN_LOG2 as usize + 1] =
        [const { std::sync::OnceLock::new() }; MAX_USE_RUN_LOG2 as usize + 1];
    let log2 = left.max(1).ilog2().min(MAX_USE_RUN_LOG2);
    let k = 1usize << log2;
    let sql = RUNS[log2 as usize].get_or_init(|| ONE_USE.repeat(k));
    (sql.as_str(), k)
}

/// The `used` events of consent `id` after `now` minus one period.
async fn uses_in_period(
    conn: &mut Conn<'_>,
    id: &str,
    per: FrequencyPeriod,
    now: Timestamp,
) -> Result<UsesInPeriod, StoreError> {
    const SQL: &str = "SELECT COUNT(*), MIN(at) FROM consent_events \
         WHERE consent_id = $1 AND type = 'used' AND at > $2";
    let since = Timestamp::from_datetime(now.as_datetime() - per.duration());
    let (used, oldest): (i64, Option<String>) = on_conn!(conn, c => {
        sqlx::query_as(SQL)
            .bind(id)
            .bind(since.to_string())
            .fetch_one(&mut **c)
            .await?
    });
    let bad = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("consent {id}: uses: {e}"));
    Ok(UsesInPeriod {
        used: u32::try_from(used).map_err(|e| bad(&e))?,
        oldest: oldest
            .map(|t| Timestamp::parse(&t))
            .transpose()
            .map_err(|e| bad(&e))?,
    })
}

/// The consent by id; with `lock`, its row locked until the transaction ends
/// (see [`Conn::lock_row`]): what the caller checks stays true.
async fn select(
    conn: &mut Conn<'_>,
    id: &str,
    lock: bool,
) -> Result<Option<ConsentRow>, StoreError> {
    const SQL: &str = select_consents!("WHERE id = $1");
    let sql = if lock {
        std::borrow::Cow::Owned(format!("{SQL}{}", conn.lock_row()))
    } else {
        std::borrow::Cow::Borrowed(SQL)
    };
    checked(on_conn!(conn, c => sqlx::query_as(&sql).bind(id).fetch_optional(&mut **c).await?))
}

async fn events(conn: &mut Conn<'_>, id: &str) -> Result<Vec<ConsentEvent>, StoreError> {
    const SQL: &str = "SELECT type, at FROM consent_events WHERE consent_id = $1 ORDER BY seq";
    let rows: Vec<(String, String)> =
        on_conn!(conn, c => sqlx::query_as(SQL).bind(id).fetch_all(&mut **c).await?);
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

/// Appends an event with the next sequence number; the caller holds the
/// write lock, or the consent's row lock (every event follows a change to
/// that row).
async fn add_event(
    conn: &mut Conn<'_>,
    tally: &mut EventTally,
    id: &str,
    kind: EventType,
    at: Timestamp,
) -> Result<(), StoreError> {
    const SQL: &str = "INSERT INTO consent_events (consent_id, seq, type, at) \
         SELECT $1, COALESCE(MAX(seq) + 1, 0), $2, $3 FROM consent_events WHERE consent_id = $1";
    on_conn!(conn, c => {
        sqlx::query(SQL)
            .bind(id)
            .bind(kind.as_str())
            .bind(at.to_string())
            .execute(&mut **c)
            .await?;
    });
    // Its notification commits with it (SPEC 10: a durable outbox).
    super::notifications::queue_consent_event(conn, id, kind, at).await?;
    tally.push(kind);
    Ok(())
}

/// Turns a pending or granted consent past `valid_to` into expired, with its
/// event dated `valid_to` (when it expired, not when it was noticed).
async fn expire_if_due(
    conn: &mut Conn<'_>,
    tally: &mut EventTally,
    row: ConsentRow,
    now: Timestamp,
) -> Result<ConsentRow, StoreError> {
    const SQL: &str =
        "UPDATE consents SET status = 'expired', updated_at = $1 WHERE id = $2 AND status = $3";
    if !row.is_due(now) {
        return Ok(row);
    }
    on_conn!(&mut *conn, c => {
        sqlx::query(SQL)
            .bind(now.to_string())
            .bind(&row.id)
            .bind(row.status.as_str())
            .execute(&mut **c)
            .await?;
    });
    add_event(conn, tally, &row.id, EventType::Expired, row.valid_to).await?;
    select(conn, &row.id, false)
        .await?
        .ok_or_else(|| StoreError::Db(format!("consent {} vanished", row.id)))
}
