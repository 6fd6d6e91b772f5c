//! Token buckets: per consumer and dataset from policy, and per client
//! address for calls that fail authentication (so that nobody can make Bru
//! verify signatures for free, as fast as they can send).
//!
//! A rate limit is a resource guard like the size limits, checked before the
//! decision; who may do what is still decided by `policy::decide` alone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use policy::RateLimit;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(limit: RateLimit, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(limit.burst),
            last: now,
        }
    }

    fn refill(&mut self, limit: RateLimit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens =
            (self.tokens + elapsed * f64::from(limit.per_second)).min(f64::from(limit.burst));
        self.last = now;
    }

    /// Takes one token, or says how many whole seconds until one is there.
    fn take(&mut self, limit: RateLimit, now: Instant) -> Result<(), u64> {
        self.refill(limit, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / f64::from(limit.per_second.max(1));
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

/// Client addresses tracked at most; beyond it, idle (refilled) buckets go first.
const MAX_ADDRESSES: usize = 100_000;

pub struct RateLimiter {
    /// (consumer org number, `provider/dataset`) → bucket.
    consumers: Mutex<HashMap<(String, String), Bucket>>,
    addresses: Mutex<HashMap<IpAddr, Bucket>>,
    unauthenticated: RateLimit,
}

impl RateLimiter {
    pub fn new(unauthenticated: RateLimit) -> RateLimiter {
        RateLimiter {
            consumers: Mutex::new(HashMap::new()),
            addresses: Mutex::new(HashMap::new()),
            unauthenticated,
        }
    }

    /// One call of `consumer` to `dataset` under `limit`; `Err(retry_after_s)` when over it.
    pub fn consumer_call(
        &self,
        consumer: &str,
        dataset: &str,
        limit: RateLimit,
    ) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(mut buckets) = self.consumers.lock() else {
            return Ok(());
        };
        // The key set is bounded by the policy's consumers × datasets.
        let bucket = buckets
            .entry((consumer.to_owned(), dataset.to_owned()))
            .or_insert_with(|| Bucket::full(limit, now));
        bucket.take(limit, now)
    }

    /// Whether `address` may still fail authentication; call before verifying.
    pub fn unauthenticated_allowed(&self, address: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(mut buckets) = self.addresses.lock() else {
            return Ok(());
        };
        match buckets.get_mut(&address) {
            Some(bucket) => {
                bucket.refill(self.unauthenticated, now);
                if bucket.tokens >= 1.0 {
                    Ok(())
                } else {
                    let wait =
                        (1.0 - bucket.tokens) / f64::from(self.unauthenticated.per_second.max(1));
                    Err(wait.ceil().max(1.0) as u64)
                }
            }
            None => Ok(()),
        }
    }

    /// Counts one failed authentication from `address`.
    pub fn unauthenticated_failed(&self, address: IpAddr) {
        let now = Instant::now();
        let limit = self.unauthenticated;
        let Ok(mut buckets) = self.addresses.lock() else {
            return;
        };
        if buckets.len() >= MAX_ADDRESSES && !buckets.contains_key(&address) {
            buckets.retain(|_, b| {
                b.refill(limit, now);
                b.tokens < f64::from(limit.burst)
            });
        }
        let bucket = buckets
            .entry(address)
            .or_insert_with(|| Bucket::full(limit, now));
        let _ = bucket.take(limit, now);
    }
}

#[cfg(test)]
mod tests;
