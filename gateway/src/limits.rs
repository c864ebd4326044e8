//! Abuse limits on the JSON API: a token bucket per client address and one per bank
//! (`gateway.rate_limit`). An empty bucket is 429 RESOURCE_EXHAUSTED with Retry-After. Buckets
//! live in this replica's memory; idle ones are dropped so the maps stay small.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use essentials_runtime::settings::RateLimitSettings;
use essentials_runtime::{Code, ServiceError};
use uuid::Uuid;

/// Buckets untouched this long are full again anyway: forgotten.
const IDLE: Duration = Duration::from_secs(300);
/// How often a map is swept for idle buckets.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets keyed by `K`, all with one rate and size.
pub struct RateLimiter<K> {
    per_second: f64,
    burst: f64,
    state: Mutex<(HashMap<K, Bucket>, Instant)>,
}

impl<K: Eq + Hash + Copy> RateLimiter<K> {
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second,
            burst: f64::from(burst.max(1)),
            state: Mutex::new((HashMap::new(), Instant::now())),
        }
    }

    /// Takes one call from `key`'s bucket at `now`; `Err(wait)` when it is empty.
    pub fn take(&self, key: K, now: Instant) -> Result<(), Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        // A poisoned lock only means another call panicked mid-update; the map is still usable.
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (buckets, swept) = &mut *guard;
        if now.duration_since(*swept) >= SWEEP_EVERY {
            buckets.retain(|_, bucket| now.duration_since(bucket.at) < IDLE);
            *swept = now;
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refilled = now.duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refilled).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }
}

/// The gateway's two limits.
pub struct Limits {
    pub client: RateLimiter<IpAddr>,
    pub bank: RateLimiter<Uuid>,
}

impl Limits {
    pub fn new(settings: &RateLimitSettings) -> Self {
        Self {
            client: RateLimiter::new(settings.client_per_second, settings.client_burst),
            bank: RateLimiter::new(settings.bank_per_second, settings.bank_burst),
        }
    }

    pub fn check_client(&self, client: IpAddr) -> Result<(), ServiceError> {
        self.client
            .take(client, Instant::now())
            .map_err(|wait| throttled(wait, "this client"))
    }

    pub fn check_bank(&self, bank: Uuid) -> Result<(), ServiceError> {
        self.bank
            .take(bank, Instant::now())
            .map_err(|wait| throttled(wait, "this bank"))
    }
}

fn throttled(wait: Duration, whose: &str) -> ServiceError {
    // Whole seconds, at least one, as Retry-After carries them.
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ServiceError::new(
        Code::ResourceExhausted,
        format!("Too many requests from {whose}; try again in {seconds} seconds."),
    )
    .with_reason("RATE_LIMITED")
    .with_metadata("retry_after_seconds", seconds.max(1).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_lets_its_burst_through_then_refills_at_its_rate() {
        let limiter = RateLimiter::new(2.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take(1, start).is_ok());
        }
        let wait = limiter.take(1, start).expect_err("empty");
        assert_eq!(wait, Duration::from_millis(500), "one call per half second");
        assert!(
            limiter.take(2, start).is_ok(),
            "another key has its own bucket"
        );
        assert!(limiter.take(1, start + Duration::from_millis(499)).is_err());
        assert!(limiter.take(1, start + Duration::from_millis(1000)).is_ok());
        // Refilling stops at the burst.
        let later = start + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(limiter.take(1, later).is_ok());
        }
        assert!(limiter.take(1, later).is_err());
    }

    #[test]
    fn a_zero_rate_is_no_limit_and_idle_buckets_are_forgotten() {
        let off = RateLimiter::new(0.0, 1);
        let now = Instant::now();
        for _ in 0..1000 {
            assert!(off.take(1, now).is_ok());
        }
        let limiter = RateLimiter::new(1.0, 1);
        assert!(limiter.take(1, now).is_ok());
        assert!(limiter.take(2, now + IDLE + SWEEP_EVERY).is_ok());
        let guard = limiter.state.lock().expect("lock");
        assert_eq!(guard.0.len(), 1, "the idle bucket of key 1 was swept");
    }

    #[test]
    fn a_refusal_is_429_with_whole_seconds_to_wait() {
        let error = throttled(Duration::from_millis(1200), "this client");
        assert_eq!(error.code, Code::ResourceExhausted);
        assert_eq!(error.reason.as_deref(), Some("RATE_LIMITED"));
        assert_eq!(error.metadata["retry_after_seconds"], "2");
        let error = throttled(Duration::from_millis(10), "this bank");
        assert_eq!(error.metadata["retry_after_seconds"], "1");
    }
}
