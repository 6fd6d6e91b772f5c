#![allow(clippy::unwrap_used)]

use super::*;

fn breaker(failures: u32, open: Duration) -> Resilience {
    Resilience::new(ResilienceConfig {
        breaker_failures: failures,
        breaker_open: open,
        ..ResilienceConfig::default()
    })
}

#[test]
fn breaker_opens_after_consecutive_failures_only() {
    let r = breaker(3, Duration::from_secs(60));
    for _ in 0..2 {
        r.admit().unwrap().failure();
    }
    // A success in between starts the count again.
    r.admit().unwrap().success();
    for _ in 0..2 {
        r.admit().unwrap().failure();
    }
    assert_eq!(r.breaker_state(), BreakerState::Closed);
    r.admit().unwrap().failure();
    assert_eq!(r.breaker_state(), BreakerState::Open);
    let wait = r.admit().err().unwrap();
    assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50));
}

#[test]
fn half_open_lets_one_trial_through_and_closes_on_success() {
    let r = breaker(1, Duration::ZERO);
    r.admit().unwrap().failure();
    assert_eq!(r.breaker_state(), BreakerState::Open);
    let mut trial = r.admit().unwrap();
    assert!(trial.is_trial());
    assert_eq!(r.breaker_state(), BreakerState::HalfOpen);
    // Everyone else is refused while the trial runs.
    assert!(r.admit().is_err());
    trial.success();
    assert_eq!(r.breaker_state(), BreakerState::Closed);
    assert!(!r.admit().unwrap().is_trial());
}

#[test]
fn failed_trial_opens_again() {
    let r = breaker(1, Duration::from_millis(0));
    r.admit().unwrap().failure();
    let mut trial = r.admit().unwrap();
    trial.failure();
    assert_eq!(r.breaker_state(), BreakerState::Open);
}

#[test]
fn abandoned_trial_lets_the_next_call_try() {
    let r = breaker(1, Duration::ZERO);
    r.admit().unwrap().failure();
    drop(r.admit().unwrap());
    assert_eq!(r.breaker_state(), BreakerState::Open);
    assert!(r.admit().unwrap().is_trial());
}

#[test]
fn results_of_older_calls_do_not_move_an_open_breaker() {
    let r = breaker(1, Duration::from_secs(60));
    let mut early = r.admit().unwrap();
    r.admit().unwrap().failure();
    early.success();
    assert_eq!(r.breaker_state(), BreakerState::Open);
}

#[test]
fn zero_failures_turns_the_breaker_off() {
    let r = breaker(0, Duration::from_secs(60));
    for _ in 0..100 {
        r.admit().unwrap().failure();
    }
    assert_eq!(r.breaker_state(), BreakerState::Closed);
}

#[test]
fn retry_budget_has_a_floor_and_a_percentage() {
    // The budget counts calls only where a call may be retried.
    let r = Resilience::new(ResilienceConfig {
        retries: 2,
        retry_budget_percent: 10,
        ..ResilienceConfig::default()
    });
    // No calls at all: the floor still allows some retries.
    let mut granted = 0;
    while r.try_retry() {
        granted += 1;
        assert!(granted <= 100, "the budget never runs out");
    }
    assert_eq!(granted, BUDGET_MIN_RETRIES);
    // 500 calls allow 10 % = 50 retries in the window, 40 more than taken.
    for _ in 0..500 {
        r.record_call();
    }
    let mut more = 0;
    while r.try_retry() {
        more += 1;
        assert!(more <= 100);
    }
    assert_eq!(granted + more, 50);
}

#[test]
fn budget_window_forgets_old_seconds() {
    let mut b = Budget::new();
    let t0 = b.start;
    b.record(t0, true);
    b.record(t0 + Duration::from_secs(3), false);
    assert_eq!(b.totals(t0 + Duration::from_secs(9)), (1, 1));
    assert_eq!(b.totals(t0 + Duration::from_secs(10)), (1, 0));
    assert_eq!(b.totals(t0 + Duration::from_secs(100)), (0, 0));
}

#[test]
fn backoff_grows_with_jitter_and_a_cap() {
    let r = Resilience::new(ResilienceConfig {
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(1000),
        ..ResilienceConfig::default()
    });
    for _ in 0..50 {
        let first = r.backoff(1);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let third = r.backoff(3);
        assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
        let late = r.backoff(30);
        assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1000));
    }
}

#[tokio::test]
async fn concurrency_limit_waits_then_gives_up() {
    let r = Resilience::new(ResilienceConfig {
        max_concurrency: 1,
        ..ResilienceConfig::default()
    });
    let held = r.acquire(Duration::from_secs(1)).await.unwrap();
    assert!(held.is_some());
    assert!(r.acquire(Duration::from_millis(20)).await.is_err());
    drop(held);
    assert!(r
        .acquire(Duration::from_millis(20))
        .await
        .unwrap()
        .is_some());
    let unlimited = Resilience::default();
    assert!(unlimited.acquire(Duration::ZERO).await.unwrap().is_none());
}
