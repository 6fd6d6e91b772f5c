#![allow(clippy::unwrap_used)]
//! Store-level checks with a clock the test chooses: a delayed transfer, a
//! break-glass call, the lease between replicas, a consent event's row.

use super::*;
use crate::record::{NewRecord, RecordFilter, RecordKind};
use crate::store::StoreConfig;
use crate::{AuditConfig, AuditLog};

const KARI: &str = "12884513829";

async fn store(dir: &tempfile::TempDir) -> Store {
    let url = match std::env::var("BRU_TEST_STORE").as_deref() {
        Ok("postgres") => crate::test_support::fresh_postgres_database().await,
        _ => format!("sqlite://{}", dir.path().join("bru.db").display()),
    };
    let store = Store::open_with(&url, &StoreConfig::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

fn decision(n: usize, subject_ref: &str) -> NewRecord {
    let mut r = NewRecord::new(
        RecordKind::Decision,
        format!("t-{n}"),
        "GET",
        "/data/nav/inntekt",
    );
    r.consumer = Some("0192:921429002".into());
    r.provider = Some("nav".into());
    r.dataset = Some("nav/inntekt".into());
    r.subject_ref = Some(subject_ref.into());
    r.decision = Some(Verdict::Allow);
    r
}

#[tokio::test]
async fn a_delayed_transfer_is_neither_shown_nor_sent_before_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    let mut delayed = decision(0, "ref-kari");
    delayed.disclosure_delay_days = Some(30);
    log.append(delayed).await.unwrap();
    assert_eq!(store.follow_log_for_notifications(100).await.unwrap(), 1);
    assert_eq!(store.follower_position(FOLLOWER).await.unwrap(), 1);
    let kari = PersonNumber::parse(KARI, true).unwrap();
    let now = Timestamp::now();
    let in_29_days = Timestamp::from_datetime(now.as_datetime() + time::Duration::days(29));
    let in_31_days = Timestamp::from_datetime(now.as_datetime() + time::Duration::days(31));
    let s = NotificationSettings::default();
    let inbox = |at| {
        let (store, kari) = (store.clone(), kari.clone());
        async move {
            store
                .inbox("ref-kari", &kari, s, at, None, 10)
                .await
                .unwrap()
        }
    };
    assert!(inbox(in_29_days).await.is_empty());
    assert!(store
        .claim_notifications("a", in_29_days, in_31_days, 10)
        .await
        .unwrap()
        .is_empty());
    let shown = inbox(in_31_days).await;
    assert_eq!(shown.len(), 1);
    // Shown with its original time.
    assert!(shown[0].at <= Timestamp::now());
    assert!(shown[0].visible_at > in_29_days);
    let claimed = store
        .claim_notifications("a", in_31_days, in_31_days, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, "transfer-0");
}

#[tokio::test]
async fn a_break_glass_call_is_notified_whatever_the_settings_without_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    let mut glass = decision(0, "ref-kari");
    glass.break_glass = Some("bevisstløs pasient".into());
    log.append(glass).await.unwrap();
    log.append(decision(1, "ref-kari")).await.unwrap();
    let mut outcome = decision(2, "ref-kari");
    outcome.kind = RecordKind::Outcome;
    outcome.decision = None;
    log.append(outcome).await.unwrap();
    assert_eq!(store.follow_log_for_notifications(100).await.unwrap(), 3);
    // Nothing more to read: the position moved past all three.
    assert_eq!(store.follow_log_for_notifications(100).await.unwrap(), 0);
    let kari = PersonNumber::parse(KARI, true).unwrap();
    let off = NotificationSettings {
        transfers: TransferNotices::None,
        consent_events: false,
    };
    let later =
        Timestamp::from_datetime(Timestamp::now().as_datetime() + time::Duration::minutes(1));
    let shown = store
        .inbox("ref-kari", &kari, off, later, None, 10)
        .await
        .unwrap();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0].kind, NotificationKind::BreakGlass);
    // The reason is the caller's text: it stays in the audit record and is
    // never part of what the citizen's notification holds.
    assert!(
        !format!("{shown:?}").contains("bevisstløs"),
        "the caller's reason in a notification: {shown:?}"
    );
    let record = store
        .records(&RecordFilter::default())
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.index == 0)
        .unwrap();
    assert_eq!(record.break_glass.as_deref(), Some("bevisstløs pasient"));
    let all = store
        .inbox(
            "ref-kari",
            &kari,
            NotificationSettings::default(),
            later,
            None,
            10,
        )
        .await
        .unwrap();
    // The outcome record is no second notification of the same call.
    assert_eq!(all.len(), 2);
    assert!(off.wants(NotificationKind::BreakGlass, Some(Verdict::Allow)));
    assert!(!off.wants(NotificationKind::Transfer, Some(Verdict::Deny)));
}

#[tokio::test]
async fn a_claimed_notification_is_left_to_its_owner_until_the_lease_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    log.append(decision(0, "ref-kari")).await.unwrap();
    store.follow_log_for_notifications(100).await.unwrap();
    let now = Timestamp::from_datetime(Timestamp::now().as_datetime() + time::Duration::seconds(1));
    let lease = Timestamp::from_datetime(now.as_datetime() + time::Duration::seconds(30));
    let after = Timestamp::from_datetime(lease.as_datetime() + time::Duration::seconds(1));
    assert_eq!(
        store
            .claim_notifications("a", now, lease, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .claim_notifications("b", now, lease, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.outbox_counts(now).await.unwrap().queued, 1);
    // "a" died: "b" takes the row after the lease, and "a" can no longer finish it.
    assert_eq!(
        store
            .claim_notifications("b", after, after, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(!store
        .notification_done("transfer-0", "a", false, after)
        .await
        .unwrap());
    assert!(store
        .notification_done("transfer-0", "b", false, after)
        .await
        .unwrap());
    assert_eq!(
        store.outbox_counts(after).await.unwrap(),
        OutboxCounts::default()
    );
}

#[tokio::test]
async fn a_consent_event_has_its_notification_in_its_own_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let kari = PersonNumber::parse(KARI, true).unwrap();
    let now = Timestamp::now();
    let new = |subject: Option<PersonNumber>| crate::NewConsent {
        id: format!("{:032x}", now.unix_millis() + i128::from(subject.is_some())),
        requester: "0192:921429002".into(),
        supplier: None,
        subject,
        datasets: vec!["nav/inntekt".parse().unwrap()],
        purpose: "p".into(),
        valid_to: Timestamp::from_datetime(now.as_datetime() + time::Duration::days(3)),
        max_uses: None,
        frequency: None,
        redirect_url: None,
        message: None,
    };
    let mine = store
        .create_consent(&new(Some(kari.clone())), now)
        .await
        .unwrap();
    // A request without a subject reaches nobody yet.
    store.create_consent(&new(None), now).await.unwrap();
    let later = Timestamp::from_datetime(now.as_datetime() + time::Duration::seconds(1));
    let s = NotificationSettings::default();
    let shown = store
        .inbox("ref-kari", &kari, s, later, None, 10)
        .await
        .unwrap();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0].id, format!("consent-{}-0", mine.id));
    assert_eq!(shown[0].event.as_deref(), Some("created"));
    assert_eq!(shown[0].consent_subject.as_ref(), Some(&kari));
    store
        .citizen_action(&mine.id, &kari, crate::CitizenAction::Accept, later)
        .await
        .unwrap();
    // Granted and due within 7 days: one expiry notice, once.
    let week = time::Duration::days(7);
    assert_eq!(
        store
            .queue_expiring_consents(later, week, Some(&kari))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .queue_expiring_consents(later, week, None)
            .await
            .unwrap(),
        0
    );
    let shown = store
        .inbox("ref-kari", &kari, s, later, None, 10)
        .await
        .unwrap();
    let ids: Vec<_> = shown.iter().map(|n| n.id.clone()).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids.contains(&format!("consent-{}-1", mine.id)));
    assert!(ids.contains(&format!("expiring-{}", mine.id)));
    let quiet = NotificationSettings {
        transfers: TransferNotices::All,
        consent_events: false,
    };
    assert!(store
        .inbox("ref-kari", &kari, quiet, later, None, 10)
        .await
        .unwrap()
        .is_empty());
    // Paged, newest first.
    let first = store
        .inbox("ref-kari", &kari, s, later, None, 2)
        .await
        .unwrap();
    let cursor = InboxCursor {
        at: first[1].at.to_string(),
        id: first[1].id.clone(),
    };
    let rest = store
        .inbox("ref-kari", &kari, s, later, Some(&cursor), 2)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert!(!first.iter().any(|n| n.id == rest[0].id));
}

/// Migration 0016: a reason copied into a notification before the fix (the
/// caller's text, which no citizen may be shown) is emptied; the row stays.
#[tokio::test]
async fn migration_0016_empties_reasons_copied_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    const OLD: &str = "INSERT INTO notifications (id, kind, subject_ref, reason, at, visible_at, \
         next_attempt_at) VALUES ('transfer-9', 'break_glass', 'ref-kari', 'bevisstløs pasient', \
         '2026-12-01T10:00:00.000Z', '2026-12-01T10:00:00.000Z', '2026-12-01T10:00:00.000Z')";
    const READ: &str = "SELECT reason FROM notifications WHERE id = 'transfer-9'";
    on_pool!(store, pool => {
        sqlx::query(OLD).execute(pool).await.unwrap();
        // As if the store was migrated before 0016 existed.
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 16")
            .execute(pool)
            .await
            .unwrap();
    });
    store.migrate().await.unwrap();
    let reason: Option<String> = on_pool!(store, pool => {
        sqlx::query_scalar(READ).fetch_one(pool).await.unwrap()
    });
    assert_eq!(reason, None);
}

/// A transfer's notification about `subject_ref` at `at`, as the `notify`
/// follower writes it.
async fn transfer_at(store: &Store, n: u32, subject_ref: &str, at: Timestamp) {
    const SQL: &str = "INSERT INTO notifications (id, kind, subject_ref, record_index, consumer, \
         datasets, decision, at, visible_at, next_attempt_at) VALUES ($1, 'transfer', $2, $3, \
         '0192:921429002', '[\"nav/inntekt\"]', 'allow', $4, $4, $4)";
    on_pool!(store, pool => {
        sqlx::query(SQL)
            .bind(format!("transfer-{n}"))
            .bind(subject_ref)
            .bind(i64::from(n))
            .bind(at.to_string())
            .execute(pool)
            .await
            .unwrap();
    });
}

/// The inbox joins the person's transfers (by pseudonym) and their consents'
/// notices (by person number) into one list, newest first, paged across
/// both; another person's rows of either kind are not in it.
#[tokio::test]
async fn an_inbox_is_a_persons_transfers_and_consent_notices_newest_first_and_nobody_elses() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let kari = PersonNumber::parse(KARI, true).unwrap();
    let ola = PersonNumber::parse("03839113713", true).unwrap();
    let t0 = Timestamp::now();
    let at = |s: i64| Timestamp::from_datetime(t0.as_datetime() + time::Duration::seconds(s));
    let consent = |subject: &PersonNumber, n: u32| crate::NewConsent {
        id: format!("{:032x}", 0xc0 + n),
        requester: "0192:921429002".into(),
        supplier: None,
        subject: Some(subject.clone()),
        datasets: vec!["nav/inntekt".parse().unwrap()],
        purpose: "p".into(),
        valid_to: at(86_400),
        max_uses: None,
        frequency: None,
        redirect_url: None,
        message: None,
    };
    transfer_at(&store, 0, "ref-kari", at(0)).await;
    let karis = store
        .create_consent(&consent(&kari, 1), at(1))
        .await
        .unwrap();
    transfer_at(&store, 2, "ref-kari", at(2)).await;
    transfer_at(&store, 3, "ref-ola", at(3)).await;
    store
        .create_consent(&consent(&ola, 4), at(4))
        .await
        .unwrap();
    let s = NotificationSettings::default();
    let now = at(5);
    let all = store
        .inbox("ref-kari", &kari, s, now, None, 10)
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|n| n.id.as_str()).collect();
    let notice = format!("consent-{}-0", karis.id);
    assert_eq!(ids, ["transfer-2", notice.as_str(), "transfer-0"]);
    assert_eq!(all[1].consent_subject.as_ref(), Some(&kari));
    assert_eq!(all[0].consent_subject, None);
    // Two a page: the cursor carries on across both kinds.
    let first = store
        .inbox("ref-kari", &kari, s, now, None, 2)
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let cursor = InboxCursor {
        at: first[1].at.to_string(),
        id: first[1].id.clone(),
    };
    let rest = store
        .inbox("ref-kari", &kari, s, now, Some(&cursor), 2)
        .await
        .unwrap();
    let rest: Vec<&str> = rest.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(rest, ["transfer-0"]);
    // Ola's inbox holds only Ola's.
    let olas = store
        .inbox("ref-ola", &ola, s, now, None, 10)
        .await
        .unwrap();
    let olas: Vec<&str> = olas.iter().map(|n| n.kind.as_str()).collect();
    assert_eq!(olas, ["consent_event", "transfer"]);
}

/// The plan of `query` (`$n` bound to the values after it, in order): on
/// PostgreSQL with sequential scans discouraged (small tables make any plan
/// cheap), one line each; on SQLite `EXPLAIN QUERY PLAN`'s detail column.
macro_rules! plan {
    ($store:expr, $query:expr $(, $value:expr)* $(,)?) => {{
        let postgres = std::env::var("BRU_TEST_STORE").as_deref() == Ok("postgres");
        let lines: Vec<String> = on_pool!($store, pool => {
            let mut tx = pool.begin().await.unwrap();
            let explain = if postgres {
                sqlx::query("SET LOCAL enable_seqscan = off")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                "EXPLAIN"
            } else {
                "EXPLAIN QUERY PLAN"
            };
            let text = format!("{explain} {}", $query);
            let rows = sqlx::query(&text)
                $(.bind($value))*
                .fetch_all(&mut *tx)
                .await
                .unwrap();
            // PostgreSQL's plan is one text column; SQLite's detail is the fourth.
            let column = if postgres { 0 } else { 3 };
            rows.iter()
                .map(|r| sqlx::Row::get::<String, _>(r, column))
                .collect()
        });
        lines
    }};
}

/// `plan` uses each of `indexes` and never reads `table` (SQLite's alias
/// `alias`) whole: SQLite's `SCAN alias`, PostgreSQL's `Seq Scan on table`.
fn assert_by_index(plan: &[String], indexes: &[&str], alias: &str, table: &str) {
    let text = plan.join("\n");
    for index in indexes {
        assert!(text.contains(index), "{text}");
    }
    let scan = format!("SCAN {alias}");
    let seq_scan = format!("Seq Scan on {table}");
    for line in plan {
        let whole = line.trim() == scan || line.contains(&seq_scan);
        assert!(!whole, "{text}");
    }
}

/// The inbox reads one person's rows through the indexes on the person's
/// pseudonym and on the consent, never the whole table: it is shown on
/// every page of the portal, and the table has a row for every transfer
/// about anybody (#21).
#[tokio::test]
async fn the_inbox_reads_a_persons_rows_by_index_not_the_whole_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let plan = plan!(
        store,
        inbox_sql(),
        "ref-kari",
        KARI,
        "2026-12-06T00:00:00.000Z",
        "all",
        1,
        "",
        "",
        10i64,
    );
    assert_by_index(
        &plan,
        &[
            "notifications_subject",
            "notifications_consent",
            "consents_subject",
        ],
        "n",
        "notifications",
    );
}

/// Granted consents of `n` people, one in 20 expiring in three days and
/// the rest in 300 days, and the planners' statistics taken: the shape the expiry
/// reads meet in a deployment, where a person has a few consents and a week
/// sees a small part of everybody's run out. (On empty tables PostgreSQL
/// cannot tell a person's consents from the week's and may take either
/// index.)
async fn seed_expiring_consents(store: &Store, n: usize, now: Timestamp) {
    // 1 January 1990, individual numbers 000–999, whichever control digits fit.
    let people = (0..1000u64)
        .flat_map(|i| (0..100).map(move |k| format!("010190{i:03}{k:02}")))
        .filter_map(|s| PersonNumber::parse(&s, true).ok())
        .take(n)
        .collect::<Vec<_>>();
    assert_eq!(people.len(), n);
    for (i, person) in people.into_iter().enumerate() {
        let consent = crate::NewConsent {
            id: format!("{i:032x}"),
            requester: "0192:921429002".into(),
            supplier: None,
            subject: Some(person.clone()),
            datasets: vec!["nav/inntekt".parse().unwrap()],
            purpose: "p".into(),
            valid_to: Timestamp::from_datetime(
                now.as_datetime() + time::Duration::days(if i % 20 == 0 { 3 } else { 300 }),
            ),
            max_uses: None,
            frequency: None,
            redirect_url: None,
            message: None,
        };
        let row = store.create_consent(&consent, now).await.unwrap();
        store
            .citizen_action(&row.id, &person, crate::CitizenAction::Accept, now)
            .await
            .unwrap();
    }
    on_pool!(store, pool => {
        sqlx::query("ANALYZE").execute(pool).await.unwrap();
    });
}

/// The inbox first queues the person's consents about to expire; that read
/// looks at the person's consents by `consents_subject`, never the whole
/// table nor everybody's consents expiring this week, on both stores (#21:
/// an `OR` with the sweep's form read every consent of everybody on each
/// page).
#[tokio::test]
async fn a_persons_expiry_check_reads_their_consents_by_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let now = Timestamp::now();
    seed_expiring_consents(&store, 200, now).await;
    let week = Timestamp::from_datetime(now.as_datetime() + time::Duration::days(7));
    let query = &expiring_filter(true).count;
    let plan = plan!(store, query, now.to_string(), week.to_string(), KARI,);
    assert_by_index(&plan, &["consents_subject"], "c", "consents");
    assert!(!plan.join("\n").contains("consents_expiring"), "{plan:?}");
}

/// The delivery task's sweep for consents about to expire (once a minute
/// on every replica) reads them by `consents_expiring`, in expiry order,
/// never every consent (#21: without an index on `valid_to` it did, a cost
/// that grew with the table).
#[tokio::test]
async fn the_sweep_for_consents_about_to_expire_reads_by_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let now = Timestamp::now();
    seed_expiring_consents(&store, 200, now).await;
    let week = Timestamp::from_datetime(now.as_datetime() + time::Duration::days(7));
    let query = &expiring_filter(false).count;
    let plan = plan!(store, query, now.to_string(), week.to_string());
    assert_by_index(&plan, &["consents_expiring"], "c", "consents");
}
