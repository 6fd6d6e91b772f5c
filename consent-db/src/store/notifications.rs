//! Notifications (SPEC 10, migration 0011): one table is the citizen's inbox
//! and the durable outbox towards the operator's notification service.
//!
//! - A consent event's notification is written by [`queue_consent_event`]
//!   inside the event's own transaction (store/consents.rs), so an event
//!   that committed has its notification and one that did not has none.
//! - A transfer's is derived from the log by the `notify` follower
//!   ([`Store::follow_log_for_notifications`]): the records after its
//!   position are read, their rows written and the position advanced in one
//!   transaction, so a crash repeats nothing and loses nothing.
//! - A consent about to expire is found by a sweep
//!   ([`Store::queue_expiring_consents`]), once per consent (its id is fixed).
//!
//! Delivery claims a row with a lease (a conditional `UPDATE`, atomic on both
//! backends), so replicas share the work instead of each sending everything,
//! and a process killed mid-delivery leaves a lease that runs out: the row is
//! sent again (at least once; the stable id lets receivers dedupe).
//!
//! No person number is ever written here: a transfer carries the record's
//! keyed pseudonym, a consent notification its consent id.

use std::sync::OnceLock;

use super::followers::{advance_follower, lock_follower, window};
use super::{Conn, Store};
use crate::consent::EventType;
use crate::error::StoreError;
use crate::record::{Timestamp, Verdict};
use policy::PersonNumber;

/// The follower's name in `log_followers`.
pub const FOLLOWER: &str = "notify";

/// Which transfers about a citizen are notified (SPEC 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferNotices {
    /// Every transfer, allowed or denied (the default).
    #[default]
    All,
    /// Only refused calls.
    Denied,
    /// None (a break-glass call is still notified).
    None,
}

impl TransferNotices {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferNotices::All => "all",
            TransferNotices::Denied => "denied",
            TransferNotices::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(TransferNotices::All),
            "denied" => Some(TransferNotices::Denied),
            "none" => Some(TransferNotices::None),
            _ => None,
        }
    }
}

/// A citizen's notification settings. Without a stored row: every
/// transfer, and consent events on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationSettings {
    pub transfers: TransferNotices,
    pub consent_events: bool,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            transfers: TransferNotices::All,
            consent_events: true,
        }
    }
}

impl NotificationSettings {
    /// Whether a notification of `kind` (with a transfer's `decision`) is
    /// shown and sent under these settings. A break-glass call always is.
    pub fn wants(&self, kind: NotificationKind, decision: Option<Verdict>) -> bool {
        match kind {
            NotificationKind::BreakGlass => true,
            NotificationKind::Transfer => match self.transfers {
                TransferNotices::All => true,
                TransferNotices::Denied => decision == Some(Verdict::Deny),
                TransferNotices::None => false,
            },
            NotificationKind::ConsentEvent | NotificationKind::ConsentExpiring => {
                self.consent_events
            }
        }
    }
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    Transfer,
    BreakGlass,
    ConsentEvent,
    ConsentExpiring,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Transfer => "transfer",
            NotificationKind::BreakGlass => "break_glass",
            NotificationKind::ConsentEvent => "consent_event",
            NotificationKind::ConsentExpiring => "consent_expiring",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "transfer" => Some(NotificationKind::Transfer),
            "break_glass" => Some(NotificationKind::BreakGlass),
            "consent_event" => Some(NotificationKind::ConsentEvent),
            "consent_expiring" => Some(NotificationKind::ConsentExpiring),
            _ => None,
        }
    }
}

/// One notification as stored, with the consent's subject for a consent
/// notification (read through the consent, never stored here).
#[derive(Debug, Clone)]
pub struct Notification {
    /// Stable: the CloudEvents `id`.
    pub id: String,
    pub kind: NotificationKind,
    /// A transfer's: the record's keyed pseudonym of the subject.
    pub subject_ref: Option<String>,
    /// A consent notification's: the consent.
    pub consent_id: Option<String>,
    /// A consent notification's: its subject as the consent holds it.
    pub consent_subject: Option<PersonNumber>,
    /// A consent event's type (`created`, `revoked`, …).
    pub event: Option<String>,
    pub record_index: Option<u64>,
    /// The organisation (`0192:N`): a transfer's consumer, a consent's requester.
    pub consumer: Option<String>,
    /// `provider/dataset` ids.
    pub datasets: Vec<String>,
    pub decision: Option<Verdict>,
    /// A refusal's problem code.
    pub code: Option<String>,
    /// When it happened (a delayed transfer: its original time).
    pub at: Timestamp,
    /// Neither shown nor sent before this.
    pub visible_at: Timestamp,
    pub attempts: u32,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    kind: String,
    subject_ref: Option<String>,
    consent_id: Option<String>,
    consent_subject: Option<String>,
    event: Option<String>,
    record_index: Option<i64>,
    consumer: Option<String>,
    datasets: Option<String>,
    decision: Option<String>,
    code: Option<String>,
    at: String,
    visible_at: String,
    attempts: i32,
}

impl TryFrom<Row> for Notification {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        let id = r.id;
        let bad = |field: &str| StoreError::Corrupt(format!("notification {id}: {field}"));
        let time = |field: &str, t: &str| Timestamp::parse(t).map_err(|_| bad(field));
        Ok(Notification {
            kind: NotificationKind::parse(&r.kind).ok_or_else(|| bad("kind"))?,
            subject_ref: r.subject_ref,
            consent_id: r.consent_id,
            consent_subject: r
                .consent_subject
                .map(|s| PersonNumber::parse(&s, true).map_err(|_| bad("consent subject")))
                .transpose()?,
            event: r.event,
            record_index: r
                .record_index
                .map(u64::try_from)
                .transpose()
                .map_err(|_| bad("record_index"))?,
            consumer: r.consumer,
            datasets: match r.datasets {
                None => Vec::new(),
                Some(d) => serde_json::from_str(&d).map_err(|_| bad("datasets"))?,
            },
            decision: r
                .decision
                .map(|d| d.parse())
                .transpose()
                .map_err(|_| bad("decision"))?,
            code: r.code,
            at: time("at", &r.at)?,
            visible_at: time("visible_at", &r.visible_at)?,
            attempts: u32::try_from(r.attempts).map_err(|_| bad("attempts"))?,
            id,
        })
    }
}

fn checked_all(rows: Vec<Row>) -> Result<Vec<Notification>, StoreError> {
    rows.into_iter().map(Notification::try_from).collect()
}

/// The two statements of [`Store::queue_expiring_consents`] for one of its
/// forms: the count it reads first, and the insert it writes when the count
/// is not 0.
struct ExpiringSql {
    count: String,
    insert: String,
}

/// The consents [`Store::queue_expiring_consents`] looks at: granted, with a
/// subject, expiring in `($1, $2]`, not yet noticed. With `one`, only the
/// subject `$3`'s, by `consents_subject`: the inbox asks on every page, and
/// an `$3 = '' OR c.subject = $3` serving both forms read every consent of
/// everybody (#21). Without it, everybody's (the delivery task's sweep, once
/// a minute on each replica), by `consents_expiring` (migration 0018): the
/// consents expiring in the window, not every consent. Built once.
fn expiring_filter(one: bool) -> &'static ExpiringSql {
    static FORMS: OnceLock<[ExpiringSql; 2]> = OnceLock::new();
    let [everybody, person] = FORMS.get_or_init(|| {
        let head = "FROM consents c WHERE c.status = 'granted' \
             AND c.subject IS NOT NULL AND c.valid_to > $1 AND c.valid_to <= $2";
        let not_noticed =
            "AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.id = 'expiring-' || c.id)";
        [
            format!("{head} {not_noticed}"),
            format!("{head} AND c.subject = $3 {not_noticed}"),
        ]
        .map(|filter| ExpiringSql {
            count: format!("SELECT COUNT(*) {filter}"),
            insert: format!(
                "INSERT INTO notifications (id, kind, consent_id, consumer, datasets, at, \
                 visible_at, next_attempt_at) \
                 SELECT 'expiring-' || c.id, 'consent_expiring', c.id, c.requester, \
                 c.datasets, $1, $1, $1 {filter} ON CONFLICT (id) DO NOTHING"
            ),
        })
    });
    if one {
        person
    } else {
        everybody
    }
}

/// The inbox's query ([`Store::inbox`]): $1 subject_ref, $2 the person
/// number, $3 now, $4 transfer setting, $5 consent events (1/0), $6 and $7
/// the cursor's time and id ('' for the first page), $8 the limit.
fn inbox_sql() -> &'static str {
    // Two branches, each on its own index: the person's transfers by
    // `notifications_subject`, their consents' notices through
    // `consents_subject` and `notifications_consent`. One `WHERE` with
    // `n.subject_ref = $1 OR c.subject = $2` across the outer join read
    // every notification of every person on each page (#21); a row is in
    // exactly one branch (the table's CHECK: a subject or a consent).
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let rest = "AND n.visible_at <= $3 \
             AND (n.kind = 'break_glass' \
               OR (n.kind = 'transfer' AND ($4 = 'all' OR ($4 = 'denied' AND n.decision = 'deny'))) \
               OR (n.kind IN ('consent_event', 'consent_expiring') AND $5 = 1)) \
             AND ($6 = '' OR n.at < $6 OR (n.at = $6 AND n.id < $7)) \
             ORDER BY n.at DESC, n.id DESC LIMIT $8";
        format!(
            "SELECT * FROM (SELECT * FROM ({COLUMNS}, NULL AS consent_subject \
             FROM notifications n WHERE n.subject_ref = $1 {rest}) AS transfers \
             UNION ALL SELECT * FROM ({COLUMNS}, c.subject AS consent_subject \
             FROM consents c JOIN notifications n ON n.consent_id = c.id \
             WHERE c.subject = $2 {rest}) AS consent_notices) AS inbox \
             ORDER BY at DESC, id DESC LIMIT $8"
        )
    })
}

/// Every column of a notification but its consent's subject, as a literal
/// for `concat!`.
macro_rules! columns {
    () => {
        "SELECT n.id, n.kind, n.subject_ref, n.consent_id, n.event, n.record_index, \
         n.consumer, n.datasets, n.decision, n.code, n.at, n.visible_at, n.attempts"
    };
}

/// Every column of a notification but its consent's subject.
const COLUMNS: &str = columns!();

/// Every column of a notification, with its consent's subject, before `WHERE`.
const SELECT: &str = concat!(
    columns!(),
    ", c.subject AS consent_subject \
     FROM notifications n LEFT JOIN consents c ON c.id = n.consent_id "
);

/// A position in the inbox (newest first): the last item's time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxCursor {
    pub at: String,
    pub id: String,
}

impl InboxCursor {
    pub fn encode(&self) -> String {
        format!("{}_{}", self.at, self.id)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (at, id) = s.split_once('_')?;
        let at = Timestamp::parse(at).ok()?.to_string();
        (!id.is_empty() && id.len() <= 100).then(|| InboxCursor {
            at,
            id: id.to_owned(),
        })
    }
}

/// Counts for metrics and readiness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting to be sent (visible now).
    pub queued: u64,
    /// Of those, the ones whose last attempt failed.
    pub failing: u64,
}

impl Store {
    /// `subject_ref`'s settings; the defaults when none are stored.
    pub async fn notification_settings(
        &self,
        subject_ref: &str,
    ) -> Result<NotificationSettings, StoreError> {
        const SQL: &str = "SELECT transfers, consent_events FROM notification_settings \
             WHERE subject_ref = $1";
        let row: Option<(String, i32)> = on_pool!(self, pool => {
            sqlx::query_as(SQL).bind(subject_ref).fetch_optional(pool).await?
        });
        Ok(match row {
            None => NotificationSettings::default(),
            Some((transfers, consent_events)) => NotificationSettings {
                transfers: TransferNotices::parse(&transfers).ok_or_else(|| {
                    StoreError::Corrupt(format!("notification settings: {transfers:?}"))
                })?,
                consent_events: consent_events != 0,
            },
        })
    }

    /// Stores `subject_ref`'s settings, replacing any before.
    pub async fn set_notification_settings(
        &self,
        subject_ref: &str,
        settings: NotificationSettings,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO notification_settings \
             (subject_ref, transfers, consent_events, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (subject_ref) DO UPDATE SET transfers = excluded.transfers, \
             consent_events = excluded.consent_events, updated_at = excluded.updated_at";
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(subject_ref)
                .bind(settings.transfers.as_str())
                .bind(i32::from(settings.consent_events))
                .bind(now.to_string())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// One step of the `notify` follower: the decision records about a
    /// person (a transfer, or a break-glass call) among the next `limit`
    /// indexes of the log become notifications, and the position moves past
    /// the window, in one transaction. Returns how many indexes it stepped
    /// over (0: caught up).
    ///
    /// One `INSERT … SELECT` per step: the rows never come out of the
    /// database (#21: one statement per record made this follower costlier
    /// under load than the audit appender it follows).
    pub async fn follow_log_for_notifications(&self, limit: u32) -> Result<usize, StoreError> {
        self.retrying(|| async move {
            let mut tx = self.begin_derived().await?;
            let mut conn = tx.conn();
            let position = lock_follower(&mut conn, FOLLOWER).await?;
            let Some((from, to)) = window(&mut conn, position, limit).await? else {
                return Ok(0);
            };
            on_conn!(&mut conn, c => {
                sqlx::query(QUEUE_TRANSFERS)
                    .bind(from)
                    .bind(to)
                    .execute(&mut **c)
                    .await?;
            });
            let next =
                u64::try_from(to).map_err(|_| StoreError::Corrupt(format!("log size {to}")))?;
            advance_follower(&mut conn, FOLLOWER, next).await?;
            tx.commit().await?;
            usize::try_from(to - from)
                .map_err(|_| StoreError::Corrupt(format!("window {from}..{to}")))
        })
        .await
    }

    /// Queues a notice for each granted consent that expires within
    /// `within` of `now` (once per consent); only `subject`'s when given.
    /// Returns how many were queued.
    pub async fn queue_expiring_consents(
        &self,
        now: Timestamp,
        within: time::Duration,
        subject: Option<&PersonNumber>,
    ) -> Result<u64, StoreError> {
        let sql = expiring_filter(subject.is_some());
        let soon = now
            .as_datetime()
            .checked_add(within)
            .map_or(now, Timestamp::from_datetime)
            .to_string();
        let now_s = now.to_string();
        // `$3`, the person's form only.
        let who = subject.map(PersonNumber::expose);
        // A read first: the inbox calls this on every page, and most find nothing to write.
        let due: i64 = on_pool!(self, pool => {
            let mut q = sqlx::query_scalar(&sql.count).bind(&now_s).bind(&soon);
            if let Some(who) = who {
                q = q.bind(who);
            }
            q.fetch_one(pool).await?
        });
        if due == 0 {
            return Ok(0);
        }
        let (now_s, soon) = (&now_s, &soon);
        self.retrying(|| async move {
            let mut tx = self.begin_write().await?;
            let mut conn = tx.conn();
            let queued = on_conn!(&mut conn, c => {
                let mut q = sqlx::query(&sql.insert).bind(now_s).bind(soon);
                if let Some(who) = who {
                    q = q.bind(who);
                }
                q.execute(&mut **c).await?.rows_affected()
            });
            tx.commit().await?;
            Ok(queued)
        })
        .await
    }

    /// A citizen's inbox, newest first: notifications whose record is about
    /// `subject_ref` or whose consent is `subject`'s, visible at `now`, that
    /// `settings` want shown; after `cursor`, at most `limit`.
    pub async fn inbox(
        &self,
        subject_ref: &str,
        subject: &PersonNumber,
        settings: NotificationSettings,
        now: Timestamp,
        cursor: Option<&InboxCursor>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        let sql = inbox_sql();
        let (c_at, c_id) = cursor.map_or(("", ""), |c| (c.at.as_str(), c.id.as_str()));
        let rows: Vec<Row> = on_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(subject_ref)
                .bind(subject.expose())
                .bind(now.to_string())
                .bind(settings.transfers.as_str())
                .bind(i32::from(settings.consent_events))
                .bind(c_at)
                .bind(c_id)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        checked_all(rows)
    }

    /// Claims up to `limit` notifications due at `now` for `owner` until
    /// `lease_until`: a row another owner holds an unexpired lease on is
    /// left to it. Oldest first.
    pub async fn claim_notifications(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        const DUE: &str = "SELECT id FROM notifications WHERE delivery = 'pending' \
             AND visible_at <= $1 AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) \
             ORDER BY next_attempt_at, at, id LIMIT $2";
        const CLAIM: &str = "UPDATE notifications SET lease_owner = $1, lease_until = $2 \
             WHERE id = $3 AND delivery = 'pending' AND (lease_until IS NULL OR lease_until < $4)";
        let now_s = now.to_string();
        let until = lease_until.to_string();
        let due: Vec<String> = on_pool!(self, pool => {
            sqlx::query_scalar(DUE).bind(&now_s).bind(i64::from(limit)).fetch_all(pool).await?
        });
        let mut claimed = Vec::with_capacity(due.len());
        for id in due {
            // One conditional UPDATE: of two replicas racing for a row, one
            // changes it and the other sees no row affected.
            let won = on_pool!(self, pool => {
                sqlx::query(CLAIM)
                    .bind(owner)
                    .bind(&until)
                    .bind(&id)
                    .bind(&now_s)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
            if won == 1 {
                claimed.push(id);
            }
        }
        let sql = format!("{SELECT} WHERE n.id = $1 AND n.lease_owner = $2");
        let mut out = Vec::with_capacity(claimed.len());
        for id in claimed {
            let row: Option<Row> = on_pool!(self, pool => {
                sqlx::query_as(&sql).bind(&id).bind(owner).fetch_optional(pool).await?
            });
            if let Some(row) = row {
                out.push(Notification::try_from(row)?);
            }
        }
        Ok(out)
    }

    /// A claimed notification reached the receiver (or, `skipped`, is not
    /// sent: the citizen's settings leave it out). Only while `owner`
    /// holds it.
    pub async fn notification_done(
        &self,
        id: &str,
        owner: &str,
        skipped: bool,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE notifications SET delivery = $1, delivered_at = $2, \
             lease_owner = NULL, lease_until = NULL, last_error = NULL \
             WHERE id = $3 AND lease_owner = $4 AND delivery = 'pending'";
        let state = if skipped { "skipped" } else { "delivered" };
        let changed = on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(state)
                .bind(now.to_string())
                .bind(id)
                .bind(owner)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(changed == 1)
    }

    /// A claimed notification could not be sent: tried again from `retry_at`.
    pub async fn notification_failed(
        &self,
        id: &str,
        owner: &str,
        retry_at: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE notifications SET attempts = attempts + 1, \
             next_attempt_at = $1, last_error = $2, lease_owner = NULL, lease_until = NULL \
             WHERE id = $3 AND lease_owner = $4 AND delivery = 'pending'";
        let error: String = error.chars().take(300).collect();
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(retry_at.to_string())
                .bind(&error)
                .bind(id)
                .bind(owner)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// How many notifications wait to be sent at `now`, and how many of
    /// them failed their last attempt.
    pub async fn outbox_counts(&self, now: Timestamp) -> Result<OutboxCounts, StoreError> {
        const SQL: &str =
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0) \
             FROM notifications WHERE delivery = 'pending' AND visible_at <= $1";
        let (queued, failing): (i64, i64) = on_pool!(self, pool => {
            sqlx::query_as(SQL).bind(now.to_string()).fetch_one(pool).await?
        });
        Ok(OutboxCounts {
            queued: u64::try_from(queued).unwrap_or(0),
            failing: u64::try_from(failing).unwrap_or(0),
        })
    }
}

/// Inside a consent event's transaction, after the event is written: its
/// notification, for a consent that has a subject (a request made without
/// one reaches nobody until a citizen answers it). Uses are transfers, and
/// are notified from the log instead.
pub(crate) async fn queue_consent_event(
    conn: &mut Conn<'_>,
    consent_id: &str,
    kind: EventType,
    at: Timestamp,
) -> Result<(), StoreError> {
    // The id names the event (the consent and the event's seq, just written).
    const SQL: &str =
        "INSERT INTO notifications (id, kind, consent_id, event, consumer, datasets, \
         at, visible_at, next_attempt_at) \
         SELECT 'consent-' || c.id || '-' || CAST((SELECT MAX(seq) FROM consent_events e \
         WHERE e.consent_id = c.id) AS TEXT), 'consent_event', c.id, $1, c.requester, \
         c.datasets, $2, $2, $2 FROM consents c WHERE c.id = $3 AND c.subject IS NOT NULL \
         ON CONFLICT (id) DO NOTHING";
    if kind == EventType::Used {
        return Ok(());
    }
    on_conn!(conn, c => {
        sqlx::query(SQL)
            .bind(kind.as_str())
            .bind(at.to_string())
            .bind(consent_id)
            .execute(&mut **c)
            .await?;
    });
    Ok(())
}

/// A decision record about a person becomes a transfer notification (a
/// break-glass one when the call passed a block), visible when the record
/// is disclosed to its citizen.
///
/// The notifications of the decision records in `[$1, $2)`, as the inbox
/// and the webhook read them: `transfer-{index}` (stable, so replays and
/// replicas dedupe), the dataset as `["provider/dataset"]` (names are
/// policy identifiers; `"` and `\\` escaped all the same), shown from the
/// record's `disclose_at` (SPEC 10) or its time. A break-glass call's
/// reason is the caller's own text: it stays in the audit record (for the
/// security team) and is never copied here, so no citizen sees it (the
/// `reason` column of 0011 stays empty; 0016 emptied it). Plain SQL both
/// databases take.
const QUEUE_TRANSFERS: &str = "INSERT INTO notifications (id, kind, subject_ref, record_index, \
     consumer, datasets, decision, code, at, visible_at, next_attempt_at) \
     SELECT 'transfer-' || idx, \
       CASE WHEN break_glass IS NULL THEN 'transfer' ELSE 'break_glass' END, \
       subject_ref, idx, consumer, \
       CASE WHEN dataset LIKE '%/%' THEN '[\"' || REPLACE(REPLACE(dataset, '\\', '\\\\'), '\"', '\\\"') || '\"]' \
            WHEN provider IS NOT NULL AND dataset IS NOT NULL \
              THEN '[\"' || REPLACE(REPLACE(provider, '\\', '\\\\'), '\"', '\\\"') || '/' \
                   || REPLACE(REPLACE(dataset, '\\', '\\\\'), '\"', '\\\"') || '\"]' \
            ELSE '[]' END, \
       decision, code, time, COALESCE(disclose_at, time), COALESCE(disclose_at, time) \
     FROM audit_records \
     WHERE idx >= $1 AND idx < $2 AND kind = 'decision' AND subject_ref IS NOT NULL \
     ORDER BY idx \
     ON CONFLICT (id) DO NOTHING";

#[cfg(test)]
mod tests;
