//! How Bru treats a provider that fails: a concurrency limit, retries with
//! jittered exponential backoff under a retry budget, and a circuit breaker.
//!
//! One [`Resilience`] belongs to one provider. Clones share its state, so an
//! [`crate::Upstream`] may be cloned freely.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The sliding window of the retry budget.
const BUDGET_WINDOW_SECS: u64 = 10;
/// Retries always allowed per window, so a quiet provider can still be
/// retried (10 % of three calls would be none).
const BUDGET_MIN_RETRIES: u32 = 10;

/// The settings of one provider, from `[upstream.X]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResilienceConfig {
    /// Calls in flight to this provider at most, response bodies included;
    /// 0 means no limit. A call over it waits up to the request timeout for
    /// a place, then fails with [`crate::UpstreamError::Busy`].
    pub max_concurrency: usize,
    /// Extra attempts after the first, for idempotent methods with a
    /// replayable body, and only after a connect error, a connect timeout
    /// or a timeout before the response head.
    pub retries: u32,
    /// Retries over the last 10 s may be at most this percentage of the
    /// calls in the same window (with a floor of 10 retries per window).
    pub retry_budget_percent: u32,
    /// First backoff; doubles with each retry, with jitter.
    pub backoff_base: Duration,
    /// The longest backoff.
    pub backoff_max: Duration,
    /// Consecutive failed attempts that open the breaker; 0 turns it off.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before it lets one trial call through.
    pub breaker_open: Duration,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        ResilienceConfig {
            max_concurrency: 0,
            retries: 0,
            retry_budget_percent: 10,
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            breaker_failures: 5,
            breaker_open: Duration::from_secs(10),
        }
    }
}

/// The state of a provider's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused at once.
    Open,
    /// One trial call is in flight; its result closes or re-opens the breaker.
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// The resilience state of one provider. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Resilience {
    config: ResilienceConfig,
    shared: Arc<Shared>,
}

struct Shared {
    semaphore: Option<Arc<Semaphore>>,
    breaker: Mutex<Breaker>,
    budget: Mutex<Budget>,
}

impl std::fmt::Debug for Resilience {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resilience")
            .field("config", &self.config)
            .field("breaker", &self.breaker_state())
            .finish()
    }
}

impl Default for Resilience {
    fn default() -> Self {
        Resilience::new(ResilienceConfig::default())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded state stays consistent at every step; a panic elsewhere
    // does not make it unusable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Resilience {
    pub fn new(config: ResilienceConfig) -> Resilience {
        let semaphore = match config.max_concurrency {
            0 => None,
            n => Some(Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS)))),
        };
        Resilience {
            shared: Arc::new(Shared {
                semaphore,
                breaker: Mutex::new(Breaker::Closed { failures: 0 }),
                budget: Mutex::new(Budget::new()),
            }),
            config,
        }
    }

    pub fn config(&self) -> &ResilienceConfig {
        &self.config
    }

    /// The breaker's state now (an open breaker whose interval has passed
    /// reads `Open` until a call tries it).
    pub fn breaker_state(&self) -> BreakerState {
        match *lock(&self.shared.breaker) {
            Breaker::Closed { .. } => BreakerState::Closed,
            Breaker::Open { .. } => BreakerState::Open,
            Breaker::HalfOpen => BreakerState::HalfOpen,
        }
    }

    /// Lets a call through the breaker, or says how long it stays open.
    pub(crate) fn admit(&self) -> Result<Ticket, Duration> {
        if self.config.breaker_failures == 0 {
            return Ok(self.ticket(false));
        }
        let mut breaker = lock(&self.shared.breaker);
        match *breaker {
            Breaker::Closed { .. } => Ok(self.ticket(false)),
            Breaker::Open { until } => {
                let now = Instant::now();
                if now < until {
                    Err(until - now)
                } else {
                    *breaker = Breaker::HalfOpen;
                    Ok(self.ticket(true))
                }
            }
            // The trial call decides; everyone else waits for it.
            Breaker::HalfOpen => Err(self.config.breaker_open),
        }
    }

    fn ticket(&self, trial: bool) -> Ticket {
        Ticket {
            resilience: self.clone(),
            trial,
            resolved: false,
        }
    }

    /// Waits up to `wait` for a place among the calls in flight; `Ok(None)`
    /// when there is no limit.
    pub(crate) async fn acquire(&self, wait: Duration) -> Result<Option<OwnedSemaphorePermit>, ()> {
        let Some(semaphore) = &self.shared.semaphore else {
            return Ok(None);
        };
        // A free place needs no timer (a clock read and a timer entry a call).
        if let Ok(permit) = Arc::clone(semaphore).try_acquire_owned() {
            return Ok(Some(permit));
        }
        match tokio::time::timeout(wait, Arc::clone(semaphore).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            // Never closed; treat it like a full semaphore all the same.
            Ok(Err(_)) | Err(_) => Err(()),
        }
    }

    /// Counts one call in the retry budget's window. With no retries
    /// configured (the default) nothing reads the budget: no lock, no clock.
    pub(crate) fn record_call(&self) {
        if self.config.retries == 0 {
            return;
        }
        lock(&self.shared.budget).record(Instant::now(), false);
    }

    /// Takes one retry from the budget, if it has one left.
    pub(crate) fn try_retry(&self) -> bool {
        let mut budget = lock(&self.shared.budget);
        let now = Instant::now();
        let (calls, retries) = budget.totals(now);
        let allowed = (u64::from(calls) * u64::from(self.config.retry_budget_percent) / 100)
            .max(u64::from(BUDGET_MIN_RETRIES));
        if u64::from(retries) >= allowed {
            return false;
        }
        budget.record(now, true);
        true
    }

    /// The backoff before retry number `retry` (1 for the first retry):
    /// half of `base · 2^(retry-1)` (at most `backoff_max`) plus a random
    /// part of the other half, so retries from many calls spread out.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(20);
        let cap = self
            .config
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.config.backoff_max);
        let half = cap / 2;
        half + jitter(cap - half)
    }

    fn resolve(&self, trial: bool, result: Outcome) {
        if self.config.breaker_failures == 0 {
            return;
        }
        let mut breaker = lock(&self.shared.breaker);
        // The clock only when the breaker opens, not on every success.
        let opened = || Breaker::Open {
            until: Instant::now() + self.config.breaker_open,
        };
        *breaker = match (*breaker, result) {
            // Results of calls let in before the breaker opened change nothing.
            (Breaker::Open { until }, _) => Breaker::Open { until },
            (Breaker::HalfOpen, _) if !trial => Breaker::HalfOpen,
            (Breaker::HalfOpen, Outcome::Success) => Breaker::Closed { failures: 0 },
            (Breaker::HalfOpen, Outcome::Failure) => opened(),
            // The trial told nothing (e.g. the caller went away): the next call tries.
            (Breaker::HalfOpen, Outcome::Neutral) => Breaker::Open {
                until: Instant::now(),
            },
            (Breaker::Closed { .. }, Outcome::Success) => Breaker::Closed { failures: 0 },
            (Breaker::Closed { failures }, Outcome::Failure) => {
                let failures = failures.saturating_add(1);
                if failures >= self.config.breaker_failures {
                    opened()
                } else {
                    Breaker::Closed { failures }
                }
            }
            (closed @ Breaker::Closed { .. }, Outcome::Neutral) => closed,
        };
    }
}

#[derive(Debug, Clone, Copy)]
enum Breaker {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    Neutral,
}

/// A call let through the breaker. Report each attempt's result on it; a
/// trial call dropped without a result lets the next call try instead.
pub(crate) struct Ticket {
    resilience: Resilience,
    trial: bool,
    resolved: bool,
}

impl Ticket {
    /// Whether this is the one trial call of a half-open breaker (it is not retried).
    pub(crate) fn is_trial(&self) -> bool {
        self.trial
    }

    pub(crate) fn success(&mut self) {
        self.resolved = true;
        self.resilience.resolve(self.trial, Outcome::Success);
    }

    pub(crate) fn failure(&mut self) {
        self.resolved = true;
        self.resilience.resolve(self.trial, Outcome::Failure);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.trial && !self.resolved {
            self.resilience.resolve(true, Outcome::Neutral);
        }
    }
}

/// Calls and retries per second over the last [`BUDGET_WINDOW_SECS`].
struct Budget {
    start: Instant,
    /// Seconds since `start` of the newest bucket.
    head: u64,
    buckets: [(u32, u32); BUDGET_WINDOW_SECS as usize],
}

impl Budget {
    fn new() -> Budget {
        Budget {
            start: Instant::now(),
            head: 0,
            buckets: [(0, 0); BUDGET_WINDOW_SECS as usize],
        }
    }

    /// Moves the window to `now`, clearing the seconds that passed.
    fn advance(&mut self, now: Instant) -> usize {
        let sec = now.saturating_duration_since(self.start).as_secs();
        if sec > self.head {
            let passed = (sec - self.head).min(BUDGET_WINDOW_SECS);
            for i in 1..=passed {
                self.buckets[((self.head + i) % BUDGET_WINDOW_SECS) as usize] = (0, 0);
            }
            self.head = sec;
        }
        (self.head % BUDGET_WINDOW_SECS) as usize
    }

    fn record(&mut self, now: Instant, retry: bool) {
        let i = self.advance(now);
        let bucket = &mut self.buckets[i];
        if retry {
            bucket.1 = bucket.1.saturating_add(1);
        } else {
            bucket.0 = bucket.0.saturating_add(1);
        }
    }

    fn totals(&mut self, now: Instant) -> (u32, u32) {
        self.advance(now);
        self.buckets.iter().fold((0u32, 0u32), |(c, r), (bc, br)| {
            (c.saturating_add(*bc), r.saturating_add(*br))
        })
    }
}

/// A random duration in `0..=max`. Not cryptographic: it only spreads retries.
fn jitter(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(nanos);
    Duration::from_nanos(hasher.finish() % nanos.saturating_add(1))
}

#[cfg(test)]
mod tests;
