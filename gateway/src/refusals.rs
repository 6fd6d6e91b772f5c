//! Refusals that cost nothing to send, counted instead of recorded one by
//! one: a call without a valid token, or over a rate limit, costs the sender
//! a line of text and Bru a permanent Merkle leaf. Recorded one by one, one
//! client grew the log by about 2 MB/s (issue 15).
//!
//! The first such refusal from a source (per code, dataset and consumer) is
//! recorded as every call is, before it is answered. Further ones within
//! the interval are counted, and every [`INTERVAL`] one record stands for
//! them with `count` = how many; their answers carry that record's transfer
//! id. A source quiet for a whole interval starts over with a record of its
//! own. So the log still says how many calls were refused, of what, when
//! (within an interval) and from how many sources, at a cost of at most two
//! records per source, code and dataset per interval, whatever the rate.
//!
//! The source is the client address (an IPv6 address by its /64, which one
//! client holds whole); it lives in memory for an interval and is never
//! written: an address is personal data, and what the log needs is the
//! count. Many sources (a botnet, addresses rotated within a /48) are
//! bounded too: at most [`FRESH`] new sources an interval get a record of
//! their own and at most [`CAPACITY`] are tracked; further ones share one
//! bucket (source unknown). So the log grows by at most about
//! `FRESH + CAPACITY` small records per interval whatever the senders do,
//! while the count stays whole.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use consent_db::{NewRecord, Verdict};

/// How often counted refusals are written: short enough that the log is
/// minutes-fresh for a security team, long enough that a flood costs about
/// one record per source every few seconds.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Sources tracked at once; beyond it they share one bucket.
pub const CAPACITY: usize = 1_000;

/// New sources per interval whose first refusal is recorded at once;
/// beyond it they share one bucket until the next interval.
pub const FRESH: usize = 100;

/// What the pipeline does with a refusal.
#[derive(Debug, PartialEq, Eq)]
pub enum Counted {
    /// Record it now, as any call.
    RecordNow,
    /// Counted into the record with this transfer id, written at the end of
    /// the interval.
    Into(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    source: Option<IpAddr>,
    code: Option<String>,
    consumer: Option<String>,
    path: String,
    kind: &'static str,
}

struct Entry {
    /// The record the counted refusals will be written as, and how many.
    pending: Option<(NewRecord, u64)>,
}

#[derive(Default)]
pub struct RefusalCounter {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Key, Entry>,
    /// New sources recorded at once in this interval.
    fresh: usize,
}

/// Whether a record is of a refusal that cost its sender nothing: refused
/// before a token was verified, or over a rate limit.
pub fn countable(record: &NewRecord) -> bool {
    record.decision == Some(Verdict::Deny)
        && (record.consumer.is_none() || record.code.as_deref() == Some("rate_limited"))
}

/// One client's addresses count as one source: an IPv6 client holds a /64.
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

/// `/data/{provider}/{dataset}` of a recorded path (or what there is of it).
fn dataset_prefix(path: &str) -> &str {
    match path.match_indices('/').nth(3) {
        Some((end, _)) => &path[..end],
        None => path,
    }
}

impl RefusalCounter {
    /// Counts a refusal ([`countable`]) from `source`, or says to record it now.
    pub fn count(&self, source: Option<IpAddr>, record: &NewRecord) -> Counted {
        if !countable(record) {
            return Counted::RecordNow;
        }
        let mut key = Key {
            source: source.map(source_of),
            code: record.code.clone(),
            consumer: record.consumer.clone(),
            path: dataset_prefix(&record.path).to_owned(),
            kind: record.kind.as_str(),
        };
        let Ok(mut state) = self.state.lock() else {
            return Counted::RecordNow;
        };
        if !state.entries.contains_key(&key) {
            if state.entries.len() < CAPACITY && state.fresh < FRESH && key.source.is_some() {
                state.fresh += 1;
                state.entries.insert(key, Entry { pending: None });
                return Counted::RecordNow;
            }
            // Too many sources (or no address known): the shared bucket counts it.
            key.source = None;
        }
        let entry = state.entries.entry(key).or_insert(Entry { pending: None });
        let (pending, count) = entry.pending.get_or_insert_with(|| {
            let mut r = record.clone();
            r.transfer_id = crate::transfer_id::new();
            r.duration_ms = None;
            // The calls counted may differ past the dataset; the record
            // says only what they share.
            r.path = dataset_prefix(&r.path).to_owned();
            (r, 0)
        });
        *count += 1;
        Counted::Into(pending.transfer_id.clone())
    }

    /// The records of everything counted since the last call, each with its
    /// `count`; sources without any are forgotten.
    pub fn take(&self) -> Vec<NewRecord> {
        let Ok(mut state) = self.state.lock() else {
            return Vec::new();
        };
        state.fresh = 0;
        let mut out = Vec::new();
        state.entries.retain(|_, entry| match entry.pending.take() {
            Some((mut record, count)) => {
                record.count = Some(count);
                out.push(record);
                true
            }
            None => false,
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use consent_db::RecordKind;

    fn refusal(code: &str) -> NewRecord {
        let mut r = NewRecord::new(
            RecordKind::Decision,
            "t",
            "GET",
            "/data/k429/sosialtjeneste",
        );
        r.decision = Some(Verdict::Deny);
        r.code = Some(code.into());
        r
    }

    #[test]
    fn the_first_is_recorded_the_rest_counted_into_one_record() {
        let counter = RefusalCounter::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap_or(IpAddr::from([0; 4]));
        let r = refusal("missing_token");
        assert_eq!(counter.count(Some(ip), &r), Counted::RecordNow);
        let ids: Vec<Counted> = (0..100).map(|_| counter.count(Some(ip), &r)).collect();
        let Counted::Into(id) = &ids[0] else {
            panic!("counted: {ids:?}");
        };
        assert!(ids.iter().all(|c| c == &Counted::Into(id.clone())));
        let records = counter.take();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].count, Some(100));
        assert_eq!(&records[0].transfer_id, id);
        // The source is still known for one more interval, then forgotten.
        assert!(matches!(counter.count(Some(ip), &r), Counted::Into(_)));
        assert_eq!(counter.take().len(), 1);
        assert!(counter.take().is_empty());
        assert_eq!(counter.count(Some(ip), &r), Counted::RecordNow);
    }

    #[test]
    fn an_authenticated_refusal_is_recorded_unless_over_a_rate() {
        let counter = RefusalCounter::default();
        let ip: IpAddr = "2001:db8::1".parse().unwrap_or(IpAddr::from([0; 4]));
        let mut r = refusal("consumer_not_allowed");
        r.consumer = Some("0192:971000007".into());
        for _ in 0..3 {
            assert_eq!(counter.count(Some(ip), &r), Counted::RecordNow);
        }
        r.code = Some("rate_limited".into());
        assert_eq!(counter.count(Some(ip), &r), Counted::RecordNow);
        // Another address in the same /64 is the same source.
        let same: IpAddr = "2001:db8::ffff".parse().unwrap_or(IpAddr::from([0; 4]));
        assert!(matches!(counter.count(Some(same), &r), Counted::Into(_)));
    }

    #[test]
    fn counted_records_keep_the_dataset_only() {
        assert_eq!(dataset_prefix("/data/k429/sak/x/y"), "/data/k429/sak");
        assert_eq!(dataset_prefix("/data/k429/sak"), "/data/k429/sak");
        assert_eq!(dataset_prefix("/data/"), "/data/");
    }

    fn ip(i: usize) -> IpAddr {
        IpAddr::from(u32::try_from(i).unwrap_or(u32::MAX).to_be_bytes())
    }

    #[test]
    fn only_so_many_new_sources_an_interval_get_a_record_of_their_own() {
        let counter = RefusalCounter::default();
        let r = refusal("missing_token");
        for i in 0..FRESH {
            assert_eq!(counter.count(Some(ip(i)), &r), Counted::RecordNow);
        }
        for i in FRESH..FRESH + 50 {
            assert!(matches!(counter.count(Some(ip(i)), &r), Counted::Into(_)));
        }
        let records = counter.take();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].count, Some(50));
        // The next interval has room again.
        assert_eq!(counter.count(Some(ip(100_000)), &r), Counted::RecordNow);
    }

    #[test]
    fn past_capacity_sources_share_one_bucket() {
        let counter = RefusalCounter::default();
        let r = refusal("missing_token");
        for round in 0..CAPACITY / FRESH {
            for j in 0..FRESH {
                let source = Some(ip(round * FRESH + j));
                assert_eq!(counter.count(source, &r), Counted::RecordNow);
            }
            // Every tracked source keeps sending, so none is forgotten.
            for k in 0..(round + 1) * FRESH {
                assert!(matches!(counter.count(Some(ip(k)), &r), Counted::Into(_)));
            }
            assert_eq!(counter.take().len(), (round + 1) * FRESH);
        }
        // CAPACITY sources tracked: a new one shares the bucket.
        assert!(matches!(
            counter.count(Some(ip(1_000_000)), &r),
            Counted::Into(_)
        ));
    }
}
