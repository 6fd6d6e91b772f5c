//! The batch-size histogram the writer keeps for metrics.
#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn a_batch_falls_in_the_first_bucket_whose_bound_holds_it() {
    let check = |n: u64, want: usize| {
        assert_eq!(BatchSizes::bucket(n), want, "a batch of {n}");
    };
    check(1, 0);
    check(2, 1);
    check(3, 2);
    check(4, 2);
    check(5, 3);
    check(100, 7); // ≤ 128
    check(2048, 11);
    check(2049, 12);
    check(4096, 12);
    // Beyond the last bound: the overflow bucket.
    check(4097, 13);
    check(1 << 40, 13);
    check(u64::MAX, 13);
    for (i, &bound) in BATCH_SIZE_BOUNDS.iter().enumerate() {
        check(bound, i);
    }
}

#[test]
fn the_writer_counts_each_committed_batch_by_size() {
    let counters = Counters::default();
    let time = Timestamp::parse("2030-06-01T08:00:00.123Z").unwrap();
    for n in [1, 1, 2, 3, 4, 5, 4096, 5000] {
        counters.committed(n, time);
    }
    let sizes = counters.batch_sizes();
    let mut want = [0u64; BATCH_SIZE_BOUNDS.len() + 1];
    want[0] = 2; // 1, 1
    want[1] = 1; // 2
    want[2] = 2; // 3, 4
    want[3] = 1; // 5
    want[12] = 1; // 4096
    want[13] = 1; // 5000
    assert_eq!(sizes.counts, want);
    assert_eq!(sizes.total(), 8);
    assert_eq!(counters.batches.load(Ordering::Relaxed), 8);
    assert_eq!(
        counters.records.load(Ordering::Relaxed),
        1 + 1 + 2 + 3 + 4 + 5 + 4096 + 5000
    );
    assert_eq!(counters.last_batch_size.load(Ordering::Relaxed), 5000);
    assert_eq!(counters.max_batch_size.load(Ordering::Relaxed), 5000);
    assert_eq!(
        counters.last_commit_unix_ms.load(Ordering::Relaxed),
        i64::try_from(time.unix_millis()).unwrap()
    );

    let buckets: Vec<_> = sizes.buckets().collect();
    assert_eq!(buckets.len(), 14);
    assert_eq!(buckets[0], (Some(1), 2));
    assert_eq!(buckets[12], (Some(4096), 1));
    assert_eq!(buckets[13], (None, 1));
}

#[test]
fn a_batch_gathers_only_under_load_and_only_up_to_the_last_batch() {
    let config = AuditConfig::default();
    // A lone record (nothing else was queued) commits at once.
    assert!(!Gather::new(&config, 1, 50).another_turn(1));
    // Under load it gathers until it holds as many as the last batch.
    let mut gather = Gather::new(&config, 3, 50);
    assert!(gather.another_turn(3));
    assert!(gather.another_turn(49));
    assert!(!gather.another_turn(50));
    assert!(!gather.another_turn(51));
    // The first batch has no last batch to match.
    assert!(!Gather::new(&config, 3, 0).another_turn(3));
    // At most `gather_turns` turns.
    let two = AuditConfig {
        gather_turns: 2,
        ..AuditConfig::default()
    };
    let mut gather = Gather::new(&two, 3, 50);
    assert!(gather.another_turn(3));
    assert!(gather.another_turn(4));
    assert!(!gather.another_turn(5));
    // Zero turns it off.
    let off = AuditConfig {
        gather_turns: 0,
        ..AuditConfig::default()
    };
    assert!(!Gather::new(&off, 3, 50).another_turn(3));
}
