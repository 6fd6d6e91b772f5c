//! Delayed disclosure in the store (SPEC 10): a record of a consumer rule
//! with `disclosure_delay_days` is in the log at once (the audit view), and
//! in the citizen's view only from its time + the delay, with its original
//! time. Both backends (`BRU_TEST_STORE=postgres`).
#![allow(clippy::unwrap_used)]

mod support;

use consent_db::{
    AuditConfig, AuditLog, NewRecord, RecordFilter, RecordKind, Store, StoreConfig, Timestamp,
    Verdict,
};

const KARI: &str = "kari-pseudonym-0123456789abcdef";
const OLA: &str = "ola-pseudonym-0123456789abcdef";

fn record(kind: RecordKind, transfer: &str, subject: &str, delay: Option<u32>) -> NewRecord {
    let mut r = NewRecord::new(kind, transfer, "GET", "/data/k429/sosialtjeneste");
    r.consumer = Some("0192:974760002".into());
    r.provider = Some("k429".into());
    r.dataset = Some("k429/sosialtjeneste".into());
    r.subject_ref = Some(subject.into());
    r.decision = (kind == RecordKind::Decision).then_some(Verdict::Allow);
    r.disclosure_delay_days = delay;
    r
}

fn at(t: Timestamp, days: i64, seconds: i64) -> Timestamp {
    Timestamp::from_datetime(
        t.as_datetime() + time::Duration::days(days) + time::Duration::seconds(seconds),
    )
}

#[tokio::test]
async fn a_delayed_record_reaches_the_citizen_only_after_its_delay_with_its_own_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(&support::test_url(dir.path()), &StoreConfig::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();

    let plain = log
        .append(record(RecordKind::Decision, "t-plain", KARI, None))
        .await
        .unwrap();
    let police = log
        .append(record(RecordKind::Decision, "t-police", KARI, Some(30)))
        .await
        .unwrap();
    let outcome = log
        .append(record(RecordKind::Outcome, "t-police", KARI, Some(30)))
        .await
        .unwrap();
    let olas = log
        .append(record(RecordKind::Decision, "t-ola", OLA, None))
        .await
        .unwrap();

    let seen = |records: Vec<consent_db::AuditRecord>| -> Vec<(String, RecordKind)> {
        records
            .into_iter()
            .map(|r| (r.transfer_id, r.kind))
            .collect()
    };
    let decisions = Some(RecordKind::Decision);

    // Now, and a second before the delay ends: only the undelayed record.
    for now in [police.time, at(police.time, 30, -1)] {
        let got = store
            .citizen_records_as_of(KARI, decisions, None, 100, now)
            .await
            .unwrap();
        assert_eq!(seen(got), [("t-plain".to_owned(), RecordKind::Decision)]);
        assert!(store
            .citizen_record_as_of(police.index, KARI, now)
            .await
            .unwrap()
            .is_none());
        assert!(store
            .citizen_record_as_of(plain.index, KARI, now)
            .await
            .unwrap()
            .is_some());
    }
    // The real clock (a test build without the skew): still hidden.
    assert!(store
        .citizen_record(police.index, KARI)
        .await
        .unwrap()
        .is_none());

    // The audit view has it at once.
    let audit = store
        .records(&RecordFilter {
            subject_ref: Some(KARI.into()),
            ..RecordFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 3);
    assert_eq!(audit[1].disclosure_delay_days, Some(30));

    // From time + 30 days on: shown, with its original time.
    for now in [at(police.time, 30, 0), at(police.time, 400, 0)] {
        let got = store
            .citizen_records_as_of(KARI, decisions, None, 100, now)
            .await
            .unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[1].transfer_id, "t-police");
        assert_eq!(got[1].time, police.time);
        assert_eq!(got[1].disclosure_delay_days, Some(30));
        let one = store
            .citizen_record_as_of(police.index, KARI, now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(one.time, police.time);
        // Every kind, when asked: the outcome too, from its own time + 30 days.
        let all = store
            .citizen_records_as_of(KARI, None, None, 100, now)
            .await
            .unwrap();
        let outcome_disclosed = now >= at(outcome.time, 30, 0);
        assert_eq!(all.len(), if outcome_disclosed { 3 } else { 2 }, "{all:?}");
        // Paging: after the first, at most one.
        let page = store
            .citizen_records_as_of(KARI, decisions, Some(plain.index), 1, now)
            .await
            .unwrap();
        assert_eq!(seen(page), [("t-police".to_owned(), RecordKind::Decision)]);
    }

    // Never someone else's.
    let later = at(police.time, 400, 0);
    assert!(store
        .citizen_record_as_of(olas.index, KARI, later)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        seen(
            store
                .citizen_records_as_of(OLA, None, None, 100, later)
                .await
                .unwrap()
        ),
        [("t-ola".to_owned(), RecordKind::Decision)]
    );
    log.close().await.unwrap();
}
