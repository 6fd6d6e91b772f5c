#![allow(clippy::unwrap_used)]

use super::*;

const LIMIT: RateLimit = RateLimit {
    per_second: 10,
    burst: 5,
};

#[test]
fn a_burst_then_refusals_with_retry_after() {
    let limiter = RateLimiter::new(LIMIT);
    for _ in 0..5 {
        assert!(limiter
            .consumer_call("921429002", "nav/inntekt", LIMIT)
            .is_ok());
    }
    assert_eq!(
        limiter.consumer_call("921429002", "nav/inntekt", LIMIT),
        Err(1)
    );
    // Another dataset and another consumer have their own buckets.
    assert!(limiter
        .consumer_call("921429002", "helsenorge/hjemmetjeneste", LIMIT)
        .is_ok());
    assert!(limiter
        .consumer_call("983440002", "nav/inntekt", LIMIT)
        .is_ok());
}

#[test]
fn buckets_refill_with_time() {
    let mut bucket = Bucket::full(LIMIT, Instant::now());
    let start = bucket.last;
    for _ in 0..5 {
        assert!(bucket.take(LIMIT, start).is_ok());
    }
    assert!(bucket.take(LIMIT, start).is_err());
    assert!(bucket
        .take(LIMIT, start + std::time::Duration::from_millis(150))
        .is_ok());
}

#[test]
fn failed_authentications_are_limited_per_address() {
    let limiter = RateLimiter::new(LIMIT);
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b: IpAddr = "192.0.2.2".parse().unwrap();
    for _ in 0..5 {
        assert!(limiter.unauthenticated_allowed(a).is_ok());
        limiter.unauthenticated_failed(a);
    }
    assert!(limiter.unauthenticated_allowed(a).is_err());
    assert!(limiter.unauthenticated_allowed(b).is_ok());
}
