//! The consent state machine against a real SQLite file: every allowed and
//! refused transition, its events, expiry, use counting under concurrency,
//! and that a change and its event commit together or not at all.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use policy::PersonNumber;
use tempfile::TempDir;

use super::*;
use crate::{Store, StoreConfig};

const KARI: &str = "12884513829";
const OLA: &str = "03839113713";
const K429: &str = "0192:921429002";

struct Fixture {
    _dir: TempDir,
    url: String,
    store: Store,
}

/// The same tests run on PostgreSQL when `BRU_TEST_STORE=postgres` (with
/// `BRU_TEST_POSTGRES_URL`, see scripts/start-postgres): each fixture gets
/// a database of its own.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = match std::env::var("BRU_TEST_STORE").as_deref() {
        Ok("postgres") => crate::test_support::fresh_postgres_database().await,
        _ => format!("sqlite://{}", dir.path().join("bru.db").display()),
    };
    let store = Store::open_with(&url, &StoreConfig::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Fixture {
        _dir: dir,
        url,
        store,
    }
}

fn person(s: &str) -> PersonNumber {
    PersonNumber::parse(s, true).unwrap()
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// Times in 2030; every consent below is valid until noon on 1 June.
const CREATED: &str = "2030-06-01T08:00:00.000Z";
const LATER: &str = "2030-06-01T09:00:00.000Z";
const VALID_TO: &str = "2030-06-01T12:00:00.000Z";
const AFTER: &str = "2030-06-01T12:00:00.001Z";

fn request(subject: Option<&str>, max_uses: Option<u32>) -> NewConsent {
    NewConsent {
        id: uuid_like(),
        requester: K429.into(),
        supplier: None,
        subject: subject.map(person),
        datasets: vec![
            "nav/inntekt".parse().unwrap(),
            "helsenorge/hjemmetjeneste".parse().unwrap(),
        ],
        purpose: "omsorgsbolig-soknad".into(),
        valid_to: t(VALID_TO),
        max_uses,
        frequency: None,
        redirect_url: Some("https://k429.example/soknad".into()),
        message: Some("Vi trenger inntekten din.".into()),
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "c0ffee00-0000-4000-8000-{:012}",
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn create(store: &Store, subject: Option<&str>, max_uses: Option<u32>) -> ConsentRow {
    store
        .create_consent(&request(subject, max_uses), t(CREATED))
        .await
        .unwrap()
}

async fn granted(store: &Store, max_uses: Option<u32>) -> ConsentRow {
    let row = create(store, Some(KARI), max_uses).await;
    store
        .accept_consent(&row.id, &person(KARI), t(LATER))
        .await
        .unwrap()
}

async fn event_types(store: &Store, id: &str) -> Vec<&'static str> {
    store
        .consent_events(id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind.as_str())
        .collect()
}

async fn status(store: &Store, id: &str) -> String {
    // Read at a time before valid_to, so the read itself changes nothing.
    store
        .get_consent_at(id, t(LATER))
        .await
        .unwrap()
        .unwrap()
        .status
        .to_string()
}

#[test]
fn the_state_machine_allows_exactly_these_transitions() {
    use CitizenAction::*;
    use ConsentStatus::*;
    let cases = [
        (Pending, Accept, Some(Granted)),
        (Pending, Reject, Some(Rejected)),
        (Pending, Revoke, None),
        (Granted, Accept, None),
        (Granted, Reject, None),
        (Granted, Revoke, Some(Revoked)),
        (Rejected, Accept, None),
        (Rejected, Reject, None),
        (Rejected, Revoke, None),
        (Revoked, Accept, None),
        (Revoked, Reject, None),
        (Revoked, Revoke, None),
        (Expired, Accept, None),
        (Expired, Reject, None),
        (Expired, Revoke, None),
        (Granted, Pause, Some(Paused)),
        (Paused, Resume, Some(Granted)),
        (Paused, Revoke, Some(Revoked)),
        (Paused, Pause, None),
        (Paused, Accept, None),
        (Paused, Reject, None),
        (Pending, Pause, None),
        (Pending, Resume, None),
        (Granted, Resume, None),
        (Rejected, Pause, None),
        (Revoked, Pause, None),
        (Revoked, Resume, None),
        (Expired, Pause, None),
        (Expired, Resume, None),
    ];
    for (state, action, expected) in cases {
        assert_eq!(next_state(state, action), expected, "{state} + {action:?}");
    }
}

#[tokio::test]
async fn a_request_is_created_pending_with_its_event() {
    let fx = fixture().await;
    let row = create(&fx.store, Some(KARI), Some(10)).await;
    assert_eq!(row.status, ConsentStatus::Pending);
    assert_eq!(
        (row.uses, row.max_uses, row.subject.as_deref()),
        (0, Some(10), Some(KARI))
    );
    assert_eq!(
        row.datasets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["nav/inntekt", "helsenorge/hjemmetjeneste"]
    );
    assert_eq!(row.valid_to.to_string(), VALID_TO);
    let events = fx.store.consent_events(&row.id).await.unwrap();
    assert_eq!(
        events,
        [ConsentEvent {
            kind: EventType::Created,
            at: t(CREATED)
        }]
    );
    assert!(!format!("{row:?}").contains(KARI));
    assert!(!format!("{:?}", request(Some(KARI), None)).contains(KARI));
}

#[tokio::test]
async fn the_subject_accepts_then_revokes() {
    let fx = fixture().await;
    let row = granted(&fx.store, Some(3)).await;
    assert_eq!(row.status, ConsentStatus::Granted);
    let revoked = fx
        .store
        .revoke_consent(&row.id, &person(KARI), t(LATER))
        .await
        .unwrap();
    assert_eq!(revoked.status, ConsentStatus::Revoked);
    assert_eq!(
        event_types(&fx.store, &row.id).await,
        ["created", "accepted", "revoked"]
    );
}

#[tokio::test]
async fn the_subject_rejects() {
    let fx = fixture().await;
    let row = create(&fx.store, Some(KARI), None).await;
    let rejected = fx
        .store
        .reject_consent(&row.id, &person(KARI), t(LATER))
        .await
        .unwrap();
    assert_eq!(rejected.status, ConsentStatus::Rejected);
    assert_eq!(
        event_types(&fx.store, &row.id).await,
        ["created", "rejected"]
    );
}

#[tokio::test]
async fn refused_transitions_change_nothing() {
    let fx = fixture().await;
    let kari = person(KARI);
    let s = &fx.store;
    let refused = |state, action| ConsentError::InvalidTransition { state, action };

    let pending = create(s, Some(KARI), None).await;
    assert_eq!(
        s.revoke_consent(&pending.id, &kari, t(LATER)).await,
        Err(refused(ConsentStatus::Pending, CitizenAction::Revoke))
    );

    let granted = granted(s, None).await;
    for action in [CitizenAction::Accept, CitizenAction::Reject] {
        assert_eq!(
            s.citizen_action(&granted.id, &kari, action, t(LATER)).await,
            Err(refused(ConsentStatus::Granted, action))
        );
    }

    let rejected = create(s, Some(KARI), None).await;
    s.reject_consent(&rejected.id, &kari, t(LATER))
        .await
        .unwrap();
    let revoked = granted_then_revoked(s).await;
    for (row, state) in [
        (&rejected, ConsentStatus::Rejected),
        (&revoked, ConsentStatus::Revoked),
    ] {
        for action in [
            CitizenAction::Accept,
            CitizenAction::Reject,
            CitizenAction::Revoke,
        ] {
            assert_eq!(
                s.citizen_action(&row.id, &kari, action, t(LATER)).await,
                Err(refused(state, action))
            );
        }
    }

    assert_eq!(status(s, &pending.id).await, "pending");
    assert_eq!(status(s, &granted.id).await, "granted");
    assert_eq!(event_types(s, &pending.id).await, ["created"]);
    assert_eq!(event_types(s, &granted.id).await, ["created", "accepted"]);
    assert_eq!(event_types(s, &rejected.id).await, ["created", "rejected"]);
    assert_eq!(
        event_types(s, &revoked.id).await,
        ["created", "accepted", "revoked"]
    );
}

async fn granted_then_revoked(store: &Store) -> ConsentRow {
    let row = granted(store, None).await;
    store
        .revoke_consent(&row.id, &person(KARI), t(LATER))
        .await
        .unwrap()
}

#[tokio::test]
async fn another_citizen_cannot_see_or_touch_a_consent() {
    let fx = fixture().await;
    let ola = person(OLA);
    let pending = create(&fx.store, Some(KARI), None).await;
    let granted = granted(&fx.store, None).await;
    for action in [
        CitizenAction::Accept,
        CitizenAction::Reject,
        CitizenAction::Revoke,
    ] {
        for row in [&pending, &granted] {
            assert_eq!(
                fx.store
                    .citizen_action(&row.id, &ola, action, t(LATER))
                    .await,
                Err(ConsentError::NotFound)
            );
        }
    }
    assert_eq!(
        fx.store
            .accept_consent("no-such-consent", &ola, t(LATER))
            .await,
        Err(ConsentError::NotFound)
    );
    assert_eq!(status(&fx.store, &pending.id).await, "pending");
    assert_eq!(status(&fx.store, &granted.id).await, "granted");
    assert!(fx
        .store
        .consents_by_subject(&ola, t(LATER))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_request_without_subject_becomes_the_answering_citizens() {
    let fx = fixture().await;
    let open = create(&fx.store, None, None).await;
    assert_eq!(open.subject, None);
    let accepted = fx
        .store
        .accept_consent(&open.id, &person(OLA), t(LATER))
        .await
        .unwrap();
    assert_eq!(accepted.subject.as_deref(), Some(OLA));
    // From now on it is Ola's: Kari cannot revoke it.
    assert_eq!(
        fx.store
            .revoke_consent(&open.id, &person(KARI), t(LATER))
            .await,
        Err(ConsentError::NotFound)
    );
    let mine = fx
        .store
        .consents_by_subject(&person(OLA), t(LATER))
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);

    // Rejecting takes the subject too: the rejection is the citizen's answer.
    let open = create(&fx.store, None, None).await;
    let rejected = fx
        .store
        .reject_consent(&open.id, &person(KARI), t(LATER))
        .await
        .unwrap();
    assert_eq!(rejected.subject.as_deref(), Some(KARI));
}

#[tokio::test]
async fn uses_count_up_to_max_uses_each_with_an_event() {
    let fx = fixture().await;
    let s = &fx.store;
    let row = granted(s, Some(3)).await;
    for n in 1..=3 {
        match s.use_consent(&row.id, t(LATER)).await.unwrap() {
            UseOutcome::Used(r) => assert_eq!(r.uses, n),
            UseOutcome::Refused => panic!("use {n} was refused"),
        }
    }
    assert_eq!(
        s.use_consent(&row.id, t(LATER)).await.unwrap(),
        UseOutcome::Refused
    );
    assert_eq!(
        event_types(s, &row.id).await,
        ["created", "accepted", "used", "used", "used"]
    );

    // Without max_uses there is no limit.
    let unlimited = granted(s, None).await;
    for _ in 0..5 {
        assert!(matches!(
            s.use_consent(&unlimited.id, t(LATER)).await.unwrap(),
            UseOutcome::Used(_)
        ));
    }
}

#[tokio::test]
async fn only_a_granted_consent_can_be_used() {
    let fx = fixture().await;
    let s = &fx.store;
    let pending = create(s, Some(KARI), None).await;
    let rejected = create(s, Some(KARI), None).await;
    s.reject_consent(&rejected.id, &person(KARI), t(LATER))
        .await
        .unwrap();
    let revoked = granted_then_revoked(s).await;
    for row in [&pending, &rejected, &revoked] {
        assert_eq!(
            s.use_consent(&row.id, t(LATER)).await.unwrap(),
            UseOutcome::Refused,
            "{}",
            row.status
        );
        assert_eq!(
            s.get_consent_at(&row.id, t(LATER))
                .await
                .unwrap()
                .unwrap()
                .uses,
            0
        );
        assert!(!event_types(s, &row.id).await.contains(&"used"));
    }
    assert_eq!(
        s.use_consent("no-such-consent", t(LATER)).await.unwrap(),
        UseOutcome::Refused
    );
}

#[tokio::test]
async fn a_read_after_valid_to_expires_a_granted_consent_once() {
    let fx = fixture().await;
    let s = &fx.store;
    let row = granted(s, None).await;
    let read = s.get_consent_at(&row.id, t(AFTER)).await.unwrap().unwrap();
    assert_eq!(read.status, ConsentStatus::Expired);
    // A second read finds it expired and writes nothing more.
    s.get_consent_at(&row.id, t(AFTER)).await.unwrap();
    let (_, events) = s
        .get_consent_with_events(&row.id, t(AFTER))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EventType::Created, EventType::Accepted, EventType::Expired]
    );
    // Dated when it expired, not when it was noticed.
    assert_eq!(events[2].at, t(VALID_TO));
    assert_eq!(
        s.revoke_consent(&row.id, &person(KARI), t(AFTER)).await,
        Err(ConsentError::InvalidTransition {
            state: ConsentStatus::Expired,
            action: CitizenAction::Revoke
        })
    );
}

#[tokio::test]
async fn a_use_at_valid_to_is_refused_and_records_the_expiry() {
    let fx = fixture().await;
    let s = &fx.store;
    let row = granted(s, None).await;
    // valid_to itself is already too late.
    assert_eq!(
        s.use_consent(&row.id, t(VALID_TO)).await.unwrap(),
        UseOutcome::Refused
    );
    let sql = format!("SELECT status FROM consents WHERE id = '{}'", row.id);
    let status = crate::test_support::raw_text(&fx.url, &sql).await.unwrap();
    assert_eq!(status, "expired");
    assert_eq!(
        event_types(s, &row.id).await,
        ["created", "accepted", "expired"]
    );
}

#[tokio::test]
async fn a_pending_request_past_valid_to_expires_and_cannot_be_accepted() {
    let fx = fixture().await;
    let s = &fx.store;
    let row = create(s, Some(KARI), None).await;
    assert_eq!(
        s.accept_consent(&row.id, &person(KARI), t(AFTER)).await,
        Err(ConsentError::InvalidTransition {
            state: ConsentStatus::Expired,
            action: CitizenAction::Accept
        })
    );
    assert_eq!(event_types(s, &row.id).await, ["created", "expired"]);
}

#[tokio::test]
async fn lists_expire_what_is_due() {
    let fx = fixture().await;
    let s = &fx.store;
    let a = granted(s, None).await;
    let b = create(s, Some(KARI), None).await;
    let other = create(s, Some(OLA), None).await;
    let mine = s
        .consents_by_subject(&person(KARI), t(AFTER))
        .await
        .unwrap();
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|r| r.status.as_str() == "expired"));
    assert!(mine.iter().any(|r| r.id == a.id) && mine.iter().any(|r| r.id == b.id));
    let asked = s.consents_by_requester(K429, 100, t(LATER)).await.unwrap();
    assert_eq!(asked.len(), 3);
    assert!(asked.iter().any(|r| r.id == other.id));
    assert!(s
        .consents_by_requester("0192:983440002", 100, t(LATER))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.consents_by_requester(K429, 1, t(LATER))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_uses_of_ten_count_exactly_ten() {
    let fx = fixture().await;
    let store = Arc::new(fx.store.clone());
    for round in 0..3 {
        let row = granted(&store, Some(10)).await;
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let store = Arc::clone(&store);
            let id = row.id.clone();
            tasks.push(tokio::spawn(async move {
                store.use_consent(&id, t(LATER)).await
            }));
        }
        let mut used = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                UseOutcome::Used(_) => used += 1,
                UseOutcome::Refused => {}
            }
        }
        assert_eq!(used, 10, "round {round}");
        let (row, events) = store
            .get_consent_with_events(&row.id, t(LATER))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.uses, 10);
        let uses = events.iter().filter(|e| e.kind == EventType::Used).count();
        assert_eq!(uses, 10, "round {round}");
    }
}

#[tokio::test]
async fn a_change_and_its_event_commit_together_or_not_at_all() {
    let fx = fixture().await;
    let s = &fx.store;
    let row = granted(s, Some(5)).await;
    // Make the event insert fail: the state change must roll back with it.
    let sql = if fx.url.starts_with("postgres") {
        "CREATE FUNCTION test_no_events() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'test: event refused'; END; $$; \
         CREATE TRIGGER test_no_events BEFORE INSERT ON consent_events FOR EACH ROW \
         WHEN (NEW.type IN ('revoked', 'used')) EXECUTE FUNCTION test_no_events()"
    } else {
        "CREATE TRIGGER test_no_events BEFORE INSERT ON consent_events \
         WHEN NEW.type IN ('revoked', 'used') \
         BEGIN SELECT RAISE(ABORT, 'test: event refused'); END"
    };
    crate::test_support::raw_exec(&fx.url, sql).await.unwrap();
    let revoke = s.revoke_consent(&row.id, &person(KARI), t(LATER)).await;
    assert!(matches!(revoke, Err(ConsentError::Store(_))), "{revoke:?}");
    assert!(s.use_consent(&row.id, t(LATER)).await.is_err());
    let after = s.get_consent_at(&row.id, t(LATER)).await.unwrap().unwrap();
    assert_eq!((after.status.as_str(), after.uses), ("granted", 0));
    assert_eq!(event_types(s, &row.id).await, ["created", "accepted"]);
}

#[tokio::test]
async fn the_database_refuses_changes_outside_the_lifecycle() {
    let fx = fixture().await;
    let revoked = granted_then_revoked(&fx.store).await;
    let granted = granted(&fx.store, Some(2)).await;
    let refused = [
        format!("UPDATE consents SET status = 'granted' WHERE id = '{}'", revoked.id),
        format!("UPDATE consents SET status = 'pending' WHERE id = '{}'", granted.id),
        format!("UPDATE consents SET uses = uses + 5 WHERE id = '{}'", granted.id),
        format!("UPDATE consents SET uses = uses + 1 WHERE id = '{}'", revoked.id),
        format!("UPDATE consents SET purpose = 'tilsyn' WHERE id = '{}'", granted.id),
        format!("UPDATE consents SET datasets = '[]' WHERE id = '{}'", granted.id),
        format!("UPDATE consents SET valid_to = '2099-01-01T00:00:00.000Z' WHERE id = '{}'", granted.id),
        format!("UPDATE consents SET max_uses = 100 WHERE id = '{}'", granted.id),
        format!("UPDATE consents SET subject = '{OLA}' WHERE id = '{}'", granted.id),
        format!("UPDATE consent_events SET type = 'created' WHERE consent_id = '{}'", granted.id),
        format!("INSERT INTO consent_events (consent_id, seq, type, at) VALUES ('{}', 9, 'accepted', 'x')", revoked.id),
        "INSERT INTO consents (id, requester, datasets, purpose, status, valid_to, created_at, updated_at) \
         VALUES ('x', 'r', '[]', 'p', 'granted', 'v', 'c', 'u')"
            .to_owned(),
    ];
    for sql in refused {
        match crate::test_support::raw_exec(&fx.url, &sql).await {
            Ok(_) => panic!("the database allowed: {sql}"),
            // Refused by a lifecycle trigger, not by a typo in this test.
            Err(e) => assert!(
                e.to_string().contains("consent") && !e.to_string().contains("syntax"),
                "{sql}: {e}"
            ),
        }
    }
    assert_eq!(status(&fx.store, &revoked.id).await, "revoked");
    let g = fx
        .store
        .get_consent_at(&granted.id, t(LATER))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (g.status.as_str(), g.uses, g.purpose.as_str()),
        ("granted", 0, "omsorgsbolig-soknad")
    );
}

// ---- uses taken in the audit batch (AuditLog::append_using_consent) --------

fn decision_under(consent_id: &str, n: usize) -> crate::NewRecord {
    let mut r = crate::NewRecord::new(
        crate::RecordKind::Decision,
        format!("t-{n}"),
        "GET",
        "/data/nav/inntekt",
    );
    r.consent_id = Some(consent_id.to_owned());
    r.decision = Some(crate::Verdict::Allow);
    r
}

fn audit_log(store: &Store) -> crate::AuditLog {
    crate::AuditLog::start(store.clone(), crate::AuditConfig::default()).unwrap()
}

#[tokio::test]
async fn a_decision_under_consent_and_its_use_commit_together() {
    let fx = fixture().await;
    let log = audit_log(&fx.store);
    let row = granted(&fx.store, None).await;
    let receipt = log
        .append_using_consent(decision_under(&row.id, 0))
        .await
        .unwrap();
    assert_eq!(receipt.index, 0);
    let after = fx.store.get_consent(&row.id).await.unwrap().unwrap();
    assert_eq!(after.uses, 1);
    assert_eq!(
        event_types(&fx.store, &row.id).await,
        ["created", "accepted", "used"]
    );
    assert_eq!(fx.store.record_count().await.unwrap(), 1);
    // Counted for metrics once the batch committed.
    assert_eq!(
        counted(&fx.store),
        [("created", 1), ("accepted", 1), ("used", 1)]
    );
}

#[tokio::test]
async fn a_revoked_consent_gives_no_use_and_its_record_is_not_written() {
    let fx = fixture().await;
    let log = audit_log(&fx.store);
    let row = granted(&fx.store, None).await;
    fx.store
        .revoke_consent(&row.id, &person(KARI), t(LATER))
        .await
        .unwrap();
    let refused = log.append_using_consent(decision_under(&row.id, 0)).await;
    assert!(
        matches!(refused, Err(crate::AuditError::ConsentNotUsable)),
        "{refused:?}"
    );
    // A record of another call in the next batch still gets index 0: the log stays dense.
    let other = log.append(decision_under("statutory", 1)).await.unwrap();
    assert_eq!(other.index, 0);
    let after = fx.store.get_consent(&row.id).await.unwrap().unwrap();
    assert_eq!((after.status.as_str(), after.uses), ("revoked", 0));
    assert_eq!(fx.store.record_count().await.unwrap(), 1);
    // A record without a consent cannot ask for a use.
    let mut bare = decision_under("x", 2);
    bare.consent_id = None;
    assert!(matches!(
        log.append_using_consent(bare).await,
        Err(crate::AuditError::ConsentNotUsable)
    ));
}

#[tokio::test]
async fn fifty_parallel_decisions_under_a_consent_of_ten_uses_write_exactly_ten() {
    let fx = fixture().await;
    let log = audit_log(&fx.store);
    for round in 0..3 {
        let row = granted(&fx.store, Some(10)).await;
        let mut tasks = Vec::new();
        for n in 0..50 {
            let log = log.clone();
            let id = row.id.clone();
            tasks.push(tokio::spawn(async move {
                log.append_using_consent(decision_under(&id, n)).await
            }));
        }
        let mut indexes = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(receipt) => indexes.push(receipt.index),
                Err(crate::AuditError::ConsentNotUsable) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        assert_eq!(indexes.len(), 10, "round {round}");
        // The ten written records have ten distinct indexes in a dense log.
        indexes.sort_unstable();
        indexes.dedup();
        assert_eq!(indexes.len(), 10, "round {round}");
        let after = fx.store.get_consent(&row.id).await.unwrap().unwrap();
        assert_eq!(after.uses, 10, "round {round}");
        let count = fx.store.record_count().await.unwrap();
        assert_eq!(count, 10 * (round + 1), "round {round}");
        assert_eq!(indexes.last().copied(), Some(count - 1), "round {round}");
        // One `used` event a use, after its creation and acceptance (the
        // batch writes a consent's uses together: #21).
        let types = event_types(&fx.store, &row.id).await;
        assert_eq!(types[..2], ["created", "accepted"], "round {round}");
        assert_eq!(types[2..], ["used"; 10], "round {round}");
    }
    log.close().await.unwrap();
}

#[tokio::test]
async fn two_consents_interleaved_in_one_batch_each_give_their_own_uses() {
    let fx = fixture().await;
    let log = audit_log(&fx.store);
    let three = granted(&fx.store, Some(3)).await;
    let five = granted(&fx.store, Some(5)).await;
    let tasks: Vec<_> = (0..24)
        .map(|n| {
            let log = log.clone();
            let id = if n % 2 == 0 {
                three.id.clone()
            } else {
                five.id.clone()
            };
            tokio::spawn(async move {
                (
                    id.clone(),
                    log.append_using_consent(decision_under(&id, n)).await,
                )
            })
        })
        .collect();
    let (mut of_three, mut of_five) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (id, Ok(_)) if id == three.id => of_three += 1,
            (_, Ok(_)) => of_five += 1,
            (_, Err(crate::AuditError::ConsentNotUsable)) => {}
            (_, Err(e)) => panic!("{e}"),
        }
    }
    assert_eq!((of_three, of_five), (3, 5));
    for (row, uses) in [(&three, 3), (&five, 5)] {
        let after = fx.store.get_consent(&row.id).await.unwrap().unwrap();
        assert_eq!(after.uses, uses);
        assert_eq!(
            event_types(&fx.store, &row.id).await[2..],
            vec!["used"; uses as usize]
        );
    }
    assert_eq!(fx.store.record_count().await.unwrap(), 8);
    log.close().await.unwrap();
}

#[tokio::test]
async fn parallel_decisions_under_a_frequency_limit_get_the_period_s_uses_and_no_more() {
    let fx = fixture().await;
    let log = audit_log(&fx.store);
    let mut ask = request(Some(KARI), None);
    ask.frequency = Some(crate::Frequency {
        max: 4,
        per: crate::FrequencyPeriod::Day,
    });
    let row = fx.store.create_consent(&ask, t(CREATED)).await.unwrap();
    fx.store
        .accept_consent(&row.id, &person(KARI), t(LATER))
        .await
        .unwrap();
    for wave in 0..2 {
        let tasks: Vec<_> = (0..20)
            .map(|n| {
                let log = log.clone();
                let id = row.id.clone();
                tokio::spawn(async move { log.append_using_consent(decision_under(&id, n)).await })
            })
            .collect();
        let mut written = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => written += 1,
                Err(crate::AuditError::ConsentNotUsable) => {}
                Err(e) => panic!("wave {wave}: {e}"),
            }
        }
        // Four a day: the first wave gets them all, the second none.
        assert_eq!(written, if wave == 0 { 4 } else { 0 }, "wave {wave}");
    }
    let after = fx.store.get_consent(&row.id).await.unwrap().unwrap();
    assert_eq!(after.uses, 4);
    assert_eq!(
        event_types(&fx.store, &row.id).await[2..],
        ["used"; 4],
        "one event a use, none for a refused one"
    );
    assert_eq!(fx.store.record_count().await.unwrap(), 4);
    log.close().await.unwrap();
}

/// The counts the store keeps for metrics, as `(type, count)` for the
/// types that are not zero.
fn counted(store: &Store) -> Vec<(&'static str, u64)> {
    store
        .consent_event_counts()
        .iter()
        .filter(|&(_, n)| n > 0)
        .map(|(kind, n)| (kind.as_str(), n))
        .collect()
}

#[tokio::test]
async fn the_store_counts_every_committed_event_by_type() {
    let fx = fixture().await;
    let s = &fx.store;
    assert_eq!(counted(s), []);
    assert_eq!(
        s.consent_event_counts()
            .iter()
            .map(|(kind, _)| kind.as_str())
            .collect::<Vec<_>>(),
        ["created", "accepted", "rejected", "revoked", "expired", "used", "paused", "resumed"],
        "every type is listed, zeros included"
    );

    // created, accepted, used twice, revoked.
    let one = granted(s, Some(5)).await;
    for _ in 0..2 {
        assert!(matches!(
            s.use_consent(&one.id, t(LATER)).await.unwrap(),
            UseOutcome::Used(_)
        ));
    }
    s.revoke_consent(&one.id, &person(KARI), t(LATER))
        .await
        .unwrap();
    // Refused actions and uses write no event and count nothing.
    assert!(s
        .revoke_consent(&one.id, &person(KARI), t(LATER))
        .await
        .is_err());
    assert!(s
        .accept_consent(&one.id, &person(OLA), t(LATER))
        .await
        .is_err());
    assert_eq!(
        s.use_consent(&one.id, t(LATER)).await.unwrap(),
        UseOutcome::Refused
    );
    // created, rejected.
    let two = create(s, Some(OLA), None).await;
    s.reject_consent(&two.id, &person(OLA), t(LATER))
        .await
        .unwrap();
    // created, then expired by a read after valid_to (once, not per read).
    let three = create(s, Some(KARI), None).await;
    for _ in 0..2 {
        s.get_consent_at(&three.id, t(AFTER)).await.unwrap();
    }
    assert_eq!(
        counted(s),
        [
            ("created", 3),
            ("accepted", 1),
            ("rejected", 1),
            ("revoked", 1),
            ("expired", 1),
            ("used", 2)
        ]
    );
    // The counts agree with what the store wrote, and every clone shares them.
    let mut written = std::collections::BTreeMap::<&str, u64>::new();
    for id in [&one.id, &two.id, &three.id] {
        for kind in event_types(s, id).await {
            *written.entry(kind).or_default() += 1;
        }
    }
    let clone = s.clone();
    for (kind, n) in clone.consent_event_counts().iter() {
        assert_eq!(
            written.get(kind.as_str()).copied().unwrap_or(0),
            n,
            "{kind}"
        );
    }
}

#[tokio::test]
async fn an_event_that_does_not_commit_is_not_counted() {
    let fx = fixture().await;
    let s = &fx.store;
    let row = granted(s, Some(5)).await;
    let before = s.consent_event_counts();
    let sql = if fx.url.starts_with("postgres") {
        "CREATE FUNCTION test_no_used() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'test: event refused'; END; $$; \
         CREATE TRIGGER test_no_used BEFORE INSERT ON consent_events FOR EACH ROW \
         WHEN (NEW.type IN ('revoked', 'used')) EXECUTE FUNCTION test_no_used()"
    } else {
        "CREATE TRIGGER test_no_used BEFORE INSERT ON consent_events \
         WHEN NEW.type IN ('revoked', 'used') \
         BEGIN SELECT RAISE(ABORT, 'test: event refused'); END"
    };
    crate::test_support::raw_exec(&fx.url, sql).await.unwrap();
    assert!(s.use_consent(&row.id, t(LATER)).await.is_err());
    assert!(s
        .revoke_consent(&row.id, &person(KARI), t(LATER))
        .await
        .is_err());
    assert_eq!(s.consent_event_counts(), before);
    assert_eq!(counted(s), [("created", 1), ("accepted", 1)]);
}

/// SPEC 9.3: a representative's decision and who took it commit together.
#[tokio::test]
async fn a_representatives_action_commits_with_its_actor() {
    let f = fixture().await;
    let s = &f.store;
    let row = create(s, Some(KARI), None).await;
    let parent = crate::ActionActor {
        actor: "parent",
        basis: "folkeregisteret:foreldreansvar",
    };
    let accepted = s
        .citizen_action_by(
            &row.id,
            &person(KARI),
            CitizenAction::Accept,
            t(LATER),
            Some(parent),
        )
        .await
        .unwrap();
    assert_eq!(accepted.status, ConsentStatus::Granted);
    assert_eq!(event_types(s, &row.id).await, ["created", "accepted"]);
    let actors = s.event_actors(&row.id).await.unwrap();
    assert_eq!(
        actors,
        [crate::EventActor {
            seq: 1,
            actor: "parent".into(),
            basis: "folkeregisteret:foreldreansvar".into(),
        }]
    );
    // The person's own action afterwards has no actor row.
    s.citizen_action_by(
        &row.id,
        &person(KARI),
        CitizenAction::Revoke,
        t(LATER),
        None,
    )
    .await
    .unwrap();
    assert_eq!(s.event_actors(&row.id).await.unwrap().len(), 1);
}

/// When the actor cannot be written (here: an actor the table refuses), the
/// action is not taken either: no state change, no event, no row.
#[tokio::test]
async fn an_action_whose_actor_cannot_be_written_is_not_taken() {
    let f = fixture().await;
    let s = &f.store;
    let row = create(s, Some(KARI), None).await;
    let refused = crate::ActionActor {
        actor: "neighbour",
        basis: "none",
    };
    let result = s
        .citizen_action_by(
            &row.id,
            &person(KARI),
            CitizenAction::Accept,
            t(LATER),
            Some(refused),
        )
        .await;
    assert!(matches!(result, Err(ConsentError::Store(_))), "{result:?}");
    let now = s.get_consent_at(&row.id, t(LATER)).await.unwrap().unwrap();
    assert_eq!(now.status, ConsentStatus::Pending);
    assert_eq!(event_types(s, &row.id).await, ["created"]);
    assert!(s.event_actors(&row.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_decision_a_block_now_covers_is_not_written_and_takes_no_use() {
    let fx = fixture().await;
    let s = &fx.store;
    let log = audit_log(s);
    let block = |id: &str, consumer: Option<&str>, dataset: Option<&str>| crate::Block {
        id: id.to_owned(),
        consumer: consumer.map(str::to_owned),
        dataset: dataset.map(str::to_owned),
        created_at: String::new(),
    };
    // Written "by another replica": straight into the store.
    s.add_block(
        "subject-k",
        &block("b1", Some("0192:921429002"), None),
        t(LATER),
    )
    .await
    .unwrap();
    s.add_block(
        "subject-d",
        &block("b2", None, Some("nav/inntekt")),
        t(LATER),
    )
    .await
    .unwrap();
    let row = granted(s, Some(5)).await;
    let read = |n: usize, subject: &str, consumer: &str| {
        let mut r = decision_under(&row.id, n);
        r.subject_ref = Some(subject.to_owned());
        r.consumer = Some(consumer.to_owned());
        r.dataset = Some("nav/inntekt".to_owned());
        r
    };
    let checked = |consent_use| crate::Conditions {
        consent_use,
        unblocked: true,
    };
    // All at once, so that they share batches.
    let (consumer_blocked, other_consumer, dataset_blocked, passed, used_blocked) = tokio::join!(
        log.append_on(read(0, "subject-k", "0192:921429002"), checked(false)),
        log.append_on(read(1, "subject-k", "0192:983440002"), checked(false)),
        log.append_on(read(2, "subject-d", "0192:983440002"), checked(false)),
        // Not asked to check (a break-glass call that passed the block).
        log.append_on(
            read(3, "subject-k", "0192:921429002"),
            crate::Conditions::default()
        ),
        log.append_on(read(4, "subject-k", "0192:921429002"), checked(true)),
    );
    assert_eq!(consumer_blocked, Err(crate::AuditError::SubjectBlocked));
    assert!(other_consumer.is_ok(), "{other_consumer:?}");
    assert_eq!(dataset_blocked, Err(crate::AuditError::SubjectBlocked));
    assert!(passed.is_ok(), "{passed:?}");
    assert_eq!(used_blocked, Err(crate::AuditError::SubjectBlocked));
    assert_eq!(s.record_count().await.unwrap(), 2);
    // The blocked decision under consent took no use and wrote no event.
    assert_eq!(s.get_consent(&row.id).await.unwrap().unwrap().uses, 0);
    assert_eq!(event_types(s, &row.id).await, ["created", "accepted"]);
    // Without the block, the same decision is written with its use.
    assert!(s.delete_block("subject-k", "b1").await.unwrap());
    log.append_on(read(5, "subject-k", "0192:921429002"), checked(true))
        .await
        .unwrap();
    assert_eq!(s.get_consent(&row.id).await.unwrap().unwrap().uses, 1);
    log.close().await.unwrap();
}
